#include "text/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "core/error.h"
#include "core/utf8.h"
#include "text/byte_level.h"
#include "text/text_util.h"

namespace disranker {

using text::is_word_char;
using text::last_code_point;
using text::StringHash;
using text::StringMap;

// ---------------------------------------------------------------------------------------------------------------
// Byte-level building blocks (byte_level.h)
// ---------------------------------------------------------------------------------------------------------------
namespace byte_level {
namespace {

struct ByteTables {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> to_utf8;
  std::array<std::int16_t, 324> to_byte{};  // indexed by code point; -1 when not a byte character

  ByteTables() {
    to_byte.fill(-1);
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      to_char[b] = printable(b) ? static_cast<char32_t>(b) : next++;
      append_utf8(to_char[b], to_utf8[b]);
      to_byte[to_char[b]] = static_cast<std::int16_t>(b);
    }
  }
};

const ByteTables& tables() {
  static const ByteTables instance;
  return instance;
}

// Unicode White_Space as a PCRE2 class body (without the brackets).
constexpr std::string_view kWhiteSpaceClass =
    R"(\t-\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// Rewrites \s and \S (outside classes) and \s (inside classes) to Unicode White_Space, Oniguruma's
// definition.
std::string rewrite_pattern(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 64);
  bool in_class = false;
  std::size_t i = 0;
  const std::size_t n = pattern.size();
  while (i < n) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < n) {
      const char d = pattern[i + 1];
      if (d == 's') {
        if (in_class) {
          out += kWhiteSpaceClass;
        } else {
          out += '[';
          out += kWhiteSpaceClass;
          out += ']';
        }
        i += 2;
        continue;
      }
      if (d == 'S' && !in_class) {
        out += "[^";
        out += kWhiteSpaceClass;
        out += ']';
        i += 2;
        continue;
      }
      if (d == 'Q') {  // a literal run up to \E
        const std::size_t end = pattern.find("\\E", i + 2);
        const std::size_t stop = end == std::string_view::npos ? n : end + 2;
        out.append(pattern.substr(i, stop - i));
        i = stop;
        continue;
      }
      out += c;
      out += d;
      i += 2;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      ++i;
      if (i < n && pattern[i] == '^') out += pattern[i++];
      if (i < n && pattern[i] == ']') out += pattern[i++];  // a leading ']' is literal
      continue;
    }
    if (in_class && c == '[' && i + 1 < n && pattern[i + 1] == ':') {  // POSIX class [:name:]
      const std::size_t end = pattern.find(":]", i + 2);
      const std::size_t stop = end == std::string_view::npos ? n : end + 2;
      out.append(pattern.substr(i, stop - i));
      i = stop;
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
    ++i;
  }
  return out;
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

pcre2_match_data* thread_match_data() {
  // One overall-match pair is all find_all reads; PCRE2 still reports the match when the ovector is too small
  // for the capture groups (return value 0).
  thread_local std::unique_ptr<pcre2_match_data, MatchDataDeleter> data(pcre2_match_data_create(1, nullptr));
  return data.get();
}

std::size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  return 4;
}

}  // namespace

char32_t byte_to_char(unsigned char byte) {
  return tables().to_char[byte];
}

std::string_view byte_to_utf8(unsigned char byte) {
  return tables().to_utf8[byte];
}

std::string bytes_to_chars(std::string_view bytes) {
  const auto& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) out += t.to_utf8[static_cast<unsigned char>(c)];
  return out;
}

bool chars_to_bytes(std::string_view chars, std::string& out) {
  const auto& t = tables();
  out.clear();
  if (!is_valid_utf8(chars)) return false;
  std::size_t pos = 0;
  while (pos < chars.size()) {
    const char32_t code = next_code_point(chars, pos);
    if (code >= t.to_byte.size() || t.to_byte[code] < 0) return false;
    out += static_cast<char>(static_cast<unsigned char>(t.to_byte[code]));
  }
  return true;
}

bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

struct Regex::Impl {
  pcre2_code* code = nullptr;
  ~Impl() { pcre2_code_free(code); }
};

Regex::Regex(std::string_view pattern) : impl_(std::make_unique<Impl>()) {
  const std::string rewritten = rewrite_pattern(pattern);
  int error = 0;
  PCRE2_SIZE offset = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &error, &offset, nullptr);
  if (impl_->code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    throw std::invalid_argument("regex does not compile at offset " + std::to_string(offset) + ": " +
                                reinterpret_cast<const char*>(message));
  }
  pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);  // without JIT support pcre2_match interprets
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

