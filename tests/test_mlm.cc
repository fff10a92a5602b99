// Masked-LM pre-training of the BERT student (train/mlm.h): BERT's 15% / 80-10-10 masking on a large sample,
// special tokens never chosen, determinism of the masks, packing of texts into [CLS] a [SEP] b [SEP]
// sequences, the loss against an explicit log-softmax reference, and a few training steps. Tiny BERT (hidden
// 32, 2 layers) on a vocab.txt written here; run with one thread.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/random.h"
#include "model/bert.h"
#include "model/hf_config.h"
#include "model/ranker.h"
#include "test_util.h"
#include "text/tokenizer.h"
#include "train/mlm.h"

namespace disranker {
namespace {

using testing::TempDir;

// Ids: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4, then the words from 5.
const char* const kVocab =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncat\ndog\nsat\non\nmat\na\nsmall\nanimal\nthat\npurrs\nbarks\n"
    "sleeps\nin\nsun\ntree\ntall\nplant\nwith\ntrunk\nwhat\nis\nwhere\ndo\n";

std::unique_ptr<Tokenizer> tiny_tokenizer(const TempDir& dir) {
  return load_tokenizer(dir.write("vocab.txt", kVocab));
}

BertConfig tiny_config(std::int64_t vocab_size) {
  BertConfig c;
  c.vocab_size = vocab_size;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.intermediate_size = 64;
  c.max_position_embeddings = 64;
  c.hidden_dropout_prob = 0.0;
  c.attention_probs_dropout_prob = 0.0;
  c.initializer_range = 0.2;
  return c;
}

class MlmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = tiny_tokenizer(dir_);
    ASSERT_EQ(tokenizer_->special().mask, 4);
    vocabulary_ = MlmVocabulary::from(*tokenizer_);
  }
  TempDir dir_;
  std::unique_ptr<Tokenizer> tokenizer_;
  MlmVocabulary vocabulary_;
};

// ---- Masking
// -----------------------------------------------------------------------------------------------------

TEST_F(MlmTest, VocabularyKnowsTheSpecialTokens) {
  for (TokenId id = 0; id < 5; ++id) EXPECT_TRUE(vocabulary_.is_special(id)) << id;
  EXPECT_FALSE(vocabulary_.is_special(5));
  EXPECT_EQ(vocabulary_.random_choices.size(), tokenizer_->vocab_size() - 5);
  EXPECT_EQ(vocabulary_.random_choices.front(), 5);
}

TEST_F(MlmTest, MaskingFollowsBertProportionsAndNeverTouchesSpecialTokens) {
  // 200k tokens, one in five a special token.
  const std::size_t n = 200000;
  std::vector<TokenId> original(n);
  SplitMix64 source(1);
  for (std::size_t i = 0; i < n; ++i) {
    original[i] =
        i % 5 == 0 ? static_cast<TokenId>(source.below(5)) : static_cast<TokenId>(5 + source.below(24));
  }
  std::vector<TokenId> ids = original, labels(n);
  SplitMix64 rng(42);
  mask_for_mlm(ids, labels, vocabulary_, MlmMasking{}, rng);

  std::size_t eligible = 0, chosen = 0, to_mask = 0, kept = 0, replaced = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (vocabulary_.is_special(original[i])) {
      ASSERT_EQ(labels[i], -1) << "special token chosen at " << i;
      ASSERT_EQ(ids[i], original[i]) << "special token changed at " << i;
      continue;
    }
    ++eligible;
    if (labels[i] < 0) {
      ASSERT_EQ(ids[i], original[i]) << "unchosen token changed at " << i;
      continue;
    }
    ++chosen;
    ASSERT_EQ(labels[i], original[i]);
    if (ids[i] == vocabulary_.mask) {
      ++to_mask;
    } else if (ids[i] == original[i]) {
      ++kept;
    } else {
      ASSERT_FALSE(vocabulary_.is_special(ids[i])) << "random replacement is a special token at " << i;
      ++replaced;
    }
  }
  // Binomial tolerance: 4.5 standard deviations.
  auto expect_share = [](std::size_t hits, std::size_t trials, double p, const char* what) {
    const double sigma = std::sqrt(p * (1 - p) / static_cast<double>(trials));
    EXPECT_NEAR(static_cast<double>(hits) / static_cast<double>(trials), p, 4.5 * sigma) << what;
  };
  expect_share(chosen, eligible, 0.15, "chosen");
  // A random replacement equals the original with probability 1/24 (24 non-special words).
  const double same = 1.0 / 24.0;
  expect_share(to_mask, chosen, 0.8, "[MASK]");
  expect_share(kept, chosen, 0.1 + 0.1 * same, "unchanged");
  expect_share(replaced, chosen, 0.1 * (1 - same), "random");
}

