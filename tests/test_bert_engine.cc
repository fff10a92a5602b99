// The fast BERT engine (infer/bert_engine.h) against the libtorch Ranker on the same model directory: the
// Ranker pads and masks a batch and computes every position of every layer in eager libtorch (itself checked
// against transformers' numbers in test_bert.cc); the engine packs, skips the padding and computes only the
// [CLS] row of the last layer. Their scores must agree to float rounding.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "allocation_counter.h"
#include "core/error.h"
#include "infer/avx2_gemm.h"
#include "infer/bert_engine.h"
#include "model/hf_config.h"
#include "model/ranker.h"
#include "model/safetensors.h"
#include "test_scores.h"
#include "test_util.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;
using testing::expect_near_all;
using testing::TempDir;

constexpr const char* kVocab =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]"
    "\nthe\na\nof\nis\nwhat\nwhere\nhow\ncat\ndog\nsat\non\nmat\nhouse\nbig\n"
    "small\nred\nblue\nruns\nfast\nslow\ncar\nwater\nfire\ntree\nlives\nin\n##s\nanimal\npet\n";

// hidden 32 with 4 heads: heads of 8, which the fused attention kernel does not take (the GEMM path runs).
std::string bert_config(const std::string& activation, int hidden = 32, int heads = 4) {
  return R"({"model_type": "bert", "vocab_size": 64, "hidden_size": )" + std::to_string(hidden) +
         R"(, "num_hidden_layers": 3, "num_attention_heads": )" + std::to_string(heads) +
         R"(, "intermediate_size": 48, "max_position_embeddings": 64, "hidden_act": ")" + activation +
         R"("})";
}

struct Pair {
  const char* query;
  const char* title;
  const char* text;
};
// Lengths from 6 to the 40-token budget (the last one is truncated), titles present and absent.
const std::vector<Pair> kPairs = {
    {"what is a cat", "cat", "the cat sat on the mat"},
    {"what is a cat", "", "a small pet"},
    {"how fast is a car", "car", "a big red car runs fast on the mat in the house"},
    {"where", "dog", "the dog"},
    {"the dog", "",
     "the cat is a small pet in the house and the dog runs fast on the mat the big red car runs "
     "slow on the water in the tree the fire lives in the small blue house of the animal"},
};

// A model directory saved by the libtorch Ranker, with weights drawn wider than the initialiser's (std 0.02
// would make every score nearly the classifier's bias, and the comparison weak).
struct Model {
  TempDir tmp;
  std::string dir;
  std::unique_ptr<Ranker> ranker;

  // encoder_spread: the std of the encoder layers' weights (the rest keep 0.4).
  explicit Model(const std::string& activation = "gelu", ScoreTransform transform = {},
                 double encoder_spread = 0.4, int hidden = 32, int heads = 4) {
    const std::string vocab = tmp.write("vocab.txt", kVocab);
    const std::string config = tmp.write("config.json", bert_config(activation, hidden, heads));
    RankerCreateOptions options;
    options.max_length = 40;
    ranker = Ranker::create(config, vocab, torch::Device(torch::kCPU), options);
    torch::manual_seed(7);
    {
      torch::NoGradGuard no_grad;
      for (auto& item : ranker->module().named_parameters())
        item.value().normal_(0.0, item.key().find("encoder.") != std::string::npos ? encoder_spread : 0.4);
    }
    ranker->manifest().score = transform;
    dir = (tmp.path() / "model").string();
    ranker->save(dir, nlohmann::json::object());
  }

  std::vector<EncodedPair> pairs() const {
    std::vector<EncodedPair> out;
    for (const Pair& p : kPairs) out.push_back(ranker->encode(p.query, p.title, p.text));
    return out;
  }
};

TEST(BertEngine, ScoresAsTheLibtorchRankerDoes) {
  Model model;
  const auto pairs = model.pairs();
  ASSERT_TRUE(pairs.back().truncated);
  const auto reference = model.ranker->score(pairs, pairs.size());  // one padded batch
  auto engine = BertEngine::load(model.dir);
  const auto scores = engine->score_raw(pairs);
  expect_near_all(scores, reference, 1e-4);
  // The scores differ from pair to pair: the comparison is not between constants.
  const auto [low, high] = std::minmax_element(reference.begin(), reference.end());
  EXPECT_GT(*high - *low, 0.01);
}

