#include "infer/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "infer/simd_dispatch.h"
#include "infer/simd_math.h"
#include "infer/vector_math.h"

namespace disranker {
namespace {

#define DISRANKER_AVX512 __attribute__((target("avx512f")))

// Query rows per block: their scores (rows × padded length) stay in L1 between the three steps.
constexpr int kRowBlock = 8;

std::int64_t padded_length(std::int64_t length) {
  return (length + 15) / 16 * 16;
}

// 64-bit unpacks of float vectors.
DISRANKER_AVX512 inline __m512 lo(__m512 a, __m512 b) {
  return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
}
DISRANKER_AVX512 inline __m512 hi(__m512 a, __m512 b) {
  return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
}

// Transposes the 16 × 16 block in r (row i ← column i): three rounds of in-lane unpacks and 128-bit lane
// shuffles, the usual AVX-512 sequence.
DISRANKER_AVX512 inline void transpose_16x16(__m512* r) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 16; i += 2)
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
#pragma GCC unroll 4
  for (int i = 0; i < 16; i += 4) {
    r[i] = lo(t[i], t[i + 2]), r[i + 1] = hi(t[i], t[i + 2]);
    r[i + 2] = lo(t[i + 1], t[i + 3]), r[i + 3] = hi(t[i + 1], t[i + 3]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88), t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i)
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88), r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
}

// Kᵀ with the keys padded to a multiple of 16 by zero columns: kt[k · padded + j] = key[j][k], 16 keys × 16
// dimensions per register transpose.
DISRANKER_AVX512 void transpose_keys(const AttentionHead& h, std::int64_t padded, float* kt) {
  for (std::int64_t j0 = 0; j0 < padded; j0 += 16) {
    const std::int64_t keys = std::min<std::int64_t>(16, h.length - j0);
    for (std::int64_t k0 = 0; k0 < h.dim; k0 += 16) {
      __m512 block[16];
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j)
        block[j] = j < keys ? _mm512_loadu_ps(h.key + (j0 + j) * h.kv_ld + k0) : _mm512_setzero_ps();
      transpose_16x16(block);
#pragma GCC unroll 16
      for (int k = 0; k < 16; ++k) _mm512_storeu_ps(kt + (k0 + k) * padded + j0, block[k]);
    }
  }
}

// scores[r][j0 .. j0 + 16·KB) = q[r] · Kᵀ for R query rows: R × KB accumulators, one 16-key vector of Kᵀ per
// load and one broadcast query element per row and dimension.
template <int R, int KB>
DISRANKER_AVX512 inline void scores_block(const float* const* q, const float* kt, std::int64_t padded,
                                          std::int64_t dim, std::int64_t j0, float* scores) {
  __m512 acc[R][KB];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int b = 0; b < KB; ++b) acc[r][b] = _mm512_setzero_ps();
  for (std::int64_t k = 0; k < dim; ++k) {
    __m512 keys[KB];
#pragma GCC unroll 16
    for (int b = 0; b < KB; ++b) keys[b] = _mm512_loadu_ps(kt + k * padded + j0 + 16 * b);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 qk = _mm512_set1_ps(q[r][k]);
#pragma GCC unroll 16
      for (int b = 0; b < KB; ++b) acc[r][b] = _mm512_fmadd_ps(qk, keys[b], acc[r][b]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int b = 0; b < KB; ++b) _mm512_storeu_ps(scores + r * padded + j0 + 16 * b, acc[r][b]);
}

template <int R>
DISRANKER_AVX512 void scores_rows(const float* const* q, const float* kt, std::int64_t padded,
                                  std::int64_t dim, float* scores) {
  std::int64_t j = 0;
  for (; j + 64 <= padded; j += 64) scores_block<R, 4>(q, kt, padded, dim, j, scores);
  switch ((padded - j) / 16) {
    case 3:
      return scores_block<R, 3>(q, kt, padded, dim, j, scores);
    case 2:
      return scores_block<R, 2>(q, kt, padded, dim, j, scores);
    case 1:
      return scores_block<R, 1>(q, kt, padded, dim, j, scores);
    default:
      return;
  }
}

