// Export of a BERT cross-encoder model directory (config.json + safetensors, Hugging Face names) as an ONNX
// graph that ONNX Runtime, Vespa and TEI run: the math of transformers' BertForSequenceClassification in eval
// mode, built with the onnx protobuf classes (libonnx-dev). No libtorch.
//
//   inputs   input_ids, attention_mask, token_type_ids   int64 [batch, sequence] (both dimensions dynamic)
//   output   logits                                      float32 [batch, 1]
//
//   embeddings  Gather(word) + Slice(position, 0..T-1) + Gather(token type) → LayerNorm(layer_norm_eps)
//   N blocks    (post-LN) q, k, v = x Wᵀ + b; per head softmax(q kᵀ / sqrt(head_dim) + additive mask) v,
//               the mask (1 - attention_mask) · finfo(float32).min; output dense + x → LayerNorm;
//               intermediate dense → hidden_act → output dense + its input → LayerNorm
//   pooler      tanh(dense(hidden[:, 0]))
//   classifier  Linear(hidden, 1)
//
// LayerNorm is decomposed into ReduceMean / Sub / Pow / Sqrt / Div / Mul / Add for opsets 14–16 (the pattern
// ONNX Runtime fuses back into one kernel) and is the LayerNormalization operator from opset 17. "gelu" is
// the exact erf GELU, x · 0.5 · (1 + erf(x / √2)); "gelu_new" / "gelu_pytorch_tanh" the tanh approximation;
// "relu"; "silu" x · sigmoid(x). Weights of any float dtype (F32, F16, BF16, F64) become float32
// initializers; Linear weights are stored transposed ([in, out]) for MatMul.
//
// With int8, every weight MatMul takes ONNX Runtime's dynamic-quantization form (what its quantize_dynamic
// tool emits): DynamicQuantizeLinear on the activation (uint8, per tensor, computed at run time),
// MatMulInteger with int8 weights quantized symmetrically (zero point 0; one scale per output column, or one
// per tensor; in [-64, 64] with reduce_range), Cast to float32, Mul by the product of the two scales, Add of
// the float32 bias. Attention's activation × activation products, the embeddings and LayerNorm stay float32.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/hf_config.h"

namespace disranker {

// The opsets the exporter writes: 14 (the oldest with every operator used in this form) to 17 (the newest
// the onnx 1.12 library checks; LayerNormalization).
inline constexpr int kOnnxMinOpset = 14;
inline constexpr int kOnnxMaxOpset = 17;

struct OnnxExportOptions {
  int opset = kOnnxMinOpset;
  bool int8 = false;        // dynamic quantization of the weight MatMuls (see above)
  bool per_channel = true;  // int8: one weight scale per output column (false: one per weight matrix)
  // int8: weights in [-64, 64] instead of [-127, 127] (ONNX Runtime's quantize_dynamic reduce_range). For
  // CPUs without VNNI, where ONNX Runtime's u8 × s8 kernels add pairs of products in int16 (vpmaddubsw):
  // 2 · 255 · 127 overflows it and the scores go wrong; 2 · 255 · 64 fits.
  bool reduce_range = false;
  bool check = true;  // run onnx::checker::check_model on the graph before writing it
};

struct OnnxExportSummary {
  BertConfig config;
  std::string weights_path;         // the safetensors file or index read
  std::int64_t parameters = 0;      // float parameters exported (before quantization)
  std::size_t nodes = 0;            // graph nodes
  std::size_t bytes = 0;            // size of the .onnx file written
  std::vector<std::string> unused;  // checkpoint tensors the graph does not use (e.g. cls.predictions.*)
};

// Reads `model_dir` (config.json with model_type "bert" and num_labels 1; model.safetensors or a sharded
// model.safetensors.index.json; tensor names with or without the "bert." prefix, LayerNorm gamma / beta
// accepted) and writes the ONNX model to `out_path` atomically (a temporary file renamed into place).
// Errors (disranker::Error) name the file and the field or tensor: a missing or non-BERT config.json,
// num_labels != 1, a missing tensor, a tensor of the wrong shape or of a non-float dtype, an opset outside
// [kOnnxMinOpset, kOnnxMaxOpset], a model of 2 GiB or more (protobuf's limit), a graph the ONNX checker
// rejects.
OnnxExportSummary export_bert_onnx(const std::string& model_dir, const std::string& out_path,
                                   const OnnxExportOptions& options = {});

}  // namespace disranker
