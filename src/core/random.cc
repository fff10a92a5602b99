#include "core/random.h"

#include <limits>
#include <numeric>
#include <utility>

namespace disranker {

std::uint64_t SplitMix64::next() {
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t SplitMix64::below(std::uint64_t n) {
  // Reject the top partial block so that every residue is equally likely.
  const std::uint64_t limit =
      std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % n;
  std::uint64_t x = next();
  while (x >= limit) x = next();
  return x % n;
}

double SplitMix64::uniform() {
  return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

std::uint64_t batch_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t index) {
  SplitMix64 a(seed);
  SplitMix64 b(a.next() ^ static_cast<std::uint64_t>(epoch));
  SplitMix64 c(b.next() ^ static_cast<std::uint64_t>(index));
  return c.next();
}

std::vector<std::size_t> epoch_order(std::size_t n, std::uint64_t seed, std::int64_t epoch) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  SplitMix64 rng(batch_seed(seed, epoch, -1));
  for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  return order;
}

}  // namespace disranker
