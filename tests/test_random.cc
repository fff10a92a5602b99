// Deterministic sampling: the same (seed, epoch, index) always gives the same stream, different ones differ, and
// the helpers are unbiased enough to shuffle training data.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include "core/random.h"

namespace disranker {
namespace {

TEST(SplitMix64, MatchesTheReferenceSequence) {
  // First outputs of SplitMix64 seeded with 1234567, from the reference C implementation (Vigna,
  // prng.di.unimi.it/splitmix64.c), as used to seed xoshiro generators.
  SplitMix64 rng(1234567);
  EXPECT_EQ(rng.next(), 6457827717110365317ULL);
  EXPECT_EQ(rng.next(), 3203168211198807973ULL);
  EXPECT_EQ(rng.next(), 9817491932198370423ULL);
}

TEST(SplitMix64, BelowIsUniform) {
  SplitMix64 rng(7);
  std::vector<int> counts(6, 0);
  constexpr int kDraws = 60000;
  for (int i = 0; i < kDraws; ++i) ++counts[rng.below(6)];
  // Each count is Binomial(60000, 1/6): mean 10000, sd ≈ 91; 5 sd is a failure that would not happen by chance.
  for (int c : counts) EXPECT_NEAR(c, 10000, 5 * 91.3);
}

TEST(SplitMix64, UniformIsInTheUnitInterval) {
  SplitMix64 rng(99);
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 5 * std::sqrt(1.0 / 12 / 10000));
}

TEST(BatchSeed, DependsOnEveryArgumentAndNothingElse) {
  EXPECT_EQ(batch_seed(42, 1, 7), batch_seed(42, 1, 7));
  std::set<std::uint64_t> seen;
  for (std::uint64_t seed : {1ULL, 2ULL})
    for (std::int64_t epoch : {0, 1})
      for (std::int64_t index : {0, 1, 2}) seen.insert(batch_seed(seed, epoch, index));
  EXPECT_EQ(seen.size(), 12u);
}

TEST(EpochOrder, IsAPermutationFixedBySeedAndEpoch) {
  const auto a = epoch_order(100, 42, 0);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::size_t> identity(100);
  std::iota(identity.begin(), identity.end(), std::size_t{0});
  EXPECT_EQ(sorted, identity);
  EXPECT_EQ(a, epoch_order(100, 42, 0));
  EXPECT_NE(a, epoch_order(100, 42, 1));
  EXPECT_NE(a, epoch_order(100, 43, 0));
  EXPECT_NE(a, identity);
  EXPECT_TRUE(epoch_order(0, 1, 0).empty());
  EXPECT_EQ(epoch_order(1, 1, 0), std::vector<std::size_t>{0});
}

TEST(EpochOrder, EveryPositionIsEquallyLikely) {
  // Over many epochs, element 0 lands in each of 4 positions about a quarter of the time (Fisher-Yates is
  // unbiased; a naive "swap with any index" shuffle is not).
  std::vector<int> where(4, 0);
  for (int epoch = 0; epoch < 8000; ++epoch) {
    const auto order = epoch_order(4, 5, epoch);
    ++where[std::find(order.begin(), order.end(), 0) - order.begin()];
  }
  for (int c : where) EXPECT_NEAR(c, 2000, 5 * 38.7);
}

}  // namespace
}  // namespace disranker
