// llama2.c checkpoints (model/llama2c_checkpoint.h), with the independent reference: the stories260K model's
// greedy output as llama2.c's `./run stories260K.bin -z tok512.bin -t 0.0` prints it (stories260K.md in the
// shared data) must come out of model/llama.h token for token.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "model/hf_config.h"
#include "model/llama2c_checkpoint.h"
#include "model/torch_tensors.h"
#include "test_util.h"
#include "text/llama2c_tokenizer.h"

namespace disranker {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

// The stories260K folder of the shared data ($DISRANKER_DATA, else ../shared/data beside the source tree), or
// "".
std::string stories_dir() {
  const char* env = std::getenv("DISRANKER_DATA");
  const fs::path root =
      env != nullptr && *env != '\0' ? fs::path(env) : fs::path(DISRANKER_SOURCE_DIR) / "../shared/data";
  const auto dir = root / "weights" / "stories260K";
  return fs::exists(dir / "stories260K.bin") && fs::exists(dir / "tok512.bin") &&
                 fs::exists(dir / "stories260K.md")
             ? dir.string()
             : "";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The text llama2.c printed for `command` in stories260K.md: the lines after "$ <command>" up to the closing
// fence, without the final newline (run.c prints one after the story).
std::string documented_output(const std::string& md, const std::string& command) {
  const auto at = md.find("$ " + command + "\n");
  if (at == std::string::npos) return "";
  const auto begin = at + 2 + command.size() + 1;
  const auto end = md.find("\n```", begin);
  return end == std::string::npos ? "" : md.substr(begin, end - begin);
}

// llama2.c's safe_printf: a piece that is a single byte that is neither printable nor white space prints
// nothing.
std::string safe_piece(const std::string& piece) {
  if (piece.size() == 1) {
    const auto c = static_cast<unsigned char>(piece[0]);
    if (!(std::isprint(c) || std::isspace(c))) return "";
  }
  return piece;
}

struct Llama2cRun {
  std::vector<std::int64_t> tokens;  // prompt + generated
  std::vector<std::string> pieces;   // the printed piece of tokens[1..]
  std::string text;
};

// llama2.c's generate(): the prompt encoded with BOS, `steps` positions, stop at BOS.
Llama2cRun run_like_llama2c(DecoderImpl& model, const Llama2cTokenizer& tok, const std::string& prompt,
                            const SamplingOptions& sampling, int steps = 256) {
  Llama2cRun run;
  for (const auto id : tok.encode(prompt, /*bos=*/true, /*eos=*/false)) run.tokens.push_back(id);
  GenerateOptions options;
  options.sampling = sampling;
  options.max_new_tokens = steps - static_cast<std::int64_t>(run.tokens.size()) + 1;
  options.stop_tokens = {Llama2cTokenizer::kBosId};
  const auto generated = generate(model, run.tokens, options);
  run.tokens.insert(run.tokens.end(), generated.begin(), generated.end());
  for (std::size_t i = 1; i < run.tokens.size(); ++i) {
    run.pieces.push_back(safe_piece(
        tok.decode_piece(static_cast<TokenId>(run.tokens[i - 1]), static_cast<TokenId>(run.tokens[i]))));
    run.text += run.pieces.back();
  }
  return run;
}

// Compares piece by piece, so that a failure names the first token that differs.
void expect_same_text(const Llama2cRun& run, const std::string& expected) {
  std::size_t offset = 0;
  for (std::size_t i = 0; i < run.pieces.size(); ++i) {
    const auto& piece = run.pieces[i];
    ASSERT_EQ(expected.compare(offset, piece.size(), piece), 0)
        << "token " << i + 1 << " (id " << run.tokens[i + 1] << ", piece \"" << piece
        << "\") differs at byte " << offset << "; expected \"" << expected.substr(offset, 40) << "\"";
    offset += piece.size();
  }
  EXPECT_EQ(offset, expected.size()) << "the generation stopped early: " << run.text;
  EXPECT_EQ(run.text, expected);
}

class Stories260K : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = stories_dir();
    if (dir_.empty()) GTEST_SKIP() << "shared data not found (set DISRANKER_DATA to the shared data folder)";
    model_ = load_llama2c_decoder(dir_ + "/stories260K.bin");
    tokenizer_ = Llama2cTokenizer::load(dir_ + "/tok512.bin");
    md_ = read_file(dir_ + "/stories260K.md");
  }
  std::string dir_;
  Decoder model_{nullptr};
  std::unique_ptr<Llama2cTokenizer> tokenizer_;
  std::string md_;
};

