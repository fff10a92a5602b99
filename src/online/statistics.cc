#include "online/statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace disranker::online {

double sign_test_p_value(std::size_t wins, std::size_t losses) {
  const std::size_t n = wins + losses;
  if (n == 0) return 1;
  const std::size_t k = std::min(wins, losses);
  const double dn = static_cast<double>(n);
  const double dk = static_cast<double>(k);
  // P(X = k) in log space (n can be millions), then P(X = i - 1) = P(X = i) * i / (n - i + 1) downwards: the
  // terms shrink geometrically once below the mode, so the tail is summed to full precision in few steps.
  double term =
      std::exp(std::lgamma(dn + 1) - std::lgamma(dk + 1) - std::lgamma(dn - dk + 1) - dn * std::log(2.0));
  double tail = 0;
  for (std::size_t i = k;; --i) {
    tail += term;
    if (i == 0 || term < tail * 1e-17) break;
    term *= static_cast<double>(i) / static_cast<double>(n - i + 1);
  }
  return std::min(1.0, 2 * tail);
}

double two_proportion_p_value(std::size_t successes_a, std::size_t trials_a, std::size_t successes_b,
                              std::size_t trials_b) {
  if (trials_a == 0 || trials_b == 0) return 1;
  const double na = static_cast<double>(trials_a);
  const double nb = static_cast<double>(trials_b);
  const double pooled = static_cast<double>(successes_a + successes_b) / (na + nb);
  const double variance = pooled * (1 - pooled) * (1 / na + 1 / nb);
  if (!(variance > 0)) return 1;
  const double z =
      (static_cast<double>(successes_b) / nb - static_cast<double>(successes_a) / na) / std::sqrt(variance);
  return std::erfc(std::abs(z) / std::sqrt(2.0));
}

double quantile_of_sorted(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double position = std::clamp(q, 0.0, 1.0) * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return sorted[below] + fraction * (sorted[above] - sorted[below]);
}

}  // namespace disranker::online
