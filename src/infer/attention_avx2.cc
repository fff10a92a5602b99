// attention_head_avx2 (infer/attention.h): the float32 kernel of attention.cc for CPUs with AVX2 and FMA but
// no AVX-512: 8 floats per vector and 16 registers instead of 16 floats and 32, so the register blocks are
// smaller; the steps are the same (Kᵀ once per head, then per block of query rows: scores in registers,
// softmax in place, output accumulated from the values). Where it replaced two oneDNN sgemm calls per head it
// measured faster in bench/bench_attention (see docs/inference.md).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "infer/attention.h"
#include "infer/simd_dispatch.h"
#include "infer/simd_math.h"

namespace disranker {
namespace {

#define DISRANKER_AVX2 __attribute__((target("avx2,fma")))

// Query rows per block, and the register blocks of both products: 6 rows × 16 columns (keys, or output
// dimensions) are 12 accumulators, plus 2 vectors of the other operand and one broadcast in the 16 registers
// (the shape of the usual AVX2 sgemm kernel).
constexpr int kRows = 6;
constexpr int kPanel = 16;  // keys per panel of Kᵀ, dimensions per panel of the values

std::int64_t padded_length(std::int64_t length) {
  return (length + 7) / 8 * 8;
}

// Transposes the 8 × 8 block in r (row i ← column i): unpacks, in-lane shuffles and 128-bit lane swaps.
DISRANKER_AVX2 inline void transpose_8x8(__m256* r) {
  __m256 t[8], u[8];
#pragma GCC unroll 4
  for (int i = 0; i < 8; i += 2)
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
#pragma GCC unroll 2
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44), u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44),
          u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i)
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20),
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
}

// Kᵀ in panels of 16 keys, each panel contiguous: kt[(j / 16) · 16 · dim + k · 16 + j % 16] = key[j][k], the
// keys padded to a multiple of 8 by zeros (the last panel may use only its first 8 columns).
DISRANKER_AVX2 void transpose_keys(const AttentionHead& h, std::int64_t padded, float* kt) {
  for (std::int64_t j0 = 0; j0 < padded; j0 += 8) {
    const std::int64_t keys = std::min<std::int64_t>(8, h.length - j0);
    float* panel = kt + j0 / kPanel * kPanel * h.dim + j0 % kPanel;
    for (std::int64_t k0 = 0; k0 < h.dim; k0 += 8) {
      __m256 block[8];
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j)
        block[j] = j < keys ? _mm256_loadu_ps(h.key + (j0 + j) * h.kv_ld + k0) : _mm256_setzero_ps();
      transpose_8x8(block);
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) _mm256_storeu_ps(panel + (k0 + k) * kPanel, block[k]);
    }
  }
}

// The values in panels of 16 dimensions, each contiguous: packed[(d / 16) · 16 · length + j · 16 + d % 16] =
// value[j][d]. Read in place, the activations' rows are 3 · hidden floats apart, a stride that maps a head's
// rows onto a few L1 sets (MiniLM: 4.6 KB, 8 of 64 sets), and every block of query rows reads them again.
DISRANKER_AVX2 void pack_values(const AttentionHead& h, float* packed) {
  for (std::int64_t j = 0; j < h.length; ++j)
    for (std::int64_t d = 0; d < h.dim; d += 8)
      _mm256_storeu_ps(packed + d / kPanel * kPanel * h.length + j * kPanel + d % kPanel,
                       _mm256_loadu_ps(h.value + j * h.kv_ld + d));
}

// acc[r · V + v] += Σ_step a[r][step] · b[step][8v .. 8v + 8) for R rows of a (rows a_ld apart) and a panel b
// of `steps` rows of 16 floats (V ≤ 2 vectors of each used): the register block of both products.
template <int R, int V>
DISRANKER_AVX2 inline void panel_product(const float* a, std::int64_t a_ld, const float* b,
                                         std::int64_t steps, __m256* acc) {
  for (std::int64_t i = 0; i < steps; ++i) {
    __m256 row[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) row[v] = _mm256_loadu_ps(b + i * kPanel + 8 * v);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + r * a_ld + i);
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[r * V + v] = _mm256_fmadd_ps(x, row[v], acc[r * V + v]);
    }
  }
}

// scores[r][j0 .. j0 + 8·V) = q[r] · Kᵀ for R query rows against one panel of Kᵀ.
template <int R, int V>
DISRANKER_AVX2 void scores_block(const float* q, std::int64_t q_ld, const float* panel, std::int64_t dim,
                                 float* scores, std::int64_t scores_ld) {
  __m256 acc[R * V];  // flat: GCC 12 keeps a flat array of accumulators in registers
#pragma GCC unroll 12
  for (int i = 0; i < R * V; ++i) acc[i] = _mm256_setzero_ps();
  panel_product<R, V>(q, q_ld, panel, dim, acc);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) _mm256_storeu_ps(scores + r * scores_ld + 8 * v, acc[r * V + v]);
}

