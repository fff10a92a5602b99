#include "model/hf_config.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <ostream>
#include <system_error>

#include "core/error.h"
#include "core/files.h"
#include "model/strict_json.h"

namespace disranker {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxDepth = 64;

std::string describe(const json& value) {
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

std::string read_text(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error(path, 0, "", "is a directory, expected a JSON file");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(path, 0, "",
                "cannot open file for reading: " + std::error_code(errno, std::generic_category()).message());
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path, 0, "", "read error");
  return text;
}

json parse_object(std::string_view text, const std::string& file) {
  json root = detail::parse_strict_json(text, file, kMaxDepth);
  if (!root.is_object()) throw Error(file, 0, "", "must be a JSON object, got " + describe(root));
  return root;
}

// Typed access to the fields of one JSON object, with errors naming the file and the field. An absent field
// and a null one are both "not given".
class Fields {
 public:
  Fields(const json& object, const std::string& file, std::string prefix = "")
      : object_(object), file_(file), prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& message) const {
    throw Error(file_, 0, prefix_ + field, message);
  }

  const json* find(const std::string& field) const {
    const auto it = object_.find(field);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }

  std::optional<std::int64_t> integer(const std::string& field) const {
    const json* value = find(field);
    if (value == nullptr) return std::nullopt;
    return integer_value(field, *value);
  }
  std::int64_t integer(const std::string& field, std::int64_t fallback) const {
    return integer(field).value_or(fallback);
  }
  std::int64_t required_integer(const std::string& field) const {
    const auto value = integer(field);
    if (!value) fail(field, "missing (required)");
    return *value;
  }
  std::int64_t integer_value(const std::string& field, const json& value) const {
    if (value.is_number_unsigned()) {
      const auto v = value.get<std::uint64_t>();
      if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail(field, "is too large");
      return static_cast<std::int64_t>(v);
    }
    if (value.is_number_integer()) return value.get<std::int64_t>();
    fail(field, "must be an integer, got " + describe(value));
  }

  std::optional<double> number(const std::string& field) const {
    const json* value = find(field);
    if (value == nullptr) return std::nullopt;
    if (!value->is_number()) fail(field, "must be a number, got " + describe(*value));
    return value->get<double>();
  }
  double number(const std::string& field, double fallback) const { return number(field).value_or(fallback); }

  bool boolean(const std::string& field, bool fallback) const {
    const json* value = find(field);
    if (value == nullptr) return fallback;
    if (!value->is_boolean()) fail(field, "must be true or false, got " + describe(*value));
    return value->get<bool>();
  }

  std::optional<std::string> string(const std::string& field) const {
    const json* value = find(field);
    if (value == nullptr) return std::nullopt;
    if (!value->is_string()) fail(field, "must be a string, got " + describe(*value));
    return value->get<std::string>();
  }
  std::string string(const std::string& field, const std::string& fallback) const {
    return string(field).value_or(fallback);
  }

 private:
  const json& object_;
  const std::string& file_;
  std::string prefix_;
};

// Semantic checks shared by the readers and the writers.
class Checks {
 public:
  explicit Checks(const std::string& file) : file_(file) {}

  [[noreturn]] void fail(const std::string& field, const std::string& message) const {
    throw Error(file_, 0, field, message);
  }
  void positive(const std::string& field, std::int64_t value) const {
    if (value <= 0) fail(field, "must be positive, got " + std::to_string(value));
  }
  void positive(const std::string& field, double value) const {
    if (!(value > 0) || !std::isfinite(value))
      fail(field, "must be a positive finite number, got " + json(value).dump());
  }
  void probability(const std::string& field, double value) const {
    if (!(value >= 0 && value < 1)) fail(field, "must be in [0, 1), got " + json(value).dump());
  }
  void non_negative(const std::string& field, double value) const {
    if (!(value >= 0) || !std::isfinite(value))
      fail(field, "must be a finite number >= 0, got " + json(value).dump());
  }
  void token_id(const std::string& field, std::int64_t id, std::int64_t vocab_size) const {
    if (id < 0 || id >= vocab_size) {
      fail(field, "token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                      std::to_string(vocab_size) + ")");
    }
  }
  void heads(std::int64_t hidden_size, std::int64_t num_heads) const {
    if (hidden_size % num_heads != 0) {
      fail("num_attention_heads",
           std::to_string(num_heads) + " heads do not divide hidden_size " + std::to_string(hidden_size));
    }
  }
  void torch_dtype(const std::string& field, const std::string& value) const {
    if (value != "float32" && value != "float16" && value != "bfloat16") {
      fail(field, "must be \"float32\", \"float16\" or \"bfloat16\", got \"" + value + "\"");
    }
  }

