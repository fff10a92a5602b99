// The flags every training stage shares (run control and optimiser), the --config file, and the resolved
// configuration saved with the outputs.
//
// --config FILE reads any of the stage's long flags from a TOML file (CLI11's config reader: `key = value`
// lines under a [<command>] section, with the flag name without dashes, e.g. `[sft]` then `learning-rate =
// 3e-4`); flags given on the command line win over the file. One file can hold the settings of every stage.
// The resolved values (every flag, defaults included) are written to OUT/config.toml, which can be passed
// back as --config to repeat the run.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "train/train_options.h"

namespace disranker::cli {

// Lets a stage subcommand take its settings from the main app's --config file (its [section]).
void add_config_option(CLI::App& command);
// --out, --device, --threads, --seed, --epochs, --max-steps, --save-every, --log-every, --resume, --quiet
// (the defaults are those `run` holds when called).
void add_run_options(CLI::App& command, RunOptions& run);
// --learning-rate, --weight-decay, --adam-beta1, --adam-beta2, --adam-eps, --schedule, --warmup-ratio,
// --warmup-steps, --max-grad-norm, --grad-accumulation.
void add_optimizer_options(CLI::App& command, OptimizerOptions& optimizer);

// Writes `command`'s resolved configuration to OUT/config.toml atomically (creating OUT).
void save_resolved_config(const CLI::App& command, const std::string& out_dir);

}  // namespace disranker::cli
