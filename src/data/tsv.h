// Tab-separated files: every row is checked for its column count and for valid UTF-8, and numbers are parsed
// strictly, so that every problem is reported as "file:line: field: what is wrong".
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace disranker {

// One parsed row: its 1-based line number and its fields (views into the line, valid during the callback).
struct TsvRow {
  std::size_t line = 0;
  std::span<const std::string_view> fields;
};

// Reads `path` as rows of exactly `column_names.size()` tab-separated fields. Blank lines are errors (a blank
// line in a data file is almost always a truncated write). Every field must be valid UTF-8, and the file must
// not start with a byte-order mark (it would silently become part of the first id). A wrong column count is
// reported under the name of the first missing column, or of the last column when there are too many (a tab
// inside that field).
void read_tsv(const std::string& path, const std::vector<std::string>& column_names,
              const std::function<void(const TsvRow&)>& on_row);

// Reads whitespace-separated rows (TREC qrels and runs separate columns by spaces or tabs).
void read_whitespace_columns(const std::string& path, const std::vector<std::string>& column_names,
                             const std::function<void(const TsvRow&)>& on_row);

// Strict number parsing: the whole field must be the number; NaN and infinities are rejected.
double parse_double_field(std::string_view text, const std::string& path, std::size_t line,
                          const std::string& field);
long long parse_int_field(std::string_view text, const std::string& path, std::size_t line,
                          const std::string& field);

// Rejects a field that holds a tab or a newline (it would corrupt a TSV or TREC file on writing) or invalid
// UTF-8 (the readers would reject the file).
void check_writable_field(std::string_view text, const std::string& path, const std::string& field);

// Rejects an id (qid, docid, run tag) that is empty, holds whitespace or invalid UTF-8: TREC files separate
// their columns by whitespace, so such an id could not be read back or matched against qrels and runs.
void check_writable_id(std::string_view text, const std::string& path, const std::string& field);

// The reader's check of an id: Error(path, line, field, ...) when it is empty or holds whitespace.
void check_id_field(std::string_view text, const std::string& path, std::size_t line,
                    const std::string& field);

// True when the text is empty or only spaces (what the readers call an empty query, title or text).
bool is_blank(std::string_view text);

}  // namespace disranker
