// Continued pre-training of the decoder teacher (train/cpt.h): which tokens carry the loss, the loss itself
// against an explicit log-softmax reference, packing, batch order determinism, the inputs' errors, and a few
// training steps. Tiny models (hidden 32, 2 layers) on a byte-level BPE trained here on a few sentences; run
// with one thread.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/random.h"
#include "model/hf_config.h"
#include "model/llama.h"
#include "model/ranker.h"
#include "test_util.h"
#include "text/bpe_trainer.h"
#include "text/pair_encoding.h"
#include "text/tokenizer.h"
#include "train/cpt.h"

namespace disranker {
namespace {

using testing::TempDir;

const char* const kSentences[] = {
    "query: what is a cat document: cat a small animal that purrs",
    "query: where do cats sleep document: cats sleep in the sun",
    "query: what is a dog document: dog an animal that barks at the moon",
    "query: how tall is a tree document: tree a tall plant with a trunk",
};

// A byte-level BPE of 60 tokens ("<s>" bos 0, "</s>" eos 1, "<pad>" 2, "<unk>" 3) on the sentences above.
std::unique_ptr<Tokenizer> tiny_tokenizer(const TempDir& dir) {
  BpeTrainerOptions options;
  options.vocab_size = 60;
  options.full_byte_alphabet = false;
  BpeTrainer trainer(options);
  for (const char* sentence : kSentences) trainer.add_text(sentence);
  const std::string path = (dir.path() / "tokenizer.json").string();
  write_bpe_tokenizer_json(trainer.train(), path);
  return load_tokenizer(path);
}

PairEncoderOptions decoder_template(std::size_t max_length) {
  PairEncoderOptions options;
  options.style = PairStyle::kDecoder;
  options.max_length = max_length;
  options.protected_query_tokens = 4;
  options.add_bos = true;
  return options;
}

DecoderConfig tiny_config(std::int64_t vocab_size) {
  DecoderConfig c;
  c.vocab_size = vocab_size;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 128;
  c.initializer_range = 0.2;  // larger than HF's 0.02, so that the outputs are far from uniform
  c.bos_token_id = 0;
  c.eos_token_ids = {1};
  return c;
}

std::size_t count_targets(const LmRow& row) {
  return static_cast<std::size_t>(std::count(row.targets.begin(), row.targets.end(), 1));
}

class CptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = tiny_tokenizer(dir_);
    ASSERT_EQ(tokenizer_->special().bos, 0);
    ASSERT_EQ(tokenizer_->special().eos, 1);
    ASSERT_EQ(tokenizer_->special().pad, 2);
  }
  std::size_t length(std::string_view text) const { return tokenizer_->encode(text).size(); }

