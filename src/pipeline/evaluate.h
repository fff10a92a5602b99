// Evaluation of the pipeline's systems on one dataset: the metrics of every run and paired randomization
// tests against reference systems, as a report.json "evaluations" entry (docs/report.md), and the simulated
// online experiment of the students against a reference (its "online" entry). No libtorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace disranker::pipeline {

struct EvalSet {
  std::string name;               // "wikiqa-dev"
  std::string qrels;              // path
  int rel_level = 1;              // binary metrics: relevant iff grade >= rel_level (TREC DL: 2)
  bool require_relevant = false;  // only queries with a relevant document (WikiQA)
  std::string note;               // how the candidates were made, shown under the table
  std::string queries;            // queries TSV path: the queries simulated users issue (online only)
};

struct SystemRun {
  std::string name;  // "student (distilled)"
  std::string run;   // TREC run path
};

// Metrics of each system (in order) on the set; for each system and each reference named in `against`
// (other than itself), a two-sided paired randomization test on every metric. The note gets the number of
// evaluated queries appended.
nlohmann::json evaluate_set(const EvalSet& set, const std::vector<SystemRun>& systems,
                            const std::vector<std::string>& metric_names,
                            const std::vector<std::string>& against, std::size_t permutations = 10000);

// The config's [pipeline.online] section (configs/quickstart.toml documents each key; read_online_settings
// in plan.h reads it). Not [online]: CLI11 hands that section to the `disranker online` command's own flags.
struct OnlineSettings {
  bool enabled = true;
  std::string click_model = "dbn";  // pbm, cascade or dbn (data/click_model.h)
  // 20,000 users x 14 days is ~280k A/B pages and as many interleaved impressions per system: about 0.5 s
  // per system and set on 2 cores, and 95% intervals of about +-0.3% on page CTR (TREC DL 2019).
  std::size_t users = 20000;
  std::size_t days = 14;
  std::size_t depth = 10;  // results per page
  std::uint64_t seed = 0;
  std::size_t bootstrap = 1000;    // resamples of the A/B intervals (0: none)
  std::string reference = "BM25";  // A, the control every simulated system (B) is compared to
};

// The simulated online experiment (online/simulation.h, docs/online.md) of each of `systems` (B) against
// `reference` (A) on the set: an A/B test and team-draft interleaving whose clicks follow the click model
// driven by the set's qrels grades (unjudged: 0; the qrels filtered as evaluate_set filters them), with the
// offline NDCG@10 difference on the same qrels beside it. Returns the "online" entry of the set's evaluation
// (docs/report.md), or null when no judgment has a positive grade (the click model would see every page
// alike). A function of the settings and the inputs: `threads` (0: all cores) does not change it.
nlohmann::json simulate_online(const EvalSet& set, const SystemRun& reference,
                               const std::vector<SystemRun>& systems, const OnlineSettings& settings,
                               std::size_t threads);

}  // namespace disranker::pipeline
