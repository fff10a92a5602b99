#include "infer/vnni_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "infer/simd_dispatch.h"
#include "infer/simd_math.h"

namespace disranker {
namespace {

#define DISRANKER_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

constexpr int kRows = 6;    // rows per register block
constexpr int kPanels = 4;  // 16-column panels per register block: 6 × 4 accumulators + 4 weights + 1

struct Epilogue {
  const float* row_scale;
  const std::int32_t* row_zero;
  const float* column_scale;       // at the block's first column
  const std::int32_t* column_sum;  // at the block's first column
  const float* bias;               // at the block's first column
};

// acc += Σ of 4 u8 × s8 products per int32 lane. Inline assembly instead of _mm512_dpbusd_epi32: with the
// intrinsic GCC 12 copied every accumulator to another register and back around each instruction (two
// extra moves per product vector; measured ≈ 10% of the kernel).
DISRANKER_VNNI inline void dpbusd(__m512i& acc, __m512i activations, __m512i weights) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(activations), "v"(weights));
}

// out[r][0 .. 16·P) for R rows over `groups` groups of 4 inputs; b: the first panel's packed bytes, panels
// `panel_bytes` apart.
template <int R, int P>
DISRANKER_VNNI void block(const std::uint8_t* a, std::int64_t lda, const std::int8_t* b,
                          std::int64_t panel_bytes, std::int64_t groups, const Epilogue& e, float* out,
                          std::int64_t out_ld) {
  __m512i acc[R * P];  // one flat array: GCC 12 kept a [R][P] one on the stack
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) acc[r * P + p] = _mm512_setzero_si512();
  for (std::int64_t g = 0; g < groups; ++g) {
    __m512i w[P];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) w[p] = _mm512_loadu_si512(b + p * panel_bytes + g * 64);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      std::int32_t four;  // the row's 4 activations of this group, as one lane
      std::memcpy(&four, a + r * lda + 4 * g, 4);
      const __m512i x = _mm512_set1_epi32(four);
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) dpbusd(acc[r * P + p], x, w[p]);
    }
  }
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p) {
    const __m512i sum = _mm512_loadu_si512(e.column_sum + 16 * p);
    const __m512 scale = _mm512_loadu_ps(e.column_scale + 16 * p);
    const __m512 bias = _mm512_loadu_ps(e.bias + 16 * p);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512i centred =
          _mm512_sub_epi32(acc[r * P + p], _mm512_mullo_epi32(_mm512_set1_epi32(e.row_zero[r]), sum));
      const __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(centred),
                                       _mm512_mul_ps(_mm512_set1_ps(e.row_scale[r]), scale), bias);
      _mm512_storeu_ps(out + r * out_ld + 16 * p, y);
    }
  }
}

}  // namespace

bool vnni_kernel_supports(std::int64_t in, std::int64_t out) {
  static const bool vnni = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
                           activation_levels() == 255;
  return vnni && in % 4 == 0 && out % 16 == 0;
}

VnniWeights pack_for_vnni(const Int8Weights& w) {
  if (w.in % 4 != 0 || w.out % 16 != 0)
    throw Error("vnni gemm: a [" + std::to_string(w.in) + ", " + std::to_string(w.out) +
                "] weight needs in % 4 == 0 and out % 16 == 0");
  VnniWeights packed;
  packed.in = w.in, packed.out = w.out;
  packed.packed = pack_column_panels(w, 16);
  return packed;
}

void gemm_int8_dequantize(const VnniWeights& packed, const Int8Weights& w, std::int64_t first,
                          std::int64_t count, std::int64_t rows, const std::uint8_t* a, std::int64_t lda,
                          const float* row_scale, const std::int32_t* row_zero, const float* bias, float* out,
                          std::int64_t out_ld) {
  const std::int64_t groups = packed.in / 4;
  const std::int64_t panel_bytes = groups * 64;
  // Column blocks outside, rows inside: a block's weights (in × 64 bytes: 24 KiB for in = 384) stay in L1
  // while every row passes.
  for (std::int64_t c0 = 0; c0 < count; c0 += 16 * kPanels) {
    const int panels = static_cast<int>(std::min<std::int64_t>(kPanels, (count - c0) / 16));
    const std::int8_t* b = packed.packed.data() + (first + c0) / 16 * panel_bytes;
    for (std::int64_t r0 = 0; r0 < rows; r0 += kRows) {
      const int block_rows = static_cast<int>(std::min<std::int64_t>(kRows, rows - r0));
      const Epilogue e{row_scale + r0, row_zero + r0, w.scale.data() + first + c0,
                       w.column_sum.data() + first + c0, bias + c0};
      float* o = out + r0 * out_ld + c0;
      dispatch_count<kRows>(block_rows, [&]<int R>() {
        dispatch_count<kPanels>(
            panels, [&]<int P>() { block<R, P>(a + r0 * lda, lda, b, panel_bytes, groups, e, o, out_ld); });
      });
    }
  }
}

}  // namespace disranker
