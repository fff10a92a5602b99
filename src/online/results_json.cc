#include "online/results_json.h"

#include <cmath>

namespace disranker::online {

nlohmann::json finite_or_null(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

nlohmann::json ab_test_json(const AbResult& result, const AbOptions& options) {
  nlohmann::json metrics;
  for (std::size_t m = 0; m < kMetricCount; ++m) {
    const auto& d = result.deltas[m];
    metrics[metric_key(static_cast<Metric>(m))] = {{"a", finite_or_null(d.a)},
                                                   {"b", finite_or_null(d.b)},
                                                   {"relative", finite_or_null(d.relative)},
                                                   {"ci_low", finite_or_null(d.ci_low)},
                                                   {"ci_high", finite_or_null(d.ci_high)},
                                                   {"significant", d.significant()}};
  }
  const auto arm = [](const ArmTotals& t) {
    return nlohmann::json{{"users", t.users},   {"active_users", t.active_users},
                          {"pages", t.pages},   {"clicked_pages", t.clicked_pages},
                          {"clicks", t.clicks}, {"satisfied_pages", t.satisfied_pages}};
  };
  return {{"a", arm(result.a)},
          {"b", arm(result.b)},
          {"metrics", metrics},
          {"bootstrap_resamples", result.bootstrap},
          {"confidence", options.confidence}};
}

nlohmann::json interleaving_json(const InterleavingResult& result) {
  return {{"method", "team_draft"},
          {"impressions", result.impressions},
          {"wins_b", result.wins_b},
          {"wins_a", result.wins_a},
          {"ties", result.ties},
          {"clicks", result.clicks},
          {"b_win_share", result.b_win_share()},
          {"delta_ab", result.delta()},
          {"p_value", result.p_value}};
}

}  // namespace disranker::online