 private:
  const std::string& file_;
};

// "torch_dtype", or "dtype" as transformers >= 4.56 writes it.
std::string read_torch_dtype(const Fields& fields) {
  const auto torch_dtype = fields.string("torch_dtype");
  const auto dtype = fields.string("dtype");
  if (torch_dtype && dtype && *torch_dtype != *dtype) {
    fields.fail("dtype", "\"" + *dtype + "\" disagrees with torch_dtype \"" + *torch_dtype + "\"");
  }
  return torch_dtype ? *torch_dtype : dtype.value_or("float32");
}

std::string model_type_of(const json& root, const std::string& file) {
  const Fields fields(root, file);
  const auto type = fields.string("model_type");
  if (!type) fields.fail("model_type", "missing (required)");
  if (*type != "bert" && *type != "llama" && *type != "qwen2") {
    fields.fail("model_type",
                "\"" + *type + "\" is not supported (expected \"bert\", \"llama\" or \"qwen2\")");
  }
  return *type;
}

// --- BERT
// ------------------------------------------------------------------------------------------------------

constexpr std::array<std::string_view, 5> kBertActivations{"gelu", "relu", "silu", "gelu_new",
                                                           "gelu_pytorch_tanh"};

void validate(const BertConfig& c, const std::string& file) {
  const Checks check(file);
  check.positive("vocab_size", c.vocab_size);
  check.positive("hidden_size", c.hidden_size);
  check.positive("num_hidden_layers", c.num_hidden_layers);
  check.positive("num_attention_heads", c.num_attention_heads);
  check.positive("intermediate_size", c.intermediate_size);
  check.heads(c.hidden_size, c.num_attention_heads);
  if (std::find(kBertActivations.begin(), kBertActivations.end(), c.hidden_act) == kBertActivations.end()) {
    check.fail("hidden_act",
               "\"" + c.hidden_act + "\" is not supported (gelu, relu, silu, gelu_new, gelu_pytorch_tanh)");
  }
  check.positive("max_position_embeddings", c.max_position_embeddings);
  check.positive("type_vocab_size", c.type_vocab_size);
  check.positive("layer_norm_eps", c.layer_norm_eps);
  check.probability("hidden_dropout_prob", c.hidden_dropout_prob);
  check.probability("attention_probs_dropout_prob", c.attention_probs_dropout_prob);
  check.non_negative("initializer_range", c.initializer_range);
  check.positive("num_labels", c.num_labels);
  check.token_id("pad_token_id", c.pad_token_id, c.vocab_size);
  check.torch_dtype("torch_dtype", c.torch_dtype);
}

