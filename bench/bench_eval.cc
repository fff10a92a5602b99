// Cost of the evaluation layer, as ratios against a baseline in the same run: reading a run file is compared with
// only splitting the same file into lines (the I/O floor), and evaluating is compared with reading.
// Input: TREC DL 2019's BM25 top-100 (4,300 lines) replicated to 100 queries x 1,000 documents by default.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/files.h"
#include "data/qrels.h"
#include "data/run.h"
#include "eval/metrics.h"

namespace {

// A synthetic run and qrels (100 queries x 1,000 documents, a quarter judged with grades 0-3), written once.
struct Fixture {
  std::string run_path, qrels_path;
  Fixture() {
    const auto dir = std::filesystem::temp_directory_path() / "disranker-bench-eval";
    std::filesystem::create_directories(dir);
    run_path = (dir / "run.txt").string();
    qrels_path = (dir / "qrels.txt").string();
    std::mt19937 rng(7);
    std::ofstream run(run_path), qrels(qrels_path);
    for (int q = 0; q < 100; ++q) {
      for (int d = 0; d < 1000; ++d) {
        run << "q" << q << " Q0 doc" << d << ' ' << d + 1 << ' ' << 1000.0 - d + static_cast<double>(rng() % 1000) / 1000.0 << " bench\n";
        if (d % 4 == 0) qrels << "q" << q << " 0 doc" << d << ' ' << rng() % 4 << '\n';
      }
    }
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

void BM_SplitLines_Baseline(benchmark::State& state) {
  for (auto _ : state) {
    std::size_t bytes = 0;
    disranker::for_each_line(fixture().run_path, [&](std::size_t, std::string_view line) { bytes += line.size(); });
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(state.iterations() * 100000);
}
BENCHMARK(BM_SplitLines_Baseline)->Unit(benchmark::kMillisecond);

void BM_ReadRun(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(disranker::read_run(fixture().run_path));
  state.SetItemsProcessed(state.iterations() * 100000);
}
BENCHMARK(BM_ReadRun)->Unit(benchmark::kMillisecond);

void BM_EvaluateDefaultMetrics(benchmark::State& state) {
  const auto run = disranker::read_run(fixture().run_path);
  const auto qrels = disranker::read_qrels(fixture().qrels_path);
  const auto metrics = disranker::default_metrics();
  for (auto _ : state) benchmark::DoNotOptimize(disranker::evaluate(qrels, run, metrics, {}));
  state.SetItemsProcessed(state.iterations() * 100000);
}
BENCHMARK(BM_EvaluateDefaultMetrics)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
