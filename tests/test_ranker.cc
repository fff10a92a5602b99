// Ranker (model/ranker.h), score_pool (infer/score_pool.h) and validation (train/validation.h) on tiny
// models: a BERT on a hand-written WordPiece vocabulary and a Llama decoder on a byte-level BPE trained here.
//
// References are independent of the code under test: the decoder's score is recomputed from the unpadded
// sequence's last hidden state and the score head; score transforms from their formulas; rankings and MRR by
// hand from the scores; shard membership from the sorted qid list.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "infer/score_pool.h"
#include "model/bert.h"
#include "model/hf_config.h"
#include "model/llama.h"
#include "model/lora.h"
#include "model/ranker.h"
#include "model/torch_tensors.h"
#include "test_scores.h"
#include "test_util.h"
#include "text/bpe_trainer.h"
#include "train/validation.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;
using testing::expect_near_all;
using testing::TempDir;

const torch::Device kCpu(torch::kCPU);

constexpr const char* kVocab =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]"
    "\nthe\na\nof\nis\nwhat\nwhere\nhow\ncat\ndog\nsat\non\nmat\nhouse\nbig\n"
    "small\nred\nblue\nruns\nfast\nslow\ncar\nwater\nfire\ntree\nlives\nin\n##s\nanimal\npet\n";

constexpr const char* kCorpus =
    "the cat sat on the mat\nwhat is a cat\nthe dog runs fast\nwhere does the dog live\n"
    "a big red car\nthe small blue house\nhow fast is a car\nthe cat is a small pet\n"
    "query: why document: the cat\n";  // the decoder template's pieces

// Config presets of the smallest useful size (vocab_size is replaced by the tokenizer's).
constexpr const char* kBertConfig =
    R"({"model_type": "bert", "vocab_size": 64, "hidden_size": 16, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 512})";
constexpr const char* kDecoderConfig =
    R"({"model_type": "llama", "vocab_size": 64, "hidden_size": 16, "intermediate_size": 32,
        "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
        "max_position_embeddings": 512})";

struct Fixture {
  TempDir tmp;
  std::string vocab = tmp.write("tiny-vocab.txt", kVocab);
  std::string bert_config = tmp.write("bert.json", kBertConfig);
  std::string decoder_config = tmp.write("decoder.json", kDecoderConfig);
  std::string bpe_json;

  Fixture() {
    BpeTrainerOptions options;
    options.vocab_size = 64;
    options.full_byte_alphabet = false;
    BpeTrainer trainer(options);
    trainer.add_text(kCorpus);
    bpe_json = (tmp.path() / "tokenizer.json").string();
    write_bpe_tokenizer_json(trainer.train(), bpe_json);
  }
  std::string path(const std::string& name) const { return (tmp.path() / name).string(); }

  std::unique_ptr<Ranker> bert(const RankerCreateOptions& options = {}) const {
    return Ranker::create(bert_config, vocab, kCpu, options);
  }
  std::unique_ptr<Ranker> decoder(const RankerCreateOptions& options = {}) const {
    return Ranker::create(decoder_config, bpe_json, kCpu, options);
  }
};

struct Pair {
  const char* query;
  const char* title;
  const char* text;
};
const std::vector<Pair> kPairs = {
    {"what is a cat", "cat", "the cat sat on the mat"},
    {"what is a cat", "", "a small pet"},
    {"how fast is a car", "car", "a big red car runs fast on the mat in the house"},
    {"where does the dog live", "dog", "the dog"},
};

std::vector<EncodedPair> encode_all(const Ranker& ranker) {
  std::vector<EncodedPair> out;
  for (const auto& p : kPairs) out.push_back(ranker.encode(p.query, p.title, p.text));
  return out;
}

// Three queries over six documents; q3 has no relevant document.
struct Collection {
  Queries queries;
  Docs docs;
  Run candidates;
  Collection() {
    queries.add({"q1", "what is a cat"});
    queries.add({"q2", "how fast is a car"});
    queries.add({"q3", "where does the dog live"});
    docs.add({"d1", "cat", "the cat sat on the mat"});
    docs.add({"d2", "", "a small pet"});
    docs.add({"d3", "car", "a big red car runs fast"});
    docs.add({"d4", "dog", "the dog runs"});
    docs.add({"d5", "house", "the small blue house"});
    docs.add({"d6", "", "the cat is a small pet in the house and the dog runs fast on the mat"});
    candidates.by_query["q1"] = {{"d1", 0}, {"d2", 0}, {"d6", 0}, {"d5", 0}};
    candidates.by_query["q2"] = {{"d3", 0}, {"d5", 0}, {"d6", 0}};
    candidates.by_query["q3"] = {{"d4", 0}, {"d6", 0}, {"d1", 0}};
  }
};

