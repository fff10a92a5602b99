// Trains a BERT WordPiece vocabulary (vocab.txt) from text, for students trained from scratch.
//
// The algorithm is Hugging Face's WordPieceTrainer (a BPE trainer whose non-initial pieces carry "##"):
//   1. the texts go through BertNormalizer and BertPreTokenizer, and the words are counted;
//   2. the vocabulary starts with the special tokens ([PAD] [UNK] [CLS] [SEP] [MASK] at ids 0-4), then the
//   alphabet
//      (every character seen, at most limit_alphabet of the most frequent, in code point order), then "##c"
//      for every character c seen inside a word (code point order);
//   3. each word is split into its first character and "##" continuing characters, and the most frequent
//   adjacent
//      pair (weighted by word counts) is merged into a new token ("a" + "##b" -> "ab", "##a" + "##b" ->
//      "##ab"), until the vocabulary reaches vocab_size or no pair occurs min_frequency times.
// Unlike Hugging Face, whose ids for the "##c" tokens follow hash-map order, the result is deterministic:
// ties between pairs of equal count go to the pair with the smaller (first id, second id), as in Hugging
// Face, and every id is fixed by the rules above. Pair counts are updated incrementally (only around the
// merged occurrences), with a lazy max-heap, so a 30k vocabulary on tens of MB of text trains in seconds.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/bert_normalizer.h"

namespace disranker {

struct WordPieceTrainerOptions {
  // The target number of tokens, specials included. The specials and the alphabet are always kept, so a
  // corpus with a larger alphabet gives a larger vocabulary (as in Hugging Face).
  std::size_t vocab_size = 30000;
  // A pair occurring fewer times than this (weighted by word counts) is not merged.
  std::uint64_t min_frequency = 2;
  // At most this many characters in the alphabet, the most frequent (ties: lower code point); 0: no limit.
  // 1000 is Hugging Face's BertWordPieceTokenizer.train default.
  std::size_t limit_alphabet = 1000;
  std::vector<std::string> special_tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  std::string continuing_subword_prefix = "##";
  BertNormalizerOptions normalizer;
};

class WordPieceTrainer {
 public:
  explicit WordPieceTrainer(WordPieceTrainerOptions options = {});
  ~WordPieceTrainer();
  WordPieceTrainer(const WordPieceTrainer&) = delete;
  WordPieceTrainer& operator=(const WordPieceTrainer&) = delete;

  // Counts the words of one text (invalid UTF-8 is replaced first, as the tokenizers do).
  void feed(std::string_view text);
  // Counts the words of every line of a text file. Throws Error naming the file when it cannot be read.
  void feed_file(const std::string& path);

  // Distinct words counted so far.
  std::size_t word_types() const;

  // The vocabulary, token of each id in order.
  std::vector<std::string> train() const;

  const WordPieceTrainerOptions& options() const { return options_; }

 private:
  struct Counts;
  WordPieceTrainerOptions options_;
  BertNormalizer normalizer_;
  std::unique_ptr<Counts> counts_;
  std::string buffer_;
};

std::vector<std::string> train_wordpiece(const std::vector<std::string>& texts,
                                         const WordPieceTrainerOptions& options);
std::vector<std::string> train_wordpiece_files(const std::vector<std::string>& paths,
                                               const WordPieceTrainerOptions& options);

// Writes a vocab.txt (one token per line) atomically. Throws Error naming the file on failure, or when a
// token cannot be stored in a vocab.txt (empty, or holding a line break).
void write_wordpiece_vocab(const std::string& path, const std::vector<std::string>& vocab);

}  // namespace disranker
