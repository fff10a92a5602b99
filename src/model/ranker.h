// A ranking model as the rest of DisRanker sees it: a model directory (Hugging Face layout + disranker.json)
// holding either the BERT student (model_type "bert") or the decoder teacher ("llama", "qwen2"), with its
// tokenizer and the pair template that goes with the architecture. Every consumer — training stages, `score`,
// validation, `serve` — scores (query, document) pairs through this one interface, so the score contract
// (disranker.json's transform) and the template are applied the same way everywhere.
//
//   BERT     [CLS] query [SEP] title [SEP] summary [SEP] → classifier on the pooled [CLS]   (pooling "cls")
//   decoder  "query: " query " document: " title " " summary </s> → score head on the final </s> (pooling
//            "last_token"; "mean" is the ablation)
//
// Tokenizer files in the directory: vocab.txt (WordPiece) or tokenizer.json (WordPiece or BPE);
// load_tokenizer reads the directory.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "model/bert.h"
#include "model/hf_config.h"
#include "model/llama.h"
#include "text/pair_encoding.h"
#include "text/tokenizer.h"

namespace disranker {

enum class Architecture { kBert, kDecoder };

struct RankerCreateOptions {
  RankerRole role = RankerRole::kStudent;  // disranker.json role
  std::int64_t max_length = 256;           // pair budget (tokens, specials included)
  bool lm_head = true;                     // decoder: keep an LM head (needed by CPT)
  bool mlm_head = false;                   // BERT: add the MLM head (needed by `mlm`)
  std::uint64_t seed = 42;                 // torch::manual_seed before the random initialisation
};

class Ranker {
 public:
  // Opens a model directory. A directory without disranker.json gets the defaults of its architecture
  // (student / cls for BERT, teacher / last_token for decoders; max_length from `default_max_length`). Heads
  // that the checkpoint lacks and that scoring needs (a BERT MLM checkpoint's classifier, a CPT decoder's
  // score head) are freshly initialised and listed on stderr, so that a pre-trained encoder can be
  // fine-tuned. Throws Error naming the directory and the file for anything missing or malformed.
  static std::unique_ptr<Ranker> load(const std::string& dir, const torch::Device& device,
                                      std::int64_t default_max_length = 256);

  // A freshly initialised model from a config.json (e.g. configs/models/bert-mini.json) and a tokenizer (a
  // vocab.txt, tokenizer.json or a directory). vocab_size is set to the tokenizer's; for decoders bos / eos /
  // pad ids too. Throws Error when the tokenizer lacks what the template needs.
  static std::unique_ptr<Ranker> create(const std::string& config_path, const std::string& tokenizer_path,
                                        const torch::Device& device, const RankerCreateOptions& options = {});

  Architecture architecture() const { return architecture_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  // The pair encoder; it follows manifest().max_length (a changed budget takes effect at the next call).
  const PairEncoder& encoder() const {
    sync_encoder();
    return *encoder_;
  }
  const RankerManifest& manifest() const { return manifest_; }
  RankerManifest& manifest() { return manifest_; }
  const torch::Device& device() const { return device_; }

  torch::nn::Module& module();
  // The concrete model (null when the architecture is the other one).
  DecoderImpl* decoder() { return decoder_ ? decoder_.get() : nullptr; }
  BertRankerImpl* bert() { return bert_ ? bert_.get() : nullptr; }

  // Encodes one pair with the model's template and budget; max_document_tokens (0: none) also caps the
  // title + summary tokens (PairEncoder::encode).
  EncodedPair encode(std::string_view query, std::string_view title, std::string_view summary,
                     std::size_t max_document_tokens = 0) const;
  // Moves a padded batch to the device as int64 tensors: ids, token types, attention mask ([B, T] each).
  struct DeviceBatch {
    torch::Tensor input_ids, token_type_ids, attention_mask;
  };
  DeviceBatch to_device(const Batch& batch) const;

  // Raw scores [B] (float32, on the device) of a batch, with autograd when the module is training. The score
  // transform is NOT applied (losses work on raw scores).
  torch::Tensor forward(const Batch& batch);

  // Scores pairs for ranking: eval mode, no grad, batches of `batch_size` in the order given, the manifest's
  // score transform applied. Restores the module's training mode afterwards.
  std::vector<double> score(std::span<const EncodedPair> pairs, std::size_t batch_size = 64);

  // Writes the model directory atomically (merging LoRA adapters first when present, and un-merging them
  // afterwards): config.json, model.safetensors, the tokenizer files, and disranker.json with `provenance`.
  void save(const std::string& dir, const nlohmann::json& provenance = nlohmann::json::object());

 private:
  Ranker() = default;
  void init_encoder();
  // Rebuilds the encoder when manifest_.max_length no longer matches its budget (`score --max-length`).
  void sync_encoder() const;
  Architecture architecture_ = Architecture::kBert;
  std::unique_ptr<Tokenizer> tokenizer_;
  mutable std::unique_ptr<PairEncoder> encoder_;  // mutable: see sync_encoder
  std::vector<std::string> tokenizer_files_;  // names in the model directory (vocab.txt, tokenizer.json, ...)
  // Their contents, read when the model was opened or created: saving must not depend on the source still
  // being there (a training run may save over the directory it loaded, or delete its starting checkpoint).
  std::vector<std::pair<std::string, std::string>> tokenizer_file_bytes_;
  std::string source_;  // the directory or config the model came from, for error messages
  TokenId pad_id_ = 0;  // fills the padding of a batch (masked out)
  RankerManifest manifest_;
  torch::Device device_{torch::kCPU};
  Decoder decoder_{nullptr};
  BertRanker bert_{nullptr};
};

}  // namespace disranker
