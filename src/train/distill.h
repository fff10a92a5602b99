// Stage 4, distillation: the BERT student (any Ranker, really) trained on the teacher's scores — a TREC run
// written by `disranker score` with the teacher — with DisRanker's hybrid loss
//   L = α · MSE(s, t) + (1 − α) · MSE(Δs, Δt)
// over the documents of one query and their pairs (train/losses.h; also margin-MSE, point-MSE and listwise
// KL).
//
// Teacher score normalisation, applied once to the groups before training:
//   none    the teacher's raw scores. Point-MSE (and so the hybrid loss) then asks the student to reproduce
//   the
//           teacher's scale, whatever it is; only the pairwise part is shift-invariant.
//   query   per-query standardisation: t' = (t − mean_q) / sd_q over the query's candidates (population
//   standard
//           deviation, divisor n). Removes the teacher's per-query offset and spread, so point-MSE learns
//           only the within-query order and relative gaps; a query with one document or zero variance gets t'
//           = 0 for all (counted and reported: it carries no ranking information).
//   global  one affine map of all teacher scores of the pool to mean 0 and standard deviation 1: keeps the
//           differences between queries (useful when the student's score is used as an absolute relevance
//           estimate) while putting the targets on the unit scale the student's initialisation starts near.
// Pairs of the pairwise term: all pairs of a sampled group, or only (higher label, lower label) pairs when
// --pairs pos-neg (needs qrels). Groups are sampled uniformly (no positive-first): the teacher's scores grade
// every document.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "data/groups.h"
#include "model/ranker.h"
#include "train/losses.h"
#include "train/sft.h"
#include "train/train_options.h"
#include "train/trainer.h"
#include "train/validation.h"

namespace disranker {

enum class TeacherNorm { kNone, kQuery, kGlobal };

// "none" | "query" | "global"; Error naming --teacher-norm otherwise.
TeacherNorm parse_teacher_norm(const std::string& name);
std::string_view to_string(TeacherNorm norm);

struct TeacherNormReport {
  TeacherNorm norm = TeacherNorm::kNone;
  std::size_t degenerate_queries = 0;  // query: groups with one document or zero variance, mapped to 0
  double mean = 0.0;                   // global: t' = (t − mean) / stddev
  double stddev = 1.0;
  nlohmann::json to_json() const;
};

// Rewrites every GroupDoc::teacher of `groups` in place. global with zero variance over the whole pool is an
// Error (the teacher says nothing). Teacher scores must be finite (build_teacher_groups guarantees it).
TeacherNormReport normalize_teacher_scores(std::vector<QueryGroup>& groups, TeacherNorm norm);

struct DistillTrainOptions {
  DistillLossOptions loss;  // "hybrid" with alpha 0.5 by default
  GroupBatchOptions batching{.sample = {.group_size = 8, .positive_first = false}, .groups_per_batch = 8};
  std::size_t eval_batch_size = 64;
};

// Trains `student` on the groups' teacher scores (and labels, for pos-neg pairs) with the Trainer; validates
// on `dev` at each epoch's end when given. Throws Error when pos-neg pairs are asked and no group has labels.
TrainSummary train_distill(Ranker& student, const Queries& queries, const Docs& docs,
                           const std::vector<QueryGroup>& groups, DistillTrainOptions options,
                           const RunOptions& run, const OptimizerOptions& optimizer,
                           const ValidationSet* dev = nullptr);

// The stage as the CLI runs it, from files.
struct DistillOptions {
  std::string teacher_run_path;  // TREC run with the teacher's scores
  std::string queries_path, docs_path;
  std::string qrels_path;  // optional: labels for --pairs pos-neg (and reported in the groups)
  GroupOptions groups{.require_positive = false, .max_candidates = 0};
  TeacherNorm norm = TeacherNorm::kNone;
  DistillTrainOptions train;
  std::string dev_dir, dev_run;
  bool dev_require_relevant = false;
  std::int64_t max_length = 0;  // pair budget; 0: the model's
};
// Throws Error naming the flag for an out-of-range setting (pos-neg pairs without --qrels included).
void validate(const DistillOptions& options);

// Reads the inputs, builds the teacher groups (the GroupReport goes to stderr), normalises the teacher
// scores, trains, writes OUT/model (provenance {stage, loss, teacher run, normalisation, data files, steps,
// dev metrics}) and OUT/summary.json, and returns the summary.
nlohmann::json run_distill(Ranker& student, const std::string& model_dir, const DistillOptions& options,
                           const RunOptions& run, const OptimizerOptions& optimizer);

}  // namespace disranker
