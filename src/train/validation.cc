// Validation sets and their evaluation: `disranker score` + `disranker eval` in one call. See validation.h.
#include "train/validation.h"

#include <filesystem>
#include <iostream>

#include "core/error.h"
#include "infer/score_pool.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;

std::string set_name(const std::string& dir) {
  auto path = fs::path(dir).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();  // "wikiqa-dev/"
  return path.filename().string();
}

}  // namespace

ValidationSet load_validation_set(const std::string& dir, const std::string& run_path, bool require_relevant,
                                  const std::vector<std::string>& metrics, int rel_level) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) throw Error(dir, 0, "", "validation set directory not found");
  ValidationSet set;
  set.name = set_name(dir);
  set.queries = read_queries((root / "queries.tsv").string());
  set.docs = read_docs((root / "docs.tsv").string(), /*allow_empty=*/true);
  if (!set.docs.empty_ids().empty()) {
    std::cerr << "validation: " << set.name << ": " << set.docs.empty_ids().size()
              << " documents have neither title nor text (scored as empty)\n";
  }
  const auto qrels_path = (root / "qrels.txt").string();
  set.qrels = read_qrels(qrels_path);

  if (require_relevant) {
    const std::size_t before = set.qrels.by_query.size();
    keep_queries_with_relevant(set.qrels, rel_level);
    const std::size_t dropped = before - set.qrels.by_query.size();
    std::cerr << "validation: " << set.name << ": " << set.qrels.by_query.size()
              << " queries with a document at grade >= " << rel_level << " (" << dropped
              << " without one left out)\n";
  }
  if (set.qrels.by_query.empty()) throw Error(qrels_path, 0, "", "no judged queries to validate on");

  // Only judged queries are scored: the others cannot change any metric.
  const std::string candidates_source = run_path.empty() ? qrels_path : run_path;
  Run all = run_path.empty() ? candidates_from_qrels(set.qrels) : read_run(run_path);
  set.candidates.tag = all.tag;
  for (auto& [qid, entries] : all.by_query) {
    if (!set.qrels.by_query.contains(qid)) continue;
    // Checked here, where the file is known, so that validate() never fails half-way through training.
    if (set.queries.find(qid) == nullptr) {
      throw Error(candidates_source, 0, "qid",
                  "query '" + qid + "' is not in " + (root / "queries.tsv").string());
    }
    for (const auto& entry : entries) {
      if (set.docs.find(entry.docid) == nullptr) {
        throw Error(
            candidates_source, 0, "docid",
            "document '" + entry.docid + "' (query '" + qid + "') is not in " + (root / "docs.tsv").string());
      }
    }
    set.candidates.by_query.emplace(qid, std::move(entries));
  }

  if (metrics.empty()) {
    for (const auto* name : {"ndcg_cut.10", "pnr", "recip_rank"}) set.metrics.push_back(parse_metric(name));
  } else {
    for (const auto& name : metrics) set.metrics.push_back(parse_metric(name));
  }
  set.eval_options.rel_level = rel_level;
  return set;
}

std::map<std::string, double> validate(Ranker& ranker, const ValidationSet& set, std::size_t batch_size) {
  ScorePoolOptions options;
  options.batch_size = batch_size;
  options.quiet = true;
  options.group = &dist::world();  // every rank validates (a share of the batches) at the same step
  const Run run =
      score_pool(ranker, set.queries, set.docs, set.candidates, options, set.name + " candidates");
  const Evaluation evaluation = evaluate(set.qrels, run, set.metrics, set.eval_options);
  std::map<std::string, double> out;
  for (std::size_t i = 0; i < evaluation.metrics.size(); ++i)
    out[evaluation.metrics[i].name] = evaluation.summary[i];
  return out;
}

}  // namespace disranker
