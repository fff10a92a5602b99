// Stage 2, rank fine-tuning (SFT): any Ranker — the decoder teacher (score from the final </s> token) or the
// BERT student (then it is the "student trained on labels alone" baseline) — trained on graded labels with a
// ranking loss over query groups.
//
// Grouped batching (shared with distillation, train/distill.h): a micro-batch holds `groups_per_batch`
// queries, each with a training group sampled from its candidates (data/groups.h: 1 positive + k negatives
// with a lower label for SFT; a uniform sample for distillation; the whole list with group_size 0). The pairs
// of all groups are scored in one forward pass and the scores are laid out as [G, N] with a valid mask, N the
// largest group of the batch, so that the losses of train/losses.h see one query per row.
//
// Determinism: micro-batch (epoch, index) holds the groups at positions [index·G, (index+1)·G) of
// epoch_order(groups, seed, epoch), and each group's sample is drawn with a seed taken from
// batch_seed(seed, epoch, index): a pure function of (seed, epoch, index), so --resume replays exactly the
// batches an uninterrupted run would have seen (train/trainer.h).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/docs.h"
#include "data/groups.h"
#include "data/queries.h"
#include "model/lora.h"
#include "model/ranker.h"
#include "train/losses.h"
#include "train/train_options.h"
#include "train/trainer.h"
#include "train/validation.h"

namespace disranker {

// ---- Grouped batching (SFT and distillation)
// ----------------------------------------------------------------

struct GroupBatchOptions {
  SampleOptions sample;              // documents per group and how they are drawn
  std::size_t groups_per_batch = 4;  // queries per micro-batch (>= 1)
};

// The groups of micro-batch (epoch, index) and the documents drawn from each (indices into group.docs).
struct MicroBatchPlan {
  std::vector<std::size_t> groups;
  std::vector<std::vector<std::size_t>> documents;
};

// ceil(num_groups / groups_per_batch): one epoch is one pass over the training queries.
std::int64_t group_batches_per_epoch(std::size_t num_groups, std::size_t groups_per_batch);

// A pure function of (groups, options, seed, epoch, index); index < group_batches_per_epoch(). The last batch
// of an epoch holds the groups that are left.
MicroBatchPlan plan_group_batch(const std::vector<QueryGroup>& groups, const GroupBatchOptions& options,
                                std::uint64_t seed, std::int64_t epoch, std::int64_t index);

// A micro-batch scored by the model, laid out one query per row. Padding slots hold score 0 and are masked
// out.
struct GroupScores {
  torch::Tensor scores;   // [G, N] float32, with autograd when the model is training
  torch::Tensor labels;   // [G, N] float32 graded labels (0 for unjudged)
  torch::Tensor teacher;  // [G, N] float32 teacher scores (0 where absent)
  torch::Tensor valid;    // [G, N] bool
  std::size_t pairs = 0;  // (query, document) pairs scored
};

// Encodes the plan's pairs with the ranker's template and budget, scores them in one forward pass and lays
// the scores out as [G, N]. A qid or docid without text is an Error (the groups were built against these
// queries and docs, so it means the wrong files).
GroupScores score_group_batch(Ranker& ranker, const Queries& queries, const Docs& docs,
                              const std::vector<QueryGroup>& groups, const MicroBatchPlan& plan);

// The figures of `report` as JSON, its field names as keys.
nlohmann::json group_report_json(const GroupReport& report);
// Prints the report's lines on stderr, each prefixed with "<stage>: ".
void print_group_report(const std::string& stage, const GroupReport& report);

// Epoch-end validation on `set` as JSON {metric: value}, with the set's name.
nlohmann::json validation_json(Ranker& ranker, const ValidationSet& set, std::size_t batch_size);

// ---- Rank fine-tuning
// -----------------------------------------------------------------------------------------

// LoRA on the decoder teacher: adapters on `config.target_modules`, everything else frozen but the score head
// (modules_to_save gets "score"). Ranker::save merges the adapters into the saved weights. Returns the
// adapted module paths. Throws Error for a BERT model (LoRA here is for the decoder's projections).
std::vector<std::string> apply_rank_lora(Ranker& ranker, LoraConfig config);

struct SftTrainOptions {
  RankLossOptions loss;        // "softmax" (1 + k negatives, the default), "hinge", "ranknet", "mse", "bce"
  GroupBatchOptions batching;  // sample.positive_first is forced on
  std::size_t eval_batch_size = 64;
};

// Trains `ranker` on `groups` (labels) with the Trainer; validates on `dev` at each epoch's end when given.
// The bce loss's max_label is taken from the data when left at its default of 1 and the data has higher
// grades.
TrainSummary train_sft(Ranker& ranker, const Queries& queries, const Docs& docs,
                       const std::vector<QueryGroup>& groups, SftTrainOptions options, const RunOptions& run,
                       const OptimizerOptions& optimizer, const ValidationSet* dev = nullptr);

// The stage as the CLI runs it, from files.
struct SftOptions {
  std::string queries_path, docs_path, qrels_path;
  std::string run_path;  // candidate run; empty: the judged documents are the candidates
  GroupOptions groups;   // require_positive, max_candidates
  SftTrainOptions train;
  std::int64_t lora_rank = 0;  // 0: full fine-tuning
  LoraConfig lora;             // alpha, dropout, targets (r from lora_rank)
  std::string dev_dir;         // validation set directory (queries.tsv, docs.tsv, qrels.txt)
  std::string dev_run;         // its candidates; empty: its judged documents
  bool dev_require_relevant = false;
  std::int64_t max_length = 0;  // pair budget; 0: the model's
};
// Throws Error naming the flag for an out-of-range setting.
void validate(const SftOptions& options);

// Reads the inputs, builds the groups (the GroupReport goes to stderr), trains, writes OUT/model
// (Ranker::save with provenance {stage, loss, data files, steps, dev metrics}) and OUT/summary.json
// (TrainSummary, the GroupReport counts, the dev metrics), and returns the summary.
nlohmann::json run_sft(Ranker& ranker, const std::string& model_dir, const SftOptions& options,
                       const RunOptions& run, const OptimizerOptions& optimizer);

}  // namespace disranker
