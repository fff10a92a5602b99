// Evaluation of the pipeline's systems on one dataset: the metrics of every run and paired randomization
// tests against reference systems, as a report.json "evaluations" entry (docs/report.md). No libtorch.
#pragma once

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

}  // namespace disranker::pipeline
