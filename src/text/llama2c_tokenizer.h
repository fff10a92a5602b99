// The tokenizer of Karpathy's llama2.c (run.c: build_tokenizer, encode, decode) for its .bin vocabularies
// (tok512.bin of the stories260K reference model, the 32000-token Llama 2 tokenizer.bin).
//
// File format (little-endian): int32 max_token_length, then one entry per token until the end of the file:
// float32 score, int32 length, `length` bytes. The vocabulary size is the number of entries. Ids 0, 1, 2 are
// <unk>, BOS and EOS; ids 3..258 are the byte tokens "<0x00>".."<0xFF>" (llama2.c's byte fallback is id =
// byte + 3).
//
// Encoding, as llama2.c does it: an optional BOS (1); a dummy-prefix " " token when the text is non-empty;
// one token per UTF-8 code point found in the vocabulary, else one byte token per byte of it; then,
// repeatedly, the adjacent pair whose concatenation is a vocabulary entry with the highest score is merged,
// the leftmost pair winning ties (llama2.c keeps the first pair with a strictly higher score, starting from
// -1e10, so a pair whose merged token scores -1e10 or less, or NaN, never merges); an optional EOS (2) after
// the merges. The merge loop here is a heap over a linked list, O(n log n), with exactly the choices of
// llama2.c's O(n^2) rescans. The BOS token takes part in the merges as in llama2.c.
//
// Decoding, as llama2.c does it: a piece that follows BOS loses one leading space; a piece that sscanf's
// "<0x%02hhX>" matches is that byte. Tokenizer::decode treats the start of the sequence as following BOS (as
// llama2.c's generate loop does and as sentencepiece strips the dummy prefix), so decode(encode(x)) == x.
//
// Where this differs from llama2.c, on inputs llama2.c cannot take or leaves undefined:
//   - invalid UTF-8 is first replaced by U+FFFD (the policy of tokenizer.h), so no stray byte reaches the
//   merges;
//   - llama2.c reads a C string, so it stops at the first NUL byte; here U+0000 is an ordinary code point
//   (byte token
//     <0x00>, id 3), and a text that starts with NUL still gets the dummy prefix;
//   - a vocabulary with two identical entries: lookups return the lowest id (llama2.c's bsearch returns
//   either).
// Files that would make llama2.c misbehave are rejected when loaded (see Llama2cTokenizer::parse).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/tokenizer.h"

namespace disranker {

class Llama2cTokenizer final : public Tokenizer {
 public:
  static constexpr TokenId kUnkId = 0;
  static constexpr TokenId kBosId = 1;
  static constexpr TokenId kEosId = 2;
  static constexpr TokenId kFirstByteId = 3;  // the byte token of byte b is b + 3

  // Reads a tokenizer .bin. Throws Error naming the file (and the byte offset of the problem) when it is
  // missing, unreadable or malformed.
  static std::unique_ptr<Llama2cTokenizer> load(const std::string& path);
  // Parses the bytes of a tokenizer .bin; `source` names it in error messages. Rejected, as Error with the
  // byte offset: a header or entry cut short; max_token_length < 1, below the longest token, or beyond the
  // file size; a negative length or one running past the end of the file; a token holding a NUL byte
  // (llama2.c's tokens are C strings); fewer than 259 tokens, or ids 3..258 not the byte tokens
  // <0x00>..<0xFF> in order (llama2.c's byte fallback); no " " token (llama2.c's dummy prefix).
  static std::unique_ptr<Llama2cTokenizer> parse(std::string_view bytes, const std::string& source);

  Llama2cTokenizer(const Llama2cTokenizer&) = delete;
  Llama2cTokenizer& operator=(const Llama2cTokenizer&) = delete;

  // The ids llama2.c gives `text` with bos = eos = false: the dummy prefix included, no BOS or EOS.
  std::vector<TokenId> encode(std::string_view text) const override;
  // llama2.c's encode(tokenizer, text, bos, eos, ...).
  std::vector<TokenId> encode(std::string_view text, bool bos, bool eos) const;

  // The concatenation of decode_piece(previous id, id) over `ids`, the first id taken as following BOS. With
  // skip_special, ids 0, 1, 2 (<unk>, BOS, EOS) print nothing but still count as the previous id. Throws
  // Error for an id out of range.
  std::string decode(std::span<const TokenId> ids, bool skip_special = true) const override;
  // llama2.c's decode(tokenizer, prev_token, token): the text of `id` printed after `prev`. Throws Error for
  // an id out of range.
  std::string decode_piece(TokenId prev, TokenId id) const;

  std::size_t vocab_size() const override { return scores_.size(); }
  std::string_view id_to_token(TokenId id) const override;
  std::optional<TokenId> token_to_id(std::string_view token) const override;
  std::string_view kind() const override { return "llama2c"; }

  // The score of a token (0 for an id out of range) and the file's max_token_length.
  float score(TokenId id) const;
  std::int32_t max_token_length() const { return max_token_length_; }

 private:
  Llama2cTokenizer() = default;
  void build_indexes();
  // The id of the concatenation of two tokens (the lowest id with those bytes), or -1 when it is no token.
  TokenId pair_merge(TokenId left, TokenId right) const;
  void merge_pairs(std::vector<TokenId>& ids) const;
  void check_id(TokenId id) const;

  std::string source_;
  std::int32_t max_token_length_ = 0;
  std::string text_;                  // every token's bytes, back to back
  std::vector<std::size_t> offsets_;  // token i is text_[offsets_[i], offsets_[i + 1])
  std::vector<float> scores_;
  std::vector<TokenId> canonical_;                     // the lowest id with the same bytes
  std::vector<std::int16_t> byte_value_;               // sscanf "<0x%02hhX>" on the token, or -1
  std::vector<std::int16_t> byte_value_after_bos_;     // the same on the token less a leading space, or -1
  std::unordered_map<std::string_view, TokenId> ids_;  // bytes -> lowest id
  std::unordered_map<std::uint64_t, TokenId>
      merges_;  // (canonical left, canonical right) -> id of the concatenation
  TokenId space_id_ = -1;
};

// Loads a llama2.c tokenizer .bin (see Llama2cTokenizer::load).
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path);

}  // namespace disranker
