// Paired two-sided randomization (permutation) test, the significance test IR papers report (Smucker, Allan and
// Carterette, CIKM 2007). Under the null hypothesis the two systems are exchangeable on every query, so each
// query's pair of results is swapped at random and the metric difference recomputed; the p-value is the share of
// permutations whose |difference| is at least the observed one.
// With n <= 16 paired queries all 2^n swaps are enumerated (an exact p-value); otherwise `samples` random swaps
// are drawn and p = (hits + 1) / (samples + 1), which never reports an impossible p = 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "eval/metrics.h"

namespace disranker {

struct RandomizationOptions {
  std::size_t samples = 10000;
  std::uint64_t seed = 42;
};

struct Comparison {
  double a = 0;           // metric of system A over the paired queries
  double b = 0;           // metric of system B
  double p_value = 1;     // two-sided
  std::size_t queries = 0;
  bool exact = false;     // all permutations enumerated
};

// Compares metric `metric_index` of two evaluations with the same metric list. Queries are paired by qid; only
// queries present in both evaluations take part (with trec_eval -c semantics both hold every qrels query).
Comparison randomization_test(const Evaluation& a, const Evaluation& b, std::size_t metric_index,
                              const RandomizationOptions& options);

}  // namespace disranker
