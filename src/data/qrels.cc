#include "data/qrels.h"

#include <algorithm>
#include <ostream>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "data/run.h"
#include "data/tsv.h"

namespace disranker {

const int* Qrels::grade(const std::string& qid, const std::string& docid) const {
  const auto q = by_query.find(qid);
  if (q == by_query.end()) return nullptr;
  const auto d = q->second.find(docid);
  return d == q->second.end() ? nullptr : &d->second;
}

std::size_t Qrels::num_judgments() const {
  std::size_t n = 0;
  for (const auto& [qid, docs] : by_query) n += docs.size();
  return n;
}

Qrels read_qrels(const std::string& path) {
  Qrels qrels;
  read_whitespace_columns(path, {"qid", "iteration", "docid", "grade"}, [&](const TsvRow& row) {
    const std::string qid(row.fields[0]);
    const std::string docid(row.fields[2]);
    const auto grade = parse_int_field(row.fields[3], path, row.line, "grade");
    if (grade < -1000 || grade > 1000) {
      throw Error(path, row.line, "grade", "grade out of range [-1000, 1000]: " + std::to_string(grade));
    }
    const auto [it, inserted] = qrels.by_query[qid].emplace(docid, static_cast<int>(grade));
    if (!inserted)
      throw Error(path, row.line, "docid", "duplicate judgment for query '" + qid + "', doc '" + docid + "'");
  });
  return qrels;
}

void write_qrels(const std::string& path, const Qrels& qrels) {
  // Everything the reader would reject is rejected before the file is touched.
  for (const auto& [qid, docs] : qrels.by_query) {
    check_writable_id(qid, path, "qid");
    for (const auto& [docid, grade] : docs) {
      check_writable_id(docid, path, "docid");
      if (grade < -1000 || grade > 1000) {
        throw Error(path, 0, "grade",
                    "grade out of range [-1000, 1000] for query '" + qid + "', doc '" + docid +
                        "': " + std::to_string(grade));
      }
    }
  }
  write_file_atomically(path, [&](std::ostream& out) {
    for (const auto& [qid, docs] : qrels.by_query) {
      // Sorted by docid so that the file is deterministic whatever the hash map's order.
      std::vector<std::pair<std::string, int>> sorted(docs.begin(), docs.end());
      std::sort(sorted.begin(), sorted.end());
      for (const auto& [docid, grade] : sorted) out << qid << " 0 " << docid << ' ' << grade << '\n';
    }
  });
}

void keep_queries_with_relevant(Qrels& qrels, int rel_level) {
  std::erase_if(qrels.by_query, [&](const auto& entry) {
    return std::none_of(entry.second.begin(), entry.second.end(),
                        [&](const auto& judgment) { return judgment.second >= rel_level; });
  });
}

Run judged_candidates(const Qrels& qrels) {
  Run run;
  for (const auto& [qid, judged] : qrels.by_query) {
    auto& entries = run.by_query[qid];
    for (const auto& [docid, grade] : judged) entries.push_back({docid, 0.0});
  }
  run.sort_by_score();  // a stable order (docid descending) instead of the hash map's
  return run;
}

}  // namespace disranker
