#include "data/queries.h"

#include <ostream>

#include "core/error.h"
#include "core/files.h"
#include "data/tsv.h"

namespace disranker {

void Queries::add(Query query) {
  const auto [it, inserted] = index_.emplace(query.id, items_.size());
  if (!inserted) throw Error("duplicate query id '" + query.id + "'");
  items_.push_back(std::move(query));
}

const Query* Queries::find(const std::string& id) const {
  const auto it = index_.find(id);
  return it == index_.end() ? nullptr : &items_[it->second];
}

Queries read_queries(const std::string& path) {
  Queries queries;
  std::unordered_map<std::string, std::size_t> first_line;
  read_tsv(path, {"qid", "query"}, [&](const TsvRow& row) {
    const std::string id(row.fields[0]);
    check_id_field(id, path, row.line, "qid");
    if (is_blank(row.fields[1])) throw Error(path, row.line, "query", "empty query text");
    const auto [it, inserted] = first_line.emplace(id, row.line);
    if (!inserted) {
      throw Error(path, row.line, "qid",
                  "duplicate query id '" + id + "' (first on line " + std::to_string(it->second) + ")");
    }
    queries.add(Query{id, std::string(row.fields[1])});
  });
  return queries;
}

void write_queries(const std::string& path, const Queries& queries) {
  // Everything the reader would reject is rejected before the file is touched.
  for (const auto& q : queries.items()) {
    check_writable_id(q.id, path, "qid");
    check_writable_field(q.text, path, "query");
    if (is_blank(q.text)) throw Error(path, 0, "query", "empty query text for query '" + q.id + "'");
  }
  write_file_atomically(path, [&](std::ostream& out) {
    for (const auto& q : queries.items()) out << q.id << '\t' << q.text << '\n';
  });
}

}  // namespace disranker
