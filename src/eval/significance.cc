#include "eval/significance.h"

#include <cmath>
#include <random>
#include <unordered_map>

#include "core/error.h"

namespace disranker {

Comparison randomization_test(const Evaluation& a, const Evaluation& b, std::size_t metric_index,
                              const RandomizationOptions& options) {
  if (metric_index >= a.metrics.size() || metric_index >= b.metrics.size()) {
    throw Error("randomization_test: metric index out of range");
  }
  const MetricSpec& metric = a.metrics[metric_index];
  std::unordered_map<std::string, const QueryEvaluation*> b_by_qid;
  for (const auto& q : b.queries) b_by_qid.emplace(q.qid, &q);
  std::vector<const QueryEvaluation*> left, right;
  for (const auto& q : a.queries) {
    const auto it = b_by_qid.find(q.qid);
    if (it == b_by_qid.end()) continue;
    left.push_back(&q);
    right.push_back(it->second);
  }

  Comparison result;
  result.queries = left.size();
  result.a = aggregate(metric, metric_index, left);
  result.b = aggregate(metric, metric_index, right);
  if (left.empty() || std::isnan(result.a) || std::isnan(result.b)) return result;
  const double observed = std::fabs(result.b - result.a);
  // Rounding in the sums can make a permutation equal to the observed difference differ by a few ulps.
  const double threshold = observed - 1e-12 * std::max(1.0, observed);

  std::vector<const QueryEvaluation*> x(left), y(right);
  auto permuted_difference = [&](auto&& swapped) {
    for (std::size_t i = 0; i < left.size(); ++i) {
      const bool s = swapped(i);
      x[i] = s ? right[i] : left[i];
      y[i] = s ? left[i] : right[i];
    }
    const double d = aggregate(metric, metric_index, y) - aggregate(metric, metric_index, x);
    return std::isnan(d) ? 0.0 : std::fabs(d);
  };

  std::size_t hits = 0;
  if (left.size() <= 16) {
    const std::uint64_t total = std::uint64_t{1} << left.size();
    for (std::uint64_t mask = 0; mask < total; ++mask) {
      if (permuted_difference([&](std::size_t i) { return ((mask >> i) & 1U) != 0; }) >= threshold) ++hits;
    }
    result.exact = true;
    result.p_value = static_cast<double>(hits) / static_cast<double>(total);
    return result;
  }
  std::mt19937_64 rng(options.seed);
  std::vector<bool> flips(left.size());
  for (std::size_t s = 0; s < options.samples; ++s) {
    for (std::size_t i = 0; i < flips.size(); ++i) flips[i] = (rng() & 1U) != 0;
    if (permuted_difference([&](std::size_t i) { return flips[i]; }) >= threshold) ++hits;
  }
  result.p_value = static_cast<double>(hits + 1) / static_cast<double>(options.samples + 1);
  return result;
}

}  // namespace disranker
