// An int8 dense layer in one pass on AVX-512 VNNI: the integer products and their dequantization
// (infer/int8_gemm.h's formula) in the same register block, so the int32 accumulators never reach memory.
//
// Why not oneDNN's gemm_u8s8s32 + a dequantizing pass: the GEMM runs near the machine's VNNI rate, but its
// int32 output is written and read back once more, and the pass over it cost ≈ 10% of MiniLM-L6's int8 time
// (bench/bench_infer); oneDNN 2.6's matmul cannot apply per-row activation scales and zero points itself.
//
// Layout: the weights are repacked at load into 16-column panels of 4-row groups, 64 bytes per (panel,
// group): byte (c, j) is W[4g + j][16p + c], exactly the operand of one vpdpbusd (16 columns × 4 products
// each), with the 4 activation bytes of a row broadcast as the other operand. A block of 6 rows × 64 columns
// keeps 24 accumulators in registers over the whole inner dimension.
#pragma once

#include <cstdint>
#include <vector>

#include "infer/int8_gemm.h"

namespace disranker {

struct VnniWeights {
  std::int64_t in = 0, out = 0;
  std::vector<std::int8_t> packed;  // [out / 16][in / 4][16][4]
};

// Whether the kernel runs an [in, out] layer here: AVX-512 VNNI (and oneDNN using 8-bit activations, see
// activation_levels()), `in` a multiple of 4 and `out` of 16.
bool vnni_kernel_supports(std::int64_t in, std::int64_t out);

VnniWeights pack_for_vnni(const Int8Weights& weights);

// For i < rows and j < count (first and count multiples of 16):
//   out[i][j] = row_scale[i] · w.scale[first + j] · (Σ_k a[i][k] W[k][first + j] − row_zero[i] ·
//               w.column_sum[first + j]) + bias[j],
// what gemm_int8 followed by dequantize_row gives (w's scale and column_sum are read, its values are not).
// Single-threaded: the caller splits the rows.
void gemm_int8_dequantize(const VnniWeights& packed, const Int8Weights& w, std::int64_t first,
                          std::int64_t count, std::int64_t rows, const std::uint8_t* a, std::int64_t lda,
                          const float* row_scale, const std::int32_t* row_zero, const float* bias, float* out,
                          std::int64_t out_ld);

}  // namespace disranker
