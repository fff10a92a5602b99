#include "infer/avx2_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "infer/simd_dispatch.h"
#include "infer/vector_math.h"

namespace disranker {
namespace {

#define DISRANKER_AVX2 __attribute__((target("avx2,fma")))

constexpr int kRows = 3;    // rows per register block
constexpr int kPanels = 2;  // 8-column panels per register block: 6 accumulators + 4 weights + 2 + ones

// out[r][0 .. 8·P) for R rows over `groups` groups of 4 inputs (an even number); b: the first panel's bytes,
// panels `panel_bytes` apart.
template <int R, int P>
DISRANKER_AVX2 void block(const std::uint8_t* a, std::int64_t lda, const std::int8_t* b,
                          std::int64_t panel_bytes, std::int64_t groups, const float* row_scale,
                          const std::int32_t* row_zero, const float* column_scale,
                          const std::int32_t* column_sum, const float* bias, float* out,
                          std::int64_t out_ld) {
  __m256i acc[R * P];  // flat, as in vnni_gemm.cc: GCC 12 keeps it in registers
#pragma GCC unroll 8
  for (int i = 0; i < R * P; ++i) acc[i] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (std::int64_t g = 0; g < groups; g += 2) {
    __m256i w0[P], w1[P];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) {
      w0[p] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + p * panel_bytes + g * 32));
      w1[p] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + p * panel_bytes + g * 32 + 32));
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      std::int32_t first, second;  // the row's 4 activations of each group, as one lane
      std::memcpy(&first, a + r * lda + 4 * g, 4);
      std::memcpy(&second, a + r * lda + 4 * g + 4, 4);
      const __m256i x0 = _mm256_set1_epi32(first), x1 = _mm256_set1_epi32(second);
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) {
        // Two groups' pair sums in int16 (at most 2 · 2 · 127 · 63), then widened and added in int32.
        const __m256i pairs =
            _mm256_add_epi16(_mm256_maddubs_epi16(x0, w0[p]), _mm256_maddubs_epi16(x1, w1[p]));
        acc[r * P + p] = _mm256_add_epi32(acc[r * P + p], _mm256_madd_epi16(pairs, ones));
      }
    }
  }
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p) {
    const __m256i sum = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(column_sum + 8 * p));
    const __m256 scale = _mm256_loadu_ps(column_scale + 8 * p);
    const __m256 b8 = _mm256_loadu_ps(bias + 8 * p);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256i centred =
          _mm256_sub_epi32(acc[r * P + p], _mm256_mullo_epi32(_mm256_set1_epi32(row_zero[r]), sum));
      const __m256 y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(centred),
                                       _mm256_mul_ps(_mm256_set1_ps(row_scale[r]), scale), b8);
      _mm256_storeu_ps(out + r * out_ld + 8 * p, y);
    }
  }
}

}  // namespace

bool avx2_kernel_supports(std::int64_t in, std::int64_t out) {
  static const bool avx2 = vector_math_uses_avx2() && activation_levels() == 127;
  return avx2 && in % 8 == 0 && out % 8 == 0;
}

Avx2Weights pack_for_avx2(const Int8Weights& w) {
  if (w.in % 8 != 0 || w.out % 8 != 0)
    throw Error("avx2 gemm: a [" + std::to_string(w.in) + ", " + std::to_string(w.out) +
                "] weight needs in % 8 == 0 and out % 8 == 0");
  for (const std::int8_t v : w.values) {
    if (std::abs(v) > kAvx2WeightLevels)
      throw Error("avx2 gemm: a weight of " + std::to_string(v) + " is outside [-" +
                  std::to_string(kAvx2WeightLevels) + ", " + std::to_string(kAvx2WeightLevels) +
                  "] (quantize with levels = kAvx2WeightLevels)");
  }
  Avx2Weights packed;
  packed.in = w.in, packed.out = w.out;
  packed.packed = pack_column_panels(w, 8);
  return packed;
}

void gemm_int8_dequantize_avx2(const Avx2Weights& packed, const Int8Weights& w, std::int64_t first,
                               std::int64_t count, std::int64_t rows, const std::uint8_t* a, std::int64_t lda,
                               const float* row_scale, const std::int32_t* row_zero, const float* bias,
                               float* out, std::int64_t out_ld) {
  const std::int64_t groups = packed.in / 4;
  const std::int64_t panel_bytes = groups * 32;
  // Column blocks outside, rows inside: a block's weights (in × 16 bytes) stay in L1 while every row passes.
  for (std::int64_t c0 = 0; c0 < count; c0 += 8 * kPanels) {
    const int panels = static_cast<int>(std::min<std::int64_t>(kPanels, (count - c0) / 8));
    const std::int8_t* b = packed.packed.data() + (first + c0) / 8 * panel_bytes;
    for (std::int64_t r0 = 0; r0 < rows; r0 += kRows) {
      const int block_rows = static_cast<int>(std::min<std::int64_t>(kRows, rows - r0));
      dispatch_count<kRows>(block_rows, [&]<int R>() {
        dispatch_count<kPanels>(panels, [&]<int P>() {
          block<R, P>(a + r0 * lda, lda, b, panel_bytes, groups, row_scale + r0, row_zero + r0,
                      w.scale.data() + first + c0, w.column_sum.data() + first + c0, bias + c0,
                      out + r0 * out_ld + c0, out_ld);
        });
      });
    }
  }
}

}  // namespace disranker