void Regex::find_all(std::string_view text, std::vector<std::pair<std::size_t, std::size_t>>& matches) const {
  pcre2_match_data* data = thread_match_data();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const std::size_t n = text.size();
  std::size_t pos = 0;
  bool have_last = false;
  std::size_t last_end = 0;
  while (pos <= n) {
    int rc = pcre2_match(impl_->code, subject, n, pos, PCRE2_NO_UTF_CHECK, data, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(impl_->code, subject, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, data, nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof message);
      throw std::runtime_error(std::string("regex match failed: ") + reinterpret_cast<const char*>(message));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    const std::size_t start = ovector[0];
    const std::size_t end = ovector[1];
    if (start == end && have_last && last_end == end) {
      pos = end < n ? end + utf8_length(static_cast<unsigned char>(text[end])) : n + 1;
      continue;
    }
    matches.emplace_back(start, end);
    pos = end;
    last_end = end;
    have_last = true;
  }
}

void split(const Regex& regex, std::string_view text, SplitBehavior behavior, bool invert,
           std::vector<std::pair<std::size_t, std::size_t>>& pieces,
           std::vector<std::pair<std::size_t, std::size_t>>& scratch) {
  if (text.empty()) return;
  scratch.clear();
  regex.find_all(text, scratch);
  if (behavior == SplitBehavior::kIsolated) {  // every match and every gap is a piece
    std::size_t previous = 0;
    for (const auto& [start, end] : scratch) {
      if (previous < start) pieces.emplace_back(previous, start);
      if (start < end) pieces.emplace_back(start, end);
      previous = end;
    }
    if (previous < text.size()) pieces.emplace_back(previous, text.size());
    return;
  }
  struct Part {
    std::size_t start, end;
    bool match;
  };
  std::vector<Part> parts;
  parts.reserve(scratch.size() * 2 + 1);
  std::size_t previous = 0;
  for (const auto& [start, end] : scratch) {
    if (previous != start) parts.push_back({previous, start, invert});
    parts.push_back({start, end, !invert});
    previous = end;
  }
  if (previous != text.size()) parts.push_back({previous, text.size(), invert});

  auto emit = [&](std::size_t start, std::size_t end) {
    if (end > start) pieces.emplace_back(start, end);
  };
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const auto& p : parts) emit(p.start, p.end);
      break;
    case SplitBehavior::kRemoved:
      for (const auto& p : parts)
        if (!p.match) emit(p.start, p.end);
      break;
    case SplitBehavior::kContiguous:
    case SplitBehavior::kMergedWithPrevious: {
      std::vector<std::pair<std::size_t, std::size_t>> merged;
      bool previous_match = false;
      for (const auto& p : parts) {
        const bool join =
            behavior == SplitBehavior::kContiguous ? p.match == previous_match : (p.match && !previous_match);
        if (join && !merged.empty()) {
          merged.back().second = p.end;
        } else {
          merged.emplace_back(p.start, p.end);
        }
        previous_match = p.match;
      }
      for (const auto& [start, end] : merged) emit(start, end);
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      std::vector<std::pair<std::size_t, std::size_t>> merged;  // built back to front
      bool previous_match = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->match && !previous_match && !merged.empty()) {
          merged.back().first = it->start;
        } else {
          merged.emplace_back(it->start, it->end);
        }
        previous_match = it->match;
      }
      for (auto it = merged.rbegin(); it != merged.rend(); ++it) emit(it->first, it->second);
      break;
    }
  }
}

}  // namespace byte_level

// ---------------------------------------------------------------------------------------------------------------
// The tokenizer
// ---------------------------------------------------------------------------------------------------------------
namespace {

using byte_level::Regex;
using byte_level::SplitBehavior;
using Range = std::pair<std::size_t, std::size_t>;

enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };

bool is_ascii(std::string_view s) {
  for (const char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

// Applies the normalizers in order (utf8proc). `text` is valid UTF-8.
std::string normalize(std::string_view text, const std::vector<NormalForm>& forms) {
  std::string current(text);
  for (const NormalForm form : forms) {
    if (is_ascii(current)) break;  // all four forms leave ASCII unchanged
    int options = UTF8PROC_STABLE;
    switch (form) {
      case NormalForm::kNFC:
        options |= UTF8PROC_COMPOSE;
        break;
      case NormalForm::kNFD:
        options |= UTF8PROC_DECOMPOSE;
        break;
      case NormalForm::kNFKC:
        options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
        break;
      case NormalForm::kNFKD:
        options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
        break;
    }
    utf8proc_uint8_t* result = nullptr;
    const utf8proc_ssize_t length = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(current.data()),
                                                 static_cast<utf8proc_ssize_t>(current.size()), &result,
                                                 static_cast<utf8proc_option_t>(options));
    if (length < 0) {
      std::free(result);
      throw std::runtime_error(std::string("utf8proc: ") + utf8proc_errmsg(length));
    }
    current.assign(reinterpret_cast<const char*>(result), static_cast<std::size_t>(length));
    std::free(result);
  }
  return current;
}

// Hugging Face's AddedToken.
struct AddedToken {
  std::string content;
  TokenId id = -1;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

// Leftmost-longest matching of a set of strings (what aho-corasick's MatchKind::LeftmostLongest finds).
class StringMatcher {
 public:
  void add(std::string_view pattern, int value) {
    if (pattern.empty()) return;
    if (nodes_.empty()) nodes_.emplace_back();
    std::size_t node = 0;
    for (const char c : pattern) {
      const auto byte = static_cast<unsigned char>(c);
      int child = -1;
      for (const auto& [b, next] : nodes_[node].next)
        if (b == byte) child = next;
      if (child < 0) {
        child = static_cast<int>(nodes_.size());
        nodes_[node].next.emplace_back(byte, child);
        nodes_.emplace_back();
      }
      node = static_cast<std::size_t>(child);
    }
    nodes_[node].value = value;
    first_[static_cast<unsigned char>(pattern[0])] = true;
  }
  bool empty() const { return nodes_.empty(); }

  // The leftmost match starting at or after `from`, the longest of those starting there.
  bool find(std::string_view text, std::size_t from, std::size_t& start, std::size_t& end, int& value) const {
    const std::size_t n = text.size();
    for (std::size_t s = from; s < n; ++s) {
      if (!first_[static_cast<unsigned char>(text[s])]) continue;
      std::size_t node = 0;
      int found = -1;
      std::size_t found_end = 0;
      for (std::size_t k = s; k < n; ++k) {
        const auto byte = static_cast<unsigned char>(text[k]);
        int child = -1;
        for (const auto& [b, next] : nodes_[node].next)
          if (b == byte) child = next;
        if (child < 0) break;
        node = static_cast<std::size_t>(child);
        if (nodes_[node].value >= 0) found = nodes_[node].value, found_end = k + 1;
      }
      if (found >= 0) {
        start = s, end = found_end, value = found;
        return true;
      }
    }
    return false;
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int>> next;
    int value = -1;
  };
  std::vector<Node> nodes_;
  std::array<bool, 256> first_{};
};

// A piece of text after splitting out added tokens: [start, end) and the token id, or -1 for text.
struct Piece {
  std::size_t start, end;
  TokenId id;
};

// Hugging Face's AddedVocabulary::find_matches.
void split_added(std::string_view sentence, const StringMatcher& matcher,
                 const std::vector<AddedToken>& tokens, std::vector<Piece>& out) {
  const std::size_t n = sentence.size();
  if (n == 0) return;
  std::size_t start_offset = 0;
  std::size_t from = 0;
  std::size_t start = 0, stop = 0;
  int which = -1;
  while (matcher.find(sentence, from, start, stop, which)) {
    from = stop;
    const AddedToken& token = tokens[static_cast<std::size_t>(which)];
    if (token.single_word) {
      const bool start_space = start == 0 || !is_word_char(last_code_point(sentence.substr(0, start)));
      std::size_t p = stop;
      const bool stop_space = stop == n || !is_word_char(next_code_point(sentence, p));
      if (!stop_space || !start_space) continue;
    }
    if (token.lstrip) {
      std::size_t new_start = start;
      while (new_start > 0) {
        std::size_t prev = new_start - 1;
        while (prev > 0 && (static_cast<unsigned char>(sentence[prev]) & 0xC0) == 0x80) --prev;
        std::size_t p = prev;
        if (!byte_level::is_white_space(next_code_point(sentence, p))) break;
        new_start = prev;
      }
      start = std::max(new_start, start_offset);
    }
    if (token.rstrip) {
      while (stop < n) {
        std::size_t p = stop;
        if (!byte_level::is_white_space(next_code_point(sentence, p))) break;
        stop = p;
      }
    }
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, token.id});
    start_offset = stop;
  }
  if (start_offset < n) out.push_back({start_offset, n, -1});
}