TEST_F(MlmTest, MasksAreAPureFunctionOfTheSeed) {
  const std::vector<TokenId> a = {2, 5, 6, 7, 8, 9, 10, 3, 11, 12, 13, 3};
  const std::vector<TokenId> b = {2, 14, 15, 16, 17, 3};
  const std::vector<const std::vector<TokenId>*> rows = {&a, &b};
  MlmMasking masking;
  masking.mask_prob = 0.5;
  const auto first = make_mlm_batch(rows, vocabulary_, masking, 7, 0, torch::kCPU);
  const auto again = make_mlm_batch(rows, vocabulary_, masking, 7, 0, torch::kCPU);
  EXPECT_TRUE(torch::equal(first.input_ids, again.input_ids));
  EXPECT_TRUE(torch::equal(first.chosen, again.chosen));
  bool differs = false;
  for (std::uint64_t seed = 8; seed < 12 && !differs; ++seed) {
    differs =
        !torch::equal(make_mlm_batch(rows, vocabulary_, masking, seed, 0, torch::kCPU).chosen, first.chosen);
  }
  EXPECT_TRUE(differs);
  // Padding, [CLS] and [SEP] are never chosen; labels hold the original tokens.
  EXPECT_EQ(first.input_ids.sizes(), (std::vector<std::int64_t>{2, 12}));
  EXPECT_EQ(first.attention_mask[1].sum().item<std::int64_t>(), 6);
  EXPECT_FALSE(first.chosen[1].slice(0, 5).any().item<bool>());
  EXPECT_FALSE(first.chosen[0][0].item<bool>());
  EXPECT_FALSE(first.chosen[0][7].item<bool>());
  EXPECT_EQ(first.masked, first.chosen.sum().item<std::int64_t>());
  for (std::int64_t p = 0; p < 12; ++p) {
    if (first.chosen[0][p].item<bool>()) {
      EXPECT_EQ(first.labels[0][p].item<std::int64_t>(), a[static_cast<std::size_t>(p)]);
    }
  }
}

// ---- Sequences
// ---------------------------------------------------------------------------------------------------

