// TREC qrels: `qid iteration docid grade`, whitespace-separated. The iteration column is ignored (as
// trec_eval does); a (qid, docid) pair may appear once; grades are integers in [-1000, 1000]. An empty file
// is an empty Qrels. The writer rejects empty ids and ids with whitespace before it touches the file.
#pragma once

#include <map>
#include <string>
#include <unordered_map>

namespace disranker {

struct Qrels {
  // qid -> docid -> grade. Ordered by qid so that per-query output is stable (trec_eval prints qids in
  // order).
  std::map<std::string, std::unordered_map<std::string, int>> by_query;

  // The grade of a document, or nullptr when it was not judged.
  const int* grade(const std::string& qid, const std::string& docid) const;
  std::size_t num_judgments() const;
};

Qrels read_qrels(const std::string& path);
// The judged documents of each query as a run with score 0: the candidates to rerank when a set has no
// first-stage run (WikiQA's candidate sentences are all judged).
struct Run;
Run judged_candidates(const Qrels& qrels);
// Drops the queries with no document graded rel_level or higher (WikiQA's protocol: evaluate only questions
// that have an answer).
void keep_queries_with_relevant(Qrels& qrels, int rel_level);
void write_qrels(const std::string& path, const Qrels& qrels);

}  // namespace disranker
