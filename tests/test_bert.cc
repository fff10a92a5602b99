// The BERT student (model/bert.h) and the libtorch ↔ safetensors glue (model/torch_tensors.h).
//
// The numerical reference is tests/reference/bert_reference.py: Hugging Face's BertForSequenceClassification
// / BertForMaskedLM math written independently in plain Python (float64), on a tiny model whose weights both
// sides generate from the same integer hash. Its printed numbers are pasted below (the script needs no torch
// and runs in a second, but the test does not depend on Python being present).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/bert.h"
#include "model/hf_config.h"
#include "model/safetensors.h"
#include "model/torch_tensors.h"
#include "test_util.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// ---- Expected values from tests/reference/bert_reference.py
// ------------------------------------------------------

// scores of the two rows
constexpr float kScores[2] = {0.204475356f, 0.0574499239f};
// row 0, position 0 after embeddings + LayerNorm
constexpr float kEmbeddingsRow0Pos0[8] = {1.01219126f,  -0.185092137f, -1.52926992f,  -0.161972653f,
                                          -0.45560403f, 1.56346228f,   -0.530823121f, -0.0141073233f};
// row 0, position 3 after layer 0
constexpr float kLayer0Row0Pos3[8] = {1.15239829f,   0.0174611022f, 0.158460246f, -1.96912051f,
                                      -0.638561137f, -0.543011877f, -1.05599701f, 1.21286149f};
// row 1, [CLS] after the last layer
constexpr float kLastRow1Cls[8] = {1.82052912f, 0.681957388f, -0.946683764f, -0.21383066f,
                                   -1.2464279f, 1.37086739f,  -1.431368f,    -0.647980069f};
// row 1 pooled output
constexpr float kPooledRow1[8] = {-0.378752502f, -0.61345257f, -0.600321729f, 0.0544299963f,
                                  0.477911546f,  0.420089373f, 0.632038082f,  0.858134328f};
// MLM logits of row 0, position 2
constexpr float kMlmRow0Pos2[20] = {1.91591276f,   -0.403524015f, -0.512114123f, 0.578550575f,  0.451035159f,
                                    -0.365221115f, -0.894524488f, -1.66295596f,  -0.779644719f, 0.136192348f,
                                    1.57785483f,   -0.98238284f,  0.477285411f,  -0.529395054f, 1.15221252f,
                                    -0.216961994f, -0.552502494f, -0.576312967f, 0.427282321f,  0.28761498f};
// row 1 with every token type 0
constexpr float kScoreRow1AllType0 = 0.0905703859f;

// ---- The tiny reference model
// --------------------------------------------------------------------------------------

BertConfig tiny_config() {
  BertConfig c;
  c.vocab_size = 20;
  c.hidden_size = 8;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.intermediate_size = 16;
  c.max_position_embeddings = 16;
  c.type_vocab_size = 2;
  c.layer_norm_eps = 1e-12;
  c.num_labels = 1;
  c.pad_token_id = 0;
  return c;
}

// The script's tensor_specs(): every tensor of the tiny model with both heads, in the generator's order.
std::vector<std::pair<std::string, std::vector<std::int64_t>>> tiny_specs() {
  const std::int64_t v = 20, h = 8, inter = 16, pos = 16, types = 2;
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> specs = {
      {"bert.embeddings.word_embeddings.weight", {v, h}},
      {"bert.embeddings.position_embeddings.weight", {pos, h}},
      {"bert.embeddings.token_type_embeddings.weight", {types, h}},
      {"bert.embeddings.LayerNorm.weight", {h}},
      {"bert.embeddings.LayerNorm.bias", {h}},
  };
  for (int i = 0; i < 2; ++i) {
    const std::string p = "bert.encoder.layer." + std::to_string(i) + ".";
    for (const char* m :
         {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
      specs.push_back({p + m + ".weight", {h, h}});
      specs.push_back({p + m + ".bias", {h}});
    }
    specs.push_back({p + "attention.output.LayerNorm.weight", {h}});
    specs.push_back({p + "attention.output.LayerNorm.bias", {h}});
    specs.push_back({p + "intermediate.dense.weight", {inter, h}});
    specs.push_back({p + "intermediate.dense.bias", {inter}});
    specs.push_back({p + "output.dense.weight", {h, inter}});
    specs.push_back({p + "output.dense.bias", {h}});
    specs.push_back({p + "output.LayerNorm.weight", {h}});
    specs.push_back({p + "output.LayerNorm.bias", {h}});
  }
  specs.push_back({"bert.pooler.dense.weight", {h, h}});
  specs.push_back({"bert.pooler.dense.bias", {h}});
  specs.push_back({"classifier.weight", {1, h}});
  specs.push_back({"classifier.bias", {1}});
  specs.push_back({"cls.predictions.bias", {v}});
  specs.push_back({"cls.predictions.transform.dense.weight", {h, h}});
  specs.push_back({"cls.predictions.transform.dense.bias", {h}});
  specs.push_back({"cls.predictions.transform.LayerNorm.weight", {h}});
  specs.push_back({"cls.predictions.transform.LayerNorm.bias", {h}});
  return specs;
}

std::uint32_t mix32(std::uint32_t x) {
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  x ^= x >> 16;
  return x;
}

// The script's generate(): base + amp * u, u in [-1, 1) from a hash of (tensor index, element index).
std::map<std::string, torch::Tensor> tiny_weights() {
  std::map<std::string, torch::Tensor> out;
  const auto specs = tiny_specs();
  for (std::size_t t = 0; t < specs.size(); ++t) {
    const auto& [name, shape] = specs[t];
    const bool ln_weight = name.ends_with("LayerNorm.weight");
    const double base = ln_weight ? 1.0 : 0.0, amp = ln_weight ? 0.2 : 0.5;
    auto tensor = torch::empty(shape, torch::kFloat);
    auto* data = tensor.data_ptr<float>();
    for (std::int64_t j = 0; j < tensor.numel(); ++j) {
      const auto key = static_cast<std::uint32_t>(static_cast<std::uint64_t>(t) * 1000003u +
                                                  static_cast<std::uint64_t>(j));
      data[j] = static_cast<float>(base + amp * (mix32(key) / 4294967296.0 * 2.0 - 1.0));
    }
    out.emplace(name, tensor);
  }
  return out;
}

BertRanker tiny_reference_model() {
  BertRanker model(tiny_config(), BertHeads{.ranking = true, .mlm = true});
  load_state(*model, tiny_weights());
  model->eval();
  return model;
}

// The script's batch: row 1 is right-padded with pad id 0.
struct TinyBatch {
  torch::Tensor ids = torch::tensor({2, 5, 7, 3, 9, 11, 3, 2, 6, 3, 8, 3, 0, 0}, torch::kLong).view({2, 7});
  torch::Tensor types = torch::tensor({0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0}, torch::kLong).view({2, 7});
  torch::Tensor mask = torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, torch::kLong).view({2, 7});
};

