#include "model/llama2c_checkpoint.h"

#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/error.h"

namespace disranker {
namespace {

static_assert(std::endian::native == std::endian::little, "llama2.c files are little-endian");

constexpr std::uint32_t kMagic = 0x616b3432;  // "ak42"
constexpr std::uint64_t kVersion1HeaderBytes = 256;
constexpr std::uint64_t kLegacyHeaderBytes = 7 * 4;

// a * b (+ c), or an Error when the result does not fit 64 bits.
std::uint64_t mul(std::uint64_t a, std::uint64_t b, const std::string& path) {
  std::uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) throw Error(path, 0, "", "header sizes overflow 64 bits");
  return r;
}
std::uint64_t add(std::uint64_t a, std::uint64_t b, const std::string& path) {
  std::uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) throw Error(path, 0, "", "header sizes overflow 64 bits");
  return r;
}

void check_header(const Llama2cHeader& h, const std::string& path) {
  const auto positive = [&](std::int32_t v, const char* field) {
    if (v <= 0) throw Error(path, 0, field, "must be > 0, got " + std::to_string(v));
  };
  positive(h.dim, "dim");
  positive(h.hidden_dim, "hidden_dim");
  positive(h.n_layers, "n_layers");
  positive(h.n_heads, "n_heads");
  positive(h.n_kv_heads, "n_kv_heads");
  positive(h.seq_len, "seq_len");
  if (h.vocab_size == 0 || h.vocab_size == std::numeric_limits<std::int32_t>::min()) {
    throw Error(path, 0, "vocab_size", "invalid value " + std::to_string(h.vocab_size));
  }
  if (h.version == 1 && h.vocab_size < 0) {
    throw Error(path, 0, "vocab_size",
                "must be > 0 in a version-1 file, got " + std::to_string(h.vocab_size));
  }
  if (h.dim % h.n_heads != 0) {
    throw Error(path, 0, "n_heads",
                std::to_string(h.n_heads) + " does not divide dim " + std::to_string(h.dim));
  }
  if ((h.dim / h.n_heads) % 2 != 0) {
    throw Error(path, 0, "n_heads",
                "the head size dim / n_heads = " + std::to_string(h.dim / h.n_heads) +
                    " is odd (rotary embeddings rotate pairs)");
  }
  if (h.n_kv_heads > h.n_heads || h.n_heads % h.n_kv_heads != 0) {
    throw Error(path, 0, "n_kv_heads",
                std::to_string(h.n_kv_heads) + " does not divide n_heads " + std::to_string(h.n_heads));
  }
}

// Bytes the weights take after the header.
std::uint64_t weight_bytes(const Llama2cHeader& h, const std::string& path) {
  const std::uint64_t dim = static_cast<std::uint64_t>(h.dim);
  const std::uint64_t hidden = static_cast<std::uint64_t>(h.hidden_dim);
  const std::uint64_t layers = static_cast<std::uint64_t>(h.n_layers);
  const std::uint64_t vocab =
      static_cast<std::uint64_t>(h.vocab_size < 0 ? -static_cast<std::int64_t>(h.vocab_size) : h.vocab_size);
  const std::uint64_t head = dim / static_cast<std::uint64_t>(h.n_heads);
  const std::uint64_t kv_dim = mul(head, static_cast<std::uint64_t>(h.n_kv_heads), path);
  std::uint64_t floats = mul(vocab, dim, path);                                         // token embedding
  floats = add(floats, mul(layers, dim, path), path);                                   // rms_att
  floats = add(floats, mul(mul(layers, dim, path), dim, path), path);                   // wq
  floats = add(floats, mul(mul(mul(layers, kv_dim, path), dim, path), 2, path), path);  // wk, wv
  floats = add(floats, mul(mul(layers, dim, path), dim, path), path);                   // wo
  floats = add(floats, mul(layers, dim, path), path);                                   // rms_ffn
  floats = add(floats, mul(mul(mul(layers, hidden, path), dim, path), 3, path), path);  // w1, w2, w3
  floats = add(floats, dim, path);                                                      // rms_final
  if (h.version == 0) {
    floats =
        add(floats, mul(static_cast<std::uint64_t>(h.seq_len), head, path), path);  // freq_cis real + imag
  }
  if (!h.shared_classifier) floats = add(floats, mul(vocab, dim, path), path);  // wcls
  return mul(floats, 4, path);
}

class Reader {
 public:
  Reader(std::ifstream& in, const std::string& path) : in_(in), path_(path) {}

