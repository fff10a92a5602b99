// Helpers shared by the tests: temporary directories and files with given content.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "core/error.h"

namespace disranker::testing {

// A fresh directory under the system temp dir, removed when the object goes out of scope.
class TempDir {
 public:
  TempDir() {
    auto base = std::filesystem::temp_directory_path() / "disranker-test-XXXXXX";
    std::string pattern = base.string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Writes `content` to a file in the directory and returns its path.
  std::string write(const std::string& name, const std::string& content) const {
    const auto file = path_ / name;
    std::ofstream(file, std::ios::binary) << content;
    return file.string();
  }

 private:
  std::filesystem::path path_;
};

// Runs `action`, which must throw a disranker::Error naming `file` and `field` whose message contains `what`.
inline void expect_error(const std::function<void()>& action, const std::string& file,
                         const std::string& field, const std::string& what) {
  try {
    action();
  } catch (const Error& e) {
    EXPECT_EQ(e.file(), file) << e.what();
    EXPECT_EQ(e.field(), field) << e.what();
    EXPECT_PRED_FORMAT2(::testing::IsSubstring, what, e.what());
    return;
  }
  ADD_FAILURE() << "expected a disranker::Error, but nothing was thrown";
}

}  // namespace disranker::testing

// EXPECT_ERROR(statement, file, field, what): the statement throws a disranker::Error naming file and field
// whose message contains `what`; the statement is named in the failure trace.
#define EXPECT_ERROR(statement, file, field, what)                                     \
  do {                                                                                 \
    SCOPED_TRACE("while running: " #statement);                                        \
    ::disranker::testing::expect_error([&] { (void)(statement); }, file, field, what); \
  } while (0)
