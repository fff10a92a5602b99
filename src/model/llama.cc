#include "model/llama.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "core/error.h"

namespace disranker {
namespace {

std::int64_t i64(auto value) {
  return static_cast<std::int64_t>(value);
}

void require(bool ok, const std::string& source, const std::string& field, const std::string& message) {
  if (!ok) throw Error(source, 0, field, message);
}

bool is_head_name(const std::string& name) {
  return name == "lm_head.weight" || name == "score.weight";
}

bool is_lora_name(const std::string& name) {
  return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

// The causal + padding mask: true where query i (absolute position past + i) may not attend key j.
torch::Tensor blocked_mask(std::int64_t past, std::int64_t t, const torch::Tensor& attention_mask,
                           const torch::Device& device) {
  const auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  const auto q_pos = torch::arange(past, past + t, opts).unsqueeze(1);  // [T, 1]
  const auto k_pos = torch::arange(0, past + t, opts).unsqueeze(0);     // [1, S]
  auto blocked = (k_pos > q_pos).unsqueeze(0);                          // [1, T, S]
  if (attention_mask.defined()) {
    const auto pad = attention_mask.eq(0).unsqueeze(1);  // [B, 1, S]
    blocked = blocked.logical_or(pad);                   // [B, T, S]
  }
  return blocked.unsqueeze(1);  // [B or 1, 1, T, S]
}

}  // namespace

void validate_decoder_config(const DecoderConfig& c, const std::string& source) {
  require(i64(c.vocab_size) > 0, source, "vocab_size", "must be > 0");
  require(i64(c.hidden_size) > 0, source, "hidden_size", "must be > 0");
  require(i64(c.intermediate_size) > 0, source, "intermediate_size", "must be > 0");
  require(i64(c.num_hidden_layers) > 0, source, "num_hidden_layers", "must be > 0");
  require(i64(c.num_attention_heads) > 0, source, "num_attention_heads", "must be > 0");
  require(i64(c.num_key_value_heads) > 0, source, "num_key_value_heads", "must be > 0");
  require(i64(c.hidden_size) % i64(c.num_attention_heads) == 0, source, "num_attention_heads",
          "must divide hidden_size " + std::to_string(i64(c.hidden_size)));
  require((i64(c.hidden_size) / i64(c.num_attention_heads)) % 2 == 0, source, "num_attention_heads",
          "the head size hidden_size / num_attention_heads must be even (rotary embeddings)");
  require(i64(c.num_attention_heads) % i64(c.num_key_value_heads) == 0, source, "num_key_value_heads",
          "must divide num_attention_heads " + std::to_string(i64(c.num_attention_heads)));
  require(i64(c.max_position_embeddings) > 0, source, "max_position_embeddings", "must be > 0");
  require(static_cast<double>(c.rms_norm_eps) > 0, source, "rms_norm_eps", "must be > 0");
  require(static_cast<double>(c.rope_theta) > 0, source, "rope_theta", "must be > 0");
  require(c.hidden_act == "silu" || c.hidden_act == "swish", source, "hidden_act",
          "must be silu (SwiGLU), got " + c.hidden_act);
}

// ---- Building blocks
// ----------------------------------------------------------------------------------------------

RMSNormImpl::RMSNormImpl(std::int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  const auto h = x.to(torch::kFloat);
  const auto variance = h.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (h * torch::rsqrt(variance + eps_)).to(x.scalar_type());
}

RotaryEmbeddingImpl::RotaryEmbeddingImpl(std::int64_t head_dim, double theta) {
  const auto exponents =
      torch::arange(0, head_dim, 2, torch::kLong).to(torch::kFloat) / static_cast<float>(head_dim);
  inv_freq_ = register_buffer("inv_freq", 1.0 / torch::pow(static_cast<float>(theta), exponents));
}

std::pair<torch::Tensor, torch::Tensor> RotaryEmbeddingImpl::forward(const torch::Tensor& positions) {
  const auto freqs = torch::outer(positions.to(torch::kFloat), inv_freq_);  // [T, D/2]
  const auto emb = torch::cat({freqs, freqs}, -1);                          // [T, D]
  return {emb.cos(), emb.sin()};
}

torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const auto half = x.size(-1) / 2;
  const auto x1 = x.narrow(-1, 0, half);
  const auto x2 = x.narrow(-1, half, half);
  const auto rotated = torch::cat({-x2, x1}, -1);
  return x * cos.to(x.scalar_type()) + rotated * sin.to(x.scalar_type());
}

AttentionImpl::AttentionImpl(const DecoderConfig& c, double init_std)
    : num_heads(i64(c.num_attention_heads)),
      num_kv_heads(i64(c.num_key_value_heads)),
      head_dim(i64(c.hidden_size) / i64(c.num_attention_heads)) {
  const auto hidden = i64(c.hidden_size);
  const bool bias = static_cast<bool>(c.attention_bias);
  q_proj = register_module("q_proj", LoraLinear(hidden, num_heads * head_dim, bias, init_std));
  k_proj = register_module("k_proj", LoraLinear(hidden, num_kv_heads * head_dim, bias, init_std));
  v_proj = register_module("v_proj", LoraLinear(hidden, num_kv_heads * head_dim, bias, init_std));
  o_proj =
      register_module("o_proj", LoraLinear(num_heads * head_dim, hidden, c.attention_output_bias, init_std));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                     const torch::Tensor& sin, const torch::Tensor& blocked,
                                     torch::Tensor* past_key, torch::Tensor* past_value) {
  const auto b = x.size(0);
  const auto t = x.size(1);
  auto q = q_proj(x).view({b, t, num_heads, head_dim}).transpose(1, 2);
  auto k = k_proj(x).view({b, t, num_kv_heads, head_dim}).transpose(1, 2);
  auto v = v_proj(x).view({b, t, num_kv_heads, head_dim}).transpose(1, 2);
  q = apply_rotary(q, cos, sin);
  k = apply_rotary(k, cos, sin);
  if (past_key != nullptr && past_value != nullptr) {
    if (past_key->defined()) {
      k = torch::cat({*past_key, k}, 2);
      v = torch::cat({*past_value, v}, 2);
    }
    *past_key = k;
    *past_value = v;
  }
  const auto s = k.size(2);
  if (num_kv_heads !=
      num_heads) {  // repeat_kv: kv head h serves query heads h * n_rep .. h * n_rep + n_rep - 1
    const auto n_rep = num_heads / num_kv_heads;
    k = k.unsqueeze(2).expand({b, num_kv_heads, n_rep, s, head_dim}).reshape({b, num_heads, s, head_dim});
    v = v.unsqueeze(2).expand({b, num_kv_heads, n_rep, s, head_dim}).reshape({b, num_heads, s, head_dim});
  }
  auto scores = torch::matmul(q, k.transpose(2, 3)) / std::sqrt(static_cast<double>(head_dim));
  // The lowest finite value rather than -inf: a fully masked row gives a uniform row instead of NaN.
  scores = scores.masked_fill(blocked, std::numeric_limits<float>::lowest());
  const auto probs = torch::softmax(scores, -1, torch::kFloat).to(q.scalar_type());
  const auto out = torch::matmul(probs, v).transpose(1, 2).reshape({b, t, num_heads * head_dim});
  return o_proj(out);
}

MlpImpl::MlpImpl(const DecoderConfig& c, double init_std) {
  const auto hidden = c.hidden_size;
  const auto inter = c.intermediate_size;
  gate_proj = register_module("gate_proj", LoraLinear(hidden, inter, c.mlp_bias, init_std));
  up_proj = register_module("up_proj", LoraLinear(hidden, inter, c.mlp_bias, init_std));
  down_proj = register_module("down_proj", LoraLinear(inter, hidden, c.mlp_bias, init_std));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return down_proj(torch::silu(gate_proj(x)) * up_proj(x));
}

DecoderLayerImpl::DecoderLayerImpl(const DecoderConfig& c, double init_std) {
  self_attn = register_module("self_attn", Attention(c, init_std));
  mlp = register_module("mlp", Mlp(c, init_std));
  const auto eps = static_cast<double>(c.rms_norm_eps);
  input_layernorm = register_module("input_layernorm", RMSNorm(i64(c.hidden_size), eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(i64(c.hidden_size), eps));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                        const torch::Tensor& sin, const torch::Tensor& blocked,
                                        torch::Tensor* past_key, torch::Tensor* past_value) {
  auto h = x + self_attn(input_layernorm(x), cos, sin, blocked, past_key, past_value);
  return h + mlp(post_attention_layernorm(h));
}

LlamaModelImpl::LlamaModelImpl(const DecoderConfig& c, double init_std) : vocab_size_(i64(c.vocab_size)) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(i64(c.vocab_size), i64(c.hidden_size)));
  {
    torch::NoGradGuard no_grad;
    embed_tokens->weight.normal_(0.0, init_std);
  }
  layers = register_module("layers", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < i64(c.num_hidden_layers); ++i) {
    layer_list_.push_back(DecoderLayer(c, init_std));
    layers->push_back(layer_list_.back());
  }
  norm = register_module("norm", RMSNorm(i64(c.hidden_size), static_cast<double>(c.rms_norm_eps)));
  rotary_emb = register_module("rotary_emb", RotaryEmbedding(i64(c.hidden_size) / i64(c.num_attention_heads),
                                                             static_cast<double>(c.rope_theta)));
}

