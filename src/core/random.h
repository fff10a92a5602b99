// Deterministic randomness for training data: every shuffle and sample is a function of (seed, epoch, index),
// never of a generator that has run before, so that a resumed run sees exactly the batches an uninterrupted run
// would have seen.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace disranker {

// SplitMix64 (Steele, Lea, Flood 2014): a tiny, well-mixed 64-bit generator.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  // Uniform in [0, n) (n >= 1), by rejection so that it has no modulo bias.
  std::uint64_t below(std::uint64_t n);
  // Uniform in [0, 1).
  double uniform();

 private:
  std::uint64_t state_;
};

// The seed of micro-batch (epoch, index) of a run: the three mixed through SplitMix64.
std::uint64_t batch_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t index);

// A permutation of 0..n-1 that depends only on (seed, epoch) (Fisher-Yates driven by SplitMix64).
std::vector<std::size_t> epoch_order(std::size_t n, std::uint64_t seed, std::int64_t epoch);

}  // namespace disranker
