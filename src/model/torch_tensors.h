// The glue between libtorch and the safetensors / Hugging Face directory layer (model/safetensors.h, which
// has no libtorch): tensor views to torch tensors and back, loading a checkpoint into a module's parameters
// with clear errors, and model directories in Hugging Face's layout written atomically.
//
// A model directory, as transformers' save_pretrained writes it:
//   config.json                     the architecture (BertConfig, Qwen2Config, ...)
//   model.safetensors               the weights, or model-0000K-of-0000N.safetensors +
//   model.safetensors.index.json tokenizer files                 vocab.txt, tokenizer.json,
//   tokenizer_config.json, ... (copied as they are) disranker.json                  DisRanker's own record of
//   how the model was made (optional)
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/safetensors.h"

namespace disranker {

// ---- Tensors
// ----------------------------------------------------------------------------------------------------

// A float32 CPU tensor holding a copy of the view's data, for every dtype the format has except F8_* and C64
// (integers and BOOL convert by value; F64 rounds to nearest). Throws Error(file, 0, view.name, ...)
// otherwise.
torch::Tensor to_float_tensor(const TensorView& view, const std::string& file = "");

// A float32 CPU tensor that aliases the view's data without copying (zero-copy). The caller keeps the file
// open (the mapping alive) for as long as the tensor is used, and never writes to it (the mapping is
// read-only: a write is a segmentation fault). Throws Error when the view is not F32 or its data is not
// 4-byte aligned.
torch::Tensor borrow_float_tensor(const TensorView& view, const std::string& file = "");

// A tensor's bytes in a safetensors dtype, ready for write_safetensors. `data` points into `storage`, a
// contiguous CPU tensor owned by this object: keep it alive until the file is written.
struct TensorBytes {
  torch::Tensor storage;
  TensorData data;
};

// Converts a tensor (any device, any floating dtype, detached) to F32, F16 or BF16 bytes; F32 of a float32
// tensor is bit-exact. Throws Error for another target dtype.
TensorBytes to_tensor_bytes(const std::string& name, const torch::Tensor& tensor, DType dtype = DType::kF32);

// "[2, 8]": a shape for error messages.
std::string shape_string(torch::IntArrayRef shape);
std::string shape_string(const std::vector<std::int64_t>& shape);

// ---- Loading a checkpoint into a module
// --------------------------------------------------------------------------

struct LoadStateOptions {
  // Names the checkpoint in error messages (a file or directory).
  std::string source;
  // Maps a checkpoint tensor name to the module's parameter name; an empty result ignores the tensor (a known
  // buffer, a tied copy). Unset: names are used as they are.
  std::function<std::string(const std::string&)> rename;
  // Module parameters that may be absent from the checkpoint (they keep their current values, e.g. a freshly
  // initialised head). Unset: every parameter is required.
  std::function<bool(const std::string&)> may_be_missing;
  // Checkpoint tensors the module has no parameter for are an error unless this is set (they are then only
  // listed in the report).
  bool allow_unexpected = false;
};

struct LoadStateReport {
  std::vector<std::string> loaded;   // module names, in the module's order
  std::vector<std::string> missing;  // module names left at their current values (allowed by may_be_missing)
  std::vector<std::string> unexpected;  // checkpoint names (after rename) the module does not have
};

// Copies the checkpoint's tensors into the module's parameters and buffers (matched by their dotted names, as
// named_parameters() gives them), converting dtypes to the parameter's. Throws Error(source, 0, name, ...)
// for a missing tensor (every missing name is listed), a shape mismatch (both shapes named), two checkpoint
// names that rename to the same parameter, an unsupported dtype, or unexpected tensors (all listed) unless
// allowed.
LoadStateReport load_state(torch::nn::Module& module, const SafetensorsCheckpoint& checkpoint,
                           const LoadStateOptions& options = {});
// The same from tensors in memory.
LoadStateReport load_state(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                           const LoadStateOptions& options = {});

// The module's parameters and buffers by name, in named_parameters() order (parameters, then buffers that are
// not parameters), detached.
std::vector<std::pair<std::string, torch::Tensor>> named_state(torch::nn::Module& module);

// ---- Model directories
// --------------------------------------------------------------------------------------------

struct SaveHfDirOptions {
  DType dtype = DType::kF32;                               // F32, F16 or BF16
  std::uint64_t max_shard_bytes = std::uint64_t{5} << 30;  // above this, sharded with an index (as HF)
  std::map<std::string, std::string> metadata = {{"format", "pt"}};  // transformers requires "format": "pt"
};

// Writes a model directory atomically: everything goes into DIR.tmp-<pid> first (config.json pretty-printed,
// the weights, disranker.json when given, the tokenizer files copied under their file names), which then
// replaces DIR in one rename (an existing DIR is swapped out and removed only after the new one is in place).
// Throws Error naming the path when: DIR exists and is not a directory, or is a non-empty directory without
// config.json (never replaced: it does not look like a model directory), a tokenizer file is missing or two
// share a name or one is named like a file the directory already gets, the parent directory is missing, or a
// write fails. On any error DIR is left as it was and the temporary directory is removed.
void save_hf_model_dir(const std::string& dir, const nlohmann::json& config,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::vector<std::string>& tokenizer_files = {},
                       const std::optional<nlohmann::json>& disranker_json = std::nullopt,
                       const SaveHfDirOptions& options = {});

// An opened model directory: its config, the optional disranker.json, and the weights (memory-mapped; every
// shard opened and validated). Move-only.
struct HfModelDir {
  std::string dir;
  nlohmann::json config;
  std::optional<nlohmann::json> disranker;
  SafetensorsCheckpoint weights;

  // Names of all tensors, sorted.
  std::vector<std::string> names() const { return weights.names(); }
  // One tensor as a float32 copy; Error naming the checkpoint and the tensor when absent.
  torch::Tensor tensor(const std::string& name) const;
  // Every tensor as a float32 copy (twice the memory of a bf16 checkpoint: prefer load_state for big models).
  std::map<std::string, torch::Tensor> tensors() const;
};

// Opens a model directory. Throws Error naming the path for: a missing directory, a missing or invalid
// config.json (it must be a JSON object), an invalid disranker.json, no weights (neither model.safetensors
// nor model.safetensors.index.json; a pytorch_model.bin alone is named as unsupported), and any malformed or
// inconsistent safetensors file or index.
HfModelDir load_hf_model_dir(const std::string& dir);

}  // namespace disranker
