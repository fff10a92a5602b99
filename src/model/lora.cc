#include "model/lora.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"

namespace disranker {
namespace {

std::string last_component(const std::string& path) {
  const auto dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

bool has_component(const std::string& path, const std::string& name) {
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto dot = path.find('.', start);
    const auto end = dot == std::string::npos ? path.size() : dot;
    if (path.compare(start, end - start, name) == 0 && end - start == name.size()) return true;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return false;
}

template <typename F>
void for_each_lora_linear(torch::nn::Module& root, F&& f) {
  for (const auto& item : root.named_modules()) {
    if (auto* layer = dynamic_cast<LoraLinearImpl*>(item.value().get())) f(item.key(), *layer);
  }
}

}  // namespace

LoraLinearImpl::LoraLinearImpl(std::int64_t in_features, std::int64_t out_features, bool with_bias,
                               double init_std)
    : in_features_(in_features), out_features_(out_features) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
  if (with_bias) bias = register_parameter("bias", torch::zeros({out_features}));
  torch::NoGradGuard no_grad;
  if (init_std > 0) {
    weight.normal_(0.0, init_std);
  } else {
    torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
    if (with_bias) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
      bias.uniform_(-bound, bound);
    }
  }
}

torch::Tensor LoraLinearImpl::forward(const torch::Tensor& x) {
  auto y = torch::nn::functional::linear(x, weight, bias);
  if (has_lora() && !merged_) {
    auto h = x;
    if (dropout_ > 0 && is_training()) h = torch::dropout(h, dropout_, /*train=*/true);
    y = y + lora_B(lora_A(h)) * scale_;
  }
  return y;
}

void LoraLinearImpl::enable_lora(std::int64_t r, double alpha, double dropout) {
  if (merged_) throw Error("LoRA: cannot replace an adapter that is merged into the weights; unmerge first");
  if (r < 1) throw Error("LoRA: rank r must be >= 1, got " + std::to_string(r));
  if (!(alpha > 0)) throw Error("LoRA: alpha must be > 0");
  if (!(dropout >= 0 && dropout < 1)) throw Error("LoRA: dropout must be in [0, 1)");
  const auto options = torch::TensorOptions().dtype(weight.dtype()).device(weight.device());
  auto a = torch::nn::Linear(torch::nn::LinearOptions(in_features_, r).bias(false));
  auto b = torch::nn::Linear(torch::nn::LinearOptions(r, out_features_).bias(false));
  {
    torch::NoGradGuard no_grad;
    torch::nn::init::kaiming_uniform_(a->weight, std::sqrt(5.0));
    b->weight.zero_();
  }
  a->to(options.device(), options.dtype().toScalarType());
  b->to(options.device(), options.dtype().toScalarType());
  if (!lora_A.is_empty()) {
    // register_module refuses a name twice; replace_module swaps the child in place.
    lora_A = replace_module("lora_A", a);
    lora_B = replace_module("lora_B", b);
  } else {
    lora_A = register_module("lora_A", a);
    lora_B = register_module("lora_B", b);
  }
  scale_ = alpha / static_cast<double>(r);
  dropout_ = dropout;
}

torch::Tensor LoraLinearImpl::delta_weight() const {
  if (!has_lora()) return torch::zeros_like(weight);
  return torch::matmul(lora_B->weight, lora_A->weight) * scale_;
}

void LoraLinearImpl::merge() {
  if (!has_lora() || merged_) return;
  torch::NoGradGuard no_grad;
  weight.add_(delta_weight());
  merged_ = true;
}

void LoraLinearImpl::unmerge() {
  if (!has_lora() || !merged_) return;
  torch::NoGradGuard no_grad;
  weight.sub_(delta_weight());
  merged_ = false;
}

std::vector<std::string> apply_lora(torch::nn::Module& root, const LoraConfig& config) {
  if (config.r < 1) throw Error("LoRA: rank r must be >= 1, got " + std::to_string(config.r));
  if (!(config.alpha > 0)) throw Error("LoRA: alpha must be > 0");
  if (!(config.dropout >= 0 && config.dropout < 1)) throw Error("LoRA: dropout must be in [0, 1)");
  if (config.target_modules.empty()) throw Error("LoRA: no target modules");
  // Find every target first, so that a bad name changes nothing.
  std::set<std::string> unmatched(config.target_modules.begin(), config.target_modules.end());
  std::vector<std::pair<std::string, LoraLinearImpl*>> targets;
  for_each_lora_linear(root, [&](const std::string& path, LoraLinearImpl& layer) {
    const auto name = last_component(path);
    if (std::find(config.target_modules.begin(), config.target_modules.end(), name) ==
        config.target_modules.end()) {
      return;
    }
    unmatched.erase(name);
    if (layer.merged())
      throw Error("LoRA: " + path + " has a merged adapter; unmerge it before replacing it");
    targets.emplace_back(path, &layer);
  });
  if (!unmatched.empty()) {
    throw Error(
        "LoRA: target module " + *unmatched.begin() +
        " matches no projection (expected q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
  }
  std::vector<std::string> adapted;
  for (auto& [path, layer] : targets) {
    layer->enable_lora(config.r, config.alpha, config.dropout);
    adapted.push_back(path);
  }
  for (auto& item : root.named_parameters(/*recurse=*/true)) {
    const auto& name = item.key();
    bool trainable = has_component(name, "lora_A") || has_component(name, "lora_B");
    for (const auto& keep : config.modules_to_save) trainable = trainable || has_component(name, keep);
    item.value().set_requires_grad(trainable);
  }
  return adapted;
}

void merge_lora(torch::nn::Module& root) {
  for_each_lora_linear(root, [](const std::string&, LoraLinearImpl& layer) { layer.merge(); });
}

void unmerge_lora(torch::nn::Module& root) {
  for_each_lora_linear(root, [](const std::string&, LoraLinearImpl& layer) { layer.unmerge(); });
}

std::vector<std::pair<std::string, torch::Tensor>> lora_named_tensors(torch::nn::Module& root) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : root.named_parameters(/*recurse=*/true)) {
    if (has_component(item.key(), "lora_A") || has_component(item.key(), "lora_B")) {
      out.emplace_back("base_model.model." + item.key(), item.value());
    }
  }
  return out;
}

std::int64_t count_trainable_parameters(torch::nn::Module& root) {
  std::int64_t n = 0;
  for (const auto& p : root.parameters()) {
    if (p.requires_grad()) n += p.numel();
  }
  return n;
}

std::int64_t count_parameters(torch::nn::Module& root) {
  std::int64_t n = 0;
  for (const auto& p : root.parameters()) n += p.numel();
  return n;
}

}  // namespace disranker