// Heads of 16, 32 and 64 dimensions run the fused AVX-512 attention kernel where the CPU has it
// (infer/attention.h); both it and the two-GEMM path must give the Ranker's scores.
TEST(BertEngine, ScoresAsTheLibtorchRankerDoesWithEitherAttentionPath) {
  for (const int heads : {4, 2, 1}) {  // hidden 64: heads of 16, 32, 64
    Model model("gelu", {}, 0.4, 64, heads);
    const auto pairs = model.pairs();
    const auto reference = model.ranker->score(pairs, pairs.size());
    for (const bool fused : {true, false}) {
      BertEngineOptions options;
      options.fused_attention = fused;
      SCOPED_TRACE("heads of " + std::to_string(64 / heads) + (fused ? ", fused kernel" : ", two GEMMs"));
      expect_near_all(BertEngine::load(model.dir, 256, options)->score_raw(pairs), reference, 1e-4);
    }
  }
}

TEST(BertEngine, EncodesAsTheRankerDoes) {
  Model model;
  auto engine = BertEngine::load(model.dir);
  for (const Pair& p : kPairs) {
    EXPECT_EQ(engine->encode(p.query, p.title, p.text).ids,
              model.ranker->encode(p.query, p.title, p.text).ids);
    EXPECT_EQ(engine->encode(p.query, p.title, p.text, 2).ids,
              model.ranker->encode(p.query, p.title, p.text, 2).ids);
  }
}

TEST(BertEngine, GivesTheSameScoresWhateverTheCallsThePairsArePackedInto) {
  Model model;
  const auto pairs = model.pairs();
  auto together = BertEngine::load(model.dir);
  BertEngineOptions one_by_one;
  one_by_one.tokens_per_call = 1;  // every pair alone
  auto alone = BertEngine::load(model.dir, 256, one_by_one);
  expect_near_all(alone->score_raw(pairs), together->score_raw(pairs), 1e-5);
  // And a second call on the same buffers gives the same again.
  expect_near_all(together->score_raw(pairs), alone->score_raw(pairs), 1e-5);
}

// With at least 4 pairs per thread each thread runs its own forward calls on its own buffers; with fewer,
// one call at a time is split row by row across the threads. Both give what one thread gives, in both
// precisions, and a bad pair still surfaces as an Error (not an exception escaping an OpenMP thread).
TEST(BertEngine, GivesTheSameScoresWhenEachThreadRunsItsOwnCalls) {
  Model model;
  std::vector<EncodedPair> pairs;
  for (int copy = 0; copy < 4; ++copy)
    for (const EncodedPair& pair : model.pairs()) pairs.push_back(pair);  // 20 pairs: 10 per thread
  for (const Precision precision : {Precision::kFloat32, Precision::kInt8}) {
    BertEngineOptions one_thread, two_threads;
    one_thread.threads = 1, one_thread.precision = precision;
    two_threads.threads = 2, two_threads.precision = precision;
    two_threads.tokens_per_call = 48;  // 1 to 3 pairs per call
    auto single = BertEngine::load(model.dir, 256, one_thread);
    auto parallel = BertEngine::load(model.dir, 256, two_threads);
    const auto expected = single->score_raw(pairs);
    expect_near_all(parallel->score_raw(pairs), expected, 1e-5);
    // Fewer than 4 pairs per thread: one call at a time across both threads.
    const std::span<const EncodedPair> few(pairs.data(), 7);
    expect_near_all(parallel->score_raw(few), single->score_raw(few), 1e-5);
    if (precision == Precision::kFloat32)
      expect_near_all(expected, model.ranker->score(pairs, pairs.size()), 1e-4);

    std::vector<EncodedPair> broken = pairs;
    broken[13].ids[1] = 64;  // the vocabulary has 64 ids
    EXPECT_THROW(parallel->score_raw(broken), Error);
    expect_near_all(parallel->score_raw(pairs), expected, 1e-5);  // and the engine still works
  }
}

