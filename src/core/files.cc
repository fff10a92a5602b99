#include "core/files.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "core/error.h"

namespace disranker {

void for_each_line(const std::string& path, const std::function<void(std::size_t, std::string_view)>& on_line) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, 0, "", "cannot open file for reading");
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string_view view(line);
    if (!view.empty() && view.back() == '\r') view.remove_suffix(1);
    on_line(number, view);
  }
  if (in.bad()) throw Error(path, number, "", "read error");
}

void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  // The temporary name carries the pid so that two processes writing the same target cannot share it.
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  try {
    {
      std::ofstream out(temp, std::ios::binary | std::ios::trunc);
      if (!out) throw Error(path, 0, "", "cannot open temporary file for writing: " + temp);
      write(out);
      out.flush();
      if (!out) throw Error(path, 0, "", "write failed (disk full?)");
    }
    std::error_code ec;
    std::filesystem::rename(temp, path, ec);
    if (ec) throw Error(path, 0, "", "cannot rename temporary file into place: " + ec.message());
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    throw;
  }
}

std::filesystem::path data_dir() {
  const char* env = std::getenv("DISRANKER_DATA");
  if (env != nullptr && *env != '\0') return std::filesystem::path(env);
  return std::filesystem::path("..") / "shared" / "data";
}

std::filesystem::path require_data_file(const std::string& relative) {
  const auto path = data_dir() / relative;
  if (!std::filesystem::exists(path)) {
    throw Error("missing shared data file " + path.string() +
                " (set DISRANKER_DATA to the folder that holds the shared data sets; default ../shared/data)");
  }
  return path;
}

}  // namespace disranker