TEST_F(MlmTest, LongTextsAreSplitAndPiecesArePackedWholeBetweenSeparators) {
  const std::vector<std::string> texts = {"the cat sat on the mat", "a dog",
                                          "a small animal that purrs in the sun", "what is a tree", ""};
  std::size_t split = 0;
  const auto pieces = mlm_pieces(*tokenizer_, texts, 8, &split);  // room for 6 tokens per piece
  EXPECT_EQ(split, 1u);                                           // only the 8-word text exceeds 6 tokens
  ASSERT_EQ(pieces.size(), 5u);
  EXPECT_EQ(pieces[0], tokenizer_->encode("the cat sat on the mat"));
  EXPECT_EQ(pieces[2], tokenizer_->encode("a small animal that purrs in"));
  EXPECT_EQ(pieces[3], tokenizer_->encode("the sun"));

  std::vector<std::size_t> order(pieces.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  const auto sequences = pack_mlm_sequences(pieces, order, 8, 2, 3);
  std::vector<std::vector<TokenId>> found;
  std::size_t tokens = 0;
  for (const auto& s : sequences) {
    ASSERT_LE(s.size(), 8u);
    ASSERT_EQ(s.front(), 2);
    ASSERT_EQ(s.back(), 3);
    tokens += s.size();
    std::vector<TokenId> current;
    for (std::size_t i = 1; i < s.size(); ++i) {
      if (s[i] == 3) {
        found.push_back(current);
        current.clear();
      } else {
        current.push_back(s[i]);
      }
    }
  }
  // Every piece appears whole, exactly once.
  auto sorted_pieces = pieces;
  std::sort(sorted_pieces.begin(), sorted_pieces.end());
  std::sort(found.begin(), found.end());
  EXPECT_EQ(found, sorted_pieces);
  // 6 + 2 + 6 + 2 + 4 tokens and one [SEP] each, one [CLS] per sequence; two short pieces share a sequence.
  EXPECT_EQ(tokens, 20u + 5u + sequences.size());
  EXPECT_LT(sequences.size(), pieces.size());
}

// ---- The loss
// ----------------------------------------------------------------------------------------------------

TEST_F(MlmTest, LossEqualsExplicitCrossEntropyAtChosenPositions) {
  torch::manual_seed(4);
  BertRanker model(tiny_config(static_cast<std::int64_t>(tokenizer_->vocab_size())),
                   BertHeads{.ranking = true, .mlm = true});
  model->eval();
  const std::vector<TokenId> a = {2, 5, 6, 7, 8, 9, 10, 3, 11, 12, 13, 3};
  const std::vector<TokenId> b = {2, 14, 15, 16, 17, 3};
  const std::vector<const std::vector<TokenId>*> rows = {&a, &b};
  MlmMasking masking;
  masking.mask_prob = 0.4;
  const auto batch = make_mlm_batch(rows, vocabulary_, masking, 3, 0, torch::kCPU);
  ASSERT_GT(batch.masked, 2);
  const MlmLoss loss = masked_lm_loss(*model, batch);

  torch::NoGradGuard no_grad;
  const auto log_probs = torch::log_softmax(
      model->mlm_logits(model->encode(batch.input_ids, batch.token_type_ids, batch.attention_mask)), -1);
  double sum = 0;
  std::int64_t count = 0, correct = 0;
  for (std::int64_t r = 0; r < 2; ++r) {
    const auto& original = *rows[static_cast<std::size_t>(r)];
    for (std::int64_t p = 0; p < static_cast<std::int64_t>(original.size()); ++p) {
      if (!batch.chosen[r][p].item<bool>()) continue;
      const TokenId truth = original[static_cast<std::size_t>(p)];
      sum -= log_probs[r][p][truth].item<double>();
      correct += log_probs[r][p].argmax().item<std::int64_t>() == truth ? 1 : 0;
      ++count;
    }
  }
  EXPECT_EQ(loss.count, count);
  EXPECT_EQ(loss.correct, correct);
  EXPECT_NEAR(loss.loss.item<double>(), sum / static_cast<double>(count), 1e-5);
}

TEST_F(MlmTest, FewStepsReduceTheLossOnAFixedBatch) {
  torch::manual_seed(6);
  BertRanker model(tiny_config(static_cast<std::int64_t>(tokenizer_->vocab_size())),
                   BertHeads{.ranking = true, .mlm = true});
  model->train();
  const std::vector<TokenId> a = {2, 5, 6, 8, 9, 5, 10, 3, 11, 7, 16, 3};
  const std::vector<TokenId> b = {2, 11, 12, 13, 14, 15, 3};
  const std::vector<const std::vector<TokenId>*> rows = {&a, &b};
  MlmMasking masking;
  masking.mask_prob = 0.3;
  const auto batch = make_mlm_batch(rows, vocabulary_, masking, 1, 0, torch::kCPU);
  ASSERT_GT(batch.masked, 0);
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-2));
  double first = 0, last = 0;
  for (int step = 0; step < 25; ++step) {
    optimizer.zero_grad();
    const MlmLoss loss = masked_lm_loss(*model, batch);
    loss.loss.backward();
    optimizer.step();
    (step == 0 ? first : last) = loss.loss.item<double>();
  }
  EXPECT_LT(last, 0.5 * first) << "first " << first << ", last " << last;
}

