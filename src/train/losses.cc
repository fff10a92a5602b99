// The losses of DisRanker's stages (see losses.h for the formulas), as whole-tensor libtorch ops.
//
// Padding is handled the same way everywhere: padded entries are first overwritten with a harmless finite
// value (masked_fill, whose backward gives those entries an exact zero gradient), so that a NaN or an
// infinity in a padded score can reach neither the value nor, through 0 · inf, the gradient; the per-element
// terms are then masked again before they are summed. Means divide by max(count, 1) as a tensor, so a batch
// with nothing to average gives 0 with a grad path, and nothing waits for the device to report a count.
#include "train/losses.h"

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace disranker {
namespace {

// What padded logits become before a softmax: far enough below any real score that exp() underflows to an
// exact 0, yet finite (in float32 too), so that log_softmax stays finite and 0 · log p is 0, never NaN.
constexpr double kPaddedLogit = -1e9;

const std::vector<std::string> kRankLossNames = {"hinge", "ranknet", "softmax", "mse", "bce"};
const std::vector<std::string> kDistillLossNames = {"hybrid", "margin-mse", "point-mse", "kl"};

std::string join(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  for (const auto& known : names) {
    if (known == name) return true;
  }
  return false;
}

std::string shape_text(const torch::Tensor& tensor) {
  std::ostringstream text;
  text << tensor.sizes();
  return text.str();
}

// The losses run in double when the scores are double and in float32 otherwise: a bf16 / fp16 score from
// autocast is widened, because the sums over pairs would lose too much in 8 bits of mantissa.
torch::ScalarType working_type(const torch::Tensor& scores) {
  return scores.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
}

// Checks that `scores` is [G, N] and that `other` (labels or teacher scores) and `valid` have its shape;
// returns `valid` as bool.
torch::Tensor checked_mask(const char* loss, const torch::Tensor& scores, const torch::Tensor& other,
                           const char* other_name, const torch::Tensor& valid) {
  if (!scores.defined() || scores.dim() != 2) {
    throw Error(std::string(loss) + ": scores must be [groups, documents], got " +
                (scores.defined() ? shape_text(scores) : std::string("no tensor")));
  }
  if (!other.defined() || other.sizes() != scores.sizes()) {
    throw Error(std::string(loss) + ": " + other_name + " must have the scores' shape " + shape_text(scores) +
                ", got " + (other.defined() ? shape_text(other) : std::string("no tensor")));
  }
  if (!valid.defined() || valid.sizes() != scores.sizes()) {
    throw Error(std::string(loss) + ": the valid mask must have the scores' shape " + shape_text(scores) +
                ", got " + (valid.defined() ? shape_text(valid) : std::string("no tensor")));
  }
  return valid.scalar_type() == torch::kBool ? valid : valid.ne(0);
}

// `values` in the working type with padded entries set to 0.
torch::Tensor cleaned(const torch::Tensor& values, const torch::Tensor& valid, torch::ScalarType type) {
  return values.to(type).masked_fill(valid.logical_not(), 0);
}

// Σ terms[mask] / max(|mask|, 1): 0 with a grad path when the mask is empty.
torch::Tensor masked_mean(const torch::Tensor& terms, const torch::Tensor& mask) {
  const auto total = terms.masked_fill(mask.logical_not(), 0).sum();
  return total / mask.sum().clamp_min(1).to(terms.scalar_type());
}

// [G, N, N] with entry (g, i, j) = x[g, i] - x[g, j].
torch::Tensor pair_differences(const torch::Tensor& x) {
  return x.unsqueeze(2) - x.unsqueeze(1);
}

// [G, N, N]: both documents of the pair are real.
torch::Tensor valid_pairs(const torch::Tensor& valid) {
  return valid.unsqueeze(2).logical_and(valid.unsqueeze(1));
}

// [G, N, N]: pairs of real documents with label_i > label_j (each pair of different labels once, ordered).
torch::Tensor label_pairs(const torch::Tensor& labels, const torch::Tensor& valid) {
  return valid_pairs(valid).logical_and(labels.unsqueeze(2) > labels.unsqueeze(1));
}

// [G, N, N]: pairs i < j of real documents.
torch::Tensor all_pairs(const torch::Tensor& valid) {
  const auto n = valid.size(1);
  const auto upper =
      torch::ones({n, n}, torch::TensorOptions().dtype(torch::kBool).device(valid.device())).triu(1);
  return valid_pairs(valid).logical_and(upper.unsqueeze(0));
}

// log softmax over the real documents of each group; padded entries come out finite (and are masked by
// callers).
torch::Tensor masked_log_softmax(const torch::Tensor& logits, const torch::Tensor& valid) {
  return torch::log_softmax(logits.masked_fill(valid.logical_not(), kPaddedLogit), 1);
}

}  // namespace

torch::Tensor pairwise_hinge_loss(const torch::Tensor& scores, const torch::Tensor& labels,
                                  const torch::Tensor& valid, double margin) {
  const auto mask = checked_mask("pairwise hinge loss", scores, labels, "labels", valid);
  const auto type = working_type(scores);
  const auto differences = pair_differences(cleaned(scores, mask, type));
  const auto pairs = label_pairs(cleaned(labels, mask, type), mask);
  return masked_mean(torch::relu(margin - differences), pairs);
}

torch::Tensor ranknet_loss(const torch::Tensor& scores, const torch::Tensor& labels,
                           const torch::Tensor& valid) {
  const auto mask = checked_mask("RankNet loss", scores, labels, "labels", valid);
  const auto type = working_type(scores);
  const auto differences = pair_differences(cleaned(scores, mask, type));
  const auto pairs = label_pairs(cleaned(labels, mask, type), mask);
  // log(1 + exp(-d)) = softplus(-d), which libtorch evaluates without overflow for large |d|.
  return masked_mean(torch::softplus(-differences), pairs);
}

torch::Tensor listwise_softmax_loss(const torch::Tensor& scores, const torch::Tensor& labels,
                                    const torch::Tensor& valid) {
  const auto mask = checked_mask("listwise softmax loss", scores, labels, "labels", valid);
  const auto type = working_type(scores);
  const auto log_probabilities =
      masked_log_softmax(cleaned(scores, mask, type), mask).masked_fill(mask.logical_not(), 0);
  const auto gains = cleaned(labels, mask, type);
  const auto group_gain = gains.sum(1);
  const auto has_positive = group_gain > 0;
  // Groups without a positive divide by 1 instead of 0 (their gains are all 0) and are left out of the mean.
  const auto targets = gains / group_gain.masked_fill(has_positive.logical_not(), 1).unsqueeze(1);
  return masked_mean(-(targets * log_probabilities).sum(1), has_positive);
}

torch::Tensor point_mse_loss(const torch::Tensor& scores, const torch::Tensor& targets,
                             const torch::Tensor& valid) {
  const auto mask = checked_mask("point-wise MSE loss", scores, targets, "targets", valid);
  const auto type = working_type(scores);
  return masked_mean((cleaned(scores, mask, type) - cleaned(targets, mask, type)).square(), mask);
}

torch::Tensor point_bce_loss(const torch::Tensor& scores, const torch::Tensor& labels,
                             const torch::Tensor& valid, double max_label) {
  const auto mask = checked_mask("point-wise BCE loss", scores, labels, "labels", valid);
  if (!(max_label > 0) || !std::isfinite(max_label)) {
    throw Error("point-wise BCE loss: max_label must be a finite number > 0, got " +
                std::to_string(max_label));
  }
  const auto type = working_type(scores);
  const auto logits = cleaned(scores, mask, type);
  const auto targets = cleaned(labels, mask, type) / max_label;
  // -[y log σ(s) + (1 - y) log(1 - σ(s))] = softplus(s) - y·s, stable for any s.
  return masked_mean(torch::softplus(logits) - targets * logits, mask);
}

torch::Tensor margin_mse_loss(const torch::Tensor& student, const torch::Tensor& teacher,
                              const torch::Tensor& valid, PairSelection pairs, const torch::Tensor& labels) {
  const auto mask = checked_mask("margin-MSE loss", student, teacher, "teacher scores", valid);
  const auto type = working_type(student);
  torch::Tensor selected;
  if (pairs == PairSelection::kPositiveNegative) {
    if (!labels.defined()) {
      throw Error(
          "margin-MSE loss: positive-negative pairs (--pairs pos-neg) need labels, and none were given");
    }
    checked_mask("margin-MSE loss", student, labels, "labels", valid);
    selected = label_pairs(cleaned(labels, mask, type), mask);
  } else {
    selected = all_pairs(mask);
  }
  // (s_i - s_j) - (t_i - t_j) = (s_i - t_i) - (s_j - t_j): one [G, N, N] tensor instead of two.
  const auto gaps = pair_differences(cleaned(student, mask, type) - cleaned(teacher, mask, type));
  return masked_mean(gaps.square(), selected);
}

torch::Tensor hybrid_distill_loss(const torch::Tensor& student, const torch::Tensor& teacher,
                                  const torch::Tensor& valid, double alpha, PairSelection pairs,
                                  const torch::Tensor& labels) {
  return alpha * point_mse_loss(student, teacher, valid) +
         (1 - alpha) * margin_mse_loss(student, teacher, valid, pairs, labels);
}

torch::Tensor listwise_kl_loss(const torch::Tensor& student, const torch::Tensor& teacher,
                               const torch::Tensor& valid, double temperature) {
  const auto mask = checked_mask("listwise KL loss", student, teacher, "teacher scores", valid);
  if (!(temperature > 0) || !std::isfinite(temperature)) {
    throw Error("listwise KL loss: temperature must be a finite number > 0, got " +
                std::to_string(temperature));
  }
  const auto type = working_type(student);
  const auto student_log_p = masked_log_softmax(cleaned(student, mask, type) / temperature, mask);
  const auto teacher_log_p = masked_log_softmax(cleaned(teacher, mask, type) / temperature, mask);
  // Padded entries have teacher probability exactly 0 (exp(-1e9)), and are masked besides.
  const auto terms =
      (teacher_log_p.exp() * (teacher_log_p - student_log_p)).masked_fill(mask.logical_not(), 0);
  // τ² keeps the gradient's size independent of τ (Hinton et al. 2015).
  return masked_mean(terms.sum(1), mask.any(1)) * (temperature * temperature);
}

torch::Tensor rank_loss(const RankLossOptions& options, const torch::Tensor& scores,
                        const torch::Tensor& labels, const torch::Tensor& valid) {
  validate(options);
  if (options.name == "hinge") return pairwise_hinge_loss(scores, labels, valid, options.margin);
  if (options.name == "ranknet") return ranknet_loss(scores, labels, valid);
  if (options.name == "softmax") return listwise_softmax_loss(scores, labels, valid);
  if (options.name == "mse") return point_mse_loss(scores, labels, valid);
  return point_bce_loss(scores, labels, valid, options.max_label);  // "bce", the last name validate() allows
}

torch::Tensor distill_loss(const DistillLossOptions& options, const torch::Tensor& student,
                           const torch::Tensor& teacher, const torch::Tensor& valid,
                           const torch::Tensor& labels) {
  validate(options);
  if (options.name == "hybrid") {
    return hybrid_distill_loss(student, teacher, valid, options.alpha, options.pairs, labels);
  }
  if (options.name == "margin-mse") return margin_mse_loss(student, teacher, valid, options.pairs, labels);
  if (options.name == "point-mse") return point_mse_loss(student, teacher, valid);
  return listwise_kl_loss(student, teacher, valid,
                          options.temperature);  // "kl", the last name validate() allows
}

void validate(const RankLossOptions& options) {
  if (!contains(kRankLossNames, options.name)) {
    throw Error("--loss must be one of " + join(kRankLossNames) + " for rank training, got '" + options.name +
                "'");
  }
  if (!(options.margin >= 0) || !std::isfinite(options.margin)) {
    throw Error("--margin must be a finite number >= 0, got " + std::to_string(options.margin));
  }
  if (!(options.max_label > 0) || !std::isfinite(options.max_label)) {
    throw Error("--max-label must be a finite number > 0, got " + std::to_string(options.max_label));
  }
}

void validate(const DistillLossOptions& options) {
  if (!contains(kDistillLossNames, options.name)) {
    throw Error("--loss must be one of " + join(kDistillLossNames) + " for distillation, got '" +
                options.name + "'");
  }
  if (!(options.alpha >= 0 && options.alpha <= 1)) {
    throw Error("--alpha must be in [0, 1], got " + std::to_string(options.alpha));
  }
  if (!(options.temperature > 0) || !std::isfinite(options.temperature)) {
    throw Error("--temperature must be a finite number > 0, got " + std::to_string(options.temperature));
  }
}

PairSelection parse_pair_selection(const std::string& name) {
  if (name == "all") return PairSelection::kAll;
  if (name == "pos-neg") return PairSelection::kPositiveNegative;
  throw Error("--pairs must be one of all, pos-neg, got '" + name + "'");
}

}  // namespace disranker
