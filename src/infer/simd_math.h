// Inline AVX-512 and AVX2 math for the fused kernels (infer/attention.cc, infer/vector_math.cc): short
// polynomials where libmvec's general functions cost more than the arithmetic around them. Call only from
// code that checks the CPU first (vector_math_uses_avx512() / vector_math_uses_avx2()).
#pragma once

#include <immintrin.h>

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() (the masked-off lanes) and then warn, once
// inlined, that the value may be used uninitialized: a known false positive (GCC bug 105593). Silenced for
// the AVX-512 files, which all include this header.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace disranker {

// 2^t for t ≤ 0: t = n + f with n an integer and |f| ≤ ½, 2^f by its Taylor series in f · ln 2 to degree 6
// (relative error < 2e-7, below float's rounding of the probabilities), scaled by 2^n. Inlined instead of
// libmvec's expf: the call and its general range handling were a quarter of the attention kernel's time.
// The series' coefficients, highest degree first (1/6!, …, 1/1!, 1/0!).
inline constexpr float kExpTaylor[] = {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};

// AVX-512: 2^n applied with vscalefps.
__attribute__((target("avx512f"))) inline __m512 exp2_nonpositive(__m512 t) {
  t = _mm512_max_ps(t, _mm512_set1_ps(-127.0f));  // exp of a score 127 octaves below the top: 0 for a float
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_mul_ps(_mm512_sub_ps(t, n), _mm512_set1_ps(0.69314718056f));  // f · ln 2
  __m512 p = _mm512_set1_ps(kExpTaylor[0]);
#pragma GCC unroll 8
  for (int i = 1; i < 7; ++i) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExpTaylor[i]));
  return _mm512_scalef_ps(p, n);
}

// AVX2: 2^n built as a float's bits, (n + 127) << 23. t is clamped at −125 (2^f · 2^-125 is still a normal
// float: no denormal operands downstream), so the result is at least ≈ 2^-125.5 instead of 0: nothing next to
// the largest score's 1 in a softmax.
__attribute__((target("avx2,fma"))) inline __m256 exp2_nonpositive(__m256 t) {
  t = _mm256_max_ps(t, _mm256_set1_ps(-125.0f));
  const __m256 n = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_mul_ps(_mm256_sub_ps(t, n), _mm256_set1_ps(0.69314718056f));
  __m256 p = _mm256_set1_ps(kExpTaylor[0]);
#pragma GCC unroll 8
  for (int i = 1; i < 7; ++i) p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExpTaylor[i]));
  const __m256i power =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(power));
}

}  // namespace disranker
