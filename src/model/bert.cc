#include "model/bert.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>

#include "core/error.h"

namespace disranker {
namespace {

using torch::nn::Module;

bool is_supported_activation(const std::string& name) {
  return name == "gelu" || name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "relu" ||
         name == "silu" || name == "swish";
}

// transformers' ACT2FN for the activations BertConfig allows.
torch::Tensor activate(const std::string& name, const torch::Tensor& x) {
  if (name == "gelu") return torch::gelu(x);  // exact: 0.5 x (1 + erf(x / sqrt 2))
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return torch::gelu(x, "tanh");
  if (name == "relu") return torch::relu(x);
  return torch::silu(x);  // silu / swish
}

// torch.finfo(dtype).min: the additive mask value transformers uses.
double lowest_value(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kDouble:
      return std::numeric_limits<double>::lowest();
    case torch::kHalf:
      return -65504.0;
    case torch::kBFloat16:
      return -3.3895313892515355e38;
    default:
      return static_cast<double>(std::numeric_limits<float>::lowest());
  }
}

// An empty module that only groups children under a transformers path component ("attention", "self", ...).
std::shared_ptr<Module> group(Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<Module>());
}

torch::nn::Linear make_linear(Module& parent, const std::string& name, std::int64_t in, std::int64_t out,
                              double init_std) {
  auto linear = parent.register_module(name, torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(true)));
  torch::NoGradGuard no_grad;
  linear->weight.normal_(0.0, init_std);
  linear->bias.zero_();
  return linear;
}

torch::nn::LayerNorm make_layer_norm(Module& parent, const BertConfig& config) {
  // LayerNorm's own initialisation is transformers' (weight 1, bias 0).
  return parent.register_module(
      "LayerNorm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps)));
}

torch::nn::Embedding make_embedding(Module& parent, const std::string& name, std::int64_t rows,
                                    std::int64_t dim, double init_std,
                                    std::optional<std::int64_t> padding_idx) {
  torch::nn::EmbeddingOptions options(rows, dim);
  if (padding_idx) options.padding_idx(*padding_idx);
  auto embedding = parent.register_module(name, torch::nn::Embedding(options));
  torch::NoGradGuard no_grad;
  embedding->weight.normal_(0.0, init_std);
  if (padding_idx) embedding->weight[*padding_idx].zero_();
  return embedding;
}

void check_range(const torch::Tensor& ids, std::int64_t limit, const std::string& what,
                 const std::string& config_field) {
  if (ids.numel() == 0) return;
  const auto low = ids.min().item<std::int64_t>();
  const auto high = ids.max().item<std::int64_t>();
  if (low < 0 || high >= limit) {
    throw Error("bert forward: " + what + " outside [0, " + std::to_string(limit) + ") (" + config_field +
                "): found " + std::to_string(low < 0 ? low : high));
  }
}

bool is_head_parameter(const std::string& name) {
  return name.starts_with("bert.pooler.") || name.starts_with("classifier.") ||
         name.starts_with("cls.predictions.");
}

std::string dtype_config_name(DType dtype) {
  switch (dtype) {
    case DType::kF16:
      return "float16";
    case DType::kBF16:
      return "bfloat16";
    default:
      return "float32";
  }
}

}  // namespace

