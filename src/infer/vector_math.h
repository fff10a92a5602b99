// Element-wise activations over float arrays for the inference engine. GELU's erf (and tanh) dominate the
// non-GEMM time of a BERT forward when computed one float at a time; these use glibc's vector math library
// (libmvec: 8 floats per call, ≤ 4 ulp) when the CPU has AVX2 and FMA, chosen at run time, and the scalar
// libm functions otherwise; with AVX-512, gelu_erf computes erf inline (16 floats per step).
#pragma once

#include <cstddef>

namespace disranker {

// x = 0.5 x (1 + erf(x / √2)): the exact GELU (transformers' "gelu").
void gelu_erf(float* x, std::size_t n);
// x = 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))): transformers' "gelu_new" / "gelu_pytorch_tanh".
void gelu_tanh(float* x, std::size_t n);
// x = softmax(scale · x) for scale > 0, in place (the maximum subtracted first: no overflow).
void softmax(float* x, std::size_t n, float scale);
// Whether the vector (AVX2) path is in use on this CPU.
bool vector_math_uses_avx2();
// Whether the CPU has AVX-512F: the engine's AVX-512 row passes and kernels run (the one check they share).
bool vector_math_uses_avx512();

}  // namespace disranker