// (qid, docid) -> score of a run.
std::map<std::pair<std::string, std::string>, double> scores_of(const Run& run) {
  std::map<std::pair<std::string, std::string>, double> out;
  for (const auto& [qid, entries] : run.by_query) {
    for (const auto& e : entries) out[{qid, e.docid}] = e.score;
  }
  return out;
}

// ---- create / save / load
// ------------------------------------------------------------------------------------

TEST(Ranker, BertSaveLoadRoundTripScoresIdentically) {
  Fixture f;
  const auto ranker = f.bert();
  EXPECT_EQ(ranker->architecture(), Architecture::kBert);
  EXPECT_EQ(ranker->bert()->config().vocab_size, 34);  // the tokenizer's, not the preset's 64
  EXPECT_FALSE(ranker->module().is_training());
  const auto pairs = encode_all(*ranker);
  const auto before = ranker->score(pairs, 3);

  const auto dir = f.path("bert-model");
  ranker->save(dir, {{"stage", "test"}});
  // The vocabulary is stored as vocab.txt (load_tokenizer's name), with its casing recorded.
  EXPECT_TRUE(fs::exists(fs::path(dir) / "vocab.txt"));
  EXPECT_TRUE(fs::exists(fs::path(dir) / "tokenizer_config.json"));
  const auto manifest = read_ranker_manifest((fs::path(dir) / "disranker.json").string());
  EXPECT_EQ(manifest.role, RankerRole::kStudent);
  EXPECT_EQ(manifest.pooling, Pooling::kCls);
  EXPECT_EQ(manifest.max_length, 256);
  EXPECT_EQ(manifest.provenance, nlohmann::json({{"stage", "test"}}));

  const auto loaded = Ranker::load(dir, kCpu);
  EXPECT_EQ(loaded->manifest(), manifest);
  EXPECT_EQ(encode_all(*loaded)[2].ids, pairs[2].ids);
  EXPECT_EQ(loaded->score(pairs, 3), before);  // float32 weights round-trip bit for bit
}

TEST(Ranker, DecoderSaveLoadRoundTripScoresIdentically) {
  Fixture f;
  RankerCreateOptions options;
  options.max_length = 64;
  options.role = RankerRole::kTeacher;
  const auto ranker = f.decoder(options);
  ASSERT_EQ(ranker->architecture(), Architecture::kDecoder);
  const auto& special = ranker->tokenizer().special();
  const auto& config = ranker->decoder()->config();
  EXPECT_EQ(config.vocab_size, 64);
  EXPECT_EQ(config.bos_token_id, std::optional<std::int64_t>(special.bos));
  EXPECT_EQ(config.eos_token_ids, std::vector<std::int64_t>{special.eos});
  EXPECT_TRUE(ranker->decoder()->options().lm_head);
  EXPECT_EQ(ranker->manifest().pooling, Pooling::kLastToken);
  // [bos] ... </s>
  const auto pairs = encode_all(*ranker);
  EXPECT_EQ(pairs[0].ids.front(), special.bos);
  EXPECT_EQ(pairs[0].ids.back(), special.eos);
  const auto before = ranker->score(pairs);

  const auto dir = f.path("decoder-model");
  ranker->save(dir);
  EXPECT_TRUE(fs::exists(fs::path(dir) / "tokenizer.json"));
  const auto loaded = Ranker::load(dir, kCpu);
  EXPECT_EQ(loaded->architecture(), Architecture::kDecoder);
  EXPECT_EQ(loaded->manifest().role, RankerRole::kTeacher);
  EXPECT_EQ(loaded->manifest().max_length, 64);
  EXPECT_TRUE(loaded->decoder()->options().lm_head);
  EXPECT_EQ(loaded->score(pairs), before);
}

