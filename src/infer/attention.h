// One attention head of one sequence on AVX-512 (or AVX2), for the fast engine (src/infer/bert_engine.cc):
//   out[r] = softmax(scale · q[r] Kᵀ) V   for each query row r,
// the three products fused per block of query rows so that nothing leaves L1/L2: the keys are transposed
// once into the workspace (Kᵀ, one 16-key vector per load), a block of scores is computed in registers, the
// softmax exponentiates it in place and the block's output is accumulated from the values directly.
//
// Why not two GEMMs: per (sequence, head) the products are small (≈ 95 keys × 32 or 64 dimensions), where a
// library GEMM's per-call setup and packing cost as much as the arithmetic; this kernel measured ≈ 2× faster
// than two oneDNN sgemm calls with a softmax between them (bench/bench_infer, see docs/inference.md).
#pragma once

#include <cstdint>

namespace disranker {

struct AttentionHead {
  const float* query = nullptr;  // rows × dim, rows query_ld apart
  std::int64_t query_ld = 0;
  const float* key = nullptr;  // length × dim, rows kv_ld apart
  const float* value = nullptr;
  std::int64_t kv_ld = 0;
  std::int64_t rows = 0, length = 0, dim = 0;
  float scale = 1.0f;    // applied to the scores before the softmax (1/√dim in BERT)
  float* out = nullptr;  // rows × dim, rows out_ld apart
  std::int64_t out_ld = 0;
  // Q Kᵀ and P V from bf16 operands (rounded from the float inputs; float accumulation and softmax):
  // twice the products per instruction. attention_bf16_supports() must hold.
  bool bf16 = false;
};

// Whether attention_head runs heads of `dim` dimensions on this CPU: AVX-512F, or AVX2 and FMA, and dim 16,
// 32 or 64 (BERT's usual head sizes); otherwise the engine uses its GEMM path.
bool attention_kernel_supports(std::int64_t dim);

// Whether the CPU runs the bf16 products (AVX512_BF16).
bool attention_bf16_supports();

// Floats of workspace attention_head needs for `length` keys of `dim` dimensions.
std::int64_t attention_workspace_floats(std::int64_t length, std::int64_t dim);

// Computes one head; attention_kernel_supports(head.dim) must hold and length ≥ 1. The AVX-512 kernel where
// the CPU has AVX-512F, else attention_head_avx2.
void attention_head(const AttentionHead& head, float* workspace);

// The same kernel on AVX2 + FMA (infer/attention_avx2.cc; float32 products only, head.bf16 is ignored), for
// CPUs without AVX-512. Callable directly so that the tests run it on AVX-512 CPUs too:
// vector_math_uses_avx2() and dim ∈ {16, 32, 64} must hold.
void attention_head_avx2(const AttentionHead& head, float* workspace);

}  // namespace disranker
