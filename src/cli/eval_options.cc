#include "cli/eval_options.h"

#include <algorithm>

namespace disranker::cli {

void EvalFlags::add_to(CLI::App& command) {
  command.add_option(
      "-m,--metric", metric_names,
      "Metric, repeatable: ndcg, ndcg_cut.K, map, recip_rank, mrr_cut.K, P.K, recall.K, pnr, pnr_macro "
      "(default: ndcg_cut.5 ndcg_cut.10 mrr_cut.10 map P.10 recall.100 pnr)");
  command.add_option("--gain", gain, "NDCG gain: linear (the grade, as trec_eval) or exp (2^grade - 1)")
      ->check(CLI::IsMember({"linear", "exp"}))
      ->capture_default_str();
  command
      .add_option("-M,--depth", depth,
                  "Use only the top K documents of each query, as trec_eval -M (0 = all)")
      ->capture_default_str();
  command
      .add_option("-l,--rel-level", rel_level,
                  "Binary metrics count a document as relevant when its grade >= this (TREC DL uses 2)")
      ->capture_default_str();
  command.add_flag("--skip-missing", skip_missing,
                   "Drop qrels queries that the run lacks (trec_eval without -c); by default they score 0");
  command.add_flag("--require-relevant", require_relevant,
                   "Evaluate only queries with at least one relevant judgment (the WikiQA convention)");
}

std::vector<MetricSpec> EvalFlags::metrics() const {
  if (metric_names.empty()) return default_metrics();
  std::vector<MetricSpec> specs;
  for (const auto& name : metric_names) specs.push_back(parse_metric(name));
  return specs;
}

EvalOptions EvalFlags::options() const {
  EvalOptions options;
  options.rel_level = rel_level;
  options.gain = gain == "exp" ? GainMode::kExponential : GainMode::kLinear;
  options.max_depth = depth;
  options.missing_as_zero = !skip_missing;
  return options;
}

Qrels EvalFlags::load_qrels(const std::string& path) const {
  Qrels qrels = read_qrels(path);
  if (require_relevant) keep_queries_with_relevant(qrels, rel_level);
  return qrels;
}

}  // namespace disranker::cli
