// The losses of DisRanker's stages, each a plain function of score tensors (autograd does the gradients).
//
// Shapes: a group is one query's documents. Ranking losses take scores [G, N] (G groups of N documents, padded
// groups masked with valid [G, N] bool) and labels [G, N] (graded; float). Distillation losses take the
// student's and the teacher's scores, same shapes. Every loss returns the mean over what it sums (pairs, groups or
// documents) as a scalar; a batch with nothing to average (no pair with different labels) gives 0 with a grad
// path (so that backward() still works) and is counted by the caller.
//
// Formulas (s = scores, y = labels, t = teacher scores, σ = logistic):
//   pairwise hinge   mean over pairs (i, j) of a group with y_i > y_j of max(0, margin - (s_i - s_j))
//   RankNet          mean over the same pairs of log(1 + exp(-(s_i - s_j)))   (Burges et al. 2005, σ = 1)
//   listwise softmax mean over groups of -Σ_i p_i log softmax(s)_i, p = y / Σ y over valid documents (groups
//                    with Σ y = 0 are skipped); with one positive this is the InfoNCE / "1 + k negatives" loss
//   point MSE        mean over valid documents of (s - y)²
//   point BCE        mean over valid documents of BCE(σ(s), y / max_label)
//   distill point    mean over valid documents of (s - t)²
//   margin-MSE       mean over pairs (i, j) of ((s_i - s_j) - (t_i - t_j))²  (Hofstätter et al. 2020); pairs are all
//                    i < j of a group, or only (positive, negative) pairs by label when labels are given
//   hybrid           α · distill point + (1 − α) · margin-MSE   (DisRanker's loss)
//   listwise KL      mean over groups of KL(softmax(t / τ) ‖ softmax(s / τ)) · τ²
#pragma once

#include <torch/torch.h>

#include <string>

namespace disranker {

enum class PairSelection {
  kAll,             // every pair i < j of valid documents of a group
  kPositiveNegative // pairs whose labels differ (needs labels)
};

torch::Tensor pairwise_hinge_loss(const torch::Tensor& scores, const torch::Tensor& labels,
                                  const torch::Tensor& valid, double margin = 1.0);
torch::Tensor ranknet_loss(const torch::Tensor& scores, const torch::Tensor& labels, const torch::Tensor& valid);
torch::Tensor listwise_softmax_loss(const torch::Tensor& scores, const torch::Tensor& labels,
                                    const torch::Tensor& valid);
torch::Tensor point_mse_loss(const torch::Tensor& scores, const torch::Tensor& targets, const torch::Tensor& valid);
torch::Tensor point_bce_loss(const torch::Tensor& scores, const torch::Tensor& labels, const torch::Tensor& valid,
                             double max_label);

// labels may be undefined for PairSelection::kAll.
torch::Tensor margin_mse_loss(const torch::Tensor& student, const torch::Tensor& teacher, const torch::Tensor& valid,
                              PairSelection pairs = PairSelection::kAll, const torch::Tensor& labels = {});
torch::Tensor hybrid_distill_loss(const torch::Tensor& student, const torch::Tensor& teacher,
                                  const torch::Tensor& valid, double alpha,
                                  PairSelection pairs = PairSelection::kAll, const torch::Tensor& labels = {});
torch::Tensor listwise_kl_loss(const torch::Tensor& student, const torch::Tensor& teacher, const torch::Tensor& valid,
                               double temperature = 1.0);

// The loss names the CLI accepts, one function for each stage.
// SFT / label training: "hinge", "ranknet", "softmax", "mse", "bce".
// Distillation: "hybrid", "margin-mse", "point-mse", "kl".
struct RankLossOptions {
  std::string name = "softmax";
  double margin = 1.0;     // hinge
  double max_label = 1.0;  // bce: labels are divided by it
};
torch::Tensor rank_loss(const RankLossOptions& options, const torch::Tensor& scores, const torch::Tensor& labels,
                        const torch::Tensor& valid);

struct DistillLossOptions {
  std::string name = "hybrid";
  double alpha = 0.5;  // hybrid: weight of the point-wise MSE
  PairSelection pairs = PairSelection::kAll;
  double temperature = 1.0;  // kl
};
// labels may be undefined unless pairs == kPositiveNegative.
torch::Tensor distill_loss(const DistillLossOptions& options, const torch::Tensor& student,
                           const torch::Tensor& teacher, const torch::Tensor& valid, const torch::Tensor& labels = {});

// Throws Error naming the flag for an unknown loss name or an out-of-range setting (margin < 0, alpha outside
// [0, 1], temperature <= 0, max_label <= 0).
void validate(const RankLossOptions& options);
void validate(const DistillLossOptions& options);
PairSelection parse_pair_selection(const std::string& name);  // "all" | "pos-neg"

}  // namespace disranker
