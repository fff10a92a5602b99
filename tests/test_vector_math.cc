// The element-wise functions of the fast engine (infer/vector_math.h) against their formulas in double
// precision, over ranges wide enough to reach every branch of libmvec's vector code and the scalar tails.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "infer/vector_math.h"

namespace disranker {
namespace {

// The engine's own kernels follow the ISA that oneDNN runs at: the CPU's, unless ONEDNN_MAX_CPU_ISA caps it
// (this executable's tests run again with AVX2 as the cap, and so do the engine's: tests/CMakeLists.txt).
TEST(VectorMath, UsesTheCpusVectorsUpToOneDnnsCap) {
  const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA");
  const bool avx2_cap = cap != nullptr && std::string(cap) == "AVX2";
  EXPECT_EQ(vector_math_uses_avx512(), __builtin_cpu_supports("avx512f") && !avx2_cap);
  EXPECT_EQ(vector_math_uses_avx2(), __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
}

TEST(VectorMath, GeluMatchesItsFormulaInDoublePrecision) {
  std::vector<float> xs;
  for (int i = -2000; i <= 2000; ++i) xs.push_back(static_cast<float>(i) * 0.005f);  // [-10, 10], 4001 values
  std::vector<float> erf_gelu = xs, tanh_gelu = xs;
  gelu_erf(erf_gelu.data(), erf_gelu.size());
  gelu_tanh(tanh_gelu.data(), tanh_gelu.size());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double x = xs[i];
    const double exact = 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    const double approx = 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    EXPECT_NEAR(erf_gelu[i], exact, 2e-6 * std::max(1.0, std::abs(x))) << "x = " << x;
    EXPECT_NEAR(tanh_gelu[i], approx, 2e-6 * std::max(1.0, std::abs(x))) << "x = " << x;
  }
}

TEST(VectorMath, SoftmaxMatchesItsFormulaInDoublePrecision) {
  // 37 values: four 8-wide blocks and a scalar tail; a spread of 60 makes most terms underflow to 0 in
  // a naive exp without the max subtraction.
  for (const float spread : {1.0f, 60.0f}) {
    std::vector<float> x;
    for (int i = 0; i < 37; ++i) x.push_back(spread * std::sin(static_cast<float>(i) * 1.7f) + 80.0f);
    std::vector<double> exact(x.size());
    double top = -INFINITY, total = 0;
    for (const float v : x) top = std::max(top, static_cast<double>(v));
    for (std::size_t i = 0; i < x.size(); ++i) total += exact[i] = std::exp(x[i] - top);
    std::vector<float> y = x;
    softmax(y.data(), y.size(), 1.0f);
    for (std::size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], exact[i] / total, 1e-6) << i;
    // Scaled: softmax(s · x).
    y = x;
    softmax(y.data(), y.size(), 0.5f);
    double scaled_total = 0;
    for (std::size_t i = 0; i < x.size(); ++i) scaled_total += std::exp(0.5 * (x[i] - top));
    for (std::size_t i = 0; i < x.size(); ++i)
      EXPECT_NEAR(y[i], std::exp(0.5 * (x[i] - top)) / scaled_total, 1e-6) << i;
  }
}

}  // namespace
}  // namespace disranker