void expect_near_values(const torch::Tensor& actual, const float* expected, std::int64_t n, double tolerance,
                        const std::string& what) {
  ASSERT_EQ(actual.numel(), n) << what;
  const auto a = actual.contiguous();
  for (std::int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(a.data_ptr<float>()[i], expected[i], tolerance) << what << " element " << i;
  }
}

// A randomly initialised model of a more realistic shape for the invariance tests.
BertConfig small_config() {
  BertConfig c;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 64;
  c.max_position_embeddings = 32;
  c.initializer_range = 0.2;  // larger than BERT's 0.02 so that attention is far from uniform
  return c;
}

template <typename F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no disranker::Error thrown)";
}

std::vector<std::pair<std::string, torch::Tensor>> without(
    std::vector<std::pair<std::string, torch::Tensor>> state, const std::string& name) {
  std::erase_if(state, [&](const auto& item) { return item.first == name; });
  return state;
}

// ---- Forward: the reference
// ---------------------------------------------------------------------------------------

TEST(BertReference, ParameterNamesAreTransformersNames) {
  BertRanker model(tiny_config(), BertHeads{.ranking = true, .mlm = true});
  std::vector<std::string> names, expected;
  for (const auto& [name, tensor] : named_state(*model)) names.push_back(name);
  for (const auto& [name, shape] : tiny_specs()) expected.push_back(name);
  EXPECT_EQ(names, expected);
}

TEST(BertReference, ScoresMatchTheIndependentReferenceImplementation) {
  auto model = tiny_reference_model();
  TinyBatch b;
  torch::NoGradGuard no_grad;
  const auto scores = model->forward(b.ids, b.types, b.mask);
  ASSERT_EQ(scores.sizes(), torch::IntArrayRef({2}));
  expect_near_values(scores, kScores, 2, 1e-5, "scores");
}

TEST(BertReference, HiddenStatesPoolerAndMlmLogitsMatchTheReference) {
  auto model = tiny_reference_model();
  TinyBatch b;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> states;
  const auto last = model->encode(b.ids, b.types, b.mask, &states);
  ASSERT_EQ(states.size(), 3u);  // embeddings + 2 layers
  EXPECT_TRUE(torch::equal(states.back(), last));
  expect_near_values(states[0][0][0], kEmbeddingsRow0Pos0, 8, 1e-5, "embeddings + LayerNorm");
  expect_near_values(states[1][0][3], kLayer0Row0Pos3, 8, 1e-5, "layer 0");
  expect_near_values(last[1][0], kLastRow1Cls, 8, 1e-5, "last layer [CLS] of the padded row");
  expect_near_values(model->bert->pool(last)[1], kPooledRow1, 8, 1e-5, "pooler");
  expect_near_values(model->mlm_logits(last[0][2]), kMlmRow0Pos2, 20, 1e-5, "MLM logits");
}

TEST(BertReference, TokenTypeIdsChangeTheScore) {
  auto model = tiny_reference_model();
  TinyBatch b;
  torch::NoGradGuard no_grad;
  const auto row_ids = b.ids.slice(0, 1, 2), row_mask = b.mask.slice(0, 1, 2);
  const float with_types = model->forward(row_ids, b.types.slice(0, 1, 2), row_mask).item<float>();
  const float all_zero = model->forward(row_ids, torch::zeros_like(row_ids), row_mask).item<float>();
  EXPECT_NEAR(with_types, kScores[1], 1e-5);
  EXPECT_NEAR(all_zero, kScoreRow1AllType0, 1e-5);
  EXPECT_GT(std::abs(with_types - all_zero), 1e-3);
  // Undefined token types mean all 0, as in transformers.
  EXPECT_NEAR(model->forward(row_ids, {}, row_mask).item<float>(), kScoreRow1AllType0, 1e-5);
}

// ---- Forward: hand-computed values
// -------------------------------------------------------------------------------

std::vector<double> layer_norm(const std::vector<double>& x) {
  double mean = 0, var = 0;
  for (double v : x) mean += v / static_cast<double>(x.size());
  for (double v : x) var += (v - mean) * (v - mean) / static_cast<double>(x.size());
  std::vector<double> out;
  for (double v : x) out.push_back((v - mean) / std::sqrt(var + 1e-12));
  return out;
}

