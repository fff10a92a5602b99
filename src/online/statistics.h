// The tests behind the online report: exact sign test (interleaving), two-proportion z-test (an A/B test of a
// rate on independent pages) and percentiles (bootstrap confidence intervals).
#pragma once

#include <cstddef>
#include <vector>

namespace disranker::online {

// Two-sided exact binomial (sign) test of H0: a win is as likely as a loss. p = min(1, 2 P(X <= min(wins,
// losses))), X ~ Binomial(wins + losses, 1/2); ties carry no information and are left out. 1 when there is
// nothing to test.
double sign_test_p_value(std::size_t wins, std::size_t losses);

// Two-sided pooled two-proportion z-test of H0: rate A = rate B (successes out of trials in each group).
// 1 when either group is empty or the pooled rate is 0 or 1 (no variance: nothing can differ).
double two_proportion_p_value(std::size_t successes_a, std::size_t trials_a, std::size_t successes_b,
                              std::size_t trials_b);

// The q-quantile (q in [0, 1]) of sorted values, linearly interpolated between order statistics (the
// "type 7" quantile of R and NumPy). NaN for no values.
double quantile_of_sorted(const std::vector<double>& sorted, double q);

}  // namespace disranker::online
