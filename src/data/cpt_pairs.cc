#include "data/cpt_pairs.h"

#include <ostream>

#include "core/error.h"
#include "core/files.h"
#include "data/tsv.h"

namespace disranker {
namespace {

constexpr const char* kNoDocumentSide = "title and summary are both empty (a pair needs a document side)";

}  // namespace

std::vector<CptPair> read_cpt_pairs(const std::string& path) {
  std::vector<CptPair> pairs;
  // read_tsv reports a wrong column count under the missing (or overfull) column and invalid UTF-8 under
  // its column.
  read_tsv(path, {"query", "title", "summary"}, [&](const TsvRow& row) {
    if (is_blank(row.fields[0])) throw Error(path, row.line, "query", "empty query");
    if (is_blank(row.fields[1]) && is_blank(row.fields[2]))
      throw Error(path, row.line, "summary", kNoDocumentSide);
    pairs.push_back(
        CptPair{std::string(row.fields[0]), std::string(row.fields[1]), std::string(row.fields[2])});
  });
  return pairs;
}

void write_cpt_pairs(const std::string& path, const std::vector<CptPair>& pairs) {
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const std::string prefix = "pairs[" + std::to_string(i) + "].";
    const CptPair& pair = pairs[i];
    check_writable_field(pair.query, path, prefix + "query");
    check_writable_field(pair.title, path, prefix + "title");
    check_writable_field(pair.summary, path, prefix + "summary");
    if (is_blank(pair.query)) throw Error(path, 0, prefix + "query", "empty query");
    if (is_blank(pair.title) && is_blank(pair.summary))
      throw Error(path, 0, prefix + "summary", kNoDocumentSide);
  }
  write_file_atomically(path, [&](std::ostream& out) {
    for (const auto& pair : pairs) out << pair.query << '\t' << pair.title << '\t' << pair.summary << '\n';
  });
}

}  // namespace disranker