// One layer, one head, hidden 4: embeddings chosen by hand, a zero query (so every real token gets the same
// attention weight), identity value and attention output projections, a zero feed-forward output.
BertRanker hand_model() {
  BertConfig c;
  c.vocab_size = 4;
  c.hidden_size = 4;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 1;
  c.intermediate_size = 4;
  c.max_position_embeddings = 4;
  BertRanker model(c);
  torch::NoGradGuard no_grad;
  auto& bert = *model->bert;
  bert.word_embeddings->weight.copy_(torch::tensor({0.f, 0.f, 0.f, 0.f, 1.f, 2.f, 3.f, 4.f,  //
                                                    4.f, 0.f, 1.f, 0.f, 0.f, 0.f, 0.f, 0.f})
                                         .view({4, 4}));
  bert.position_embeddings->weight.zero_();
  bert.position_embeddings->weight[1].copy_(torch::tensor({0.f, 0.f, 0.f, 4.f}));
  bert.token_type_embeddings->weight.zero_();
  auto layer = bert.layers[0]->as<BertLayerImpl>();
  layer->query->weight.zero_();
  layer->query->bias.zero_();
  layer->key->weight.normal_();  // irrelevant: the query is zero
  layer->value->weight.copy_(torch::eye(4));
  layer->value->bias.zero_();
  layer->attention_output->weight.copy_(torch::eye(4));
  layer->attention_output->bias.zero_();
  layer->output->weight.zero_();
  layer->output->bias.zero_();
  model->eval();
  return model;
}

TEST(BertHandComputed, EmbeddingsAreSummedThenLayerNormalised) {
  auto model = hand_model();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> states;
  model->encode(torch::tensor({{1, 2}}, torch::kLong), {}, {}, &states);
  // Position 0: word 1 = [1, 2, 3, 4]: mean 2.5, variance 1.25.
  const double s = std::sqrt(1.25);
  const float pos0[4] = {static_cast<float>(-1.5 / s), static_cast<float>(-0.5 / s),
                         static_cast<float>(0.5 / s), static_cast<float>(1.5 / s)};
  expect_near_values(states[0][0][0], pos0, 4, 1e-6, "position 0");
  // Position 1: word 2 [4, 0, 1, 0] + position 1 [0, 0, 0, 4] = [4, 0, 1, 4]: mean 2.25, variance 3.1875.
  const double s1 = std::sqrt(3.1875);
  const float pos1[4] = {static_cast<float>(1.75 / s1), static_cast<float>(-2.25 / s1),
                         static_cast<float>(-1.25 / s1), static_cast<float>(1.75 / s1)};
  expect_near_values(states[0][0][1], pos1, 4, 1e-6, "position 1");
}

TEST(BertHandComputed, AttentionAveragesTheRealTokensOnlyWithAZeroQuery) {
  auto model = hand_model();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> states;
  // Both tokens real: uniform attention, so position 0 becomes LN(h0 + (h0 + h1) / 2) (the feed-forward adds
  // 0, and LayerNorm of a LayerNorm output is itself).
  model->encode(torch::tensor({{1, 2}}, torch::kLong), {}, torch::tensor({{1, 1}}, torch::kLong), &states);
  const auto h = states[0][0].to(torch::kDouble);
  std::vector<double> mixed;
  for (int d = 0; d < 4; ++d) {
    const double h0 = h[0][d].item<double>(), h1 = h[1][d].item<double>();
    mixed.push_back(h0 + (h0 + h1) / 2.0);
  }
  const auto expected = layer_norm(mixed);
  for (int d = 0; d < 4; ++d)
    EXPECT_NEAR(states[1][0][0][d].item<float>(), expected[static_cast<std::size_t>(d)], 1e-5);
  // Token 1 masked: position 0 attends only to itself, LN(h0 + h0) = h0.
  model->encode(torch::tensor({{1, 2}}, torch::kLong), {}, torch::tensor({{1, 0}}, torch::kLong), &states);
  EXPECT_TRUE(torch::allclose(states[1][0][0], states[0][0][0], 1e-5, 1e-5));
}

// ---- Forward: masking and batching
// ---------------------------------------------------------------------------------

TEST(BertAttentionMask, PaddingPositionsDoNotChangeTheClsOutput) {
  torch::manual_seed(7);
  BertRanker model(small_config());
  model->eval();
  torch::NoGradGuard no_grad;
  auto ids = torch::randint(1, 50, {3, 10}, torch::kLong);
  auto types = torch::randint(0, 2, {3, 10}, torch::kLong);
  auto mask = torch::ones({3, 10}, torch::kLong);
  mask.slice(1, 6).zero_();  // positions 6..9 are padding
  const auto before = model->encode(ids, types, mask);
  // Different ids and token types at the padded positions: the real positions must not notice.
  auto ids2 = ids.clone(), types2 = types.clone();
  ids2.slice(1, 6).random_(1, 50);
  types2.slice(1, 6).copy_(1 - types2.slice(1, 6));
  const auto after = model->encode(ids2, types2, mask);
  EXPECT_TRUE(torch::allclose(before.slice(1, 0, 6), after.slice(1, 0, 6), 0.0, 1e-6));
  EXPECT_TRUE(torch::allclose(model->score_hidden(before), model->score_hidden(after), 0.0, 1e-6));
}

