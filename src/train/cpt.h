// Continued pre-training (CPT) of the decoder teacher, the paper's first stage: causal language modelling of
// "query → clicked title + summary", so that the LLM learns what a searcher's query says about the document
// it leads to before it is tuned to rank.
//
// Each pair is encoded exactly as the teacher will later read it for ranking (PairEncoder, style kDecoder):
//   [bos] "query: " query " document: " title " " summary </s>
// and the next-token loss is taken on the target only: the title, the separator, the summary and the final
// </s> (the bos, the template text and the query are context, masked out). Plain document text (--text,
// "title text" as one [bos] ... </s> sequence) can be mixed in; its loss covers every token but the first,
// which has no context to be predicted from.
//
// Packing (the default): examples are placed whole into rows of max_length tokens (best fit, so rows come out
// nearly full); a row's target mask keeps each example's own targets. Examples of a row can attend to the
// earlier examples of the row (standard GPT-style packing: the decoder has a causal mask but no per-segment
// mask). An example is never split across rows; one longer than max_length is truncated first, as PairEncoder
// truncates (the summary from its end, then the title, then the query beyond its protected tokens; </s>
// always kept). Without packing, each row is one example, and rows of similar length are batched together
// (length buckets) so that dynamic padding wastes little.
//
// Determinism: micro-batch (epoch, index) is a pure function of (seed, epoch, index) (core/random.h), so that
// a resumed run takes exactly the steps of an uninterrupted one (train/trainer.h).
//
// The helpers for rows, packing and batch order are shared with the MLM stage (train/mlm.h).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "data/cpt_pairs.h"
#include "model/llama.h"
#include "model/ranker.h"
#include "text/pair_encoding.h"
#include "text/tokenizer.h"
#include "train/train_options.h"

namespace disranker {

// ---- Examples and rows (no libtorch)
// ---------------------------------------------------------------------------

// One language-modelling example: its tokens, and the index of its first target token (every token from
// target_start on is predicted from the tokens before it).
struct LmExample {
  std::vector<TokenId> ids;
  std::size_t target_start = 1;
  bool truncated = false;
  std::size_t targets() const { return ids.size() > target_start ? ids.size() - target_start : 0; }
};

// Encodes CPT examples with the teacher's pair template.
class LmExampleEncoder {
 public:
  // options.style must be kDecoder (Error otherwise); max_length bounds every example.
  LmExampleEncoder(const Tokenizer& tokenizer, PairEncoderOptions options);

  // [bos] "query: " query " document: " title " " summary </s>, target from the title's first token (or the
  // summary's, or </s>) to the end. The ids are exactly PairEncoder::encode's.
  LmExample pair(std::string_view query, std::string_view title, std::string_view summary) const;
  // [bos] text </s> (PairEncoder::encode_single), target: every token but the first.
  LmExample text(std::string_view text) const;

  const PairEncoder& pair_encoder() const { return encoder_; }

 private:
  PairEncoder encoder_;
  std::size_t tokens_before_query_ = 0;  // bos and the query prefix
  std::size_t document_prefix_tokens_ = 0;
};

// A training row: tokens and, for each position, whether its token is a target (predicted from the position
// before it; position 0 never is).
struct LmRow {
  std::vector<TokenId> ids;
  std::vector<std::uint8_t> targets;
  std::vector<std::size_t> example_starts;  // where each example of the row begins
};

// Assigns items of the given sizes (each <= capacity) to bins of `capacity`, taking the items in `order` and
// putting each in the fullest bin it still fits (best fit), or a new bin. Bins list their items in the order
// they were placed. Deterministic. Throws Error for an item larger than the capacity.
std::vector<std::vector<std::size_t>> pack_best_fit(std::span<const std::size_t> sizes,
                                                    std::span<const std::size_t> order, std::size_t capacity);

// Packs whole examples into rows of at most max_length tokens (pack_best_fit on their lengths, in `order`).
std::vector<LmRow> pack_lm_examples(std::span<const LmExample> examples, std::span<const std::size_t> order,
                                    std::size_t max_length);
// One row per example.
LmRow lm_row(const LmExample& example);

// Which rows form micro-batch (epoch, index): a pure function of (seed, epoch, index). Every epoch visits
// every row once, in an order drawn from (seed, epoch). With length buckets, the epoch's order is cut into
// windows of kBucketBatches batches, each window is sorted by row length and cut into batches, and the
// batches are then shuffled: batches hold rows of similar lengths but their order stays random.
class RowBatcher {
 public:
  static constexpr std::size_t kBucketBatches = 32;
  RowBatcher(std::vector<std::size_t> row_lengths, std::size_t batch_size, bool length_buckets,
             std::uint64_t seed);

