#include "train/mlm.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <ostream>

#include "core/error.h"
#include "core/files.h"
#include "model/runtime.h"
#include "train/cpt.h"
#include "train/trainer.h"

namespace disranker {

namespace fs = std::filesystem;

MlmVocabulary MlmVocabulary::from(const Tokenizer& tokenizer) {
  const SpecialTokens& s = tokenizer.special();
  if (s.mask < 0 || s.cls < 0 || s.sep < 0) {
    throw Error(
        "masked-LM training needs a tokenizer with [MASK], [CLS] and [SEP] (a BERT WordPiece vocabulary)");
  }
  MlmVocabulary vocabulary;
  vocabulary.mask = s.mask;
  vocabulary.special.assign(tokenizer.vocab_size(), false);
  for (const TokenId id : {s.pad, s.unk, s.cls, s.sep, s.mask, s.bos, s.eos}) {
    if (id >= 0 && static_cast<std::size_t>(id) < vocabulary.special.size()) {
      vocabulary.special[static_cast<std::size_t>(id)] = true;
    }
  }
  for (std::size_t id = 0; id < vocabulary.special.size(); ++id) {
    if (!vocabulary.special[id]) vocabulary.random_choices.push_back(static_cast<TokenId>(id));
  }
  if (vocabulary.random_choices.empty())
    throw Error("masked-LM training: the vocabulary has only special tokens");
  return vocabulary;
}

void mask_for_mlm(std::span<TokenId> ids, std::span<TokenId> labels, const MlmVocabulary& vocabulary,
                  const MlmMasking& masking, SplitMix64& rng) {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    labels[i] = -1;
    if (vocabulary.is_special(ids[i])) continue;
    if (rng.uniform() >= masking.mask_prob) continue;
    labels[i] = ids[i];
    const double action = rng.uniform();
    if (action < masking.mask_share) {
      ids[i] = vocabulary.mask;
    } else if (action < masking.mask_share + masking.random_share) {
      ids[i] = vocabulary.random_choices[rng.below(vocabulary.random_choices.size())];
    }
  }
}

std::vector<std::vector<TokenId>> mlm_pieces(const Tokenizer& tokenizer, std::span<const std::string> texts,
                                             std::size_t max_length, std::size_t* split) {
  if (max_length < 3) throw Error("masked-LM sequences need max_length >= 3");
  const std::size_t room = max_length - 2;
  std::vector<std::vector<TokenId>> pieces;
  std::size_t split_texts = 0;
  for (const std::string& text : texts) {
    const std::vector<TokenId> ids = tokenizer.encode(text);
    if (ids.size() > room) ++split_texts;
    for (std::size_t begin = 0; begin < ids.size(); begin += room) {
      const std::size_t end = std::min(ids.size(), begin + room);
      pieces.emplace_back(ids.begin() + static_cast<std::ptrdiff_t>(begin),
                          ids.begin() + static_cast<std::ptrdiff_t>(end));
    }
  }
  if (split != nullptr) *split = split_texts;
  return pieces;
}

std::vector<std::vector<TokenId>> pack_mlm_sequences(std::span<const std::vector<TokenId>> pieces,
                                                     std::span<const std::size_t> order,
                                                     std::size_t max_length, TokenId cls, TokenId sep) {
  // A piece costs its tokens and the [SEP] after it; the [CLS] is reserved once per sequence.
  std::vector<std::size_t> sizes;
  sizes.reserve(pieces.size());
  for (const auto& piece : pieces) sizes.push_back(piece.size() + 1);
  std::vector<std::vector<TokenId>> sequences;
  for (const auto& bin : pack_best_fit(sizes, order, max_length - 1)) {
    std::vector<TokenId> sequence{cls};
    for (const std::size_t item : bin) {
      sequence.insert(sequence.end(), pieces[item].begin(), pieces[item].end());
      sequence.push_back(sep);
    }
    sequences.push_back(std::move(sequence));
  }
  return sequences;
}