BertConfig bert_from_json(const json& root, const std::string& file) {
  const Fields f(root, file);
  if (const auto type = model_type_of(root, file); type != "bert") {
    f.fail("model_type", "is \"" + type + "\", expected \"bert\"");
  }
  BertConfig c;
  c.vocab_size = f.required_integer("vocab_size");
  c.hidden_size = f.required_integer("hidden_size");
  c.num_hidden_layers = f.required_integer("num_hidden_layers");
  c.num_attention_heads = f.required_integer("num_attention_heads");
  c.intermediate_size = f.required_integer("intermediate_size");
  c.hidden_act = f.string("hidden_act", c.hidden_act);
  c.max_position_embeddings = f.integer("max_position_embeddings", c.max_position_embeddings);
  c.type_vocab_size = f.integer("type_vocab_size", c.type_vocab_size);
  c.layer_norm_eps = f.number("layer_norm_eps", c.layer_norm_eps);
  c.hidden_dropout_prob = f.number("hidden_dropout_prob", c.hidden_dropout_prob);
  c.attention_probs_dropout_prob = f.number("attention_probs_dropout_prob", c.attention_probs_dropout_prob);
  c.initializer_range = f.number("initializer_range", c.initializer_range);
  c.pad_token_id = f.integer("pad_token_id", c.pad_token_id);
  c.torch_dtype = read_torch_dtype(f);
  if (const auto type = f.string("position_embedding_type"); type && *type != "absolute") {
    f.fail("position_embedding_type", "\"" + *type + "\" is not supported (only \"absolute\")");
  }
  const auto num_labels = f.integer("num_labels");
  if (const json* id2label = f.find("id2label")) {
    if (!id2label->is_object()) f.fail("id2label", "must be an object, got " + describe(*id2label));
    c.num_labels = static_cast<std::int64_t>(id2label->size());
    if (num_labels && *num_labels != c.num_labels) {
      f.fail("num_labels", std::to_string(*num_labels) + " disagrees with the " +
                               std::to_string(c.num_labels) + " labels of id2label");
    }
  } else if (num_labels) {
    c.num_labels = *num_labels;
  }
  validate(c, file);
  return c;
}

// --- decoders
// --------------------------------------------------------------------------------------------------

void validate(const DecoderConfig& c, const std::string& file) {
  const Checks check(file);
  if (c.model_type != "llama" && c.model_type != "qwen2") {
    check.fail("model_type",
               "\"" + c.model_type + "\" is not a decoder type (expected \"llama\" or \"qwen2\")");
  }
  check.positive("vocab_size", c.vocab_size);
  check.positive("hidden_size", c.hidden_size);
  check.positive("intermediate_size", c.intermediate_size);
  check.positive("num_hidden_layers", c.num_hidden_layers);
  check.positive("num_attention_heads", c.num_attention_heads);
  check.positive("num_key_value_heads", c.num_key_value_heads);
  check.heads(c.hidden_size, c.num_attention_heads);
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    check.fail("num_key_value_heads", std::to_string(c.num_key_value_heads) +
                                          " key/value heads do not divide num_attention_heads " +
                                          std::to_string(c.num_attention_heads));
  }
  if (c.head_dim() % 2 != 0) {
    check.fail("num_attention_heads",
               "head dimension " + std::to_string(c.head_dim()) + " must be even (rotary)");
  }
  if (c.hidden_act != "silu")
    check.fail("hidden_act", "\"" + c.hidden_act + "\" is not supported (only \"silu\")");
  check.positive("max_position_embeddings", c.max_position_embeddings);
  check.positive("rms_norm_eps", c.rms_norm_eps);
  check.positive("rope_theta", c.rope_theta);
  check.non_negative("initializer_range", c.initializer_range);
  if (c.bos_token_id) check.token_id("bos_token_id", *c.bos_token_id, c.vocab_size);
  for (const std::int64_t id : c.eos_token_ids) check.token_id("eos_token_id", id, c.vocab_size);
  if (c.pad_token_id) check.token_id("pad_token_id", *c.pad_token_id, c.vocab_size);
  check.torch_dtype("torch_dtype", c.torch_dtype);
  if (c.model_type == "llama" && c.attention_bias != c.attention_output_bias) {
    check.fail("attention_bias", "llama has one attention_bias for q/k/v and the output projection alike");
  }
  if (c.model_type == "qwen2" && (!c.attention_bias || c.attention_output_bias || c.mlp_bias)) {
    check.fail("attention_bias", "qwen2 always has q/k/v biases and no output or MLP bias");
  }
}