  torch::Tensor read(std::vector<std::int64_t> shape) {
    auto t = torch::empty(shape, torch::kFloat);
    read_into(t.data_ptr<float>(), static_cast<std::size_t>(t.numel()));
    return t;
  }
  void skip(std::uint64_t floats) {
    in_.seekg(static_cast<std::streamoff>(floats * 4), std::ios::cur);
    if (!in_) throw Error(path_, 0, "", "read error");
  }

 private:
  void read_into(float* data, std::size_t n) {
    in_.read(reinterpret_cast<char*>(data), static_cast<std::streamsize>(n * sizeof(float)));
    if (!in_) throw Error(path_, 0, "", "read error (the file changed while being read?)");
  }
  std::ifstream& in_;
  const std::string& path_;
};

std::int32_t i32_at(const char* bytes) {
  std::int32_t v = 0;
  std::memcpy(&v, bytes, 4);
  return v;
}

}  // namespace

torch::Tensor llama2c_to_hf_rotary_rows(const torch::Tensor& w, std::int64_t heads) {
  const auto rows = w.size(0);
  const auto cols = w.size(1);
  return w.reshape({heads, rows / heads / 2, 2, cols}).transpose(1, 2).reshape({rows, cols}).contiguous();
}

torch::Tensor hf_to_llama2c_rotary_rows(const torch::Tensor& w, std::int64_t heads) {
  const auto rows = w.size(0);
  const auto cols = w.size(1);
  return w.reshape({heads, 2, rows / heads / 2, cols}).transpose(1, 2).reshape({rows, cols}).contiguous();
}

DecoderConfig llama2c_decoder_config(const Llama2cHeader& h) {
  DecoderConfig c;
  c.vocab_size = h.vocab_size < 0 ? -h.vocab_size : h.vocab_size;
  c.hidden_size = h.dim;
  c.intermediate_size = h.hidden_dim;
  c.num_hidden_layers = h.n_layers;
  c.num_attention_heads = h.n_heads;
  c.num_key_value_heads = h.n_kv_heads;
  c.max_position_embeddings = h.seq_len;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = h.shared_classifier;
  c.attention_bias = false;
  c.hidden_act = "silu";
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  c.pad_token_id = std::nullopt;
  return c;
}

