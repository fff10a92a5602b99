// CPT pairs: the training examples of continued pre-training (the paper's "query -> clicked title + summary"
// stage). A TSV file, UTF-8, one pair per line:
//   query<TAB>title<TAB>summary
// The query is not blank; at least one of title and summary is not blank (a pair needs a document side). No
// header line, no blank lines, no byte-order mark, exactly three columns (a tab inside a field would shift
// them). `disranker clicks cpt-pairs` writes them (from a click log, or from WikiQA's question -> clicked
// page), `disranker cpt` reads them.
#pragma once

#include <string>
#include <vector>

namespace disranker {

struct CptPair {
  std::string query;
  std::string title;
  std::string summary;

  bool operator==(const CptPair&) const = default;
};

// Reads a pairs file. Malformed lines are an Error naming file:line:field (wrong column count, blank query,
// blank title and summary, invalid UTF-8). An empty file is an empty list.
std::vector<CptPair> read_cpt_pairs(const std::string& path);

// Writes the pairs atomically. Rejects, before touching the file, what read_cpt_pairs would reject (the field
// is named "pairs[i].query" and so on) and fields holding a tab or a line break.
void write_cpt_pairs(const std::string& path, const std::vector<CptPair>& pairs);

}  // namespace disranker