DecoderConfig decoder_from_json(const json& root, const std::string& file) {
  const Fields f(root, file);
  DecoderConfig c;
  c.model_type = model_type_of(root, file);
  if (c.model_type == "bert")
    f.fail("model_type", "is \"bert\", expected a decoder (\"llama\" or \"qwen2\")");
  const bool qwen2 = c.model_type == "qwen2";
  c.vocab_size = f.required_integer("vocab_size");
  c.hidden_size = f.required_integer("hidden_size");
  c.intermediate_size = f.required_integer("intermediate_size");
  c.num_hidden_layers = f.required_integer("num_hidden_layers");
  c.num_attention_heads = f.required_integer("num_attention_heads");
  c.num_key_value_heads = f.integer("num_key_value_heads", c.num_attention_heads);
  c.hidden_act = f.string("hidden_act", "silu");
  if (c.hidden_act == "swish") c.hidden_act = "silu";  // transformers' alias
  c.max_position_embeddings = f.integer("max_position_embeddings", qwen2 ? 32768 : 2048);
  c.rms_norm_eps = f.number("rms_norm_eps", 1e-6);
  c.rope_theta = f.number("rope_theta", 10000.0);
  c.initializer_range = f.number("initializer_range", 0.02);
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  if (qwen2) {
    c.attention_bias = true;
    c.attention_output_bias = false;
    c.mlp_bias = false;
    if (f.boolean("use_sliding_window", false)) {
      f.fail("use_sliding_window", "sliding-window attention is not supported");
    }
  } else {
    c.attention_bias = c.attention_output_bias = f.boolean("attention_bias", false);
    c.mlp_bias = f.boolean("mlp_bias", false);
  }
  c.bos_token_id = f.integer("bos_token_id");
  if (!c.bos_token_id && !qwen2 && !root.contains("bos_token_id")) c.bos_token_id = 1;
  if (const json* eos = f.find("eos_token_id")) {
    if (eos->is_array()) {
      if (eos->empty()) f.fail("eos_token_id", "must not be an empty list");
      for (const auto& id : *eos) c.eos_token_ids.push_back(f.integer_value("eos_token_id", id));
    } else {
      c.eos_token_ids.push_back(f.integer_value("eos_token_id", *eos));
    }
  } else if (!qwen2 && !root.contains("eos_token_id")) {
    c.eos_token_ids = {2};
  }
  c.pad_token_id = f.integer("pad_token_id");
  c.torch_dtype = read_torch_dtype(f);
  if (f.find("rope_scaling") != nullptr)
    f.fail("rope_scaling", "rotary scaling is not supported (must be null)");
  if (const auto head_dim = f.integer("head_dim")) {
    if (c.num_attention_heads > 0 &&
        (c.hidden_size % c.num_attention_heads != 0 || *head_dim != c.hidden_size / c.num_attention_heads)) {
      f.fail("head_dim", std::to_string(*head_dim) +
                             " is not hidden_size / num_attention_heads (only that is supported)");
    }
  }
  validate(c, file);
  return c;
}

void write_json(const std::string& path, const json& value) {
  write_file_atomically(path, [&](std::ostream& out) { out << value.dump(2) << "\n"; });
}

}  // namespace

std::string read_model_type(const std::string& path) {
  return model_type_of(parse_object(read_text(path), path), path);
}

BertConfig parse_bert_config(std::string_view json_text, const std::string& file) {
  return bert_from_json(parse_object(json_text, file), file);
}
BertConfig read_bert_config(const std::string& path) {
  return parse_bert_config(read_text(path), path);
}

