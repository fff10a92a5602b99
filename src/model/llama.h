// The decoder LLM (Llama / Qwen2 family) in the libtorch C++ frontend: the teacher of DisRanker.
//
// One implementation with Hugging Face's conventions (transformers' LlamaModel / Qwen2Model):
//   - RMSNorm (computed in float32), SwiGLU MLP down(silu(gate(x)) * up(x)), pre-norm residual blocks;
//   - rotary embeddings in the "rotate_half" layout: dimension i of a head pairs with i + head_dim/2,
//   frequency
//     theta^(-2i/head_dim) (llama2.c and Meta's checkpoints pair adjacent dimensions instead; their loaders
//     permute the wq/wk rows into this layout, as transformers' convert_llama_weights_to_hf.py does);
//   - grouped-query attention (num_key_value_heads divides num_attention_heads; each kv head serves
//     num_attention_heads / num_key_value_heads query heads), optional q/k/v biases (Qwen2: attention_bias),
//     optional o_proj bias (attention_output_bias) and MLP biases (mlp_bias);
//   - a causal mask combined with a padding mask: attention_mask [B, T] holds 1 for tokens and 0 for padding,
//     padding on the right (every row starts with its tokens); positions are 0..T-1 in every row;
//   - heads: the LM head (or the tied embedding matrix), and the ranking head score = Linear(hidden, 1,
//     bias=false) on the final-norm hidden state of the last non-padding token (position length-1: the final
//     </s> of a ranking input), or on the mean over non-padding tokens (Pooling::kMean, an ablation).
//
// Parameter names are Hugging Face's (LlamaForCausalLM / ...ForSequenceClassification), so that
// named_hf_tensors() / load_hf_tensors() are all a safetensors file needs:
//   model.embed_tokens.weight, model.layers.N.self_attn.{q,k,v,o}_proj.{weight,bias},
//   model.layers.N.mlp.{gate,up,down}_proj.weight, model.layers.N.{input,post_attention}_layernorm.weight,
//   model.norm.weight, lm_head.weight (absent when tied), score.weight.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/hf_config.h"
#include "model/lora.h"

namespace disranker {

// Pooling (model/hf_config.h) of the score head: kLastToken or kMean (kCls is the BERT student's, rejected
// here). The weights are initialised as transformers does: N(0, config.initializer_range) for the linear and
// embedding weights, zero biases, unit norms.
struct DecoderOptions {
  bool lm_head = true;     // an LM head ("lm_head.weight", or the embedding when tie_word_embeddings)
  bool score_head = true;  // the ranking head "score.weight"
  Pooling pooling = Pooling::kLastToken;
};

// Checks a config for what the model needs (positive sizes, heads dividing the width, an even head size,
// kv heads dividing the heads, eps and theta > 0, hidden_act silu); throws Error naming `source` and the
// field.
void validate_decoder_config(const DecoderConfig& config, const std::string& source = "decoder config");

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(std::int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

// cos / sin tables of HF's LlamaRotaryEmbedding for given positions.
class RotaryEmbeddingImpl : public torch::nn::Module {
 public:
  RotaryEmbeddingImpl(std::int64_t head_dim, double theta);
  // positions: [T] int64 -> (cos, sin), each [T, head_dim], float32.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& positions);

 private:
  torch::Tensor inv_freq_;
};
TORCH_MODULE(RotaryEmbedding);

// x [B, H, T, D] -> x * cos + rotate_half(x) * sin (cos, sin [T, D]).
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

// Past keys and values per layer ([B, n_kv_heads, T_past, head_dim]), for incremental decoding.
struct KVCache {
  std::vector<torch::Tensor> keys;
  std::vector<torch::Tensor> values;
  std::int64_t length() const { return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(2); }
};

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const DecoderConfig& config, double init_std);
  // x [B, T, hidden]; blocked: bool [B or 1, 1, T, T_past + T], true where a query may not attend a key;
  // the cache entries of this layer are read and extended when given.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& blocked, torch::Tensor* past_key = nullptr,
                        torch::Tensor* past_value = nullptr);

  LoraLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  std::int64_t num_heads, num_kv_heads, head_dim;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const DecoderConfig& config, double init_std);
  torch::Tensor forward(const torch::Tensor& x);
  LoraLinear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const DecoderConfig& config, double init_std);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& blocked, torch::Tensor* past_key = nullptr,
                        torch::Tensor* past_value = nullptr);
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

