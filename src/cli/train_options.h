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

// The ranking stages' (sft, distill) --dev, --dev-run, --dev-require-relevant, --eval-batch-size and
// --max-length, bound to the fields of the same names in their options.
template <class RankStageOptions>
void add_rank_validation_options(CLI::App& command, RankStageOptions& options) {
  command.add_option("--dev", options.dev_dir,
                     "Validation set directory (queries.tsv, docs.tsv, qrels.txt): NDCG@10, PNR and MRR at "
                     "each epoch's end");
  command.add_option("--dev-run", options.dev_run,
                     "Candidates of the validation set (default: its judged docs)");
  command.add_flag("--dev-require-relevant", options.dev_require_relevant,
                   "Validate only on queries with a relevant document (WikiQA's protocol)");
  command
      .add_option("--eval-batch-size", options.train.eval_batch_size, "Pairs per forward pass in validation")
      ->capture_default_str();
  command
      .add_option("--max-length", options.max_length,
                  "Pair budget in tokens (0: the model's disranker.json max_length); saved with the model")
      ->capture_default_str();
}

// Writes `command`'s resolved configuration to OUT/config.toml atomically (creating OUT).
void save_resolved_config(const CLI::App& command, const std::string& out_dir);

}  // namespace disranker::cli