// (left id, right id) -> (rank, merged id): an open-addressing table built once.
class MergeTable {
 public:
  struct Value {
    std::uint32_t rank;
    TokenId id;
  };
  void reserve(std::size_t count) {
    std::size_t capacity = 16;
    while (capacity < count * 2) capacity <<= 1;
    slots_.assign(capacity, Slot{kEmpty, {0, 0}});
    shift_ = 64;
    for (std::size_t c = capacity; c > 1; c >>= 1) --shift_;
  }
  // Later entries replace earlier ones for the same pair, as when Hugging Face collects merges into a
  // HashMap.
  void insert(TokenId a, TokenId b, Value value) {
    const std::uint64_t key = make_key(a, b);
    std::size_t i = index(key);
    while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & (slots_.size() - 1);
    if (slots_[i].key == kEmpty) ++size_;
    slots_[i] = Slot{key, value};
  }
  const Value* find(TokenId a, TokenId b) const {
    const std::uint64_t key = make_key(a, b);
    std::size_t i = index(key);
    while (true) {
      const Slot& slot = slots_[i];
      if (slot.key == key) return &slot.value;
      if (slot.key == kEmpty) return nullptr;
      i = (i + 1) & (slots_.size() - 1);
    }
  }
  std::size_t size() const { return size_; }

 private:
  static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
  struct Slot {
    std::uint64_t key;
    Value value;
  };
  static std::uint64_t make_key(TokenId a, TokenId b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }
  std::size_t index(std::uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  std::vector<Slot> slots_;
  unsigned shift_ = 60;
  std::size_t size_ = 0;
};

// The bounded BPE result cache: words shorter than 256 bytes (Hugging Face's MAX_LENGTH), 16 shards under
// their own mutex; a full shard is emptied.
class WordCache {
 public:
  static constexpr std::size_t kMaxWordBytes = 256;

  bool get(std::string_view word, std::size_t hash, std::vector<TokenId>& out) const {
    const Shard& shard = shards_[hash % kShards];
    std::lock_guard<std::mutex> lock(shard.mutex);
    const auto it = shard.map.find(word);
    if (it == shard.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }
  void put(std::string_view word, std::size_t hash, const TokenId* ids, std::size_t count) {
    Shard& shard = shards_[hash % kShards];
    std::lock_guard<std::mutex> lock(shard.mutex);
    if (shard.map.size() >= kShardCapacity) shard.map.clear();
    shard.map.try_emplace(std::string(word), ids, ids + count);
  }

 private:
  static constexpr std::size_t kShards = 16;
  static constexpr std::size_t kShardCapacity = 4096;
  struct Shard {
    mutable std::mutex mutex;
    StringMap<std::vector<TokenId>> map;
  };
  std::array<Shard, kShards> shards_;
};

// One pre-tokenization step.
struct PreStep {
  bool byte_level = false;
  // Split
  std::unique_ptr<Regex> regex;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  // ByteLevel
  bool add_prefix_space = false;
  bool use_regex = true;
};

// Working memory of one encode() call.
struct Scratch {
  struct Symbol {
    TokenId id;
    int prev;
    int next;
    int len;  // byte length in the byte-level text; 0 marks a symbol merged into its left neighbour
  };
  struct Merge {
    std::uint32_t rank;
    int pos;
    TokenId id;
  };
  std::vector<Symbol> symbols;
  std::vector<Merge> heap;
  std::vector<TokenId> word_ids;
  std::vector<Piece> raw_pieces, normalized_pieces;
  std::vector<Range> split_in, split_out, words, matches;
  std::string prefixed;
};

[[noreturn]] void fail(const std::string& path, const std::string& field, const std::string& message) {
  throw Error(path, 0, field, message);
}

const nlohmann::json* member(const nlohmann::json& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

bool get_bool(const nlohmann::json& object, const char* key, bool fallback, const std::string& path,
              const std::string& where) {
  const nlohmann::json* value = member(object, key);
  if (value == nullptr || value->is_null()) return fallback;
  if (!value->is_boolean()) fail(path, where + "." + key, "expected true or false");
  return value->get<bool>();
}

std::string type_of(const nlohmann::json& object, const std::string& path, const std::string& where) {
  if (!object.is_object()) fail(path, where, "expected an object");
  const nlohmann::json* type = member(object, "type");
  if (type == nullptr || !type->is_string()) fail(path, where + ".type", "missing or not a string");
  return type->get<std::string>();
}

}  // namespace

struct BpeTokenizer::Impl {
  std::string path;