  std::int64_t batches_per_epoch() const;
  // Row indices of micro-batch `index` (0 <= index < batches_per_epoch()) of `epoch`.
  std::vector<std::size_t> batch(std::int64_t epoch, std::int64_t index) const;

 private:
  void plan_epoch(std::int64_t epoch) const;
  std::vector<std::size_t> lengths_;
  std::size_t batch_size_;
  bool length_buckets_;
  std::uint64_t seed_;
  mutable std::int64_t planned_epoch_ = -1;
  mutable std::vector<std::vector<std::size_t>> plan_;
};

// ---- Tensors and the loss
// ----------------------------------------------------------------------------------------

// A padded batch of rows on a device: input_ids and attention_mask [B, T] int64 (right padding),
// targets [B, T] bool.
struct LmBatch {
  torch::Tensor input_ids, attention_mask, targets;
  std::int64_t tokens = 0;        // real (non-padding) tokens
  std::int64_t target_count = 0;  // target tokens
};
LmBatch make_lm_batch(std::span<const LmRow* const> rows, TokenId pad_id, const torch::Device& device);

// Mean next-token cross-entropy over the target positions: the token at position p (targets[p] set) is
// predicted from the model's logits at position p - 1. The LM head runs only on the positions that predict a
// target (the vocabulary projection is the costly part). A batch without targets gives 0 with a grad path.
struct LmLoss {
  torch::Tensor loss;      // scalar mean
  std::int64_t count = 0;  // targets averaged over
};
LmLoss causal_lm_loss(DecoderImpl& model, const LmBatch& batch);

// ---- The stage
// ---------------------------------------------------------------------------------------------------

// read_cpt_pairs (data/cpt_pairs.h: `query<TAB>title<TAB>summary`), except that a file without pairs is an
// Error naming it: a stage cannot train on nothing.
std::vector<CptPair> read_training_pairs(const std::string& path);

// Texts for language modelling from a documents TSV (`docid<TAB>title<TAB>text`: "title text") or a queries
// TSV
// (`qid<TAB>query`), told apart by the column count of the first line. Blank documents are skipped and
// counted in *skipped. An empty file, or one with neither layout, is an Error naming it.
std::vector<std::string> read_lm_texts(const std::string& path, std::size_t* skipped = nullptr);

struct CptOptions {
  std::string pairs_path;
  std::vector<std::string> text_paths;  // plain documents mixed in
  double text_ratio = 0.2;              // share of the examples that are documents (when text is given)
  std::string dev_pairs_path;           // epoch-end validation loss and perplexity
  std::size_t max_length = 128;
  std::size_t batch_size = 16;  // rows per micro-batch
  bool pack = true;
};
// Throws Error naming the flag for an out-of-range setting.
void validate(const CptOptions& options);

// Loss and perplexity of `model` on examples, one example per row, in batches of batch_size (eval mode, no
// grad).
nlohmann::json evaluate_lm(DecoderImpl& model, std::span<const LmExample> examples, std::size_t batch_size,
                           TokenId pad_id, const torch::Device& device);

// Runs the stage: reads the inputs, trains `ranker` (a decoder with an LM head; Error otherwise) with the
// Trainer, writes OUT/model (Ranker::save, provenance {stage: "cpt", ...}) and OUT/summary.json, and returns
// the summary.
nlohmann::json run_cpt(Ranker& ranker, const std::string& model_dir, const CptOptions& options,
                       const RunOptions& run, const OptimizerOptions& optimizer);

}  // namespace disranker
