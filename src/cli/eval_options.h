// Options shared by `eval` and `compare`: which metrics, trec_eval's flags, and the qrels filter.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "data/qrels.h"
#include "eval/metrics.h"

namespace disranker::cli {

struct EvalFlags {
  std::vector<std::string> metric_names;
  std::string gain = "linear";
  std::size_t depth = 0;
  int rel_level = 1;
  bool skip_missing = false;
  bool require_relevant = false;

  void add_to(CLI::App& command);
  std::vector<MetricSpec> metrics() const;  // the defaults when none were given
  EvalOptions options() const;
  // Reads the qrels and applies --require-relevant (drops queries with no document at or above --rel-level).
  Qrels load_qrels(const std::string& path) const;
};

}  // namespace disranker::cli