  // Vocabulary
  std::vector<std::string> id_to_token;  // by id; "" for ids without a token
  std::vector<std::uint8_t> flags;       // kPresent, kSpecial
  std::vector<std::string> decoded;      // the decoder's bytes for each id
  StringMap<TokenId> model_vocab;        // byte-level strings
  StringMap<TokenId> added_ids;          // added token contents
  static constexpr std::uint8_t kPresent = 1, kSpecial = 2;

  // Model
  MergeTable merges;
  std::array<TokenId, 256> byte_ids{};  // the vocabulary id of each byte's character, -1 when absent
  std::array<int, 256> byte_lengths{};  // UTF-8 length of each byte's character
  bool ignore_merges = false;
  StringMap<TokenId> raw_vocab;  // raw bytes -> id, for ignore_merges
  TokenId unk_id = -1;
  bool fuse_unk = false;

  // Pipeline
  std::vector<NormalForm> normalizers;
  std::vector<PreStep> steps;  // Split steps then one ByteLevel step
  std::unique_ptr<Regex> gpt2;
  bool byte_level_decoder = true;
  std::vector<AddedToken> added;
  StringMatcher raw_matcher, normalized_matcher;

  mutable WordCache cache;

  void encode_piece(std::string_view text, std::vector<TokenId>& ids, Scratch& scratch) const;
  void pre_tokenize(std::string_view text, std::vector<TokenId>& ids, Scratch& scratch) const {
    for_each_word(text, scratch, [&](std::string_view word) { bpe(word, ids, scratch); });
  }
  // Calls on_word(raw bytes) for each word of the pre-tokenizer (Split steps, then ByteLevel).
  template <typename OnWord>
  void for_each_word(std::string_view text, Scratch& scratch, OnWord&& on_word) const;
  void bpe(std::string_view word, std::vector<TokenId>& ids, Scratch& scratch) const;
  void merge_word(std::string_view word, Scratch& scratch) const;
};

// Non-normalized added tokens are out; normalize and take out the normalized ones.
void BpeTokenizer::Impl::encode_piece(std::string_view text, std::vector<TokenId>& ids,
                                      Scratch& scratch) const {
  std::string normalized;
  if (!normalizers.empty()) {
    normalized = normalize(text, normalizers);
    text = normalized;
  }
  if (normalized_matcher.empty()) {
    pre_tokenize(text, ids, scratch);
    return;
  }
  auto& pieces = scratch.normalized_pieces;
  pieces.clear();
  split_added(text, normalized_matcher, added, pieces);
  for (const Piece& piece : pieces) {
    if (piece.id >= 0) {
      ids.push_back(piece.id);
    } else {
      pre_tokenize(text.substr(piece.start, piece.end - piece.start), ids, scratch);
    }
  }
}

template <typename OnWord>
void BpeTokenizer::Impl::for_each_word(std::string_view text, Scratch& scratch, OnWord&& on_word) const {
  if (text.empty()) return;
  auto& current = scratch.split_in;
  auto& next = scratch.split_out;
  current.assign(1, Range{0, text.size()});
  for (const PreStep& step : steps) {
    if (!step.byte_level) {
      next.clear();
      for (const auto& [start, end] : current) {
        const std::size_t before = next.size();
        byte_level::split(*step.regex, text.substr(start, end - start), step.behavior, step.invert, next,
                          scratch.matches);
        for (std::size_t i = before; i < next.size(); ++i) next[i].first += start, next[i].second += start;
      }
      current.swap(next);
      continue;
    }
    for (const auto& [start, end] : current) {
      std::string_view piece = text.substr(start, end - start);
      if (step.add_prefix_space && piece.front() != ' ') {
        scratch.prefixed.assign(1, ' ');
        scratch.prefixed.append(piece);
        piece = scratch.prefixed;
      }
      if (!step.use_regex) {
        on_word(piece);
        continue;
      }
      auto& words = scratch.words;
      words.clear();
      byte_level::split(*gpt2, piece, SplitBehavior::kIsolated, false, words, scratch.matches);
      for (const auto& [word_start, word_end] : words)
        on_word(piece.substr(word_start, word_end - word_start));
    }
    return;
  }
}

void BpeTokenizer::Impl::bpe(std::string_view word, std::vector<TokenId>& ids, Scratch& scratch) const {
  if (ignore_merges) {
    const auto it = raw_vocab.find(word);
    if (it != raw_vocab.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  if (word.size() == 1) {
    const TokenId id = byte_ids[static_cast<unsigned char>(word[0])];
    if (id >= 0) {
      ids.push_back(id);
    } else if (unk_id >= 0) {
      ids.push_back(unk_id);
    }
    return;
  }
  const bool cacheable = word.size() < WordCache::kMaxWordBytes;
  std::size_t hash = 0;
  if (cacheable) {
    hash = StringHash{}(word);
    if (cache.get(word, hash, ids)) return;
  }
  merge_word(word, scratch);
  auto& result = scratch.word_ids;
  result.clear();
  for (const auto& symbol : scratch.symbols)
    if (symbol.len != 0) result.push_back(symbol.id);
  ids.insert(ids.end(), result.begin(), result.end());
  if (cacheable) cache.put(word, hash, result.data(), result.size());
}

// Hugging Face's BPE::merge_word and Word::merge_all (without dropout).
void BpeTokenizer::Impl::merge_word(std::string_view word, Scratch& scratch) const {
  auto& symbols = scratch.symbols;
  symbols.clear();
  TokenId pending_unk = -1;
  int pending_len = 0;
  auto add = [&](TokenId id, int len) {
    const int index = static_cast<int>(symbols.size());
    if (index > 0) symbols.back().next = index;
    symbols.push_back({id, index - 1, -1, len});
  };
  for (const char c : word) {
    const auto byte = static_cast<unsigned char>(c);
    const TokenId id = byte_ids[byte];
    const int len = byte_lengths[byte];
    if (id >= 0) {
      if (pending_unk >= 0) add(pending_unk, pending_len), pending_unk = -1;
      add(id, len);
    } else if (unk_id >= 0) {
      if (pending_unk >= 0 && fuse_unk) {
        pending_len += len;
      } else {
        if (pending_unk >= 0) add(pending_unk, pending_len);
        pending_unk = unk_id, pending_len = len;
      }
    }
  }
  if (pending_unk >= 0) add(pending_unk, pending_len);

  // A min-heap on (rank, position).
  auto& heap = scratch.heap;
  heap.clear();
  const auto later = [](const Scratch::Merge& a, const Scratch::Merge& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const auto* m = merges.find(symbols[i].id, symbols[i + 1].id)) {
      heap.push_back({m->rank, static_cast<int>(i), m->id});
    }
  }
  std::make_heap(heap.begin(), heap.end(), later);
  const int count = static_cast<int>(symbols.size());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Scratch::Merge top = heap.back();
    heap.pop_back();
    auto& current = symbols[static_cast<std::size_t>(top.pos)];
    if (current.len == 0 || current.next == -1) continue;
    const int next_pos = current.next;
    const auto right = symbols[static_cast<std::size_t>(next_pos)];
    const auto* expected = merges.find(current.id, right.id);
    if (expected == nullptr || expected->id != top.id) continue;  // an expired entry
    current.id = top.id;
    current.len += right.len;
    current.next = right.next;
    symbols[static_cast<std::size_t>(next_pos)].len = 0;
    if (right.next > -1 && right.next < count) symbols[static_cast<std::size_t>(right.next)].prev = top.pos;
    if (current.prev >= 0) {
      if (const auto* m = merges.find(symbols[static_cast<std::size_t>(current.prev)].id, current.id)) {
        heap.push_back({m->rank, current.prev, m->id});
        std::push_heap(heap.begin(), heap.end(), later);
      }
    }
    if (current.next >= 0 && current.next < count) {
      if (const auto* m = merges.find(current.id, symbols[static_cast<std::size_t>(current.next)].id)) {
        heap.push_back({m->rank, top.pos, m->id});
        std::push_heap(heap.begin(), heap.end(), later);
      }
    }
  }
}

BpeTokenizer::BpeTokenizer() : impl_(std::make_unique<Impl>()) {}
BpeTokenizer::~BpeTokenizer() = default;

std::vector<TokenId> BpeTokenizer::encode(std::string_view text) const {
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 4);
  encode_into(text, ids);
  return ids;
}

void BpeTokenizer::encode_into(std::string_view text, std::vector<TokenId>& ids) const {
  const Impl& m = *impl_;
  std::string repaired;
  if (!is_valid_utf8(text)) {
    repaired = replace_invalid_utf8(text);
    text = repaired;
  }
  // Working memory reused across calls of this thread (nothing in it outlives a call); a huge input gets its
  // own so that the thread does not keep its buffers.
  thread_local Scratch reused;
  Scratch local;
  Scratch& scratch = text.size() <= (std::size_t{1} << 22) ? reused : local;
  if (m.raw_matcher.empty()) {
    m.encode_piece(text, ids, scratch);
    return;
  }
  auto& pieces = scratch.raw_pieces;
  pieces.clear();
  split_added(text, m.raw_matcher, m.added, pieces);
  for (const Piece& piece : pieces) {
    if (piece.id >= 0) {
      ids.push_back(piece.id);
    } else {
      m.encode_piece(text.substr(piece.start, piece.end - piece.start), ids, scratch);
    }
  }
}

std::string BpeTokenizer::decode(std::span<const TokenId> ids, bool skip_special) const {
  const Impl& m = *impl_;
  std::string out;
  bool first = true;
  for (const TokenId id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= m.flags.size()) continue;
    const std::uint8_t flags = m.flags[static_cast<std::size_t>(id)];
    if ((flags & Impl::kPresent) == 0) continue;
    if (skip_special && (flags & Impl::kSpecial) != 0) continue;
    if (m.byte_level_decoder) {
      out += m.decoded[static_cast<std::size_t>(id)];
    } else {
      if (!first) out += ' ';
      out += m.id_to_token[static_cast<std::size_t>(id)];
    }
    first = false;
  }
  return m.byte_level_decoder ? replace_invalid_utf8(out) : out;
}

