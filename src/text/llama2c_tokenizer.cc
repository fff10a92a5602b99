#include "text/llama2c_tokenizer.h"

#include <bit>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <queue>
#include <sstream>

#include "core/error.h"
#include "core/utf8.h"

namespace disranker {
namespace {

// llama2.c's merge loop starts from best_score = -1e10 (a float) and takes a pair only with a strictly higher
// score.
constexpr float kMergeFloor = -1e10f;
constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();

std::uint32_t read_u32(std::string_view bytes, std::size_t offset) {
  std::uint32_t value = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    value |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[offset + k])) << (8 * k);
  }
  return value;
}

std::int32_t read_i32(std::string_view bytes, std::size_t offset) {
  return std::bit_cast<std::int32_t>(read_u32(bytes, offset));
}

float read_f32(std::string_view bytes, std::size_t offset) {
  return std::bit_cast<float>(read_u32(bytes, offset));
}

// What llama2.c's sscanf(piece, "<0x%02hhX>", &byte_val) == 1 finds in `piece` (which holds no NUL), or -1.
std::int16_t scan_byte_token(std::string_view piece) {
  if (piece.substr(0, 3) != "<0x") return -1;  // cheap reject; sscanf needs the literal "<0x" anyway
  const std::string text(piece);
  unsigned char value = 0;
  if (std::sscanf(text.c_str(), "<0x%02hhX>", &value) != 1) return -1;
  return static_cast<std::int16_t>(value);
}

// The byte length of the UTF-8 sequence that starts with `lead` (valid UTF-8 assumed).
std::size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  return 2;
}

std::uint64_t pair_key(TokenId left, TokenId right) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
         static_cast<std::uint32_t>(right);
}

std::string hex_byte(unsigned value) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  return std::string{kDigits[(value >> 4) & 15], kDigits[value & 15]};
}

// A token's bytes for an error message: printable ASCII as is, anything else as \xHH.
std::string printable(std::string_view piece) {
  std::string out;
  for (const char c : piece) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7F && c != '\\' && c != '"') {
      out += c;
    } else {
      out += "\\x" + hex_byte(byte);
    }
  }
  return out;
}

}  // namespace

std::unique_ptr<Llama2cTokenizer> Llama2cTokenizer::load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(path, 0, "", "is a directory, not a llama2.c tokenizer .bin");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, 0, "", "cannot open the llama2.c tokenizer file for reading");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw Error(path, 0, "", "cannot read the llama2.c tokenizer file");
  return parse(buffer.str(), path);
}

std::unique_ptr<Llama2cTokenizer> Llama2cTokenizer::parse(std::string_view bytes, const std::string& source) {
  auto fail = [&](std::size_t offset, const std::string& message) {
    return Error(source, 0, "byte " + std::to_string(offset), message);
  };
  std::unique_ptr<Llama2cTokenizer> t(new Llama2cTokenizer());
  t->source_ = source;
  if (bytes.size() < 4) {
    throw fail(0,
               "truncated header: a llama2.c tokenizer starts with a 4-byte max_token_length, the file has " +
                   std::to_string(bytes.size()) + " bytes");
  }
  const std::int32_t max_length = read_i32(bytes, 0);
  if (max_length < 1)
    throw fail(0, "max_token_length is " + std::to_string(max_length) + ", must be at least 1");
  if (static_cast<std::uint64_t>(max_length) > bytes.size()) {
    throw fail(0, "max_token_length " + std::to_string(max_length) + " is larger than the whole file (" +
                      std::to_string(bytes.size()) + " bytes): not a llama2.c tokenizer");
  }
  t->max_token_length_ = max_length;

  std::size_t offset = 4;
  t->offsets_.push_back(0);
  while (offset < bytes.size()) {
    const std::size_t id = t->scores_.size();
    const std::string what = "token " + std::to_string(id) + ": ";
    const std::size_t left = bytes.size() - offset;
    if (left < 8) {
      throw fail(offset, what + "truncated entry: a 4-byte score and a 4-byte length need 8 bytes, " +
                             std::to_string(left) + " left");
    }
    if (id >= static_cast<std::size_t>(std::numeric_limits<TokenId>::max())) {
      throw fail(offset, what + "too many tokens for 32-bit ids");
    }
    const float score = read_f32(bytes, offset);
    const std::int32_t length = read_i32(bytes, offset + 4);
    if (length < 0) throw fail(offset + 4, what + "negative length " + std::to_string(length));
    if (static_cast<std::size_t>(length) > left - 8) {
      throw fail(offset + 4, what + "length " + std::to_string(length) + " runs past the end of the file (" +
                                 std::to_string(left - 8) + " bytes left)");
    }
    if (length > max_length) {
      throw fail(offset + 4, what + "length " + std::to_string(length) +
                                 " exceeds the header's max_token_length " + std::to_string(max_length));
    }
    const auto piece = bytes.substr(offset + 8, static_cast<std::size_t>(length));
    const auto nul = piece.find('\0');
    if (nul != std::string_view::npos) {
      throw fail(offset + 8 + nul, what + "holds a NUL byte, which llama2.c's C-string tokens cannot");
    }
    if (id >= static_cast<std::size_t>(kFirstByteId) && id < static_cast<std::size_t>(kFirstByteId) + 256) {
      const auto byte = static_cast<unsigned>(id) - static_cast<unsigned>(kFirstByteId);
      if (scan_byte_token(piece) != static_cast<std::int16_t>(byte) || piece.size() != 6) {
        throw fail(offset + 8, what + "is \"" + printable(piece) +
                                   "\" where llama2.c's byte fallback needs <0x" + hex_byte(byte) +
                                   "> (byte token ids are byte + 3)");
      }
    }
    t->scores_.push_back(score);
    t->text_.append(piece);
    t->offsets_.push_back(t->text_.size());
    offset += 8 + static_cast<std::size_t>(length);
  }
  const std::size_t count = t->scores_.size();
  if (count < static_cast<std::size_t>(kFirstByteId) + 256) {
    throw fail(bytes.size(),
               "the vocabulary has " + std::to_string(count) +
                   " tokens; llama2.c needs at least 259 (<unk>, BOS, EOS and the 256 byte tokens)");
  }
  t->build_indexes();
  if (t->space_id_ < 0) {
    throw fail(bytes.size(), "no \" \" token, which llama2.c's dummy prefix needs");
  }
  t->special_.unk = kUnkId;
  t->special_.bos = kBosId;
  t->special_.eos = kEosId;
  return t;
}

