#include "data/tsv.h"

#include <charconv>
#include <cmath>
#include <string>

#include "core/error.h"
#include "core/files.h"
#include "core/utf8.h"

namespace disranker {
namespace {

constexpr std::string_view kWhitespace = " \t\n\r\v\f";
constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

std::string join(const std::vector<std::string>& names) {
  std::string joined;
  for (const auto& name : names) joined += (joined.empty() ? "" : ", ") + name;
  return joined;
}

void check_row(const std::string& path, std::size_t line, const std::vector<std::string>& column_names,
               const std::vector<std::string_view>& fields, const char* separator_name) {
  if (fields.size() != column_names.size()) {
    // Name the column that is missing, or the last one when there are too many: a separator inside it is the
    // usual cause.
    const std::string& field =
        fields.size() < column_names.size() ? column_names[fields.size()] : column_names.back();
    throw Error(path, line, field,
                "expected " + std::to_string(column_names.size()) + " " + separator_name +
                    "-separated columns (" + join(column_names) + "), found " +
                    std::to_string(fields.size()));
  }
  if (line == 1 && !fields.empty() && fields[0].starts_with(kByteOrderMark)) {
    throw Error(path, line, column_names[0],
                "the file starts with a UTF-8 byte-order mark; save it without one");
  }
  for (std::size_t c = 0; c < fields.size(); ++c) {
    const auto bad = find_invalid_utf8(fields[c]);
    if (bad != std::string_view::npos) {
      throw Error(path, line, column_names[c],
                  "invalid UTF-8 at byte " + std::to_string(bad) + " of the field");
    }
  }
}

}  // namespace

void read_tsv(const std::string& path, const std::vector<std::string>& column_names,
              const std::function<void(const TsvRow&)>& on_row) {
  std::vector<std::string_view> fields;
  for_each_line(path, [&](std::size_t line, std::string_view text) {
    if (text.empty()) throw Error(path, line, "", "empty line");
    fields.clear();
    std::size_t start = 0;
    while (true) {
      const auto tab = text.find('\t', start);
      fields.push_back(
          text.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
      if (tab == std::string_view::npos) break;
      start = tab + 1;
    }
    check_row(path, line, column_names, fields, "tab");
    on_row(TsvRow{line, fields});
  });
}

void read_whitespace_columns(const std::string& path, const std::vector<std::string>& column_names,
                             const std::function<void(const TsvRow&)>& on_row) {
  std::vector<std::string_view> fields;
  for_each_line(path, [&](std::size_t line, std::string_view text) {
    fields.clear();
    std::size_t i = 0;
    while (i < text.size()) {
      while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
      if (i >= text.size()) break;
      const std::size_t start = i;
      while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
      fields.push_back(text.substr(start, i - start));
    }
    if (fields.empty()) throw Error(path, line, "", "empty line");
    check_row(path, line, column_names, fields, "whitespace");
    on_row(TsvRow{line, fields});
  });
}

double parse_double_field(std::string_view text, const std::string& path, std::size_t line,
                          const std::string& field) {
  double value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ptr != end || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    throw Error(path, line, field, "not a number: '" + std::string(text) + "'");
  }
  if (ec == std::errc::result_out_of_range) {
    throw Error(path, line, field, "number out of the range of a double: '" + std::string(text) + "'");
  }
  if (!std::isfinite(value))
    throw Error(path, line, field, "not a finite number: '" + std::string(text) + "'");
  return value;
}

long long parse_int_field(std::string_view text, const std::string& path, std::size_t line,
                          const std::string& field) {
  long long value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ptr != end || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    throw Error(path, line, field, "not an integer: '" + std::string(text) + "'");
  }
  if (ec == std::errc::result_out_of_range) {
    throw Error(path, line, field, "integer out of range: '" + std::string(text) + "'");
  }
  return value;
}

void check_writable_field(std::string_view text, const std::string& path, const std::string& field) {
  if (text.find_first_of("\t\n\r") != std::string_view::npos) {
    throw Error(path, 0, field,
                "contains a tab or newline and cannot be written: '" + std::string(text) + "'");
  }
  const auto bad = find_invalid_utf8(text);
  if (bad != std::string_view::npos) {
    throw Error(path, 0, field, "invalid UTF-8 at byte " + std::to_string(bad) + " cannot be written");
  }
}

void check_writable_id(std::string_view text, const std::string& path, const std::string& field) {
  if (text.empty()) throw Error(path, 0, field, "empty id cannot be written");
  if (text.find_first_of(kWhitespace) != std::string_view::npos) {
    throw Error(path, 0, field, "id contains whitespace and cannot be written: '" + std::string(text) + "'");
  }
  check_writable_field(text, path, field);
}

void check_id_field(std::string_view text, const std::string& path, std::size_t line,
                    const std::string& field) {
  if (text.empty()) throw Error(path, line, field, "empty id");
  if (text.find_first_of(kWhitespace) != std::string_view::npos) {
    throw Error(path, line, field,
                "id contains whitespace: '" + std::string(text) +
                    "' (it could not be matched in TREC qrels or runs)");
  }
}

bool is_blank(std::string_view text) {
  return text.find_first_not_of(kWhitespace) == std::string_view::npos;
}

}  // namespace disranker
