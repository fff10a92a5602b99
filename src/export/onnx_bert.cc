#include "export/onnx_bert.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <numbers>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "model/safetensors.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

// ---- Reading the checkpoint
// ---------------------------------------------------------------------------------

// The checkpoint's tensors under transformers' BertForSequenceClassification names. A bare BertModel
// checkpoint stores the encoder without the "bert." prefix; TF-era checkpoints name LayerNorm parameters
// gamma / beta.
class BertWeights {
 public:
  explicit BertWeights(const std::string& model_dir) : checkpoint_(open(model_dir)) {}

  const std::string& path() const { return checkpoint_.path(); }

  // The tensor `name` as float32, checked against `shape`.
  std::vector<float> get(const std::string& name, const std::vector<std::int64_t>& shape) {
    std::vector<std::string> candidates{name};
    if (name.starts_with("bert.")) candidates.push_back(name.substr(5));
    const std::size_t count = candidates.size();
    for (std::size_t i = 0; i < count; ++i) {
      const std::string c = candidates[i];  // a copy: push_back may reallocate
      if (c.ends_with("LayerNorm.weight")) candidates.push_back(c.substr(0, c.size() - 6) + "gamma");
      if (c.ends_with("LayerNorm.bias")) candidates.push_back(c.substr(0, c.size() - 4) + "beta");
    }
    const TensorView* found = nullptr;
    for (const auto& c : candidates) {
      if (const TensorView* t = checkpoint_.find(c)) {
        if (found != nullptr) {
          throw Error(path(), 0, c,
                      "holds the same parameter as " + found->name + " (give only one of them)");
        }
        found = t;
      }
    }
    if (found == nullptr) {
      std::string also;
      for (std::size_t i = 1; i < candidates.size(); ++i) also += (i > 1 ? ", " : "") + candidates[i];
      const bool head = name.starts_with("classifier.") || name.starts_with("bert.pooler.");
      throw Error(path(), 0, name,
                  "missing tensor" + (also.empty() ? std::string() : " (also looked for " + also + ")") +
                      (head ? ": the checkpoint has no ranking head (pooler + classifier); an MLM or bare "
                              "BertModel checkpoint must be fine-tuned as a ranker first"
                            : ""));
    }
    if (found->shape != shape) {
      throw Error(path(), 0, found->name,
                  "has shape " + shape_text(found->shape) + ", config.json implies " + shape_text(shape));
    }
    if (!is_float_dtype(found->dtype)) {
      throw Error(path(), 0, found->name,
                  "has dtype " + std::string(dtype_name(found->dtype)) + ", expected F32, F16, BF16 or F64");
    }
    used_.insert(found->name);
    parameters_ += found->numel();
    return found->to_float32(path());
  }

  // Tensors no get() asked for.
  std::vector<std::string> unused() const {
    std::vector<std::string> out;
    for (const auto& name : checkpoint_.names()) {
      if (!used_.contains(name)) out.push_back(name);
    }
    return out;
  }

  std::int64_t parameters() const { return parameters_; }

 private:
  static SafetensorsCheckpoint open(const std::string& model_dir) {
    const fs::path dir(model_dir);
    if (!fs::exists(dir / SafetensorsCheckpoint::kSingleFile) &&
        !fs::exists(dir / SafetensorsCheckpoint::kIndexFile)) {
      std::string hint;
      if (fs::exists(dir / "pytorch_model.bin")) {
        hint = " (pytorch_model.bin is not read: save the model as safetensors)";
      }
      throw Error((dir / SafetensorsCheckpoint::kSingleFile).string(), 0, "",
                  "no model.safetensors or model.safetensors.index.json in the model directory" + hint);
    }
    return SafetensorsCheckpoint::open(model_dir);
  }

  SafetensorsCheckpoint checkpoint_;
  std::set<std::string> used_;
  std::int64_t parameters_ = 0;
};

// ---- Building the graph
// ---------------------------------------------------------------------------------------

onnx::AttributeProto attribute(const std::string& name, std::int64_t value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(value);
  return a;
}

onnx::AttributeProto attribute(const std::string& name, float value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::FLOAT);
  a.set_f(value);
  return a;
}

onnx::AttributeProto attribute(const std::string& name, const std::vector<std::int64_t>& values) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INTS);
  for (auto v : values) a.add_ints(v);
  return a;
}

