// The decoder (model/llama.h): masks, pooling, grouped-query attention, the KV cache, HF names and the
// sampler. Small random models; run with one thread (OMP_NUM_THREADS=1).
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "model/llama.h"

namespace disranker {
namespace {

DecoderConfig tiny_config(std::int64_t kv_heads = 2, bool bias = false, bool tied = false) {
  DecoderConfig c;
  c.model_type = bias ? "qwen2" : "llama";
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.max_position_embeddings = 64;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000.0;
  c.initializer_range = 0.2;  // larger than HF's 0.02 so that every component visibly moves the outputs
  c.tie_word_embeddings = tied;
  c.attention_bias = bias;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  return c;
}

Decoder tiny_model(std::uint64_t seed, const DecoderConfig& config = tiny_config(),
                   DecoderOptions options = {}) {
  torch::manual_seed(seed);
  Decoder model(config, options);
  model->eval();
  return model;
}

torch::Tensor ids(const std::vector<std::int64_t>& values) {
  return torch::tensor(values, torch::kLong).unsqueeze(0);
}

// Right-padded batch of sequences: (input_ids, attention_mask), padding with `pad_id`.
std::pair<torch::Tensor, torch::Tensor> batch(const std::vector<std::vector<std::int64_t>>& seqs,
                                              std::int64_t pad_id = 0) {
  std::size_t t = 0;
  for (const auto& s : seqs) t = std::max(t, s.size());
  auto input = torch::full({static_cast<std::int64_t>(seqs.size()), static_cast<std::int64_t>(t)}, pad_id,
                           torch::kLong);
  auto mask = torch::zeros_like(input);
  for (std::size_t b = 0; b < seqs.size(); ++b) {
    for (std::size_t i = 0; i < seqs[b].size(); ++i) {
      input[static_cast<std::int64_t>(b)][static_cast<std::int64_t>(i)] = seqs[b][i];
      mask[static_cast<std::int64_t>(b)][static_cast<std::int64_t>(i)] = 1;
    }
  }
  return {input, mask};
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

const std::vector<std::vector<std::int64_t>> kSeqs = {
    {1, 5, 9, 13, 2}, {1, 7, 3, 22, 41, 17, 8, 33, 2}, {1, 44, 2}, {1, 10, 11, 12, 13, 14, 2}};

TEST(Llama, ScoreIsTheSameAloneAndInAPaddedBatch) {
  auto model = tiny_model(1);
  torch::NoGradGuard no_grad;
  const auto [input, mask] = batch(kSeqs, /*pad_id=*/0);
  const auto hidden = model->forward(input, mask);
  const auto scores = model->score(hidden, mask);
  ASSERT_EQ(scores.sizes(), torch::IntArrayRef({4}));
  for (std::size_t b = 0; b < kSeqs.size(); ++b) {
    const auto alone_hidden = model->forward(ids(kSeqs[b]));
    const auto alone = model->score(alone_hidden).item<double>();
    EXPECT_NEAR(scores[static_cast<std::int64_t>(b)].item<double>(), alone, 1e-5) << "sequence " << b;
    // Every non-padding hidden state agrees, not just the pooled one.
    const auto n = static_cast<std::int64_t>(kSeqs[b].size());
    EXPECT_LT(max_abs_diff(hidden[static_cast<std::int64_t>(b)].narrow(0, 0, n), alone_hidden[0]), 1e-5);
  }
}

TEST(Llama, PaddingTokenIdsDoNotMatter) {
  auto model = tiny_model(2);
  torch::NoGradGuard no_grad;
  const auto [in0, mask0] = batch(kSeqs, 0);
  const auto [in1, mask1] = batch(kSeqs, 37);
  for (const auto pooling : {Pooling::kLastToken, Pooling::kMean}) {
    model->set_pooling(pooling);
    const auto s0 = model->score(model->forward(in0, mask0), mask0);
    const auto s1 = model->score(model->forward(in1, mask1), mask1);
    EXPECT_LT(max_abs_diff(s0, s1), 1e-6);
  }
}

TEST(Llama, ScoreHeadReadsTheLastNonPaddingToken) {
  auto model = tiny_model(3);
  torch::NoGradGuard no_grad;
  const auto [input, mask] = batch(kSeqs);
  const auto hidden = model->forward(input, mask);
  const auto scores = model->score(hidden, mask);
  const auto w = model->score_head->weight[0];
  for (std::size_t b = 0; b < kSeqs.size(); ++b) {
    const auto last = static_cast<std::int64_t>(kSeqs[b].size()) - 1;
    const auto expected = hidden[static_cast<std::int64_t>(b)][last].dot(w).item<double>();
    EXPECT_NEAR(scores[static_cast<std::int64_t>(b)].item<double>(), expected, 1e-6);
  }
  // Without a mask, the last position.
  const auto plain = model->score(hidden.narrow(0, 1, 1));
  EXPECT_NEAR(plain.item<double>(), hidden[1][-1].dot(w).item<double>(), 1e-6);
}

TEST(Llama, MeanPoolingIgnoresPadding) {
  DecoderOptions options;
  options.pooling = Pooling::kMean;
  auto model = tiny_model(4, tiny_config(), options);
  torch::NoGradGuard no_grad;
  const auto [input, mask] = batch(kSeqs);
  const auto hidden = model->forward(input, mask);
  const auto pooled = model->pool(hidden, mask);
  const auto scores = model->score(hidden, mask);
  for (std::size_t b = 0; b < kSeqs.size(); ++b) {
    const auto alone = model->forward(ids(kSeqs[b]));
    EXPECT_LT(max_abs_diff(pooled[static_cast<std::int64_t>(b)], alone[0].mean(0)), 1e-5);
    EXPECT_NEAR(scores[static_cast<std::int64_t>(b)].item<double>(), model->score(alone).item<double>(),
                1e-5);
  }
}

TEST(Llama, LastTokenPoolingRejectsLeftPaddingAndEmptyRows) {
  auto model = tiny_model(5);
  torch::NoGradGuard no_grad;
  const auto input = torch::tensor({3, 4, 5, 6}, torch::kLong).view({1, 4});
  const auto left = torch::tensor({0, 1, 1, 1}, torch::kLong).view({1, 4});
  const auto hidden = model->forward(input, left);
  EXPECT_THROW(model->score(hidden, left), Error);
  const auto empty = torch::zeros({1, 4}, torch::kLong);
  EXPECT_THROW(model->score(hidden, empty), Error);
  // The forward pass itself survives an all-padding row (no NaN).
  EXPECT_FALSE(model->forward(input, empty).isnan().any().item<bool>());
  EXPECT_THROW(model->set_pooling(Pooling::kCls), Error);
}

TEST(Llama, CausalMaskLaterTokensDoNotChangeEarlierStates) {
  auto model = tiny_model(6);
  torch::NoGradGuard no_grad;
  std::vector<std::int64_t> a = {1, 5, 9, 13, 17, 21, 25, 29};
  auto b = a;
  b[5] = 42;
  const auto ha = model->forward(ids(a));
  const auto hb = model->forward(ids(b));
  EXPECT_LT(max_abs_diff(ha[0].narrow(0, 0, 5), hb[0].narrow(0, 0, 5)), 1e-6);
  for (std::int64_t i = 5; i < 8; ++i) EXPECT_GT(max_abs_diff(ha[0][i], hb[0][i]), 1e-4) << "position " << i;
}

TEST(Llama, GroupedQueryAttentionEqualsExplicitlyRepeatedHeads) {
  // GQA with 4 query heads over 2 kv heads == multi-head attention whose kv head j is GQA's kv head j / 2.
  auto gqa = tiny_model(7, tiny_config(/*kv_heads=*/2, /*bias=*/true));
  auto mha = tiny_model(8, tiny_config(/*kv_heads=*/4, /*bias=*/true));
  torch::NoGradGuard no_grad;
  // Non-zero biases, so that they are checked too.
  for (auto& [name, t] : gqa->named_hf_tensors()) {
    if (name.ends_with(".bias")) t.normal_(0.0, 0.5);
  }
  std::map<std::string, torch::Tensor> converted;
  const auto head_dim = tiny_config().hidden_size / tiny_config().num_attention_heads;
  for (const auto& [name, t] : gqa->named_hf_tensors()) {
    if (name.find("k_proj") != std::string::npos || name.find("v_proj") != std::string::npos) {
      // [2 * D, ...] -> [4 * D, ...]: each kv head's rows twice, in order.
      auto shape = t.sizes().vec();
      auto heads = t.reshape({2, head_dim, -1});
      auto repeated = heads.unsqueeze(1).expand({2, 2, head_dim, heads.size(2)}).reshape({4 * head_dim, -1});
      shape[0] = 4 * head_dim;
      converted[name] = repeated.reshape(shape).clone();
    } else {
      converted[name] = t.clone();
    }
  }
  mha->load_hf_tensors(converted);
  const auto [input, mask] = batch(kSeqs);
  EXPECT_LT(max_abs_diff(gqa->forward(input, mask), mha->forward(input, mask)), 1e-5);
}

TEST(Llama, KvCacheMatchesTheFullForwardPass) {
  auto model = tiny_model(9);
  torch::NoGradGuard no_grad;
  const std::vector<std::int64_t> seq = {1, 7, 3, 22, 41, 17, 8, 33};
  const auto full = model->forward(ids(seq));
  KVCache cache;
  const auto first = model->forward(ids({seq.begin(), seq.begin() + 3}), {}, &cache);
  EXPECT_EQ(cache.length(), 3);
  EXPECT_LT(max_abs_diff(first[0], full[0].narrow(0, 0, 3)), 1e-5);
  for (std::size_t i = 3; i < seq.size(); ++i) {
    const auto step = model->forward(ids({seq[i]}), {}, &cache);
    EXPECT_LT(max_abs_diff(step[0][0], full[0][static_cast<std::int64_t>(i)]), 1e-5) << "position " << i;
  }
  EXPECT_EQ(cache.length(), static_cast<std::int64_t>(seq.size()));
  EXPECT_THROW(model->forward(ids({1}), torch::ones({1, 1}, torch::kLong), &cache), Error);
}

TEST(Llama, GenerationWithAndWithoutCacheAgree) {
  auto model = tiny_model(10);
  GenerateOptions options;
  options.max_new_tokens = 20;
  const auto cached = generate(*model, {1, 4, 5}, options);
  options.use_cache = false;
  const auto uncached = generate(*model, {1, 4, 5}, options);
  EXPECT_EQ(cached, uncached);
  EXPECT_EQ(cached.size(), 20u);
  // Sampling is deterministic for a seed.
  options.sampling.temperature = 1.0f;
  options.sampling.seed = 77;
  options.use_cache = true;
  EXPECT_EQ(generate(*model, {1}, options), generate(*model, {1}, options));
  // Stop tokens end generation before they are emitted; the context length bounds it.
  options.sampling.temperature = 0.0f;
  options.stop_tokens = {cached[5]};
  const auto stopped = generate(*model, {1, 4, 5}, options);
  EXPECT_LE(stopped.size(), 5u);
  options.stop_tokens.clear();
  options.max_new_tokens = 1000;
  EXPECT_EQ(generate(*model, {1, 4, 5}, options).size(), 64u - 3u + 1u);
  std::vector<std::int64_t> seen;
  options.max_new_tokens = 10;
  generate(*model, {1}, options, [&](std::int64_t id) {
    seen.push_back(id);
    return seen.size() < 4;
  });
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_THROW(generate(*model, {}, options), Error);
}

TEST(Llama, HfNamesRoundTrip) {
  auto a = tiny_model(11);
  auto b = tiny_model(12);
  const auto named = a->named_hf_tensors();
  std::set<std::string> names;
  for (const auto& [name, t] : named) names.insert(name);
  const std::set<std::string> expected = {
      "model.embed_tokens.weight",
      "model.layers.0.self_attn.q_proj.weight",
      "model.layers.0.self_attn.k_proj.weight",
      "model.layers.0.self_attn.v_proj.weight",
      "model.layers.0.self_attn.o_proj.weight",
      "model.layers.0.mlp.gate_proj.weight",
      "model.layers.0.mlp.up_proj.weight",
      "model.layers.0.mlp.down_proj.weight",
      "model.layers.0.input_layernorm.weight",
      "model.layers.0.post_attention_layernorm.weight",
      "model.layers.1.self_attn.q_proj.weight",
      "model.layers.1.self_attn.k_proj.weight",
      "model.layers.1.self_attn.v_proj.weight",
      "model.layers.1.self_attn.o_proj.weight",
      "model.layers.1.mlp.gate_proj.weight",
      "model.layers.1.mlp.up_proj.weight",
      "model.layers.1.mlp.down_proj.weight",
      "model.layers.1.input_layernorm.weight",
      "model.layers.1.post_attention_layernorm.weight",
      "model.norm.weight",
      "lm_head.weight",
      "score.weight",
  };
  EXPECT_EQ(names, expected);
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : a->named_hf_tensors()) {
    if (name.ends_with("norm.weight")) t.normal_(1.0, 0.3);  // non-trivial norms too
  }
  const auto [input, mask] = batch(kSeqs);
  EXPECT_GT(max_abs_diff(a->forward(input, mask), b->forward(input, mask)), 1e-3);
  const auto report = b->load_hf_tensors(a->named_hf_tensors());
  EXPECT_TRUE(report.missing.empty());
  EXPECT_TRUE(report.unexpected.empty());
  const auto ha = a->forward(input, mask);
  const auto hb = b->forward(input, mask);
  EXPECT_TRUE(torch::equal(ha, hb));
  EXPECT_TRUE(torch::equal(a->lm_logits(ha), b->lm_logits(hb)));
  EXPECT_TRUE(torch::equal(a->score(ha, mask), b->score(hb, mask)));
  // named_hf_tensors shares storage with the parameters.
  EXPECT_EQ(a->named_hf_tensors()[0].second.data_ptr(), a->model->embed_tokens->weight.data_ptr());
}

TEST(Llama, TiedEmbeddingsHaveNoLmHeadTensor) {
  auto model = tiny_model(13, tiny_config(2, false, /*tied=*/true));
  for (const auto& [name, t] : model->named_hf_tensors()) EXPECT_NE(name, "lm_head.weight");
  torch::NoGradGuard no_grad;
  const auto hidden = model->forward(ids({1, 2, 3}));
  const auto logits = model->lm_logits(hidden);
  EXPECT_EQ(logits.sizes(), torch::IntArrayRef({1, 3, 50}));
  EXPECT_LT(max_abs_diff(logits, torch::matmul(hidden, model->model->embed_tokens->weight.t())), 1e-6);
  // A tied checkpoint may carry an identical lm_head.weight, not a different one.
  auto tensors = model->named_hf_tensors();
  std::map<std::string, torch::Tensor> with_copy(tensors.begin(), tensors.end());
  with_copy["lm_head.weight"] = model->model->embed_tokens->weight.clone();
  EXPECT_NO_THROW(model->load_hf_tensors(with_copy));
  with_copy["lm_head.weight"] = with_copy["lm_head.weight"] + 1.0;
  EXPECT_THROW(model->load_hf_tensors(with_copy), Error);
}

TEST(Llama, Qwen2BiasesPresentOrAbsent) {
  for (const bool bias : {false, true}) {
    auto model = tiny_model(14, tiny_config(2, bias));
    std::set<std::string> names;
    for (const auto& [name, t] : model->named_hf_tensors()) names.insert(name);
    for (const char* proj : {"q_proj", "k_proj", "v_proj"}) {
      EXPECT_EQ(names.contains(std::string("model.layers.0.self_attn.") + proj + ".bias"), bias) << proj;
    }
    EXPECT_FALSE(names.contains("model.layers.0.self_attn.o_proj.bias"));
    EXPECT_FALSE(names.contains("model.layers.0.mlp.up_proj.bias"));
    if (bias) {
      // The biases take part in the computation.
      torch::NoGradGuard no_grad;
      const auto before = model->forward(ids({1, 2, 3, 4}));
      model->model->layers->ptr<DecoderLayerImpl>(0)->self_attn->k_proj->bias.fill_(0.7);
      EXPECT_GT(max_abs_diff(before, model->forward(ids({1, 2, 3, 4}))), 1e-4);
    }
  }
  auto c = tiny_config();
  c.attention_output_bias = true;
  c.mlp_bias = true;
  auto model = tiny_model(15, c);
  std::set<std::string> names;
  for (const auto& [name, t] : model->named_hf_tensors()) names.insert(name);
  EXPECT_TRUE(names.contains("model.layers.1.self_attn.o_proj.bias"));
  EXPECT_TRUE(names.contains("model.layers.1.mlp.down_proj.bias"));
}

TEST(Llama, LoadHfTensorsReportsProblems) {
  auto model = tiny_model(16);
  const auto good = model->named_hf_tensors();
  std::map<std::string, torch::Tensor> tensors(good.begin(), good.end());
  {  // a shape mismatch names the tensor and the file
    auto bad = tensors;
    bad["model.norm.weight"] = torch::ones({31});
    try {
      model->load_hf_tensors(bad, true, "ckpt.safetensors");
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("model.norm.weight"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("ckpt.safetensors"), std::string::npos) << e.what();
    }
  }
  {  // missing body tensors: an error when strict, a report otherwise
    auto bad = tensors;
    bad.erase("model.layers.1.mlp.up_proj.weight");
    EXPECT_THROW(model->load_hf_tensors(bad), Error);
    const auto report = model->load_hf_tensors(bad, /*strict=*/false);
    EXPECT_EQ(report.missing, std::vector<std::string>{"model.layers.1.mlp.up_proj.weight"});
  }
  {  // missing heads are allowed (a causal-LM checkpoint has no score head) but reported
    auto heads = tensors;
    heads.erase("score.weight");
    const auto report = model->load_hf_tensors(heads);
    EXPECT_EQ(report.missing, std::vector<std::string>{"score.weight"});
  }
  {  // unknown names: an error when strict; rotary inv_freq buffers are ignored
    auto extra = tensors;
    extra["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch::ones({4});
    EXPECT_NO_THROW(model->load_hf_tensors(extra));
    extra["model.layers.0.self_attn.q_norm.weight"] = torch::ones({8});
    EXPECT_THROW(model->load_hf_tensors(extra), Error);
    EXPECT_EQ(model->load_hf_tensors(extra, false).unexpected,
              std::vector<std::string>{"model.layers.0.self_attn.q_norm.weight"});
  }
  {  // integer tensors and duplicate names
    auto bad = tensors;
    bad["model.norm.weight"] = torch::ones({32}, torch::kLong);
    EXPECT_THROW(model->load_hf_tensors(bad), Error);
    auto dup = good;
    dup.push_back(good[0]);
    EXPECT_THROW(model->load_hf_tensors(dup), Error);
  }
  {  // bf16 tensors convert
    std::map<std::string, torch::Tensor> bf16;
    for (const auto& [name, t] : tensors) bf16[name] = t.to(torch::kBFloat16);
    EXPECT_NO_THROW(model->load_hf_tensors(bf16));
  }
}

TEST(Llama, RejectsBadInputsAndConfigs) {
  auto model = tiny_model(17);
  EXPECT_THROW(model->forward(ids({1, 50})), Error);
  EXPECT_THROW(model->forward(ids({-1})), Error);
  EXPECT_THROW(model->forward(torch::ones({3}, torch::kLong)), Error);
  EXPECT_THROW(model->forward(ids({1, 2}), torch::ones({1, 3}, torch::kLong)), Error);
  auto c = tiny_config();
  c.num_key_value_heads = 3;
  EXPECT_THROW(Decoder{c}, Error);
  c = tiny_config();
  c.hidden_size = 36;  // head size 9: odd
  EXPECT_THROW(Decoder{c}, Error);
  c = tiny_config();
  c.hidden_act = "gelu";
  EXPECT_THROW(Decoder{c}, Error);
  DecoderOptions no_heads;
  no_heads.lm_head = false;
  no_heads.score_head = false;
  auto bare = tiny_model(18, tiny_config(), no_heads);
  EXPECT_EQ(bare->named_hf_tensors().size(), 20u);
  const auto h = bare->forward(ids({1, 2}));
  EXPECT_THROW(bare->lm_logits(h), Error);
  EXPECT_THROW(bare->score(h), Error);
}

TEST(Llama, RotaryEmbeddingIsRelative) {
  // <rot(q, m), rot(k, n)> depends on m - n only, and rotation keeps the norm.
  RotaryEmbedding rope(8, 10000.0);
  torch::manual_seed(19);
  const auto q = torch::randn({1, 1, 1, 8});
  const auto k = torch::randn({1, 1, 1, 8});
  const auto at = [&](const torch::Tensor& x, std::int64_t pos) {
    const auto [cos, sin] = rope(torch::tensor({pos}, torch::kLong));
    return apply_rotary(x, cos, sin).flatten();
  };
  EXPECT_NEAR(at(q, 7).norm().item<double>(), q.norm().item<double>(), 1e-5);
  const auto d1 = at(q, 9).dot(at(k, 4)).item<double>();
  const auto d2 = at(q, 25).dot(at(k, 20)).item<double>();
  EXPECT_NEAR(d1, d2, 1e-4);
}

TEST(Llama, SamplerGreedyAndTopP) {
  Sampler greedy({0.0f, 0.9f, 1});
  std::vector<float> logits = {0.1f, 3.0f, -1.0f, 3.0f};
  EXPECT_EQ(greedy.sample(logits), 1);  // the first maximum
  // Top-p 0.5 over probabilities {0.6, 0.3, 0.1}: only the first token is a candidate.
  Sampler topp({1.0f, 0.5f, 123});
  for (int i = 0; i < 20; ++i) {
    std::vector<float> l = {std::log(0.6f), std::log(0.3f), std::log(0.1f)};
    EXPECT_EQ(topp.sample(l), 0);
  }
  // Plain sampling (top_p 1) reaches every token with roughly its probability.
  Sampler plain({1.0f, 1.0f, 5});
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 3000; ++i) {
    std::vector<float> l = {std::log(0.6f), std::log(0.3f), std::log(0.1f)};
    ++counts[static_cast<std::size_t>(plain.sample(l))];
  }
  EXPECT_NEAR(counts[0] / 3000.0, 0.6, 0.05);
  EXPECT_NEAR(counts[1] / 3000.0, 0.3, 0.05);
  EXPECT_NEAR(counts[2] / 3000.0, 0.1, 0.05);
  // random_f32 is in [0, 1).
  Sampler r({1.0f, 0.9f, 0});
  for (int i = 0; i < 1000; ++i) {
    const float x = r.random_f32();
    EXPECT_GE(x, 0.0f);
    EXPECT_LT(x, 1.0f);
  }
}

TEST(Llama, BackwardReachesEveryParameter) {
  auto model = tiny_model(20);
  model->train();
  const auto [input, mask] = batch(kSeqs);
  const auto hidden = model->forward(input, mask);
  const auto loss = model->score(hidden, mask).sum() + model->lm_logits(hidden).logsumexp(-1).mean();
  loss.backward();
  for (const auto& [name, t] : model->named_hf_tensors()) {
    ASSERT_TRUE(t.grad().defined()) << name;
    EXPECT_GT(t.grad().abs().sum().item<double>(), 0.0) << name;
  }
}

}  // namespace
}  // namespace disranker
