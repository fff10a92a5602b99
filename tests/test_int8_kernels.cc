// The int8 kernels with their dequantizing epilogues (infer/vnni_gemm.h, infer/avx2_gemm.h) against what they
// replace, oneDNN's u8s8s32 GEMM followed by dequantize_row: the integer sums must be equal, so the outputs
// may differ only by float rounding of the epilogue. Shapes cover every register-block tail (rows not a
// multiple of 6 or 3, columns not of 64 or 16), a column window starting inside the weight (the last layer's
// key/value columns), extreme activations and weights (255 against 127, or 127 against 63: the largest sums)
// and leading dimensions wider than the rows.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "infer/avx2_gemm.h"
#include "infer/int8_gemm.h"
#include "infer/vnni_gemm.h"

namespace disranker {
namespace {

// Runs `kernel(w, first, count, rows, a, lda, row_scale, row_zero, bias, out, out_ld)` on the shapes whose
// columns are multiples of `columns`, with weights quantized to [-weight_levels, weight_levels] and
// activations up to `top`, against oneDNN.
template <class Kernel>
void expect_equal_to_onednn(std::int64_t columns, int weight_levels, int top, Kernel kernel) {
  std::mt19937 random(5);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  struct Shape {
    std::int64_t rows, in, out, first, count;
  };
  for (const Shape& s :
       {Shape{1, 8, 16, 0, 16}, Shape{13, 64, 80, 0, 80}, Shape{6, 384, 1152, 384, 768},
        Shape{29, 256, 1024, 0, 1024}, Shape{7, 1536, 384, 128, 48}, Shape{5, 16, 24, 8, 16}}) {
    if (s.out % columns != 0 || s.first % columns != 0 || s.count % columns != 0) continue;
    SCOPED_TRACE(std::to_string(s.rows) + " rows, [" + std::to_string(s.in) + ", " + std::to_string(s.out) +
                 "], columns " + std::to_string(s.first) + " + " + std::to_string(s.count));
    std::vector<float> weight(static_cast<std::size_t>(s.in * s.out));
    for (float& w : weight) w = normal(random);
    // Column 0 at the extremes: every weight at +levels, so a row at the top level gives the largest sums.
    for (std::int64_t k = 0; k < s.in; ++k) weight[static_cast<std::size_t>(k * s.out + s.first)] = 1.0f;
    const Int8Weights w = quantize_weights(weight.data(), s.in, s.out, weight_levels);
    const std::int64_t lda = s.in + 12, out_ld = s.count + 20;
    std::vector<std::uint8_t> a(static_cast<std::size_t>(s.rows * lda));
    for (auto& v : a) v = static_cast<std::uint8_t>(random() % (top + 1));
    for (std::int64_t k = 0; k < s.in; ++k) a[static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(top);
    std::vector<float> row_scale(static_cast<std::size_t>(s.rows)), bias(static_cast<std::size_t>(s.count));
    std::vector<std::int32_t> row_zero(static_cast<std::size_t>(s.rows));
    for (std::int64_t i = 0; i < s.rows; ++i)
      row_scale[i] = 0.01f + 0.001f * static_cast<float>(i),
      row_zero[i] = static_cast<std::int32_t>(random() % (top + 1));
    for (float& b : bias) b = normal(random);

    std::vector<float> got(static_cast<std::size_t>(s.rows * out_ld), 777.0f);
    kernel(w, s.first, s.count, s.rows, a.data(), lda, row_scale.data(), row_zero.data(), bias.data(),
           got.data(), out_ld);

    std::vector<std::int32_t> acc(static_cast<std::size_t>(s.rows * s.count));
    gemm_int8(s.rows, s.count, s.in, a.data(), lda, w.values.data() + s.first, s.out, acc.data(), s.count);
    ASSERT_EQ(acc[0], top * weight_levels * s.in);  // the extreme column, as integers
    std::vector<float> expected(static_cast<std::size_t>(s.count));
    for (std::int64_t i = 0; i < s.rows; ++i) {
      dequantize_row(acc.data() + i * s.count, s.count, row_scale[i], row_zero[i], w.scale.data() + s.first,
                     w.column_sum.data() + s.first, bias.data(), expected.data());
      for (std::int64_t j = 0; j < out_ld; ++j) {
        const float y = got[static_cast<std::size_t>(i * out_ld + j)];
        if (j >= s.count) {
          ASSERT_EQ(y, 777.0f) << "wrote past the window: row " << i << ", column " << j;
          continue;
        }
        ASSERT_NEAR(y, expected[j], 1e-5 * std::max(1.0f, std::fabs(expected[j])))
            << "row " << i << ", column " << j;
      }
    }
  }
}

TEST(VnniGemm, EqualsOneDnnGemmFollowedByDequantization) {
  if (!vnni_kernel_supports(64, 64)) GTEST_SKIP() << "no AVX-512 VNNI here (or oneDNN limited to AVX2)";
  expect_equal_to_onednn(16, 127, 255, [](const Int8Weights& w, auto... args) {
    gemm_int8_dequantize(pack_for_vnni(w), w, args...);
  });
}

// Activations up to 127 against weights of ±63: the int16 sums of two groups reach 2 · 2 · 127 · 63 and must
// not saturate.
TEST(Avx2Gemm, EqualsOneDnnGemmFollowedByDequantization) {
  if (!avx2_kernel_supports(64, 64)) GTEST_SKIP() << "no AVX2 here, or oneDNN uses VNNI (8-bit activations)";
  expect_equal_to_onednn(8, kAvx2WeightLevels, 127, [](const Int8Weights& w, auto... args) {
    gemm_int8_dequantize_avx2(pack_for_avx2(w), w, args...);
  });
}

TEST(Avx2Gemm, PacksFourInputsOfEightColumnsPerVectorAndRefusesWeightsBeyondItsRange) {
  std::vector<float> weight(8 * 16);
  for (int k = 0; k < 8; ++k)
    for (int o = 0; o < 16; ++o) weight[k * 16 + o] = static_cast<float>((k * 10 + o) % 100 - 50);
  const Int8Weights w = quantize_weights(weight.data(), 8, 16, kAvx2WeightLevels);
  const Avx2Weights packed = pack_for_avx2(w);
  ASSERT_EQ(packed.packed.size(), 8u * 16u);
  const auto value = [&](int k, int o) { return w.values[static_cast<std::size_t>(k * 16 + o)]; };
  // ((panel · groups + group) · 8 + column) · 4 + j with groups = 2.
  for (int j = 0; j < 4; ++j) {
    EXPECT_EQ(packed.packed[static_cast<std::size_t>(((1 * 2 + 1) * 8 + 0) * 4 + j)], value(4 + j, 8));
    EXPECT_EQ(packed.packed[static_cast<std::size_t>(((0 * 2 + 0) * 8 + 5) * 4 + j)], value(j, 5));
  }
  EXPECT_THROW(pack_for_avx2(quantize_weights(weight.data(), 8, 16)), std::exception);      // ±127
  EXPECT_THROW(pack_for_avx2(quantize_weights(weight.data(), 4, 32, 63)), std::exception);  // in = 4
}

TEST(VnniGemm, PacksFourInputsOfSixteenColumnsPerVector) {
  // W[k][o] = 10·k + o for [8, 32]: panel 1, group 1 starts with column 16's inputs 4..7.
  std::vector<float> weight(8 * 32);
  for (int k = 0; k < 8; ++k)
    for (int o = 0; o < 32; ++o) weight[k * 32 + o] = static_cast<float>((k * 10 + o) % 100 - 50);
  const Int8Weights w = quantize_weights(weight.data(), 8, 32);
  const VnniWeights packed = pack_for_vnni(w);
  ASSERT_EQ(packed.packed.size(), 8u * 32u);
  const auto value = [&](int k, int o) { return w.values[static_cast<std::size_t>(k * 32 + o)]; };
  // ((panel · groups + group) · 16 + column) · 4 + j with groups = 2.
  for (int j = 0; j < 4; ++j) {
    EXPECT_EQ(packed.packed[static_cast<std::size_t>(((1 * 2 + 1) * 16 + 0) * 4 + j)], value(4 + j, 16));
    EXPECT_EQ(packed.packed[static_cast<std::size_t>(((0 * 2 + 0) * 16 + 5) * 4 + j)], value(j, 5));
  }
  EXPECT_THROW(pack_for_vnni(quantize_weights(weight.data(), 8, 30)), std::exception);  // 30 columns
}

}  // namespace
}  // namespace disranker
