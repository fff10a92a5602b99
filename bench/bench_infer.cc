// Student inference on the real candidate distribution: the TREC DL 2019 BM25 top-100 of each of its 43
// queries (4,300 pairs), scored by
//   - libtorch eager (the Ranker every training stage uses), padded batches of 100 (one query's candidates,
//   as
//     users often do) and length-sorted batches of 32;
//   - the fast engine (infer/bert_engine.h), fp32 and int8, one call per query (100 candidates, packed);
// at 1 and 2 threads, for each model config given, with the machine's large-sgemm rate (oneDNN, same threads)
// as the peak to compare with. Prints a Markdown table: pairs/s, ms per query (100 candidates), the ratio to
// libtorch padded-100 and the fraction of the GEMM rate (sgemm; for int8, oneDNN's u8s8s32) reached on useful
// FLOPs (every layer for every real, unpadded token: what the model needs, whatever a path computes).
//
// Usage: bench_infer DATA_DIR VOCAB MAX_LENGTH CONFIG.json [CONFIG.json ...]
// env BENCH_QUERIES=N: the first N queries of the run file only, for slow models;
//     BENCH_TOKENS_PER_CALL=N: the engine's BertEngineOptions::tokens_per_call;
//     BENCH_PAIRS_PER_CALL=N: the engine scores each query's candidates N at a time (small requests: with
//     fewer than 4 pairs per thread, one call at a time uses every thread);
//     BENCH_PATHS=TEXT: only the paths whose label contains TEXT (e.g. "engine int8", for quick A/B runs);
//     BENCH_THREADS="1 2": the thread counts;
//     BENCH_NO_KERNELS=1: the engine without its own kernels (oneDNN GEMMs for attention and int8);
//     BENCH_NO_ATTENTION_KERNEL=1: attention on two oneDNN GEMMs per head (fused_attention = false);
//     BENCH_NO_BF16=1: int8 without the bf16 products in attention (BertEngineOptions::bf16_attention);
//     BENCH_JSON=FILE: also append one JSON line per measurement (bench/inference.sh merges them with ONNX
//     Runtime's).
#include <dnnl.h>
#include <omp.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/docs.h"
#include "data/queries.h"
#include "data/run.h"
#include "infer/bert_engine.h"
#include "infer/int8_gemm.h"
#include "model/ranker.h"

namespace {

using namespace disranker;
using Clock = std::chrono::steady_clock;

// Best of `repeats` wall times of fn(), in seconds.
double best_seconds(int repeats, const std::function<void()>& fn) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

double sgemm_gflops(int n) {
  std::vector<float> a(static_cast<std::size_t>(n) * n, 0.5f), b(a), c(a.size());
  dnnl_sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);  // warm-up
  const double s = best_seconds(
      3, [&] { dnnl_sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n); });
  return 2.0 * n * n * static_cast<double>(n) / s / 1e9;
}

// The same for oneDNN's u8×s8→s32 GEMM (VNNI where the CPU has it): the int8 path's peak.
double int8_gemm_gops(int n) {
  std::vector<std::uint8_t> a(static_cast<std::size_t>(n) * n, 100);
  std::vector<std::int8_t> b(a.size(), 50);
  std::vector<std::int32_t> c(a.size());
  const auto run = [&] { gemm_int8(n, n, n, a.data(), n, b.data(), n, c.data(), n); };
  run();  // warm-up
  const double s = best_seconds(3, run);
  return 2.0 * n * n * static_cast<double>(n) / s / 1e9;
}