TEST_F(Stories260K, ConfigFromHeader) {
  const auto& c = model_->config();
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_hidden_layers, 5);
  EXPECT_EQ(c.num_attention_heads, 8);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  std::int64_t params = 0;
  for (const auto& [name, t] : model_->named_hf_tensors()) {
    if (name != "score.weight") params += t.numel();
  }
  EXPECT_EQ(params, 260032);
}

TEST_F(Stories260K, GreedyOutputMatchesLlama2cExactly) {
  const auto expected =
      documented_output(md_, "./run stories260K/stories260K.bin -z stories260K/tok512.bin -t 0.0");
  ASSERT_FALSE(expected.empty()) << "the greedy sample was not found in stories260K.md";
  const auto run = run_like_llama2c(*model_, *tokenizer_, "", SamplingOptions{0.0f, 0.9f, 1});
  expect_same_text(run, expected);
  EXPECT_EQ(run.tokens.size(), 257u);  // BOS + 256 steps: llama2.c's default -n 256, no BOS on the way
}

TEST_F(Stories260K, GreedyWithoutCacheIsTheSame) {
  GenerateOptions options;
  options.max_new_tokens = 64;
  const auto cached = generate(*model_, {1}, options);
  options.use_cache = false;
  EXPECT_EQ(generate(*model_, {1}, options), cached);
}

TEST_F(Stories260K, SampledOutputMatchesLlama2c) {
  // llama2.c's sampler (xorshift, top-p) on the same logits: the documented sample at -t 1.0 -p 0.9 -s
  // 133742.
  const auto expected = documented_output(
      md_, "./run stories260K/stories260K.bin -z stories260K/tok512.bin -t 1.0 -p 0.9 -s 133742");
  ASSERT_FALSE(expected.empty()) << "the sampled output was not found in stories260K.md";
  const auto run = run_like_llama2c(*model_, *tokenizer_, "", SamplingOptions{1.0f, 0.9f, 133742});
  expect_same_text(run, expected);
}

TEST_F(Stories260K, PromptIsContinued) {
  const auto run =
      run_like_llama2c(*model_, *tokenizer_, "Once upon a time", SamplingOptions{0.0f, 0.9f, 1}, 40);
  const auto greedy =
      documented_output(md_, "./run stories260K/stories260K.bin -z stories260K/tok512.bin -t 0.0");
  // The greedy story starts with the prompt, so continuing the prompt greedily gives the same text.
  ASSERT_GE(greedy.size(), run.text.size());
  EXPECT_EQ(run.text, greedy.substr(0, run.text.size()));
  EXPECT_EQ(run.text.rfind("Once upon a time", 0), 0u);
}

TEST_F(Stories260K, CliGeneratesTheSameText) {
  const char* bin = std::getenv("DISRANKER_BIN");
  if (bin == nullptr) GTEST_SKIP() << "DISRANKER_BIN not set (run through ctest)";
  TempDir tmp;
  const auto out = (tmp.path() / "out.txt").string();
  const std::string cmd = std::string(bin) + " generate --model " + dir_ + "/stories260K.bin --tokenizer " +
                          dir_ + "/tok512.bin --greedy --max-new-tokens 256 --threads 1 > " + out + " 2>" +
                          (tmp.path() / "err.txt").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file((tmp.path() / "err.txt").string());
  const auto expected =
      documented_output(md_, "./run stories260K/stories260K.bin -z stories260K/tok512.bin -t 0.0");
  EXPECT_EQ(read_file(out), expected + "\n");
}

TEST_F(Stories260K, HfModelDirectoryGeneratesTheSameText) {
  // stories260K saved as a Hugging Face directory (config.json + model.safetensors, the HF rotary layout) and
  // read back: the same greedy story, in-process and through the CLI.
  TempDir tmp;
  const auto dir = (tmp.path() / "stories260K-hf").string();
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [name, t] : model_->named_hf_tensors()) {
    if (name != "score.weight") tensors.emplace_back(name, t);
  }
  save_hf_model_dir(dir, decoder_config_to_json(model_->config()), tensors);
  const auto hf = load_hf_model_dir(dir);
  const auto config = parse_decoder_config(hf.config.dump(), dir + "/config.json");
  EXPECT_EQ(config, model_->config());
  Decoder reloaded(config);
  const auto report = reloaded->load_hf_tensors(hf.tensors(), /*strict=*/true, dir);
  EXPECT_EQ(report.missing, std::vector<std::string>{"score.weight"});
  const auto expected =
      documented_output(md_, "./run stories260K/stories260K.bin -z stories260K/tok512.bin -t 0.0");
  expect_same_text(run_like_llama2c(*reloaded, *tokenizer_, "", SamplingOptions{0.0f, 0.9f, 1}), expected);

  const char* bin = std::getenv("DISRANKER_BIN");
  if (bin == nullptr) GTEST_SKIP() << "DISRANKER_BIN not set (run through ctest)";
  const auto out = (tmp.path() / "out.txt").string();
  const std::string cmd = std::string(bin) + " generate --model " + dir + " --tokenizer " + dir_ +
                          "/tok512.bin --greedy --threads 1 > " + out + " 2>" +
                          (tmp.path() / "err.txt").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file((tmp.path() / "err.txt").string());
  EXPECT_EQ(read_file(out), expected + "\n");
}

