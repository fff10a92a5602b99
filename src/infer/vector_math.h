// Element-wise activations over float arrays for the inference engine. GELU's erf (and tanh) dominate the
// non-GEMM time of a BERT forward when computed one float at a time. gelu_erf computes erf inline (a short
// polynomial, 16 floats per step with AVX-512, 8 with AVX2 and FMA); gelu_tanh and softmax use glibc's vector
// math library (libmvec: 8 floats per call, ≤ 4 ulp) with AVX2 and FMA; all chosen at run time, the scalar
// libm functions otherwise.
#pragma once

#include <cstddef>

namespace disranker {

// x = 0.5 x (1 + erf(x / √2)): the exact GELU (transformers' "gelu").
void gelu_erf(float* x, std::size_t n);
// x = 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))): transformers' "gelu_new" / "gelu_pytorch_tanh".
void gelu_tanh(float* x, std::size_t n);
// x = softmax(scale · x) for scale > 0, in place (the maximum subtracted first: no overflow).
void softmax(float* x, std::size_t n, float scale);
// Whether the vector (AVX2) path is in use: the CPU has AVX2 and FMA, and oneDNN's ISA includes AVX2.
bool vector_math_uses_avx2();
// Whether the engine's AVX-512 row passes and kernels run (the one check they share): the CPU has AVX-512F
// and oneDNN's ISA includes AVX-512. oneDNN's ISA follows the CPU unless ONEDNN_MAX_CPU_ISA caps it, so
// ONEDNN_MAX_CPU_ISA=AVX2 runs the engine's AVX2 paths end to end on an AVX-512 CPU (tests, A/B runs).
bool vector_math_uses_avx512();

}  // namespace disranker