// Adds nodes and initializers to a graph under unique, readable names.
class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto& graph) : graph_(graph) {}

  // A node with one output (returned) named after `name`.
  std::string op(const std::string& type, const std::vector<std::string>& inputs, const std::string& name,
                 const std::vector<onnx::AttributeProto>& attributes = {}) {
    return ops(type, inputs, name, 1, attributes).front();
  }

  // A node with `outputs` outputs, named name, name:1, name:2, ...
  std::vector<std::string> ops(const std::string& type, const std::vector<std::string>& inputs,
                               const std::string& name, int outputs,
                               const std::vector<onnx::AttributeProto>& attributes = {}) {
    onnx::NodeProto* node = graph_.add_node();
    const std::string unique = fresh(name);
    node->set_name(unique);
    node->set_op_type(type);
    for (const auto& input : inputs) node->add_input(input);
    std::vector<std::string> names;
    for (int i = 0; i < outputs; ++i) {
      names.push_back(i == 0 ? unique : unique + ":" + std::to_string(i));
      node->add_output(names.back());
    }
    for (const auto& a : attributes) *node->add_attribute() = a;
    return names;
  }

  std::string floats(const std::string& name, const std::vector<std::int64_t>& dims,
                     const std::vector<float>& data) {
    return initializer(name, onnx::TensorProto::FLOAT, dims, data.data(), data.size() * sizeof(float));
  }
  std::string int64s(const std::string& name, const std::vector<std::int64_t>& dims,
                     const std::vector<std::int64_t>& data) {
    return initializer(name, onnx::TensorProto::INT64, dims, data.data(), data.size() * sizeof(std::int64_t));
  }
  std::string int8s(const std::string& name, const std::vector<std::int64_t>& dims,
                    const std::vector<std::int8_t>& data) {
    return initializer(name, onnx::TensorProto::INT8, dims, data.data(), data.size());
  }

  // A float32 scalar constant, shared by every use of the same value.
  std::string scalar(float value) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &value, sizeof bits);
    auto [it, added] = scalars_.try_emplace(bits);
    if (added) {
      std::ostringstream name;
      name << "const_" << value;
      it->second = floats(fresh(name.str()), {}, {value});
    }
    return it->second;
  }

  // A 1-D int64 constant (axes, shapes, indices), shared by every use of the same values.
  std::string ints(const std::vector<std::int64_t>& values) {
    auto [it, added] = int_constants_.try_emplace(values);
    if (added) {
      std::string name = "const_i64";
      for (auto v : values) name += "_" + (v < 0 ? "m" + std::to_string(-v) : std::to_string(v));
      it->second = int64s(fresh(name), {static_cast<std::int64_t>(values.size())}, values);
    }
    return it->second;
  }

  std::string fresh(const std::string& name) {
    const int n = used_[name]++;
    return n == 0 ? name : name + "_" + std::to_string(n);
  }

 private:
  std::string initializer(const std::string& name, int type, const std::vector<std::int64_t>& dims,
                          const void* data, std::size_t bytes) {
    // Every architecture this builds for is little-endian, as raw_data requires.
    static_assert(std::endian::native == std::endian::little);
    onnx::TensorProto* t = graph_.add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (auto d : dims) t->add_dims(d);
    t->set_raw_data(data, bytes);
    return name;
  }

  onnx::GraphProto& graph_;
  std::map<std::string, int> used_;
  std::map<std::uint32_t, std::string> scalars_;
  std::map<std::vector<std::int64_t>, std::string> int_constants_;
};

class BertGraph {
 public:
  BertGraph(const BertConfig& config, BertWeights& weights, const OnnxExportOptions& options,
            onnx::GraphProto& graph)
      : config_(config), weights_(weights), options_(options), g_(graph) {}