TEST(Ranker, CreateSeedsTheInitialisation) {
  Fixture f;
  RankerCreateOptions a, b;
  b.seed = 7;
  const auto pairs = encode_all(*f.bert(a));
  EXPECT_EQ(f.bert(a)->score(pairs), f.bert(a)->score(pairs));
  EXPECT_NE(f.bert(a)->score(pairs), f.bert(b)->score(pairs));
}

TEST(Ranker, SavingOverItsOwnSourceDirectoryKeepsTheTokenizer) {
  Fixture f;
  const auto dir = f.path("m");
  f.bert()->save(dir);
  auto loaded = Ranker::load(dir, kCpu);
  loaded->save(dir);  // the tokenizer files were read at load: replacing the directory cannot lose them
  loaded->save(dir + "-other");
  EXPECT_EQ(Ranker::load(dir + "-other", kCpu)->tokenizer().vocab_size(), 34u);
}

// ---- what the score is
// ---------------------------------------------------------------------------------------

TEST(Ranker, DecoderScoreIsTheScoreHeadOnTheLastRealToken) {
  Fixture f;
  const auto ranker = f.decoder();
  const auto pairs = encode_all(*ranker);
  ASSERT_LT(pairs[3].ids.size(), pairs[2].ids.size());  // pair 3 is padded when batched with pair 2
  const auto batched = ranker->score(pairs);

  auto* decoder = ranker->decoder();
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    std::vector<std::int64_t> ids(pairs[i].ids.begin(), pairs[i].ids.end());
    const auto input = torch::tensor(ids, torch::kInt64).unsqueeze(0);
    const auto hidden = decoder->forward(input);  // no padding, no mask
    const auto last = hidden.select(1, static_cast<std::int64_t>(ids.size()) - 1);
    const double expected = decoder->score_head(last).item<double>();
    EXPECT_NEAR(batched[i], expected, 1e-5) << "pair " << i;
  }
}

TEST(Ranker, ScoresDoNotDependOnPaddingOrBatchComposition) {
  Fixture f;
  for (const bool decoder : {false, true}) {
    SCOPED_TRACE(decoder ? "decoder" : "bert");
    const auto ranker = decoder ? f.decoder() : f.bert();
    const auto pairs = encode_all(*ranker);
    const auto together = ranker->score(pairs, 4);
    std::vector<double> alone;
    for (const auto& pair : pairs) alone.push_back(ranker->score(std::span<const EncodedPair>(&pair, 1))[0]);
    expect_near_all(together, alone, 1e-5);
    // The short pair 3 with a long neighbour: right padding must not change its score.
    const std::vector<EncodedPair> reversed(pairs.rbegin(), pairs.rend());
    const auto backwards = ranker->score(reversed, 2);
    expect_near_all({backwards.rbegin(), backwards.rend()}, together, 1e-5);
  }
}

TEST(Ranker, ForwardGivesRawScoresAndScoreAppliesTheTransform) {
  Fixture f;
  const auto ranker = f.bert();
  const auto pairs = encode_all(*ranker);
  std::vector<double> raw;
  {
    torch::NoGradGuard no_grad;
    const auto out = ranker->forward(make_batch(pairs, ranker->tokenizer().special().pad));
    ASSERT_EQ(out.dim(), 1);
    ASSERT_EQ(out.size(0), static_cast<std::int64_t>(pairs.size()));
    EXPECT_EQ(out.scalar_type(), torch::kFloat32);
    for (std::int64_t i = 0; i < out.size(0); ++i) raw.push_back(out[i].item<double>());
  }
  expect_near_all(ranker->score(pairs), raw, 1e-6);

  ranker->manifest().score = {ScoreType::kAffine, 2.0, 1.0};
  std::vector<double> expected;
  for (const double x : raw) expected.push_back(2.0 * x + 1.0);
  expect_near_all(ranker->score(pairs), expected, 1e-5);

  ranker->manifest().score = {ScoreType::kSigmoid, 2.0, 1.0};
  expected.clear();
  for (const double x : raw) expected.push_back(1.0 / (1.0 + std::exp(-(2.0 * x + 1.0))));
  expect_near_all(ranker->score(pairs), expected, 1e-6);

  // The transform is part of the model: it survives save / load.
  const auto dir = f.path("sigmoid");
  ranker->save(dir);
  expect_near_all(Ranker::load(dir, kCpu)->score(pairs), expected, 1e-6);
}