json bert_config_to_json(const BertConfig& c, const std::string& file) {
  validate(c, file);
  json id2label = json::object();
  json label2id = json::object();
  for (std::int64_t i = 0; i < c.num_labels; ++i) {
    const std::string label = "LABEL_" + std::to_string(i);
    id2label[std::to_string(i)] = label;
    label2id[label] = i;
  }
  return json{
      {"architectures", {"BertForSequenceClassification"}},
      {"attention_probs_dropout_prob", c.attention_probs_dropout_prob},
      {"classifier_dropout", nullptr},
      {"hidden_act", c.hidden_act},
      {"hidden_dropout_prob", c.hidden_dropout_prob},
      {"hidden_size", c.hidden_size},
      {"id2label", id2label},
      {"initializer_range", c.initializer_range},
      {"intermediate_size", c.intermediate_size},
      {"label2id", label2id},
      {"layer_norm_eps", c.layer_norm_eps},
      {"max_position_embeddings", c.max_position_embeddings},
      {"model_type", "bert"},
      {"num_attention_heads", c.num_attention_heads},
      {"num_hidden_layers", c.num_hidden_layers},
      {"pad_token_id", c.pad_token_id},
      {"position_embedding_type", "absolute"},
      {"torch_dtype", c.torch_dtype},
      {"type_vocab_size", c.type_vocab_size},
      {"use_cache", true},
      {"vocab_size", c.vocab_size},
  };
}
void write_bert_config(const std::string& path, const BertConfig& config) {
  write_json(path, bert_config_to_json(config, path));
}

DecoderConfig parse_decoder_config(std::string_view json_text, const std::string& file) {
  return decoder_from_json(parse_object(json_text, file), file);
}
DecoderConfig read_decoder_config(const std::string& path) {
  return parse_decoder_config(read_text(path), path);
}

json decoder_config_to_json(const DecoderConfig& c, const std::string& file) {
  validate(c, file);
  const bool qwen2 = c.model_type == "qwen2";
  json out{
      {"architectures", {qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
      {"attention_dropout", 0.0},
      {"hidden_act", c.hidden_act},
      {"hidden_size", c.hidden_size},
      {"initializer_range", c.initializer_range},
      {"intermediate_size", c.intermediate_size},
      {"max_position_embeddings", c.max_position_embeddings},
      {"model_type", c.model_type},
      {"num_attention_heads", c.num_attention_heads},
      {"num_hidden_layers", c.num_hidden_layers},
      {"num_key_value_heads", c.num_key_value_heads},
      {"rms_norm_eps", c.rms_norm_eps},
      {"rope_scaling", nullptr},
      {"rope_theta", c.rope_theta},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"torch_dtype", c.torch_dtype},
      {"use_cache", true},
      {"vocab_size", c.vocab_size},
  };
  // An absent id is written as null: transformers' defaults (llama: bos 1, eos 2) must not fill it back in.
  out["bos_token_id"] = c.bos_token_id ? json(*c.bos_token_id) : json(nullptr);
  if (c.eos_token_ids.empty()) {
    out["eos_token_id"] = nullptr;
  } else if (c.eos_token_ids.size() == 1) {
    out["eos_token_id"] = c.eos_token_ids.front();
  } else {
    out["eos_token_id"] = c.eos_token_ids;
  }
  out["pad_token_id"] = c.pad_token_id ? json(*c.pad_token_id) : json(nullptr);
  if (qwen2) {
    out["use_sliding_window"] = false;
    out["sliding_window"] = c.max_position_embeddings;
    out["max_window_layers"] = c.num_hidden_layers;
  } else {
    out["attention_bias"] = c.attention_bias;
    out["mlp_bias"] = c.mlp_bias;
    out["head_dim"] = c.head_dim();
    out["pretraining_tp"] = 1;
  }
  return out;
}
void write_decoder_config(const std::string& path, const DecoderConfig& config) {
  write_json(path, decoder_config_to_json(config, path));
}

// --- disranker.json
// --------------------------------------------------------------------------------------------

std::string_view to_string(RankerRole role) {
  return role == RankerRole::kTeacher ? "teacher" : "student";
}

std::string_view to_string(Pooling pooling) {
  switch (pooling) {
    case Pooling::kLastToken:
      return "last_token";
    case Pooling::kMean:
      return "mean";
    case Pooling::kCls:
      return "cls";
  }
  return "cls";
}

std::string_view to_string(ScoreType type) {
  switch (type) {
    case ScoreType::kRaw:
      return "raw";
    case ScoreType::kSigmoid:
      return "sigmoid";
    case ScoreType::kAffine:
      return "affine";
  }
  return "raw";
}

double ScoreTransform::apply(double raw) const {
  if (type == ScoreType::kRaw) return raw;
  const double x = scale * raw + bias;
  if (type == ScoreType::kAffine) return x;
  // A sigmoid that neither overflows nor loses the tail: exp of a non-positive number only.
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

namespace {

template <typename Enum, std::size_t N>
Enum parse_enum(const Fields& fields, const std::string& field, const std::array<Enum, N>& values) {
  const auto text = fields.string(field);
  if (!text) fields.fail(field, "missing (required)");
  std::string expected;
  for (const Enum value : values) {
    if (to_string(value) == *text) return value;
    expected += (expected.empty() ? "\"" : ", \"") + std::string(to_string(value)) + "\"";
  }
  fields.fail(field, "\"" + *text + "\" is not one of " + expected);
}

void check_keys(const json& object, const std::string& file, const std::string& prefix,
                std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      throw Error(file, 0, prefix + key, "unknown field");
    }
  }
}

void validate(const RankerManifest& m, const std::string& file) {
  const Checks check(file);
  check.positive("max_length", m.max_length);
  if (!std::isfinite(m.score.scale)) check.fail("score.scale", "must be a finite number");
  if (!std::isfinite(m.score.bias)) check.fail("score.bias", "must be a finite number");
  if (m.score.type == ScoreType::kRaw && (m.score.scale != 1.0 || m.score.bias != 0.0)) {
    check.fail("score", "a raw score takes no scale or bias (use \"affine\")");
  }
  if (!m.provenance.is_object()) check.fail("provenance", "must be an object, got " + describe(m.provenance));
}

}  // namespace