TEST(BertEngine, RunsTheTanhGelu) {
  Model model("gelu_new");
  const auto pairs = model.pairs();
  expect_near_all(BertEngine::load(model.dir)->score_raw(pairs), model.ranker->score(pairs, pairs.size()),
                  1e-4);
}

TEST(BertEngine, AppliesTheManifestsScoreTransform) {
  Model model("gelu", ScoreTransform{ScoreType::kSigmoid, 2.0, -0.5});
  const auto pairs = model.pairs();
  auto engine = BertEngine::load(model.dir);
  const auto raw = engine->score_raw(pairs);
  const auto transformed = engine->score(pairs);
  for (std::size_t i = 0; i < raw.size(); ++i)
    EXPECT_NEAR(transformed[i], 1.0 / (1.0 + std::exp(-(2.0 * raw[i] - 0.5))), 1e-12);
  expect_near_all(transformed, model.ranker->score(pairs, pairs.size()), 1e-4);
}

TEST(BertEngine, FollowsAChangedPairBudget) {
  Model model;
  auto engine = BertEngine::load(model.dir);
  engine->set_max_length(36);  // the least that holds 4 specials and the 32 protected query tokens
  model.ranker->manifest().max_length = 36;
  const Pair& p = kPairs[4];
  EXPECT_EQ(engine->encode(p.query, p.title, p.text).ids.size(), 36u);
  EXPECT_EQ(engine->encode(p.query, p.title, p.text).ids, model.ranker->encode(p.query, p.title, p.text).ids);
  EXPECT_THROW(engine->set_max_length(65), Error);  // max_position_embeddings is 64
}

TEST(BertEngine, RefusesAModelWithoutATrainedRankingHead) {
  Model model;
  // Rewrite the weights without the classifier.
  const auto file = (fs::path(model.dir) / "model.safetensors").string();
  std::vector<std::vector<std::byte>> keep;
  std::vector<TensorData> tensors;
  {
    SafetensorsFile weights(file);
    for (const TensorView& t : weights.tensors()) {
      if (t.name.starts_with("classifier.")) continue;
      keep.emplace_back(t.data.begin(), t.data.end());
      tensors.push_back({t.name, t.dtype, t.shape, keep.back()});
    }
  }
  for (std::size_t i = 0; i < tensors.size(); ++i) tensors[i].data = keep[i];
  write_safetensors(file, tensors);
  try {
    BertEngine::load(model.dir);
    FAIL() << "loaded a model without a classifier";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("classifier.weight"), std::string::npos) << e.what();
  }
}

TEST(BertEngine, RefusesADecoderAndAMissingDirectory) {
  TempDir tmp;
  const auto dir = tmp.path() / "decoder";
  fs::create_directories(dir);
  tmp.write("decoder/config.json",
            R"({"model_type": "llama", "vocab_size": 64, "hidden_size": 16, "intermediate_size": 32,
                "num_hidden_layers": 1, "num_attention_heads": 2})");
  EXPECT_THROW(BertEngine::load(dir.string()), Error);
  EXPECT_THROW(BertEngine::load((tmp.path() / "nowhere").string()), Error);
}

