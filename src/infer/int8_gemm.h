// Dynamic int8 quantization for the dense layers of the fast engine (BertEngineOptions::precision = kInt8).
//
// Weights are quantized once at load, symmetric per output column (s8, scale = max|w| / 127): a column's
// scale follows its own range, which is what keeps ΔNDCG small. Activations are quantized on the fly, per
// row (one token), asymmetric u8 with the row's own scale and zero point. Then
//   y[o] = row_scale · w_scale[o] · (Σ_i q[i] w_q[i][o] − zero · Σ_i w_q[i][o]) + bias[o],
// the integer sum by oneDNN's u8×s8→s32 GEMM (AVX-512 VNNI, else AVX2, chosen by oneDNN at run time) and the
// zero-point term from the column sums stored with the weights.
//
// Without VNNI, oneDNN's kernels add pairs of u8×s8 products in int16 (vpmaddubsw), which saturates above
// 32,767: activations then use 7 bits (0..127, so 2 · 127 · 127 fits). activation_levels() says which.
#pragma once

#include <cstdint>
#include <vector>

namespace disranker {

// A weight matrix [in, out] (row-major) quantized per output column.
struct Int8Weights {
  std::int64_t in = 0, out = 0;
  std::vector<std::int8_t> values;       // [in, out]: w[i][o] ≈ values[i][o] · scale[o]
  std::vector<float> scale;              // [out]
  std::vector<std::int32_t> column_sum;  // [out]: Σ_i values[i][o]
};

// values in [-levels, levels]: 127, or kAvx2WeightLevels for the AVX2 kernel (infer/avx2_gemm.h).
Int8Weights quantize_weights(const float* weight, std::int64_t in, std::int64_t out, int levels = 127);

// w's values regrouped for the int8 kernels (infer/vnni_gemm.h: 16 columns, infer/avx2_gemm.h: 8): panels of
// `columns` output columns, each a run of groups of 4 inputs, byte (c, j) of group g in panel p being
// W[4g + j][columns · p + c]. w.in % 4 == 0 and w.out % columns == 0 must hold.
std::vector<std::int8_t> pack_column_panels(const Int8Weights& w, std::int64_t columns);

// The largest quantized activation: 255 with VNNI (int32 accumulation), 127 without (see above). Follows
// oneDNN's effective ISA, so ONEDNN_MAX_CPU_ISA=AVX2 selects the 7-bit path too.
int activation_levels();

// Quantizes one row: x[j] ≈ (q[j] − zero) · scale with q in [0, levels]; the range always includes 0, so
// zeros (and padding) stay exact.
void quantize_row(const float* x, std::int64_t n, int levels, std::uint8_t* q, float* scale,
                  std::int32_t* zero);

// C[m, n] = A[m, k] B[k, n] in int32 (row-major, leading dimensions given), by oneDNN; Error on failure.
void gemm_int8(std::int64_t m, std::int64_t n, std::int64_t k, const std::uint8_t* a, std::int64_t lda,
               const std::int8_t* b, std::int64_t ldb, std::int32_t* c, std::int64_t ldc);

// The same, returning oneDNN's status (0: success) instead of throwing: for calls inside a parallel loop,
// where an exception must not escape a thread. Inside a parallel region oneDNN runs single-threaded.
int try_gemm_int8(std::int64_t m, std::int64_t n, std::int64_t k, const std::uint8_t* a, std::int64_t lda,
                  const std::int8_t* b, std::int64_t ldb, std::int32_t* c, std::int64_t ldc);

// y[j] = row_scale · scale[j] · (acc[j] − row_zero · column_sum[j]) + bias[j], for j < n.
void dequantize_row(const std::int32_t* acc, std::int64_t n, float row_scale, std::int32_t row_zero,
                    const float* scale, const std::int32_t* column_sum, const float* bias, float* y);

}  // namespace disranker
