#include "model/torch_tensors.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2 (glibc >= 2.28, _GNU_SOURCE)
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

#include "core/error.h"
#include "core/files.h"
#include "model/strict_json.h"

namespace disranker {
namespace fs = std::filesystem;
namespace {

constexpr const char* kConfigFile = "config.json";
constexpr const char* kDisrankerFile = "disranker.json";

std::string errno_text(int error) {
  return std::error_code(error, std::generic_category()).message();
}

std::vector<std::int64_t> sizes_of(const torch::Tensor& t) {
  return t.sizes().vec();
}

// Integer (and BOOL) data to float, element by element (memcpy: the data need not be aligned).
template <typename T>
void integers_to_float(std::span<const std::byte> src, float* dst, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    T value;
    std::memcpy(&value, src.data() + static_cast<std::size_t>(i) * sizeof(T), sizeof(T));
    dst[i] = static_cast<float>(value);
  }
}

// Fills `dst` (float32, contiguous, CPU, numel == view.numel()) from the view.
void convert_into(const TensorView& view, float* dst, const std::string& file) {
  const std::int64_t n = view.numel();
  if (is_float_dtype(view.dtype)) {
    convert_to_float32(view.dtype, view.data, std::span<float>(dst, static_cast<std::size_t>(n)));
    return;
  }
  switch (view.dtype) {
    case DType::kBool:
      for (std::int64_t i = 0; i < n; ++i)
        dst[i] = view.data[static_cast<std::size_t>(i)] != std::byte{0} ? 1.0f : 0.0f;
      return;
    case DType::kU8:
      return integers_to_float<std::uint8_t>(view.data, dst, n);
    case DType::kI8:
      return integers_to_float<std::int8_t>(view.data, dst, n);
    case DType::kI16:
      return integers_to_float<std::int16_t>(view.data, dst, n);
    case DType::kU16:
      return integers_to_float<std::uint16_t>(view.data, dst, n);
    case DType::kI32:
      return integers_to_float<std::int32_t>(view.data, dst, n);
    case DType::kU32:
      return integers_to_float<std::uint32_t>(view.data, dst, n);
    case DType::kI64:
      return integers_to_float<std::int64_t>(view.data, dst, n);
    case DType::kU64:
      return integers_to_float<std::uint64_t>(view.data, dst, n);
    default:
      throw Error(file, 0, view.name,
                  "dtype " + std::string(dtype_name(view.dtype)) + " cannot be converted to float32");
  }
}

std::string join_names(const std::vector<std::string>& names, std::size_t limit = 10) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += ", ... and " + std::to_string(names.size() - limit) + " more";
  return out;
}

// One tensor of a checkpoint, from a file view or from memory.
struct SourceTensor {
  std::string name;  // the checkpoint's name (before rename)
  std::vector<std::int64_t> shape;
  const TensorView* view = nullptr;
  const torch::Tensor* tensor = nullptr;
};

