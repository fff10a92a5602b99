// Ranking metrics with trec_eval's names and semantics (trec_eval 9.x, run as `trec_eval -c`):
//   ndcg, ndcg_cut.K   graded gain (linear: the grade; --gain exp: 2^grade - 1), log2(rank + 1) discount, ideal
//                      ranking built from every judged document of the query (not only the retrieved ones)
//   map                mean average precision over the num_rel relevant documents of the query
//   recip_rank         1 / rank of the first relevant document (0 when none is retrieved)
//   mrr_cut.K          recip_rank counting only the top K (MS MARCO's MRR@10; not a trec_eval name)
//   P.K, recall.K      precision and recall of the top K (P.K divides by K even when fewer are retrieved)
//   pnr, pnr_macro     positive-negative ratio, see below
// "Relevant" for the binary metrics means grade >= rel_level (default 1; TREC DL uses 2). Documents are ordered by
// score descending, ties by docid descending, exactly as trec_eval orders them; the run's rank column is ignored.
//
// PNR: for each query, every pair of retrieved, judged documents with different grades is concordant when the
// higher-graded one has the higher score and discordant when it has the lower score; a tied score counts half to
// each. `pnr` (micro) is sum(concordant) / sum(discordant) over all queries; `pnr_macro` is the mean over queries
// that have at least one such pair of concordant / max(discordant, 1). Per-query values of both are
// concordant / max(discordant, 1). Micro PNR is the stable one: macro is inflated by queries with few pairs.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "data/qrels.h"
#include "data/run.h"

namespace disranker {

enum class GainMode { kLinear, kExponential };

struct EvalOptions {
  int rel_level = 1;             // binary metrics: relevant iff grade >= rel_level
  GainMode gain = GainMode::kLinear;
  std::size_t max_depth = 0;     // trec_eval -M: only the top max_depth documents of each query count (0 = all)
  bool missing_as_zero = true;   // trec_eval -c: qrels queries absent from the run score 0 instead of being dropped
};

struct MetricSpec {
  enum class Kind { kNdcg, kNdcgCut, kMap, kRecipRank, kMrrCut, kPrecision, kRecall, kPnr, kPnrMacro };
  Kind kind = Kind::kMap;
  std::size_t cutoff = 0;  // K for the *.K metrics
  std::string name;        // as the user wrote it, e.g. "ndcg_cut.10"
};

// Parses "ndcg_cut.10", "map", "P.5", ... Throws Error listing the known metrics for an unknown name.
MetricSpec parse_metric(const std::string& name);
// The metrics `disranker eval` reports when none are asked for.
std::vector<MetricSpec> default_metrics();

struct PnrCounts {
  double concordant = 0;
  double discordant = 0;
  std::size_t pairs = 0;
};

struct QueryEvaluation {
  std::string qid;
  bool in_run = false;
  PnrCounts pnr;
  // One value per metric, in the order of Evaluation::metrics. NaN where a metric is undefined for the query
  // (PNR of a query with no pair of different grades); such values are left out of per-query output and means.
  std::vector<double> values;
};

struct Evaluation {
  std::vector<MetricSpec> metrics;
  std::vector<QueryEvaluation> queries;  // ordered by qid
  std::vector<double> summary;           // the "all" row: mean over queries (micro ratio for pnr)
};

Evaluation evaluate(const Qrels& qrels, const Run& run, const std::vector<MetricSpec>& metrics,
                    const EvalOptions& options);

// The "all" value of one metric over a set of per-query results (mean, or the micro ratio for pnr). Exposed so
// that the significance test can aggregate permuted per-query results the same way.
double aggregate(const MetricSpec& metric, std::size_t metric_index, const std::vector<const QueryEvaluation*>& queries);

}  // namespace disranker
