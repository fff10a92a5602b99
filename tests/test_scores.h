// Comparing two lists of model scores element by element, naming the pair that differs.
#pragma once

#include <gtest/gtest.h>

#include <vector>

namespace disranker::testing {

inline void expect_near_all(const std::vector<double>& actual, const std::vector<double>& expected,
                            double tolerance) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i)
    EXPECT_NEAR(actual[i], expected[i], tolerance) << "pair " << i;
}

}  // namespace disranker::testing
