// Masked-language-model pre-training of the BERT student from scratch (no pretrained BERT can be had here),
// with BERT's recipe (Devlin et al. 2019): 15% of the non-special tokens are chosen; of those 80% become
// [MASK], 10% a random token, 10% stay unchanged; the loss is the cross-entropy of the original token at the
// chosen positions.
//
// Sequences: [CLS] text [SEP] text [SEP] ... — texts (document "title text", or queries) are tokenized, a
// text longer than max_length - 2 tokens is split into consecutive pieces, and pieces are packed whole into
// sequences of at most max_length tokens (best fit, train/cpt.h), so that short texts do not waste padding.
// Token types are all 0 (there is no sentence-pair objective).
//
// Masking is a pure function of the batch seed (batch_seed(seed, epoch, index)), like the batch order, so
// that a resumed run sees exactly the masks of an uninterrupted one. Random replacements are drawn uniformly
// from the non-special tokens; special tokens ([PAD], [UNK], [CLS], [SEP], [MASK]) are never chosen.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "core/random.h"
#include "model/bert.h"
#include "model/ranker.h"
#include "text/tokenizer.h"
#include "train/train_options.h"

namespace disranker {

// What the masking needs to know about the vocabulary.
struct MlmVocabulary {
  TokenId mask = -1;
  std::vector<bool> special;            // by id: never chosen, never a random replacement
  std::vector<TokenId> random_choices;  // the non-special ids
  // From a WordPiece tokenizer: Error when it has no [MASK], [CLS] or [SEP].
  static MlmVocabulary from(const Tokenizer& tokenizer);
  bool is_special(TokenId id) const {
    return id < 0 || static_cast<std::size_t>(id) >= special.size() || special[static_cast<std::size_t>(id)];
  }
};

struct MlmMasking {
  double mask_prob = 0.15;    // share of the non-special tokens chosen (each independently)
  double mask_share = 0.8;    // of the chosen: replaced by [MASK]
  double random_share = 0.1;  // of the chosen: replaced by a random token (the rest stays unchanged)
};

// Masks `ids` in place: labels[i] = the original token where position i is chosen, -1 elsewhere. Draws from
// rng.
void mask_for_mlm(std::span<TokenId> ids, std::span<TokenId> labels, const MlmVocabulary& vocabulary,
                  const MlmMasking& masking, SplitMix64& rng);

// The tokens of each text, split into pieces of at most max_length - 2 tokens (room for [CLS] and one [SEP]);
// empty texts give nothing. *split counts the texts that were split.
std::vector<std::vector<TokenId>> mlm_pieces(const Tokenizer& tokenizer, std::span<const std::string> texts,
                                             std::size_t max_length, std::size_t* split = nullptr);
// Packs whole pieces, taken in `order`, into sequences [CLS] piece [SEP] piece [SEP] ... of at most
// max_length tokens (best fit).
std::vector<std::vector<TokenId>> pack_mlm_sequences(std::span<const std::vector<TokenId>> pieces,
                                                     std::span<const std::size_t> order,
                                                     std::size_t max_length, TokenId cls, TokenId sep);

// A masked, padded batch on a device: input_ids, attention_mask, token_type_ids (zeros) [B, T] int64;
// chosen [B, T] bool; labels [B, T] int64 (the original token at chosen positions, else 0).
struct MlmBatch {
  torch::Tensor input_ids, attention_mask, token_type_ids, chosen, labels;
  std::int64_t tokens = 0;  // real (non-padding) tokens
  std::int64_t masked = 0;  // chosen positions
};
// Masks the sequences with SplitMix64(seed), row after row, position after position.
MlmBatch make_mlm_batch(std::span<const std::vector<TokenId>* const> sequences,
                        const MlmVocabulary& vocabulary, const MlmMasking& masking, std::uint64_t seed,
                        TokenId pad_id, const torch::Device& device);

struct MlmLoss {
  torch::Tensor loss;        // mean cross-entropy over the chosen positions (0 with a grad path when none)
  std::int64_t count = 0;    // chosen positions
  std::int64_t correct = 0;  // of which the argmax is the original token
};
// The MLM head runs on the chosen positions only.
MlmLoss masked_lm_loss(BertRankerImpl& model, const MlmBatch& batch);

struct MlmOptions {
  std::vector<std::string> text_paths;  // documents or queries TSVs (read_lm_texts in train/cpt.h)
  std::string dev_text_path;            // empty: every 100th text of the inputs is held out instead
  std::size_t max_length = 128;
  double mask_prob = 0.15;
  std::size_t batch_size = 32;
};
inline constexpr std::size_t kMlmHoldOutEvery = 100;
void validate(const MlmOptions& options);

// Masked-token loss and accuracy on fixed sequences, with fixed masks (drawn from `seed`, the same every
// call).
nlohmann::json evaluate_mlm(BertRankerImpl& model, std::span<const std::vector<TokenId>> sequences,
                            const MlmVocabulary& vocabulary, const MlmMasking& masking,
                            std::size_t batch_size, std::uint64_t seed, TokenId pad_id,
                            const torch::Device& device);

// Runs the stage: trains `ranker` (BERT with an MLM head; Error otherwise), writes OUT/model (Ranker::save,
// provenance {stage: "mlm", ...}; the ranking head stays as initialised) and OUT/summary.json; returns the
// summary.
nlohmann::json run_mlm(Ranker& ranker, const std::string& model_dir, const MlmOptions& options,
                       const RunOptions& run, const OptimizerOptions& optimizer);

}  // namespace disranker