std::size_t BpeTokenizer::vocab_size() const {
  return impl_->id_to_token.size();
}

std::string_view BpeTokenizer::id_to_token(TokenId id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= impl_->id_to_token.size()) return {};
  return impl_->id_to_token[static_cast<std::size_t>(id)];
}

std::optional<TokenId> BpeTokenizer::token_to_id(std::string_view token) const {
  if (const auto it = impl_->added_ids.find(token); it != impl_->added_ids.end()) return it->second;
  if (const auto it = impl_->model_vocab.find(token); it != impl_->model_vocab.end()) return it->second;
  return std::nullopt;
}

std::vector<std::string> BpeTokenizer::pre_tokenize(std::string_view text) const {
  std::string repaired;
  if (!is_valid_utf8(text)) {
    repaired = replace_invalid_utf8(text);
    text = repaired;
  }
  Scratch scratch;
  std::vector<std::string> words;
  impl_->for_each_word(text, scratch,
                       [&](std::string_view word) { words.push_back(byte_level::bytes_to_chars(word)); });
  return words;
}

bool BpeTokenizer::is_special(TokenId id) const {
  return id >= 0 && static_cast<std::size_t>(id) < impl_->flags.size() &&
         (impl_->flags[static_cast<std::size_t>(id)] & Impl::kSpecial) != 0;
}