void validate_bert_config(const BertConfig& c, const std::string& source) {
  auto require = [&](bool ok, const std::string& field, const std::string& what) {
    if (!ok) throw Error(source, 0, field, what);
  };
  require(c.vocab_size >= 1, "vocab_size", "must be at least 1");
  require(c.hidden_size >= 1, "hidden_size", "must be at least 1");
  require(c.num_hidden_layers >= 1, "num_hidden_layers", "must be at least 1");
  require(c.num_attention_heads >= 1, "num_attention_heads", "must be at least 1");
  require(c.hidden_size % c.num_attention_heads == 0, "num_attention_heads",
          "must divide hidden_size (" + std::to_string(c.hidden_size) + ")");
  require(c.intermediate_size >= 1, "intermediate_size", "must be at least 1");
  require(c.max_position_embeddings >= 1, "max_position_embeddings", "must be at least 1");
  require(c.type_vocab_size >= 1, "type_vocab_size", "must be at least 1");
  require(c.num_labels >= 1, "num_labels", "must be at least 1");
  require(c.layer_norm_eps > 0.0, "layer_norm_eps", "must be positive");
  require(c.initializer_range >= 0.0, "initializer_range", "must not be negative");
  require(c.hidden_dropout_prob >= 0.0 && c.hidden_dropout_prob < 1.0, "hidden_dropout_prob",
          "must be in [0, 1)");
  require(c.attention_probs_dropout_prob >= 0.0 && c.attention_probs_dropout_prob < 1.0,
          "attention_probs_dropout_prob", "must be in [0, 1)");
  require(c.pad_token_id >= 0 && c.pad_token_id < c.vocab_size, "pad_token_id",
          "must be a token of the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
  require(is_supported_activation(c.hidden_act), "hidden_act",
          "'" + c.hidden_act + "' is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu, silu)");
}

// ---- BertLayer
// ------------------------------------------------------------------------------------------------------

BertLayerImpl::BertLayerImpl(const BertConfig& c)
    : heads_(c.num_attention_heads),
      head_dim_(c.head_dim()),
      activation_(c.hidden_act),
      attention_dropout_(c.attention_probs_dropout_prob),
      hidden_dropout_(c.hidden_dropout_prob) {
  const double init_std = c.initializer_range;
  auto attention = group(*this, "attention");
  auto self = group(*attention, "self");
  query = make_linear(*self, "query", c.hidden_size, c.hidden_size, init_std);
  key = make_linear(*self, "key", c.hidden_size, c.hidden_size, init_std);
  value = make_linear(*self, "value", c.hidden_size, c.hidden_size, init_std);
  auto attention_out = group(*attention, "output");
  attention_output = make_linear(*attention_out, "dense", c.hidden_size, c.hidden_size, init_std);
  attention_norm = make_layer_norm(*attention_out, c);
  auto inter = group(*this, "intermediate");
  intermediate = make_linear(*inter, "dense", c.hidden_size, c.intermediate_size, init_std);
  auto out = group(*this, "output");
  output = make_linear(*out, "dense", c.intermediate_size, c.hidden_size, init_std);
  output_norm = make_layer_norm(*out, c);
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask) {
  const auto batch = hidden.size(0);
  const auto length = hidden.size(1);
  auto split_heads = [&](const torch::Tensor& x) {  // [B, T, H] -> [B, heads, T, head_dim]
    return x.view({batch, length, heads_, head_dim_}).transpose(1, 2);
  };
  const auto q = split_heads(query(hidden));
  const auto k = split_heads(key(hidden));
  const auto v = split_heads(value(hidden));
  // transformers' eager attention: scores / sqrt(head_dim), then the additive mask, softmax, dropout.
  auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(head_dim_));
  scores = scores + additive_mask;
  auto probs = torch::softmax(scores, -1);
  probs = torch::dropout(probs, attention_dropout_, is_training());
  const auto context = torch::matmul(probs, v).transpose(1, 2).reshape({batch, length, heads_ * head_dim_});
  const auto attended =
      attention_norm(torch::dropout(attention_output(context), hidden_dropout_, is_training()) + hidden);
  const auto inner = activate(activation_, intermediate(attended));
  return output_norm(torch::dropout(output(inner), hidden_dropout_, is_training()) + attended);
}

// ---- BertModel
// ------------------------------------------------------------------------------------------------------