TEST_F(Stories260K, Version1FileHoldsTheSameWeights) {
  // Re-export the legacy file in export.py's version-1 layout and read it back.
  const auto legacy = read_llama2c_checkpoint(dir_ + "/stories260K.bin");
  std::map<std::string, torch::Tensor> hf(legacy.tensors.begin(), legacy.tensors.end());
  const auto& h = legacy.header;
  std::string bytes(256, '\0');
  const std::uint32_t magic = 0x616b3432;
  const std::int32_t fields[9] = {
      1, h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len, 0};
  std::memcpy(bytes.data(), &magic, 4);
  std::memcpy(bytes.data() + 4, fields, 8 * 4);
  bytes[36] = 1;  // shared classifier
  const auto put = [&](const torch::Tensor& t) {
    const auto c = t.contiguous();
    bytes.append(reinterpret_cast<const char*>(c.data_ptr<float>()), static_cast<std::size_t>(c.numel()) * 4);
  };
  const auto layer = [&](int i, const std::string& name) {
    return hf.at("model.layers." + std::to_string(i) + "." + name);
  };
  for (int i = 0; i < h.n_layers; ++i) put(layer(i, "input_layernorm.weight"));
  for (int i = 0; i < h.n_layers; ++i) put(layer(i, "post_attention_layernorm.weight"));
  put(hf.at("model.norm.weight"));
  put(hf.at("model.embed_tokens.weight"));
  for (int i = 0; i < h.n_layers; ++i)
    put(hf_to_llama2c_rotary_rows(layer(i, "self_attn.q_proj.weight"), h.n_heads));
  for (int i = 0; i < h.n_layers; ++i)
    put(hf_to_llama2c_rotary_rows(layer(i, "self_attn.k_proj.weight"), h.n_kv_heads));
  for (int i = 0; i < h.n_layers; ++i) put(layer(i, "self_attn.v_proj.weight"));
  for (int i = 0; i < h.n_layers; ++i) put(layer(i, "self_attn.o_proj.weight"));
  for (int i = 0; i < h.n_layers; ++i) put(layer(i, "mlp.gate_proj.weight"));
  for (int i = 0; i < h.n_layers; ++i) put(layer(i, "mlp.down_proj.weight"));
  for (int i = 0; i < h.n_layers; ++i) put(layer(i, "mlp.up_proj.weight"));
  TempDir tmp;
  const auto v1 = read_llama2c_checkpoint(tmp.write("v1.bin", bytes));
  EXPECT_EQ(v1.header.version, 1);
  EXPECT_EQ(v1.config, legacy.config);
  ASSERT_EQ(v1.tensors.size(), legacy.tensors.size());
  for (std::size_t i = 0; i < v1.tensors.size(); ++i) {
    EXPECT_EQ(v1.tensors[i].first, legacy.tensors[i].first);
    EXPECT_TRUE(torch::equal(v1.tensors[i].second, legacy.tensors[i].second)) << v1.tensors[i].first;
  }
  // Cut short, or the shared flag not 0/1.
  EXPECT_THROW(read_llama2c_checkpoint(tmp.write("short.bin", bytes.substr(0, bytes.size() - 4))), Error);
  auto flag = bytes;
  flag[36] = 2;
  EXPECT_THROW(read_llama2c_checkpoint(tmp.write("flag.bin", flag)), Error);
  auto v2 = bytes;
  v2[4] = 2;
  try {
    read_llama2c_checkpoint(tmp.write("v2.bin", v2));
    FAIL() << "version 2 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("version 2"), std::string::npos) << e.what();
  }
}

// ---- Synthetic files
// -------------------------------------------------------------------------------------------

