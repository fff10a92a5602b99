// Documents TSV: `docid<TAB>title<TAB>text`. The title or the text may be empty (MS MARCO passages have no
// title, QBQTC documents are titles only) but not both. Ids are unique and hold no whitespace (they must
// match the docids of TREC qrels and runs). The writer checks the same rules before it writes.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

namespace disranker {

struct Doc {
  std::string id;
  std::string title;
  std::string text;
};

class Docs {
 public:
  void add(Doc doc);  // throws Error on a duplicate id
  const std::vector<Doc>& items() const { return items_; }
  const Doc* find(const std::string& id) const;
  std::size_t size() const { return items_.size(); }
  // Ids of documents with neither title nor text (only possible when read with allow_empty).
  const std::vector<std::string>& empty_ids() const { return empty_ids_; }

 private:
  std::vector<Doc> items_;
  std::vector<std::string> empty_ids_;
  std::unordered_map<std::string, std::size_t> index_;
};

Docs read_docs(const std::string& path, bool allow_empty = false);
void write_docs(const std::string& path, const Docs& docs);

}  // namespace disranker