void Llama2cTokenizer::build_indexes() {
  const std::size_t count = scores_.size();
  ids_.reserve(count);
  canonical_.resize(count);
  byte_value_.resize(count);
  byte_value_after_bos_.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto id = static_cast<TokenId>(i);
    const auto piece = id_to_token(id);
    canonical_[i] = ids_.emplace(piece, id).first->second;  // the first (lowest) id keeps the entry
    byte_value_[i] = scan_byte_token(piece);
    byte_value_after_bos_[i] =
        !piece.empty() && piece[0] == ' ' ? scan_byte_token(piece.substr(1)) : byte_value_[i];
  }
  if (const auto space = ids_.find(" "); space != ids_.end()) space_id_ = space->second;
  // Every way to split each token into two tokens: the pairs whose concatenation is in the vocabulary.
  for (std::size_t i = 0; i < count; ++i) {
    if (canonical_[i] != static_cast<TokenId>(i)) continue;
    const auto piece = id_to_token(static_cast<TokenId>(i));
    for (std::size_t k = 1; k < piece.size(); ++k) {
      const auto left = ids_.find(piece.substr(0, k));
      if (left == ids_.end()) continue;
      const auto right = ids_.find(piece.substr(k));
      if (right == ids_.end()) continue;
      merges_.emplace(pair_key(left->second, right->second), static_cast<TokenId>(i));
    }
  }
}

std::string_view Llama2cTokenizer::id_to_token(TokenId id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= scores_.size()) return {};
  const auto i = static_cast<std::size_t>(id);
  return std::string_view(text_).substr(offsets_[i], offsets_[i + 1] - offsets_[i]);
}

std::optional<TokenId> Llama2cTokenizer::token_to_id(std::string_view token) const {
  const auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

float Llama2cTokenizer::score(TokenId id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= scores_.size()) return 0.0f;
  return scores_[static_cast<std::size_t>(id)];
}

std::vector<TokenId> Llama2cTokenizer::encode(std::string_view text) const {
  return encode(text, false, false);
}

std::vector<TokenId> Llama2cTokenizer::encode(std::string_view raw, bool bos, bool eos) const {
  const std::string text = replace_invalid_utf8(raw);
  std::vector<TokenId> ids;
  ids.reserve(text.size() + 3);
  if (bos) ids.push_back(kBosId);
  if (!text.empty()) ids.push_back(space_id_);
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t length =
        std::min(sequence_length(static_cast<unsigned char>(text[pos])), text.size() - pos);
    const auto code_point = std::string_view(text).substr(pos, length);
    if (const auto found = ids_.find(code_point); found != ids_.end()) {
      ids.push_back(found->second);
    } else {
      for (const char byte : code_point) ids.push_back(kFirstByteId + static_cast<unsigned char>(byte));
    }
    pos += length;
  }
  merge_pairs(ids);
  if (eos) ids.push_back(kEosId);
  return ids;
}