MlmBatch make_mlm_batch(std::span<const std::vector<TokenId>* const> sequences,
                        const MlmVocabulary& vocabulary, const MlmMasking& masking, std::uint64_t seed,
                        TokenId pad_id, const torch::Device& device) {
  std::size_t length = 0;
  for (const auto* sequence : sequences) length = std::max(length, sequence->size());
  const auto b = static_cast<std::int64_t>(sequences.size());
  const auto t = static_cast<std::int64_t>(length);
  auto ids = torch::full({b, t}, static_cast<std::int64_t>(pad_id), torch::kLong);
  auto mask = torch::zeros({b, t}, torch::kLong);
  auto chosen = torch::zeros({b, t}, torch::kBool);
  auto labels = torch::zeros({b, t}, torch::kLong);
  auto ids_a = ids.accessor<std::int64_t, 2>();
  auto mask_a = mask.accessor<std::int64_t, 2>();
  auto chosen_a = chosen.accessor<bool, 2>();
  auto labels_a = labels.accessor<std::int64_t, 2>();
  SplitMix64 rng(seed);
  MlmBatch batch;
  std::vector<TokenId> row, row_labels;
  for (std::int64_t r = 0; r < b; ++r) {
    row = *sequences[static_cast<std::size_t>(r)];
    row_labels.assign(row.size(), -1);
    mask_for_mlm(row, row_labels, vocabulary, masking, rng);
    for (std::size_t i = 0; i < row.size(); ++i) {
      const auto p = static_cast<std::int64_t>(i);
      ids_a[r][p] = row[i];
      mask_a[r][p] = 1;
      if (row_labels[i] >= 0) {
        chosen_a[r][p] = true;
        labels_a[r][p] = row_labels[i];
        ++batch.masked;
      }
    }
    batch.tokens += static_cast<std::int64_t>(row.size());
  }
  batch.input_ids = ids.to(device);
  batch.attention_mask = mask.to(device);
  batch.token_type_ids = torch::zeros({b, t}, torch::TensorOptions().dtype(torch::kLong).device(device));
  batch.chosen = chosen.to(device);
  batch.labels = labels.to(device);
  return batch;
}

MlmLoss masked_lm_loss(BertRankerImpl& model, const MlmBatch& batch) {
  const torch::Tensor hidden = model.encode(batch.input_ids, batch.token_type_ids, batch.attention_mask);
  MlmLoss out;
  if (batch.masked == 0) {
    out.loss = hidden.sum() * 0.0;
    return out;
  }
  const torch::Tensor logits = model.mlm_logits(hidden.index({batch.chosen})).to(torch::kFloat);  // [N, V]
  const torch::Tensor labels = batch.labels.index({batch.chosen});
  out.loss = torch::nn::functional::cross_entropy(logits, labels);
  out.count = labels.size(0);
  {
    torch::NoGradGuard no_grad;
    out.correct = logits.argmax(-1).eq(labels).sum().item<std::int64_t>();
  }
  return out;
}

void validate(const MlmOptions& options) {
  if (options.text_paths.empty()) throw Error("--text is required (documents or queries TSV)");
  if (!(options.mask_prob > 0 && options.mask_prob < 1)) throw Error("--mask-prob must be in (0, 1)");
  if (options.max_length < 8) throw Error("--max-length must be >= 8");
  if (options.batch_size < 1) throw Error("--batch-size must be >= 1");
}

