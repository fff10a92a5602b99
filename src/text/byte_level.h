// Building blocks of byte-level BPE shared by the tokenizer (bpe.cc) and the trainer (bpe_trainer.cc):
// GPT-2's byte-to-character table, and a PCRE2 regex that splits text the way Hugging Face's tokenizers
// library does with Oniguruma. Implemented in bpe.cc.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace disranker::byte_level {

// GPT-2's bytes_to_unicode(): the printable bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) map to
// themselves and the other 68 bytes to U+0100.. in byte order, so that every byte is a visible character ("Ġ"
// is the space).
char32_t byte_to_char(unsigned char byte);
// The UTF-8 text of byte_to_char(byte).
std::string_view byte_to_utf8(unsigned char byte);
// The byte-level text of raw bytes ("a b" -> "aĠb").
std::string bytes_to_chars(std::string_view bytes);
// The raw bytes of byte-level text; false (and `out` unspecified) when a character is not one of the 256.
bool chars_to_bytes(std::string_view chars, std::string& out);

// GPT-2's pre-tokenizer pattern, the one Hugging Face's ByteLevel pre-tokenizer uses with use_regex.
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Unicode White_Space, the set Oniguruma's and Rust's \s match (PCRE2's \s with UCP differs: it adds U+180E).
bool is_white_space(char32_t code);

// A regex compiled by PCRE2 with UTF and UCP (and JIT where available), made to match like Oniguruma with
// Ruby syntax, which Hugging Face's tokenizers library uses: `\s` and `\S` (and `\s` inside classes) are
// rewritten to Unicode White_Space, and `^` / `$` are line anchors (PCRE2_MULTILINE). Not emulated:
// Oniguruma's `\w` / `\W` /
// `\b` (its word set differs from PCRE2's: it includes "²" and "ⓐ" but not "①"), `\S` inside a class, and
// Unicode-version differences in \p{L} / \p{N} (PCRE2 10.42 has Unicode 14). The GPT-2, Llama-3 and Qwen2
// patterns use none of these. Thread-safe: const member functions may run concurrently.
class Regex {
 public:
  // Throws std::invalid_argument with PCRE2's message when the pattern does not compile.
  explicit Regex(std::string_view pattern);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // Appends the [start, end) byte offsets of the successive non-overlapping matches in `text` (valid UTF-8),
  // with the semantics of the onig crate's find_iter: an empty match right where the previous match ended is
  // skipped.
  void find_all(std::string_view text, std::vector<std::pair<std::size_t, std::size_t>>& matches) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The ways Hugging Face's Split pre-tokenizer treats the matches of its pattern.
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Splits `text` like Hugging Face's Split pre-tokenizer (NormalizedString::split): appends the [start, end)
// offsets of the non-empty pieces. `scratch` is working memory.
void split(const Regex& regex, std::string_view text, SplitBehavior behavior, bool invert,
           std::vector<std::pair<std::size_t, std::size_t>>& pieces,
           std::vector<std::pair<std::size_t, std::size_t>>& scratch);

}  // namespace disranker::byte_level
