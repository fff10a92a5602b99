#include "infer/int8_gemm.h"

#include <dnnl.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"

namespace disranker {

Int8Weights quantize_weights(const float* weight, std::int64_t in, std::int64_t out) {
  Int8Weights q;
  q.in = in, q.out = out;
  q.values.resize(static_cast<std::size_t>(in * out));
  q.scale.assign(static_cast<std::size_t>(out), 0.0f);
  q.column_sum.assign(static_cast<std::size_t>(out), 0);
  for (std::int64_t i = 0; i < in; ++i)
    for (std::int64_t o = 0; o < out; ++o) q.scale[o] = std::max(q.scale[o], std::fabs(weight[i * out + o]));
  for (float& s : q.scale) s = s > 0 ? s / 127.0f : 1.0f;
  for (std::int64_t i = 0; i < in; ++i) {
    for (std::int64_t o = 0; o < out; ++o) {
      const auto v = static_cast<std::int8_t>(std::lrint(weight[i * out + o] / q.scale[o]));
      q.values[static_cast<std::size_t>(i * out + o)] = v;
      q.column_sum[o] += v;
    }
  }
  return q;
}

int activation_levels() {
  // VNNI is the 0x40 bit of the AVX-512 ISA values (avx512_core_vnni and above) and 0x400 of avx2_vnni.
  const auto isa = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
  return (isa & 0x40u) != 0 || (isa & 0x400u) != 0 ? 255 : 127;
}

void quantize_row(const float* x, std::int64_t n, int levels, std::uint8_t* q, float* scale,
                  std::int32_t* zero) {
  float low = 0, high = 0;
#pragma omp simd reduction(min : low) reduction(max : high)
  for (std::int64_t j = 0; j < n; ++j) low = std::min(low, x[j]), high = std::max(high, x[j]);
  const auto top = static_cast<float>(levels);
  const float s = high > low ? (high - low) / top : 1.0f;
  const float z = std::clamp(std::nearbyint(-low / s), 0.0f, top);
  const float inv = 1.0f / s;
#pragma omp simd
  for (std::int64_t j = 0; j < n; ++j)
    q[j] = static_cast<std::uint8_t>(std::clamp(x[j] * inv + z, 0.0f, top) + 0.5f);
  *scale = s;
  *zero = static_cast<std::int32_t>(z);
}

void gemm_int8(std::int64_t m, std::int64_t n, std::int64_t k, const std::uint8_t* a, std::int64_t lda,
               const std::int8_t* b, std::int64_t ldb, std::int32_t* c, std::int64_t ldc) {
  if (m == 0) return;
  const std::int32_t no_offset = 0;
  const dnnl_status_t status =
      dnnl_gemm_u8s8s32('N', 'N', 'F', m, n, k, 1.0f, a, lda, 0, b, ldb, 0, 0.0f, c, ldc, &no_offset);
  if (status != dnnl_success)
    throw Error("int8 gemm: oneDNN gemm_u8s8s32 failed with status " + std::to_string(status));
}

void dequantize_row(const std::int32_t* acc, std::int64_t n, float row_scale, std::int32_t row_zero,
                    const float* scale, const std::int32_t* column_sum, const float* bias, float* y) {
#pragma omp simd
  for (std::int64_t j = 0; j < n; ++j)
    y[j] = row_scale * scale[j] * static_cast<float>(acc[j] - row_zero * column_sum[j]) + bias[j];
}

}  // namespace disranker
