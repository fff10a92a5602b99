// The randomization test against hand-enumerated permutations and its sampling behaviour.
#include <gtest/gtest.h>

#include "eval/significance.h"

namespace disranker {
namespace {

// Builds an evaluation of one metric with the given per-query values (qids q0, q1, ...).
Evaluation with_values(const std::vector<double>& values) {
  Evaluation e;
  e.metrics = {parse_metric("map")};
  for (std::size_t i = 0; i < values.size(); ++i) {
    QueryEvaluation q;
    q.qid = "q" + std::to_string(i);
    q.values = {values[i]};
    e.queries.push_back(q);
  }
  return e;
}

TEST(RandomizationTest, ExactPValueMatchesHandEnumeration) {
  // Differences B-A per query: +1, +1, +1. Of the 8 sign patterns only +++ and --- reach |mean| = 1: p = 2/8.
  const auto c = randomization_test(with_values({0, 0, 0}), with_values({1, 1, 1}), 0, {});
  EXPECT_TRUE(c.exact);
  EXPECT_DOUBLE_EQ(c.p_value, 0.25);
  EXPECT_DOUBLE_EQ(c.b - c.a, 1.0);
}

TEST(RandomizationTest, UnevenDifferencesCountOnlyPermutationsAtLeastAsExtreme) {
  // Differences +3, +1: sign patterns give |mean| 2, 1, 1, 2; the observed 2 is reached by 2 of 4: p = 0.5.
  const auto c = randomization_test(with_values({0, 0}), with_values({3, 1}), 0, {});
  EXPECT_DOUBLE_EQ(c.p_value, 0.5);
}

TEST(RandomizationTest, IdenticalSystemsGivePValueOne) {
  const auto c = randomization_test(with_values({0.1, 0.5, 0.9}), with_values({0.1, 0.5, 0.9}), 0, {});
  EXPECT_DOUBLE_EQ(c.p_value, 1.0);
}

TEST(RandomizationTest, LargeConsistentDifferenceIsSignificantBySampling) {
  std::vector<double> a(40, 0.2), b(40, 0.3);
  const auto c = randomization_test(with_values(a), with_values(b), 0, {});
  EXPECT_FALSE(c.exact);
  // Only the all-same-sign patterns reach the observed mean; none is likely in 10000 draws: p = 1/10001.
  EXPECT_LT(c.p_value, 0.001);
  EXPECT_GT(c.p_value, 0.0);
}

TEST(RandomizationTest, SameSeedGivesSamePValue) {
  std::vector<double> a, b;
  for (int i = 0; i < 30; ++i) a.push_back(i % 3 * 0.1), b.push_back(i % 5 * 0.1);
  const auto c1 = randomization_test(with_values(a), with_values(b), 0, {});
  const auto c2 = randomization_test(with_values(a), with_values(b), 0, {});
  EXPECT_DOUBLE_EQ(c1.p_value, c2.p_value);
  EXPECT_GT(c1.p_value, 0.0);
  EXPECT_LE(c1.p_value, 1.0);
}

TEST(RandomizationTest, PairsQueriesByQid) {
  auto a = with_values({0, 0, 0});
  auto b = with_values({1, 1});  // q0, q1 only: q2 takes no part
  const auto c = randomization_test(a, b, 0, {});
  EXPECT_EQ(c.queries, 2u);
  EXPECT_DOUBLE_EQ(c.p_value, 0.5);  // +1, +1: patterns ++ and -- of 4
}

}  // namespace
}  // namespace disranker
