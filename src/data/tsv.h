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

// Reads `path` as rows of exactly `column_names.size()` tab-separated fields. Blank lines are errors (a blank line
// in a data file is almost always a truncated write). Every field must be valid UTF-8.
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

// Rejects a field that holds a tab or a newline (it would corrupt a TSV or TREC file on writing).
void check_writable_field(std::string_view text, const std::string& path, const std::string& field);

}  // namespace disranker
