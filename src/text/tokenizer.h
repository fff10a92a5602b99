// The tokenizer interface shared by the BERT student (WordPiece), the LLM teacher (byte-level BPE) and the
// llama2.c reference model. Implementations must produce exactly the ids of the Hugging Face tokenizers library
// for the same files (the tests compare against it).
//
// Invalid UTF-8 policy: every implementation first replaces each maximal invalid subpart of the input with U+FFFD
// (replace_invalid_utf8 in core/utf8.h): the WHATWG decoder's rule, which is what Node, browsers and Python's
// "replace" error handler do, so a string with bad bytes tokenizes as its decoded form would in Hugging Face's
// library. Nothing is dropped silently and nothing throws.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace disranker {

using TokenId = std::int32_t;

// Ids of the special tokens a model uses; -1 when the vocabulary has none.
struct SpecialTokens {
  TokenId pad = -1;
  TokenId unk = -1;
  TokenId cls = -1;   // BERT [CLS]
  TokenId sep = -1;   // BERT [SEP]
  TokenId mask = -1;  // BERT [MASK]
  TokenId bos = -1;   // decoder begin-of-sequence
  TokenId eos = -1;   // decoder end-of-sequence, the "</s>" whose hidden state the teacher scores
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of `text`, without special tokens (Hugging Face: add_special_tokens=false).
  virtual std::vector<TokenId> encode(std::string_view text) const = 0;
  // The text of a sequence of ids; special tokens are left out when skip_special is set.
  virtual std::string decode(std::span<const TokenId> ids, bool skip_special = true) const = 0;

  virtual std::size_t vocab_size() const = 0;
  // The vocabulary entry of an id ("##ing", "Ġthe", "<0x0A>"), or an empty view for an id out of range.
  virtual std::string_view id_to_token(TokenId id) const = 0;
  virtual std::optional<TokenId> token_to_id(std::string_view token) const = 0;

  const SpecialTokens& special() const { return special_; }
  // "wordpiece", "bpe" or "llama2c".
  virtual std::string_view kind() const = 0;

 protected:
  SpecialTokens special_;
};

// Loads a tokenizer from a file or a model directory:
//   vocab.txt (BERT WordPiece; lower-cased unless the name contains "cased" without "uncased"),
//   tokenizer.json (model WordPiece or BPE), a llama2.c tokenizer .bin (tok512.bin),
//   a directory holding tokenizer.json or vocab.txt (tokenizer_config.json may set do_lower_case).
// Throws Error naming the file for anything missing or malformed.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

}  // namespace disranker
