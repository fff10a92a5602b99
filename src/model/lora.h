// LoRA (Hu et al., 2021) for the decoder's projections, laid out as Hugging Face PEFT does it.
//
// Every projection of the decoder (q/k/v/o_proj, gate/up/down_proj) is a LoraLinear: a plain linear layer
// (`weight` [out, in], optional `bias`) that can carry a low-rank adapter. With an adapter,
//   y = x W^T + b + scale * dropout(x) A^T B^T,   A = lora_A.weight [r, in], B = lora_B.weight [out, r],
//   scale = alpha / r,
// A initialised Kaiming-uniform (a = sqrt(5), as nn.Linear and PEFT), B zeros, so a fresh adapter changes
// nothing. The parameter names are PEFT's: "<module>.lora_A.weight", "<module>.lora_B.weight" (PEFT's adapter
// files prefix them with "base_model.model.", see lora_named_tensors).
//
// apply_lora() adds adapters to the chosen modules of any module tree (the target names are the last
// component of the module path, e.g. "q_proj") and freezes everything else except `modules_to_save`.
// merge_lora() folds the adapters into the base weights for export (W += scale * B A) and unmerge_lora()
// takes them out again; while merged the adapter path is skipped, so outputs are the same either way.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace disranker {

class LoraLinearImpl : public torch::nn::Module {
 public:
  // HF initialisation of a projection: weight ~ N(0, init_std), bias zeros (init_std <= 0: nn.Linear's
  // Kaiming-uniform instead).
  LoraLinearImpl(std::int64_t in_features, std::int64_t out_features, bool bias, double init_std = 0.02);

  torch::Tensor forward(const torch::Tensor& x);

  // Adds an adapter of rank r (replacing any previous one, which must not be merged).
  void enable_lora(std::int64_t r, double alpha, double dropout = 0.0);
  bool has_lora() const { return !lora_A.is_empty(); }
  bool merged() const { return merged_; }
  double scale() const { return scale_; }
  // W += scale * B A (no-op when there is no adapter or it is merged already).
  void merge();
  // W -= scale * B A (no-op when not merged).
  void unmerge();
  // The adapter's contribution to the weight, scale * B A ([out, in]).
  torch::Tensor delta_weight() const;

  std::int64_t in_features() const { return in_features_; }
  std::int64_t out_features() const { return out_features_; }

  torch::Tensor weight;
  torch::Tensor bias;  // undefined when the layer has none
  torch::nn::Linear lora_A{nullptr};
  torch::nn::Linear lora_B{nullptr};

 private:
  std::int64_t in_features_;
  std::int64_t out_features_;
  double scale_ = 0.0;
  double dropout_ = 0.0;
  bool merged_ = false;
};
TORCH_MODULE(LoraLinear);

struct LoraConfig {
  std::int64_t r = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  // The last component of the module path: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.
  std::vector<std::string> target_modules = {"q_proj", "v_proj"};
  // Modules whose parameters stay trainable (PEFT's modules_to_save), matched against any component of the
  // parameter name, e.g. "score" for a ranking head.
  std::vector<std::string> modules_to_save;
};

// Adds adapters to every LoraLinear under `root` whose name is a target and freezes every other parameter
// (requires_grad false) except those of modules_to_save. Returns the adapted module paths. Throws Error when
// a config value is invalid (r < 1, alpha <= 0, dropout outside [0, 1)) or a target name matches no
// LoraLinear.
std::vector<std::string> apply_lora(torch::nn::Module& root, const LoraConfig& config);

// Merges / unmerges every adapter under `root` (see LoraLinearImpl::merge).
void merge_lora(torch::nn::Module& root);
void unmerge_lora(torch::nn::Module& root);

// The adapters' tensors under PEFT's names ("base_model.model." + parameter path), for an adapter file.
std::vector<std::pair<std::string, torch::Tensor>> lora_named_tensors(torch::nn::Module& root);

// Number of elements of the parameters that require grad / of all parameters.
std::int64_t count_trainable_parameters(torch::nn::Module& root);
std::int64_t count_parameters(torch::nn::Module& root);

}  // namespace disranker
