// Settings every training stage shares (optimiser, schedule, run control), as plain structs without libtorch,
// and the learning-rate schedule as a pure function. The CLI binds them to flags and to the --config file
// (cli/train_options.h); the resolved values are saved beside the outputs.
#pragma once

#include <cstdint>
#include <string>

namespace disranker {

// AdamW with decoupled weight decay (not applied to biases and norm weights, as Hugging Face's Trainer does),
// a warm-up then a decay of the learning rate, gradient clipping by the global L2 norm and gradient
// accumulation over micro-batches.
struct OptimizerOptions {
  double learning_rate = 1e-4;
  double weight_decay = 0.01;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;
  std::string schedule = "linear";  // "constant", "linear" (to 0) or "cosine" (to 0), after the warm-up
  double warmup_ratio = 0.06;       // share of the total optimiser steps; used when warmup_steps < 0
  std::int64_t warmup_steps = -1;
  double max_grad_norm = 1.0;             // <= 0: no clipping
  std::int64_t grad_accumulation = 1;     // micro-batches per optimiser step
};

// What a run does and where it writes. Layout of `out_dir`:
//   model/          the trained model (Hugging Face directory + disranker.json), written at the end
//   checkpoint/     the latest training state (weights, optimiser, position in the data), every save_every steps
//   metrics.jsonl   one JSON object per logged step and per epoch-end validation
//   config.toml     the resolved settings of the run (flags and --config merged)
//   summary.json    final figures (steps, final loss, throughput, validation metrics)
struct RunOptions {
  std::string out_dir;
  std::string device = "cpu";
  int threads = 0;  // 0: one per core
  std::uint64_t seed = 42;
  std::int64_t epochs = 1;
  std::int64_t max_steps = -1;    // optimiser steps in all; < 0: epochs × steps per epoch
  std::int64_t save_every = 100;  // checkpoint every N optimiser steps (0: only at the end)
  std::int64_t log_every = 10;    // metrics.jsonl line every N optimiser steps
  bool resume = false;            // continue from out_dir/checkpoint when it exists
  // Testing aid: terminate the process abruptly (std::_Exit(137), as a kill would) right after step N's
  // checkpoint is written. < 0: never.
  std::int64_t exit_after_step = -1;
  bool quiet = false;  // no progress bar
};

// The learning rate of optimiser step `step` (0-based) out of `total_steps`: linear warm-up from 0 over the
// warm-up steps (lr * (step + 1) / warmup), then constant, linear decay to 0 at total_steps, or cosine decay to 0.
// Throws Error for an unknown schedule name.
double learning_rate_at(const OptimizerOptions& options, std::int64_t step, std::int64_t total_steps);

// The warm-up steps of a run of total_steps (warmup_steps, or round(warmup_ratio × total_steps)).
std::int64_t warmup_steps_for(const OptimizerOptions& options, std::int64_t total_steps);

// Checks ranges (lr > 0, betas in [0, 1), eps > 0, weight decay >= 0, accumulation >= 1, warmup_ratio in [0, 1],
// known schedule; epochs >= 1, save/log every >= 0, out_dir set). Throws Error naming the flag.
void validate(const OptimizerOptions& options);
void validate(const RunOptions& options);

}  // namespace disranker
