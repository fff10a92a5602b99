#include "text/bert_normalizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <iterator>

#include "core/utf8.h"
#include "text/bert_unicode_tables.h"

namespace disranker {
namespace {

using bert_tables::CodeMapping;
using bert_tables::CodeRange;

template <std::size_t N>
bool in_ranges(const CodeRange (&table)[N], char32_t c) {
  if (c < table[0].first || c > table[N - 1].last) return false;
  const auto* it = std::upper_bound(std::begin(table), std::end(table), c,
                                    [](char32_t value, const CodeRange& r) { return value < r.first; });
  return it != std::begin(table) && c <= (it - 1)->last;
}

template <std::size_t N>
const CodeMapping* find_mapping(const CodeMapping (&table)[N], char32_t c) {
  if (c < table[0].from || c > table[N - 1].from) return nullptr;
  const auto* it = std::lower_bound(std::begin(table), std::end(table), c,
                                    [](const CodeMapping& m, char32_t value) { return m.from < value; });
  return it != std::end(table) && it->from == c ? it : nullptr;
}

inline void put_utf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    const char bytes[2] = {static_cast<char>(0xC0 | (c >> 6)), static_cast<char>(0x80 | (c & 0x3F))};
    out.append(bytes, 2);
  } else if (c < 0x10000) {
    const char bytes[3] = {static_cast<char>(0xE0 | (c >> 12)), static_cast<char>(0x80 | ((c >> 6) & 0x3F)),
                           static_cast<char>(0x80 | (c & 0x3F))};
    out.append(bytes, 3);
  } else {
    const char bytes[4] = {static_cast<char>(0xF0 | (c >> 18)), static_cast<char>(0x80 | ((c >> 12) & 0x3F)),
                           static_cast<char>(0x80 | ((c >> 6) & 0x3F)), static_cast<char>(0x80 | (c & 0x3F))};
    out.append(bytes, 4);
  }
}

// Hugging Face's canonical combining class: utf8proc's, except for marks newer than its NFD tables.
int combining_class(char32_t c) {
  const int ccc = utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class;
  return ccc != 0 && in_ranges(bert_tables::kCombiningClassZero, c) ? 0 : ccc;
}

// Hugging Face's NFD of one character (without the reordering across characters). Returns the count.
int decompose(char32_t c, char32_t (&out)[8]) {
  if (const auto* m = find_mapping(bert_tables::kNfdExceptions, c)) {
    int n = 0;
    while (n < 3 && m->to[n] != 0) out[n] = m->to[n], ++n;
    return n;
  }
  utf8proc_int32_t buffer[8];
  int boundclass = 0;
  const auto n =
      utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buffer, 8, UTF8PROC_DECOMPOSE, &boundclass);
  if (n <= 0 || n > 8) {
    out[0] = c;
    return 1;
  }
  for (utf8proc_ssize_t k = 0; k < n; ++k) out[k] = static_cast<char32_t>(buffer[k]);
  return static_cast<int>(n);
}

// Rust's char::to_lowercase, UTF-8 encoded onto `out`.
void put_lowercase(char32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    return;
  }
  if (const auto* m = find_mapping(bert_tables::kLowercaseExceptions, c)) {
    for (int k = 0; k < 3 && m->to[k] != 0; ++k) put_utf8(m->to[k], out);
    return;
  }
  put_utf8(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))), out);
}

// The non-ASCII part of the pipeline after clean_text and handle_chinese_chars: strip_accents (NFD, canonical
// reordering, deletion of nonspacing marks) and lowercase. Nonspacing marks are deleted before reordering: a
// stable sort by combining class keeps the relative order of what remains either way. Marks that survive with
// a nonzero class (rare: some Mc) wait in `pending` until the next starter.
struct Emitter {
  bool strip;
  bool lowercase;
  std::string& out;
  std::vector<std::pair<int, char32_t>> pending;

