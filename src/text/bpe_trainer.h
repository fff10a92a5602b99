// Trains a byte-level BPE (GPT-2 pre-tokenizer) on a corpus and writes a Hugging Face tokenizer.json that
// both BpeTokenizer (text/bpe.h) and Hugging Face's tokenizers library load, for the teacher LLM trained from
// scratch.
//
// The algorithm is Hugging Face's BpeTrainer (tokenizers/src/models/bpe/trainer.rs), step for step, so that
// the same corpus and settings give the same vocabulary and merges:
//   1. each sequence (a line with its "\n" for add_file, like Tokenizer.train(files)) is split by GPT-2's
//   regex
//      (ByteLevel pre-tokenizer, add_prefix_space false) and the words are counted;
//   2. ids: the special tokens first, in the order given; then the alphabet (every byte seen, plus all 256
//   bytes
//      with full_byte_alphabet), sorted by the code point of its byte-level character;
//   3. pair counts with incremental updates: repeatedly the most frequent pair (ties: the smallest (left id,
//   right
//      id)) is merged in the words that contain it, and only the counts of the neighbouring pairs change; a
//      merged string already in the vocabulary keeps its id; training stops at vocab_size tokens, when no
//      pair is left, or when the best count is below min_frequency.
//
// The tokenizer.json written: model BPE (unk_token null; every byte is in the alphabet with
// full_byte_alphabet, so nothing is ever unknown), normalizer null, pre_tokenizer ByteLevel(add_prefix_space
// false, use_regex true), decoder ByteLevel, post_processor null, and the special tokens as added tokens
// (special, not normalized). The defaults "<s>", "</s>", "<pad>", "<unk>" get ids 0..3: BpeTokenizer reports
// them as bos, eos ("</s>", the token whose hidden state the teacher scores), pad and unk. "<unk>" is never
// produced by encode() (there is no unknown byte); it is there for interfaces that expect one.
//
// Deterministic: the same corpus and options give byte-identical files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/tokenizer.h"

namespace disranker {

struct BpeTrainerOptions {
  std::size_t vocab_size = 8000;    // all tokens: special tokens, the byte alphabet and the merged tokens
  std::uint64_t min_frequency = 0;  // a pair seen fewer times is not merged (Hugging Face's default: 0)
  std::vector<std::string> special_tokens = {"<s>", "</s>", "<pad>", "<unk>"};
  bool full_byte_alphabet =
      true;  // all 256 bytes in the vocabulary, seen or not (Hugging Face: initial_alphabet =
             // ByteLevel.alphabet()); false: only the bytes of the corpus
};

// A trained model: tokens by id in their tokenizer.json form (byte-level characters, "Ġthe"; special tokens
// as given) and the merges in rank order.
struct BpeModel {
  std::vector<std::string> vocab;
  std::vector<std::string> special_tokens;  // ids 0 .. special_tokens.size() - 1, as far as they are distinct
  std::vector<std::pair<TokenId, TokenId>> merges;
};

class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainerOptions options = {});
  ~BpeTrainer();
  BpeTrainer(const BpeTrainer&) = delete;
  BpeTrainer& operator=(const BpeTrainer&) = delete;

  // Counts the words of one sequence (invalid UTF-8 is replaced by U+FFFD first).
  void add_text(std::string_view text);
  // Counts every line of the file, each with its "\n" (as Hugging Face's train(files) reads them). Throws
  // Error naming the file when it cannot be read.
  void add_file(const std::string& path);

  std::size_t distinct_words() const;
  BpeModel train() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The tokenizer.json text of a trained model (see the top of this file).
std::string bpe_tokenizer_json(const BpeModel& model);
// Writes bpe_tokenizer_json(model) to `path` atomically.
void write_bpe_tokenizer_json(const BpeModel& model, const std::string& path);

}  // namespace disranker