LoadStateReport load_state_impl(torch::nn::Module& module, const std::vector<SourceTensor>& sources,
                                const LoadStateOptions& options) {
  const std::string& source = options.source;
  std::map<std::string, const SourceTensor*> by_model_name;
  for (const auto& s : sources) {
    const std::string target = options.rename ? options.rename(s.name) : s.name;
    if (target.empty()) continue;
    auto [it, inserted] = by_model_name.emplace(target, &s);
    if (!inserted) {
      throw Error(source, 0, target,
                  "two checkpoint tensors load into it: '" + it->second->name + "' and '" + s.name + "'");
    }
  }

  auto state = named_state(module);
  LoadStateReport report;
  std::vector<std::string> required_missing;
  std::set<std::string> module_names;
  std::vector<std::pair<torch::Tensor, const SourceTensor*>> copies;
  for (auto& [name, param] : state) {
    module_names.insert(name);
    auto it = by_model_name.find(name);
    if (it == by_model_name.end()) {
      if (options.may_be_missing && options.may_be_missing(name)) {
        report.missing.push_back(name);
      } else {
        required_missing.push_back(name);
      }
      continue;
    }
    const SourceTensor& s = *it->second;
    if (s.shape != sizes_of(param)) {
      std::string where = s.name == name ? "" : " (loaded into " + name + ")";
      throw Error(source, 0, s.name,
                  "shape mismatch: " + shape_string(s.shape) + " in the checkpoint, " +
                      shape_string(param.sizes()) + " in the model" + where);
    }
    if (s.view != nullptr && !is_float_dtype(s.view->dtype)) {
      // Integer tensors convert too; the unsupported ones are reported before anything is copied.
      if (s.view->dtype == DType::kF8_E5M2 || s.view->dtype == DType::kF8_E4M3 ||
          s.view->dtype == DType::kF8_E8M0 || s.view->dtype == DType::kC64) {
        throw Error(
            source, 0, s.name,
            "dtype " + std::string(dtype_name(s.view->dtype)) + " cannot be loaded into a float parameter");
      }
    }
    copies.emplace_back(param, &s);
    report.loaded.push_back(name);
  }
  if (required_missing.size() == 1) {
    throw Error(source, 0, required_missing[0], "missing from the checkpoint (the model needs this tensor)");
  }
  if (!required_missing.empty()) {
    throw Error(
        source, 0, "",
        std::to_string(required_missing.size()) +
            " tensors the model needs are missing from the checkpoint: " + join_names(required_missing));
  }
  for (const auto& [name, s] : by_model_name) {
    if (!module_names.count(name)) report.unexpected.push_back(name);
  }
  if (!report.unexpected.empty() && !options.allow_unexpected) {
    throw Error(source, 0, "",
                std::to_string(report.unexpected.size()) +
                    " checkpoint tensors are not parameters of the model (unexpected): " +
                    join_names(report.unexpected));
  }

  // Everything is validated: now copy (an error above leaves the module unchanged).
  torch::NoGradGuard no_grad;
  for (auto& [param, s] : copies) {
    if (s->tensor != nullptr) {
      param.copy_(*s->tensor);
    } else if (param.device().is_cpu() && param.scalar_type() == torch::kFloat && param.is_contiguous()) {
      convert_into(*s->view, param.data_ptr<float>(), source);
    } else {
      param.copy_(to_float_tensor(*s->view, source));
    }
  }
  return report;
}

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string(), 0, "", "cannot open file for reading: " + errno_text(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error(path.string(), 0, "", "read error");
  return text.str();
}

nlohmann::json read_json_object(const fs::path& path) {
  // Strict: invalid UTF-8, a duplicated key or absurd nesting is an error, as for the safetensors headers.
  nlohmann::json json = detail::parse_strict_json(read_text_file(path), path.string(), 64);
  if (!json.is_object()) throw Error(path.string(), 0, "", "expected a JSON object");
  return json;
}

// fsync of a file or a directory; errors are reported (a model that is not on disk is not saved).
void sync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) throw Error(path.string(), 0, "", "cannot open to sync: " + errno_text(errno));
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0 && saved != EINVAL) throw Error(path.string(), 0, "", "fsync failed: " + errno_text(saved));
}

// Moves the finished `temp` directory to `target`, replacing a previous `target` directory. With
// RENAME_EXCHANGE the swap is one atomic step; where the file system lacks it, the old directory is first
// renamed aside (and renamed back if the second rename fails).
void publish_directory(const fs::path& temp, const fs::path& target) {
  std::error_code ec;
  if (!fs::exists(target, ec)) {
    fs::rename(temp, target, ec);
    if (ec)
      throw Error(target.string(), 0, "", "cannot rename " + temp.string() + " into place: " + ec.message());
    return;
  }
  if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(temp, ec);  // now the old directory; a failure to remove it loses nothing
    return;
  }
  const int saved = errno;
  if (saved != EINVAL && saved != ENOSYS && saved != ENOTSUP) {
    throw Error(target.string(), 0, "", "cannot swap in " + temp.string() + ": " + errno_text(saved));
  }
  fs::path old = temp;
  old += ".old";
  fs::rename(target, old, ec);
  if (ec) throw Error(target.string(), 0, "", "cannot move the old directory aside: " + ec.message());
  fs::rename(temp, target, ec);
  if (ec) {
    std::error_code ignored;
    fs::rename(old, target, ignored);
    throw Error(target.string(), 0, "", "cannot rename " + temp.string() + " into place: " + ec.message());
  }
  fs::remove_all(old, ec);
}

bool is_reserved_file_name(const std::string& name) {
  if (name == kConfigFile || name == kDisrankerFile || name == SafetensorsCheckpoint::kSingleFile ||
      name == SafetensorsCheckpoint::kIndexFile) {
    return true;
  }
  return name.rfind("model-", 0) == 0 && name.size() > 12 && name.ends_with(".safetensors");
}

}  // namespace

