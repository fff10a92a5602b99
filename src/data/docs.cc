#include "data/docs.h"

#include <ostream>

#include "core/error.h"
#include "core/files.h"
#include "data/tsv.h"

namespace disranker {

void Docs::add(Doc doc) {
  const auto [it, inserted] = index_.emplace(doc.id, items_.size());
  if (!inserted) throw Error("duplicate docid '" + doc.id + "'");
  if (is_blank(doc.title) && is_blank(doc.text)) empty_ids_.push_back(doc.id);
  items_.push_back(std::move(doc));
}

const Doc* Docs::find(const std::string& id) const {
  const auto it = index_.find(id);
  return it == index_.end() ? nullptr : &items_[it->second];
}

Docs read_docs(const std::string& path, bool allow_empty) {
  Docs docs;
  std::unordered_map<std::string, std::size_t> first_line;
  read_tsv(path, {"docid", "title", "text"}, [&](const TsvRow& row) {
    const std::string id(row.fields[0]);
    check_id_field(id, path, row.line, "docid");
    if (!allow_empty && is_blank(row.fields[1]) && is_blank(row.fields[2])) {
      throw Error(path, row.line, "text",
                  "document '" + id + "' has neither a title nor a text (allow empty documents to keep it)");
    }
    const auto [it, inserted] = first_line.emplace(id, row.line);
    if (!inserted) {
      throw Error(path, row.line, "docid",
                  "duplicate docid '" + id + "' (first on line " + std::to_string(it->second) + ")");
    }
    docs.add(Doc{id, std::string(row.fields[1]), std::string(row.fields[2])});
  });
  return docs;
}

void write_docs(const std::string& path, const Docs& docs) {
  // Everything the reader would reject is rejected before the file is touched.
  for (const auto& d : docs.items()) {
    check_writable_id(d.id, path, "docid");
    check_writable_field(d.title, path, "title");
    check_writable_field(d.text, path, "text");
    if (is_blank(d.title) && is_blank(d.text)) {
      throw Error(path, 0, "text", "document '" + d.id + "' has neither a title nor a text");
    }
  }
  write_file_atomically(path, [&](std::ostream& out) {
    for (const auto& d : docs.items()) out << d.id << '\t' << d.title << '\t' << d.text << '\n';
  });
}

}  // namespace disranker
