#include "data/run.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ostream>
#include <string_view>
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
  // Everything the reader would reject is rejected before the file is touched.
  check_writable_id(run.tag, path, "tag");
  for (const auto& [qid, entries] : run.by_query) {
    check_writable_id(qid, path, "qid");
    std::unordered_set<std::string_view> seen;
    for (const auto& e : entries) {
      check_writable_id(e.docid, path, "docid");
      if (!std::isfinite(e.score)) {
        throw Error(
            path, 0, "score",
            "not a finite number for query '" + qid + "', doc '" + e.docid + "': " + std::to_string(e.score));
      }
      if (!seen.insert(e.docid).second) {
        throw Error(path, 0, "docid", "duplicate document '" + e.docid + "' for query '" + qid + "'");
      }
    }
  }
  Run sorted = run;
  sorted.sort_by_score();
  write_file_atomically(path, [&](std::ostream& out) {
    for (const auto& [qid, entries] : sorted.by_query) {
      std::size_t rank = 0;
      for (const auto& e : entries) {
        // The shortest text that reads back as exactly the same double, whatever the locale.
        char score[64];
        const auto result = std::to_chars(score, score + sizeof score, e.score);
        out << qid << " Q0 " << e.docid << ' ' << ++rank << ' ' << std::string_view(score, result.ptr - score)
            << ' ' << sorted.tag << '\n';
      }
    }
  });
}

}  // namespace disranker