BertModelImpl::BertModelImpl(const BertConfig& c, bool with_pooler) : config_(c) {
  const double init_std = c.initializer_range;
  auto embeddings = group(*this, "embeddings");
  word_embeddings =
      make_embedding(*embeddings, "word_embeddings", c.vocab_size, c.hidden_size, init_std, c.pad_token_id);
  position_embeddings = make_embedding(*embeddings, "position_embeddings", c.max_position_embeddings,
                                       c.hidden_size, init_std, std::nullopt);
  token_type_embeddings = make_embedding(*embeddings, "token_type_embeddings", c.type_vocab_size,
                                         c.hidden_size, init_std, std::nullopt);
  embeddings_norm = make_layer_norm(*embeddings, c);
  auto encoder = group(*this, "encoder");
  layers = encoder->register_module("layer", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(BertLayer(c));
  if (with_pooler) {
    auto pooler = group(*this, "pooler");
    pooler_dense = make_linear(*pooler, "dense", c.hidden_size, c.hidden_size, init_std);
  }
}

torch::Tensor BertModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                     const torch::Tensor& attention_mask,
                                     std::vector<torch::Tensor>* hidden_states) {
  if (!input_ids.defined() || input_ids.dim() != 2) {
    throw Error("bert forward: input_ids must be a [batch, length] tensor");
  }
  if (input_ids.is_floating_point()) throw Error("bert forward: input_ids must be an integer tensor");
  const auto batch = input_ids.size(0);
  const auto length = input_ids.size(1);
  if (length > config_.max_position_embeddings) {
    throw Error("bert forward: sequence length " + std::to_string(length) +
                " exceeds max_position_embeddings " + std::to_string(config_.max_position_embeddings));
  }
  const auto ids = input_ids.to(torch::kLong);
  auto types = token_type_ids.defined() ? token_type_ids.to(torch::kLong) : torch::zeros_like(ids);
  auto mask = attention_mask.defined() ? attention_mask : torch::ones_like(ids);
  if (types.sizes() != ids.sizes()) throw Error("bert forward: token_type_ids and input_ids differ in shape");
  if (mask.sizes() != ids.sizes()) throw Error("bert forward: attention_mask and input_ids differ in shape");
  check_range(ids, config_.vocab_size, "input ids", "vocab_size");
  check_range(types, config_.type_vocab_size, "token type ids", "type_vocab_size");

  const auto positions = torch::arange(length, ids.options());
  auto hidden =
      word_embeddings(ids) + position_embeddings(positions).unsqueeze(0) + token_type_embeddings(types);
  hidden = torch::dropout(embeddings_norm(hidden), config_.hidden_dropout_prob, is_training());
  if (hidden_states) {
    hidden_states->clear();
    hidden_states->push_back(hidden);
  }
  const auto dtype = hidden.scalar_type();
  const auto additive = ((1.0 - mask.to(dtype)) * lowest_value(dtype)).view({batch, 1, 1, length});
  for (const auto& layer : *layers) {
    hidden = layer->as<BertLayer>()->forward(hidden, additive);
    if (hidden_states) hidden_states->push_back(hidden);
  }
  return hidden;
}

torch::Tensor BertModelImpl::pool(const torch::Tensor& last_hidden) {
  if (!has_pooler()) throw Error("bert: this model has no pooler (it was built without the ranking head)");
  return torch::tanh(pooler_dense(last_hidden.select(1, 0)));
}

// ---- BertRanker
// ----------------------------------------------------------------------------------------------------

BertRankerImpl::BertRankerImpl(const BertConfig& c, const BertHeads& heads) : config_(c), heads_(heads) {
  validate_bert_config(c);
  bert = register_module("bert", BertModel(c, heads.ranking));
  if (heads.ranking)
    classifier = make_linear(*this, "classifier", c.hidden_size, c.num_labels, c.initializer_range);
  if (heads.mlm) {
    auto cls = group(*this, "cls");
    auto predictions = group(*cls, "predictions");
    mlm_bias = predictions->register_parameter("bias", torch::zeros({c.vocab_size}));
    auto transform = group(*predictions, "transform");
    mlm_dense = make_linear(*transform, "dense", c.hidden_size, c.hidden_size, c.initializer_range);
    mlm_norm = make_layer_norm(*transform, c);
  }
}

torch::Tensor BertRankerImpl::encode(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                     const torch::Tensor& attention_mask,
                                     std::vector<torch::Tensor>* hidden_states) {
  return bert->forward(input_ids, token_type_ids, attention_mask, hidden_states);
}

torch::Tensor BertRankerImpl::score_hidden(const torch::Tensor& last_hidden) {
  if (!heads_.ranking) throw Error("bert: this model has no ranking head (pooler + classifier)");
  const auto pooled = torch::dropout(bert->pool(last_hidden), config_.hidden_dropout_prob, is_training());
  const auto logits = classifier(pooled);
  return config_.num_labels == 1 ? logits.squeeze(-1) : logits;
}