// ---- Tensors
// ----------------------------------------------------------------------------------------------------

torch::Tensor to_float_tensor(const TensorView& view, const std::string& file) {
  auto out = torch::empty(view.shape, torch::TensorOptions().dtype(torch::kFloat));
  convert_into(view, out.data_ptr<float>(), file);
  return out;
}

torch::Tensor borrow_float_tensor(const TensorView& view, const std::string& file) {
  if (view.dtype != DType::kF32) {
    throw Error(
        file, 0, view.name,
        "cannot borrow a " + std::string(dtype_name(view.dtype)) + " tensor as float32 (copy it instead)");
  }
  if (reinterpret_cast<std::uintptr_t>(view.data.data()) % alignof(float) != 0) {
    throw Error(file, 0, view.name, "data is not 4-byte aligned: cannot borrow it (copy it instead)");
  }
  // The mapping is read-only; the const_cast only satisfies from_blob's signature (see the header).
  return torch::from_blob(const_cast<std::byte*>(view.data.data()), view.shape,
                          torch::TensorOptions().dtype(torch::kFloat));
}

TensorBytes to_tensor_bytes(const std::string& name, const torch::Tensor& tensor, DType dtype) {
  TensorBytes out;
  auto t = tensor.detach().to(torch::kCPU).to(torch::kFloat).contiguous();
  const auto n = static_cast<std::size_t>(t.numel());
  const float* src = t.data_ptr<float>();
  switch (dtype) {
    case DType::kF32:
      out.storage = t;
      break;
    case DType::kF16:
    case DType::kBF16: {
      out.storage = torch::empty(t.sizes(), torch::TensorOptions().dtype(torch::kInt16));
      auto* dst = reinterpret_cast<std::uint16_t*>(out.storage.data_ptr<std::int16_t>());
      for (std::size_t i = 0; i < n; ++i)
        dst[i] = dtype == DType::kF16 ? float_to_f16(src[i]) : float_to_bf16(src[i]);
      break;
    }
    default:
      throw Error("", 0, name,
                  "cannot save a tensor as " + std::string(dtype_name(dtype)) + " (F32, F16 or BF16)");
  }
  out.data.name = name;
  out.data.dtype = dtype;
  out.data.shape = sizes_of(out.storage);
  out.data.data = std::span<const std::byte>(static_cast<const std::byte*>(out.storage.data_ptr()),
                                             n * dtype_size(dtype));
  return out;
}

std::string shape_string(torch::IntArrayRef shape) {
  return shape_string(shape.vec());
}

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// ---- Loading a checkpoint into a module
// --------------------------------------------------------------------------

std::vector<std::pair<std::string, torch::Tensor>> named_state(torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : module.named_parameters(/*recurse=*/true))
    out.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers(/*recurse=*/true)) out.emplace_back(item.key(), item.value());
  return out;
}

LoadStateReport load_state(torch::nn::Module& module, const SafetensorsCheckpoint& checkpoint,
                           const LoadStateOptions& options) {
  std::vector<SourceTensor> sources;
  for (const auto& name : checkpoint.names()) {
    const TensorView& view = checkpoint.get(name);
    sources.push_back(SourceTensor{name, view.shape, &view, nullptr});
  }
  LoadStateOptions with_source = options;
  if (with_source.source.empty()) with_source.source = checkpoint.path();
  return load_state_impl(module, sources, with_source);
}

LoadStateReport load_state(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                           const LoadStateOptions& options) {
  std::vector<SourceTensor> sources;
  for (const auto& [name, tensor] : tensors)
    sources.push_back(SourceTensor{name, sizes_of(tensor), nullptr, &tensor});
  return load_state_impl(module, sources, options);
}

// ---- Model directories
// --------------------------------------------------------------------------------------------

