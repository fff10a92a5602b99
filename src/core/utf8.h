// UTF-8 validation. Readers call it on every text field so that bad bytes are reported where they are,
// instead of surfacing later as a tokenizer or JSON error with no location.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace disranker {

// Returns the byte offset of the first invalid UTF-8 sequence in `text`, or npos when the text is valid.
// Invalid: stray continuation bytes, truncated sequences, overlong encodings, surrogates (U+D800..DFFF) and
// code points above U+10FFFF.
std::size_t find_invalid_utf8(std::string_view text);

// Replaces each maximal invalid subpart of `text` with U+FFFD (EF BF BD), the WHATWG/Unicode "best practice" rule
// that Node's and browsers' decoders follow. Valid text is returned unchanged.
std::string replace_invalid_utf8(std::string_view text);

// Decodes one code point at `pos` of valid UTF-8 and advances `pos` past it.
char32_t next_code_point(std::string_view text, std::size_t& pos);
// Appends the UTF-8 encoding of `code` to `out`.
void append_utf8(char32_t code, std::string& out);

inline bool is_valid_utf8(std::string_view text) {
  return find_invalid_utf8(text) == std::string_view::npos;
}

}  // namespace disranker
