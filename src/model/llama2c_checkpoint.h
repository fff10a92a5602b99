// Checkpoints of Karpathy's llama2.c (run.c's model .bin files, e.g. the stories260K reference model), read
// into the Hugging Face layout of model/llama.h.
//
// Legacy format (llama2.c export version 0, what run.c reads; little-endian):
//   7 int32: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative: the classifier is not
//   shared with the token embedding), seq_len;
//   float32 arrays: token_embedding [vocab, dim], rms_att [L, dim], wq [L, dim, dim], wk [L, kv_dim, dim],
//   wv [L, kv_dim, dim], wo [L, dim, dim], rms_ffn [L, dim], w1 [L, hidden_dim, dim], w2 [L, dim,
//   hidden_dim], w3 [L, hidden_dim, dim], rms_final [dim], freq_cis_real and freq_cis_imag [seq_len,
//   head_size / 2] each (skipped: the rotary tables are recomputed), then wcls [vocab, dim] when not shared.
//   kv_dim = dim * n_kv_heads / n_heads, head_size = dim / n_heads.
// Version 1 (export.py's "ak42" header, 256 bytes: magic 0x616b3432, int32 version = 1, the same 7 int32,
// uint8 shared_classifier, zero padding) is read too: float32 rms_att, rms_ffn, rms_final, token_embedding,
// wq, wk, wv, wo, w1, w2, w3, then wcls when not shared. Quantized exports (version 2) are rejected by name.
//
// The mapping: w1 = gate_proj, w3 = up_proj, w2 = down_proj; rope_theta 10000, rms_norm_eps 1e-5, bos 1, eos
// 2, tie_word_embeddings = shared classifier. llama2.c's rotary embeddings rotate adjacent pairs (2i, 2i+1)
// of a head; the HF layout pairs i with i + head_size/2, so the rows of wq and wk are permuted within each
// head exactly as transformers' convert_llama_weights_to_hf.py permute() does:
//   w.view(n_heads, head_size / 2, 2, dim).transpose(1, 2).reshape(n_heads * head_size, dim).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/llama.h"

namespace disranker {

struct Llama2cHeader {
  std::int32_t dim = 0;
  std::int32_t hidden_dim = 0;
  std::int32_t n_layers = 0;
  std::int32_t n_heads = 0;
  std::int32_t n_kv_heads = 0;
  std::int32_t vocab_size = 0;  // as stored: negative when the classifier is not shared
  std::int32_t seq_len = 0;
  int version = 0;  // 0 (legacy) or 1
  bool shared_classifier = true;
};

struct Llama2cCheckpoint {
  Llama2cHeader header;
  DecoderConfig config;
  // HF names (model/llama.h), HF rotary layout, float32 CPU tensors.
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
};

// Reads a llama2.c .bin. Throws Error naming the file for: a missing or unreadable file, a header cut short,
// header values that make no model (a size <= 0, heads not dividing dim, an odd head size, kv heads not
// dividing heads, vocab 0, sizes whose product overflows), an unsupported export version, or a file size
// different from what the header implies (the expected and actual sizes are named).
Llama2cCheckpoint read_llama2c_checkpoint(const std::string& path);

// The DecoderConfig of a header (see the mapping above).
DecoderConfig llama2c_decoder_config(const Llama2cHeader& header);

// Reads a llama2.c .bin into a Decoder with an LM head (and the given options' score head, left at its
// initialisation).
Decoder load_llama2c_decoder(const std::string& path, DecoderOptions options = {});

// The llama2.c <-> HF row permutation of a q or k projection ([heads * head_size, dim]).
torch::Tensor llama2c_to_hf_rotary_rows(const torch::Tensor& w, std::int64_t heads);
torch::Tensor hf_to_llama2c_rotary_rows(const torch::Tensor& w, std::int64_t heads);

}  // namespace disranker