TEST(BertAttentionMask, APairScoresTheSameAloneAndInAPaddedBatch) {
  torch::manual_seed(11);
  BertRanker model(small_config());
  model->eval();
  torch::NoGradGuard no_grad;
  const std::vector<std::int64_t> lengths = {5, 12, 1, 9, 12, 3};
  const std::int64_t max_len = 12;
  auto ids = torch::zeros({6, max_len}, torch::kLong);  // pad id 0
  auto types = torch::zeros({6, max_len}, torch::kLong);
  auto mask = torch::zeros({6, max_len}, torch::kLong);
  for (std::int64_t i = 0; i < 6; ++i) {
    const auto n = lengths[static_cast<std::size_t>(i)];
    ids[i].slice(0, 0, n).random_(1, 50);
    types[i].slice(0, n / 2, n).fill_(1);
    mask[i].slice(0, 0, n).fill_(1);
  }
  const auto batched = model->forward(ids, types, mask);
  for (std::int64_t i = 0; i < 6; ++i) {
    const auto n = lengths[static_cast<std::size_t>(i)];
    const auto alone =
        model->forward(ids[i].slice(0, 0, n).unsqueeze(0), types[i].slice(0, 0, n).unsqueeze(0),
                       mask[i].slice(0, 0, n).unsqueeze(0));
    EXPECT_NEAR(batched[i].item<float>(), alone.item<float>(), 1e-5) << "row " << i;
  }
}

TEST(BertForward, DropoutIsActiveInTrainingAndOffInEval) {
  torch::manual_seed(3);
  auto config = small_config();
  config.hidden_dropout_prob = 0.3;
  config.attention_probs_dropout_prob = 0.3;
  BertRanker model(config);
  torch::NoGradGuard no_grad;
  const auto ids = torch::randint(1, 50, {4, 8}, torch::kLong);
  model->train();
  EXPECT_FALSE(torch::equal(model->forward(ids), model->forward(ids)));
  model->eval();
  EXPECT_TRUE(torch::equal(model->forward(ids), model->forward(ids)));
}

TEST(BertForward, BadInputsAreClearErrors) {
  torch::manual_seed(1);
  BertRanker model(small_config());
  torch::NoGradGuard no_grad;
  EXPECT_NE(error_message([&] {
              model->forward(torch::randint(1, 50, {1, 33}, torch::kLong));
            }).find("exceeds max_position_embeddings 32"),
            std::string::npos);
  EXPECT_NE(error_message([&] {
              model->forward(torch::tensor({{1, 50}}, torch::kLong));
            }).find("vocab_size"),
            std::string::npos);
  EXPECT_NE(error_message([&] {
              model->forward(torch::tensor({{1, 2}}, torch::kLong), torch::tensor({{0, 2}}, torch::kLong));
            }).find("type_vocab_size"),
            std::string::npos);
  EXPECT_NE(error_message([&] {
              model->forward(torch::tensor({1, 2}, torch::kLong));
            }).find("[batch, length]"),
            std::string::npos);
  EXPECT_NE(error_message([&] {
              model->mlm_logits(torch::zeros({2, 32}));
            }).find("no MLM head"),
            std::string::npos);
  auto bad = small_config();
  bad.num_attention_heads = 5;
  EXPECT_NE(error_message([&] { BertRanker m(bad); }).find("num_attention_heads"), std::string::npos);
  bad = small_config();
  bad.hidden_act = "mish";
  EXPECT_NE(error_message([&] { BertRanker m(bad); }).find("hidden_act"), std::string::npos);
}

TEST(BertTraining, ThePaddingTokenEmbeddingGetsNoGradientAndTheMlmDecoderIsTied) {
  torch::manual_seed(5);
  BertRanker model(small_config(), BertHeads{.ranking = true, .mlm = true});
  model->train();
  const auto ids = torch::tensor({{2, 7, 0, 0}}, torch::kLong);
  const auto mask = torch::tensor({{1, 1, 0, 0}}, torch::kLong);
  model->forward(ids, {}, mask).sum().backward();
  const auto& weight = model->bert->word_embeddings->weight;
  // The padding row gets no gradient, as nn.Embedding(padding_idx=pad_token_id) in transformers.
  EXPECT_EQ(weight.grad()[0].abs().sum().item<float>(), 0.0f);
  EXPECT_GT(weight.grad()[7].abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(weight.grad()[30].abs().sum().item<float>(), 0.0f);  // not in the input
  // The MLM decoder is the embedding matrix itself: every row gets gradient through the logits.
  model->zero_grad();
  model->mlm_logits(model->encode(ids, {}, mask)).sum().backward();
  EXPECT_GT(weight.grad()[30].abs().sum().item<float>(), 0.0f);
  for (const auto& [name, t] : named_state(*model))
    EXPECT_EQ(name.find("decoder"), std::string::npos) << name;
}

// ---- Checkpoints
// ---------------------------------------------------------------------------------------------------

void expect_same_parameters(BertRankerImpl& a, BertRankerImpl& b) {
  const auto sa = named_state(a), sb = named_state(b);
  ASSERT_EQ(sa.size(), sb.size());
  for (std::size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].first, sb[i].first);
    EXPECT_TRUE(torch::equal(sa[i].second, sb[i].second)) << sa[i].first;
  }
}

TEST(BertCheckpoint, SaveThenLoadIsBitIdenticalInParametersAndOutputs) {
  TempDir tmp;
  torch::manual_seed(21);
  BertRanker model(small_config(), BertHeads{.ranking = true, .mlm = true});
  model->eval();
  const auto vocab = tmp.write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n");
  RankerManifest manifest;
  manifest.role = RankerRole::kStudent;
  manifest.pooling = Pooling::kCls;
  manifest.max_length = 32;
  const auto dir = (tmp.path() / "student").string();
  save_bert(dir, *model, {vocab}, manifest);

  auto loaded = load_bert(dir);
  EXPECT_TRUE(loaded.model->heads().ranking);
  EXPECT_TRUE(loaded.model->heads().mlm);
  EXPECT_EQ(loaded.model->config(), model->config());
  expect_same_parameters(*model, *loaded.model);
  ASSERT_TRUE(loaded.manifest.has_value());
  EXPECT_EQ(*loaded.manifest, manifest);
  EXPECT_TRUE(loaded.report.missing.empty());
  EXPECT_TRUE(loaded.report.unexpected.empty());
  EXPECT_FALSE(loaded.model->is_training());

  torch::NoGradGuard no_grad;
  const auto ids = torch::randint(1, 50, {3, 9}, torch::kLong);
  EXPECT_TRUE(torch::equal(model->forward(ids), loaded.model->forward(ids)));
  EXPECT_TRUE(torch::equal(model->mlm_logits(model->encode(ids)),
                           loaded.model->mlm_logits(loaded.model->encode(ids))));
  EXPECT_TRUE(fs::exists(fs::path(dir) / "vocab.txt"));
  // The directory holds exactly what was asked for: no temporary leftovers beside it.
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(tmp.path())) entries.push_back(e.path().filename().string());
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::string>{"student", "vocab.txt"}));
}