torch::Tensor LlamaModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                      KVCache* cache) {
  if (input_ids.dim() != 2 || input_ids.size(0) < 1 || input_ids.size(1) < 1) {
    throw Error("decoder: input_ids must be [batch, length] with batch, length >= 1");
  }
  if (input_ids.is_floating_point() || input_ids.is_complex()) {
    throw Error("decoder: input_ids must be an integer tensor");
  }
  const auto ids = input_ids.to(torch::kLong);
  const auto lo = ids.min().item<std::int64_t>();
  const auto hi = ids.max().item<std::int64_t>();
  if (lo < 0 || hi >= vocab_size_) {
    throw Error("decoder: token id " + std::to_string(lo < 0 ? lo : hi) + " out of range [0, " +
                std::to_string(vocab_size_) + ")");
  }
  if (attention_mask.defined()) {
    if (attention_mask.sizes() != input_ids.sizes()) {
      throw Error("decoder: attention_mask must have the shape of input_ids");
    }
    if (cache != nullptr) throw Error("decoder: a KV cache takes no attention_mask (no padding)");
  }
  const auto b = ids.size(0);
  const auto t = ids.size(1);
  std::int64_t past = 0;
  if (cache != nullptr) {
    if (cache->keys.empty()) {
      cache->keys.resize(layer_list_.size());
      cache->values.resize(layer_list_.size());
    }
    if (cache->keys.size() != layer_list_.size()) throw Error("decoder: KV cache of another model");
    past = cache->length();
    if (past > 0 && cache->keys[0].size(0) != b) throw Error("decoder: KV cache of another batch size");
  }
  const auto device = ids.device();
  const auto positions =
      torch::arange(past, past + t, torch::TensorOptions().dtype(torch::kLong).device(device));
  const auto [cos, sin] = rotary_emb(positions);
  const auto blocked = blocked_mask(past, t, attention_mask, device);
  auto h = embed_tokens(ids);
  for (std::size_t i = 0; i < layer_list_.size(); ++i) {
    if (cache != nullptr) {
      h = layer_list_[i](h, cos, sin, blocked, &cache->keys[i], &cache->values[i]);
    } else {
      h = layer_list_[i](h, cos, sin, blocked);
    }
  }
  return norm(h);
}