// Row r of the scores → exp(scale · (s − max)) over the first `length` columns, zero in the padding; returns
// 1 / the sum, applied to the output instead of to every probability.
DISRANKER_AVX512 float exponentiate_row(float* row, std::int64_t length, std::int64_t padded, float scale) {
  const __mmask16 tail = static_cast<__mmask16>((1u << (length % 16)) - 1);
  const std::int64_t full = length / 16 * 16;
  __m512 top = _mm512_set1_ps(-INFINITY);
  for (std::int64_t j = 0; j < full; j += 16) top = _mm512_max_ps(top, _mm512_loadu_ps(row + j));
  if (tail != 0) top = _mm512_mask_max_ps(top, tail, top, _mm512_loadu_ps(row + full));
  const float most = _mm512_reduce_max_ps(top);
  // exp(scale · (s − most)) = 2^(s · c − most · c) with c = scale · log2(e).
  const float c = scale * 1.44269504089f;
  const __m512 s = _mm512_set1_ps(c), shift = _mm512_set1_ps(c * most);
  __m512 sum = _mm512_setzero_ps();
  for (std::int64_t j = 0; j < full; j += 16) {
    const __m512 e = exp2_nonpositive(_mm512_fmsub_ps(_mm512_loadu_ps(row + j), s, shift));
    _mm512_storeu_ps(row + j, e);
    sum = _mm512_add_ps(sum, e);
  }
  if (full < padded) {
    const __m512 e =
        _mm512_maskz_mov_ps(tail, exp2_nonpositive(_mm512_fmsub_ps(_mm512_loadu_ps(row + full), s, shift)));
    _mm512_storeu_ps(row + full, e);
    sum = _mm512_add_ps(sum, e);
  }
  return 1.0f / _mm512_reduce_add_ps(sum);
}

// out[r] = inverse_sum[r] · Σ_j p[r][j] V[j] for R rows and a head of 16·D dimensions: R × D accumulators,
// the value rows read directly from the packed activations.
template <int R, int D>
DISRANKER_AVX512 void output_rows(const float* p, std::int64_t padded, const AttentionHead& h,
                                  const float* inverse_sum, float* const* out) {
  __m512 acc[R][D];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int b = 0; b < D; ++b) acc[r][b] = _mm512_setzero_ps();
  for (std::int64_t j = 0; j < h.length; ++j) {
    __m512 values[D];
#pragma GCC unroll 16
    for (int b = 0; b < D; ++b) values[b] = _mm512_loadu_ps(h.value + j * h.kv_ld + 16 * b);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 weight = _mm512_set1_ps(p[r * padded + j]);
#pragma GCC unroll 16
      for (int b = 0; b < D; ++b) acc[r][b] = _mm512_fmadd_ps(weight, values[b], acc[r][b]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const __m512 inverse = _mm512_set1_ps(inverse_sum[r]);
#pragma GCC unroll 16
    for (int b = 0; b < D; ++b) _mm512_storeu_ps(out[r] + 16 * b, _mm512_mul_ps(acc[r][b], inverse));
  }
}

template <int D>
DISRANKER_AVX512 void attention_head_d(const AttentionHead& h, float* workspace) {
  const std::int64_t padded = padded_length(h.length);
  float* kt = workspace;
  float* scores = workspace + h.dim * padded;
  transpose_keys(h, padded, kt);
  // Output rows per accumulation pass: 16 accumulators at most (a 32-register file with the values).
  constexpr int kOutputRows = std::min(kRowBlock, 16 / D);
  for (std::int64_t r0 = 0; r0 < h.rows; r0 += kRowBlock) {
    const int block = static_cast<int>(std::min<std::int64_t>(kRowBlock, h.rows - r0));
    const float* q[kRowBlock];
    float* out[kRowBlock];
    for (int r = 0; r < block; ++r)
      q[r] = h.query + (r0 + r) * h.query_ld, out[r] = h.out + (r0 + r) * h.out_ld;
    for (int r = 0; r < block; r += 4) {
      dispatch_count<4>(std::min(4, block - r),
                        [&]<int R>() { scores_rows<R>(q + r, kt, padded, h.dim, scores + r * padded); });
    }
    float inverse_sum[kRowBlock];
    for (int r = 0; r < block; ++r)
      inverse_sum[r] = exponentiate_row(scores + r * padded, h.length, padded, h.scale);
    for (int r = 0; r < block; r += kOutputRows) {
      dispatch_count<kOutputRows>(std::min(kOutputRows, block - r), [&]<int R>() {
        output_rows<R, D>(scores + r * padded, padded, h, inverse_sum + r, out + r);
      });
    }
  }
}

}  // namespace

bool attention_kernel_supports(std::int64_t dim) {
  return vector_math_uses_avx512() && (dim == 16 || dim == 32 || dim == 64);
}

std::int64_t attention_workspace_floats(std::int64_t length, std::int64_t dim) {
  return (dim + kRowBlock) * padded_length(length);
}

void attention_head(const AttentionHead& head, float* workspace) {
  switch (head.dim) {
    case 16:
      return attention_head_d<1>(head, workspace);
    case 32:
      return attention_head_d<2>(head, workspace);
    default:
      return attention_head_d<4>(head, workspace);
  }
}

}  // namespace disranker
