// Queries TSV: `qid<TAB>query`, one per line. Ids are unique and hold no whitespace (they must match the qids
// of TREC qrels and runs); the text must not be empty or blank. The writer checks the same rules before it
// writes.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

namespace disranker {

struct Query {
  std::string id;
  std::string text;
};

class Queries {
 public:
  void add(Query query);  // throws Error on a duplicate id
  const std::vector<Query>& items() const { return items_; }
  const Query* find(const std::string& id) const;
  std::size_t size() const { return items_.size(); }

 private:
  std::vector<Query> items_;
  std::unordered_map<std::string, std::size_t> index_;
};

Queries read_queries(const std::string& path);
void write_queries(const std::string& path, const Queries& queries);

}  // namespace disranker