TEST_F(MlmTest, TokenizerWithoutMaskIsRejected) {
  TempDir dir;
  const auto tokenizer = load_tokenizer(dir.write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\na\n"));
  EXPECT_THROW(MlmVocabulary::from(*tokenizer), Error);
}

TEST(MlmOptionsTest, RangesAreChecked) {
  MlmOptions options;
  options.text_paths = {"docs.tsv"};
  EXPECT_NO_THROW(validate(options));
  options.mask_prob = 0;
  EXPECT_THROW(validate(options), Error);
  options.mask_prob = 0.15;
  options.text_paths.clear();
  EXPECT_THROW(validate(options), Error);
}

// ---- The stage end to end (Ranker + Trainer)
// ---------------------------------------------------------------------

class MlmStageTest : public MlmTest {
 protected:
  std::unique_ptr<Ranker> student(bool mlm_head = true) const {
    const std::string config = (dir_.path() / "config.json").string();
    write_bert_config(config, tiny_config(static_cast<std::int64_t>(tokenizer_->vocab_size())));
    RankerCreateOptions options;
    options.max_length = 64;  // the ranking budget; the MLM sequences have their own (32)
    options.mlm_head = mlm_head;
    options.seed = 1;
    return Ranker::create(config, (dir_.path() / "vocab.txt").string(), torch::kCPU, options);
  }
  // 150 documents from the vocabulary's words: the 100th is held out by default.
  std::string docs() const {
    const char* const words[] = {"the", "cat", "dog", "sat", "on", "mat", "a", "small", "animal", "tree"};
    std::string text;
    for (int i = 0; i < 150; ++i) {
      text += "d" + std::to_string(i) + "\t" + words[i % 10] + "\t";
      for (int k = 0; k < 3 + i % 7; ++k) text += std::string(k ? " " : "") + words[(i * 7 + k * 3) % 10];
      text += "\n";
    }
    return dir_.write("docs.tsv", text);
  }
  RunOptions run(const std::string& name) const {
    RunOptions r;
    r.out_dir = (dir_.path() / name).string();
    r.max_steps = 3;
    r.save_every = 0;
    r.quiet = true;
    r.seed = 2;
    return r;
  }
};

TEST_F(MlmStageTest, TrainsHoldsOutEveryHundredthTextAndRepeatsForASeed) {
  MlmOptions options;
  options.text_paths = {docs()};
  options.max_length = 32;
  options.batch_size = 4;
  const auto first = run_mlm(*student(), "init", options, run("a"), {});
  EXPECT_EQ(first["steps"], 3);
  EXPECT_EQ(first["data"]["texts"], 149);  // text 100 held out
  EXPECT_EQ(first["validation"]["sequences"], 1);
  EXPECT_GT(first["validation"]["masked_tokens"].get<int>(), 0);
  EXPECT_NE(first["validation_source"].get<std::string>().find("every 100th"), std::string::npos);
  const auto manifest = read_ranker_manifest((dir_.path() / "a" / "model" / "disranker.json").string());
  EXPECT_EQ(manifest.provenance["stage"], "mlm");
  // The saved student keeps its MLM head (mlm can go on from it) and its ranking head for distill / sft.
  const auto loaded = Ranker::load((dir_.path() / "a" / "model").string(), torch::kCPU);
  EXPECT_TRUE(loaded->bert()->heads().mlm);
  EXPECT_TRUE(loaded->bert()->heads().ranking);

  const auto second = run_mlm(*student(), "init", options, run("b"), {});
  EXPECT_EQ(first["final_loss"], second["final_loss"]);
  EXPECT_EQ(first["validation"], second["validation"]);
}

TEST_F(MlmStageTest, RejectsAModelWithoutMlmHeadAndEmptyTexts) {
  MlmOptions options;
  options.text_paths = {docs()};
  options.max_length = 32;
  EXPECT_ERROR(run_mlm(*student(/*mlm_head=*/false), "plain", options, run("x"), {}), "plain",
               "cls.predictions", "--mlm-head");
  options.text_paths = {dir_.write("empty.tsv", "")};
  EXPECT_ERROR(run_mlm(*student(), "init", options, run("y"), {}), options.text_paths[0], "", "no texts");
}

}  // namespace
}  // namespace disranker
