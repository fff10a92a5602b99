// The simulated experiment's results as JSON, in one shape wherever they are written: the report of
// `disranker online --out` (docs/online.md) and the "online" entries of the pipeline's report.json
// (docs/report.md), so that a reader of either finds the same fields.
#pragma once

#include <nlohmann/json.hpp>

#include "online/simulation.h"

namespace disranker::online {

// A number, or null where it is not finite (JSON has no NaN).
nlohmann::json finite_or_null(double value);

// {"a": bucket totals, "b": bucket totals, "metrics": {metric_key: {a, b, relative, ci_low, ci_high,
// significant}}, "bootstrap_resamples", "confidence"}.
nlohmann::json ab_test_json(const AbResult& result, const AbOptions& options);

// {"method": "team_draft", "impressions", "wins_b", "wins_a", "ties", "clicks", "b_win_share", "delta_ab",
// "p_value"}.
nlohmann::json interleaving_json(const InterleavingResult& result);

}  // namespace disranker::online
