// Encoding a (query, document) pair for a ranker, with per-field budgets that protect the query.
//
// BERT cross-encoder (style kBert):
//   [CLS] query [SEP] title [SEP] summary [SEP]      token types 0 ... 0 | 1 ... 1
//   where the [CLS] query [SEP] part has type 0 and the rest type 1. An empty title or summary drops that
//   field and its [SEP], so a document with one text field encodes exactly as Hugging Face's tokenizer(query,
//   text) does: [CLS] query [SEP] text [SEP] — the layout every public BERT cross-encoder was trained with.
// Decoder LLM (style kDecoder, the teacher):
//   [bos] "query: " query " document: " title " " summary </s>      token types all 0
//   Each piece is tokenized on its own (so that truncation never re-tokenizes a field) and the final </s> is
//   always kept: the teacher reads its relevance score from that token's hidden state, the only position that
//   has seen the whole pair.
//
// Truncation when the pair exceeds max_length: the summary is cut first (from its end), then the title, then
// the query's tokens beyond its first `protected_query_tokens`; the query's first tokens are never cut. A
// per-call document budget (max_document_tokens, e.g. the serving API's max_tokens_per_doc) caps the title
// and summary tokens together, the summary cut first, before the max_length rule applies; the query is not
// affected.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer.h"

namespace disranker {

enum class PairStyle { kBert, kDecoder };

struct PairEncoderOptions {
  PairStyle style = PairStyle::kBert;
  std::size_t max_length = 256;             // every token, special tokens included
  std::size_t protected_query_tokens = 32;  // never truncated
  // Decoder template pieces.
  std::string query_prefix = "query: ";
  std::string document_prefix = " document: ";
  std::string field_separator = " ";
  bool add_bos = false;  // prepend the tokenizer's bos token (decoder style), when it has one
};

struct EncodedPair {
  std::vector<TokenId> ids;
  std::vector<std::uint8_t> type_ids;
  std::size_t query_tokens = 0;  // query tokens kept
  bool truncated = false;
};

class PairEncoder {
 public:
  // Throws Error when the tokenizer lacks the special tokens the style needs ([CLS]/[SEP], or an eos), or
  // when max_length cannot hold the special tokens and the protected query tokens.
  PairEncoder(const Tokenizer& tokenizer, PairEncoderOptions options);

  // max_document_tokens: 0 = no cap beyond max_length.
  EncodedPair encode(std::string_view query, std::string_view title, std::string_view summary,
                     std::size_t max_document_tokens = 0) const;
  // One text with the style's special tokens: [CLS] text [SEP], or [bos] text </s>.
  EncodedPair encode_single(std::string_view text) const;

  const PairEncoderOptions& options() const { return options_; }

 private:
  const Tokenizer& tokenizer_;
  PairEncoderOptions options_;
  std::vector<TokenId> query_prefix_ids_, document_prefix_ids_, separator_ids_;
};

// The pair encoder of a model with `max_positions` position embeddings, for a pair budget of max_length
// tokens: Error naming `source` and max_length when the budget is outside [1, max_positions].
std::unique_ptr<PairEncoder> make_model_pair_encoder(const Tokenizer& tokenizer, PairEncoderOptions options,
                                                     std::int64_t max_length, std::int64_t max_positions,
                                                     const std::string& source);

// A padded batch, row-major [batch, seq_len], padded on the right to the longest sequence of the batch
// (dynamic padding). attention_mask is 1 on real tokens; lengths[i] - 1 is the index of row i's last real
// token.
struct Batch {
  std::size_t batch_size = 0;
  std::size_t seq_len = 0;
  std::vector<std::int64_t> input_ids;
  std::vector<std::int64_t> token_type_ids;
  std::vector<std::int64_t> attention_mask;
  std::vector<std::size_t> lengths;
};

Batch make_batch(std::span<const EncodedPair> pairs, TokenId pad_id);

}  // namespace disranker
