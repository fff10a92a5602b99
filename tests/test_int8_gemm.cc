// Dynamic int8 quantization (infer/int8_gemm.h) against double-precision references: the quantized values
// reconstruct their inputs within half a step, the integer GEMM is exact, and a whole quantized dense layer
// stays within the error bound derived from the two step sizes. ctest runs this file twice: as is, and with
// ONEDNN_MAX_CPU_ISA=AVX2 (suffix _avx2), where oneDNN's kernels saturate in int16 and the 7-bit activation
// path must take over.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "infer/int8_gemm.h"

namespace disranker {
namespace {

std::vector<float> random_values(std::size_t n, float spread, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, spread);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

TEST(Int8Gemm, UsesSevenBitActivationsExactlyWhenTheCpuHasNoVnni) {
  const char* isa = std::getenv("ONEDNN_MAX_CPU_ISA");
  const bool forced_avx2 = isa != nullptr && std::string(isa) == "AVX2";
  const bool vnni = __builtin_cpu_supports("avx512vnni") || __builtin_cpu_supports("avxvnni");
  EXPECT_EQ(activation_levels(), vnni && !forced_avx2 ? 255 : 127);
}

TEST(Int8Gemm, QuantizedRowsReconstructWithinHalfAStep) {
  for (const int levels : {255, 127}) {
    std::vector<float> x = random_values(300, 2.0f, 1);
    x[5] = 0.0f;
    std::vector<std::uint8_t> q(x.size());
    float scale = 0;
    std::int32_t zero = 0;
    quantize_row(x.data(), static_cast<std::int64_t>(x.size()), levels, q.data(), &scale, &zero);
    const auto [low, high] = std::minmax_element(x.begin(), x.end());
    EXPECT_NEAR(scale, (*high - *low) / static_cast<float>(levels), 1e-6f);
    for (std::size_t j = 0; j < x.size(); ++j) {
      ASSERT_LE(q[j], levels);
      EXPECT_LE(std::fabs((static_cast<float>(q[j]) - static_cast<float>(zero)) * scale - x[j]),
                0.5f * scale * 1.001f)
          << "element " << j;
    }
    EXPECT_EQ(q[5], zero);  // 0 is exact
  }
}

TEST(Int8Gemm, QuantizesAllZeroAndOneSignedRows) {
  std::vector<std::uint8_t> q(4);
  float scale = 0;
  std::int32_t zero = -1;
  const std::vector<float> zeros(4, 0.0f);
  quantize_row(zeros.data(), 4, 255, q.data(), &scale, &zero);
  EXPECT_EQ(zero, 0);
  EXPECT_EQ(q, std::vector<std::uint8_t>(4, 0));
  // Positive only: the range is [0, max], zero point 0, the maximum maps to the top level.
  const std::vector<float> positive = {0.5f, 1.0f, 2.0f, 4.0f};
  quantize_row(positive.data(), 4, 255, q.data(), &scale, &zero);
  EXPECT_EQ(zero, 0);
  EXPECT_FLOAT_EQ(scale, 4.0f / 255.0f);
  EXPECT_EQ(q[3], 255);
  EXPECT_EQ(q[0], 32);  // 0.5 / (4 / 255) = 31.875
  // Negative only: the zero point is the top level.
  const std::vector<float> negative = {-1.0f, -2.0f, -0.25f, -3.0f};
  quantize_row(negative.data(), 4, 127, q.data(), &scale, &zero);
  EXPECT_EQ(zero, 127);
  EXPECT_EQ(q[3], 0);
}

TEST(Int8Gemm, QuantizesWeightsPerOutputColumn) {
  const std::int64_t in = 3, out = 2;
  // Column 0 spans ±2.54, column 1 only ±0.127: each gets its own step.
  const std::vector<float> w = {2.54f, 0.127f, -1.27f, -0.0635f, 0.062f, 0.0f};
  const Int8Weights q = quantize_weights(w.data(), in, out);
  EXPECT_FLOAT_EQ(q.scale[0], 0.02f);
  EXPECT_FLOAT_EQ(q.scale[1], 0.001f);
  EXPECT_EQ(q.values, (std::vector<std::int8_t>{127, 127, -64, -64, 3, 0}));  // -63.5 rounds to even
  EXPECT_EQ(q.column_sum, (std::vector<std::int32_t>{66, 63}));
}

TEST(Int8Gemm, MultipliesExactlyUpToTheActivationLevels) {
  // Extreme values included: with VNNI the products accumulate in int32; without it the 7-bit levels keep
  // oneDNN's int16 pair sums from saturating.
  const int top = activation_levels();
  const std::int64_t m = 37, n = 70, k = 300;
  std::mt19937 rng(3);
  std::vector<std::uint8_t> a(static_cast<std::size_t>(m * k));
  std::vector<std::int8_t> b(static_cast<std::size_t>(k * n));
  for (auto& v : a) v = static_cast<std::uint8_t>(rng() % (top + 1));
  for (auto& v : b) v = static_cast<std::int8_t>(static_cast<int>(rng() % 255) - 127);
  for (std::int64_t j = 0; j < k; ++j) a[j] = static_cast<std::uint8_t>(top), b[j * n] = 127;
  std::vector<std::int32_t> c(static_cast<std::size_t>(m * n));
  gemm_int8(m, n, k, a.data(), k, b.data(), n, c.data(), n);
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      std::int64_t expected = 0;
      for (std::int64_t e = 0; e < k; ++e) expected += std::int64_t{a[i * k + e]} * b[e * n + j];
      ASSERT_EQ(c[i * n + j], expected) << "row " << i << " column " << j;
    }
  }
}

