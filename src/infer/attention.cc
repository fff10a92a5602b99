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

// acc += a · b: a float FMA, or with kBf16 vdpbf16ps, which reads each 32-bit lane as a pair of bf16 values
// (a.low · b.low + a.high · b.high: twice the products per instruction). vdpbf16ps as inline assembly: with
// the intrinsic GCC 12 moves the accumulators around each instruction (see vnni_gemm.cc), and the assembly
// needs no target attribute in the templates that take both paths (it runs only after
// attention_bf16_supports()).
template <bool kBf16>
DISRANKER_AVX512 inline void multiply_add(__m512& acc, __m512 a, __m512 b) {
  if constexpr (kBf16)
    asm("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  else
    acc = _mm512_fmadd_ps(a, b, acc);
}

// scores[r][j0 .. j0 + 16·KB) = q[r] · Kᵀ for R query rows over `steps` rows of kt (dimensions; with kBf16
// dimension pairs, and q[r][step] a pair too): R × KB accumulators, one 16-key vector of kt per load and one
// broadcast query element per row and step.
template <int R, int KB, bool kBf16>
DISRANKER_AVX512 inline void scores_block(const float* const* q, const float* kt, std::int64_t padded,
                                          std::int64_t steps, std::int64_t j0, float* scores) {
  __m512 acc[R * KB];  // flat: GCC 12 keeps a flat array of accumulators in registers
#pragma GCC unroll 16
  for (int i = 0; i < R * KB; ++i) acc[i] = _mm512_setzero_ps();
  for (std::int64_t k = 0; k < steps; ++k) {
    __m512 keys[KB];
#pragma GCC unroll 16
    for (int b = 0; b < KB; ++b) keys[b] = _mm512_loadu_ps(kt + k * padded + j0 + 16 * b);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 qk = _mm512_set1_ps(q[r][k]);
#pragma GCC unroll 16
      for (int b = 0; b < KB; ++b) multiply_add<kBf16>(acc[r * KB + b], qk, keys[b]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int b = 0; b < KB; ++b) _mm512_storeu_ps(scores + r * padded + j0 + 16 * b, acc[r * KB + b]);
}

// block.template operator()<KB>(j0) over the 16-key vectors of a padded row: blocks of 64 keys, then the
// tail of 1 to 3 vectors.
template <class Block>
void over_key_blocks(std::int64_t padded, Block&& block) {
  std::int64_t j = 0;
  for (; j + 64 <= padded; j += 64) block.template operator()<4>(j);
  dispatch_count<3>(static_cast<int>((padded - j) / 16), [&]<int KB>() { block.template operator()<KB>(j); });
}

// The largest of the first `length` scores of a row.
DISRANKER_AVX512 inline float row_max(const float* row, std::int64_t length) {
  const __mmask16 tail = static_cast<__mmask16>((1u << (length % 16)) - 1);
  const std::int64_t full = length / 16 * 16;
  __m512 top = _mm512_set1_ps(-INFINITY);
  for (std::int64_t j = 0; j < full; j += 16) top = _mm512_max_ps(top, _mm512_loadu_ps(row + j));
  if (tail != 0) top = _mm512_mask_max_ps(top, tail, top, _mm512_loadu_ps(row + full));
  return _mm512_reduce_max_ps(top);
}

// exp(scale · (s − most)) = 2^(s · c − most · c) with c = scale · log2(e), for the 16 scores at `at`, zero
// outside `keep`.
DISRANKER_AVX512 inline __m512 exp_scores(const float* at, __mmask16 keep, __m512 c, __m512 shift) {
  return _mm512_maskz_mov_ps(keep, exp2_nonpositive(_mm512_fmsub_ps(_mm512_loadu_ps(at), c, shift)));
}

// The first `length` lanes of a 16-lane vector starting at j (all, some or none).
inline __mmask16 lanes_below(std::int64_t length, std::int64_t j) {
  const std::int64_t n = std::clamp<std::int64_t>(length - j, 0, 16);
  return static_cast<__mmask16>((1u << n) - 1);
}

// Row r of the scores → exp(scale · (s − max)) over the first `length` columns, zero in the padding; returns
// 1 / the sum, applied to the output instead of to every probability.
DISRANKER_AVX512 float exponentiate_row(float* row, std::int64_t length, std::int64_t padded, float scale) {
  const float c = scale * 1.44269504089f;
  const __m512 cv = _mm512_set1_ps(c), shift = _mm512_set1_ps(c * row_max(row, length));
  __m512 sum = _mm512_setzero_ps();
  for (std::int64_t j = 0; j < padded; j += 16) {
    const __m512 e = exp_scores(row + j, lanes_below(length, j), cv, shift);
    _mm512_storeu_ps(row + j, e);
    sum = _mm512_add_ps(sum, e);
  }
  return 1.0f / _mm512_reduce_add_ps(sum);
}

// out[r] = inverse_sum[r] · Σ_step p[r][step] · values[step] for R rows and a head of 16·D dimensions: R × D
// accumulators. Float: the steps are keys and the values are read from the packed activations' rows; kBf16:
// the steps are key pairs, p[r] and the values pairs (pack_values_bf16).
template <int R, int D, bool kBf16>
DISRANKER_AVX512 void output_rows(const float* p, std::int64_t p_ld, std::int64_t steps, const float* values,
                                  std::int64_t values_ld, const float* inverse_sum, float* const* out) {
  __m512 acc[R * D];
#pragma GCC unroll 16
  for (int i = 0; i < R * D; ++i) acc[i] = _mm512_setzero_ps();
  for (std::int64_t j = 0; j < steps; ++j) {
    __m512 v[D];
#pragma GCC unroll 16
    for (int b = 0; b < D; ++b) v[b] = _mm512_loadu_ps(values + j * values_ld + 16 * b);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 weight = _mm512_set1_ps(p[r * p_ld + j]);
#pragma GCC unroll 16
      for (int b = 0; b < D; ++b) multiply_add<kBf16>(acc[r * D + b], weight, v[b]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const __m512 inverse = _mm512_set1_ps(inverse_sum[r]);
#pragma GCC unroll 16
    for (int b = 0; b < D; ++b) _mm512_storeu_ps(out[r] + 16 * b, _mm512_mul_ps(acc[r * D + b], inverse));
  }
}

// bf16 operands (AttentionHead::bf16): stored as pairs in one 32-bit lane (low half the first of the pair);
// the softmax and the accumulation stay float32.

#define DISRANKER_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))

// Lane i ← (bf16(x[2i]), bf16(x[2i + 1])) for the first n ∈ {16, 32} values of x; the other lanes zero.
DISRANKER_AVX512_BF16 inline __m512 bf16_pairs(const float* x, std::int64_t n) {
  const __m512 high = n > 16 ? _mm512_loadu_ps(x + 16) : _mm512_setzero_ps();
  return _mm512_castsi512_ps(reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(high, _mm512_loadu_ps(x))));
}

// kt[p · padded + j] = the pair (key[j][2p], key[j][2p + 1]), zero for the padding keys: one 16 × 16
// transpose of 32-bit lanes per 16 keys × 32 dimensions.
DISRANKER_AVX512_BF16 void pack_keys_bf16(const AttentionHead& h, std::int64_t padded, float* kt) {
  const std::int64_t chunk = std::min<std::int64_t>(32, h.dim);
  for (std::int64_t j0 = 0; j0 < padded; j0 += 16) {
    const std::int64_t keys = std::min<std::int64_t>(16, h.length - j0);
    for (std::int64_t k0 = 0; k0 < h.dim; k0 += 32) {
      __m512 block[16];
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j)
        block[j] = j < keys ? bf16_pairs(h.key + (j0 + j) * h.kv_ld + k0, chunk) : _mm512_setzero_ps();
      transpose_16x16(block);
      for (std::int64_t p = 0; p < chunk / 2; ++p)
        _mm512_storeu_ps(kt + (k0 / 2 + p) * padded + j0, block[p]);
    }
  }
}

// vp[jp · dim + d] = the pair (value[2jp][d], value[2jp + 1][d]) for jp < ⌈length / 2⌉ (a zero row after an
// odd length).
DISRANKER_AVX512_BF16 void pack_values_bf16(const AttentionHead& h, float* vp) {
  // cvtne2ps gives the 16 bf16 of x then the 16 of y; the permutation interleaves them: x0 y0 x1 y1 ...
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                              23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (std::int64_t jp = 0; 2 * jp < h.length; ++jp) {
    const float* first = h.value + 2 * jp * h.kv_ld;
    const bool second = 2 * jp + 1 < h.length;
    for (std::int64_t d = 0; d < h.dim; d += 16) {
      const __m512 y = second ? _mm512_loadu_ps(first + h.kv_ld + d) : _mm512_setzero_ps();
      const __m512i both = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(y, _mm512_loadu_ps(first + d)));
      _mm512_storeu_si512(vp + jp * h.dim + d, _mm512_permutexvar_epi16(interleave, both));
    }
  }
}

