#include "cli/engine_option.h"

#include <filesystem>
#include <iostream>

#include "core/error.h"
#include "model/hf_config.h"

namespace disranker::cli {

std::unique_ptr<BertEngine> open_fast_engine(const std::string& engine, const std::string& model_dir,
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

}  // namespace disranker::cli