TEST(Int8Gemm, AQuantizedDenseLayerStaysWithinItsErrorBound) {
  const std::int64_t m = 9, in = 64, out = 40;
  const std::vector<float> x = random_values(static_cast<std::size_t>(m * in), 1.5f, 11);
  const std::vector<float> w = random_values(static_cast<std::size_t>(in * out), 0.1f, 12);
  const std::vector<float> bias = random_values(static_cast<std::size_t>(out), 1.0f, 13);
  const Int8Weights qw = quantize_weights(w.data(), in, out);
  const int levels = activation_levels();
  std::vector<std::uint8_t> qx(x.size());
  std::vector<float> row_scale(m);
  std::vector<std::int32_t> row_zero(m);
  for (std::int64_t i = 0; i < m; ++i)
    quantize_row(x.data() + i * in, in, levels, qx.data() + i * in, &row_scale[i], &row_zero[i]);
  std::vector<std::int32_t> acc(static_cast<std::size_t>(m * out));
  gemm_int8(m, out, in, qx.data(), in, qw.values.data(), out, acc.data(), out);
  std::vector<float> y(static_cast<std::size_t>(out));
  double largest_error = 0;
  for (std::int64_t i = 0; i < m; ++i) {
    dequantize_row(acc.data() + i * out, out, row_scale[i], row_zero[i], qw.scale.data(),
                   qw.column_sum.data(), bias.data(), y.data());
    for (std::int64_t o = 0; o < out; ++o) {
      // |x̂ŵ − xw| ≤ Σ |x| δw + |w| δx + δx δw with δ half a step of each side.
      double exact = bias[o], bound = 1e-5;
      const double dx = row_scale[i] / 2.0, dw = qw.scale[o] / 2.0;
      for (std::int64_t e = 0; e < in; ++e) {
        const double xv = x[i * in + e], wv = w[e * out + o];
        exact += xv * wv;
        bound += std::fabs(xv) * dw + std::fabs(wv) * dx + dx * dw;
      }
      EXPECT_LE(std::fabs(y[o] - exact), bound) << "row " << i << " column " << o;
      largest_error = std::max(largest_error, std::fabs(y[o] - exact));
    }
  }
  // Quantization did happen (the layer is not secretly float32), and it is small.
  EXPECT_GT(largest_error, 1e-4);
  EXPECT_LT(largest_error, 0.2);
}

}  // namespace
}  // namespace disranker
