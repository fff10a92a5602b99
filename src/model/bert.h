// The BERT student: a cross-encoder computed exactly as Hugging Face's BertForSequenceClassification (and,
// for pre-training from scratch, BertForMaskedLM) compute it, in the libtorch C++ frontend.
//
//   embeddings  word + absolute position (ids 0..T-1) + token type → LayerNorm(layer_norm_eps) → dropout
//   N blocks    (post-LN) self-attention: q, k, v Linear with bias, softmax(q kᵀ / sqrt(head_dim) + mask) v
//   with
//               the additive mask (1 - attention_mask) * finfo(dtype).min, dropout on the probabilities;
//               output dense → dropout → + input → LayerNorm; intermediate dense → activation (hidden_act;
//               "gelu" is the exact erf GELU) → output dense → dropout → + input → LayerNorm
//   pooler      tanh(dense(hidden of [CLS]))
//   classifier  dropout(hidden_dropout_prob) → Linear(hidden, num_labels): with num_labels 1, the relevance
//   score MLM head    cls.predictions: dense → activation → LayerNorm → decoder tied to the word embeddings +
//   bias
//
// Dropout follows the module's training mode (model->eval() turns it off; transformers' classifier_dropout is
// not in BertConfig, so the classifier uses hidden_dropout_prob, transformers' default when it is null).
// Weights are initialised as transformers' BertPreTrainedModel._init_weights does: Linear and Embedding N(0,
// initializer_range) with the padding row zeroed, biases 0, LayerNorm weight 1 and bias 0; the global torch
// RNG is used (torch::manual_seed).
//
// Parameter names are transformers' own, so named_parameters() is the checkpoint's name list:
//   bert.embeddings.{word,position,token_type}_embeddings.weight, bert.embeddings.LayerNorm.{weight,bias},
//   bert.encoder.layer.N.attention.self.{query,key,value}.{weight,bias},
//   bert.encoder.layer.N.attention.output.{dense,LayerNorm}.{weight,bias},
//   bert.encoder.layer.N.intermediate.dense.{weight,bias}, bert.encoder.layer.N.output.{dense,LayerNorm}.*,
//   bert.pooler.dense.{weight,bias}, classifier.{weight,bias},
//   cls.predictions.bias, cls.predictions.transform.{dense,LayerNorm}.{weight,bias}
// (cls.predictions.decoder.weight is the word embedding matrix itself: never a separate parameter).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/hf_config.h"
#include "model/torch_tensors.h"

namespace disranker {

// Throws Error(source, 0, field, ...) for a config the model cannot run: sizes < 1, heads that do not divide
// the hidden size, an unknown hidden_act, pad_token_id outside the vocabulary, dropout outside [0, 1).
void validate_bert_config(const BertConfig& config, const std::string& source = "bert config");

// Which heads the model carries besides the encoder.
struct BertHeads {
  bool ranking = true;  // pooler + classifier (BertForSequenceClassification)
  bool mlm = false;     // cls.predictions (BertForMaskedLM)
};

class BertLayerImpl : public torch::nn::Module {
 public:
  explicit BertLayerImpl(const BertConfig& config);
  // hidden [B, T, H]; additive_mask [B, 1, 1, T] (0 for tokens, finfo.min for padding).
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask);

  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
  torch::nn::Linear attention_output{nullptr};   // attention.output.dense
  torch::nn::LayerNorm attention_norm{nullptr};  // attention.output.LayerNorm
  torch::nn::Linear intermediate{nullptr};       // intermediate.dense
  torch::nn::Linear output{nullptr};             // output.dense
  torch::nn::LayerNorm output_norm{nullptr};     // output.LayerNorm

 private:
  std::int64_t heads_;
  std::int64_t head_dim_;
  std::string activation_;
  double attention_dropout_;
  double hidden_dropout_;
};
TORCH_MODULE(BertLayer);

// BertModel: embeddings, encoder and (optionally) the pooler, under transformers' names without the "bert."
// prefix (BertRanker registers it as "bert").
class BertModelImpl : public torch::nn::Module {
 public:
  BertModelImpl(const BertConfig& config, bool with_pooler);

