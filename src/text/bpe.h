// Byte-level BPE (GPT-2, RoBERTa, Llama-3, Qwen2 family) loaded from a Hugging Face tokenizer.json, producing
// the ids of Hugging Face's tokenizers library.
//
// Supported tokenizer.json content (anything else is an Error naming the file and the field):
//   model            {"type": "BPE"}: vocab, merges as "a b" strings or ["a", "b"] pairs, ignore_merges,
//   unk_token
//                    and fuse_unk; dropout null or 0; byte_fallback false; no continuing_subword_prefix or
//                    end_of_word_suffix.
//   normalizer       null, NFC, NFD, NFKC, NFKD (utf8proc), or a Sequence of those.
//   pre_tokenizer    ByteLevel (add_prefix_space, use_regex with GPT-2's pattern), or a Sequence of Split
//   steps
//                    (pattern {"Regex": ...} or {"String": ...}, any behavior, invert) ending with ByteLevel.
//   decoder          ByteLevel (tokens back to bytes; invalid UTF-8 becomes U+FFFD) or null (tokens joined by
//   " "). added_tokens     matched in the text before pre-tokenization, leftmost-longest; normalized=false
//   tokens on the
//                    raw text, normalized=true ones on each normalized piece; single_word, lstrip, rstrip
//                    honoured.
//   post_processor, truncation, padding: ignored (encode() adds no special tokens and never truncates).
//
// Pipeline of encode(), as in Hugging Face's TokenizerImpl::encode with add_special_tokens=false: invalid
// UTF-8 is replaced by U+FFFD (core/utf8.h); non-normalized added tokens are split out; each remaining piece
// is normalized and normalized added tokens are split out; each remaining piece is pre-tokenized (Split
// steps, then ByteLevel: a " " prepended when add_prefix_space and the piece does not start with " ", GPT-2's
// regex when use_regex, bytes mapped to characters); each word goes through the BPE merges (lowest rank
// first, leftmost on ties). A byte whose character is not in the vocabulary becomes unk_token, or is dropped
// when there is none (as Hugging Face does).
//
// Special tokens (SpecialTokens), looked up among the added tokens only, first name present wins:
//   eos  "</s>", "<|endoftext|>", "<|end_of_text|>", "<|im_end|>", "<|eot_id|>", "<eos>"
//   bos  "<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>"; else eos when eos is "<|endoftext|>" (GPT-2)
//   pad  "<pad>", "<|pad|>", "[PAD]"; else "<|endoftext|>" when present (GPT-2 / Qwen2 practice)
//   unk  the model's unk_token, else the added token "<unk>"
//
// Thread-safety: after construction the tokenizer is immutable except for a bounded word cache (words under
// 256 bytes, 16 shards of at most 4096 words, each under its own mutex; a full shard is emptied), so encode()
// and decode() may run concurrently on one instance. Working memory is per thread (thread_local).
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer.h"

namespace disranker {

class BpeTokenizer final : public Tokenizer {
 public:
  // Builds the tokenizer from a parsed tokenizer.json; `path` is only used in error messages.
  static std::unique_ptr<BpeTokenizer> from_json(const nlohmann::json& tokenizer_json,
                                                 const std::string& path);
  ~BpeTokenizer() override;

  std::vector<TokenId> encode(std::string_view text) const override;
  // Appends the ids of `text` to `ids` (encode() without the allocation of a new vector).
  void encode_into(std::string_view text, std::vector<TokenId>& ids) const;
  std::string decode(std::span<const TokenId> ids, bool skip_special = true) const override;

  // One more than the largest id of the model vocabulary and the added tokens.
  std::size_t vocab_size() const override;
  // Added tokens by content, model vocabulary entries in their byte-level form ("Ġthe").
  std::string_view id_to_token(TokenId id) const override;
  std::optional<TokenId> token_to_id(std::string_view token) const override;
  std::string_view kind() const override { return "bpe"; }

  // The words of the pre-tokenizer alone (no normalizer, no added tokens) in byte-level form ("Ġthe"): what
  // Hugging Face's PreTokenizer.pre_tokenize_str gives. For tests and debugging.
  std::vector<std::string> pre_tokenize(std::string_view text) const;
  // Whether `id` is an added token marked special (left out by decode with skip_special).
  bool is_special(TokenId id) const;
  std::size_t merge_count() const;

 private:
  BpeTokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The loader load_tokenizer() uses for a tokenizer.json whose model.type is "BPE".
std::unique_ptr<Tokenizer> load_bpe_json(const nlohmann::json& tokenizer_json, const std::string& path);

// Reads and parses `path` (a tokenizer.json) and builds a BpeTokenizer; malformed JSON is an Error naming the
// file.
std::unique_ptr<BpeTokenizer> load_bpe_file(const std::string& path);

}  // namespace disranker