  TempDir dir_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

// ---- The loss mask
// -----------------------------------------------------------------------------------------------

TEST_F(CptTest, TargetsAreExactlyTitleSeparatorSummaryAndEos) {
  const LmExampleEncoder encoder(*tokenizer_, decoder_template(64));
  const LmExample example = encoder.pair("what is a cat", "cat", "a small animal");
  // The ids are the ranking template's, token for token.
  const EncodedPair ranking =
      PairEncoder(*tokenizer_, decoder_template(64)).encode("what is a cat", "cat", "a small animal");
  EXPECT_EQ(example.ids, ranking.ids);
  EXPECT_FALSE(example.truncated);

  // Context: bos, "query: ", the query, " document: ". Targets: "cat", " ", "a small animal", </s>.
  const std::size_t context = 1 + length("query: ") + length("what is a cat") + length(" document: ");
  const std::size_t targets = length("cat") + length(" ") + length("a small animal") + 1;
  ASSERT_EQ(example.ids.size(), context + targets);
  EXPECT_EQ(example.target_start, context);
  EXPECT_EQ(example.targets(), targets);
  // The target begins with the title's tokens and ends with </s>.
  const auto title = tokenizer_->encode("cat");
  EXPECT_TRUE(
      std::equal(title.begin(), title.end(), example.ids.begin() + static_cast<std::ptrdiff_t>(context)));
  EXPECT_EQ(example.ids.back(), tokenizer_->special().eos);

  const LmRow row = lm_row(example);
  for (std::size_t p = 0; p < row.ids.size(); ++p)
    EXPECT_EQ(row.targets[p], p >= context ? 1 : 0) << "position " << p;
  EXPECT_EQ(count_targets(row), targets);
}

TEST_F(CptTest, EmptyTitleStartsTheTargetAtTheSummary) {
  const LmExampleEncoder encoder(*tokenizer_, decoder_template(64));
  const LmExample example = encoder.pair("what is a cat", "", "a small animal");
  const std::size_t context = 1 + length("query: ") + length("what is a cat") + length(" document: ");
  EXPECT_EQ(example.target_start, context);
  EXPECT_EQ(example.targets(), length("a small animal") + 1);  // no separator without a title
}

TEST_F(CptTest, LongPairIsTruncatedAsThePairEncoderDoesSummaryFirst) {
  const std::size_t context = 1 + length("query: ") + length("what is a cat") + length(" document: ");
  const std::size_t max_length = context + length("cat") + length(" ") + 3 + 1;  // room for 3 summary tokens
  const LmExampleEncoder encoder(*tokenizer_, decoder_template(max_length));
  const std::string summary = "a small animal that purrs in the sun";
  ASSERT_GT(length(summary), 3u);
  const LmExample example = encoder.pair("what is a cat", "cat", summary);
  EXPECT_TRUE(example.truncated);
  EXPECT_EQ(example.ids.size(), max_length);
  EXPECT_EQ(example.target_start, context);
  EXPECT_EQ(example.ids.back(), tokenizer_->special().eos);
  const auto kept = tokenizer_->encode(summary);
  EXPECT_TRUE(
      std::equal(kept.begin(), kept.begin() + 3, example.ids.end() - 4));  // the summary's first 3 tokens
}

TEST_F(CptTest, DocumentTextTargetsEveryTokenButTheFirst) {
  const LmExampleEncoder encoder(*tokenizer_, decoder_template(64));
  const LmExample example = encoder.text("cats sleep in the sun");
  ASSERT_EQ(example.ids.size(), length("cats sleep in the sun") + 2);
  EXPECT_EQ(example.ids.front(), tokenizer_->special().bos);
  EXPECT_EQ(example.ids.back(), tokenizer_->special().eos);
  EXPECT_EQ(example.target_start, 1u);
  EXPECT_EQ(count_targets(lm_row(example)), example.ids.size() - 1);
}

TEST_F(CptTest, BertTemplateIsRejected) {
  PairEncoderOptions options = decoder_template(64);
  options.style = PairStyle::kBert;
  EXPECT_THROW(LmExampleEncoder(*tokenizer_, options), Error);
}

// ---- The loss
// ----------------------------------------------------------------------------------------------------

TEST_F(CptTest, MaskedLossEqualsExplicitCrossEntropyAtTargetPositions) {
  torch::manual_seed(3);
  Decoder model(tiny_config(static_cast<std::int64_t>(tokenizer_->vocab_size())));
  model->eval();
  const LmExampleEncoder encoder(*tokenizer_, decoder_template(64));
  const std::vector<LmExample> examples = {encoder.pair("what is a cat", "cat", "a small animal"),
                                           encoder.pair("where do cats sleep", "", "in the sun"),
                                           encoder.text("a tree a tall plant")};
  // Row 0 packs examples 0 and 2; row 1 holds example 1 alone and is padded.
  std::vector<LmRow> rows = {lm_row(examples[0]), lm_row(examples[1])};
  const LmRow third = lm_row(examples[2]);
  rows[0].ids.insert(rows[0].ids.end(), third.ids.begin(), third.ids.end());
  rows[0].targets.insert(rows[0].targets.end(), third.targets.begin(), third.targets.end());
  const std::vector<const LmRow*> pointers = {&rows[0], &rows[1]};
  const LmBatch batch = make_lm_batch(pointers, tokenizer_->special().pad, torch::kCPU);
  ASSERT_EQ(batch.target_count, static_cast<std::int64_t>(count_targets(rows[0]) + count_targets(rows[1])));

  const LmLoss loss = causal_lm_loss(*model, batch);
  EXPECT_EQ(loss.count, batch.target_count);

  // Reference: full logits, log-softmax, then -log p(token at p | logits at p - 1) at each target p only.
  torch::NoGradGuard no_grad;
  const auto log_probs =
      torch::log_softmax(model->lm_logits(model->forward(batch.input_ids, batch.attention_mask)), -1);
  double sum = 0;
  int count = 0;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (std::size_t p = 1; p < rows[r].ids.size(); ++p) {
      if (rows[r].targets[p] == 0) continue;
      sum -= log_probs[static_cast<std::int64_t>(r)][static_cast<std::int64_t>(p - 1)][rows[r].ids[p]]
                 .item<double>();
      ++count;
    }
  }
  EXPECT_EQ(count, loss.count);
  EXPECT_NEAR(loss.loss.item<double>(), sum / count, 1e-5);
}