std::size_t BpeTokenizer::merge_count() const {
  return impl_->merges.size();
}

// ---------------------------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------------------------
namespace {

void parse_normalizer(const nlohmann::json& json, const std::string& path, const std::string& where,
                      std::vector<NormalForm>& out) {
  if (json.is_null()) return;
  const std::string type = type_of(json, path, where);
  if (type == "NFC") {
    out.push_back(NormalForm::kNFC);
  } else if (type == "NFD") {
    out.push_back(NormalForm::kNFD);
  } else if (type == "NFKC") {
    out.push_back(NormalForm::kNFKC);
  } else if (type == "NFKD") {
    out.push_back(NormalForm::kNFKD);
  } else if (type == "Sequence") {
    const nlohmann::json* list = member(json, "normalizers");
    if (list == nullptr || !list->is_array()) fail(path, where + ".normalizers", "expected an array");
    for (std::size_t i = 0; i < list->size(); ++i) {
      parse_normalizer((*list)[i], path, where + ".normalizers[" + std::to_string(i) + "]", out);
    }
  } else {
    fail(path, where + ".type",
         "unsupported normalizer '" + type +
             "' for a byte-level BPE (supported: NFC, NFD, NFKC, NFKD, Sequence)");
  }
}

void parse_pre_tokenizer(const nlohmann::json& json, const std::string& path, const std::string& where,
                         std::vector<PreStep>& out) {
  const std::string type = type_of(json, path, where);
  if (type == "Sequence") {
    const nlohmann::json* list = member(json, "pretokenizers");
    if (list == nullptr || !list->is_array()) fail(path, where + ".pretokenizers", "expected an array");
    for (std::size_t i = 0; i < list->size(); ++i) {
      parse_pre_tokenizer((*list)[i], path, where + ".pretokenizers[" + std::to_string(i) + "]", out);
    }
    return;
  }
  if (!out.empty() && out.back().byte_level) {
    fail(path, where, "ByteLevel must be the last pre-tokenizer (found '" + type + "' after it)");
  }
  PreStep step;
  if (type == "ByteLevel") {
    step.byte_level = true;
    step.add_prefix_space = get_bool(json, "add_prefix_space", true, path, where);
    step.use_regex = get_bool(json, "use_regex", true, path, where);
  } else if (type == "Split") {
    const nlohmann::json* pattern = member(json, "pattern");
    std::string regex;
    if (pattern != nullptr && pattern->is_object() && pattern->contains("Regex") &&
        (*pattern)["Regex"].is_string()) {
      regex = (*pattern)["Regex"].get<std::string>();
    } else if (pattern != nullptr && pattern->is_object() && pattern->contains("String") &&
               (*pattern)["String"].is_string()) {
      regex = "\\Q" + (*pattern)["String"].get<std::string>() + "\\E";
      if ((*pattern)["String"].get<std::string>().find("\\E") != std::string::npos) {
        fail(path, where + ".pattern", "a String pattern containing \\E is not supported");
      }
    } else {
      fail(path, where + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
    }
    try {
      step.regex = std::make_unique<Regex>(regex);
    } catch (const std::invalid_argument& e) {
      fail(path, where + ".pattern", e.what());
    }
    const nlohmann::json* behavior = member(json, "behavior");
    const std::string name = behavior != nullptr && behavior->is_string() ? behavior->get<std::string>() : "";
    if (name == "Isolated") {
      step.behavior = SplitBehavior::kIsolated;
    } else if (name == "Removed") {
      step.behavior = SplitBehavior::kRemoved;
    } else if (name == "MergedWithPrevious") {
      step.behavior = SplitBehavior::kMergedWithPrevious;
    } else if (name == "MergedWithNext") {
      step.behavior = SplitBehavior::kMergedWithNext;
    } else if (name == "Contiguous") {
      step.behavior = SplitBehavior::kContiguous;
    } else {
      fail(path, where + ".behavior", "unknown split behavior '" + name + "'");
    }
    step.invert = get_bool(json, "invert", false, path, where);
  } else {
    fail(path, where + ".type",
         "unsupported pre-tokenizer '" + type +
             "' for a byte-level BPE (supported: ByteLevel, Split, Sequence)");
  }
  out.push_back(std::move(step));
}

// The first of `names` that is an added token, or -1.
TokenId first_added(const StringMap<TokenId>& added, std::initializer_list<std::string_view> names) {
  for (const std::string_view name : names) {
    if (const auto it = added.find(name); it != added.end()) return it->second;
  }
  return -1;
}

}  // namespace

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_json(const nlohmann::json& json, const std::string& path) {
  std::unique_ptr<BpeTokenizer> tokenizer(new BpeTokenizer());
  Impl& m = *tokenizer->impl_;
  m.path = path;
  if (!json.is_object()) fail(path, "", "expected a tokenizer.json object");

  // Model
  const nlohmann::json* model = member(json, "model");
  if (model == nullptr || !model->is_object()) fail(path, "model", "missing or not an object");
  const std::string type = type_of(*model, path, "model");
  if (type != "BPE") fail(path, "model.type", "unsupported model type '" + type + "' (expected BPE)");
  if (const auto* dropout = member(*model, "dropout"); dropout != nullptr && !dropout->is_null()) {
    if (!dropout->is_number() || dropout->get<double>() != 0.0) {
      fail(path, "model.dropout", "BPE dropout is not supported (must be null or 0)");
    }
  }
  if (get_bool(*model, "byte_fallback", false, path, "model")) {
    fail(path, "model.byte_fallback", "byte_fallback is not supported by the byte-level BPE");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const nlohmann::json* value = member(*model, key);
    if (value != nullptr && !value->is_null() && !(value->is_string() && value->get<std::string>().empty())) {
      fail(path, std::string("model.") + key, "not supported by the byte-level BPE (must be null)");
    }
  }
  m.ignore_merges = get_bool(*model, "ignore_merges", false, path, "model");
  m.fuse_unk = get_bool(*model, "fuse_unk", false, path, "model");

  const nlohmann::json* vocab = member(*model, "vocab");
  if (vocab == nullptr || !vocab->is_object()) fail(path, "model.vocab", "missing or not an object");
  TokenId max_id = -1;
  m.model_vocab.reserve(vocab->size());
  for (const auto& [token, value] : vocab->items()) {
    if (!value.is_number_integer() || value.get<std::int64_t>() < 0 ||
        value.get<std::int64_t>() > INT32_MAX) {
      fail(path, "model.vocab", "the id of '" + token + "' is not an integer in [0, 2^31)");
    }
    const auto id = static_cast<TokenId>(value.get<std::int64_t>());
    m.model_vocab[token] = id;
    max_id = std::max(max_id, id);
  }

  const nlohmann::json* merges = member(*model, "merges");
  if (merges == nullptr || !merges->is_array()) fail(path, "model.merges", "missing or not an array");
  m.merges.reserve(merges->size());
  for (std::size_t i = 0; i < merges->size(); ++i) {
    const nlohmann::json& entry = (*merges)[i];
    const std::string field = "model.merges[" + std::to_string(i) + "]";
    std::string a, b;
    if (entry.is_string()) {
      const std::string text = entry.get<std::string>();
      const std::size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        fail(path, field, "expected \"left right\" (two tokens separated by one space), got '" + text + "'");
      }
      a = text.substr(0, space), b = text.substr(space + 1);
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string()) {
      a = entry[0].get<std::string>(), b = entry[1].get<std::string>();
    } else {
      fail(path, field, "expected \"left right\" or [\"left\", \"right\"]");
    }
    const auto ia = m.model_vocab.find(a), ib = m.model_vocab.find(b), ic = m.model_vocab.find(a + b);
    if (ia == m.model_vocab.end()) fail(path, field, "'" + a + "' is not in the vocabulary");
    if (ib == m.model_vocab.end()) fail(path, field, "'" + b + "' is not in the vocabulary");
    if (ic == m.model_vocab.end())
      fail(path, field, "the merged token '" + a + b + "' is not in the vocabulary");
    m.merges.insert(ia->second, ib->second, {static_cast<std::uint32_t>(i), ic->second});
  }

