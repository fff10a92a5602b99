#include "train/cpt.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>
#include <ostream>

#include "core/error.h"
#include "core/files.h"
#include "core/random.h"
#include "data/docs.h"
#include "data/queries.h"
#include "data/tsv.h"
#include "model/runtime.h"
#include "train/trainer.h"

namespace disranker {

namespace fs = std::filesystem;

// ---- Examples
// ----------------------------------------------------------------------------------------------------

LmExampleEncoder::LmExampleEncoder(const Tokenizer& tokenizer, PairEncoderOptions options)
    : encoder_(tokenizer, options) {
  if (options.style != PairStyle::kDecoder) throw Error("CPT examples need the decoder pair template");
  // PairEncoder tokenizes each template piece on its own, so these counts are exactly the pieces' lengths in
  // every encoded pair.
  tokens_before_query_ = tokenizer.encode(options.query_prefix).size() + (options.add_bos ? 1 : 0);
  document_prefix_tokens_ = tokenizer.encode(options.document_prefix).size();
}

LmExample LmExampleEncoder::pair(std::string_view query, std::string_view title,
                                 std::string_view summary) const {
  EncodedPair encoded = encoder_.encode(query, title, summary);
  LmExample example;
  example.target_start = tokens_before_query_ + encoded.query_tokens + document_prefix_tokens_;
  example.truncated = encoded.truncated;
  example.ids = std::move(encoded.ids);
  return example;
}

LmExample LmExampleEncoder::text(std::string_view text) const {
  EncodedPair encoded = encoder_.encode_single(text);
  LmExample example;
  example.target_start = 1;
  example.truncated = encoded.truncated;
  example.ids = std::move(encoded.ids);
  return example;
}

// ---- Packing
// -----------------------------------------------------------------------------------------------------

std::vector<std::vector<std::size_t>> pack_best_fit(std::span<const std::size_t> sizes,
                                                    std::span<const std::size_t> order,
                                                    std::size_t capacity) {
  std::vector<std::vector<std::size_t>> bins;
  // Free space → bins with that much space left; best fit takes the smallest free space that still holds the
  // item (ties: the bin opened first), which keeps rows nearly full.
  std::multimap<std::size_t, std::size_t> free_space;
  for (const std::size_t item : order) {
    const std::size_t size = sizes[item];
    if (size > capacity) {
      throw Error("packing: an item of " + std::to_string(size) + " tokens does not fit rows of " +
                  std::to_string(capacity));
    }
    auto it = free_space.lower_bound(size);
    std::size_t bin;
    if (it == free_space.end()) {
      bin = bins.size();
      bins.emplace_back();
      free_space.emplace(capacity - size, bin);
    } else {
      bin = it->second;
      const std::size_t left = it->first - size;
      free_space.erase(it);
      free_space.emplace(left, bin);
    }
    bins[bin].push_back(item);
  }
  return bins;
}

std::vector<LmRow> pack_lm_examples(std::span<const LmExample> examples, std::span<const std::size_t> order,
                                    std::size_t max_length) {
  std::vector<std::size_t> sizes;
  sizes.reserve(examples.size());
  for (const auto& e : examples) sizes.push_back(e.ids.size());
  std::vector<LmRow> rows;
  for (const auto& bin : pack_best_fit(sizes, order, max_length)) {
    LmRow row;
    for (const std::size_t item : bin) {
      const LmExample& e = examples[item];
      row.example_starts.push_back(row.ids.size());
      row.ids.insert(row.ids.end(), e.ids.begin(), e.ids.end());
      for (std::size_t i = 0; i < e.ids.size(); ++i)
        row.targets.push_back(i >= e.target_start && i > 0 ? 1 : 0);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

LmRow lm_row(const LmExample& example) {
  LmRow row;
  row.ids = example.ids;
  row.example_starts = {0};
  for (std::size_t i = 0; i < example.ids.size(); ++i) {
    row.targets.push_back(i >= example.target_start && i > 0 ? 1 : 0);
  }
  return row;
}

// ---- Batch order
// -------------------------------------------------------------------------------------------------

RowBatcher::RowBatcher(std::vector<std::size_t> row_lengths, std::size_t batch_size, bool length_buckets,
                       std::uint64_t seed)
    : lengths_(std::move(row_lengths)),
      batch_size_(batch_size),
      length_buckets_(length_buckets),
      seed_(seed) {
  if (batch_size_ < 1) throw Error("batch size must be >= 1");
}

std::int64_t RowBatcher::batches_per_epoch() const {
  return static_cast<std::int64_t>((lengths_.size() + batch_size_ - 1) / batch_size_);
}

void RowBatcher::plan_epoch(std::int64_t epoch) const {
  if (planned_epoch_ == epoch) return;
  const std::vector<std::size_t> order = epoch_order(lengths_.size(), seed_, epoch);
  plan_.clear();
  if (!length_buckets_) {
    for (std::size_t begin = 0; begin < order.size(); begin += batch_size_) {
      const std::size_t end = std::min(order.size(), begin + batch_size_);
      plan_.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(begin),
                         order.begin() + static_cast<std::ptrdiff_t>(end));
    }
  } else {
    const std::size_t window = batch_size_ * kBucketBatches;
    std::vector<std::vector<std::size_t>> batches;
    for (std::size_t begin = 0; begin < order.size(); begin += window) {
      const std::size_t end = std::min(order.size(), begin + window);
      std::vector<std::size_t> rows(order.begin() + static_cast<std::ptrdiff_t>(begin),
                                    order.begin() + static_cast<std::ptrdiff_t>(end));
      std::stable_sort(rows.begin(), rows.end(),
                       [this](std::size_t a, std::size_t b) { return lengths_[a] < lengths_[b]; });
      for (std::size_t b = 0; b < rows.size(); b += batch_size_) {
        const std::size_t e = std::min(rows.size(), b + batch_size_);
        batches.emplace_back(rows.begin() + static_cast<std::ptrdiff_t>(b),
                             rows.begin() + static_cast<std::ptrdiff_t>(e));
      }
    }
    // The batch order is drawn from another stream than the row order (index -2 instead of epoch_order's -1).
    SplitMix64 rng(batch_seed(seed_, epoch, -2));
    for (std::size_t i = batches.size(); i > 1; --i) std::swap(batches[i - 1], batches[rng.below(i)]);
    plan_ = std::move(batches);
  }
  planned_epoch_ = epoch;
}

std::vector<std::size_t> RowBatcher::batch(std::int64_t epoch, std::int64_t index) const {
  plan_epoch(epoch);
  if (index < 0 || index >= static_cast<std::int64_t>(plan_.size())) {
    throw Error("micro-batch " + std::to_string(index) + " is outside the epoch's " +
                std::to_string(plan_.size()) + " batches");
  }
  return plan_[static_cast<std::size_t>(index)];
}

// ---- Tensors and the loss
// ----------------------------------------------------------------------------------------

LmBatch make_lm_batch(std::span<const LmRow* const> rows, TokenId pad_id, const torch::Device& device) {
  std::size_t length = 0;
  for (const LmRow* row : rows) length = std::max(length, row->ids.size());
  const auto b = static_cast<std::int64_t>(rows.size());
  const auto t = static_cast<std::int64_t>(length);
  auto ids = torch::full({b, t}, static_cast<std::int64_t>(pad_id), torch::kLong);
  auto mask = torch::zeros({b, t}, torch::kLong);
  auto targets = torch::zeros({b, t}, torch::kBool);
  auto ids_a = ids.accessor<std::int64_t, 2>();
  auto mask_a = mask.accessor<std::int64_t, 2>();
  auto targets_a = targets.accessor<bool, 2>();
  LmBatch batch;
  for (std::int64_t r = 0; r < b; ++r) {
    const LmRow& row = *rows[static_cast<std::size_t>(r)];
    for (std::size_t i = 0; i < row.ids.size(); ++i) {
      const auto p = static_cast<std::int64_t>(i);
      ids_a[r][p] = row.ids[i];
      mask_a[r][p] = 1;
      targets_a[r][p] = row.targets[i] != 0 && i > 0;
      batch.target_count += targets_a[r][p] ? 1 : 0;
    }
    batch.tokens += static_cast<std::int64_t>(row.ids.size());
  }
  batch.input_ids = ids.to(device);
  batch.attention_mask = mask.to(device);
  batch.targets = targets.to(device);
  return batch;
}

LmLoss causal_lm_loss(DecoderImpl& model, const LmBatch& batch) {
  const torch::Tensor hidden = model.forward(batch.input_ids, batch.attention_mask);
  LmLoss out;
  const std::int64_t t = batch.input_ids.size(1);
  if (t < 2 || batch.target_count == 0) {
    out.loss = hidden.sum() * 0.0;
    return out;
  }
  // targets[:, p] predicted from hidden[:, p - 1]: shift the mask left by one.
  const torch::Tensor predicts = batch.targets.narrow(1, 1, t - 1);
  const torch::Tensor states = hidden.narrow(1, 0, t - 1).index({predicts});           // [N, hidden]
  const torch::Tensor labels = batch.input_ids.narrow(1, 1, t - 1).index({predicts});  // [N]
  const torch::Tensor logits = model.lm_logits(states).to(torch::kFloat);
  out.loss = torch::nn::functional::cross_entropy(logits, labels);
  out.count = labels.size(0);
  return out;
}

// ---- Inputs
// ------------------------------------------------------------------------------------------------------

std::vector<CptPair> read_training_pairs(const std::string& path) {
  std::vector<CptPair> pairs = read_cpt_pairs(path);
  if (pairs.empty()) throw Error(path, 0, "", "no pairs: the file is empty");
  return pairs;
}

std::vector<std::string> read_lm_texts(const std::string& path, std::size_t* skipped) {
  std::size_t columns = 0;
  for_each_line(path, [&](std::size_t, std::string_view line) {
    if (columns == 0) columns = static_cast<std::size_t>(std::count(line.begin(), line.end(), '\t')) + 1;
  });
  if (columns == 0) throw Error(path, 0, "", "no texts: the file is empty");
  std::vector<std::string> texts;
  std::size_t blank = 0;
  if (columns == 3) {
    const Docs docs = read_docs(path, /*allow_empty=*/true);
    for (const Doc& doc : docs.items()) {
      if (is_blank(doc.title) && is_blank(doc.text)) {
        ++blank;
        continue;
      }
      if (is_blank(doc.title)) {
        texts.push_back(doc.text);
      } else if (is_blank(doc.text)) {
        texts.push_back(doc.title);
      } else {
        texts.push_back(doc.title + " " + doc.text);
      }
    }
  } else if (columns == 2) {
    const Queries queries = read_queries(path);
    for (const Query& query : queries.items()) texts.push_back(query.text);
  } else {
    throw Error(path, 1, "",
                "expected a documents TSV (docid, title, text) or a queries TSV (qid, query), found " +
                    std::to_string(columns) + " columns");
  }
  if (skipped != nullptr) *skipped = blank;
  if (texts.empty()) throw Error(path, 0, "", "no texts: every document is blank");
  return texts;
}

void validate(const CptOptions& options) {
  if (options.pairs_path.empty()) throw Error("--pairs is required");
  if (!(options.text_ratio >= 0 && options.text_ratio < 1)) throw Error("--text-ratio must be in [0, 1)");
  if (options.max_length < 8) throw Error("--max-length must be >= 8");
  if (options.batch_size < 1) throw Error("--batch-size must be >= 1");
}

// ---- Validation
// --------------------------------------------------------------------------------------------------

nlohmann::json evaluate_lm(DecoderImpl& model, std::span<const LmExample> examples, std::size_t batch_size,
                           TokenId pad_id, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  // Sorted by length, so that batches pad little; the order does not change the figures.
  std::vector<std::size_t> order(examples.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return examples[a].ids.size() < examples[b].ids.size();
  });
  std::vector<LmRow> rows;
  rows.reserve(examples.size());
  for (const std::size_t i : order) rows.push_back(lm_row(examples[i]));
  double total = 0;
  std::int64_t count = 0;
  for (std::size_t begin = 0; begin < rows.size(); begin += batch_size) {
    std::vector<const LmRow*> batch_rows;
    for (std::size_t i = begin; i < std::min(rows.size(), begin + batch_size); ++i)
      batch_rows.push_back(&rows[i]);
    const LmBatch batch = make_lm_batch(batch_rows, pad_id, device);
    const LmLoss loss = causal_lm_loss(model, batch);
    total += loss.loss.item<double>() * static_cast<double>(loss.count);
    count += loss.count;
  }
  model.train(was_training);
  const double mean = count > 0 ? total / static_cast<double>(count) : 0.0;
  return {{"loss", mean},
          {"perplexity", std::exp(mean)},
          {"target_tokens", count},
          {"examples", examples.size()}};
}

// ---- The stage
// ---------------------------------------------------------------------------------------------------

namespace {

std::string percent(double share) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f%%", 100.0 * share);
  return buffer;
}

}  // namespace

nlohmann::json run_cpt(Ranker& ranker, const std::string& model_dir, const CptOptions& options,
                       const RunOptions& run, const OptimizerOptions& optimizer) {
  validate(options);
  DecoderImpl* decoder = ranker.decoder();
  if (ranker.architecture() != Architecture::kDecoder || decoder == nullptr) {
    throw Error(model_dir, 0, "",
                "cpt trains a decoder LLM (model_type llama or qwen2); this is a BERT model");
  }
  if (!decoder->options().lm_head) {
    throw Error(
        model_dir, 0, "lm_head.weight",
        "the decoder has no LM head: create the teacher with `disranker init` (which keeps an LM head)");
  }
  const DecoderConfig& config = decoder->config();
  if (static_cast<std::int64_t>(options.max_length) > config.max_position_embeddings) {
    throw Error("--max-length " + std::to_string(options.max_length) + " exceeds the model's " +
                "max_position_embeddings " + std::to_string(config.max_position_embeddings));
  }
  const Tokenizer& tokenizer = ranker.tokenizer();
  PairEncoderOptions encoder_options = ranker.encoder().options();
  encoder_options.max_length = options.max_length;
  const LmExampleEncoder encoder(tokenizer, encoder_options);
  const TokenId pad_id = tokenizer.special().pad >= 0 ? tokenizer.special().pad : tokenizer.special().eos;

  // Pairs, then documents at the asked share of all examples.
  std::vector<LmExample> examples;
  std::size_t truncated_pairs = 0, truncated_texts = 0;
  const std::vector<CptPair> pairs = read_training_pairs(options.pairs_path);
  for (const CptPair& p : pairs) {
    examples.push_back(encoder.pair(p.query, p.title, p.summary));
    truncated_pairs += examples.back().truncated ? 1 : 0;
  }
  std::size_t text_examples = 0, text_available = 0, text_skipped = 0;
  if (!options.text_paths.empty() && options.text_ratio > 0) {
    std::vector<std::string> texts;
    for (const std::string& path : options.text_paths) {
      std::size_t skipped = 0;
      auto more = read_lm_texts(path, &skipped);
      text_skipped += skipped;
      texts.insert(texts.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    }
    text_available = texts.size();
    const auto wanted = static_cast<std::size_t>(
        std::llround(static_cast<double>(pairs.size()) * options.text_ratio / (1.0 - options.text_ratio)));
    text_examples = std::min(wanted, texts.size());
    if (text_examples < wanted) {
      std::fprintf(stderr,
                   "cpt: only %zu documents for the %zu that --text-ratio %g asks: using all of them\n",
                   texts.size(), wanted, options.text_ratio);
    }
    // A fixed sample (it depends on the seed only), so that every epoch has the same examples and length.
    const auto chosen = epoch_order(texts.size(), run.seed, -3);
    for (std::size_t i = 0; i < text_examples; ++i) {
      examples.push_back(encoder.text(texts[chosen[i]]));
      truncated_texts += examples.back().truncated ? 1 : 0;
    }
  }

  // Rows: packed once (in an order drawn from the seed), or one example per row.
  std::vector<LmRow> rows;
  if (options.pack) {
    const auto order = epoch_order(examples.size(), run.seed, -4);
    rows = pack_lm_examples(examples, order, options.max_length);
  } else {
    rows.reserve(examples.size());
    for (const LmExample& e : examples) rows.push_back(lm_row(e));
  }
  std::vector<std::size_t> row_lengths;
  std::size_t tokens = 0, targets = 0;
  for (const LmRow& row : rows) {
    row_lengths.push_back(row.ids.size());
    tokens += row.ids.size();
    targets += static_cast<std::size_t>(std::count(row.targets.begin(), row.targets.end(), 1));
  }
  const RowBatcher batcher(row_lengths, options.batch_size, /*length_buckets=*/!options.pack, run.seed);

  std::vector<LmExample> dev;
  if (!options.dev_pairs_path.empty()) {
    for (const CptPair& p : read_training_pairs(options.dev_pairs_path))
      dev.push_back(encoder.pair(p.query, p.title, p.summary));
  }

  std::fprintf(
      stderr,
      "cpt: %zu pairs (%zu truncated to %zu tokens) + %zu documents (%zu truncated) → %zu rows%s, "
      "%zu tokens, %zu targets (%s); %lld micro-batches of %zu per epoch; %s\n",
      pairs.size(), truncated_pairs, options.max_length, text_examples, truncated_texts, rows.size(),
      options.pack
          ? (" packed, " +
             percent(static_cast<double>(tokens) / static_cast<double>(rows.size() * options.max_length)) +
             " full")
                .c_str()
          : "",
      tokens, targets, percent(static_cast<double>(targets) / static_cast<double>(tokens)).c_str(),
      static_cast<long long>(batcher.batches_per_epoch()), options.batch_size,
      runtime_summary(ranker.device()).c_str());

  TrainerSpec spec;
  spec.stage = "cpt";
  spec.unit = "target tokens";
  spec.micro_batches_per_epoch = batcher.batches_per_epoch();
  Trainer trainer(ranker.module(), run, optimizer, spec);

  double seen_tokens = 0, seen_targets = 0;
  const torch::Device device = ranker.device();
  auto micro_step = [&](std::int64_t epoch, std::int64_t index) {
    const auto chosen = batcher.batch(epoch, index);
    std::vector<const LmRow*> batch_rows;
    for (const std::size_t r : chosen) batch_rows.push_back(&rows[r]);
    const LmBatch batch = make_lm_batch(batch_rows, pad_id, device);
    LmLoss loss = causal_lm_loss(*decoder, batch);
    seen_tokens += static_cast<double>(batch.tokens);
    seen_targets += static_cast<double>(batch.target_count);
    MicroBatchResult result;
    result.loss = loss.loss;
    result.units = static_cast<double>(batch.target_count);
    return result;
  };
  Trainer::EpochEnd on_epoch_end;
  if (!dev.empty()) {
    on_epoch_end = [&](std::int64_t) {
      return evaluate_lm(*decoder, dev, options.batch_size, pad_id, device);
    };
  }
  const TrainSummary trained = trainer.run(micro_step, on_epoch_end);

  // The trainer measures target tokens/s; all tokens/s follows from the share of targets this process saw.
  const double tokens_per_second =
      seen_targets > 0 ? trained.units_per_second * seen_tokens / seen_targets : 0.0;
  nlohmann::json summary = trained.to_json();
  summary["stage"] = "cpt";
  summary["target_tokens_per_second"] = trained.units_per_second;
  summary["tokens_per_second"] = tokens_per_second;
  summary["data"] = {
      {"pairs", options.pairs_path},
      {"pair_examples", pairs.size()},
      {"pairs_truncated", truncated_pairs},
      {"text", options.text_paths},
      {"text_examples", text_examples},
      {"text_available", text_available},
      {"text_blank_skipped", text_skipped},
      {"texts_truncated", truncated_texts},
      {"text_share",
       examples.empty() ? 0.0 : static_cast<double>(text_examples) / static_cast<double>(examples.size())},
      {"rows", rows.size()},
      {"packed", options.pack},
      {"max_length", options.max_length},
      {"tokens_per_epoch", tokens},
      {"target_tokens_per_epoch", targets}};
  if (!dev.empty()) {
    // The trainer validates at each epoch's end and at the last step: the last figures are the final model's.
    summary["dev_pairs"] = options.dev_pairs_path;
    if (!trained.epoch_metrics.empty()) summary["validation"] = trained.epoch_metrics.back();
  }

  nlohmann::json provenance = {{"stage", "cpt"},
                               {"base_model", model_dir},
                               {"pairs", options.pairs_path},
                               {"text", options.text_paths},
                               {"text_share", summary["data"]["text_share"]},
                               {"max_length", options.max_length},
                               {"packed", options.pack},
                               {"steps", trained.steps},
                               {"final_loss", trained.final_loss}};
  if (summary.contains("validation")) provenance["validation"] = summary["validation"];
  save_trained_model(ranker, run.out_dir, provenance, summary);
  return summary;
}

}  // namespace disranker
