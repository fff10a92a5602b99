// An int8 dense layer on AVX2 CPUs without VNNI, the dequantization in its epilogue as infer/vnni_gemm.h
// does.
//
// Why: without VNNI, 32 u8 × s8 products take two multiplies, vpmaddubsw (pairs of products summed in int16)
// and vpmaddwd by ones (widened to int32), and both run on the same two multiply pipes, so oneDNN's u8s8s32
// peak is only 2× its sgemm one. Here activations are in [0, 127] (activation_levels() without VNNI) and the
// weights in [-63, 63] (kAvx2WeightLevels): two vpmaddubsw results then fit one int16 sum
// (2 · 2 · 127 · 63 = 32,004 ≤ 32,767), and one vpmaddwd widens 64 products. Three multiplies per 64 products
// instead of four: 229 against 174 GOP/s for oneDNN's scheme in the best register blocks of each (one core of
// an AMD EPYC with AVX2, [96 × 384] · [384 × 1,536], best of 10 passes; a throw-away microbenchmark). The
// weights lose a bit of precision: `disranker quantize` reports what it costs.
//
// Layout: the weights are repacked at load into 8-column panels of 4-row groups, 32 bytes per (panel, group):
// byte (c, j) is W[4g + j][8p + c], the signed operand of one vpmaddubsw against the 4 activation bytes of a
// row broadcast to every lane. A block of 3 rows × 16 columns keeps its 6 accumulators and the weights of two
// groups in the 16 registers.
#pragma once

#include <cstdint>
#include <vector>

#include "infer/int8_gemm.h"

namespace disranker {

// The largest |weight| the kernel takes (quantize_weights' `levels`).
inline constexpr int kAvx2WeightLevels = 63;

struct Avx2Weights {
  std::int64_t in = 0, out = 0;
  std::vector<std::int8_t> packed;  // [out / 8][in / 4][8][4]
};

// Whether the kernel runs an [in, out] layer here: AVX2, 7-bit activations (activation_levels() == 127, i.e.
// oneDNN without VNNI), `in` a multiple of 8 (groups go in pairs) and `out` of 8.
bool avx2_kernel_supports(std::int64_t in, std::int64_t out);

// Error unless in % 8 == 0, out % 8 == 0 and every value is in [-kAvx2WeightLevels, kAvx2WeightLevels].
Avx2Weights pack_for_avx2(const Int8Weights& weights);

// For i < rows and j < count (first and count multiples of 8), with a[i][k] ≤ 127:
//   out[i][j] = row_scale[i] · w.scale[first + j] · (Σ_k a[i][k] W[k][first + j] − row_zero[i] ·
//               w.column_sum[first + j]) + bias[j],
// what gemm_int8 followed by dequantize_row gives. Single-threaded: the caller splits the rows.
void gemm_int8_dequantize_avx2(const Avx2Weights& packed, const Int8Weights& w, std::int64_t first,
                               std::int64_t count, std::int64_t rows, const std::uint8_t* a, std::int64_t lda,
                               const float* row_scale, const std::int32_t* row_zero, const float* bias,
                               float* out, std::int64_t out_ld);

}  // namespace disranker
