#include "core/files.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>

#include "core/error.h"

namespace disranker {
namespace {

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

std::string errno_text(int error) {
  return std::error_code(error, std::generic_category()).message();
}

}  // namespace

void for_each_line(const std::string& path,
                   const std::function<void(std::size_t, std::string_view)>& on_line) {
  // std::ifstream happily "opens" a directory and then reports no lines, and it cannot tell a read error from
  // the end of the file; stdio can, so a directory or an I/O error is never mistaken for an empty file.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path, 0, "", "is a directory, expected a file");
  errno = 0;
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) throw Error(path, 0, "", "cannot open file for reading: " + errno_text(errno));

  std::string line;
  std::size_t number = 0;
  char buffer[1 << 16];
  bool pending = false;  // `line` holds the start of a line whose "\n" has not been read yet
  auto emit = [&] {
    ++number;
    std::string_view view(line);
    if (!view.empty() && view.back() == '\r') view.remove_suffix(1);
    on_line(number, view);
    line.clear();
    pending = false;
  };
  while (true) {
    const std::size_t got = std::fread(buffer, 1, sizeof buffer, file.get());
    std::size_t start = 0;
    for (std::size_t i = 0; i < got; ++i) {
      if (buffer[i] != '\n') continue;
      line.append(buffer + start, i - start);
      emit();
      start = i + 1;
    }
    if (start < got) {
      line.append(buffer + start, got - start);
      pending = true;
    }
    if (got < sizeof buffer) break;
  }
  if (std::ferror(file.get())) throw Error(path, number + 1, "", "read error: " + errno_text(errno));
  if (pending) emit();  // a last line without "\n"
}

void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  const std::filesystem::path target(path);
  const auto parent = target.parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
    throw Error(path, 0, "", "cannot write: directory '" + parent.string() + "' does not exist");
  }
  // The temporary name carries the pid and a per-process counter so that two processes or two threads writing
  // the same target cannot share it.
  static std::atomic<unsigned long> counter{0};
  const std::string temp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(++counter);
  try {
    {
      errno = 0;
      std::ofstream out(temp, std::ios::binary | std::ios::trunc);
      if (!out)
        throw Error(path, 0, "", "cannot open temporary file " + temp + " for writing: " + errno_text(errno));
      write(out);
      out.close();
      if (!out) throw Error(path, 0, "", "write failed (disk full?)");
    }
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
    throw Error(
        "missing shared data file " + path.string() +
        " (set DISRANKER_DATA to the folder that holds the shared data sets; default ../shared/data)");
  }
  return path;
}

}  // namespace disranker