RankerManifest parse_ranker_manifest(std::string_view json_text, const std::string& file) {
  const json root = parse_object(json_text, file);
  check_keys(root, file, "", {"version", "role", "pooling", "score", "max_length", "provenance"});
  const Fields f(root, file);
  if (const auto version = f.integer("version"); version && *version != 1) {
    f.fail("version", "version " + std::to_string(*version) + " is not supported (expected 1)");
  }
  RankerManifest m;
  m.role = parse_enum(f, "role", std::array{RankerRole::kTeacher, RankerRole::kStudent});
  m.pooling = parse_enum(f, "pooling", std::array{Pooling::kLastToken, Pooling::kMean, Pooling::kCls});
  if (const json* score = f.find("score")) {
    if (!score->is_object()) f.fail("score", "must be an object, got " + describe(*score));
    check_keys(*score, file, "score.", {"type", "scale", "bias"});
    const Fields s(*score, file, "score.");
    m.score.type =
        parse_enum(s, "type", std::array{ScoreType::kRaw, ScoreType::kSigmoid, ScoreType::kAffine});
    m.score.scale = s.number("scale", 1.0);
    m.score.bias = s.number("bias", 0.0);
  }
  m.max_length = f.required_integer("max_length");
  if (const json* provenance = f.find("provenance")) m.provenance = *provenance;
  validate(m, file);
  return m;
}

RankerManifest read_ranker_manifest(const std::string& path) {
  return parse_ranker_manifest(read_text(path), path);
}

json ranker_manifest_to_json(const RankerManifest& m, const std::string& file) {
  validate(m, file);
  json score{{"type", to_string(m.score.type)}};
  if (m.score.type != ScoreType::kRaw) {
    score["scale"] = m.score.scale;
    score["bias"] = m.score.bias;
  }
  return json{{"version", 1},   {"role", to_string(m.role)},  {"pooling", to_string(m.pooling)},
              {"score", score}, {"max_length", m.max_length}, {"provenance", m.provenance}};
}

void write_ranker_manifest(const std::string& path, const RankerManifest& manifest) {
  write_json(path, ranker_manifest_to_json(manifest, path));
}

}  // namespace disranker
