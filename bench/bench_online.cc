// bench_online: how fast `disranker online` simulates impressions (bench/README.md, docs/online.md).
//   build/bench/bench_online [DATA_DIR] [USERS] [DAYS]
// On TREC DL 2019 (BM25 as A, SPLADE++ as B, the pages of all 43 judged queries) it times, best of 3, at 1
// and 2 threads: the click model alone on the same pages (the baseline: sampling clicks and dwell times is
// the floor of any simulation), the A/B traffic (users, activity, buckets, clicks), interleaved traffic (a
// team draft per impression on top) and the sensitivity curve's repeated experiments, for each click model.
// Prints a Markdown table of impressions per second and the ratio of each to the baseline.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "core/files.h"
#include "core/random.h"
#include "data/click_model.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"
#include "online/simulation.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace disranker;

// Best of `repeats` wall times of `work`, which returns the number of impressions it simulated.
std::pair<double, std::size_t> best_of(int repeats, const std::function<std::size_t()>& work) {
  double best = 1e300;
  std::size_t impressions = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    impressions = work();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return {best, impressions};
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string dir = argc > 1 ? argv[1] : (data_dir() / "trec-dl19").string();
    const std::size_t users = argc > 2 ? std::stoul(argv[2]) : 200000;
    const std::size_t days = argc > 3 ? std::stoul(argv[3]) : 5;
    const Qrels qrels = read_qrels(dir + "/qrels.txt");
    const Queries queries = read_queries(dir + "/queries.tsv");
    const Run a = read_run(dir + "/run.BM25.txt");
    const Run b = read_run(dir + "/run.SPLADE_P_P_ENSEMBLE_DISTIL.txt");
    const auto experiment = online::prepare_experiment(qrels, queries, a, b, 10, nullptr);
    std::printf(
        "bench_online: TREC DL 2019, %zu queries, BM25 (A) vs SPLADE++ (B), top 10; %zu users x %zu days "
        "(about %zu impressions per A/B or interleaving run); %u hardware threads; best of 3\n\n",
        experiment.queries.size(), users, days, users * days, std::thread::hardware_concurrency());
    std::printf(
        "| click model | what | threads | impressions | time | impressions/s | ratio to baseline |\n");
    std::printf("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
    for (const auto kind : {ClickModelKind::kPbm, ClickModelKind::kCascade, ClickModelKind::kDbn}) {
      ClickModelOptions model_options;
      model_options.kind = kind;
      const ClickModel model(model_options);
      online::TrafficOptions traffic;
      traffic.users = users;
      traffic.days = days;
      traffic.seed = 1;
      const std::size_t baseline_impressions = users * days;
      // The baseline: the click model on the experiment's pages, query by query, nothing else (one thread).
      const auto [base_seconds, base_count] = best_of(3, [&] {
        SplitMix64 rng(7);
        std::vector<SimulatedClick> clicks(10);
        std::size_t sink = 0;
        for (std::size_t i = 0; i < baseline_impressions; ++i) {
          const auto& page = experiment.queries[i % experiment.queries.size()];
          const auto& grades = (i & 1) != 0 ? page.grades_b : page.grades_a;
          model.simulate_into(grades, rng, std::span<SimulatedClick>(clicks.data(), grades.size()));
          sink += clicks[0].clicked ? 1 : 0;
        }
        if (sink == 0) std::fprintf(stderr, " ");  // keep the loop from being optimised away
        return baseline_impressions;
      });
      const double base_rate = static_cast<double>(base_count) / base_seconds;
      const std::string name = click_model_kind_name(kind);
      auto row = [&](const char* what, std::size_t threads, double seconds, std::size_t impressions) {
        const double rate = static_cast<double>(impressions) / seconds;
        std::printf("| %s | %s | %zu | %zu | %.3f s | %.2f M | %.2f |\n", name.c_str(), what, threads,
                    impressions, seconds, rate / 1e6, rate / base_rate);
      };
      row("click model alone (baseline)", 1, base_seconds, base_count);
      for (const std::size_t threads : {std::size_t{1}, std::size_t{2}}) {
        traffic.threads = threads;
        const auto [ab_seconds, ab_count] = best_of(3, [&] {
          std::size_t pages = 0;
          for (const auto& user : online::simulate_ab_users(experiment, model, traffic)) pages += user.pages;
          return pages;
        });
        row("A/B traffic", threads, ab_seconds, ab_count);
        const auto [il_seconds, il_count] =
            best_of(3, [&] { return online::simulate_interleaving(experiment, model, traffic).impressions; });
        row("interleaved traffic", threads, il_seconds, il_count);
        // The CLI's 7 default budgets (100 .. 100k impressions) with 20 repetitions instead of 100: 5.8 M
        // impressions per curve.
        online::SensitivityOptions sensitivity;
        sensitivity.repetitions = 20;
        const auto [s_seconds, s_count] = best_of(3, [&] {
          return online::simulate_sensitivity(experiment, model, sensitivity, 1, threads).impressions;
        });
        row("sensitivity curve (7 budgets x 20)", threads, s_seconds, s_count);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_online: %s\n", e.what());
    return 1;
  }
  return 0;
}