  if (const auto* unk = member(*model, "unk_token"); unk != nullptr && !unk->is_null()) {
    if (!unk->is_string()) fail(path, "model.unk_token", "expected a string or null");
    const auto it = m.model_vocab.find(unk->get<std::string>());
    if (it == m.model_vocab.end()) {
      fail(path, "model.unk_token", "'" + unk->get<std::string>() + "' is not in the vocabulary");
    }
    m.unk_id = it->second;
  }

  for (int b = 0; b < 256; ++b) {
    const std::string_view character = byte_level::byte_to_utf8(static_cast<unsigned char>(b));
    const auto it = m.model_vocab.find(character);
    m.byte_ids[b] = it == m.model_vocab.end() ? -1 : it->second;
    m.byte_lengths[b] = static_cast<int>(character.size());
  }
  if (m.ignore_merges) {
    std::string raw;
    for (const auto& [token, id] : m.model_vocab) {
      if (byte_level::chars_to_bytes(token, raw)) m.raw_vocab.emplace(raw, id);
    }
  }

  // Pipeline
  if (const auto* normalizer = member(json, "normalizer"); normalizer != nullptr) {
    parse_normalizer(*normalizer, path, "normalizer", m.normalizers);
  }
  const nlohmann::json* pre_tokenizer = member(json, "pre_tokenizer");
  if (pre_tokenizer == nullptr || pre_tokenizer->is_null()) {
    fail(path, "pre_tokenizer", "missing: a byte-level BPE needs a ByteLevel pre-tokenizer");
  }
  parse_pre_tokenizer(*pre_tokenizer, path, "pre_tokenizer", m.steps);
  if (m.steps.empty() || !m.steps.back().byte_level) {
    fail(path, "pre_tokenizer", "must end with a ByteLevel pre-tokenizer (a byte-level BPE)");
  }
  if (m.steps.back().use_regex) m.gpt2 = std::make_unique<Regex>(byte_level::kGpt2Pattern);