// ---- The decoder with its heads
// -----------------------------------------------------------------------------------

DecoderImpl::DecoderImpl(const DecoderConfig& config, const DecoderOptions& options)
    : config_(config), options_(options) {
  validate_decoder_config(config_);
  set_pooling(options_.pooling);
  const auto std_dev = config_.initializer_range;
  model = register_module("model", LlamaModel(config_, std_dev));
  const auto hidden = i64(config_.hidden_size);
  if (options_.lm_head && !static_cast<bool>(config_.tie_word_embeddings)) {
    lm_head = register_module(
        "lm_head", torch::nn::Linear(torch::nn::LinearOptions(hidden, i64(config_.vocab_size)).bias(false)));
    torch::NoGradGuard no_grad;
    lm_head->weight.normal_(0.0, std_dev);
  }
  if (options_.score_head) {
    score_head = register_module("score", torch::nn::Linear(torch::nn::LinearOptions(hidden, 1).bias(false)));
    torch::NoGradGuard no_grad;
    score_head->weight.normal_(0.0, std_dev);
  }
}

void DecoderImpl::set_pooling(Pooling pooling) {
  if (pooling != Pooling::kLastToken && pooling != Pooling::kMean) {
    throw Error("decoder: pooling must be last_token or mean, got " + std::string(to_string(pooling)));
  }
  options_.pooling = pooling;
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                   KVCache* cache) {
  return model(input_ids, attention_mask, cache);
}

torch::Tensor DecoderImpl::lm_logits(const torch::Tensor& hidden) {
  if (!options_.lm_head) throw Error("decoder: this model has no LM head");
  if (!lm_head.is_empty()) return lm_head(hidden);
  return torch::nn::functional::linear(hidden, model->embed_tokens->weight);
}