TEST(Ranker, ScoreRestoresTheTrainingModeAndDisablesDropout) {
  Fixture f;
  const auto ranker = f.bert();
  const auto pairs = encode_all(*ranker);
  const auto in_eval = ranker->score(pairs);
  ranker->module().train();
  EXPECT_EQ(ranker->score(pairs), in_eval);  // dropout (p = 0.1) is off while scoring
  EXPECT_TRUE(ranker->module().is_training());
  const auto out = ranker->forward(make_batch(pairs, 0));
  EXPECT_TRUE(out.requires_grad());  // training path: autograd on
}

TEST(Ranker, ChangingTheManifestBudgetChangesTheEncoding) {
  Fixture f;
  const auto ranker = f.bert();
  std::string text;
  for (int i = 0; i < 10; ++i) text += "the cat sat on the mat ";
  EXPECT_EQ(ranker->encode("what is a cat", "cat", text).ids.size(),
            4u + 4u + 1u + 60u);       // query, 4 specials, title, text
  ranker->manifest().max_length = 40;  // `score --max-length 40`
  const auto pair = ranker->encode("what is a cat", "cat", text);
  EXPECT_EQ(pair.ids.size(), 40u);
  EXPECT_TRUE(pair.truncated);
  EXPECT_EQ(ranker->encoder().options().max_length, 40u);
  ranker->manifest().max_length = 513;  // beyond max_position_embeddings 512
  EXPECT_ERROR(ranker->encode("a", "b", "c"), f.bert_config, "max_length", "max_position_embeddings");
}

// ---- LoRA and heads
// ------------------------------------------------------------------------------------------

TEST(Ranker, LoraAdaptersAreMergedIntoTheSavedWeights) {
  Fixture f;
  const auto ranker = f.decoder();
  const auto pairs = encode_all(*ranker);
  const auto base = ranker->score(pairs);
  LoraConfig lora;
  lora.r = 2;
  lora.alpha = 4;
  lora.target_modules = {"q_proj", "v_proj", "down_proj"};
  apply_lora(ranker->module(), lora);
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(3);
    for (auto& item : ranker->module().named_parameters()) {
      if (item.key().find("lora_B") != std::string::npos) item.value().normal_(0.0, 0.5);
    }
  }
  const auto tuned = ranker->score(pairs);
  ASSERT_GT(std::abs(tuned[0] - base[0]), 1e-4);  // the adapter matters, so the test can fail

  auto& q_proj = *ranker->decoder()->model->layers->at<DecoderLayerImpl>(0).self_attn->q_proj;
  const auto weight_before = q_proj.weight.clone();
  const auto dir = f.path("lora");
  ranker->save(dir);
  // Training goes on unchanged: the live weights are not merged.
  EXPECT_FALSE(q_proj.merged());
  EXPECT_TRUE(torch::equal(q_proj.weight, weight_before));
  expect_near_all(ranker->score(pairs), tuned, 0);

  const auto loaded = Ranker::load(dir, kCpu);
  for (const auto& item : loaded->module().named_parameters()) {
    EXPECT_EQ(item.key().find("lora"), std::string::npos) << item.key();
  }
  expect_near_all(loaded->score(pairs), tuned, 1e-5);
}