  // The last layer's hidden states [B, T, H]. input_ids [B, T] int64; token_type_ids [B, T] (undefined: all
  // 0); attention_mask [B, T] 1 for tokens, 0 for padding (undefined: all 1). When `hidden_states` is given
  // it receives transformers' output_hidden_states: the embeddings' output, then each layer's (N + 1
  // tensors). Throws Error for inputs of the wrong rank, shapes that disagree, T > max_position_embeddings,
  // or ids / token types outside the vocabulary.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids = {},
                        const torch::Tensor& attention_mask = {},
                        std::vector<torch::Tensor>* hidden_states = nullptr);
  // tanh(pooler.dense(last_hidden[:, 0])) [B, H]; Error without a pooler.
  torch::Tensor pool(const torch::Tensor& last_hidden);

  bool has_pooler() const { return !pooler_dense.is_empty(); }

  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm embeddings_norm{nullptr};
  torch::nn::ModuleList layers{nullptr};  // encoder.layer
  torch::nn::Linear pooler_dense{nullptr};

 private:
  BertConfig config_;
};
TORCH_MODULE(BertModel);

// BertForSequenceClassification (+ optionally BertForMaskedLM's head): the ranker.
class BertRankerImpl : public torch::nn::Module {
 public:
  // Validates the config (validate_bert_config) and initialises the weights.
  explicit BertRankerImpl(const BertConfig& config, const BertHeads& heads = {});

  // Relevance scores [B] (logits [B, num_labels] when num_labels != 1). Error without the ranking head.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids = {},
                        const torch::Tensor& attention_mask = {});
  // The encoder's last hidden states [B, T, H] (see BertModelImpl::forward).
  torch::Tensor encode(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids = {},
                       const torch::Tensor& attention_mask = {},
                       std::vector<torch::Tensor>* hidden_states = nullptr);
  // Scores from last hidden states: classifier(dropout(pool(last_hidden))).
  torch::Tensor score_hidden(const torch::Tensor& last_hidden);
  // MLM logits [..., vocab_size] of hidden states [..., H] (e.g. only the masked positions). Error without
  // the MLM head.
  torch::Tensor mlm_logits(const torch::Tensor& hidden);

  const BertConfig& config() const { return config_; }
  const BertHeads& heads() const { return heads_; }

  BertModel bert{nullptr};
  torch::nn::Linear classifier{nullptr};
  // cls.predictions
  torch::nn::Linear mlm_dense{nullptr};    // transform.dense
  torch::nn::LayerNorm mlm_norm{nullptr};  // transform.LayerNorm
  torch::Tensor mlm_bias;                  // bias [vocab_size]

 private:
  BertConfig config_;
  BertHeads heads_;
};
TORCH_MODULE(BertRanker);

// ---- Checkpoints (Hugging Face model directories, see torch_tensors.h)
// --------------------------------------------

// Saves config.json (the model's config; torch_dtype follows options.dtype), model.safetensors with every
// parameter under its transformers name, the tokenizer files and disranker.json (when a manifest is given),
// atomically. A float32 save loads back bit for bit.
void save_bert(const std::string& dir, BertRankerImpl& model,
               const std::vector<std::string>& tokenizer_files = {},
               const std::optional<RankerManifest>& manifest = std::nullopt,
               const SaveHfDirOptions& options = {});

struct BertLoadOptions {
  // The heads to build. Unset: those the checkpoint has (ranking when it has classifier.* or bert.pooler.*,
  // MLM when it has cls.predictions.*; ranking when it has neither).
  std::optional<BertHeads> heads;
  // A head (pooler, classifier, MLM transform) that is asked for but absent keeps its fresh initialisation
  // instead of being an error: fine-tuning a pre-trained (MLM) checkpoint. Encoder tensors are always
  // required.
  bool init_missing_heads = false;
  // Checkpoint tensors the model has no place for (e.g. the NSP head cls.seq_relationship.* of a
  // BertForPreTraining checkpoint) are listed in the report instead of being an error.
  bool allow_unexpected = false;
};

struct LoadedBert {
  BertRanker model{nullptr};
  std::optional<RankerManifest> manifest;  // disranker.json, when present
  LoadStateReport report;
};

// Loads a model directory written by save_bert or by transformers (BertForSequenceClassification,
// BertForMaskedLM, BertModel without the "bert." prefix). Old checkpoints' LayerNorm.gamma / LayerNorm.beta
// load as LayerNorm.weight / LayerNorm.bias; cls.predictions.decoder.weight (tied) and
// bert.embeddings.position_ids (an old buffer) are skipped; cls.predictions.decoder.bias loads as
// cls.predictions.bias when that is absent. Errors (disranker::Error) name the file and the tensor: see
// load_hf_model_dir and load_state.
LoadedBert load_bert(const std::string& dir, const BertLoadOptions& options = {});

// The checkpoint-name → model-name mapping load_bert applies, given all names of the checkpoint ("" skips).
std::string bert_checkpoint_name(const std::string& name, const std::vector<std::string>& all_names);

}  // namespace disranker
