#include "core/table.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace disranker {
namespace {

bool looks_numeric(const std::string& cell) {
  if (cell.empty()) return false;
  if (cell == "-") return true;  // an undefined value sits in a numeric column
  char* end = nullptr;
  std::strtod(cell.c_str(), &end);
  return end == cell.c_str() + cell.size();
}

// Columns a cell takes in a terminal: one per UTF-8 code point (continuation bytes take none), so that a cell
// with "Δ" or "→" lines up with ASCII ones. (East Asian wide characters take two and still misalign.)
std::size_t display_width(const std::string& cell) {
  return static_cast<std::size_t>(std::count_if(
      cell.begin(), cell.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

}  // namespace

std::string TextTable::render() const {
  std::vector<std::size_t> width(header_.size(), 0);
  auto widen = [&](const std::vector<std::string>& row) {
    for (std::size_t c = 0; c < row.size() && c < width.size(); ++c)
      width[c] = std::max(width[c], display_width(row[c]));
  };
  widen(header_);
  for (const auto& row : rows_) widen(row);

  auto render_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (std::size_t c = 0; c < width.size(); ++c) {
      const std::string cell = c < row.size() ? row[c] : "";
      const std::string pad(width[c] - display_width(cell), ' ');
      if (c > 0) line += "  ";
      line += (c > 0 && looks_numeric(cell)) ? pad + cell : cell + pad;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    return line + "\n";
  };
  std::string out = render_row(header_);
  std::size_t total = 0;
  for (std::size_t c = 0; c < width.size(); ++c) total += width[c] + (c > 0 ? 2 : 0);
  out += std::string(total, '-') + "\n";
  for (const auto& row : rows_) out += render_row(row);
  return out;
}

std::string TextTable::render_markdown() const {
  auto render_row = [](const std::vector<std::string>& row) {
    std::string line = "|";
    for (const auto& cell : row) line += " " + cell + " |";
    return line + "\n";
  };
  std::string out = render_row(header_);
  out += "|";
  for (std::size_t c = 0; c < header_.size(); ++c) out += c == 0 ? " --- |" : " ---: |";
  out += "\n";
  for (const auto& row : rows_) out += render_row(row);
  return out;
}

std::string format_metric(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4f", value);
  return buffer;
}

}  // namespace disranker