  // Builds the whole graph; returns the logits' name.
  std::string build() {
    const std::int64_t h = config_.hidden_size;
    const std::string input_ids = "input_ids", attention_mask = "attention_mask",
                      token_type_ids = "token_type_ids";

    // Embeddings: word + position (0..T-1) + token type → LayerNorm.
    const std::string word =
        g_.op("Gather",
              {g_.floats("bert.embeddings.word_embeddings.weight", {config_.vocab_size, h},
                         weights_.get("bert.embeddings.word_embeddings.weight", {config_.vocab_size, h})),
               input_ids},
              "embeddings/word");
    const std::string shape = g_.op("Shape", {input_ids}, "embeddings/input_shape");
    const std::string length = g_.op("Gather", {shape, g_.ints({1})}, "embeddings/sequence_length",
                                     {attribute("axis", std::int64_t{0})});
    const std::string position =
        g_.op("Slice",
              {g_.floats("bert.embeddings.position_embeddings.weight", {config_.max_position_embeddings, h},
                         weights_.get("bert.embeddings.position_embeddings.weight",
                                      {config_.max_position_embeddings, h})),
               g_.ints({0}), length, g_.ints({0})},
              "embeddings/position");
    const std::string token_type = g_.op(
        "Gather",
        {g_.floats(
             "bert.embeddings.token_type_embeddings.weight", {config_.type_vocab_size, h},
             weights_.get("bert.embeddings.token_type_embeddings.weight", {config_.type_vocab_size, h})),
         token_type_ids},
        "embeddings/token_type");
    std::string x = g_.op("Add", {word, position}, "embeddings/word_position");
    x = g_.op("Add", {x, token_type}, "embeddings/sum");
    x = layer_norm(x, "bert.embeddings.LayerNorm", "embeddings/LayerNorm");

    // The additive attention mask [B, 1, 1, T]: 0 for tokens, float32's lowest value for padding.
    std::string mask = g_.op("Cast", {attention_mask}, "attention_mask/float",
                             {attribute("to", std::int64_t{onnx::TensorProto::FLOAT})});
    mask = g_.op("Unsqueeze", {mask, g_.ints({1, 2})}, "attention_mask/unsqueeze");
    mask = g_.op("Sub", {g_.scalar(1.0f), mask}, "attention_mask/inverted");
    mask = g_.op("Mul", {mask, g_.scalar(std::numeric_limits<float>::lowest())}, "attention_mask/additive");

    for (std::int64_t i = 0; i < config_.num_hidden_layers; ++i) x = layer(x, mask, i);

    // Pooler and classifier.
    std::string first = g_.op("Gather", {x, g_.int64s(g_.fresh("const_i64_scalar_0"), {}, {0})},
                              "pooler/first_token", {attribute("axis", std::int64_t{1})});
    std::string pooled = linear(first, "bert.pooler.dense", h, h, "pooler/dense");
    pooled = g_.op("Tanh", {pooled}, "pooler/tanh");
    const std::string logits = linear(pooled, "classifier", h, 1, "classifier");
    return g_.op("Identity", {logits}, "logits");
  }

 private:
  std::string layer(const std::string& x, const std::string& mask, std::int64_t index) {
    const std::string p = "bert.encoder.layer." + std::to_string(index) + ".";
    const std::string n = "layer" + std::to_string(index) + "/";
    const std::int64_t h = config_.hidden_size, heads = config_.num_attention_heads, hd = config_.head_dim();

    const std::string split = g_.ints({0, 0, heads, hd});
    auto heads_of = [&](const std::string& name, const std::vector<std::int64_t>& perm) {
      const std::string projected = linear(x, p + "attention.self." + name, h, h, n + "attention/" + name);
      const std::string reshaped = g_.op("Reshape", {projected, split}, n + "attention/" + name + "_heads");
      return g_.op("Transpose", {reshaped}, n + "attention/" + name + "_transposed",
                   {attribute("perm", perm)});
    };
    const std::string q = heads_of("query", {0, 2, 1, 3});  // [B, heads, T, hd]
    const std::string k = heads_of("key", {0, 2, 3, 1});    // [B, heads, hd, T]
    const std::string v = heads_of("value", {0, 2, 1, 3});  // [B, heads, T, hd]
    std::string scores = g_.op("MatMul", {q, k}, n + "attention/scores");
    scores = g_.op("Div", {scores, g_.scalar(static_cast<float>(std::sqrt(static_cast<double>(hd))))},
                   n + "attention/scaled");
    scores = g_.op("Add", {scores, mask}, n + "attention/masked");
    const std::string probs =
        g_.op("Softmax", {scores}, n + "attention/probs", {attribute("axis", std::int64_t{-1})});
    std::string context = g_.op("MatMul", {probs, v}, n + "attention/context");
    context = g_.op("Transpose", {context}, n + "attention/context_transposed",
                    {attribute("perm", std::vector<std::int64_t>{0, 2, 1, 3})});
    context = g_.op("Reshape", {context, g_.ints({0, 0, h})}, n + "attention/context_merged");

    std::string attended = linear(context, p + "attention.output.dense", h, h, n + "attention/output");
    attended = g_.op("Add", {attended, x}, n + "attention/residual");
    attended = layer_norm(attended, p + "attention.output.LayerNorm", n + "attention/LayerNorm");

    std::string inner =
        linear(attended, p + "intermediate.dense", h, config_.intermediate_size, n + "intermediate");
    inner = activation(inner, n + "intermediate/" + config_.hidden_act);
    std::string out = linear(inner, p + "output.dense", config_.intermediate_size, h, n + "output");
    out = g_.op("Add", {out, attended}, n + "output/residual");
    return layer_norm(out, p + "output.LayerNorm", n + "output/LayerNorm");
  }