TEST(Ranker, LoadingAnMlmCheckpointAddsAFreshRankingHeadAndSaysSo) {
  Fixture f;
  // An MLM-only checkpoint, as `mlm` pre-training without a ranking head would leave it.
  auto config = read_bert_config(f.bert_config);
  config.vocab_size = 34;
  torch::manual_seed(1);
  BertRanker mlm_only(config, BertHeads{.ranking = false, .mlm = true});
  const auto vocab_dir = f.path("vocab");
  fs::create_directories(vocab_dir);
  fs::copy_file(f.vocab, vocab_dir + "/vocab.txt");
  const auto dir = f.path("mlm");
  save_bert(dir, *mlm_only, {vocab_dir + "/vocab.txt"});

  ::testing::internal::CaptureStderr();
  const auto ranker = Ranker::load(dir, kCpu, 48);
  const auto err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("initialised fresh"), std::string::npos) << err;
  EXPECT_NE(err.find("classifier.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("bert.pooler.dense.weight"), std::string::npos) << err;
  ASSERT_NE(ranker->bert(), nullptr);
  EXPECT_TRUE(ranker->bert()->heads().ranking);
  EXPECT_TRUE(ranker->bert()->heads().mlm);  // kept for further pre-training
  EXPECT_TRUE(
      torch::equal(ranker->bert()->bert->word_embeddings->weight, mlm_only->bert->word_embeddings->weight));
  EXPECT_TRUE(torch::equal(ranker->bert()->mlm_dense->weight, mlm_only->mlm_dense->weight));
  // No disranker.json: the student defaults, with the caller's budget.
  EXPECT_EQ(ranker->manifest().role, RankerRole::kStudent);
  EXPECT_EQ(ranker->manifest().max_length, 48);
  for (const double s : ranker->score(encode_all(*ranker))) EXPECT_TRUE(std::isfinite(s));
}

TEST(Ranker, LoadingADecoderWithoutScoreHeadAddsOneAndSaysSo) {
  Fixture f;
  auto config = read_decoder_config(f.decoder_config);
  config.vocab_size = 64;
  torch::manual_seed(1);
  Decoder cpt(config, DecoderOptions{.lm_head = true, .score_head = false});
  const auto dir = f.path("cpt");
  save_hf_model_dir(dir, decoder_config_to_json(config), cpt->named_hf_tensors(), {f.bpe_json});

  ::testing::internal::CaptureStderr();
  const auto ranker = Ranker::load(dir, kCpu);
  const auto err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("no score head"), std::string::npos) << err;
  EXPECT_TRUE(ranker->decoder()->options().lm_head);
  EXPECT_TRUE(torch::equal(ranker->decoder()->lm_head->weight, cpt->lm_head->weight));
  EXPECT_EQ(ranker->manifest().role, RankerRole::kTeacher);
  EXPECT_EQ(ranker->manifest().pooling, Pooling::kLastToken);
}

TEST(Ranker, CreateRejectsWhatTheTemplateCannotUse) {
  Fixture f;
  // A decoder needs an eos (the scored </s>); a WordPiece vocabulary has none.
  EXPECT_ERROR(Ranker::create(f.decoder_config, f.vocab, kCpu), f.vocab, "eos", "no eos token");
  RankerCreateOptions too_long;
  too_long.max_length = 600;  // max_position_embeddings is 512
  EXPECT_ERROR(Ranker::create(f.bert_config, f.vocab, kCpu, too_long), f.bert_config, "max_length",
               "max_position_embeddings");
  EXPECT_ERROR(Ranker::load(f.path("nowhere"), kCpu), f.path("nowhere"), "", "not found");
}

// ---- score_pool
// ----------------------------------------------------------------------------------------------

TEST(ScorePool, RanksEachQuerysCandidatesByTheModelsScores) {
  Fixture f;
  Collection c;
  const auto ranker = f.bert();
  ScorePoolOptions options;
  options.quiet = true;
  options.batch_size = 2;
  options.tag = "tiny";
  const auto run = score_pool(*ranker, c.queries, c.docs, c.candidates, options);
  EXPECT_EQ(run.tag, "tiny");
  ASSERT_EQ(run.num_entries(), 10u);
  // Each score is the model's score of that pair, and the list is sorted by it.
  for (const auto& [qid, entries] : run.by_query) {
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const Doc& doc = *c.docs.find(entries[i].docid);
      const auto pair = ranker->encode(c.queries.find(qid)->text, doc.title, doc.text);
      EXPECT_NEAR(entries[i].score, ranker->score(std::span<const EncodedPair>(&pair, 1))[0], 1e-5)
          << qid << " " << doc.id;
      if (i > 0) {
        EXPECT_GE(entries[i - 1].score, entries[i].score);
      }
    }
  }
}

TEST(ScorePool, TiesAreOrderedByDocidDescendingAsTrecEval) {
  Fixture f;
  Collection c;
  const auto ranker = f.bert();
  {
    torch::NoGradGuard no_grad;
    ranker->bert()->classifier->weight.zero_();  // every pair scores the bias: all tied
  }
  ScorePoolOptions options;
  options.quiet = true;
  const auto run = score_pool(*ranker, c.queries, c.docs, c.candidates, options);
  std::vector<std::string> order;
  for (const auto& e : run.by_query.at("q1")) order.push_back(e.docid);
  EXPECT_EQ(order, (std::vector<std::string>{"d6", "d5", "d2", "d1"}));
}

