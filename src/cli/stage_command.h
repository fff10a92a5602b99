// What every training subcommand (cpt, mlm, sft, distill) does around its stage: check the shared settings,
// pick the device and threads, open the model, save the resolved config, and print the summary. libtorch.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "model/ranker.h"
#include "train/train_options.h"

namespace disranker::cli {

// Validates run and optimizer, sets the device and libtorch threads, loads model_dir, and writes
// OUT/config.toml. Throws Error on a bad setting or model.
std::unique_ptr<Ranker> open_stage_model(const std::string& model_dir, const RunOptions& run,
                                         const OptimizerOptions& optimizer, const CLI::App& command);

// "sft: 438 steps, final loss 0.7857; 98.5 pairs/s; model: ...; summary: OUT/summary.json", then the dev
// metrics of a ranking stage (summary["validation"] with summary["dev"]["set"]) when present.
// rates: (summary key, unit) pairs printed after the loss.
void print_stage_summary(const std::string& stage, const nlohmann::json& summary, const std::string& out_dir,
                         const std::vector<std::pair<std::string, std::string>>& rates);

}  // namespace disranker::cli
