#include "cli/stage_command.h"

#include <cstdio>

#include "cli/train_options.h"
#include "dist/process_group.h"
#include "model/runtime.h"

namespace disranker::cli {

std::unique_ptr<Ranker> open_stage_model(const std::string& model_dir, const RunOptions& run,
                                         const OptimizerOptions& optimizer, const CLI::App& command) {
  validate(run);
  validate(optimizer);
  const torch::Device device = parse_device(run.device);
  set_torch_threads(run.threads);
  auto ranker = Ranker::load(model_dir, device);
  // Joining the job here (a no-op alone) makes a missing rank fail before any data is read.
  if (dist::world().is_root()) save_resolved_config(command, run.out_dir);
  return ranker;
}

void print_stage_summary(const std::string& stage, const nlohmann::json& summary, const std::string& out_dir,
                         const std::vector<std::pair<std::string, std::string>>& rates) {
  if (!dist::world().is_root()) return;  // one summary per job
  std::string rate_text;
  for (const auto& [key, unit] : rates) {
    char buffer[96];
    std::snprintf(buffer, sizeof(buffer), "%s%.1f %s", rate_text.empty() ? "" : ", ", summary.value(key, 0.0),
                  unit.c_str());
    rate_text += buffer;
  }
  std::fprintf(stderr, "%s: %lld steps, final loss %.4f; %s; model: %s; summary: %s/summary.json\n",
               stage.c_str(), static_cast<long long>(summary.value("steps", 0)),
               summary.value("final_loss", 0.0), rate_text.c_str(),
               summary.value("model", std::string()).c_str(), out_dir.c_str());
  if (!summary.contains("validation") || !summary.contains("dev")) return;
  std::string line;
  for (const auto& [name, value] : summary["validation"].items()) {
    if (!value.is_number()) continue;
    char buffer[96];
    std::snprintf(buffer, sizeof(buffer), "%s%s %.4f", line.empty() ? "" : ", ", name.c_str(),
                  value.get<double>());
    line += buffer;
  }
  std::fprintf(stderr, "%s: dev (%s): %s\n", stage.c_str(),
               summary["dev"].value("set", std::string()).c_str(), line.c_str());
}

}  // namespace disranker::cli
