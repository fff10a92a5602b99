#include "train/train_options.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>

#include "core/error.h"

namespace disranker {
namespace {

std::string number_text(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// "--flag must be ... (got X)": the flag is what the user typed, so the message says how to fix it.
[[noreturn]] void reject(const std::string& flag, const std::string& requirement, const std::string& got) {
  throw Error(flag + " must be " + requirement + " (got " + got + ")");
}

}  // namespace

std::int64_t warmup_steps_for(const OptimizerOptions& options, std::int64_t total_steps) {
  if (options.warmup_steps >= 0) return options.warmup_steps;
  return static_cast<std::int64_t>(std::llround(options.warmup_ratio * static_cast<double>(total_steps)));
}

double learning_rate_at(const OptimizerOptions& options, std::int64_t step, std::int64_t total_steps) {
  const double peak = options.learning_rate;
  const std::string& schedule = options.schedule;
  if (schedule != "constant" && schedule != "linear" && schedule != "cosine") {
    throw Error("--schedule: unknown schedule '" + schedule + "' (expected constant, linear or cosine)");
  }
  const std::int64_t warmup = warmup_steps_for(options, total_steps);
  // Warm-up counts the step being taken, so that its first step already moves (lr / warmup) and its last one
  // reaches the peak.
  if (step < warmup) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (schedule == "constant") return peak;
  const std::int64_t decay_steps = total_steps - warmup;
  if (decay_steps <= 0) return 0.0;  // past the end of a run that is all warm-up
  // Progress through the decay: 0 at the first step after the warm-up, 1 at total_steps (where the rate is 0,
  // as in Hugging Face's get_linear/cosine_schedule_with_warmup).
  const double progress =
      std::clamp(static_cast<double>(step - warmup) / static_cast<double>(decay_steps), 0.0, 1.0);
  if (schedule == "linear") return peak * (1.0 - progress);
  return peak * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

void validate(const OptimizerOptions& options) {
  // Written as !(x > 0) so that NaN is rejected too.
  if (!(options.learning_rate > 0)) reject("--learning-rate", "> 0", number_text(options.learning_rate));
  if (!(options.weight_decay >= 0)) reject("--weight-decay", ">= 0", number_text(options.weight_decay));
  if (!(options.adam_beta1 >= 0 && options.adam_beta1 < 1)) {
    reject("--adam-beta1", "in [0, 1)", number_text(options.adam_beta1));
  }
  if (!(options.adam_beta2 >= 0 && options.adam_beta2 < 1)) {
    reject("--adam-beta2", "in [0, 1)", number_text(options.adam_beta2));
  }
  if (!(options.adam_eps > 0)) reject("--adam-eps", "> 0", number_text(options.adam_eps));
  if (options.schedule != "constant" && options.schedule != "linear" && options.schedule != "cosine") {
    reject("--schedule", "constant, linear or cosine", "'" + options.schedule + "'");
  }
  if (!(options.warmup_ratio >= 0 && options.warmup_ratio <= 1)) {
    reject("--warmup-ratio", "in [0, 1]", number_text(options.warmup_ratio));
  }
  if (std::isnan(options.max_grad_norm)) reject("--max-grad-norm", "a number (<= 0: no clipping)", "nan");
  if (options.grad_accumulation < 1) {
    reject("--grad-accumulation", ">= 1", std::to_string(options.grad_accumulation));
  }
}

void validate(const RunOptions& options) {
  if (options.out_dir.empty()) throw Error("--out must name the output directory");
  if (options.threads < 0) reject("--threads", ">= 0 (0: one per core)", std::to_string(options.threads));
  if (options.epochs < 1) reject("--epochs", ">= 1", std::to_string(options.epochs));
  if (options.save_every < 0)
    reject("--save-every", ">= 0 (0: only at the end)", std::to_string(options.save_every));
  if (options.log_every < 0)
    reject("--log-every", ">= 0 (0: only at the end)", std::to_string(options.log_every));
}

}  // namespace disranker