struct Header {
  std::int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

// The number of float32 values a legacy file with this header holds, computed independently of the reader.
std::size_t legacy_floats(const Header& h) {
  const std::size_t dim = static_cast<std::size_t>(h.dim), hidden = static_cast<std::size_t>(h.hidden_dim),
                    layers = static_cast<std::size_t>(h.n_layers),
                    vocab = static_cast<std::size_t>(std::abs(h.vocab_size));
  const std::size_t head = dim / static_cast<std::size_t>(h.n_heads);
  const std::size_t kv = head * static_cast<std::size_t>(h.n_kv_heads);
  std::size_t n = vocab * dim +
                  layers * (dim + dim * dim + 2 * kv * dim + dim * dim + dim + 3 * hidden * dim) + dim +
                  static_cast<std::size_t>(h.seq_len) * head;
  if (h.vocab_size < 0) n += vocab * dim;
  return n;
}

// A legacy file: the header, then `floats` values 0, 1, 2, ... (times 1e-3).
std::string legacy_file(const Header& h, std::size_t floats) {
  std::string bytes(sizeof(Header), '\0');
  std::memcpy(bytes.data(), &h, sizeof(Header));
  for (std::size_t i = 0; i < floats; ++i) {
    const float v = static_cast<float>(i) * 1e-3f;
    bytes.append(reinterpret_cast<const char*>(&v), 4);
  }
  return bytes;
}

constexpr Header kTiny = {8, 12, 1, 2, 1, 10, 4};

TEST(Llama2cCheckpoint, MapsTheTensorsOfASyntheticFile) {
  TempDir tmp;
  Header h = kTiny;
  h.vocab_size = -10;  // unshared classifier
  const auto n = legacy_floats(h);
  const auto ckpt = read_llama2c_checkpoint(tmp.write("tiny.bin", legacy_file(h, n)));
  EXPECT_FALSE(ckpt.config.tie_word_embeddings);
  EXPECT_EQ(ckpt.config.vocab_size, 10);
  std::map<std::string, torch::Tensor> t(ckpt.tensors.begin(), ckpt.tensors.end());
  const auto value = [](std::size_t i) { return static_cast<float>(i) * 1e-3f; };
  EXPECT_EQ(t.at("model.embed_tokens.weight")[0][1].item<float>(), value(1));
  EXPECT_EQ(t.at("model.layers.0.input_layernorm.weight")[0].item<float>(), value(80));
  // wq starts at 88: row r of llama2.c (head size 4) -> HF row: 0->0, 1->2, 2->1, 3->3 within each head.
  const auto wq = t.at("model.layers.0.self_attn.q_proj.weight");
  const auto llama_row = [&](std::size_t r) { return value(88 + r * 8); };
  const std::size_t hf_to_llama[8] = {0, 2, 1, 3, 4, 6, 5, 7};
  for (std::size_t r = 0; r < 8; ++r) {
    EXPECT_EQ(wq[static_cast<std::int64_t>(r)][0].item<float>(), llama_row(hf_to_llama[r])) << "row " << r;
  }
  // wk [4, 8] after wq [8, 8]: one kv head.
  const auto wk = t.at("model.layers.0.self_attn.k_proj.weight");
  EXPECT_EQ(wk[1][0].item<float>(), value(88 + 64 + 2 * 8));
  // w1 = gate, w2 = down, w3 = up; the classifier is last.
  const std::size_t w1 = 88 + 64 + 32 + 32 + 64 + 8;
  EXPECT_EQ(t.at("model.layers.0.mlp.gate_proj.weight")[0][0].item<float>(), value(w1));
  EXPECT_EQ(t.at("model.layers.0.mlp.down_proj.weight")[0][0].item<float>(), value(w1 + 96));
  EXPECT_EQ(t.at("model.layers.0.mlp.up_proj.weight")[0][0].item<float>(), value(w1 + 192));
  EXPECT_EQ(t.at("model.norm.weight")[0].item<float>(), value(w1 + 288));
  EXPECT_EQ(t.at("lm_head.weight")[9][7].item<float>(), value(n - 1));
  // And it loads into a model (with its own lm_head).
  auto model = load_llama2c_decoder(tmp.write("tiny2.bin", legacy_file(h, n)));
  EXPECT_FALSE(model->lm_head.is_empty());
}

TEST(Llama2cCheckpoint, PermutationMakesHfRotaryEqualLlama2cRotary) {
  // llama2.c rotates pairs (2i, 2i+1) with frequency 10000^(-2i/hs); the permuted vector under HF's
  // rotate_half rotation must equal the permuted llama2.c result.
  const std::int64_t hs = 8, heads = 2, pos = 5;
  torch::manual_seed(1);
  const auto v = torch::randn({heads * hs, 1});
  auto rotated = v.clone();
  for (std::int64_t h = 0; h < heads; ++h) {
    for (std::int64_t i = 0; i < hs; i += 2) {
      const float freq = 1.0f / std::pow(10000.0f, static_cast<float>(i) / static_cast<float>(hs));
      const float val = static_cast<float>(pos) * freq;
      const float a = v[h * hs + i][0].item<float>(), b = v[h * hs + i + 1][0].item<float>();
      rotated[h * hs + i][0] = a * std::cos(val) - b * std::sin(val);
      rotated[h * hs + i + 1][0] = a * std::sin(val) + b * std::cos(val);
    }
  }
  RotaryEmbedding rope(hs, 10000.0);
  const auto [cos, sin] = rope(torch::tensor({pos}, torch::kLong));
  const auto hf_in = llama2c_to_hf_rotary_rows(v, heads).view({1, heads, 1, hs});
  const auto hf_out = apply_rotary(hf_in, cos, sin).reshape({heads * hs, 1});
  EXPECT_LT((hf_out - llama2c_to_hf_rotary_rows(rotated, heads)).abs().max().item<double>(), 1e-5);
  EXPECT_TRUE(torch::equal(hf_to_llama2c_rotary_rows(llama2c_to_hf_rotary_rows(v, heads), heads), v));
}

// Every malformed file is an Error that names the file.
void expect_rejected(const std::string& path, const std::string& what) {
  try {
    read_llama2c_checkpoint(path);
    ADD_FAILURE() << "accepted: " << what;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << what << ": " << e.what();
  }
}

TEST(Llama2cCheckpoint, RejectsMalformedFiles) {
  TempDir tmp;
  const auto n = legacy_floats(kTiny);
  const auto good = legacy_file(kTiny, n);
  EXPECT_NO_THROW(read_llama2c_checkpoint(tmp.write("good.bin", good)));
  expect_rejected(tmp.write("trunc.bin", good.substr(0, good.size() - 4)), "truncated by one float");
  expect_rejected(tmp.write("trunc1.bin", good.substr(0, good.size() - 1)), "truncated by one byte");
  expect_rejected(tmp.write("long.bin", good + std::string(4, '\0')), "one float too many");
  expect_rejected(tmp.write("short.bin", good.substr(0, 20)), "header cut short");
  expect_rejected(tmp.write("empty.bin", ""), "empty");
  expect_rejected((tmp.path() / "missing.bin").string(), "missing");
  expect_rejected(tmp.path().string(), "a directory");

  const auto with = [&](auto edit, const std::string& name) {
    Header h = kTiny;
    edit(h);
    // The size that header would imply where it is computable, else the good size: either way a bad header.
    expect_rejected(tmp.write(name + ".bin", legacy_file(h, n)), name);
  };
  with([](Header& h) { h.dim = 0; }, "dim0");
  with([](Header& h) { h.dim = -8; }, "dim_negative");
  with([](Header& h) { h.hidden_dim = 0; }, "hidden0");
  with([](Header& h) { h.n_layers = 0; }, "layers0");
  with([](Header& h) { h.n_heads = 0; }, "heads0");
  with([](Header& h) { h.n_heads = 3; }, "heads_not_dividing");
  with([](Header& h) { h.n_heads = 8; }, "odd_head_size");  // head size 1
  with([](Header& h) { h.n_kv_heads = 0; }, "kv0");
  with([](Header& h) { h.n_kv_heads = 4; }, "kv_more_than_heads");
  with([](Header& h) { h.vocab_size = 0; }, "vocab0");
  with([](Header& h) { h.vocab_size = std::numeric_limits<std::int32_t>::min(); }, "vocab_min");
  with([](Header& h) { h.seq_len = 0; }, "seq0");
  with(
      [](Header& h) {
        h.dim = std::numeric_limits<std::int32_t>::max() - 1;
        h.hidden_dim = std::numeric_limits<std::int32_t>::max();
        h.n_layers = std::numeric_limits<std::int32_t>::max();
        h.n_heads = 2;
        h.n_kv_heads = 2;
      },
      "overflow");
  // A header that is consistent but for another model: the size check names both sizes.
  Header other = kTiny;
  other.n_layers = 2;
  try {
    read_llama2c_checkpoint(tmp.write("other.bin", legacy_file(other, n)));
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(good.size())), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(std::to_string(28 + legacy_floats(other) * 4)), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace disranker
