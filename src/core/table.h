// Plain-text tables for terminal output: columns padded to their widest cell, numbers right-aligned.
#pragma once

#include <string>
#include <vector>

namespace disranker {

class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) : header_(std::move(header)) {}
  void add_row(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // Renders with a header underline; a cell that parses as a number is right-aligned.
  std::string render() const;
  // Renders as a GitHub-flavoured Markdown table.
  std::string render_markdown() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// Formats a metric value the way trec_eval prints it: 4 decimals.
std::string format_metric(double value);

}  // namespace disranker