nlohmann::json evaluate_mlm(BertRankerImpl& model, std::span<const std::vector<TokenId>> sequences,
                            const MlmVocabulary& vocabulary, const MlmMasking& masking,
                            std::size_t batch_size, std::uint64_t seed, TokenId pad_id,
                            const torch::Device& device) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  double total = 0;
  std::int64_t count = 0, correct = 0;
  for (std::size_t begin = 0, index = 0; begin < sequences.size(); begin += batch_size, ++index) {
    std::vector<const std::vector<TokenId>*> rows;
    for (std::size_t i = begin; i < std::min(sequences.size(), begin + batch_size); ++i)
      rows.push_back(&sequences[i]);
    const MlmBatch batch = make_mlm_batch(
        rows, vocabulary, masking, batch_seed(seed, -1, static_cast<std::int64_t>(index)), pad_id, device);
    const MlmLoss loss = masked_lm_loss(model, batch);
    total += loss.loss.item<double>() * static_cast<double>(loss.count);
    count += loss.count;
    correct += loss.correct;
  }
  model.train(was_training);
  const double n = static_cast<double>(std::max<std::int64_t>(count, 1));
  return {{"loss", count > 0 ? total / n : 0.0},
          {"accuracy", count > 0 ? static_cast<double>(correct) / n : 0.0},
          {"masked_tokens", count},
          {"sequences", sequences.size()}};
}

