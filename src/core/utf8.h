// UTF-8 validation. Readers call it on every text field so that bad bytes are reported where they are,
// instead of surfacing later as a tokenizer or JSON error with no location.
#pragma once

#include <cstddef>
#include <string_view>

namespace disranker {

// Returns the byte offset of the first invalid UTF-8 sequence in `text`, or npos when the text is valid.
// Invalid: stray continuation bytes, truncated sequences, overlong encodings, surrogates (U+D800..DFFF) and
// code points above U+10FFFF.
std::size_t find_invalid_utf8(std::string_view text);

inline bool is_valid_utf8(std::string_view text) {
  return find_invalid_utf8(text) == std::string_view::npos;
}

}  // namespace disranker