torch::Tensor DecoderImpl::pool(const torch::Tensor& hidden, const torch::Tensor& attention_mask) {
  if (hidden.dim() != 3) throw Error("decoder: hidden states must be [batch, length, hidden]");
  const auto b = hidden.size(0);
  const auto t = hidden.size(1);
  if (!attention_mask.defined()) {
    return options_.pooling == Pooling::kMean ? hidden.mean(1) : hidden.select(1, t - 1);
  }
  if (attention_mask.dim() != 2 || attention_mask.size(0) != b || attention_mask.size(1) != t) {
    throw Error("decoder: attention_mask must be [batch, length] like the hidden states");
  }
  const auto mask = attention_mask.ne(0);
  const auto lengths = mask.sum(1);  // int64 [B]
  if (lengths.min().item<std::int64_t>() < 1) throw Error("decoder: a row of attention_mask is all padding");
  if (options_.pooling == Pooling::kMean) {
    const auto m = mask.to(hidden.scalar_type()).unsqueeze(-1);
    return (hidden * m).sum(1) / m.sum(1);
  }
  // The last token of a right-padded row is at length - 1; the mask must be a prefix of ones.
  const auto expected = torch::arange(t, lengths.options()).unsqueeze(0).lt(lengths.unsqueeze(1));
  if (!torch::equal(expected, mask)) {
    throw Error("decoder: attention_mask must be right padding (ones, then zeros) for last-token pooling");
  }
  const auto rows = torch::arange(b, lengths.options());
  return hidden.index({rows, lengths - 1});
}

torch::Tensor DecoderImpl::score(const torch::Tensor& hidden, const torch::Tensor& attention_mask) {
  if (score_head.is_empty()) throw Error("decoder: this model has no score head");
  return score_head(pool(hidden, attention_mask)).squeeze(-1);
}

std::vector<std::pair<std::string, torch::Tensor>> DecoderImpl::named_hf_tensors() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : named_parameters(/*recurse=*/true)) {
    if (!is_lora_name(item.key())) out.emplace_back(item.key(), item.value());
  }
  return out;
}

LoadReport DecoderImpl::load_hf_tensors(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                                        bool strict, const std::string& source) {
  std::map<std::string, torch::Tensor> by_name;
  for (const auto& [name, tensor] : tensors) {
    if (!by_name.emplace(name, tensor).second) throw Error(source, 0, name, "tensor given twice");
  }
  return load_hf_tensors(by_name, strict, source);
}

LoadReport DecoderImpl::load_hf_tensors(const std::map<std::string, torch::Tensor>& tensors, bool strict,
                                        const std::string& source) {
  std::map<std::string, torch::Tensor> params;
  for (auto& [name, tensor] : named_hf_tensors()) params.emplace(name, tensor);
  const bool tied = static_cast<bool>(config_.tie_word_embeddings);
  LoadReport report;
  std::set<std::string> loaded;
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : tensors) {
    if (name.ends_with(".inv_freq")) continue;  // rotary buffers of older HF checkpoints
    if (!tensor.defined()) throw Error(source, 0, name, "undefined tensor");
    if (!tensor.is_floating_point()) throw Error(source, 0, name, "not a floating-point tensor");
    if (name == "lm_head.weight" && tied && options_.lm_head) {
      // A tied checkpoint may carry the (identical) copy of the embedding.
      const auto embed = tensors.find("model.embed_tokens.weight");
      if (embed == tensors.end() || !embed->second.sizes().equals(tensor.sizes()) ||
          !torch::equal(embed->second.to(torch::kFloat).cpu(), tensor.to(torch::kFloat).cpu())) {
        throw Error(
            source, 0, name,
            "the config ties the word embeddings, but lm_head.weight differs from model.embed_tokens.weight");
      }
      continue;
    }
    const auto it = params.find(name);
    if (it == params.end()) {
      report.unexpected.push_back(name);
      continue;
    }
    auto& param = it->second;
    if (!param.sizes().equals(tensor.sizes())) {
      throw Error(
          source, 0, name,
          "shape " + c10::str(tensor.sizes()) + " does not match the model's " + c10::str(param.sizes()));
    }
    param.copy_(tensor.to(param.device(), param.scalar_type()));
    loaded.insert(name);
  }
  for (const auto& [name, param] : params) {
    if (!loaded.contains(name)) report.missing.push_back(name);
  }
  if (strict) {
    std::string missing;
    for (const auto& name : report.missing) {
      if (!is_head_name(name)) missing += (missing.empty() ? "" : ", ") + name;
    }
    if (!missing.empty()) throw Error(source, 0, "", "missing tensors: " + missing);
    if (!report.unexpected.empty()) {
      std::string names;
      for (const auto& name : report.unexpected) names += (names.empty() ? "" : ", ") + name;
      throw Error(source, 0, "", "tensors the model does not have: " + names);
    }
  }
  return report;
}

// ---- Sampling and generation
// --------------------------------------------------------------------------------------