TEST_F(CptTest, BatchWithoutTargetsGivesZeroLossThatStillBackpropagates) {
  torch::manual_seed(3);
  Decoder model(tiny_config(static_cast<std::int64_t>(tokenizer_->vocab_size())));
  LmRow row;
  row.ids = {0, 5, 6, 1};
  row.targets = {0, 0, 0, 0};
  const std::vector<const LmRow*> pointers = {&row};
  const LmLoss loss = causal_lm_loss(*model, make_lm_batch(pointers, 2, torch::kCPU));
  EXPECT_EQ(loss.count, 0);
  EXPECT_EQ(loss.loss.item<double>(), 0.0);
  loss.loss.backward();  // must not throw
}

TEST_F(CptTest, FewStepsReduceTheLossOnAFixedBatch) {
  torch::manual_seed(5);
  Decoder model(tiny_config(static_cast<std::int64_t>(tokenizer_->vocab_size())));
  model->train();
  const LmExampleEncoder encoder(*tokenizer_, decoder_template(64));
  std::vector<LmExample> examples = {encoder.pair("what is a cat", "cat", "a small animal that purrs"),
                                     encoder.pair("where do cats sleep", "cats", "sleep in the sun"),
                                     encoder.pair("what is a dog", "dog", "an animal that barks")};
  std::vector<std::size_t> order = {0, 1, 2};
  const auto rows = pack_lm_examples(examples, order, 64);
  std::vector<const LmRow*> pointers;
  for (const auto& row : rows) pointers.push_back(&row);
  const LmBatch batch = make_lm_batch(pointers, 2, torch::kCPU);
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-2));
  double first = 0, last = 0;
  for (int step = 0; step < 25; ++step) {
    optimizer.zero_grad();
    const LmLoss loss = causal_lm_loss(*model, batch);
    loss.loss.backward();
    optimizer.step();
    (step == 0 ? first : last) = loss.loss.item<double>();
  }
  EXPECT_LT(last, 0.5 * first) << "first " << first << ", last " << last;
}

// ---- Packing
// -----------------------------------------------------------------------------------------------------

// Examples of random lengths 3..max_length with random target starts, token ids 0..49.
std::vector<LmExample> random_examples(std::size_t n, std::size_t max_length, std::uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<LmExample> examples(n);
  for (auto& e : examples) {
    const std::size_t size = 3 + rng.below(max_length - 2);
    for (std::size_t i = 0; i < size; ++i) e.ids.push_back(static_cast<TokenId>(rng.below(50)));
    e.target_start = 1 + rng.below(size - 1);
  }
  return examples;
}

