// The training loop every stage shares: micro-batches → loss → backward, gradient accumulation, clipping,
// AdamW with the learning-rate schedule, a progress bar with loss / throughput / ETA, a JSON-lines metrics
// log, atomic checkpoints every N steps, and --resume after a kill.
//
// Determinism (what makes resume exact): the stage computes micro-batch (epoch, index) from the seed alone
// (its shuffles and samplers are functions of (seed, epoch, index), never of a running generator), and the
// trainer re-seeds libtorch's generator before every micro-batch with a hash of (seed, epoch, index), so
// dropout is reproducible too. A run resumed from a checkpoint therefore takes the same steps as one that was
// never interrupted and reaches the same final loss (tests/test_trainer.cc checks this).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/random.h"
#include "model/ranker.h"
#include "train/train_options.h"

namespace disranker {

struct MicroBatchResult {
  torch::Tensor loss;  // scalar; the trainer divides it by the micro-batches of its step and calls backward()
  double units = 0;    // tokens, pairs or sequences processed, for the throughput figure
  // Extra figures averaged into the log lines (e.g. {"ranknet": 0.3}); optional.
  std::vector<std::pair<std::string, double>> extra;
};

struct TrainerSpec {
  std::string stage;                         // "cpt", "sft", "distill", "mlm": logs and checkpoint records
  std::string unit = "seq";                  // the unit of MicroBatchResult::units: "tokens", "pairs", ...
  std::int64_t micro_batches_per_epoch = 0;  // >= 1
};

struct TrainSummary {
  std::int64_t steps = 0;                     // optimiser steps taken in all (resumed ones included)
  std::int64_t resumed_from_step = 0;         // 0 when the run started fresh
  double final_loss = 0;                      // mean loss of the micro-batches of the last logging window
  double seconds = 0;                         // wall time of this process's training
  double units_per_second = 0;                // throughput of this process
  std::vector<nlohmann::json> epoch_metrics;  // what on_epoch_end returned, per epoch
  nlohmann::json to_json() const;
};

class Trainer {
 public:
  // The parameters trained are those of `model` with requires_grad (LoRA freezes the rest). Creates out_dir.
  Trainer(torch::nn::Module& model, RunOptions run, OptimizerOptions optimizer, TrainerSpec spec);

  using MicroStep = std::function<MicroBatchResult(std::int64_t epoch, std::int64_t index)>;
  // Called after the last step of each epoch (and not for epochs finished before a resume); returns metrics
  // logged as {"epoch": e, "validation": {...}}. The model is in eval mode during the call.
  using EpochEnd = std::function<nlohmann::json(std::int64_t epoch)>;

  // Trains until max_steps or the last epoch; with run.resume, first restores out_dir/checkpoint when present
  // (an incompatible checkpoint, e.g. another stage or other parameter shapes, is an Error naming it).
  // A NaN or infinite loss stops the run with an Error naming the epoch and micro-batch.
  TrainSummary run(const MicroStep& micro_step, const EpochEnd& on_epoch_end = {});

  std::int64_t total_steps() const { return total_steps_; }
  std::int64_t steps_per_epoch() const { return steps_per_epoch_; }
  const RunOptions& run_options() const { return run_; }

 private:
  torch::nn::Module& model_;
  RunOptions run_;
  OptimizerOptions optimizer_options_;
  TrainerSpec spec_;
  std::int64_t steps_per_epoch_ = 0;
  std::int64_t total_steps_ = 0;
};

// The end of every stage: OUT/model (the trained model with its provenance, plus the provenance the model
// came with as "base_provenance") and OUT/summary.json (with "model" set to that path), written by rank 0
// alone when data-parallel; every rank returns once they exist.
void save_trained_model(Ranker& ranker, const std::string& out_dir, nlohmann::json provenance,
                        nlohmann::json& summary);

}  // namespace disranker