// out[r][0 .. 16) = inverse_sum[r] · Σ_j p[r][j] · value panel[j] for R rows over the `length` keys.
template <int R>
DISRANKER_AVX2 void output_block(const float* p, std::int64_t p_ld, const float* panel, std::int64_t length,
                                 const float* inverse_sum, float* out, std::int64_t out_ld) {
  __m256 acc[R * 2];
#pragma GCC unroll 12
  for (int i = 0; i < R * 2; ++i) acc[i] = _mm256_setzero_ps();
  panel_product<R, 2>(p, p_ld, panel, length, acc);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    const __m256 inverse = _mm256_set1_ps(inverse_sum[r]);
    _mm256_storeu_ps(out + r * out_ld, _mm256_mul_ps(acc[2 * r], inverse));
    _mm256_storeu_ps(out + r * out_ld + 8, _mm256_mul_ps(acc[2 * r + 1], inverse));
  }
}

// All-ones in the lanes j + i < length, zero in the others (all, some or none of the 8).
DISRANKER_AVX2 inline __m256 lanes_below(std::int64_t length, std::int64_t j) {
  const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const auto n = static_cast<int>(std::clamp<std::int64_t>(length - j, 0, 8));
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n), index));
}

DISRANKER_AVX2 inline float horizontal_max(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

DISRANKER_AVX2 inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// Row of scores → exp(scale · (s − max)) over the first `length` columns, zero in the padding (at most one
// vector: `padded` rounds `length` up to 8); returns 1 / the sum, applied to the output instead of to every
// probability. For a head of 32 dimensions the exponentials cost a quarter of the products' time, so the
// lane masks are computed for the last vector only.
DISRANKER_AVX2 float exponentiate_row(float* row, std::int64_t length, std::int64_t padded, float scale) {
  const std::int64_t full = length / 8 * 8;
  const __m256 lowest = _mm256_set1_ps(-INFINITY);
  __m256 top = lowest;
  for (std::int64_t j = 0; j < full; j += 8) top = _mm256_max_ps(top, _mm256_loadu_ps(row + j));
  const __m256 last = lanes_below(length, full);
  if (full < padded) top = _mm256_max_ps(top, _mm256_blendv_ps(lowest, _mm256_loadu_ps(row + full), last));
  const float c = scale * 1.44269504089f;  // exp(scale · x) = 2^(c · x)
  const __m256 cv = _mm256_set1_ps(c), shift = _mm256_set1_ps(c * horizontal_max(top));
  __m256 sum = _mm256_setzero_ps();
  for (std::int64_t j = 0; j < full; j += 8) {
    const __m256 e = exp2_nonpositive(_mm256_fmsub_ps(_mm256_loadu_ps(row + j), cv, shift));
    _mm256_storeu_ps(row + j, e);
    sum = _mm256_add_ps(sum, e);
  }
  if (full < padded) {
    const __m256 t = _mm256_fmsub_ps(_mm256_loadu_ps(row + full), cv, shift);
    const __m256 e = _mm256_and_ps(exp2_nonpositive(t), last);
    _mm256_storeu_ps(row + full, e);
    sum = _mm256_add_ps(sum, e);
  }
  return 1.0f / horizontal_sum(sum);
}

}  // namespace

void attention_head_avx2(const AttentionHead& h, float* workspace) {
  const std::int64_t padded = padded_length(h.length);
  const std::int64_t panels = (padded + kPanel - 1) / kPanel;
  float* kt = workspace;                         // transpose_keys
  float* values = kt + panels * kPanel * h.dim;  // pack_values
  float* scores = values + h.length * h.dim;     // kRows rows of `padded` scores
  transpose_keys(h, padded, kt);
  pack_values(h, values);
  for (std::int64_t r0 = 0; r0 < h.rows; r0 += kRows) {
    const int rows = static_cast<int>(std::min<std::int64_t>(kRows, h.rows - r0));
    const float* q = h.query + r0 * h.query_ld;
    float* out = h.out + r0 * h.out_ld;
    dispatch_count<kRows>(rows, [&]<int R>() {
      for (std::int64_t j0 = 0; j0 < padded; j0 += kPanel) {
        const float* panel = kt + j0 * h.dim;
        if (j0 + kPanel <= padded)
          scores_block<R, 2>(q, h.query_ld, panel, h.dim, scores + j0, padded);
        else
          scores_block<R, 1>(q, h.query_ld, panel, h.dim, scores + j0, padded);
      }
      float inverse_sum[kRows];
      for (int r = 0; r < R; ++r)
        inverse_sum[r] = exponentiate_row(scores + r * padded, h.length, padded, h.scale);
      for (std::int64_t d0 = 0; d0 < h.dim; d0 += kPanel)
        output_block<R>(scores, padded, values + d0 * h.length, h.length, inverse_sum, out + d0, h.out_ld);
    });
  }
}

}  // namespace disranker
