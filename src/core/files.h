// File-system helpers: reading whole files line by line with their numbers, atomic writes, and locating the
// shared data directory.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace disranker {

// Calls on_line(line_number, line) for each line of the file (1-based; "\n" and a trailing "\r" stripped; a
// last line without "\n" is still a line; an empty file has none). Throws Error naming the file when it is
// missing, is a directory, cannot be opened or cannot be read.
void for_each_line(const std::string& path,
                   const std::function<void(std::size_t, std::string_view)>& on_line);

// Writes a file atomically: `write` fills a temporary file beside `path`, which is renamed over `path` only
// when `write` returns normally and the stream is good. On any failure the temporary file is removed and
// `path` keeps its old content (or stays absent). A missing parent directory is an Error naming `path`.
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);

// The shared data directory: $DISRANKER_DATA, or ../shared/data relative to the current directory.
std::filesystem::path data_dir();

// data_dir()/relative, or an Error that says which file is missing and how to point DISRANKER_DATA at the
// data.
std::filesystem::path require_data_file(const std::string& relative);

}  // namespace disranker
