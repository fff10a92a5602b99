// One error type for the whole engine: "file:line: field: what is wrong".
// Every reader throws it for bad input; the CLI prints what() and exits non-zero.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace disranker {

class Error : public std::runtime_error {
 public:
  // A problem with no location (bad option, missing directory, ...).
  explicit Error(const std::string& message);
  // A problem at a place in an input file. line 0 means "the file as a whole"; an empty field is omitted.
  Error(const std::string& file, std::size_t line, const std::string& field, const std::string& message);

  const std::string& file() const { return file_; }
  std::size_t line() const { return line_; }
  const std::string& field() const { return field_; }

 private:
  std::string file_;
  std::size_t line_ = 0;
  std::string field_;
};

}  // namespace disranker