TokenId Llama2cTokenizer::pair_merge(TokenId left, TokenId right) const {
  const auto l = static_cast<std::size_t>(left), r = static_cast<std::size_t>(right);
  // An empty token (only BOS can be one in a sequence: byte tokens and code points are never empty)
  // concatenates to the other token itself, which llama2.c's lookup then finds.
  if (offsets_[l] == offsets_[l + 1]) return canonical_[r];
  if (offsets_[r] == offsets_[r + 1]) return canonical_[l];
  const auto found = merges_.find(pair_key(canonical_[l], canonical_[r]));
  return found == merges_.end() ? -1 : found->second;
}

// llama2.c rescans the whole sequence for the best pair after every merge. The same choice, in O(n log n): a
// doubly linked list of tokens and a max-heap of candidate pairs ordered by score, then by position (a node
// keeps its original index, and list order is index order, so the smallest index is llama2.c's leftmost
// pair). Candidates go stale when a merge changes a neighbour; they are checked when popped. Every live pair
// is in the heap, so the first live candidate popped is exactly the pair llama2.c picks.
void Llama2cTokenizer::merge_pairs(std::vector<TokenId>& ids) const {
  const std::size_t n = ids.size();
  if (n < 2) return;
  std::vector<std::size_t> prev(n), next(n);
  for (std::size_t i = 0; i < n; ++i) {
    prev[i] = i == 0 ? kNone : i - 1;
    next[i] = i + 1 == n ? kNone : i + 1;
  }
  struct Candidate {
    float score;
    std::size_t left;
    TokenId left_id;
    TokenId right_id;
    TokenId merged;
  };
  auto lower_priority = [](const Candidate& a, const Candidate& b) {
    if (a.score != b.score) return a.score < b.score;
    return a.left > b.left;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(lower_priority)> heap(lower_priority);
  auto consider = [&](std::size_t left) {
    const std::size_t right = next[left];
    if (right == kNone) return;
    const TokenId a = ids[left], b = ids[right];
    const TokenId merged = pair_merge(a, b);
    if (merged < 0) return;
    const float s = scores_[static_cast<std::size_t>(merged)];
    if (!(s > kMergeFloor)) return;  // also drops NaN, as llama2.c's comparison does
    heap.push(Candidate{s, left, a, b, merged});
  };
  for (std::size_t i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    if (ids[c.left] != c.left_id) continue;  // merged into something else, or removed (-1)
    const std::size_t right = next[c.left];
    if (right == kNone || ids[right] != c.right_id) continue;
    ids[c.left] = c.merged;
    ids[right] = -1;
    next[c.left] = next[right];
    if (next[right] != kNone) prev[next[right]] = c.left;
    if (prev[c.left] != kNone) consider(prev[c.left]);
    consider(c.left);
  }
  std::size_t out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (ids[i] >= 0) ids[out++] = ids[i];
  }
  ids.resize(out);
}

void Llama2cTokenizer::check_id(TokenId id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= scores_.size()) {
    throw Error(source_, 0, "",
                "cannot decode token id " + std::to_string(id) + ": the vocabulary has " +
                    std::to_string(scores_.size()) + " tokens");
  }
}

std::string Llama2cTokenizer::decode_piece(TokenId prev, TokenId id) const {
  check_id(id);
  const auto i = static_cast<std::size_t>(id);
  auto piece = id_to_token(id);
  const bool after_bos = prev == kBosId && !piece.empty() && piece[0] == ' ';
  const std::int16_t byte = after_bos ? byte_value_after_bos_[i] : byte_value_[i];
  if (byte >= 0) return std::string(1, static_cast<char>(static_cast<unsigned char>(byte)));
  if (after_bos) piece.remove_prefix(1);
  return std::string(piece);
}

std::string Llama2cTokenizer::decode(std::span<const TokenId> ids, bool skip_special) const {
  std::string out;
  TokenId prev = kBosId;
  for (const TokenId id : ids) {
    check_id(id);
    if (!(skip_special && (id == kUnkId || id == kBosId || id == kEosId))) out += decode_piece(prev, id);
    prev = id;
  }
  return out;
}

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path) {
  return Llama2cTokenizer::load(path);
}

}  // namespace disranker
