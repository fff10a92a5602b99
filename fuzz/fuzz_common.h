// Shared checks of the tokenizer fuzz targets (libFuzzer; see fuzz/README.md). Every target loads its
// tokenizer once through the generic load_tokenizer and checks, for each input: no crash, hang, exception or
// undefined behaviour; every id in [0, vocab_size); encode deterministic; decode runs; and, where the
// tokenizer is lossless, that decode gives back the input (after the invalid-UTF-8 replacement every
// tokenizer applies first).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/utf8.h"
#include "text/tokenizer.h"

namespace disranker::fuzz {

// $DISRANKER_DATA, else the shared data folder beside the source tree (compiled in).
inline std::string data_file(const std::string& relative) {
  const char* env = std::getenv("DISRANKER_DATA");
  const std::string root = env != nullptr && *env != '\0' ? env : DISRANKER_FUZZ_DEFAULT_DATA;
  return root + "/" + relative;
}

// A file checked in beside the fuzz targets.
inline std::string fuzz_file(const std::string& name) {
  return std::string(DISRANKER_FUZZ_DIR) + "/" + name;
}

[[noreturn]] inline void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "invariant broken: %s (input of %zu bytes)\n", what, input.size());
  std::abort();
}

// Loads the tokenizer once; a file that does not load stops the fuzzer with the loader's message.
inline const Tokenizer& load_once(const std::string& path) {
  static const std::unique_ptr<Tokenizer> tokenizer = [&] {
    try {
      return load_tokenizer(path);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cannot load the tokenizer %s: %s\n", path.c_str(), e.what());
      std::abort();
    }
  }();
  return *tokenizer;
}

// The checks on one input. round_trip: decode(encode(x), skip_special = false) must be x with its invalid
// UTF-8 replaced by U+FFFD (x itself for valid UTF-8).
inline void check(const Tokenizer& tokenizer, std::string_view input, bool round_trip) {
  const std::vector<TokenId> ids = tokenizer.encode(input);
  const std::size_t vocab_size = tokenizer.vocab_size();
  for (const TokenId id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= vocab_size) fail("token id out of range", input);
  }
  if (tokenizer.encode(input) != ids) fail("encode is not deterministic", input);
  const std::string decoded = tokenizer.decode(ids, /*skip_special=*/false);
  const std::string without_special = tokenizer.decode(ids, /*skip_special=*/true);
  if (without_special.size() > decoded.size())
    fail("decode without special tokens is longer than with them", input);
  if (round_trip && decoded != replace_invalid_utf8(input)) fail("decode(encode(x)) != x", input);
}

}  // namespace disranker::fuzz
