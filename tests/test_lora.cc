// LoRA on the decoder (model/lora.h): which parameters train, the adapter path, merge / unmerge, PEFT names.
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "model/llama.h"
#include "model/lora.h"

namespace disranker {
namespace {

DecoderConfig tiny_config() {
  DecoderConfig c;
  c.vocab_size = 40;
  c.hidden_size = 32;
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 32;
  c.rms_norm_eps = 1e-6;
  c.initializer_range = 0.2;
  c.attention_bias = true;
  return c;
}

Decoder tiny_model(std::uint64_t seed) {
  torch::manual_seed(seed);
  Decoder model(tiny_config());
  model->eval();
  return model;
}

std::pair<torch::Tensor, torch::Tensor> batch() {
  const auto input = torch::tensor({1, 5, 9, 13, 2, 0, 0, 1, 7, 3, 22, 17, 8, 2}, torch::kLong).view({2, 7});
  const auto mask = torch::tensor({1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1}, torch::kLong).view({2, 7});
  return {input, mask};
}

// Everything the model computes for the batch: hidden states, logits and scores, flattened.
torch::Tensor outputs(DecoderImpl& model) {
  torch::NoGradGuard no_grad;
  const auto [input, mask] = batch();
  const auto hidden = model.forward(input, mask);
  return torch::cat({hidden.flatten(), model.lm_logits(hidden).flatten(), model.score(hidden, mask)});
}

void randomize_lora_b(torch::nn::Module& root, std::uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (auto& item : root.named_parameters()) {
    if (item.key().find(".lora_B.") != std::string::npos) item.value().normal_(0.0, 0.3);
  }
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

TEST(Lora, OnlyAdapterParametersRequireGrad) {
  auto model = tiny_model(1);
  LoraConfig config;
  config.r = 4;
  config.alpha = 8;
  config.target_modules = {"q_proj", "v_proj"};
  const auto adapted = apply_lora(*model, config);
  EXPECT_EQ(adapted,
            (std::vector<std::string>{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                                      "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"}));
  std::int64_t expected = 0;
  for (const auto& item : model->named_parameters()) {
    const bool lora = item.key().find(".lora_") != std::string::npos;
    EXPECT_EQ(item.value().requires_grad(), lora) << item.key();
    if (lora) expected += item.value().numel();
  }
  // q_proj: A [4, 32], B [32, 4]; v_proj: A [4, 32], B [16, 4]; two layers.
  EXPECT_EQ(expected, 2 * (4 * 32 + 32 * 4 + 4 * 32 + 16 * 4));
  EXPECT_EQ(count_trainable_parameters(*model), expected);

  // A backward pass gives gradients to the adapters and to nothing else.
  model->train();
  const auto [input, mask] = batch();
  model->score(model->forward(input, mask), mask).sum().backward();
  for (const auto& item : model->named_parameters()) {
    if (item.key().find(".lora_B.") != std::string::npos) {
      ASSERT_TRUE(item.value().grad().defined()) << item.key();
      EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0) << item.key();
    } else if (item.key().find(".lora_A.") == std::string::npos) {
      EXPECT_FALSE(item.value().grad().defined()) << item.key();
    }
  }
}

TEST(Lora, ModulesToSaveStayTrainable) {
  auto model = tiny_model(2);
  LoraConfig config;
  config.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  config.modules_to_save = {"score"};
  EXPECT_EQ(apply_lora(*model, config).size(), 14u);
  for (const auto& item : model->named_parameters()) {
    const bool trainable = item.key().find(".lora_") != std::string::npos || item.key() == "score.weight";
    EXPECT_EQ(item.value().requires_grad(), trainable) << item.key();
  }
}

TEST(Lora, FreshAdapterChangesNothing) {
  auto model = tiny_model(3);
  const auto before = outputs(*model);
  LoraConfig config;
  config.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  apply_lora(*model, config);
  EXPECT_TRUE(torch::equal(before, outputs(*model)));
  // A is Kaiming-uniform (non-zero), B is zero.
  const auto& q = model->model->layers->ptr<DecoderLayerImpl>(0)->self_attn->q_proj;
  EXPECT_GT(q->lora_A->weight.abs().sum().item<double>(), 0);
  EXPECT_EQ(q->lora_B->weight.abs().sum().item<double>(), 0);
  EXPECT_DOUBLE_EQ(q->scale(), config.alpha / static_cast<double>(config.r));
}

TEST(Lora, MergedOutputsEqualTheAdapterPath) {
  auto model = tiny_model(4);
  const auto base = outputs(*model);
  std::map<std::string, torch::Tensor> base_weights;
  for (const auto& [name, t] : model->named_hf_tensors()) base_weights[name] = t.clone();

  LoraConfig config;
  config.r = 4;
  config.alpha = 12;
  config.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  apply_lora(*model, config);
  randomize_lora_b(*model, 5);
  const auto adapter = outputs(*model);
  EXPECT_GT(max_abs_diff(adapter, base), 1e-3);  // the adapters do something

  merge_lora(*model);
  const auto merged = outputs(*model);
  EXPECT_LT(max_abs_diff(merged, adapter), 1e-5);
  // W += (alpha / r) B A, on every adapted projection.
  for (const auto& item : model->named_modules()) {
    auto* layer = dynamic_cast<LoraLinearImpl*>(item.value().get());
    if (layer == nullptr) continue;
    EXPECT_TRUE(layer->merged());
    const auto expected = base_weights.at(item.key() + ".weight") +
                          torch::matmul(layer->lora_B->weight, layer->lora_A->weight) * (12.0 / 4.0);
    EXPECT_LT(max_abs_diff(layer->weight, expected), 1e-6) << item.key();
  }
  merge_lora(*model);  // merging twice is a no-op
  EXPECT_LT(max_abs_diff(outputs(*model), adapter), 1e-5);

  // The merged weights, exported under HF names, make a plain model with the adapted outputs.
  auto plain = tiny_model(6);
  plain->load_hf_tensors(model->named_hf_tensors());
  EXPECT_LT(max_abs_diff(outputs(*plain), adapter), 1e-5);

  unmerge_lora(*model);
  EXPECT_LT(max_abs_diff(outputs(*model), adapter), 1e-5);
  for (const auto& [name, t] : model->named_hf_tensors()) {
    EXPECT_LT(max_abs_diff(t, base_weights.at(name)), 1e-6) << name;
  }
}

TEST(Lora, NamesFollowPeft) {
  auto model = tiny_model(7);
  LoraConfig config;
  config.target_modules = {"v_proj"};
  apply_lora(*model, config);
  std::set<std::string> names;
  for (const auto& [name, t] : lora_named_tensors(*model)) names.insert(name);
  EXPECT_EQ(names, (std::set<std::string>{"base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight",
                                          "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight",
                                          "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight",
                                          "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"}));
  // The HF export leaves the adapters out.
  for (const auto& [name, t] : model->named_hf_tensors())
    EXPECT_EQ(name.find("lora"), std::string::npos) << name;
}

TEST(Lora, RejectsBadConfigs) {
  auto model = tiny_model(8);
  LoraConfig config;
  config.target_modules = {"q_proj", "qkv_proj"};
  EXPECT_THROW(apply_lora(*model, config), Error);
  config.target_modules = {"q_proj"};
  config.r = 0;
  EXPECT_THROW(apply_lora(*model, config), Error);
  config.r = 4;
  config.alpha = 0;
  EXPECT_THROW(apply_lora(*model, config), Error);
  config.alpha = 8;
  config.dropout = 1.0;
  EXPECT_THROW(apply_lora(*model, config), Error);
  config.dropout = 0.1;
  config.target_modules.clear();
  EXPECT_THROW(apply_lora(*model, config), Error);
  // Replacing a merged adapter is refused.
  config.target_modules = {"q_proj"};
  apply_lora(*model, config);
  merge_lora(*model);
  EXPECT_THROW(apply_lora(*model, config), Error);
}

TEST(Lora, DropoutOnlyInTraining) {
  auto model = tiny_model(9);
  LoraConfig config;
  config.target_modules = {"q_proj", "v_proj"};
  config.dropout = 0.5;
  apply_lora(*model, config);
  randomize_lora_b(*model, 10);
  model->eval();
  EXPECT_TRUE(torch::equal(outputs(*model), outputs(*model)));
  model->train();
  EXPECT_FALSE(torch::equal(outputs(*model), outputs(*model)));
}

}  // namespace
}  // namespace disranker
