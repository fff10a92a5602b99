// Fast CPU inference for the BERT student, without libtorch: what `score` and `serve` run a student with.
//
// It computes exactly what BertForSequenceClassification computes in eval mode (src/model/bert.h), in
// float32 (or with int8 dense layers, see Precision), but only the work the score needs:
//   - packing: the pairs of a call are laid end to end as one [tokens, hidden] matrix, so every dense
//     layer is one GEMM over the real tokens and attention runs per sequence: no padding, no mask;
//   - the last layer computes only the [CLS] row of each sequence (its query, attention, FFN): the pooler
//     reads nothing else (keys and values still come from every token);
//   - fused row passes after each GEMM: bias (+ GELU, or + residual + LayerNorm), and in int8 mode the
//     dequantization before and the next layer's quantization after; q, k, v are one GEMM (weights
//     concatenated at load, every weight stored [in, out] so that the GEMMs read it row-major);
//   - fp32 GEMMs by oneDNN's dnnl_sgemm, the fastest here (../shared/STACK.md); int8 GEMMs by the engine's
//     VNNI kernel, which dequantizes in its epilogue (infer/vnni_gemm.h), on AVX2 without VNNI by its AVX2
//     kernel (infer/avx2_gemm.h), else by oneDNN's
//     dnnl_gemm_u8s8s32 on per-thread row blocks dequantized while their accumulators are in L2; rows that
//     only feed the next int8 GEMM (attention output, GELU output) are kept quantized only;
//   - attention by a fused AVX-512 kernel per (sequence, head) (infer/attention.h: Q Kᵀ, softmax and P V
//     without leaving L1/L2), else two small GEMMs with a vectorized softmax between them; OpenMP over rows
//     and sequences;
//   - many pairs: each thread runs whole forward passes over its own calls of a few hundred tokens, so
//     the activations stay in its cache from layer to layer and no layer waits for the other threads;
//     few pairs: one call at a time, each loop split across the threads;
//   - buffers are reused: each request sizes them for its largest call first, so one whose calls are no
//     larger than an earlier request's allocates only the scores it returns (no allocation in the steady
//     state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "infer/pair_scorer.h"
#include "model/hf_config.h"
#include "text/pair_encoding.h"
#include "text/tokenizer.h"

namespace disranker {

// The arithmetic of the encoder's dense layers. kInt8: weights quantized per output column at load,
// activations per token on the fly, integer GEMMs (src/infer/int8_gemm.h); attention, LayerNorm, GELU, the
// embeddings, pooler and classifier stay float32. `disranker quantize` reports what it costs in NDCG and PNR.
enum class Precision { kFloat32, kInt8 };

struct BertEngineOptions {
  // OpenMP threads of each scoring call (set in the calling thread, which may be a server's worker); 0: the
  // process's default (OMP_NUM_THREADS, else one per core).
  int threads = 0;
  // Pairs are packed into forward calls of at most this many tokens (a longer pair goes alone). With at
  // least 4 pairs per thread each thread runs its own calls, whose activations then stay in its cache
  // (MiniLM-L6 int8, 2 threads: 192 to 512 tokens all within 3% of each other, 12% faster than one call
  // of 8,192 tokens split row by row across the threads); with fewer, one call of up to threads × this
  // many tokens at a time uses every thread.
  std::size_t tokens_per_call = 384;
  Precision precision = Precision::kFloat32;
  // Attention by the fused AVX-512 kernel (infer/attention.h) where the CPU and head size allow; false: two
  // oneDNN GEMMs per head with a softmax between them (the fallback, kept selectable to test and measure it).
  bool fused_attention = true;
  // int8 dense layers by the VNNI kernel with the dequantization in its epilogue (infer/vnni_gemm.h) where
  // the CPU has AVX-512 VNNI; false: oneDNN's u8s8s32 GEMM and a dequantizing pass (the fallback).
  bool vnni_kernel = true;
  // int8 dense layers by the AVX2 kernel (infer/avx2_gemm.h: weights in [-63, 63], two groups of products
  // summed in int16) where the CPU has AVX2 and the VNNI kernel does not run; false: oneDNN's u8s8s32 GEMM
  // with weights in [-127, 127] and a dequantizing pass (the fallback).
  bool avx2_kernel = true;
  // int8 mode: the fused attention kernel multiplies bf16-rounded operands (AttentionHead::bf16) where the
  // CPU has AVX512_BF16: 1.5× its float32 speed on MiniLM-L6's heads (bench/bench_attention), for a
  // rounding the size of the int8 layers' own (`disranker quantize` measures both together). float32 mode
  // never rounds.
  bool bf16_attention = true;
};

class BertEngine : public PairScorer {
 public:
  // Opens a BERT model directory (config.json, model.safetensors, tokenizer, optional disranker.json). Tensor
  // names may carry transformers' "bert." prefix or not; F32, F16 and BF16 weights are read as float32.
  // Throws Error naming the directory and the file or tensor for anything missing: unlike Ranker::load, a
  // checkpoint without a trained ranking head (pooler + classifier) is an error, since its scores would be
  // random.
  static std::unique_ptr<BertEngine> load(const std::string& dir, std::int64_t default_max_length = 256,
                                          BertEngineOptions options = {});
  ~BertEngine() override;
  BertEngine(const BertEngine&) = delete;
  BertEngine& operator=(const BertEngine&) = delete;

  // The model's pair template and budget, as Ranker::encode.
  EncodedPair encode(std::string_view query, std::string_view title, std::string_view summary,
                     std::size_t max_document_tokens = 0) const override;
  // The raw model scores (the classifier's output, before disranker.json's transform), one per pair, in
  // order; at most batch_size pairs (0: no limit) and tokens_per_call tokens per forward call. Not
  // thread-safe: one call at a time per engine (it reuses its buffers).
  std::vector<double> score_raw(std::span<const EncodedPair> pairs, std::size_t batch_size = 0);
  // The same, transformed as disranker.json declares.
  std::vector<double> score(std::span<const EncodedPair> pairs, std::size_t batch_size = 0) override;

  // Changes the pair budget (score --max-length); Error when outside [1, max_position_embeddings].
  void set_max_length(std::int64_t max_length);

  const BertConfig& config() const;
  const BertEngineOptions& options() const;
  const RankerManifest& manifest() const;
  const Tokenizer& tokenizer() const;
  const PairEncoder& encoder() const;

 private:
  BertEngine();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace disranker
