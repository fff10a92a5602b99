#include "cli/train_options.h"

#include <filesystem>
#include <ostream>

#include "core/files.h"

namespace disranker::cli {

void add_config_option(CLI::App& command) {
  // CLI11 reads config files only at the top level: --config belongs to the main app (main.cc) and reaches
  // the subcommand through fallthrough, with the subcommand's settings under its [section].
  command.fallthrough();
  command.footer(
      "Settings can also come from a TOML file: --config FILE, with this command's flags (without the\n"
      "dashes) under [" +
      command.get_name() +
      "], e.g. `learning-rate = 3e-4`; command-line flags win.\n"
      "OUT/config.toml holds the resolved settings of a run in that form.");
}

void add_run_options(CLI::App& command, RunOptions& run) {
  command
      .add_option("--out", run.out_dir, "Output directory (model/, checkpoint/, metrics.jsonl, config.toml)")
      ->required();
  command.add_option("--device", run.device, "cpu, cuda or cuda:N")->capture_default_str();
  command.add_option("--threads", run.threads, "libtorch threads (0: one per core)")->capture_default_str();
  command.add_option("--seed", run.seed, "Seed of the initialisation, shuffles, samplers and dropout")
      ->capture_default_str();
  command.add_option("--epochs", run.epochs, "Passes over the training data")->capture_default_str();
  command
      .add_option("--max-steps", run.max_steps, "Stop after this many optimiser steps (< 0: epochs decide)")
      ->capture_default_str();
  command
      .add_option("--save-every", run.save_every, "Checkpoint every N optimiser steps (0: only at the end)")
      ->capture_default_str();
  command
      .add_option("--log-every", run.log_every,
                  "metrics.jsonl line every N optimiser steps (0: only at the end)")
      ->capture_default_str();
  command.add_flag("--resume", run.resume, "Continue from OUT/checkpoint when it exists (after a kill)");
  command
      .add_option("--exit-after-step", run.exit_after_step,
                  "Testing: end the process abruptly right after step N's checkpoint, as a kill would")
      ->group("");
  command.add_flag("--quiet", run.quiet, "No progress bar");
}

void add_optimizer_options(CLI::App& command, OptimizerOptions& optimizer) {
  command.add_option("--learning-rate,--lr", optimizer.learning_rate, "Peak AdamW learning rate")
      ->capture_default_str();
  command
      .add_option("--weight-decay", optimizer.weight_decay, "AdamW weight decay (not on biases and norms)")
      ->capture_default_str();
  command.add_option("--adam-beta1", optimizer.adam_beta1, "AdamW beta1")->capture_default_str();
  command.add_option("--adam-beta2", optimizer.adam_beta2, "AdamW beta2")->capture_default_str();
  command.add_option("--adam-eps", optimizer.adam_eps, "AdamW epsilon")->capture_default_str();
  command
      .add_option("--schedule", optimizer.schedule,
                  "Learning-rate decay after warm-up: constant, linear, cosine")
      ->capture_default_str();
  command.add_option("--warmup-ratio", optimizer.warmup_ratio, "Warm-up as a share of all steps")
      ->capture_default_str();
  command
      .add_option("--warmup-steps", optimizer.warmup_steps,
                  "Warm-up steps (overrides --warmup-ratio when >= 0)")
      ->capture_default_str();
  command
      .add_option("--max-grad-norm", optimizer.max_grad_norm,
                  "Clip gradients to this global L2 norm (<= 0: off)")
      ->capture_default_str();
  command.add_option("--grad-accumulation", optimizer.grad_accumulation, "Micro-batches per optimiser step")
      ->capture_default_str();
}

void save_resolved_config(const CLI::App& command, const std::string& out_dir) {
  std::filesystem::create_directories(out_dir);
  const std::string text = command.config_to_str(/*default_also=*/true, /*write_description=*/true);
  write_file_atomically((std::filesystem::path(out_dir) / "config.toml").string(), [&](std::ostream& out) {
    out << "# disranker " << command.get_name() << ": resolved settings (pass back with --config)\n["
        << command.get_name() << "]\n"
        << text;
  });
}

}  // namespace disranker::cli