// int8 mode quantizes every dense layer of the encoder: its scores move, by a fraction of a percent of
// their scale. Quantization is per token row, so packing does not change it. (Encoder weights of std 0.1:
// with 0.4 attention is nearly an argmax and this 3-layer model chaotic. Random models also score all pairs
// nearly alike, so whether int8 keeps the ranking is checked on a trained model and real data: see
// tests/cli/test_quantize_cli.sh.)
// Heads of 8 (attention by the GEMM path, float32) and of 32 (the fused kernel, with bf16 products where the
// CPU has AVX512_BF16): int8 stays within 0.2% of the float32 scores either way; 0.3% where the AVX2 kernel
// runs (no VNNI), whose weights have half the levels ([-63, 63]; measured 0.201% on the model of hidden 64).
TEST(BertEngine, Int8ScoresStayCloseToFloat32) {
  for (const int hidden : {32, 64}) {
    Model model("gelu", {}, 0.1, hidden, hidden == 32 ? 4 : 2);
    const auto pairs = model.pairs();
    const auto exact = BertEngine::load(model.dir)->score_raw(pairs);
    BertEngineOptions options;
    options.precision = Precision::kInt8;
    auto int8 = BertEngine::load(model.dir, 256, options);
    const auto scores = int8->score_raw(pairs);
    double largest = 0, scale = 0;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      largest = std::max(largest, std::abs(scores[i] - exact[i]));
      scale = std::max(scale, std::abs(exact[i]));
    }
    EXPECT_GT(scale, 0.1);
    EXPECT_GT(largest, 1e-7);  // int8 did run
    const double bound = avx2_kernel_supports(hidden, hidden) ? 3e-3 : 2e-3;
    EXPECT_LT(largest, bound * scale)
        << "hidden " << hidden << ": largest difference " << largest << ", scale " << scale;
    options.tokens_per_call = 1;
    expect_near_all(BertEngine::load(model.dir, 256, options)->score_raw(pairs), scores, 1e-5);
  }
}

TEST(BertEngine, Int8GivesTheSameScoresOnEitherGemmPath) {
  Model model("gelu", {}, 0.1, 64, 2);
  const auto pairs = model.pairs();
  BertEngineOptions options;
  options.precision = Precision::kInt8;
  options.bf16_attention = false;  // float32 attention on both paths: only the GEMMs differ
  // The AVX2 kernel (CPUs without VNNI) multiplies weights in [-63, 63], not the same integers as oneDNN's
  // path: off on both sides here. Its sums are checked against oneDNN's in tests/test_int8_kernels.cc, its
  // scores against float32 by Int8ScoresStayCloseToFloat32.
  options.avx2_kernel = false;
  const auto kernels = BertEngine::load(model.dir, 256, options)->score_raw(pairs);
  options.vnni_kernel = false, options.fused_attention = false;
  expect_near_all(BertEngine::load(model.dir, 256, options)->score_raw(pairs), kernels, 1e-5);
}

// A request sizes the engine's buffers for its largest forward call, whichever thread runs it
// (bert_engine.h); a later request with no larger call allocates one thing, the vector of scores it returns.
// Both precisions; one thread, and two threads each running its own calls (8 or more pairs) or sharing one
// call at a time (fewer).
TEST(BertEngine, AllocatesOnlyItsResultOnceWarm) {
  if (!testing::allocations_counted()) GTEST_SKIP() << "allocations are not counted in this build";
  Model model("gelu", {}, 0.1, 64, 2);
  std::vector<EncodedPair> pairs;
  for (int copy = 0; copy < 4; ++copy)
    for (const EncodedPair& pair : model.pairs()) pairs.push_back(pair);
  const std::span<const EncodedPair> all(pairs);
  for (const Precision precision : {Precision::kFloat32, Precision::kInt8}) {
    for (const int threads : {1, 2}) {
      BertEngineOptions options;
      options.precision = precision, options.threads = threads, options.tokens_per_call = 64;
      auto engine = BertEngine::load(model.dir, 256, options);
      const auto expected = engine->score_raw(all);
      (void)engine->score_raw(all.first(3));  // with 2 threads: the other way of running calls
      for (const std::size_t count : {pairs.size(), pairs.size() / 2, std::size_t{3}, pairs.size()}) {
        std::vector<double> scores;
        EXPECT_EQ(testing::allocations_during([&] { scores = engine->score_raw(all.first(count)); }), 1)
            << (precision == Precision::kInt8 ? "int8" : "float32") << ", " << threads << " threads, "
            << count << " pairs";
        ASSERT_EQ(scores.size(), count);
        for (std::size_t i = 0; i < count; ++i) EXPECT_NEAR(scores[i], expected[i], 1e-5);
      }
    }
  }
}

}  // namespace
}  // namespace disranker
