// Inline AVX-512 math for the fused kernels (infer/attention.cc, infer/vector_math.cc): short polynomials
// where libmvec's general functions cost more than the arithmetic around them. Call only from code that
// checks the CPU first (vector_math_uses_avx512()).
#pragma once

#include <immintrin.h>

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() (the masked-off lanes) and then warn, once
// inlined, that the value may be used uninitialized: a known false positive (GCC bug 105593). Silenced for
// the AVX-512 files, which all include this header.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace disranker {

// 2^t for t ≤ 0: t = n + f with n an integer and |f| ≤ ½, 2^f by its Taylor series to degree 6 (relative
// error < 2e-7, below float's rounding of the probabilities), scaled by 2^n with vscalefps. Inlined instead
// of libmvec's expf: the call and its general range handling were a quarter of the attention kernel's time.
__attribute__((target("avx512f"))) inline __m512 exp2_nonpositive(__m512 t) {
  t = _mm512_max_ps(t, _mm512_set1_ps(-127.0f));  // exp of a score 127 octaves below the top: 0 for a float
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_mul_ps(_mm512_sub_ps(t, n), _mm512_set1_ps(0.69314718056f));  // f · ln 2
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

}  // namespace disranker