TEST(BertCheckpoint, TheFileUsesTransformersNamesAndTheTiedDecoderIsNotStored) {
  TempDir tmp;
  BertRanker model(tiny_config(), BertHeads{.ranking = true, .mlm = true});
  const auto dir = (tmp.path() / "m").string();
  save_bert(dir, *model);
  SafetensorsFile file((fs::path(dir) / "model.safetensors").string());
  std::vector<std::string> expected;
  for (const auto& [name, shape] : tiny_specs()) expected.push_back(name);
  std::sort(expected.begin(), expected.end());
  auto names = file.names();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, expected);
  EXPECT_EQ(file.metadata().at("format"), "pt");  // transformers refuses safetensors files without it
  EXPECT_EQ(read_model_type((fs::path(dir) / "config.json").string()), "bert");
  EXPECT_EQ(read_bert_config((fs::path(dir) / "config.json").string()), tiny_config());
}

TEST(BertCheckpoint, TheReferenceWeightsLoadFromAFileAndGiveTheReferenceScores) {
  TempDir tmp;
  const auto dir = (tmp.path() / "ref").string();
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [name, t] : tiny_weights()) tensors.emplace_back(name, t);
  save_hf_model_dir(dir, bert_config_to_json(tiny_config()), tensors);
  auto loaded = load_bert(dir);
  TinyBatch b;
  torch::NoGradGuard no_grad;
  expect_near_values(loaded.model->forward(b.ids, b.types, b.mask), kScores, 2, 1e-5, "scores");
}

TEST(BertCheckpoint, OldLayerNormGammaBetaNamesLoad) {
  TempDir tmp;
  torch::manual_seed(4);
  BertRanker model(small_config());
  model->eval();
  std::vector<std::pair<std::string, torch::Tensor>> renamed;
  for (auto [name, t] : named_state(*model)) {
    if (name.ends_with("LayerNorm.weight")) name = name.substr(0, name.size() - 6) + "gamma";
    if (name.ends_with("LayerNorm.bias")) name = name.substr(0, name.size() - 4) + "beta";
    renamed.emplace_back(name, t);
  }
  ASSERT_EQ(renamed[3].first, "bert.embeddings.LayerNorm.gamma");
  const auto dir = (tmp.path() / "old").string();
  save_hf_model_dir(dir, bert_config_to_json(small_config()), renamed);
  auto loaded = load_bert(dir);
  expect_same_parameters(*model, *loaded.model);
}

TEST(BertCheckpoint, ABareBertModelCheckpointWithoutThePrefixLoads) {
  TempDir tmp;
  torch::manual_seed(8);
  BertRanker model(small_config());
  std::vector<std::pair<std::string, torch::Tensor>> bare;
  for (const auto& [name, t] : named_state(*model)) {
    if (name.starts_with("bert."))
      bare.emplace_back(name.substr(5), t);
    else
      bare.emplace_back(name, t);
  }
  bare.emplace_back("embeddings.position_ids", torch::arange(32).unsqueeze(0));  // old transformers buffer
  const auto dir = (tmp.path() / "bare").string();
  save_hf_model_dir(dir, bert_config_to_json(small_config()), bare);
  auto loaded = load_bert(dir);
  expect_same_parameters(*model, *loaded.model);
}

TEST(BertCheckpoint, AMissingTensorIsAnErrorNamingIt) {
  TempDir tmp;
  BertRanker model(tiny_config());
  const auto dir = (tmp.path() / "m").string();
  save_hf_model_dir(dir, bert_config_to_json(tiny_config()),
                    without(named_state(*model), "bert.encoder.layer.1.output.dense.bias"));
  const auto message = error_message([&] { load_bert(dir); });
  EXPECT_NE(message.find("bert.encoder.layer.1.output.dense.bias"), std::string::npos) << message;
  EXPECT_NE(message.find("missing"), std::string::npos) << message;
  EXPECT_NE(message.find("model.safetensors"), std::string::npos) << message;
}

TEST(BertCheckpoint, AWrongShapeIsAnErrorNamingTheTensorAndBothShapes) {
  TempDir tmp;
  BertRanker model(tiny_config());
  auto state = named_state(*model);
  for (auto& [name, t] : state) {
    if (name == "bert.encoder.layer.0.intermediate.dense.weight") t = torch::zeros({16, 9});
  }
  const auto dir = (tmp.path() / "m").string();
  save_hf_model_dir(dir, bert_config_to_json(tiny_config()), state);
  const auto message = error_message([&] { load_bert(dir); });
  EXPECT_NE(message.find("bert.encoder.layer.0.intermediate.dense.weight"), std::string::npos) << message;
  EXPECT_NE(message.find("[16, 9]"), std::string::npos) << message;
  EXPECT_NE(message.find("[16, 8]"), std::string::npos) << message;
}