Llama2cCheckpoint read_llama2c_checkpoint(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(path, 0, "", "no such file");
  if (std::filesystem::is_directory(path, ec))
    throw Error(path, 0, "", "is a directory, not a llama2.c .bin");
  const auto file_size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(path, 0, "", "cannot read the file size: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, 0, "", "cannot open");

  Llama2cHeader h;
  std::uint64_t header_bytes = kLegacyHeaderBytes;
  char bytes[kVersion1HeaderBytes] = {};
  if (file_size < kLegacyHeaderBytes) {
    throw Error(path, 0, "", "too short for a llama2.c header (" + std::to_string(file_size) + " bytes)");
  }
  in.read(bytes, static_cast<std::streamsize>(kLegacyHeaderBytes));
  if (!in) throw Error(path, 0, "", "read error");
  std::uint32_t magic = 0;
  std::memcpy(&magic, bytes, 4);
  const char* fields = bytes;
  if (magic == kMagic) {
    if (file_size < kVersion1HeaderBytes)
      throw Error(path, 0, "", "the 256-byte \"ak42\" header is cut short");
    in.read(bytes + kLegacyHeaderBytes,
            static_cast<std::streamsize>(kVersion1HeaderBytes - kLegacyHeaderBytes));
    if (!in) throw Error(path, 0, "", "read error");
    h.version = i32_at(bytes + 4);
    if (h.version != 1) {
      throw Error(path, 0, "version",
                  "llama2.c export version " + std::to_string(h.version) +
                      " is not supported (only float32 exports: the legacy format and version 1)");
    }
    fields = bytes + 8;
    const auto shared = static_cast<unsigned char>(bytes[8 + kLegacyHeaderBytes]);
    if (shared > 1)
      throw Error(path, 0, "shared_classifier", "must be 0 or 1, got " + std::to_string(shared));
    h.shared_classifier = shared == 1;
    header_bytes = kVersion1HeaderBytes;
  }
  h.dim = i32_at(fields);
  h.hidden_dim = i32_at(fields + 4);
  h.n_layers = i32_at(fields + 8);
  h.n_heads = i32_at(fields + 12);
  h.n_kv_heads = i32_at(fields + 16);
  h.vocab_size = i32_at(fields + 20);
  h.seq_len = i32_at(fields + 24);
  if (h.version == 0) h.shared_classifier = h.vocab_size > 0;
  check_header(h, path);
  const auto expected = add(header_bytes, weight_bytes(h, path), path);
  if (expected != file_size) {
    throw Error(path, 0, "",
                "file size " + std::to_string(file_size) + " bytes does not match the " +
                    std::to_string(expected) + " bytes its header implies (dim " + std::to_string(h.dim) +
                    ", hidden_dim " + std::to_string(h.hidden_dim) + ", n_layers " +
                    std::to_string(h.n_layers) + ", n_heads " + std::to_string(h.n_heads) + ", n_kv_heads " +
                    std::to_string(h.n_kv_heads) + ", vocab_size " + std::to_string(h.vocab_size) +
                    ", seq_len " + std::to_string(h.seq_len) + ")");
  }

  Llama2cCheckpoint ckpt;
  ckpt.header = h;
  ckpt.config = llama2c_decoder_config(h);
  const std::int64_t dim = h.dim;
  const std::int64_t hidden = h.hidden_dim;
  const std::int64_t layers = h.n_layers;
  const std::int64_t vocab = h.vocab_size < 0 ? -static_cast<std::int64_t>(h.vocab_size) : h.vocab_size;
  const std::int64_t head = dim / h.n_heads;
  const std::int64_t kv_dim = head * h.n_kv_heads;

  Reader r(in, path);
  torch::Tensor emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, wcls;
  if (h.version == 0) {
    emb = r.read({vocab, dim});
    rms_att = r.read({layers, dim});
    wq = r.read({layers, dim, dim});
    wk = r.read({layers, kv_dim, dim});
    wv = r.read({layers, kv_dim, dim});
    wo = r.read({layers, dim, dim});
    rms_ffn = r.read({layers, dim});
    w1 = r.read({layers, hidden, dim});
    w2 = r.read({layers, dim, hidden});
    w3 = r.read({layers, hidden, dim});
    rms_final = r.read({dim});
    r.skip(static_cast<std::uint64_t>(h.seq_len) * static_cast<std::uint64_t>(head));  // freq_cis_real, _imag
  } else {
    rms_att = r.read({layers, dim});
    rms_ffn = r.read({layers, dim});
    rms_final = r.read({dim});
    emb = r.read({vocab, dim});
    wq = r.read({layers, dim, dim});
    wk = r.read({layers, kv_dim, dim});
    wv = r.read({layers, kv_dim, dim});
    wo = r.read({layers, dim, dim});
    w1 = r.read({layers, hidden, dim});
    w2 = r.read({layers, dim, hidden});
    w3 = r.read({layers, hidden, dim});
  }
  if (!h.shared_classifier) wcls = r.read({vocab, dim});

  auto& t = ckpt.tensors;
  t.emplace_back("model.embed_tokens.weight", emb);
  for (std::int64_t i = 0; i < layers; ++i) {
    const auto p = "model.layers." + std::to_string(i) + ".";
    t.emplace_back(p + "self_attn.q_proj.weight", llama2c_to_hf_rotary_rows(wq[i], h.n_heads));
    t.emplace_back(p + "self_attn.k_proj.weight", llama2c_to_hf_rotary_rows(wk[i], h.n_kv_heads));
    t.emplace_back(p + "self_attn.v_proj.weight", wv[i]);
    t.emplace_back(p + "self_attn.o_proj.weight", wo[i]);
    t.emplace_back(p + "mlp.gate_proj.weight", w1[i]);
    t.emplace_back(p + "mlp.up_proj.weight", w3[i]);
    t.emplace_back(p + "mlp.down_proj.weight", w2[i]);
    t.emplace_back(p + "input_layernorm.weight", rms_att[i]);
    t.emplace_back(p + "post_attention_layernorm.weight", rms_ffn[i]);
  }
  t.emplace_back("model.norm.weight", rms_final);
  if (!h.shared_classifier) t.emplace_back("lm_head.weight", wcls);
  return ckpt;
}

Decoder load_llama2c_decoder(const std::string& path, DecoderOptions options) {
  auto ckpt = read_llama2c_checkpoint(path);
  options.lm_head = true;
  Decoder model(ckpt.config, options);
  model->load_hf_tensors(ckpt.tensors, /*strict=*/true, path);
  return model;
}

}  // namespace disranker
