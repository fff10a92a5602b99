// BERT's text normalization and pre-tokenization, character for character what Hugging Face's BertNormalizer
// and BertPreTokenizer do (tokenizers/src/normalizers/bert.rs, pre_tokenizers/bert.rs).
//
// Hugging Face takes its character classes from several Unicode versions at once (general categories from an
// old unicode_categories crate, NFD from an old unicode-normalization fork, White_Space and lowercase from
// Rust's std). bert_unicode_tables.h holds those classes as Hugging Face sees them, generated from the
// library itself and checked on every code point by tests/test_wordpiece.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace disranker {

struct BertNormalizerOptions {
  // Delete U+0000, U+FFFD and control/format/private-use characters (keeping \t \n \r), and map every kind of
  // whitespace to ' '.
  bool clean_text = true;
  // Put spaces around CJK ideographs so that each becomes a word.
  bool handle_chinese_chars = true;
  // NFD, then delete nonspacing marks (the text stays decomposed: Hangul syllables become Jamo). Unset:
  // follows `lowercase`, as in Hugging Face (strip_accents: null).
  std::optional<bool> strip_accents;
  // Rust's char::to_lowercase on every character (full mapping: U+0130 becomes "i" U+0307).
  bool lowercase = true;

  bool strips_accents() const { return strip_accents.value_or(lowercase); }
};

class BertNormalizer {
 public:
  explicit BertNormalizer(const BertNormalizerOptions& options = {});

  // The normalized text. Invalid UTF-8 is first replaced as replace_invalid_utf8 does.
  std::string normalize(std::string_view text) const;
  // Same, into `out` (cleared first), for callers that reuse a buffer. `text` must be valid UTF-8.
  void normalize_valid(std::string_view text, std::string& out) const;

  const BertNormalizerOptions& options() const { return options_; }

 private:
  BertNormalizerOptions options_;
  bool strip_ = false;
  // For each ASCII byte: its replacement, or -1 to delete it.
  std::int16_t ascii_[128];
};

// Character classes of Hugging Face's BERT pipeline (bert_unicode_tables.h).
bool bert_is_whitespace(char32_t c);    // the pre-tokenizer splits on it (Rust char::is_whitespace)
bool bert_is_punctuation(char32_t c);   // the pre-tokenizer isolates it (ASCII punctuation or Unicode P*)
bool bert_is_chinese_char(char32_t c);  // handle_chinese_chars pads it
bool bert_is_control(char32_t c);       // clean_text deletes it

namespace detail {
// 0: part of a word, 1: whitespace, 2: punctuation; for the ASCII bytes.
extern const std::uint8_t kBertAsciiClass[128];
// Decodes the code point at `pos` of valid UTF-8 and advances `pos` past it.
inline char32_t decode_utf8(std::string_view text, std::size_t& pos) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data()) + pos;
  if (s[0] < 0x80) {
    pos += 1;
    return s[0];
  }
  if (s[0] < 0xE0) {
    pos += 2;
    return (char32_t(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
  }
  if (s[0] < 0xF0) {
    pos += 3;
    return (char32_t(s[0] & 0x0F) << 12) | (char32_t(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
  }
  pos += 4;
  return (char32_t(s[0] & 0x07) << 18) | (char32_t(s[1] & 0x3F) << 12) | (char32_t(s[2] & 0x3F) << 6) |
         (s[3] & 0x3F);
}
}  // namespace detail

// BertPreTokenizer on normalized (valid UTF-8) text: splits on whitespace, which is dropped, and makes each
// punctuation character a word of its own. Calls on_word(std::string_view) for each word, in order.
template <typename OnWord>
void bert_pre_tokenize(std::string_view text, OnWord&& on_word) {
  const std::size_t n = text.size();
  std::size_t start = 0;  // of the current word
  std::size_t i = 0;
  while (i < n) {
    const auto byte = static_cast<unsigned char>(text[i]);
    std::size_t next;
    int cls;
    if (byte < 0x80) {
      cls = detail::kBertAsciiClass[byte];
      next = i + 1;
    } else {
      next = i;
      const char32_t c = detail::decode_utf8(text, next);
      cls = bert_is_whitespace(c) ? 1 : bert_is_punctuation(c) ? 2 : 0;
    }
    if (cls != 0) {
      if (start < i) on_word(text.substr(start, i - start));
      if (cls == 2) on_word(text.substr(i, next - i));
      start = next;
    }
    i = next;
  }
  if (start < n) on_word(text.substr(start));
}

// The words of `text` (normalized, valid UTF-8), as views into it.
std::vector<std::string_view> bert_pre_tokenize(std::string_view text);

}  // namespace disranker