// The first `dim` values of a query row as dim / 2 bf16 pairs.
DISRANKER_AVX512_BF16 void query_pairs_bf16(const float* row, std::int64_t dim, float* pairs) {
  for (std::int64_t k0 = 0; k0 < dim; k0 += 32)
    _mm512_storeu_ps(pairs + k0 / 2, bf16_pairs(row + k0, std::min<std::int64_t>(32, dim)));
}

// exponentiate_row with the probabilities written as bf16 pairs, probabilities[j / 2] = (p[j], p[j + 1]) for
// j < padded, straight from the registers (the float scores are left as they were).
DISRANKER_AVX512_BF16 float exponentiate_row_bf16(const float* row, std::int64_t length, std::int64_t padded,
                                                  float scale, float* probabilities) {
  const float c = scale * 1.44269504089f;
  const __m512 cv = _mm512_set1_ps(c), shift = _mm512_set1_ps(c * row_max(row, length));
  __m512 sum = _mm512_setzero_ps();
  for (std::int64_t j = 0; j < padded; j += 32) {
    const __m512 low = exp_scores(row + j, lanes_below(length, j), cv, shift);
    const bool two = j + 16 < padded;  // padded is a multiple of 16, not always of 32
    const __m512 high =
        two ? exp_scores(row + j + 16, lanes_below(length, j + 16), cv, shift) : _mm512_setzero_ps();
    sum = _mm512_add_ps(sum, _mm512_add_ps(low, high));
    const __m512i pairs = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(high, low));
    _mm512_mask_storeu_epi32(probabilities + j / 2, two ? 0xffff : 0x00ff, pairs);
  }
  return 1.0f / _mm512_reduce_add_ps(sum);
}

