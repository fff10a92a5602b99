#include "infer/int8_gemm.h"

#include <dnnl.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "infer/simd_math.h"
#include "infer/vector_math.h"

namespace disranker {

Int8Weights quantize_weights(const float* weight, std::int64_t in, std::int64_t out, int levels) {
  Int8Weights q;
  q.in = in, q.out = out;
  q.values.resize(static_cast<std::size_t>(in * out));
  q.scale.assign(static_cast<std::size_t>(out), 0.0f);
  q.column_sum.assign(static_cast<std::size_t>(out), 0);
  for (std::int64_t i = 0; i < in; ++i)
    for (std::int64_t o = 0; o < out; ++o) q.scale[o] = std::max(q.scale[o], std::fabs(weight[i * out + o]));
  for (float& s : q.scale) s = s > 0 ? s / static_cast<float>(levels) : 1.0f;
  for (std::int64_t i = 0; i < in; ++i) {
    for (std::int64_t o = 0; o < out; ++o) {
      const auto v = static_cast<std::int8_t>(std::lrint(weight[i * out + o] / q.scale[o]));
      q.values[static_cast<std::size_t>(i * out + o)] = v;
      q.column_sum[o] += v;
    }
  }
  return q;
}

std::vector<std::int8_t> pack_column_panels(const Int8Weights& w, std::int64_t columns) {
  std::vector<std::int8_t> packed(static_cast<std::size_t>(w.in * w.out));
  std::size_t at = 0;
  for (std::int64_t panel = 0; panel < w.out / columns; ++panel)
    for (std::int64_t g = 0; g < w.in / 4; ++g)
      for (std::int64_t c = 0; c < columns; ++c)
        for (std::int64_t j = 0; j < 4; ++j)
          packed[at++] = w.values[static_cast<std::size_t>((4 * g + j) * w.out + columns * panel + c)];
  return packed;
}

int activation_levels() {
  // VNNI is the 0x40 bit of the AVX-512 ISA values (avx512_core_vnni and above) and 0x400 of avx2_vnni.
  const auto isa = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
  return (isa & 0x40u) != 0 || (isa & 0x400u) != 0 ? 255 : 127;
}

namespace {

// The element-wise loops below are written once, inlined into a generic copy and into an AVX2 + FMA copy that
// the compiler vectorizes 8 floats wide (the library is built for baseline x86-64, whose SSE2 is half that);
// the copy runs when the CPU has AVX2, chosen at run time as vector_math does.
#define DISRANKER_INLINE inline __attribute__((always_inline))

// The range [low, high] of a row, widened to include 0. Eight running minima and maxima: a plain min/max
// reduction over floats is not vectorized without -ffast-math (NaN semantics), and was a third of this pass.
DISRANKER_INLINE void row_range(const float* x, std::int64_t n, float* low, float* high) {
  float lows[8] = {}, highs[8] = {};
  std::int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int k = 0; k < 8; ++k) {
      lows[k] = x[j + k] < lows[k] ? x[j + k] : lows[k];
      highs[k] = x[j + k] > highs[k] ? x[j + k] : highs[k];
    }
  }
  float lo = 0, hi = 0;
  for (int k = 0; k < 8; ++k) lo = std::min(lo, lows[k]), hi = std::max(hi, highs[k]);
  for (; j < n; ++j) lo = std::min(lo, x[j]), hi = std::max(hi, x[j]);
  *low = lo, *high = hi;
}

DISRANKER_INLINE void quantize_row_body(const float* x, std::int64_t n, int levels, std::uint8_t* q,
                                        float* scale, std::int32_t* zero) {
  float low = 0, high = 0;
  row_range(x, n, &low, &high);
  const auto top = static_cast<float>(levels);
  const float s = high > low ? (high - low) / top : 1.0f;
  const float z = std::clamp(std::nearbyint(-low / s), 0.0f, top);
  const float inv = 1.0f / s;
#pragma omp simd
  for (std::int64_t j = 0; j < n; ++j) {
    float v = x[j] * inv + z;
    v = v < 0.0f ? 0.0f : v;
    v = v > top ? top : v;
    q[j] = static_cast<std::uint8_t>(static_cast<std::int32_t>(v + 0.5f));
  }
  *scale = s;
  *zero = static_cast<std::int32_t>(z);
}

DISRANKER_INLINE void dequantize_row_body(const std::int32_t* acc, std::int64_t n, float row_scale,
                                          std::int32_t row_zero, const float* scale,
                                          const std::int32_t* column_sum, const float* bias, float* y) {
#pragma omp simd
  for (std::int64_t j = 0; j < n; ++j)
    y[j] = row_scale * scale[j] * static_cast<float>(acc[j] - row_zero * column_sum[j]) + bias[j];
}