torch::Tensor BertRankerImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                      const torch::Tensor& attention_mask) {
  if (!heads_.ranking) throw Error("bert: this model has no ranking head (pooler + classifier)");
  return score_hidden(encode(input_ids, token_type_ids, attention_mask));
}

torch::Tensor BertRankerImpl::mlm_logits(const torch::Tensor& hidden) {
  if (!heads_.mlm) throw Error("bert: this model has no MLM head (cls.predictions)");
  const auto transformed = mlm_norm(activate(config_.hidden_act, mlm_dense(hidden)));
  return torch::nn::functional::linear(transformed, bert->word_embeddings->weight, mlm_bias);
}

// ---- Checkpoints
// ---------------------------------------------------------------------------------------------------

void save_bert(const std::string& dir, BertRankerImpl& model, const std::vector<std::string>& tokenizer_files,
               const std::optional<RankerManifest>& manifest, const SaveHfDirOptions& options) {
  BertConfig config = model.config();
  config.torch_dtype = dtype_config_name(options.dtype);
  const auto config_json = bert_config_to_json(config, (std::filesystem::path(dir) / "config.json").string());
  std::optional<nlohmann::json> manifest_json;
  if (manifest) manifest_json = ranker_manifest_to_json(*manifest);
  save_hf_model_dir(dir, config_json, named_state(model), tokenizer_files, manifest_json, options);
}

std::string bert_checkpoint_name(const std::string& name, const std::vector<std::string>& all_names) {
  std::string n = name;
  // TF-era checkpoints name LayerNorm parameters gamma / beta (transformers renames them the same way).
  if (n.ends_with(".gamma")) n = n.substr(0, n.size() - 6) + ".weight";
  if (n.ends_with(".beta")) n = n.substr(0, n.size() - 5) + ".bias";
  // A bare BertModel checkpoint has no "bert." prefix.
  if (n.starts_with("embeddings.") || n.starts_with("encoder.") || n.starts_with("pooler.")) n = "bert." + n;
  if (n == "bert.embeddings.position_ids") return "";    // a buffer older transformers saved
  if (n == "cls.predictions.decoder.weight") return "";  // tied to the word embeddings
  if (n == "cls.predictions.decoder.bias") {             // tied to cls.predictions.bias
    const bool has_bias =
        std::find(all_names.begin(), all_names.end(), "cls.predictions.bias") != all_names.end();
    return has_bias ? "" : "cls.predictions.bias";
  }
  return n;
}

LoadedBert load_bert(const std::string& dir, const BertLoadOptions& options) {
  HfModelDir hf = load_hf_model_dir(dir);
  const auto root = std::filesystem::path(dir);
  const BertConfig config = read_bert_config((root / "config.json").string());
  validate_bert_config(config, (root / "config.json").string());

  const auto names = hf.names();
  BertHeads heads;
  if (options.heads) {
    heads = *options.heads;
  } else {
    bool ranking = false, mlm = false;
    for (const auto& name : names) {
      const auto mapped = bert_checkpoint_name(name, names);
      ranking = ranking || mapped.starts_with("classifier.") || mapped.starts_with("bert.pooler.");
      mlm = mlm || mapped.starts_with("cls.predictions.");
    }
    heads.ranking = ranking || !mlm;
    heads.mlm = mlm;
  }

  LoadedBert out;
  out.model = BertRanker(config, heads);
  LoadStateOptions load;
  load.source = hf.weights.path();
  load.rename = [&names](const std::string& name) { return bert_checkpoint_name(name, names); };
  if (options.init_missing_heads) load.may_be_missing = is_head_parameter;
  load.allow_unexpected = options.allow_unexpected;
  out.report = load_state(*out.model, hf.weights, load);
  if (hf.disranker) out.manifest = read_ranker_manifest((root / "disranker.json").string());
  out.model->eval();  // as from_pretrained; call train() to fine-tune
  return out;
}

}  // namespace disranker
