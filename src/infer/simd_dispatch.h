// Picks a kernel instantiated for a compile-time count (rows or vectors of a register block) from a run-time
// count: the tails of the fused kernels (infer/attention.cc, infer/vnni_gemm.cc) keep their accumulators in
// registers only when every loop bound is a constant.
#pragma once

namespace disranker {

// Calls f.template operator()<n>() for a run-time n in [1, kMax]; nothing for other n.
template <int kMax, class F>
void dispatch_count(int n, F&& f) {
  if constexpr (kMax > 0) {
    if (n == kMax) return f.template operator()<kMax>();
    dispatch_count<kMax - 1>(n, f);
  }
}

}  // namespace disranker
