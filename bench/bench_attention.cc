// One sequence's self-attention, all heads, one thread: the fast engine's fused kernel (infer/attention.h;
// AVX-512, or its AVX2 port on CPUs without AVX-512) against the path it replaced, two oneDNN sgemm calls per
// head with a vectorized softmax between them (the engine's fallback for other head sizes and CPUs). Reports
// GFLOP/s (4 · length² · hidden FLOPs per sequence: Q Kᵀ and P V) as a counter; the ratio of the two rows is
// the kernel's gain. A third row runs the kernel with bf16 products (AttentionHead::bf16, the int8 engine's
// choice).
//
// Usage: build/bench/bench_attention [--benchmark_filter=...]
// Arguments of each row: length (tokens), head dimension; hidden = 12 heads × dimension (MiniLM-L6: 32,
// BERT-base: 64); the TREC DL 2019 BM25 pairs have a mean of ≈ 95 tokens (p50 85, p90 147) at a 256 cap.
#include <benchmark/benchmark.h>
#include <dnnl.h>

#include <cmath>
#include <random>
#include <vector>

#include "infer/attention.h"
#include "infer/vector_math.h"

namespace {

using namespace disranker;

constexpr std::int64_t kHeads = 12;

struct Sequence {
  std::int64_t length, dim, hidden;
  std::vector<float> qkv, out, workspace;
  Sequence(std::int64_t l, std::int64_t d) : length(l), dim(d), hidden(kHeads * d) {
    std::mt19937 random(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    qkv.resize(static_cast<std::size_t>(length * 3 * hidden));
    for (float& v : qkv) v = normal(random);
    out.resize(static_cast<std::size_t>(length * hidden));
    workspace.resize(
        static_cast<std::size_t>(std::max(attention_workspace_floats(length, dim), length * length)));
  }
  AttentionHead head(std::int64_t h) {
    AttentionHead job;
    job.query = qkv.data() + h * dim, job.query_ld = 3 * hidden;
    job.key = qkv.data() + hidden + h * dim, job.value = qkv.data() + 2 * hidden + h * dim;
    job.kv_ld = 3 * hidden, job.rows = length, job.length = length, job.dim = dim;
    job.scale = 1.0f / std::sqrt(static_cast<float>(dim));
    job.out = out.data() + h * dim, job.out_ld = hidden;
    return job;
  }
};

void report(benchmark::State& state, const Sequence& s) {
  const double flops = 4.0 * static_cast<double>(s.length * s.length * s.hidden);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

void BM_AttentionKernel(benchmark::State& state) {
  Sequence s(state.range(0), state.range(1));
  if (!attention_kernel_supports(s.dim)) return state.SkipWithError("neither AVX-512 nor AVX2 on this CPU");
  for (auto _ : state) {
    for (std::int64_t h = 0; h < kHeads; ++h) attention_head(s.head(h), s.workspace.data());
    benchmark::DoNotOptimize(s.out.data());
  }
  report(state, s);
}

// The same kernel with bf16 products (what the int8 engine runs where the CPU has AVX512_BF16).
void BM_AttentionKernelBf16(benchmark::State& state) {
  Sequence s(state.range(0), state.range(1));
  if (!attention_kernel_supports(s.dim) || !attention_bf16_supports())
    return state.SkipWithError("no AVX512_BF16 on this CPU");
  for (auto _ : state) {
    for (std::int64_t h = 0; h < kHeads; ++h) {
      AttentionHead job = s.head(h);
      job.bf16 = true;
      attention_head(job, s.workspace.data());
    }
    benchmark::DoNotOptimize(s.out.data());
  }
  report(state, s);
}

void BM_AttentionTwoSgemm(benchmark::State& state) {
  Sequence s(state.range(0), state.range(1));
  for (auto _ : state) {
    for (std::int64_t h = 0; h < kHeads; ++h) {
      const AttentionHead job = s.head(h);
      float* scores = s.workspace.data();
      dnnl_sgemm('N', 'T', job.rows, job.length, job.dim, 1.0f, job.query, job.query_ld, job.key, job.kv_ld,
                 0.0f, scores, job.length);
      for (std::int64_t r = 0; r < job.rows; ++r)
        softmax(scores + r * job.length, static_cast<std::size_t>(job.length), job.scale);
      dnnl_sgemm('N', 'N', job.rows, job.dim, job.length, 1.0f, scores, job.length, job.value, job.kv_ld,
                 0.0f, job.out, job.out_ld);
    }
    benchmark::DoNotOptimize(s.out.data());
  }
  report(state, s);
}

void lengths(benchmark::internal::Benchmark* b) {
  for (std::int64_t dim : {32, 64})
    for (std::int64_t length : {32, 95, 128, 147, 192, 256}) b->Args({length, dim});
}

BENCHMARK(BM_AttentionKernel)->Apply(lengths);
BENCHMARK(BM_AttentionKernelBf16)->Apply(lengths);
BENCHMARK(BM_AttentionTwoSgemm)->Apply(lengths);

}  // namespace

int main(int argc, char** argv) {
  // One thread: the engine runs each (sequence, head) inside its own parallel loop.
  setenv("OMP_NUM_THREADS", "1", 0);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