TEST(CptPacking, KeepsEveryExampleWholeWithItsOwnTargets) {
  const std::size_t max_length = 32;
  const auto examples = random_examples(200, max_length, 11);
  const auto order = epoch_order(examples.size(), 7, 0);
  const auto rows = pack_lm_examples(examples, order, max_length);

  std::vector<int> seen(examples.size(), 0);
  std::size_t tokens = 0;
  for (const LmRow& row : rows) {
    ASSERT_LE(row.ids.size(), max_length);
    ASSERT_EQ(row.targets.size(), row.ids.size());
    tokens += row.ids.size();
    ASSERT_EQ(row.targets[0], 0);
  }
  // Find each example at one of its row's starts: tokens and targets identical, nothing split.
  std::size_t total_targets = 0;
  for (const LmRow& row : rows) {
    for (std::size_t k = 0; k < row.example_starts.size(); ++k) {
      const std::size_t begin = row.example_starts[k];
      const std::size_t end = k + 1 < row.example_starts.size() ? row.example_starts[k + 1] : row.ids.size();
      bool found = false;
      for (std::size_t e = 0; e < examples.size() && !found; ++e) {
        const auto& ex = examples[e];
        if (seen[e] || ex.ids.size() != end - begin) continue;
        if (!std::equal(ex.ids.begin(), ex.ids.end(), row.ids.begin() + static_cast<std::ptrdiff_t>(begin)))
          continue;
        for (std::size_t i = 0; i < ex.ids.size(); ++i) {
          EXPECT_EQ(row.targets[begin + i], i >= ex.target_start ? 1 : 0);
        }
        seen[e] = 1;
        found = true;
      }
      EXPECT_TRUE(found) << "a segment of a row is no example";
    }
    total_targets += count_targets(row);
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
  std::size_t expected_tokens = 0, expected_targets = 0;
  for (const auto& e : examples) expected_tokens += e.ids.size(), expected_targets += e.targets();
  EXPECT_EQ(tokens, expected_tokens);
  EXPECT_EQ(total_targets, expected_targets);
  // Best fit opens a row only for an example that fits in no open row, so no two rows fit in one.
  for (std::size_t a = 0; a < rows.size(); ++a) {
    for (std::size_t b = a + 1; b < rows.size(); ++b) {
      ASSERT_GT(rows[a].ids.size() + rows[b].ids.size(), max_length) << "rows " << a << " and " << b;
    }
  }
}

TEST(CptPacking, BestFitPutsAnItemInTheFullestBinThatHoldsIt) {
  const std::vector<std::size_t> sizes = {6, 4, 7, 3, 2};
  const std::vector<std::size_t> order = {0, 1, 2, 3, 4};
  // 6 → bin 0 (4 left); 4 → bin 0 (full); 7 → bin 1 (3 left); 3 → bin 1 (full); 2 → bin 2.
  const auto bins = pack_best_fit(sizes, order, 10);
  ASSERT_EQ(bins.size(), 3u);
  EXPECT_EQ(bins[0], (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(bins[1], (std::vector<std::size_t>{2, 3}));
  EXPECT_EQ(bins[2], (std::vector<std::size_t>{4}));
  EXPECT_THROW(pack_best_fit(std::vector<std::size_t>{11}, std::vector<std::size_t>{0}, 10), Error);
}

// ---- Batch order
// -------------------------------------------------------------------------------------------------

TEST(CptBatches, EachEpochVisitsEveryRowOnceInAnOrderThatDependsOnlyOnSeedAndEpoch) {
  std::vector<std::size_t> lengths(103);
  for (std::size_t i = 0; i < lengths.size(); ++i) lengths[i] = 5 + (i * 37) % 60;
  for (const bool buckets : {false, true}) {
    SCOPED_TRACE(buckets ? "length buckets" : "plain");
    const RowBatcher a(lengths, 4, buckets, 9), b(lengths, 4, buckets, 9),
        other_seed(lengths, 4, buckets, 10);
    ASSERT_EQ(a.batches_per_epoch(), 26);
    for (std::int64_t epoch = 0; epoch < 2; ++epoch) {
      std::multiset<std::size_t> rows;
      for (std::int64_t i = 0; i < a.batches_per_epoch(); ++i) {
        const auto batch = a.batch(epoch, i);
        rows.insert(batch.begin(), batch.end());
      }
      EXPECT_EQ(rows.size(), lengths.size());
      EXPECT_EQ(std::set<std::size_t>(rows.begin(), rows.end()).size(), lengths.size());
    }
    // Asked in any order (as after a resume), a batch is the same.
    EXPECT_EQ(a.batch(1, 5), b.batch(1, 5));
    EXPECT_EQ(a.batch(0, 7), b.batch(0, 7));
    EXPECT_NE(a.batch(0, 7), a.batch(1, 7));
    EXPECT_NE(a.batch(0, 7), other_seed.batch(0, 7));
  }
}

TEST(CptBatches, LengthBucketsPadLessThanRandomBatches) {
  std::vector<std::size_t> lengths(512);
  SplitMix64 rng(3);
  for (auto& l : lengths) l = 5 + rng.below(120);
  auto padding = [&](const RowBatcher& batcher) {
    std::size_t pad = 0;
    for (std::int64_t i = 0; i < batcher.batches_per_epoch(); ++i) {
      std::size_t longest = 0, sum = 0;
      const auto batch = batcher.batch(0, i);
      for (const std::size_t r : batch) longest = std::max(longest, lengths[r]), sum += lengths[r];
      pad += longest * batch.size() - sum;
    }
    return pad;
  };
  EXPECT_LT(3 * padding(RowBatcher(lengths, 8, true, 1)), padding(RowBatcher(lengths, 8, false, 1)));
}

// ---- Inputs
// ------------------------------------------------------------------------------------------------------

TEST(CptInputs, PairsAreReadAndBadRowsNameFileLineAndField) {
  TempDir dir;
  const auto good = dir.write("pairs.tsv", "what is a cat\tcat\ta small animal\nwhere\t\tin the sun\n");
  const auto pairs = read_training_pairs(good);
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[1].query, "where");
  EXPECT_EQ(pairs[1].title, "");
  EXPECT_EQ(pairs[1].summary, "in the sun");

  const auto empty = dir.write("empty.tsv", "");
  EXPECT_ERROR(read_training_pairs(empty), empty, "", "no pairs");
  const auto blank_query = dir.write("q.tsv", "a\tb\tc\n \tcat\tsummary\n");
  EXPECT_ERROR(read_training_pairs(blank_query), blank_query, "query", "empty");
  const auto no_document = dir.write("d.tsv", "a\t\t\n");
  EXPECT_ERROR(read_training_pairs(no_document), no_document, "summary", "both empty");
  const auto two_columns = dir.write("c.tsv", "a\tb\n");
  EXPECT_THROW(read_training_pairs(two_columns), Error);
}

TEST(CptInputs, TextsComeFromDocumentsOrQueries) {
  TempDir dir;
  std::size_t skipped = 9;
  const auto docs =
      dir.write("docs.tsv", "d1\tCat\ta small animal\nd2\t\tno title\nd3\tonly title\t\nd4\t\t\n");
  EXPECT_EQ(read_lm_texts(docs, &skipped),
            (std::vector<std::string>{"Cat a small animal", "no title", "only title"}));
  EXPECT_EQ(skipped, 1u);
  const auto queries = dir.write("queries.tsv", "q1\twhat is a cat\nq2\twhere\n");
  EXPECT_EQ(read_lm_texts(queries), (std::vector<std::string>{"what is a cat", "where"}));
  const auto empty = dir.write("empty.tsv", "");
  EXPECT_ERROR(read_lm_texts(empty), empty, "", "no texts");
  const auto four = dir.write("four.tsv", "a\tb\tc\td\n");
  EXPECT_ERROR(read_lm_texts(four), four, "", "4 columns");
}

TEST(CptOptionsTest, RangesAreChecked) {
  CptOptions options;
  options.pairs_path = "p.tsv";
  EXPECT_NO_THROW(validate(options));
  options.text_ratio = 1.0;
  EXPECT_THROW(validate(options), Error);
  options.text_ratio = 0.2;
  options.batch_size = 0;
  EXPECT_THROW(validate(options), Error);
}

// ---- The stage end to end (Ranker + Trainer)
// ---------------------------------------------------------------------

class CptStageTest : public CptTest {
 protected:
  // A tiny teacher freshly created from a config.json and the test's tokenizer.
  std::unique_ptr<Ranker> teacher(bool lm_head = true) const {
    const std::string config = (dir_.path() / "config.json").string();
    write_decoder_config(config, tiny_config(static_cast<std::int64_t>(tokenizer_->vocab_size())));
    RankerCreateOptions options;
    options.role = RankerRole::kTeacher;
    options.max_length = 64;
    options.lm_head = lm_head;
    options.seed = 1;
    return Ranker::create(config, (dir_.path() / "tokenizer.json").string(), torch::kCPU, options);
  }
  CptOptions options() const {
    CptOptions o;
    o.pairs_path = dir_.write("pairs.tsv",
                              "what is a cat\tcat\ta small animal that purrs\n"
                              "where do cats sleep\tcats\tcats sleep in the sun\n"
                              "what is a dog\tdog\tan animal that barks at the moon\n"
                              "how tall is a tree\ttree\ta tall plant with a trunk\n"
                              "what is a cat\t\tcat a small animal\n"
                              "where do dogs sleep\tdog\tin the sun\n");
    o.text_paths = {
        dir_.write("docs.tsv", "d1\tcat\ta small animal\nd2\ttree\ta tall plant\nd3\t\tthe moon\n")};
    o.text_ratio = 0.25;
    o.dev_pairs_path = dir_.write("dev.tsv", "what is a tree\ttree\ta tall plant\n");
    o.max_length = 64;
    o.batch_size = 2;
    return o;
  }
  RunOptions run(const std::string& name) const {
    RunOptions r;
    r.out_dir = (dir_.path() / name).string();
    r.max_steps = 3;
    r.save_every = 0;
    r.log_every = 1;
    r.quiet = true;
    r.seed = 5;
    return r;
  }
};

TEST_F(CptStageTest, WritesTheModelAndSummaryAndRepeatsForASeed) {
  OptimizerOptions optimizer;
  optimizer.learning_rate = 1e-3;
  const auto first = run_cpt(*teacher(), "init", options(), run("a"), optimizer);
  EXPECT_EQ(first["steps"], 3);
  // 6 pairs and documents at a quarter of the examples: round(6 · 0.25 / 0.75) = 2 documents.
  EXPECT_EQ(first["data"]["pair_examples"], 6);
  EXPECT_EQ(first["data"]["text_examples"], 2);
  const double targets_per_second = first["target_tokens_per_second"];
  const double tokens_per_second = first["tokens_per_second"];
  EXPECT_GT(targets_per_second, 0);
  EXPECT_GT(tokens_per_second, targets_per_second);  // the context tokens count in tokens/s only
  const auto& validation = first["validation"];
  EXPECT_NEAR(validation["perplexity"].get<double>(), std::exp(validation["loss"].get<double>()), 1e-9);
  EXPECT_EQ(validation["examples"], 1);

  const auto manifest = read_ranker_manifest((dir_.path() / "a" / "model" / "disranker.json").string());
  EXPECT_EQ(manifest.provenance["stage"], "cpt");
  EXPECT_EQ(manifest.provenance["steps"], 3);
  EXPECT_EQ(manifest.provenance["pairs"], options().pairs_path);
  EXPECT_TRUE(std::filesystem::exists(dir_.path() / "a" / "summary.json"));
  // The saved teacher keeps its LM head (it can go on with CPT) and loads back.
  const auto loaded = Ranker::load((dir_.path() / "a" / "model").string(), torch::kCPU);
  EXPECT_TRUE(loaded->decoder()->options().lm_head);

  // Same seed, same data, same model: the same run, loss for loss.
  const auto second = run_cpt(*teacher(), "init", options(), run("b"), optimizer);
  EXPECT_EQ(first["final_loss"], second["final_loss"]);
  // Without packing: other rows, still trains.
  CptOptions unpacked = options();
  unpacked.pack = false;
  const auto third = run_cpt(*teacher(), "init", unpacked, run("c"), optimizer);
  EXPECT_EQ(third["data"]["rows"], 8);
}

TEST_F(CptStageTest, RejectsAModelWithoutLmHeadAndEmptyPairs) {
  EXPECT_ERROR(run_cpt(*teacher(/*lm_head=*/false), "no-lm", options(), run("x"), {}), "no-lm",
               "lm_head.weight", "no LM head");
  CptOptions empty = options();
  empty.pairs_path = dir_.write("empty.tsv", "");
  EXPECT_ERROR(run_cpt(*teacher(), "init", empty, run("y"), {}), empty.pairs_path, "", "no pairs");
}

}  // namespace
}  // namespace disranker