TEST(BertCheckpoint, UnexpectedTensorsAreAnErrorUnlessAllowedThenReported) {
  TempDir tmp;
  BertRanker model(tiny_config());
  auto state = named_state(*model);
  state.emplace_back("cls.seq_relationship.weight", torch::zeros({2, 8}));  // BertForPreTraining's NSP head
  const auto dir = (tmp.path() / "m").string();
  save_hf_model_dir(dir, bert_config_to_json(tiny_config()), state);
  const auto message = error_message([&] { load_bert(dir); });
  EXPECT_NE(message.find("cls.seq_relationship.weight"), std::string::npos) << message;
  EXPECT_NE(message.find("unexpected"), std::string::npos) << message;
  BertLoadOptions options;
  options.allow_unexpected = true;
  const auto loaded = load_bert(dir, options);
  EXPECT_EQ(loaded.report.unexpected, std::vector<std::string>{"cls.seq_relationship.weight"});
}

TEST(BertCheckpoint, AnMlmCheckpointStartsARankerOnlyWhenFreshHeadsAreAllowed) {
  TempDir tmp;
  torch::manual_seed(9);
  BertRanker pretrained(small_config(), BertHeads{.ranking = false, .mlm = true});
  const auto dir = (tmp.path() / "mlm").string();
  save_bert(dir, *pretrained);
  // Read as it is: an MLM model.
  auto as_is = load_bert(dir);
  EXPECT_FALSE(as_is.model->heads().ranking);
  EXPECT_TRUE(as_is.model->heads().mlm);
  // As a ranker: the pooler and classifier are missing.
  BertLoadOptions options;
  options.heads = BertHeads{.ranking = true, .mlm = false};
  options.allow_unexpected = true;  // the MLM head
  const auto message = error_message([&] { load_bert(dir, options); });
  EXPECT_NE(message.find("bert.pooler.dense.weight"), std::string::npos) << message;
  options.init_missing_heads = true;
  auto ranker = load_bert(dir, options);
  EXPECT_EQ(ranker.report.missing,
            (std::vector<std::string>{"bert.pooler.dense.weight", "bert.pooler.dense.bias",
                                      "classifier.weight", "classifier.bias"}));
  EXPECT_EQ(ranker.report.unexpected.size(), 5u);  // cls.predictions.*
  EXPECT_TRUE(
      torch::equal(ranker.model->bert->word_embeddings->weight, pretrained->bert->word_embeddings->weight));
  // Fresh heads never excuse a missing encoder tensor.
  const auto dir2 = (tmp.path() / "broken").string();
  save_hf_model_dir(dir2, bert_config_to_json(small_config()),
                    without(named_state(*pretrained), "bert.embeddings.LayerNorm.bias"));
  EXPECT_NE(error_message([&] { load_bert(dir2, options); }).find("bert.embeddings.LayerNorm.bias"),
            std::string::npos);
}

TEST(BertCheckpoint, AShardedCheckpointLoadsBitIdentically) {
  TempDir tmp;
  torch::manual_seed(13);
  BertRanker model(small_config());
  const auto dir = (tmp.path() / "sharded").string();
  SaveHfDirOptions options;
  options.max_shard_bytes = 8192;
  save_bert(dir, *model, {}, std::nullopt, options);
  ASSERT_TRUE(fs::exists(fs::path(dir) / "model.safetensors.index.json"));
  ASSERT_FALSE(fs::exists(fs::path(dir) / "model.safetensors"));
  auto loaded = load_bert(dir);
  expect_same_parameters(*model, *loaded.model);
}

TEST(BertCheckpoint, ABfloat16SaveRecordsItsDtypeAndLoadsRounded) {
  TempDir tmp;
  torch::manual_seed(14);
  BertRanker model(small_config());
  const auto dir = (tmp.path() / "bf16").string();
  SaveHfDirOptions options;
  options.dtype = DType::kBF16;
  save_bert(dir, *model, {}, std::nullopt, options);
  EXPECT_EQ(read_bert_config((fs::path(dir) / "config.json").string()).torch_dtype, "bfloat16");
  SafetensorsFile file((fs::path(dir) / "model.safetensors").string());
  EXPECT_EQ(file.get("classifier.weight").dtype, DType::kBF16);
  auto loaded = load_bert(dir);
  const auto original = model->classifier->weight.detach();
  EXPECT_TRUE(
      torch::equal(loaded.model->classifier->weight, original.to(torch::kBFloat16).to(torch::kFloat)));
}

// ---- Model directories
// ---------------------------------------------------------------------------------------------

TEST(HfDir, AMissingConfigJsonIsAClearError) {
  TempDir tmp;
  BertRanker model(tiny_config());
  const auto dir = (tmp.path() / "m").string();
  save_bert(dir, *model);
  fs::remove(fs::path(dir) / "config.json");
  const auto message = error_message([&] { load_bert(dir); });
  EXPECT_NE(message.find("config.json"), std::string::npos) << message;
  EXPECT_NE(message.find("missing"), std::string::npos) << message;
}

TEST(HfDir, MissingWeightsAndAMissingDirectoryAreClearErrors) {
  TempDir tmp;
  BertRanker model(tiny_config());
  const auto dir = (tmp.path() / "m").string();
  save_bert(dir, *model);
  fs::remove(fs::path(dir) / "model.safetensors");
  EXPECT_NE(error_message([&] { load_bert(dir); }).find("no weights"), std::string::npos);
  std::ofstream(fs::path(dir) / "pytorch_model.bin") << "x";
  EXPECT_NE(error_message([&] { load_bert(dir); }).find("pytorch_model.bin is not supported"),
            std::string::npos);
  EXPECT_NE(error_message([&] { load_bert((tmp.path() / "nowhere").string()); }).find("does not exist"),
            std::string::npos);
}