  // y = x Wᵀ + b for the checkpoint's Linear `prefix` (weight [out, in], bias [out]).
  std::string linear(const std::string& x, const std::string& prefix, std::int64_t in, std::int64_t out,
                     const std::string& name) {
    const std::vector<float> weight = weights_.get(prefix + ".weight", {out, in});
    const std::string bias = g_.floats(prefix + ".bias", {out}, weights_.get(prefix + ".bias", {out}));
    std::vector<float> transposed(weight.size());  // [in, out]
    for (std::int64_t o = 0; o < out; ++o) {
      for (std::int64_t i = 0; i < in; ++i) transposed[i * out + o] = weight[o * in + i];
    }
    std::string y;
    if (options_.int8) {
      y = quantized_matmul(x, transposed, prefix, in, out, name);
    } else {
      y = g_.op("MatMul", {x, g_.floats(prefix + ".weight_transposed", {in, out}, transposed)},
                name + "/MatMul");
    }
    return g_.op("Add", {y, bias}, name);
  }

  // ONNX Runtime's dynamic quantization of x · W: uint8 activations quantized at run time, int8 weights.
  std::string quantized_matmul(const std::string& x, const std::vector<float>& w, const std::string& prefix,
                               std::int64_t in, std::int64_t out, const std::string& name) {
    const std::int64_t groups = options_.per_channel ? out : 1;
    std::vector<float> scales(groups, 0.0f);
    for (std::int64_t i = 0; i < in; ++i) {
      for (std::int64_t o = 0; o < out; ++o) {
        float& s = scales[options_.per_channel ? o : 0];
        s = std::max(s, std::abs(w[i * out + o]));
      }
    }
    const float top = options_.reduce_range ? 64.0f : 127.0f;
    for (auto& s : scales) s = s > 0.0f ? s / top : 1.0f;
    std::vector<std::int8_t> q(w.size());
    for (std::int64_t i = 0; i < in; ++i) {
      for (std::int64_t o = 0; o < out; ++o) {
        const float v = std::nearbyint(w[i * out + o] / scales[options_.per_channel ? o : 0]);
        q[i * out + o] = static_cast<std::int8_t>(std::clamp(v, -top, top));
      }
    }
    const std::vector<std::int64_t> scale_dims =
        options_.per_channel ? std::vector<std::int64_t>{out} : std::vector<std::int64_t>{};
    const std::string weight_q = g_.int8s(prefix + ".weight_quantized", {in, out}, q);
    const std::string weight_scale = g_.floats(prefix + ".weight_scale", scale_dims, scales);
    const std::string weight_zero = g_.int8s(prefix + ".weight_zero_point", scale_dims,
                                             std::vector<std::int8_t>(static_cast<std::size_t>(groups), 0));

    auto found = quantized_inputs_.find(x);
    if (found == quantized_inputs_.end()) {
      const auto outputs = g_.ops("DynamicQuantizeLinear", {x}, x + "/quantized", 3);
      found = quantized_inputs_.emplace(x, outputs).first;
    }
    const auto& xq = found->second;  // uint8 data, float scale, uint8 zero point
    const std::string product =
        g_.op("MatMulInteger", {xq[0], weight_q, xq[2], weight_zero}, name + "/MatMulInteger");
    const std::string as_float = g_.op("Cast", {product}, name + "/MatMulInteger/float",
                                       {attribute("to", std::int64_t{onnx::TensorProto::FLOAT})});
    const std::string scale = g_.op("Mul", {xq[1], weight_scale}, name + "/scale");
    return g_.op("Mul", {as_float, scale}, name + "/MatMul");
  }

