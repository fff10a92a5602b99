#include "cli/engine_option.h"

#include <filesystem>
#include <iostream>

#include "core/error.h"
#include "model/hf_config.h"

namespace disranker::cli {

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::kFloat32;
  if (name == "int8") return Precision::kInt8;
  throw Error("--precision must be fp32 or int8, not '" + name + "'");
}

namespace {

std::unique_ptr<BertEngine> open_engine_or_null(const std::string& engine, const std::string& model_dir,
                                                const std::string& device, const std::string& command,
                                                BertEngineOptions options) {
  if (engine != "auto" && engine != "fast" && engine != "torch")
    throw Error("--engine must be auto, fast or torch, not '" + engine + "'");
  if (engine == "torch") return nullptr;
  if (device != "cpu") {
    if (engine == "fast") throw Error("--engine fast runs on the CPU only (--device " + device + ")");
    return nullptr;
  }
  const std::string config = (std::filesystem::path(model_dir) / "config.json").string();
  if (engine == "auto" && (!std::filesystem::exists(config) || read_model_type(config) != "bert"))
    return nullptr;
  try {
    return BertEngine::load(model_dir, 256, options);
  } catch (const Error& e) {
    if (engine == "fast") throw;
    std::cerr << command << ": the fast engine cannot run this model (" << e.what() << "): using libtorch\n";
    return nullptr;
  }
}

}  // namespace

std::unique_ptr<BertEngine> open_fast_engine(const std::string& engine, const std::string& model_dir,
                                             const std::string& device, const std::string& command,
                                             BertEngineOptions options) {
  auto fast = open_engine_or_null(engine, model_dir, device, command, options);
  if (fast == nullptr && options.precision == Precision::kInt8)
    throw Error(
        "--precision int8 runs on the fast engine only (a BERT student with a trained head, on the "
        "CPU; --engine " +
        engine + ", --device " + device + ")");
  return fast;
}

}  // namespace disranker::cli
