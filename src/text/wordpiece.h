// BERT's WordPiece tokenizer, id for id what Hugging Face's tokenizers library produces for the same
// vocabulary: BertNormalizer, BertPreTokenizer, then greedy longest-match-first WordPiece ("##" marks a piece
// that continues a word; a word that cannot be covered, or has more than max_input_chars_per_word characters,
// is one [UNK]).
//
// Two ways in: a BERT vocab.txt (the standard BertWordPiece pipeline, as Hugging Face's
// BertWordPieceTokenizer and tests/oracle/hf_encode.js build it: no added tokens, so "[CLS]" in a text is
// tokenized as text), or a tokenizer.json with a WordPiece model (its normalizer, pre-tokenizer, decoder and
// added tokens are honoured: an added token such as "[CLS]" in a text becomes its id, as in Hugging Face).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/bert_normalizer.h"
#include "text/tokenizer.h"

namespace disranker {

// A token added to the vocabulary on top of the model (tokenizer.json "added_tokens"), matched in the text
// before the model sees it.
struct WordPieceAddedToken {
  std::string content;
  bool single_word = false;  // only where it is not inside a word
  bool lstrip = false;       // swallows the whitespace on its left
  bool rstrip = false;       // swallows the whitespace on its right
  bool normalized = true;    // matched in the normalized text (else in the raw text)
  bool special = false;      // left out by decode(skip_special = true)
};

struct WordPieceConfig {
  // The vocabulary: (token, id) pairs. When a token appears twice the later pair wins, as in Hugging Face
  // (whose vocabulary is a map filled in file order); ids need not be dense.
  std::vector<std::pair<std::string, TokenId>> vocab;
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  std::size_t max_input_chars_per_word = 100;
  // No value: no normalizer (tokenizer.json "normalizer": null).
  std::optional<BertNormalizerOptions> normalizer = BertNormalizerOptions{};
  // false: no pre-tokenizer, each (normalized) text or piece between added tokens is one word.
  bool bert_pre_tokenizer = true;
  // The WordPiece decoder; without it decode() joins tokens with spaces.
  bool wordpiece_decoder = true;
  std::string decoder_prefix = "##";
  bool decoder_cleanup = true;
  std::vector<WordPieceAddedToken> added_tokens;
  // Tokens left out by decode(skip_special = true) besides the special added tokens (the vocab.txt pipeline:
  // the five BERT specials).
  std::vector<std::string> special_tokens;
};

class WordPieceTokenizer : public Tokenizer {
 public:
  // Throws Error (naming `source`, a file name for messages) when the vocabulary lacks the unk token.
  explicit WordPieceTokenizer(WordPieceConfig config, const std::string& source = "WordPiece vocabulary");
  ~WordPieceTokenizer() override;

  std::vector<TokenId> encode(std::string_view text) const override;
  // Hugging Face's decode: ids to tokens (added tokens first), specials left out when asked, then the
  // WordPiece decoder: pieces after the first get a leading space unless they start with "##" (which is
  // removed), and with cleanup " ." becomes "." and so on, piece by piece. Ids out of range are skipped.
  std::string decode(std::span<const TokenId> ids, bool skip_special = true) const override;

  // Number of ids: the vocabulary's lines (or largest id + 1 with added tokens).
  std::size_t vocab_size() const override;
  std::string_view id_to_token(TokenId id) const override;
  std::optional<TokenId> token_to_id(std::string_view token) const override;
  std::string_view kind() const override { return "wordpiece"; }

  // The tokens of `text` (the strings behind encode's ids).
  std::vector<std::string> tokenize(std::string_view text) const;
  // WordPiece alone on one pre-tokenized word; appends the ids to `out`.
  void encode_word(std::string_view word, std::vector<TokenId>& out) const;
  const WordPieceConfig& config() const { return config_; }

 private:
  struct Impl;
  void encode_text(std::string_view valid_text, std::vector<TokenId>& out) const;
  void encode_normalized(std::string_view normalized, std::vector<TokenId>& out) const;

  WordPieceConfig config_;
  std::unique_ptr<Impl> impl_;
};

// The standard BERT pipeline over a vocab.txt (one token per line, the line number is the id; trailing
// whitespace trimmed as Hugging Face does). Throws Error naming the file when it is missing or has no [UNK].
std::unique_ptr<Tokenizer> load_wordpiece_vocab(const std::string& vocab_txt,
                                                const BertNormalizerOptions& options);
// Reads a vocab.txt into (token, line index) pairs, as Hugging Face's WordPiece::read_file does. Throws Error
// naming the file (and line) when it is missing, unreadable or not UTF-8.
std::vector<std::pair<std::string, TokenId>> read_wordpiece_vocab(const std::string& vocab_txt);

// A Hugging Face tokenizer.json whose model.type is WordPiece. Supported: normalizer BertNormalizer or null,
// pre_tokenizer BertPreTokenizer or null, decoder WordPiece or null; anything else is an Error naming `path`
// and the field.
std::unique_ptr<Tokenizer> load_wordpiece_json(const nlohmann::json& tokenizer_json, const std::string& path);

}  // namespace disranker