  std::string layer_norm(const std::string& x, const std::string& prefix, const std::string& name) {
    const std::int64_t h = config_.hidden_size;
    const std::string gamma = g_.floats(prefix + ".weight", {h}, weights_.get(prefix + ".weight", {h}));
    const std::string beta = g_.floats(prefix + ".bias", {h}, weights_.get(prefix + ".bias", {h}));
    const float eps = static_cast<float>(config_.layer_norm_eps);
    if (options_.opset >= 17) {
      return g_.op("LayerNormalization", {x, gamma, beta}, name,
                   {attribute("axis", std::int64_t{-1}), attribute("epsilon", eps)});
    }
    // The decomposition ONNX Runtime's LayerNormFusion recognises.
    const std::vector<onnx::AttributeProto> last_axis{attribute("axes", std::vector<std::int64_t>{-1}),
                                                      attribute("keepdims", std::int64_t{1})};
    const std::string mean = g_.op("ReduceMean", {x}, name + "/mean", last_axis);
    const std::string centred = g_.op("Sub", {x, mean}, name + "/centred");
    const std::string squared = g_.op("Pow", {centred, g_.scalar(2.0f)}, name + "/squared");
    const std::string variance = g_.op("ReduceMean", {squared}, name + "/variance", last_axis);
    const std::string shifted = g_.op("Add", {variance, g_.scalar(eps)}, name + "/variance_eps");
    const std::string deviation = g_.op("Sqrt", {shifted}, name + "/std");
    const std::string normalised = g_.op("Div", {centred, deviation}, name + "/normalised");
    const std::string scaled = g_.op("Mul", {normalised, gamma}, name + "/scaled");
    return g_.op("Add", {scaled, beta}, name);
  }

  std::string activation(const std::string& x, const std::string& name) {
    const std::string& act = config_.hidden_act;
    if (act == "gelu") {  // exact: x · 0.5 · (1 + erf(x / √2)), the form ONNX Runtime's GeluFusion recognises
      std::string y = g_.op("Div", {x, g_.scalar(std::numbers::sqrt2_v<float>)}, name + "/div");
      y = g_.op("Erf", {y}, name + "/erf");
      y = g_.op("Add", {y, g_.scalar(1.0f)}, name + "/add");
      y = g_.op("Mul", {x, y}, name + "/mul");
      return g_.op("Mul", {y, g_.scalar(0.5f)}, name);
    }
    if (act == "gelu_new" || act == "gelu_pytorch_tanh") {
      // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
      std::string y = g_.op("Pow", {x, g_.scalar(3.0f)}, name + "/cube");
      y = g_.op("Mul", {y, g_.scalar(0.044715f)}, name + "/cube_scaled");
      y = g_.op("Add", {x, y}, name + "/inner");
      const auto sqrt_2_over_pi = static_cast<float>(std::sqrt(2.0 / std::numbers::pi));
      y = g_.op("Mul", {y, g_.scalar(sqrt_2_over_pi)}, name + "/inner_scaled");
      y = g_.op("Tanh", {y}, name + "/tanh");
      y = g_.op("Add", {y, g_.scalar(1.0f)}, name + "/add");
      y = g_.op("Mul", {x, y}, name + "/mul");
      return g_.op("Mul", {y, g_.scalar(0.5f)}, name);
    }
    if (act == "relu") return g_.op("Relu", {x}, name);
    if (act == "silu") {
      const std::string s = g_.op("Sigmoid", {x}, name + "/sigmoid");
      return g_.op("Mul", {x, s}, name);
    }
    throw Error("config.json", 0, "hidden_act", "\"" + act + "\" cannot be exported");
  }

  const BertConfig& config_;
  BertWeights& weights_;
  const OnnxExportOptions& options_;
  GraphBuilder g_;
  std::map<std::string, std::vector<std::string>> quantized_inputs_;
};

void add_value_info(onnx::ValueInfoProto* info, const std::string& name, int type,
                    const std::vector<std::string>& dims, const std::vector<std::int64_t>& sizes = {}) {
  info->set_name(name);
  auto* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(type);
  auto* shape = tensor->mutable_shape();
  for (std::size_t i = 0; i < dims.size(); ++i) {
    auto* dim = shape->add_dim();
    if (dims[i].empty()) {
      dim->set_dim_value(sizes.at(i));
    } else {
      dim->set_dim_param(dims[i]);
    }
  }
}

}  // namespace

