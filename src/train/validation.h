// Validation at the end of an epoch: score a dev set's candidates with the model being trained and evaluate
// them (NDCG@10, PNR, MRR by default), exactly as `disranker score` + `disranker eval` would.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/docs.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"
#include "eval/metrics.h"
#include "model/ranker.h"

namespace disranker {

struct ValidationSet {
  std::string name;  // for logs: the directory name, e.g. "wikiqa-dev"
  Queries queries;
  Docs docs;
  Qrels qrels;       // queries without a relevant document already removed when require_relevant
  Run candidates;    // the run to rerank (or candidates_from_qrels)
  std::vector<MetricSpec> metrics;
  EvalOptions eval_options;
};

// Loads a set in the shared layout (queries.tsv, docs.tsv, qrels.txt) with candidates from `run_path` (empty:
// the judged documents). require_relevant keeps only queries with a document at grade >= rel_level (WikiQA's
// protocol). metrics: trec_eval names (empty: ndcg_cut.10, pnr, recip_rank).
ValidationSet load_validation_set(const std::string& dir, const std::string& run_path, bool require_relevant,
                                  const std::vector<std::string>& metrics = {}, int rel_level = 1);

// Metric name → value over the set.
std::map<std::string, double> validate(Ranker& ranker, const ValidationSet& set, std::size_t batch_size = 64);

}  // namespace disranker