  if (const auto* decoder = member(json, "decoder"); decoder != nullptr && !decoder->is_null()) {
    const std::string decoder_type = type_of(*decoder, path, "decoder");
    if (decoder_type != "ByteLevel") {
      fail(path, "decoder.type", "unsupported decoder '" + decoder_type + "' (supported: ByteLevel, null)");
    }
  } else {
    m.byte_level_decoder = false;
  }

  // Added tokens
  if (const auto* added = member(json, "added_tokens"); added != nullptr && !added->is_null()) {
    if (!added->is_array()) fail(path, "added_tokens", "expected an array");
    for (std::size_t i = 0; i < added->size(); ++i) {
      const nlohmann::json& entry = (*added)[i];
      const std::string where = "added_tokens[" + std::to_string(i) + "]";
      if (!entry.is_object()) fail(path, where, "expected an object");
      const nlohmann::json* id = member(entry, "id");
      const nlohmann::json* content = member(entry, "content");
      if (id == nullptr || !id->is_number_integer() || id->get<std::int64_t>() < 0 ||
          id->get<std::int64_t>() > INT32_MAX) {
        fail(path, where + ".id", "missing or not an integer in [0, 2^31)");
      }
      if (content == nullptr || !content->is_string())
        fail(path, where + ".content", "missing or not a string");
      AddedToken token;
      token.content = content->get<std::string>();
      token.id = static_cast<TokenId>(id->get<std::int64_t>());
      token.special = get_bool(entry, "special", false, path, where);
      token.single_word = get_bool(entry, "single_word", false, path, where);
      token.lstrip = get_bool(entry, "lstrip", false, path, where);
      token.rstrip = get_bool(entry, "rstrip", false, path, where);
      token.normalized = get_bool(entry, "normalized", !token.special, path, where);
      if (token.content.empty()) continue;  // Hugging Face ignores empty added tokens
      if (!is_valid_utf8(token.content)) fail(path, where + ".content", "not valid UTF-8");
      m.added_ids[token.content] = token.id;
      max_id = std::max(max_id, token.id);
      m.added.push_back(std::move(token));
    }
  }
  for (std::size_t i = 0; i < m.added.size(); ++i) {
    const AddedToken& token = m.added[i];
    if (token.normalized) {
      const std::string pattern =
          m.normalizers.empty() ? token.content : normalize(token.content, m.normalizers);
      m.normalized_matcher.add(pattern, static_cast<int>(i));
    } else {
      m.raw_matcher.add(token.content, static_cast<int>(i));
    }
  }

  // Id tables
  const auto size = static_cast<std::size_t>(max_id + 1);
  m.id_to_token.assign(size, std::string());
  m.flags.assign(size, 0);
  for (const auto& [token, id] : m.model_vocab) {
    m.id_to_token[static_cast<std::size_t>(id)] = token;
    m.flags[static_cast<std::size_t>(id)] = Impl::kPresent;
  }
  for (const AddedToken& token : m.added) {
    m.id_to_token[static_cast<std::size_t>(token.id)] = token.content;
    m.flags[static_cast<std::size_t>(token.id)] =
        token.special ? Impl::kPresent | Impl::kSpecial : Impl::kPresent;
  }
  if (m.byte_level_decoder) {
    // Hugging Face's ByteLevel decoder: a token whose characters are all byte characters gives those bytes,
    // any other token its own UTF-8.
    m.decoded.assign(size, std::string());
    std::string raw;
    for (std::size_t id = 0; id < size; ++id) {
      if ((m.flags[id] & Impl::kPresent) == 0) continue;
      const std::string& token = m.id_to_token[id];
      m.decoded[id] = byte_level::chars_to_bytes(token, raw) ? raw : token;
    }
  }

  // Special tokens
  SpecialTokens& special = tokenizer->special_;
  special.eos = first_added(
      m.added_ids, {"</s>", "<|endoftext|>", "<|end_of_text|>", "<|im_end|>", "<|eot_id|>", "<eos>"});
  special.bos = first_added(m.added_ids, {"<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>"});
  const TokenId endoftext = first_added(m.added_ids, {"<|endoftext|>"});
  if (special.bos < 0 && special.eos >= 0 && special.eos == endoftext) special.bos = special.eos;
  special.pad = first_added(m.added_ids, {"<pad>", "<|pad|>", "[PAD]"});
  if (special.pad < 0) special.pad = endoftext;
  special.unk = m.unk_id >= 0 ? m.unk_id : first_added(m.added_ids, {"<unk>"});
  return tokenizer;
}

std::unique_ptr<Tokenizer> load_bpe_json(const nlohmann::json& tokenizer_json, const std::string& path) {
  return BpeTokenizer::from_json(tokenizer_json, path);
}

std::unique_ptr<BpeTokenizer> load_bpe_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error(path, 0, "", "is a directory, expected a tokenizer.json");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, 0, "", "cannot open the tokenizer file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(buffer.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(path, 0, "", std::string("malformed JSON: ") + e.what());
  }
  return BpeTokenizer::from_json(json, path);
}

}  // namespace disranker