void save_hf_model_dir(const std::string& dir, const nlohmann::json& config,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::vector<std::string>& tokenizer_files,
                       const std::optional<nlohmann::json>& disranker_json, const SaveHfDirOptions& options) {
  fs::path target = fs::path(dir).lexically_normal();
  if (target.has_relative_path() && !target.has_filename()) target = target.parent_path();  // "out/" -> "out"
  if (target.empty() || target.filename() == "." || target.filename() == "..") {
    throw Error(dir, 0, "", "not a usable model directory name");
  }
  std::error_code ec;
  const fs::path parent = target.parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    throw Error(dir, 0, "", "cannot write: directory '" + parent.string() + "' does not exist");
  }
  if (fs::exists(target, ec)) {
    if (!fs::is_directory(target, ec)) throw Error(dir, 0, "", "exists and is not a directory");
    if (!fs::is_empty(target, ec) && !fs::exists(target / kConfigFile, ec)) {
      throw Error(
          dir, 0, "",
          "exists, is not empty and has no config.json: not replacing a directory that is not a model "
          "directory");
    }
  }
  if (!config.is_object()) throw Error(dir, 0, kConfigFile, "the config must be a JSON object");

  std::set<std::string> copied_names;
  for (const auto& file : tokenizer_files) {
    if (!fs::is_regular_file(file, ec))
      throw Error(file, 0, "", "tokenizer file does not exist or is not a file");
    const std::string name = fs::path(file).filename().string();
    if (is_reserved_file_name(name)) {
      throw Error(file, 0, "",
                  "a tokenizer file cannot be named " + name + " (the model directory writes it)");
    }
    if (!copied_names.insert(name).second) throw Error(file, 0, "", "two tokenizer files are named " + name);
  }

  std::vector<TensorBytes> bytes;
  bytes.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) bytes.push_back(to_tensor_bytes(name, tensor, options.dtype));
  std::vector<TensorData> data;
  data.reserve(bytes.size());
  for (const auto& b : bytes) data.push_back(b.data);

  static std::atomic<unsigned> counter{0};
  fs::path temp = target;
  temp += ".tmp-" + std::to_string(::getpid());
  if (const unsigned n = counter++; n > 0) temp += "-" + std::to_string(n);
  fs::remove_all(temp, ec);  // a leftover of a crashed process that had the same pid
  if (!fs::create_directory(temp, ec) || ec) {
    throw Error(dir, 0, "", "cannot create temporary directory " + temp.string() + ": " + ec.message());
  }
  try {
    write_file_atomically((temp / kConfigFile).string(),
                          [&](std::ostream& out) { out << config.dump(2) << "\n"; });
    write_safetensors_checkpoint(temp.string(), data, options.metadata, options.max_shard_bytes);
    if (disranker_json) {
      write_file_atomically((temp / kDisrankerFile).string(),
                            [&](std::ostream& out) { out << disranker_json->dump(2) << "\n"; });
    }
    for (const auto& file : tokenizer_files) {
      fs::copy_file(file, temp / fs::path(file).filename(), fs::copy_options::overwrite_existing, ec);
      if (ec) throw Error(file, 0, "", "cannot copy into " + temp.string() + ": " + ec.message());
    }
    for (const auto& entry : fs::directory_iterator(temp)) sync_path(entry.path(), false);
    sync_path(temp, true);
    publish_directory(temp, target);
    sync_path(parent.empty() ? fs::path(".") : parent, true);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(temp, ignored);
    throw;
  }
}

torch::Tensor HfModelDir::tensor(const std::string& name) const {
  return to_float_tensor(weights.get(name), weights.path());
}

std::map<std::string, torch::Tensor> HfModelDir::tensors() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& name : weights.names()) out.emplace(name, tensor(name));
  return out;
}

HfModelDir load_hf_model_dir(const std::string& dir) {
  std::error_code ec;
  const fs::path root(dir);
  if (!fs::exists(root, ec)) throw Error(dir, 0, "", "model directory does not exist");
  if (!fs::is_directory(root, ec)) throw Error(dir, 0, "", "not a directory (expected a model directory)");
  const fs::path config_path = root / kConfigFile;
  if (!fs::exists(config_path, ec)) {
    throw Error(config_path.string(), 0, "",
                "missing: a model directory holds config.json and model.safetensors (Hugging Face layout)");
  }
  HfModelDir out;
  out.dir = dir;
  out.config = read_json_object(config_path);
  if (fs::exists(root / kDisrankerFile, ec)) out.disranker = read_json_object(root / kDisrankerFile);
  if (!fs::exists(root / SafetensorsCheckpoint::kSingleFile, ec) &&
      !fs::exists(root / SafetensorsCheckpoint::kIndexFile, ec)) {
    std::string hint;
    if (fs::exists(root / "pytorch_model.bin", ec)) {
      hint = " (pytorch_model.bin is not supported: convert it to safetensors)";
    }
    throw Error(dir, 0, "", "no weights: expected model.safetensors or model.safetensors.index.json" + hint);
  }
  out.weights = SafetensorsCheckpoint::open(dir);
  return out;
}

}  // namespace disranker
