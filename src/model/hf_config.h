// Hugging Face config.json for the three architectures DisRanker loads and saves (model_type "bert", "llama",
// "qwen2"), and DisRanker's own disranker.json that sits beside it (what the checkpoint is for: role,
// pooling, score transform, maximum length, provenance). Plain structs, no libtorch.
//
// Reading: the file must be valid UTF-8 JSON with no key twice in one object; the architecture-defining
// fields are required, the others default to the Hugging Face class defaults; a field of the wrong type, a
// value out of range, heads that do not divide the hidden size, KV heads that do not divide the heads, or a
// feature the models do not implement (rope_scaling, a sliding window, another position embedding) is an
// Error(file, 0, field, ...). Unknown fields are ignored, as transformers ignores them. Writing is atomic,
// validates first (a writer never writes what the reader would reject), and uses Hugging Face's field names
// and layout (keys sorted, indent 2), so that transformers' from_pretrained can read the result.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace disranker {

inline constexpr std::string_view kHfConfigFile = "config.json";
inline constexpr std::string_view kRankerManifestFile = "disranker.json";

// BertConfig of transformers (model_type "bert"). Defaults are BertConfig's, except num_labels (1: a ranker's
// single score; transformers' default is 2).
struct BertConfig {
  // required
  std::int64_t vocab_size = 30522;
  std::int64_t hidden_size = 768;
  std::int64_t num_hidden_layers = 12;
  std::int64_t num_attention_heads = 12;
  std::int64_t intermediate_size = 3072;
  // optional
  std::string hidden_act =
      "gelu";  // "gelu" is the exact erf GELU; also "relu", "silu", "gelu_new", "gelu_pytorch_tanh"
  std::int64_t max_position_embeddings = 512;
  std::int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  double initializer_range = 0.02;
  // From "id2label" (its size) or "num_labels"; they must agree when both are given. Written as
  // id2label/label2id with LABEL_0.. names, as transformers writes them.
  std::int64_t num_labels = 1;
  std::int64_t pad_token_id = 0;
  std::string torch_dtype = "float32";  // the dtype the weights are stored in: float32, float16 or bfloat16

  std::int64_t head_dim() const { return hidden_size / num_attention_heads; }
  bool operator==(const BertConfig&) const = default;
};

// LlamaConfig / Qwen2Config of transformers: a pre-norm decoder with RMSNorm, rotary positions, grouped-query
// attention and a SwiGLU MLP.
struct DecoderConfig {
  std::string model_type = "llama";  // "llama" or "qwen2"
  // required
  std::int64_t vocab_size = 32000;
  std::int64_t hidden_size = 4096;
  std::int64_t intermediate_size = 11008;
  std::int64_t num_hidden_layers = 32;
  std::int64_t num_attention_heads = 32;
  // optional
  std::int64_t num_key_value_heads = 32;        // default: num_attention_heads
  std::string hidden_act = "silu";              // "swish" is read as "silu"; nothing else is accepted
  std::int64_t max_position_embeddings = 2048;  // qwen2: 32768
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  double initializer_range = 0.02;
  bool tie_word_embeddings = false;
  // Biases of the q/k/v projections and of the output projection. llama: both are "attention_bias" (default
  // false); qwen2: q/k/v true, output false, always.
  bool attention_bias = false;
  bool attention_output_bias = false;
  bool mlp_bias = false;                     // llama's "mlp_bias"; qwen2: always false
  std::optional<std::int64_t> bos_token_id;  // llama default 1, qwen2 none
  std::vector<std::int64_t> eos_token_ids;   // "eos_token_id": an id or a list of ids; llama default {2}
  std::optional<std::int64_t> pad_token_id;  // default none
  std::string torch_dtype = "float32";

  std::int64_t head_dim() const { return hidden_size / num_attention_heads; }
  // Query heads per key/value head.
  std::int64_t kv_groups() const { return num_attention_heads / num_key_value_heads; }
  bool operator==(const DecoderConfig&) const = default;
};

// The "model_type" of a config.json: "bert", "llama" or "qwen2" (Error for a missing or other type).
std::string read_model_type(const std::string& path);

BertConfig read_bert_config(const std::string& path);
BertConfig parse_bert_config(std::string_view json_text, const std::string& file);
void write_bert_config(const std::string& path, const BertConfig& config);
// The JSON written by write_bert_config (validated; Error names `file`).
nlohmann::json bert_config_to_json(const BertConfig& config, const std::string& file = "config.json");

// model_type "llama" or "qwen2"; the defaults of the missing optional fields follow the model type.
DecoderConfig read_decoder_config(const std::string& path);
DecoderConfig parse_decoder_config(std::string_view json_text, const std::string& file);
void write_decoder_config(const std::string& path, const DecoderConfig& config);
nlohmann::json decoder_config_to_json(const DecoderConfig& config, const std::string& file = "config.json");

// ---------------------------------------------------------------------------------------------------------------
// disranker.json: {"version": 1, "role": "teacher"|"student", "pooling": "last_token"|"mean"|"cls",
//                  "score": {"type": "raw"|"sigmoid"|"affine", "scale": s, "bias": b}, "max_length": n,
//                  "provenance": {free JSON object}}
// role, pooling and max_length are required; score defaults to raw, provenance to {}; a raw score takes no
// scale or bias. Unknown keys are errors (it is our own format: a typo must not pass silently).

enum class RankerRole { kTeacher, kStudent };
enum class Pooling { kLastToken, kMean, kCls };
enum class ScoreType { kRaw, kSigmoid, kAffine };

std::string_view to_string(RankerRole role);
std::string_view to_string(Pooling pooling);
std::string_view to_string(ScoreType type);

// How the model's raw output becomes the reported score: raw: x; affine: scale * x + bias;
// sigmoid: 1 / (1 + exp(-(scale * x + bias))).
struct ScoreTransform {
  ScoreType type = ScoreType::kRaw;
  double scale = 1.0;
  double bias = 0.0;

  double apply(double raw) const;
  bool operator==(const ScoreTransform&) const = default;
};

struct RankerManifest {
  RankerRole role = RankerRole::kStudent;
  Pooling pooling = Pooling::kCls;
  ScoreTransform score;
  std::int64_t max_length = 512;
  nlohmann::json provenance = nlohmann::json::object();

  bool operator==(const RankerManifest&) const = default;
};

RankerManifest read_ranker_manifest(const std::string& path);
RankerManifest parse_ranker_manifest(std::string_view json_text, const std::string& file);
void write_ranker_manifest(const std::string& path, const RankerManifest& manifest);
nlohmann::json ranker_manifest_to_json(const RankerManifest& manifest,
                                       const std::string& file = "disranker.json");

}  // namespace disranker
