#include "data/run.h"

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/files.h"
#include "data/tsv.h"

namespace disranker {

bool ranks_before(const RunEntry& a, const RunEntry& b) {
  if (a.score != b.score) return a.score > b.score;
  return a.docid > b.docid;
}

void Run::sort_by_score() {
  for (auto& [qid, entries] : by_query) std::sort(entries.begin(), entries.end(), ranks_before);
}

std::size_t Run::num_entries() const {
  std::size_t n = 0;
  for (const auto& [qid, entries] : by_query) n += entries.size();
  return n;
}

Run read_run(const std::string& path) {
  Run run;
  bool have_tag = false;
  std::unordered_map<std::string, std::unordered_set<std::string>> seen;
  read_whitespace_columns(path, {"qid", "Q0", "docid", "rank", "score", "tag"}, [&](const TsvRow& row) {
    const std::string qid(row.fields[0]);
    const std::string docid(row.fields[2]);
    parse_int_field(row.fields[3], path, row.line, "rank");
    const double score = parse_double_field(row.fields[4], path, row.line, "score");
    if (!seen[qid].insert(docid).second) {
      throw Error(path, row.line, "docid", "duplicate document '" + docid + "' for query '" + qid + "'");
    }
    if (!have_tag) run.tag = std::string(row.fields[5]), have_tag = true;
    run.by_query[qid].push_back(RunEntry{docid, score});
  });
  run.sort_by_score();
  return run;
}

void write_run(const std::string& path, const Run& run) {
  check_writable_field(run.tag, path, "tag");
  if (run.tag.empty() || run.tag.find(' ') != std::string::npos) {
    throw Error(path, 0, "tag", "run tag must be one non-empty word: '" + run.tag + "'");
  }
  Run sorted = run;
  sorted.sort_by_score();
  write_file_atomically(path, [&](std::ostream& out) {
    char score[40];
    for (const auto& [qid, entries] : sorted.by_query) {
      std::size_t rank = 0;
      for (const auto& e : entries) {
        std::snprintf(score, sizeof score, "%.17g", e.score);
        out << qid << " Q0 " << e.docid << ' ' << ++rank << ' ' << score << ' ' << sorted.tag << '\n';
      }
    }
  });
}

}  // namespace disranker
