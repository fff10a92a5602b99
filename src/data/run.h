// TREC runs: `qid Q0 docid rank score tag`, whitespace-separated. Like trec_eval, the rank column is read but
// not used for ordering: documents are ordered by score (descending), ties by docid (descending).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace disranker {

struct RunEntry {
  std::string docid;
  double score = 0;
};

struct Run {
  // qid -> retrieved documents, in file order until sort_by_score() is called.
  std::map<std::string, std::vector<RunEntry>> by_query;
  std::string tag = "disranker";

  // Orders every query's documents as trec_eval does: score descending, then docid descending (strcmp order).
  void sort_by_score();
  std::size_t num_entries() const;
};

// trec_eval's ordering of two entries of one query.
bool ranks_before(const RunEntry& a, const RunEntry& b);

// Reads a run; rejects duplicate (qid, docid) pairs, non-numeric or non-finite scores and ranks, and mixed
// tags are allowed (the first one is kept as the run's tag). The result is sorted by score.
Run read_run(const std::string& path);

// Writes the run sorted by score with ranks 1..n and the run's tag. Scores are printed with the shortest text
// that round-trips the double exactly. Rejects, before touching the file, what read_run would reject: empty
// ids or ids (and a tag) with whitespace, non-finite scores and a document listed twice for one query.
void write_run(const std::string& path, const Run& run);

}  // namespace disranker
