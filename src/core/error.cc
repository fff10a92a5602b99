#include "core/error.h"

namespace disranker {
namespace {

std::string format_location(const std::string& file, std::size_t line, const std::string& field,
                            const std::string& message) {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  out += ": ";
  if (!field.empty()) out += field + ": ";
  return out + message;
}

}  // namespace

Error::Error(const std::string& message) : std::runtime_error(message) {}

Error::Error(const std::string& file, std::size_t line, const std::string& field, const std::string& message)
    : std::runtime_error(format_location(file, line, field, message)), file_(file), line_(line), field_(field) {}

}  // namespace disranker