// Every layer for every real token, plus pooler and classifier.
double useful_flops(const BertConfig& c, const std::vector<std::vector<EncodedPair>>& queries) {
  const double h = static_cast<double>(c.hidden_size), inner = static_cast<double>(c.intermediate_size);
  double total = 0;
  for (const auto& pairs : queries) {
    for (const auto& p : pairs) {
      const auto t = static_cast<double>(p.ids.size());
      total +=
          static_cast<double>(c.num_hidden_layers) * (t * 2 * (4 * h * h + 2 * h * inner) + 4 * t * t * h);
      total += 2 * h * h + 2 * h;
    }
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s DATA_DIR VOCAB MAX_LENGTH CONFIG.json [CONFIG.json ...]\n", argv[0]);
    return 2;
  }
  try {
    const std::string data = argv[1], vocab = argv[2];
    const std::int64_t max_length = std::stoll(argv[3]);
    const auto queries = read_queries(data + "/trec-dl19/queries.tsv");
    const auto docs = read_docs(data + "/trec-dl19/docs.tsv", /*allow_empty=*/true);
    const auto run = read_run(data + "/trec-dl19/run.BM25.txt");
    // The queries in the run file's order (as bench/onnx_runtime.sh takes them, so that BENCH_QUERIES=N and
    // its QUERIES=N pick the same ones).
    std::vector<std::string> run_order;
    {
      std::ifstream in(data + "/trec-dl19/run.BM25.txt");
      std::string line;
      while (std::getline(in, line)) {
        const std::string qid = line.substr(0, line.find_first_of(" \t"));
        if (run_order.empty() || run_order.back() != qid) run_order.push_back(qid);
      }
    }
    const auto tmp = std::filesystem::temp_directory_path() / ("bench_infer_" + std::to_string(::getpid()));
    std::filesystem::create_directories(tmp);

    std::printf(
        "| model | path | threads | pairs/s | ms / query (100 pairs) | vs libtorch padded-100 | %% of GEMM "
        "peak "
        "rate |\n");
    std::printf("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
    std::FILE* json = nullptr;
    if (const char* path = std::getenv("BENCH_JSON")) {
      json = std::fopen(path, "a");
      if (json == nullptr) throw std::runtime_error(std::string("cannot open BENCH_JSON file ") + path);
    }
    for (int i = 4; i < argc; ++i) {
      const std::string config = argv[i];
      const std::string name = std::filesystem::path(config).stem().string();
      RankerCreateOptions options;
      options.max_length = max_length;
      auto ranker = Ranker::create(config, vocab, torch::Device(torch::kCPU), options);
      const std::string dir = (tmp / name).string();
      ranker->save(dir, nlohmann::json::object());
      BertEngineOptions fp32_options;
      if (const char* t = std::getenv("BENCH_TOKENS_PER_CALL")) fp32_options.tokens_per_call = std::stoul(t);
      if (std::getenv("BENCH_NO_KERNELS") != nullptr)
        fp32_options.fused_attention = false, fp32_options.vnni_kernel = false,
        fp32_options.avx2_kernel = false;
      if (std::getenv("BENCH_NO_BF16") != nullptr) fp32_options.bf16_attention = false;
      if (std::getenv("BENCH_NO_ATTENTION_KERNEL") != nullptr) fp32_options.fused_attention = false;
      auto engine = BertEngine::load(dir, max_length, fp32_options);
      BertEngineOptions int8_options = fp32_options;
      int8_options.precision = Precision::kInt8;
      auto int8_engine = BertEngine::load(dir, max_length, int8_options);

      // Each query's candidates, encoded once, in BM25 order.
      std::vector<std::vector<EncodedPair>> per_query;
      std::size_t pairs = 0, tokens = 0;
      const char* limit = std::getenv("BENCH_QUERIES");  // the first N queries only (slow models)
      const std::size_t most_queries = limit != nullptr ? std::stoul(limit) : run.by_query.size();
      for (const std::string& qid : run_order) {
        if (per_query.size() == most_queries) break;
        const auto& entries = run.by_query.at(qid);
        std::vector<EncodedPair> encoded;
        for (const auto& e : entries) {
          const Doc* doc = docs.find(e.docid);
          encoded.push_back(engine->encode(queries.find(qid)->text, doc->title, doc->text));
          tokens += encoded.back().ids.size();
        }
        pairs += encoded.size();
        per_query.push_back(std::move(encoded));
      }
      std::vector<EncodedPair> sorted;
      for (const auto& q : per_query) sorted.insert(sorted.end(), q.begin(), q.end());
      std::stable_sort(sorted.begin(), sorted.end(), [](const EncodedPair& a, const EncodedPair& b) {
        return a.ids.size() < b.ids.size();
      });
      const double flops = useful_flops(engine->config(), per_query);
      std::fprintf(
          stderr, "bench_infer: %s, %zu queries, %zu pairs, %.1f tokens per pair at max_length %lld\n",
          name.c_str(), per_query.size(), pairs, static_cast<double>(tokens) / static_cast<double>(pairs),
          static_cast<long long>(max_length));

      std::vector<int> thread_counts;
      {
        std::istringstream list(std::getenv("BENCH_THREADS") != nullptr ? std::getenv("BENCH_THREADS")
                                                                        : "1 2");
        for (int t = 0; list >> t;) thread_counts.push_back(t);
      }
      const char* per_call = std::getenv("BENCH_PAIRS_PER_CALL");
      const std::size_t pairs_per_call = per_call != nullptr ? std::stoul(per_call) : 0;
      if (pairs_per_call > 0)
        std::fprintf(stderr,
                     "bench_infer: the engine rows score %zu pairs per call, not one call per query\n",
                     pairs_per_call);
      // One engine call per query, or per pairs_per_call of its candidates.
      const auto score_queries = [&](BertEngine& e) {
        for (const auto& q : per_query) {
          const std::span<const EncodedPair> all(q);
          const std::size_t step = pairs_per_call > 0 ? pairs_per_call : all.size();
          for (std::size_t start = 0; start < all.size(); start += step)
            e.score_raw(all.subspan(start, std::min(step, all.size() - start)));
        }
      };
      const std::string only = std::getenv("BENCH_PATHS") != nullptr ? std::getenv("BENCH_PATHS") : "";
      for (int threads : thread_counts) {
        at::set_num_threads(threads);
        omp_set_num_threads(threads);
        const double peak = sgemm_gflops(2048);
        const double int8_peak = int8_gemm_gops(2048);
        const int repeats = 2;
        struct Path {
          const char* label;
          std::function<void()> fn;
          bool int8 = false;
        };
        const std::vector<Path> paths = {
            {"libtorch eager, padded batches of 100",
             [&] {
               for (const auto& q : per_query) ranker->score(q, q.size());
             }},
            {"libtorch eager, length-sorted batches of 32", [&] { ranker->score(sorted, 32); }},
            {"DisRanker engine fp32, one call per query", [&] { score_queries(*engine); }},
            {"DisRanker engine int8, one call per query", [&] { score_queries(*int8_engine); }, true},
        };
        double baseline = 0;
        for (const Path& path : paths) {
          if (std::string(path.label).find(only) == std::string::npos) continue;
          const double s = best_seconds(repeats, path.fn);  // the first run is the warm-up
          const double rate = static_cast<double>(pairs) / s;
          if (baseline == 0) baseline = rate;
          std::printf("| %s | %s | %d | %.1f | %.1f | %.2f | %.0f%% |\n", name.c_str(), path.label, threads,
                      rate, 1000.0 * s / static_cast<double>(per_query.size()), rate / baseline,
                      100.0 * flops / s / 1e9 / (path.int8 ? int8_peak : peak));
          std::fflush(stdout);
          if (json != nullptr) {
            std::fprintf(
                json,
                "{\"model\": \"%s\", \"path\": \"%s\", \"threads\": %d, \"pairs\": %zu, "
                "\"queries\": %zu, \"seconds\": %.6f, \"useful_flops\": %.6g, \"sgemm_gflops\": %.2f, "
                "\"int8_gops\": %.2f, \"max_length\": %lld}\n",
                name.c_str(), path.label, threads, pairs, per_query.size(), s, flops, peak, int8_peak,
                static_cast<long long>(max_length));
            std::fflush(json);
          }
        }
        std::printf("| %s | (oneDNN sgemm 2048³: %.0f GFLOP/s; u8s8s32: %.0f GOP/s) | %d | | | | 100%% |\n",
                    name.c_str(), peak, int8_peak, threads);
      }
    }
    std::filesystem::remove_all(tmp);
    if (json != nullptr) std::fclose(json);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_infer: %s\n", e.what());
    return 1;
  }
}