TEST(HfDir, ACorruptedSafetensorsFileIsAClearError) {
  TempDir tmp;
  BertRanker model(tiny_config());
  const auto dir = (tmp.path() / "m").string();
  save_bert(dir, *model);
  const auto weights = fs::path(dir) / "model.safetensors";
  fs::resize_file(weights, fs::file_size(weights) - 4);  // truncated
  auto message = error_message([&] { load_bert(dir); });
  EXPECT_NE(message.find("model.safetensors"), std::string::npos) << message;
  const std::string garbage("\x10\0\0\0\0\0\0\0{not json at all", 24);  // a 16-byte header that is not JSON
  std::ofstream(weights, std::ios::binary | std::ios::trunc).write(garbage.data(), 24);
  message = error_message([&] { load_bert(dir); });
  EXPECT_NE(message.find("model.safetensors"), std::string::npos) << message;
}

TEST(HfDir, AnInvalidConfigJsonIsAClearError) {
  TempDir tmp;
  BertRanker model(tiny_config());
  const auto dir = (tmp.path() / "m").string();
  save_bert(dir, *model);
  std::ofstream(fs::path(dir) / "config.json", std::ios::trunc) << "{\"model_type\": \"bert\",";
  EXPECT_NE(error_message([&] { load_bert(dir); }).find("config.json"), std::string::npos);
}

TEST(HfDir, SavingReplacesAnExistingModelDirectoryAtomically) {
  TempDir tmp;
  const auto dir = (tmp.path() / "m").string();
  torch::manual_seed(1);
  BertRanker first(tiny_config());
  save_bert(dir, *first, {tmp.write("vocab.txt", "a\n")});
  torch::manual_seed(2);
  BertRanker second(tiny_config());
  save_bert(dir, *second);
  auto loaded = load_bert(dir);
  expect_same_parameters(*second, *loaded.model);
  EXPECT_FALSE(fs::exists(fs::path(dir) / "vocab.txt"));  // the old directory is gone as a whole
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(tmp.path())) entries.push_back(e.path().filename().string());
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::string>{"m", "vocab.txt"}));
}

TEST(HfDir, SavingNeverReplacesSomethingThatIsNotAModelDirectory) {
  TempDir tmp;
  BertRanker model(tiny_config());
  tmp.write("precious.txt", "keep me");
  auto message = error_message([&] { save_bert(tmp.path().string(), *model); });
  EXPECT_NE(message.find("not a model directory"), std::string::npos) << message;
  EXPECT_TRUE(fs::exists(tmp.path() / "precious.txt"));
  const auto file = tmp.write("plain", "x");
  EXPECT_NE(error_message([&] { save_bert(file, *model); }).find("not a directory"), std::string::npos);
  EXPECT_NE(error_message([&] {
              save_bert((tmp.path() / "no" / "such" / "m").string(), *model);
            }).find("does not exist"),
            std::string::npos);
  EXPECT_NE(error_message([&] {
              save_bert((tmp.path() / "m").string(), *model, {(tmp.path() / "gone").string()});
            }).find("tokenizer file"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(tmp.path() / "m"));
  // An empty directory is fine to fill.
  fs::create_directory(tmp.path() / "empty");
  save_bert((tmp.path() / "empty").string(), *model);
  EXPECT_TRUE(fs::exists(tmp.path() / "empty" / "config.json"));
}

// ---- Tensor conversions
// ---------------------------------------------------------------------------------------------

TEST(TorchTensors, EveryFloatAndIntegerDtypeConvertsToFloat32) {
  const std::vector<float> values = {1.5f, -2.0f, 0.0f, 65504.0f};
  std::vector<std::uint16_t> bf16, f16;
  for (float v : values) {
    bf16.push_back(float_to_bf16(v));
    f16.push_back(float_to_f16(v));
  }
  auto view = [](DType dtype, const void* data, std::size_t bytes, std::vector<std::int64_t> shape) {
    return TensorView{"t", dtype, std::move(shape),
                      std::span<const std::byte>(static_cast<const std::byte*>(data), bytes)};
  };
  const auto from_bf16 = to_float_tensor(view(DType::kBF16, bf16.data(), 8, {2, 2}));
  EXPECT_EQ(from_bf16.sizes(), torch::IntArrayRef({2, 2}));
  EXPECT_EQ(from_bf16[0][0].item<float>(), 1.5f);
  EXPECT_EQ(from_bf16[1][1].item<float>(), 65536.0f);  // 65504 rounds to 65536 in bf16
  const auto from_f16 = to_float_tensor(view(DType::kF16, f16.data(), 8, {4}));
  EXPECT_EQ(from_f16[3].item<float>(), 65504.0f);
  const std::vector<double> f64 = {0.1, -3.0};
  EXPECT_EQ(to_float_tensor(view(DType::kF64, f64.data(), 16, {2}))[0].item<float>(), 0.1f);
  const std::vector<std::int64_t> i64 = {-7, 1 << 20};
  EXPECT_EQ(to_float_tensor(view(DType::kI64, i64.data(), 16, {2}))[0].item<float>(), -7.0f);
  const std::uint8_t flags[3] = {0, 1, 2};
  const auto from_bool = to_float_tensor(view(DType::kBool, flags, 3, {3}));
  EXPECT_TRUE(torch::equal(from_bool, torch::tensor({0.f, 1.f, 1.f})));
  const std::uint8_t f8[1] = {0};
  EXPECT_NE(error_message([&] {
              to_float_tensor(view(DType::kF8_E4M3, f8, 1, {1}), "x.safetensors");
            }).find("cannot be converted"),
            std::string::npos);
  // A scalar (shape []) is one element.
  const float one = 1.0f;
  EXPECT_EQ(to_float_tensor(view(DType::kF32, &one, 4, {})).dim(), 0);
}

TEST(TorchTensors, BorrowingAFloat32ViewIsZeroCopy) {
  alignas(16) float data[6] = {1, 2, 3, 4, 5, 6};
  TensorView v{
      "w", DType::kF32, {2, 3}, std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), 24)};
  const auto borrowed = borrow_float_tensor(v);
  EXPECT_EQ(borrowed.data_ptr<float>(), data);
  EXPECT_EQ(borrowed[1][2].item<float>(), 6.0f);
  TensorView unaligned = v;
  unaligned.data = std::span<const std::byte>(reinterpret_cast<const std::byte*>(data) + 1, 20);
  unaligned.shape = {5};
  EXPECT_NE(error_message([&] { borrow_float_tensor(unaligned); }).find("aligned"), std::string::npos);
  TensorView half = v;
  half.dtype = DType::kF16;
  half.shape = {2, 6};
  EXPECT_NE(error_message([&] { borrow_float_tensor(half); }).find("F16"), std::string::npos);
}