// The transformer body ("model." in HF names).
class LlamaModelImpl : public torch::nn::Module {
 public:
  LlamaModelImpl(const DecoderConfig& config, double init_std);
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask, KVCache* cache);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  RotaryEmbedding rotary_emb{nullptr};

 private:
  std::vector<DecoderLayer> layer_list_;
  std::int64_t vocab_size_;
};
TORCH_MODULE(LlamaModel);

// Which names load_hf_tensors found missing or did not use.
struct LoadReport {
  std::vector<std::string> missing;
  std::vector<std::string> unexpected;
};

class DecoderImpl : public torch::nn::Module {
 public:
  explicit DecoderImpl(const DecoderConfig& config, const DecoderOptions& options = {});

  // input_ids [B, T] int64; attention_mask [B, T] (1 token, 0 right padding; undefined = no padding)
  // -> the final-norm hidden states [B, T, hidden]. With a cache, input_ids continue the cached sequence
  // (positions start at cache->length(); no padding allowed) and the cache is extended.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                        KVCache* cache = nullptr);
  // hidden [..., hidden] -> logits [..., vocab]. Throws Error when the model has no LM head.
  torch::Tensor lm_logits(const torch::Tensor& hidden);
  // hidden [B, T, hidden], attention_mask [B, T] (undefined = no padding) -> scores [B] from the pooled
  // hidden state (options().pooling). Throws Error when the model has no score head or a row is all padding.
  torch::Tensor score(const torch::Tensor& hidden, const torch::Tensor& attention_mask = {});
  // The pooled hidden state [B, hidden] that score() projects.
  torch::Tensor pool(const torch::Tensor& hidden, const torch::Tensor& attention_mask);

  // Every parameter under its HF name (LoRA adapter tensors left out: merge_lora first to export them).
  // The tensors share storage with the model.
  std::vector<std::pair<std::string, torch::Tensor>> named_hf_tensors();
  // Copies tensors into the parameters by HF name (any floating dtype; shapes must match exactly).
  // strict: every parameter must be given and every name used, except that the heads ("lm_head.weight",
  // "score.weight") may be missing and rotary "inv_freq" buffers are ignored. Throws Error naming `source`
  // for a shape mismatch, a non-floating tensor, a duplicate name, or (strict) a missing or unknown name. A
  // tied model accepts "lm_head.weight" only when it equals the embedding.
  LoadReport load_hf_tensors(const std::map<std::string, torch::Tensor>& tensors, bool strict = true,
                             const std::string& source = "tensors");
  LoadReport load_hf_tensors(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                             bool strict = true, const std::string& source = "tensors");

  const DecoderConfig& config() const { return config_; }
  const DecoderOptions& options() const { return options_; }
  // kLastToken or kMean (Error otherwise).
  void set_pooling(Pooling pooling);

  LlamaModel model{nullptr};
  torch::nn::Linear lm_head{nullptr};     // null when tied or without an LM head
  torch::nn::Linear score_head{nullptr};  // "score"; null without a score head

 private:
  DecoderConfig config_;
  DecoderOptions options_;
};
TORCH_MODULE(Decoder);

// Token sampling exactly as llama2.c's run.c does it (temperature, then top-p "nucleus" sampling or plain
// multinomial; its xorshift generator), so that a seed gives llama2.c's own samples.
struct SamplingOptions {
  float temperature = 0.0f;  // 0: greedy argmax (the first maximum)
  float top_p = 0.9f;        // <= 0 or >= 1: sample from the whole distribution
  std::uint64_t seed = 1;    // xorshift state; 0 is replaced by 1 (a zero state would stay zero)
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);
  // Picks a token from float32 logits (modified in place, as llama2.c does).
  std::int64_t sample(std::vector<float>& logits);
  // llama2.c's random_f32: a float in [0, 1).
  float random_f32();

 private:
  SamplingOptions options_;
  std::uint64_t state_;
};

struct GenerateOptions {
  std::int64_t max_new_tokens = 256;
  SamplingOptions sampling;
  std::vector<std::int64_t> stop_tokens;  // generation ends before emitting one of these
  bool use_cache = true;                  // false: recompute the whole sequence each step (a test reference)
};

// Continues `prompt` (batch of one, at least one token) and returns the new tokens, without the stop token.
// Stops at a stop token, after max_new_tokens, or when the sequence reaches max_position_embeddings.
// on_token(id) is called for each new token as it is chosen; returning false stops generation.
std::vector<std::int64_t> generate(DecoderImpl& model, const std::vector<std::int64_t>& prompt,
                                   const GenerateOptions& options,
                                   const std::function<bool(std::int64_t)>& on_token = {});

}  // namespace disranker