// One head, float32 or (kBf16) bf16 products. Workspace: the keys (Kᵀ, or as bf16 pairs), with kBf16 the
// values as pairs, the scores of one block of query rows, with kBf16 their probabilities as pairs.
template <int D, bool kBf16>
DISRANKER_AVX512 void attention_head_d(const AttentionHead& h, float* workspace) {
  const std::int64_t padded = padded_length(h.length);
  const std::int64_t key_steps = kBf16 ? h.dim / 2 : h.dim;                // rows of kt
  const std::int64_t value_steps = kBf16 ? (h.length + 1) / 2 : h.length;  // keys, or key pairs
  const std::int64_t p_ld = kBf16 ? padded / 2 : padded;
  float* kt = workspace;
  float* packed_values = kt + key_steps * padded;
  float* scores = packed_values + (kBf16 ? padded / 2 * h.dim : 0);
  float* probabilities = kBf16 ? scores + kRowBlock * padded : scores;
  const float* values = kBf16 ? packed_values : h.value;
  const std::int64_t values_ld = kBf16 ? h.dim : h.kv_ld;
  if constexpr (kBf16) {
    pack_keys_bf16(h, padded, kt);
    pack_values_bf16(h, packed_values);
  } else {
    transpose_keys(h, padded, kt);
  }
  // Output rows per accumulation pass: 16 accumulators at most (a 32-register file with the values).
  constexpr int kOutputRows = std::min(kRowBlock, 16 / D);
  for (std::int64_t r0 = 0; r0 < h.rows; r0 += kRowBlock) {
    const int block = static_cast<int>(std::min<std::int64_t>(kRowBlock, h.rows - r0));
    float query_pairs[kRowBlock][32];  // kBf16: the query rows as pairs (dim ≤ 64)
    const float* q[kRowBlock];
    float* out[kRowBlock];
    for (int r = 0; r < block; ++r) {
      q[r] = h.query + (r0 + r) * h.query_ld, out[r] = h.out + (r0 + r) * h.out_ld;
      if constexpr (kBf16) query_pairs_bf16(q[r], h.dim, query_pairs[r]), q[r] = query_pairs[r];
    }
    for (int r = 0; r < block; r += 4) {
      dispatch_count<4>(std::min(4, block - r), [&]<int R>() {
        over_key_blocks(padded, [&]<int KB>(std::int64_t j0) {
          scores_block<R, KB, kBf16>(q + r, kt, padded, key_steps, j0, scores + r * padded);
        });
      });
    }
    float inverse_sum[kRowBlock];
    for (int r = 0; r < block; ++r) {
      if constexpr (kBf16)
        inverse_sum[r] =
            exponentiate_row_bf16(scores + r * padded, h.length, padded, h.scale, probabilities + r * p_ld);
      else
        inverse_sum[r] = exponentiate_row(scores + r * padded, h.length, padded, h.scale);
    }
    for (int r = 0; r < block; r += kOutputRows) {
      dispatch_count<kOutputRows>(std::min(kOutputRows, block - r), [&]<int R>() {
        output_rows<R, D, kBf16>(probabilities + r * p_ld, p_ld, value_steps, values, values_ld,
                                 inverse_sum + r, out + r);
      });
    }
  }
}

template <bool kBf16>
void attention_head_of(const AttentionHead& head, float* workspace) {
  switch (head.dim) {
    case 16:
      return attention_head_d<1, kBf16>(head, workspace);
    case 32:
      return attention_head_d<2, kBf16>(head, workspace);
    default:
      return attention_head_d<4, kBf16>(head, workspace);
  }
}

}  // namespace

bool attention_kernel_supports(std::int64_t dim) {
  return (vector_math_uses_avx512() || vector_math_uses_avx2()) && (dim == 16 || dim == 32 || dim == 64);
}

bool attention_bf16_supports() {
  static const bool bf16 =
      vector_math_uses_avx512() && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512bf16");
  return bf16;
}

std::int64_t attention_workspace_floats(std::int64_t length, std::int64_t dim) {
  // The largest layout of the three paths: the AVX2 kernel's, Kᵀ, the packed values and 8 rows of scores.
  return (2 * dim + 2 * kRowBlock) * padded_length(length);
}

void attention_head(const AttentionHead& head, float* workspace) {
  if (!vector_math_uses_avx512()) return attention_head_avx2(head, workspace);
  if (head.bf16) return attention_head_of<true>(head, workspace);
  attention_head_of<false>(head, workspace);
}

}  // namespace disranker
