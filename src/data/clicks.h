// Click logs: JSON Lines, one search impression (a query and the result page shown for it) per line:
//   {"qid": "q1", "query": "...", "results": [{"docid": "d1", "title": "...", "summary": "...",
//     "position": 1, "clicked": true, "dwell_ms": 5300}, ...]}
// Positions are 1-based and unique within an impression; dwell_ms is optional (0 when absent) and must be 0
// for a result that was not clicked. Optional top-level fields: "session" (string) and "user" (string); title
// and summary are optional (empty when absent). qid and docid are non-empty and hold no whitespace (so that
// they match qrels and runs), the query is not blank, a result page is not empty and shows a document once.
// Unknown fields and keys that appear twice in one object are errors, as is invalid UTF-8 (reported under the
// field that holds it). The writer checks the same rules before it touches the file.
#pragma once

#include <string>
#include <vector>

namespace disranker {

struct ClickResult {
  std::string docid;
  std::string title;
  std::string summary;
  int position = 0;
  bool clicked = false;
  double dwell_ms = 0;
};

struct Impression {
  std::string qid;
  std::string query;
  std::string session;
  std::string user;
  std::vector<ClickResult> results;
};

std::vector<Impression> read_click_log(const std::string& path);
void write_click_log(const std::string& path, const std::vector<Impression>& impressions);

}  // namespace disranker