TEST(ScorePool, SortingByLengthDoesNotChangeTheScores) {
  Fixture f;
  Collection c;
  for (const bool decoder : {false, true}) {
    SCOPED_TRACE(decoder ? "decoder" : "bert");
    const auto ranker = decoder ? f.decoder() : f.bert();
    ScorePoolOptions sorted, unsorted;
    sorted.quiet = unsorted.quiet = true;
    sorted.batch_size = unsorted.batch_size = 3;
    unsorted.sort_by_length = false;
    const auto a = scores_of(score_pool(*ranker, c.queries, c.docs, c.candidates, sorted));
    const auto b = scores_of(score_pool(*ranker, c.queries, c.docs, c.candidates, unsorted));
    ASSERT_EQ(a.size(), 10u);
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [key, score] : a) EXPECT_NEAR(score, b.at(key), 1e-5) << key.first << " " << key.second;
  }
}

TEST(ScorePool, ShardsAreDisjointByQueryAndTogetherAreTheFullRun) {
  Fixture f;
  Collection c;
  const auto ranker = f.bert();
  ScorePoolOptions options;
  options.quiet = true;
  const auto full = scores_of(score_pool(*ranker, c.queries, c.docs, c.candidates, options));
  std::map<std::pair<std::string, std::string>, double> merged;
  const std::vector<std::vector<std::string>> expected_qids = {{"q1"}, {"q2"}, {"q3"}, {}};
  options.shard_count = 2;
  std::vector<std::set<std::string>> shard_qids;
  for (std::size_t shard = 0; shard < 2; ++shard) {
    options.shard_index = shard;
    const auto run = score_pool(*ranker, c.queries, c.docs, c.candidates, options);
    std::set<std::string> qids;
    for (const auto& [qid, entries] : run.by_query) qids.insert(qid);
    shard_qids.push_back(qids);
    for (const auto& [key, score] : scores_of(run)) {
      EXPECT_TRUE(merged.emplace(key, score).second)
          << "pair in two shards: " << key.first << " " << key.second;
    }
  }
  // Positions in the sorted qid list q1, q2, q3: 0 and 2 go to shard 0, 1 to shard 1.
  EXPECT_EQ(shard_qids[0], (std::set<std::string>{"q1", "q3"}));
  EXPECT_EQ(shard_qids[1], (std::set<std::string>{"q2"}));
  ASSERT_EQ(merged.size(), full.size());
  for (const auto& [key, score] : full) EXPECT_NEAR(merged.at(key), score, 1e-5);

  options.shard_count = 4;  // more shards than queries: the last one is empty, not an error
  options.shard_index = 3;
  EXPECT_EQ(score_pool(*ranker, c.queries, c.docs, c.candidates, options).num_entries(), 0u);
}

TEST(ScorePool, UnknownIdsAndNonFiniteScoresAreErrors) {
  Fixture f;
  Collection c;
  const auto ranker = f.bert();
  ScorePoolOptions options;
  options.quiet = true;
  disranker::Run bad_doc = c.candidates;
  bad_doc.by_query["q2"].push_back({"d99", 0});
  EXPECT_ERROR(score_pool(*ranker, c.queries, c.docs, bad_doc, options, "bm25.run"), "bm25.run", "docid",
               "'d99'");
  disranker::Run bad_query = c.candidates;
  bad_query.by_query["q9"] = {{"d1", 0}};
  EXPECT_ERROR(score_pool(*ranker, c.queries, c.docs, bad_query, options, "bm25.run"), "bm25.run", "qid",
               "'q9'");
  {
    torch::NoGradGuard no_grad;
    ranker->bert()->classifier->bias.fill_(std::nan(""));
  }
  try {
    score_pool(*ranker, c.queries, c.docs, c.candidates, options);
    ADD_FAILURE() << "a NaN score was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("query 'q"), std::string::npos) << e.what();
  }
}