nlohmann::json run_mlm(Ranker& ranker, const std::string& model_dir, const MlmOptions& options,
                       const RunOptions& run, const OptimizerOptions& optimizer) {
  validate(options);
  BertRankerImpl* bert = ranker.bert();
  if (ranker.architecture() != Architecture::kBert || bert == nullptr) {
    throw Error(model_dir, 0, "", "mlm pre-trains a BERT student (model_type bert); this is a decoder model");
  }
  if (!bert->heads().mlm) {
    throw Error(model_dir, 0, "cls.predictions",
                "the model has no MLM head: create the student with `disranker init --mlm-head`");
  }
  if (static_cast<std::int64_t>(options.max_length) > bert->config().max_position_embeddings) {
    throw Error("--max-length " + std::to_string(options.max_length) + " exceeds the model's " +
                "max_position_embeddings " + std::to_string(bert->config().max_position_embeddings));
  }
  const Tokenizer& tokenizer = ranker.tokenizer();
  const MlmVocabulary vocabulary = MlmVocabulary::from(tokenizer);
  const TokenId pad_id = std::max<TokenId>(tokenizer.special().pad, 0);
  MlmMasking masking;
  masking.mask_prob = options.mask_prob;

  // Training texts, and the held-out ones.
  std::vector<std::string> train_texts, dev_texts;
  std::size_t blank = 0;
  for (const std::string& path : options.text_paths) {
    std::size_t skipped = 0;
    auto texts = read_lm_texts(path, &skipped);
    blank += skipped;
    train_texts.insert(train_texts.end(), std::make_move_iterator(texts.begin()),
                       std::make_move_iterator(texts.end()));
  }
  std::string dev_source;
  if (!options.dev_text_path.empty()) {
    dev_texts = read_lm_texts(options.dev_text_path);
    dev_source = options.dev_text_path;
  } else if (train_texts.size() >= kMlmHoldOutEvery) {
    std::vector<std::string> kept;
    for (std::size_t i = 0; i < train_texts.size(); ++i) {
      ((i + 1) % kMlmHoldOutEvery == 0 ? dev_texts : kept).push_back(std::move(train_texts[i]));
    }
    train_texts = std::move(kept);
    dev_source = "every 100th input text";
  } else {
    std::fprintf(stderr, "mlm: fewer than %zu texts and no --dev-text: no validation\n", kMlmHoldOutEvery);
  }

  std::size_t split = 0;
  const auto pieces = mlm_pieces(tokenizer, train_texts, options.max_length, &split);
  if (pieces.empty()) throw Error(options.text_paths.front(), 0, "", "no tokens in the training texts");
  const auto piece_order = epoch_order(pieces.size(), run.seed, -4);
  const auto sequences = pack_mlm_sequences(pieces, piece_order, options.max_length, tokenizer.special().cls,
                                            tokenizer.special().sep);
  std::vector<std::size_t> lengths;
  std::size_t tokens = 0;
  for (const auto& s : sequences) {
    lengths.push_back(s.size());
    tokens += s.size();
  }
  const RowBatcher batcher(lengths, options.batch_size, /*length_buckets=*/false, run.seed);

  std::vector<std::vector<TokenId>> dev_sequences;
  if (!dev_texts.empty()) {
    const auto dev_pieces = mlm_pieces(tokenizer, dev_texts, options.max_length);
    std::vector<std::size_t> order(dev_pieces.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    dev_sequences = pack_mlm_sequences(dev_pieces, order, options.max_length, tokenizer.special().cls,
                                       tokenizer.special().sep);
  }

  std::fprintf(
      stderr,
      "mlm: %zu texts (%zu blank skipped, %zu split) → %zu sequences of <= %zu tokens (%.1f%% full), "
      "%zu tokens; %lld micro-batches of %zu per epoch; validation: %s; %s\n",
      train_texts.size(), blank, split, sequences.size(), options.max_length,
      100.0 * static_cast<double>(tokens) / static_cast<double>(sequences.size() * options.max_length),
      tokens, static_cast<long long>(batcher.batches_per_epoch()), options.batch_size,
      dev_source.empty()
          ? "none"
          : (std::to_string(dev_texts.size()) + " texts held out (" + dev_source + ")").c_str(),
      runtime_summary(ranker.device()).c_str());

  TrainerSpec spec;
  spec.stage = "mlm";
  spec.unit = "tokens";
  spec.micro_batches_per_epoch = batcher.batches_per_epoch();
  Trainer trainer(ranker.module(), run, optimizer, spec);

  const torch::Device device = ranker.device();
  double seen_tokens = 0, seen_masked = 0;
  auto micro_step = [&](std::int64_t epoch, std::int64_t index) {
    std::vector<const std::vector<TokenId>*> rows;
    for (const std::size_t r : batcher.batch(epoch, index)) rows.push_back(&sequences[r]);
    const MlmBatch batch =
        make_mlm_batch(rows, vocabulary, masking, batch_seed(run.seed, epoch, index), pad_id, device);
    const MlmLoss loss = masked_lm_loss(*bert, batch);
    seen_tokens += static_cast<double>(batch.tokens);
    seen_masked += static_cast<double>(batch.masked);
    MicroBatchResult result;
    result.loss = loss.loss;
    result.units = static_cast<double>(batch.tokens);
    result.extra = {{"accuracy", loss.count > 0
                                     ? static_cast<double>(loss.correct) / static_cast<double>(loss.count)
                                     : 0.0}};
    return result;
  };
  Trainer::EpochEnd on_epoch_end;
  if (!dev_sequences.empty()) {
    on_epoch_end = [&](std::int64_t) {
      return evaluate_mlm(*bert, dev_sequences, vocabulary, masking, options.batch_size, run.seed, pad_id,
                          device);
    };
  }
  const TrainSummary trained = trainer.run(micro_step, on_epoch_end);

  nlohmann::json summary = trained.to_json();
  summary["stage"] = "mlm";
  summary["tokens_per_second"] = trained.units_per_second;
  summary["masked_tokens_per_second"] =
      seen_tokens > 0 ? trained.units_per_second * seen_masked / seen_tokens : 0.0;
  summary["data"] = {{"text", options.text_paths},     {"texts", train_texts.size()},
                     {"blank_skipped", blank},         {"texts_split", split},
                     {"sequences", sequences.size()},  {"max_length", options.max_length},
                     {"mask_prob", options.mask_prob}, {"tokens_per_epoch", tokens}};
  if (!dev_sequences.empty()) {
    summary["validation_source"] = dev_source;
    // The trainer validates at each epoch's end and at the last step: the last figures are the final model's.
    if (!trained.epoch_metrics.empty()) summary["validation"] = trained.epoch_metrics.back();
  }
  nlohmann::json provenance = {{"stage", "mlm"},
                               {"base_model", model_dir},
                               {"text", options.text_paths},
                               {"max_length", options.max_length},
                               {"mask_prob", options.mask_prob},
                               {"steps", trained.steps},
                               {"final_loss", trained.final_loss}};
  if (summary.contains("validation")) provenance["validation"] = summary["validation"];
  save_trained_model(ranker, run.out_dir, provenance, summary);
  return summary;
}

}  // namespace disranker