__attribute__((target("avx2,fma"))) void quantize_row_avx2(const float* x, std::int64_t n, int levels,
                                                           std::uint8_t* q, float* scale,
                                                           std::int32_t* zero) {
  quantize_row_body(x, n, levels, q, scale, zero);
}
void quantize_row_generic(const float* x, std::int64_t n, int levels, std::uint8_t* q, float* scale,
                          std::int32_t* zero) {
  quantize_row_body(x, n, levels, q, scale, zero);
}
__attribute__((target("avx2,fma"))) void dequantize_row_avx2(const std::int32_t* acc, std::int64_t n,
                                                             float row_scale, std::int32_t row_zero,
                                                             const float* scale,
                                                             const std::int32_t* column_sum,
                                                             const float* bias, float* y) {
  dequantize_row_body(acc, n, row_scale, row_zero, scale, column_sum, bias, y);
}
void dequantize_row_generic(const std::int32_t* acc, std::int64_t n, float row_scale, std::int32_t row_zero,
                            const float* scale, const std::int32_t* column_sum, const float* bias, float* y) {
  dequantize_row_body(acc, n, row_scale, row_zero, scale, column_sum, bias, y);
}

// AVX-512, for n a multiple of 32: the range in two independent min/max chains (one chain waits on the
// latency of every vminps: for rows of a few hundred values that, not the arithmetic, was the cost), then
// 16 values per step narrowed to bytes by vpmovusdb.
__attribute__((target("avx512f"))) void quantize_row_avx512(const float* x, std::int64_t n, int levels,
                                                            std::uint8_t* q, float* scale,
                                                            std::int32_t* zero) {
  __m512 low0 = _mm512_setzero_ps(), low1 = low0, high0 = low0, high1 = low0;
  for (std::int64_t j = 0; j < n; j += 32) {
    const __m512 a = _mm512_loadu_ps(x + j), b = _mm512_loadu_ps(x + j + 16);
    low0 = _mm512_min_ps(low0, a), high0 = _mm512_max_ps(high0, a);
    low1 = _mm512_min_ps(low1, b), high1 = _mm512_max_ps(high1, b);
  }
  // The chains start at 0: the range always includes it.
  const float low = _mm512_reduce_min_ps(_mm512_min_ps(low0, low1));
  const float high = _mm512_reduce_max_ps(_mm512_max_ps(high0, high1));
  const auto top = static_cast<float>(levels);
  const float s = high > low ? (high - low) / top : 1.0f;
  const float z = std::clamp(std::nearbyint(-low / s), 0.0f, top);
  const __m512 inv = _mm512_set1_ps(1.0f / s), zv = _mm512_set1_ps(z + 0.5f);
  const __m512 low_half = _mm512_set1_ps(0.5f), high_half = _mm512_set1_ps(top + 0.5f);
  for (std::int64_t j = 0; j < n; j += 16) {
    // clamp(x / s + z) + ½, truncated: the generic code's rounding.
    __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(x + j), inv, zv);
    v = _mm512_min_ps(_mm512_max_ps(v, low_half), high_half);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + j), _mm512_cvtusepi32_epi8(_mm512_cvttps_epi32(v)));
  }
  *scale = s;
  *zero = static_cast<std::int32_t>(z);
}

}  // namespace

void quantize_row(const float* x, std::int64_t n, int levels, std::uint8_t* q, float* scale,
                  std::int32_t* zero) {
  if (vector_math_uses_avx512() && n % 32 == 0) return quantize_row_avx512(x, n, levels, q, scale, zero);
  if (vector_math_uses_avx2()) return quantize_row_avx2(x, n, levels, q, scale, zero);
  quantize_row_generic(x, n, levels, q, scale, zero);
}

int try_gemm_int8(std::int64_t m, std::int64_t n, std::int64_t k, const std::uint8_t* a, std::int64_t lda,
                  const std::int8_t* b, std::int64_t ldb, std::int32_t* c, std::int64_t ldc) {
  if (m == 0) return dnnl_success;
  const std::int32_t no_offset = 0;
  return dnnl_gemm_u8s8s32('N', 'N', 'F', m, n, k, 1.0f, a, lda, 0, b, ldb, 0, 0.0f, c, ldc, &no_offset);
}

void gemm_int8(std::int64_t m, std::int64_t n, std::int64_t k, const std::uint8_t* a, std::int64_t lda,
               const std::int8_t* b, std::int64_t ldb, std::int32_t* c, std::int64_t ldc) {
  if (const int status = try_gemm_int8(m, n, k, a, lda, b, ldb, c, ldc); status != dnnl_success)
    throw Error("int8 gemm: oneDNN gemm_u8s8s32 failed with status " + std::to_string(status));
}

void dequantize_row(const std::int32_t* acc, std::int64_t n, float row_scale, std::int32_t row_zero,
                    const float* scale, const std::int32_t* column_sum, const float* bias, float* y) {
  if (vector_math_uses_avx2())
    return dequantize_row_avx2(acc, n, row_scale, row_zero, scale, column_sum, bias, y);
  dequantize_row_generic(acc, n, row_scale, row_zero, scale, column_sum, bias, y);
}

}  // namespace disranker