  void put(char32_t c) {
    if (lowercase) {
      put_lowercase(c, out);
    } else {
      put_utf8(c, out);
    }
  }
  void flush() {
    for (const auto& [ccc, c] : pending) put(c);
    pending.clear();
  }
  void starter_ascii(char c) {
    if (!pending.empty()) flush();
    out.push_back(c);
  }
  void emit(char32_t c) {
    if (!strip) {
      put(c);
      return;
    }
    char32_t parts[8];
    const int n = decompose(c, parts);
    for (int k = 0; k < n; ++k) {
      const char32_t d = parts[k];
      if (in_ranges(bert_tables::kNonspacingMark, d)) continue;
      const int ccc = combining_class(d);
      if (ccc == 0) {
        if (!pending.empty()) flush();
        put(d);
      } else {
        auto it = pending.end();
        while (it != pending.begin() && (it - 1)->first > ccc) --it;
        pending.insert(it, {ccc, d});
      }
    }
  }
};

}  // namespace

namespace detail {
const std::uint8_t kBertAsciiClass[128] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0,  // \t \n \v \f \r
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  //
    1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  // space ! " # $ % & ' ( ) * + , - . /
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2,  // 0-9 : ; < = > ?
    2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // @ A-O
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2,  // P-Z [ \ ] ^ _
    2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // ` a-o
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 0,  // p-z { | } ~ DEL
};
}  // namespace detail

bool bert_is_whitespace(char32_t c) {
  return in_ranges(bert_tables::kWhitespace, c);
}
bool bert_is_punctuation(char32_t c) {
  return in_ranges(bert_tables::kPunctuation, c);
}
bool bert_is_chinese_char(char32_t c) {
  return in_ranges(bert_tables::kChinese, c);
}
bool bert_is_control(char32_t c) {
  return in_ranges(bert_tables::kControl, c);
}

BertNormalizer::BertNormalizer(const BertNormalizerOptions& options)
    : options_(options), strip_(options.strips_accents()) {
  for (int b = 0; b < 128; ++b) {
    int mapped = b;
    if (options_.clean_text) {
      if (b == '\t' || b == '\n' || b == '\r') {
        mapped = ' ';
      } else if (b < 0x20 || b == 0x7F) {
        mapped = -1;
      }
    }
    if (options_.lowercase && mapped >= 'A' && mapped <= 'Z') mapped += 32;
    ascii_[b] = static_cast<std::int16_t>(mapped);
  }
}

std::string BertNormalizer::normalize(std::string_view text) const {
  std::string out;
  if (is_valid_utf8(text)) {
    normalize_valid(text, out);
  } else {
    normalize_valid(replace_invalid_utf8(text), out);
  }
  return out;
}

void BertNormalizer::normalize_valid(std::string_view text, std::string& out) const {
  out.clear();
  out.reserve(text.size() + text.size() / 4 + 8);
  const std::size_t n = text.size();
  std::size_t i = 0;
  // The ASCII fast path: one table lookup per byte until the first non-ASCII character.
  while (i < n) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x80) break;
    if (ascii_[byte] >= 0) out.push_back(static_cast<char>(ascii_[byte]));
    ++i;
  }
  if (i == n) return;

  Emitter emitter{strip_, options_.lowercase, out, {}};
  while (i < n) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x80) {
      ++i;
      if (ascii_[byte] >= 0) emitter.starter_ascii(static_cast<char>(ascii_[byte]));
      continue;
    }
    const char32_t c = detail::decode_utf8(text, i);
    if (c >= 0x4E00 && c <= 0x9FFF && options_.handle_chinese_chars) {
      // CJK Unified Ideographs: no control, no decomposition, no case; padded.
      emitter.starter_ascii(' ');
      put_utf8(c, out);
      out.push_back(' ');
      continue;
    }
    if (options_.clean_text) {
      if (bert_is_control(c)) continue;
      if (in_ranges(bert_tables::kCleanToSpace, c)) {
        emitter.starter_ascii(' ');
        continue;
      }
    }
    if (options_.handle_chinese_chars && bert_is_chinese_char(c)) {
      emitter.starter_ascii(' ');
      emitter.emit(c);
      emitter.starter_ascii(' ');
      continue;
    }
    emitter.emit(c);
  }
  emitter.flush();
}

std::vector<std::string_view> bert_pre_tokenize(std::string_view text) {
  std::vector<std::string_view> words;
  bert_pre_tokenize(text, [&](std::string_view word) { words.push_back(word); });
  return words;
}

}  // namespace disranker