OnnxExportSummary export_bert_onnx(const std::string& model_dir, const std::string& out_path,
                                   const OnnxExportOptions& options) {
  const fs::path dir(model_dir);
  if (!fs::is_directory(dir)) throw Error(model_dir, 0, "", "is not a model directory");
  if (options.opset < kOnnxMinOpset || options.opset > kOnnxMaxOpset) {
    throw Error("--opset " + std::to_string(options.opset) + " is not supported (" +
                std::to_string(kOnnxMinOpset) + " to " + std::to_string(kOnnxMaxOpset) + ")");
  }
  const std::string config_path = (dir / kHfConfigFile).string();
  if (!fs::exists(config_path))
    throw Error(config_path, 0, "", "missing: not a Hugging Face model directory");
  // read_model_type names the file and says what the type is when it is not "bert".
  if (const auto type = read_model_type(config_path); type != "bert") {
    throw Error(
        config_path, 0, "model_type",
        "is \"" + type + "\": only BERT cross-encoders (model_type \"bert\") can be exported to ONNX");
  }
  OnnxExportSummary summary;
  summary.config = read_bert_config(config_path);
  const BertConfig& config = summary.config;
  if (config.num_labels != 1) {
    throw Error(
        config_path, 0, "num_labels",
        "is " + std::to_string(config.num_labels) + ": the ranker export needs one label (one score)");
  }

  BertWeights weights(model_dir);
  summary.weights_path = weights.path();

  onnx::ModelProto model;
  model.set_ir_version(onnx::IR_VERSION);
  model.set_producer_name("disranker");
  model.set_producer_version("0.1.0");
  model.set_doc_string(
      "BERT cross-encoder (transformers BertForSequenceClassification, eval mode), num_labels 1");
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);

  onnx::GraphProto& graph = *model.mutable_graph();
  graph.set_name("disranker_bert_cross_encoder");
  for (const char* input : {"input_ids", "attention_mask", "token_type_ids"}) {
    add_value_info(graph.add_input(), input, onnx::TensorProto::INT64, {"batch", "sequence"});
  }
  BertGraph builder(config, weights, options, graph);
  const std::string logits = builder.build();
  add_value_info(graph.add_output(), logits, onnx::TensorProto::FLOAT, {"batch", ""}, {0, 1});
  summary.nodes = static_cast<std::size_t>(graph.node_size());
  summary.parameters = weights.parameters();
  summary.unused = weights.unused();

  auto add_metadata = [&model](const std::string& key, const std::string& value) {
    auto* prop = model.add_metadata_props();
    prop->set_key(key);
    prop->set_value(value);
  };
  nlohmann::json export_info = {{"opset", options.opset},
                                {"int8", options.int8},
                                {"hidden_act", config.hidden_act},
                                {"max_position_embeddings", config.max_position_embeddings}};
  if (options.int8) {
    export_info["weight_scales"] = options.per_channel ? "per_column" : "per_tensor";
    export_info["weight_range"] = options.reduce_range ? 64 : 127;
  }
  add_metadata("disranker.export", export_info.dump());
  if (const fs::path manifest = dir / kRankerManifestFile; fs::exists(manifest)) {
    // How the raw logit becomes the reported score, the maximum length and provenance travel with the graph.
    add_metadata("disranker.json", ranker_manifest_to_json(read_ranker_manifest(manifest.string())).dump());
  }

  if (model.ByteSizeLong() >= std::size_t{2} << 30) {
    throw Error(out_path, 0, "",
                "the model is " + std::to_string(model.ByteSizeLong() >> 20) +
                    " MiB: a single ONNX file must stay under protobuf's 2 GiB limit (external data is not "
                    "supported by this exporter)");
  }
  if (options.check) {
    try {
      onnx::checker::check_model(model);
    } catch (const std::exception& e) {
      throw Error(out_path, 0, "", std::string("the ONNX checker rejects the exported graph: ") + e.what());
    }
  }
  write_file_atomically(out_path, [&model, &out_path](std::ostream& out) {
    if (!model.SerializeToOstream(&out)) throw Error(out_path, 0, "", "cannot serialise the ONNX model");
  });
  summary.bytes = static_cast<std::size_t>(fs::file_size(out_path));
  return summary;
}

}  // namespace disranker