TEST(TorchTensors, TensorBytesAreBitExactForFloat32AndRoundForBfloat16) {
  const auto t = torch::tensor({{0.1f, -1e-30f}, {3.0f, std::nanf("")}});
  const auto bytes = to_tensor_bytes("t", t.t());  // non-contiguous input
  EXPECT_EQ(bytes.data.shape, (std::vector<std::int64_t>{2, 2}));
  ASSERT_EQ(bytes.data.data.size(), 16u);
  TensorView back{"t", DType::kF32, bytes.data.shape, bytes.data.data};
  const auto restored = to_float_tensor(back);
  EXPECT_EQ(std::memcmp(restored.data_ptr<float>(), t.t().contiguous().data_ptr<float>(), 16), 0);
  const auto bf = to_tensor_bytes("t", t, DType::kBF16);
  EXPECT_EQ(bf.data.data.size(), 8u);
  TensorView bf_view{"t", DType::kBF16, bf.data.shape, bf.data.data};
  EXPECT_EQ(to_float_tensor(bf_view)[1][0].item<float>(), 3.0f);
  EXPECT_NE(error_message([&] { to_tensor_bytes("t", t, DType::kI32); }).find("cannot save"),
            std::string::npos);
}

// ---- Presets
// -------------------------------------------------------------------------------------------------------

TEST(BertAndDecoderPresets, EveryPresetInConfigsModelsParses) {
  const fs::path dir = fs::path(DISRANKER_SOURCE_DIR) / "configs" / "models";
  struct BertPreset {
    const char* file;
    std::int64_t layers, hidden, heads;
  };
  for (const auto& p :
       {BertPreset{"bert-tiny.json", 2, 128, 2}, BertPreset{"bert-mini.json", 4, 256, 4},
        BertPreset{"minilm-l6.json", 6, 384, 12}, BertPreset{"bert-base.json", 12, 768, 12}}) {
    SCOPED_TRACE(p.file);
    const auto config = read_bert_config((dir / p.file).string());
    EXPECT_EQ(config.num_hidden_layers, p.layers);
    EXPECT_EQ(config.hidden_size, p.hidden);
    EXPECT_EQ(config.num_attention_heads, p.heads);
    EXPECT_EQ(config.intermediate_size, 4 * p.hidden);
    EXPECT_EQ(config.num_labels, 1);
    EXPECT_NO_THROW(validate_bert_config(config, p.file));
  }
  struct DecoderPreset {
    const char* file;
    const char* type;
    std::int64_t layers, hidden, heads, kv_heads;
  };
  for (const auto& p : {DecoderPreset{"decoder-tiny.json", "llama", 2, 64, 4, 2},
                        DecoderPreset{"decoder-mini.json", "llama", 4, 128, 4, 2},
                        DecoderPreset{"decoder-small.json", "llama", 4, 256, 8, 2},
                        DecoderPreset{"qwen2-0.5b.json", "qwen2", 24, 896, 14, 2}}) {
    SCOPED_TRACE(p.file);
    const auto config = read_decoder_config((dir / p.file).string());
    EXPECT_EQ(config.model_type, p.type);
    EXPECT_EQ(config.num_hidden_layers, p.layers);
    EXPECT_EQ(config.hidden_size, p.hidden);
    EXPECT_EQ(config.num_attention_heads, p.heads);
    EXPECT_EQ(config.num_key_value_heads, p.kv_heads);
  }
  const auto qwen = read_decoder_config((dir / "qwen2-0.5b.json").string());
  EXPECT_EQ(qwen.vocab_size, 151936);
  EXPECT_EQ(qwen.intermediate_size, 4864);
  EXPECT_TRUE(qwen.tie_word_embeddings);
  EXPECT_TRUE(qwen.attention_bias);
  EXPECT_EQ(qwen.rope_theta, 1000000.0);
  // Every preset in the folder is one of the above.
  std::size_t count = 0;
  for (const auto& entry : fs::directory_iterator(dir)) count += entry.path().extension() == ".json";
  EXPECT_EQ(count, 8u);
}

TEST(BertAndDecoderPresets, TheTestSizedBertPresetBuildsAModel) {
  auto config =
      read_bert_config((fs::path(DISRANKER_SOURCE_DIR) / "configs" / "models" / "bert-tiny.json").string());
  config.vocab_size = 100;  // keep the test light; the preset's own vocabulary is BERT's 30522
  BertRanker model(config);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto scores = model->forward(torch::randint(1, 100, {2, 16}, torch::kLong));
  EXPECT_EQ(scores.sizes(), torch::IntArrayRef({2}));
  EXPECT_TRUE(torch::isfinite(scores).all().item<bool>());
}

}  // namespace
}  // namespace disranker