Sampler::Sampler(const SamplingOptions& options)
    : options_(options), state_(options.seed == 0 ? 1 : options.seed) {}

float Sampler::random_f32() {
  // llama2.c's xorshift* generator (random_u32), then the top 24 bits as a float in [0, 1).
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  const auto u32 = static_cast<std::uint32_t>((state_ * 0x2545F4914F6CDD1Dull) >> 32);
  return static_cast<float>(u32 >> 8) / 16777216.0f;
}

std::int64_t Sampler::sample(std::vector<float>& logits) {
  const auto n = logits.size();
  if (n == 0) throw Error("sampler: no logits");
  if (options_.temperature == 0.0f) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < n; ++i) {
      if (logits[i] > logits[best]) best = i;
    }
    return static_cast<std::int64_t>(best);
  }
  for (auto& x : logits) x /= options_.temperature;
  // llama2.c's softmax, in float, in the same order.
  float max_val = logits[0];
  for (std::size_t i = 1; i < n; ++i) max_val = logits[i] > max_val ? logits[i] : max_val;
  float sum = 0.0f;
  for (auto& x : logits) {
    x = std::exp(x - max_val);
    sum += x;
  }
  for (auto& x : logits) x /= sum;
  const float coin = random_f32();
  const float topp = options_.top_p;
  if (topp <= 0 || topp >= 1) {
    float cdf = 0.0f;
    for (std::size_t i = 0; i < n; ++i) {
      cdf += logits[i];
      if (coin < cdf) return static_cast<std::int64_t>(i);
    }
    return static_cast<std::int64_t>(n - 1);
  }
  // Top-p: candidates at or above the cutoff, sorted by probability (descending; glibc's qsort is a stable
  // merge sort here), truncated where the cumulative probability first exceeds top_p.
  const float cutoff = (1.0f - topp) / static_cast<float>(n - 1);
  std::vector<std::pair<float, std::int64_t>> cand;
  for (std::size_t i = 0; i < n; ++i) {
    if (logits[i] >= cutoff) cand.emplace_back(logits[i], static_cast<std::int64_t>(i));
  }
  std::stable_sort(cand.begin(), cand.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  float cumulative = 0.0f;
  std::size_t last = cand.size() - 1;
  for (std::size_t i = 0; i < cand.size(); ++i) {
    cumulative += cand[i].first;
    if (cumulative > topp) {
      last = i;
      break;
    }
  }
  const float r = coin * cumulative;
  float cdf = 0.0f;
  for (std::size_t i = 0; i <= last; ++i) {
    cdf += cand[i].first;
    if (r < cdf) return cand[i].second;
  }
  return cand[last].second;
}

std::vector<std::int64_t> generate(DecoderImpl& model, const std::vector<std::int64_t>& prompt,
                                   const GenerateOptions& options,
                                   const std::function<bool(std::int64_t)>& on_token) {
  if (prompt.empty()) throw Error("generate: the prompt must hold at least one token (e.g. BOS)");
  const auto max_positions = i64(model.config().max_position_embeddings);
  if (i64(prompt.size()) > max_positions) {
    throw Error("generate: the prompt has " + std::to_string(prompt.size()) +
                " tokens, more than max_position_embeddings " + std::to_string(max_positions));
  }
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  const auto device = model.model->embed_tokens->weight.device();
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong);
  Sampler sampler(options.sampling);
  KVCache cache;
  std::vector<std::int64_t> tokens = prompt;
  std::vector<std::int64_t> out;
  std::size_t fed = 0;  // tokens already in the cache
  try {
    // The last token's position (tokens.size() - 1) must be one the model has.
    while (i64(out.size()) < options.max_new_tokens && i64(tokens.size()) <= max_positions) {
      const std::size_t from = options.use_cache ? fed : 0;
      const auto input = torch::tensor(std::vector<std::int64_t>(
                                           tokens.begin() + static_cast<std::ptrdiff_t>(from), tokens.end()),
                                       long_opts)
                             .unsqueeze(0)
                             .to(device);
      const auto hidden = model.forward(input, {}, options.use_cache ? &cache : nullptr);
      fed = tokens.size();
      const auto logits = model.lm_logits(hidden.select(1, hidden.size(1) - 1).squeeze(0))
                              .to(torch::kCPU, torch::kFloat)
                              .contiguous();
      std::vector<float> values(logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel());
      const auto next = sampler.sample(values);
      if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), next) !=
          options.stop_tokens.end()) {
        break;
      }
      tokens.push_back(next);
      out.push_back(next);
      if (on_token && !on_token(next)) break;
    }
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  return out;
}

}  // namespace disranker