TEST(ScorePool, ParseShard) {
  std::size_t index = 9, count = 9;
  parse_shard("0/1", &index, &count);
  EXPECT_EQ(index, 0u);
  EXPECT_EQ(count, 1u);
  parse_shard("3/4", &index, &count);
  EXPECT_EQ(index, 3u);
  EXPECT_EQ(count, 4u);
  for (const char* bad :
       {"4/4", "1/1", "0/0", "-1/2", "1", "a/2", "1/b", "/2", "1/", "1/2/3", " 1/2", "1/2x"}) {
    try {
      parse_shard(bad, &index, &count);
      ADD_FAILURE() << "accepted --shard " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--shard"), std::string::npos) << e.what();
    }
  }
}

TEST(ScorePool, CandidatesFromQrelsAreTheJudgedDocuments) {
  Qrels qrels;
  qrels.by_query["q2"] = {{"d9", 0}, {"d1", 2}, {"d5", 1}};
  qrels.by_query["q1"] = {{"d3", 0}};
  const auto run = candidates_from_qrels(qrels);
  ASSERT_EQ(run.by_query.size(), 2u);
  ASSERT_EQ(run.num_entries(), 4u);
  std::vector<std::string> q2;
  for (const auto& e : run.by_query.at("q2")) {
    q2.push_back(e.docid);
    EXPECT_EQ(e.score, 0.0);
  }
  EXPECT_EQ(q2, (std::vector<std::string>{"d1", "d5", "d9"}));  // a fixed order (by docid)
  EXPECT_EQ(run.by_query.at("q1").front().docid, "d3");
}

// ---- validation
// ----------------------------------------------------------------------------------------------

TEST(Validation, LoadsASetAndEvaluatesTheModelsRanking) {
  Fixture f;
  const auto set_dir = f.path("tiny-dev");
  fs::create_directories(set_dir);
  std::ofstream(set_dir + "/queries.tsv")
      << "q1\twhat is a cat\nq2\thow fast is a car\nq3\twhere does the dog live\n";
  std::ofstream(set_dir + "/docs.tsv") << "d1\tcat\tthe cat sat on the mat\nd2\t\ta small pet\n"
                                          "d3\tcar\ta big red car runs fast\nd4\tdog\tthe dog runs\n";
  std::ofstream(set_dir + "/qrels.txt") << "q1 0 d1 1\nq1 0 d2 0\nq1 0 d3 0\nq2 0 d3 1\nq2 0 d4 0\n"
                                           "q3 0 d4 0\nq3 0 d1 0\n";
  const auto set = load_validation_set(set_dir, "", /*require_relevant=*/true);
  EXPECT_EQ(set.name, "tiny-dev");
  EXPECT_EQ(set.qrels.by_query.size(), 2u);  // q3 has no relevant document
  EXPECT_EQ(set.candidates.num_entries(), 5u);
  ASSERT_EQ(set.metrics.size(), 3u);

  const auto ranker = f.bert();
  const auto metrics = validate(*ranker, set, 2);
  ASSERT_EQ(metrics.size(), 3u);
  // MRR by hand: the relevant document's rank among each query's candidates by score.
  const auto score = [&](const char* qid, const char* docid) {
    const Doc& d = *set.docs.find(docid);
    const auto pair = ranker->encode(set.queries.find(qid)->text, d.title, d.text);
    return ranker->score(std::span<const EncodedPair>(&pair, 1))[0];
  };
  const double q1_rank =
      1 + (score("q1", "d2") > score("q1", "d1")) + (score("q1", "d3") > score("q1", "d1"));
  const double q2_rank = 1 + (score("q2", "d4") > score("q2", "d3"));
  EXPECT_NEAR(metrics.at("recip_rank"), (1 / q1_rank + 1 / q2_rank) / 2, 1e-9);
  EXPECT_TRUE(metrics.contains("ndcg_cut.10"));
  EXPECT_TRUE(metrics.contains("pnr"));

  // A candidate run naming a document the set lacks is an error naming the run.
  const auto run_path = f.tmp.write("cands.txt", "q1 Q0 d1 1 1 x\nq1 Q0 d7 2 0 x\n");
  EXPECT_ERROR(load_validation_set(set_dir, run_path, false), run_path, "docid", "'d7'");
}

}  // namespace
}  // namespace disranker
