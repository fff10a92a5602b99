#include "infer/bert_engine.h"

#include <dnnl.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <filesystem>
#include <numeric>

#include "core/error.h"
#include "infer/attention.h"
#include "infer/avx2_gemm.h"
#include "infer/int8_gemm.h"
#include "infer/simd_math.h"
#include "infer/vector_math.h"
#include "infer/vnni_gemm.h"
#include "model/safetensors.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;

// int8 mode: the integer output a thread computes per block of rows before dequantizing it, sized for its
// 1 MiB L2 (AMD EPYC here; 256 KiB, 512 KiB and 2 MiB measured 12%, 4% and 1% slower on MiniLM-L6).
constexpr std::int64_t kAccumulatorBytes = 1 << 20;

// y = x W + b with W stored [in, out] (transposed from Hugging Face's [out, in] at load); in int8 mode the
// weight is replaced by its quantized copy.
struct Linear {
  std::int64_t in = 0, out = 0;
  std::vector<float> weight;  // [in, out]; empty once quantized
  std::vector<float> bias;    // [out]
  Int8Weights int8;           // empty in float32 mode; its values are dropped once packed for a kernel
  VnniWeights vnni;           // int8 repacked for the VNNI kernel; empty where it does not run
  Avx2Weights avx2;           // int8 in [-63, 63] repacked for the AVX2 kernel; empty where it does not run
};

struct Norm {
  std::vector<float> gain, bias;
};

struct Layer {
  Linear qkv;  // [H, 3H]: the query, key and value projections side by side
  Linear attention_output;
  Norm attention_norm;
  Linear intermediate;
  Linear output;
  Norm output_norm;
};

// Grows `buffer` to at least `size` elements (never shrinks).
template <class T>
void grow(std::vector<T>& buffer, std::int64_t size) {
  if (buffer.size() < static_cast<std::size_t>(size)) buffer.resize(static_cast<std::size_t>(size));
}

// A row-major activation matrix and, in int8 mode, its quantized copy (one scale and zero point per row),
// which is what the next dense layer reads.
struct Rows {
  std::int64_t width = 0;
  std::vector<float> values;
  std::vector<std::uint8_t> quantized;
  std::vector<float> scale;
  std::vector<std::int32_t> zero;

  float* row(std::int64_t i) { return values.data() + i * width; }
  const float* row(std::int64_t i) const { return values.data() + i * width; }
  // Room for `rows` rows (grow only: no allocation in the steady state); without `floats` the quantized
  // copy only (int8 rows that are never read as floats).
  void reserve(std::int64_t rows, std::int64_t row_width, bool int8, bool floats = true) {
    width = row_width;
    if (floats) grow(values, rows * width);
    if (int8) grow(quantized, rows * width), grow(scale, rows), grow(zero, rows);
  }
  // Quantizes `from` (default: row i itself) into row i's quantized copy.
  void quantize(std::int64_t i, int levels, const float* from = nullptr) {
    quantize_row(from != nullptr ? from : row(i), width, levels, quantized.data() + i * width,
                 &scale[static_cast<std::size_t>(i)], &zero[static_cast<std::size_t>(i)]);
  }
};

// The buffers of forward passes, reused across calls: score_raw sizes them for the largest call of its
// request before any pass runs (Impl::prepare), so a request whose calls are no larger than earlier ones
// allocates nothing. `threads`: the team that runs the loops of a pass on this workspace.
struct Workspace {
  int threads = 1;
  Rows x, qkv, context, scratch, intermediate;                      // packed: [tokens, ...]
  Rows cls, cls_query, cls_context, cls_scratch, cls_intermediate;  // [sequences, ...]
  std::vector<std::int32_t> accumulators;  // int8 mode: a dense layer's integer output
  std::vector<float> row_scratch;  // int8 mode, per thread: a dense row that only its quantized copy outlives
  std::vector<float> attention_scores;           // per thread: one (sequence, head)'s [rows, length] scores
  std::atomic<int> failed_status{dnnl_success};  // a oneDNN failure inside a parallel loop
  std::vector<std::int64_t> offsets, lengths;

  // After a parallel loop: throws the failure it recorded in failed_status (and clears it), as "bert engine:
  // oneDNN <what> with status N". A C string: the call runs after every loop and must not allocate.
  void rethrow_onednn_failure(const char* what) {
    if (const int status = failed_status.exchange(dnnl_success); status != dnnl_success)
      throw Error("bert engine: oneDNN " + std::string(what) + " with status " + std::to_string(status));
  }
};

// The size of a forward call that a workspace must hold: packed tokens, pairs, and the longest pair.
struct CallShape {
  std::int64_t tokens = 0, sequences = 0, longest = 0;
};

// An int8 dense layer's per-thread scratch (see Impl::dense): rows per task, and the floats of row_scratch
// and the int32s of accumulators the whole team needs.
struct Int8DenseScratch {
  std::int64_t block = 0, row_floats = 0, accumulators = 0;
};

// engine_kernel: the VNNI or AVX2 kernel runs the layer (else oneDNN's u8s8s32); to_scratch: the output rows
// go to row_scratch (out == nullptr) rather than to an output array.
Int8DenseScratch int8_dense_scratch(bool engine_kernel, bool to_scratch, std::int64_t rows,
                                    std::int64_t count, std::int64_t threads) {
  const std::int64_t share = (rows + threads - 1) / threads;
  Int8DenseScratch need;
  if (engine_kernel) {
    need.block = threads == 1 && !to_scratch ? rows : std::min<std::int64_t>(96, share);
    need.row_floats = to_scratch ? threads * need.block * count : 0;
  } else {
    need.block = std::min(std::max<std::int64_t>(16, kAccumulatorBytes / (4 * count)), share);
    need.accumulators = threads * need.block * count;
    need.row_floats = to_scratch ? threads * count : 0;
  }
  return need;
}

enum class Activation { kGeluErf, kGeluTanh, kRelu, kSilu };

Activation parse_activation(const std::string& name, const std::string& file) {
  if (name == "gelu") return Activation::kGeluErf;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return Activation::kGeluTanh;
  if (name == "relu") return Activation::kRelu;
  if (name == "silu" || name == "swish") return Activation::kSilu;
  throw Error(file, 0, "hidden_act", "unsupported activation: " + name);
}

// C[m, n] = A[m, k] B[k, n] (row-major, leading dimensions given), by oneDNN.
void gemm(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t lda, const float* b,
          std::int64_t ldb, float* c, std::int64_t ldc) {
  if (m == 0) return;
  const dnnl_status_t status = dnnl_sgemm('N', 'N', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
  if (status != dnnl_success)
    throw Error("bert engine: oneDNN sgemm failed with status " + std::to_string(status));
}

// LayerNorm of one row, written once and compiled twice: generic, and AVX2 + FMA (8 floats wide, chosen at
// run time; the library targets baseline x86-64). Float sums with 8-wide partial sums: for rows of a few
// hundred values the rounding stays far below the 1e-4 the tests hold the engine to.
inline __attribute__((always_inline)) void layer_norm_body(float* row, const float* residual, std::int64_t n,
                                                           const Norm& norm, float eps) {
  if (residual != nullptr) {
#pragma omp simd
    for (std::int64_t j = 0; j < n; ++j) row[j] += residual[j];
  }
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (std::int64_t j = 0; j < n; ++j) sum += row[j];
  const float mean = sum / static_cast<float>(n);
  float squares = 0;
#pragma omp simd reduction(+ : squares)
  for (std::int64_t j = 0; j < n; ++j) squares += (row[j] - mean) * (row[j] - mean);
  const float inv = 1.0f / std::sqrt(squares / static_cast<float>(n) + eps);
  const float* g = norm.gain.data();
  const float* b = norm.bias.data();
#pragma omp simd
  for (std::int64_t j = 0; j < n; ++j) row[j] = (row[j] - mean) * inv * g[j] + b[j];
}

__attribute__((target("avx2,fma"))) void layer_norm_avx2(float* row, const float* residual, std::int64_t n,
                                                         const Norm& norm, float eps) {
  layer_norm_body(row, residual, n, norm, eps);
}
void layer_norm_generic(float* row, const float* residual, std::int64_t n, const Norm& norm, float eps) {
  layer_norm_body(row, residual, n, norm, eps);
}

// AVX-512 for n a multiple of 32: the sums in two independent chains (a single chain waits on each add's
// latency, which for rows of a few hundred values is what LayerNorm costs).
__attribute__((target("avx512f"))) void layer_norm_avx512(float* row, const float* residual, std::int64_t n,
                                                          const Norm& norm, float eps) {
  __m512 sum0 = _mm512_setzero_ps(), sum1 = sum0;
  for (std::int64_t j = 0; j < n; j += 32) {
    __m512 a = _mm512_loadu_ps(row + j), b = _mm512_loadu_ps(row + j + 16);
    if (residual != nullptr) {
      a = _mm512_add_ps(a, _mm512_loadu_ps(residual + j)),
      b = _mm512_add_ps(b, _mm512_loadu_ps(residual + j + 16));
      _mm512_storeu_ps(row + j, a), _mm512_storeu_ps(row + j + 16, b);
    }
    sum0 = _mm512_add_ps(sum0, a), sum1 = _mm512_add_ps(sum1, b);
  }
  const float mean = _mm512_reduce_add_ps(_mm512_add_ps(sum0, sum1)) / static_cast<float>(n);
  const __m512 m = _mm512_set1_ps(mean);
  __m512 sq0 = _mm512_setzero_ps(), sq1 = sq0;
  for (std::int64_t j = 0; j < n; j += 32) {
    const __m512 a = _mm512_sub_ps(_mm512_loadu_ps(row + j), m),
                 b = _mm512_sub_ps(_mm512_loadu_ps(row + j + 16), m);
    sq0 = _mm512_fmadd_ps(a, a, sq0), sq1 = _mm512_fmadd_ps(b, b, sq1);
  }
  const float variance = _mm512_reduce_add_ps(_mm512_add_ps(sq0, sq1)) / static_cast<float>(n);
  const __m512 inv = _mm512_set1_ps(1.0f / std::sqrt(variance + eps));
  for (std::int64_t j = 0; j < n; j += 16) {
    const __m512 centred = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(row + j), m), inv);
    _mm512_storeu_ps(row + j, _mm512_fmadd_ps(centred, _mm512_loadu_ps(norm.gain.data() + j),
                                              _mm512_loadu_ps(norm.bias.data() + j)));
  }
}

// row = LayerNorm(row + residual); no residual when it is null.
void add_residual_norm(float* row, const float* residual, std::int64_t n, const Norm& norm, float eps) {
  if (vector_math_uses_avx512() && n % 32 == 0) return layer_norm_avx512(row, residual, n, norm, eps);
  if (vector_math_uses_avx2()) return layer_norm_avx2(row, residual, n, norm, eps);
  layer_norm_generic(row, residual, n, norm, eps);
}

void activate(float* row, std::int64_t n, Activation activation) {
  switch (activation) {
    case Activation::kGeluErf:
      gelu_erf(row, static_cast<std::size_t>(n));
      break;
    case Activation::kGeluTanh:
      gelu_tanh(row, static_cast<std::size_t>(n));
      break;
    case Activation::kRelu:
      for (std::int64_t j = 0; j < n; ++j) row[j] = std::max(row[j], 0.0f);
      break;
    case Activation::kSilu:
      for (std::int64_t j = 0; j < n; ++j) row[j] = row[j] / (1.0f + std::exp(-row[j]));
      break;
  }
}

// Reads one tensor as float32 and checks its shape; names are tried with and without transformers' "bert."
// prefix (BertModel checkpoints have none).
class WeightReader {
 public:
  WeightReader(const std::string& dir) : dir_(dir), checkpoint_(SafetensorsCheckpoint::open(dir)) {}

  std::vector<float> get(const std::string& name, std::vector<std::int64_t> shape) const {
    const TensorView* view = checkpoint_.find(name);
    if (view == nullptr && name.starts_with("bert.")) view = checkpoint_.find(name.substr(5));
    if (view == nullptr) {
      throw Error((fs::path(dir_) / "model.safetensors").string(), 0, name,
                  "missing (the fast engine needs a trained ranking head: pooler and classifier)");
    }
    if (view->shape != shape) {
      auto text = [](const std::vector<std::int64_t>& s) {
        std::string out = "[";
        for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
        return out + "]";
      };
      throw Error((fs::path(dir_) / "model.safetensors").string(), 0, name,
                  "shape " + text(view->shape) + ", the config says " + text(shape));
    }
    return view->to_float32(dir_);
  }

  // A Linear of transformers ([out, in] weight) stored transposed.
  Linear linear(const std::string& name, std::int64_t in, std::int64_t out) const {
    Linear l;
    l.in = in, l.out = out;
    const auto w = get(name + ".weight", {out, in});
    l.weight.resize(static_cast<std::size_t>(in * out));
    for (std::int64_t o = 0; o < out; ++o)
      for (std::int64_t i = 0; i < in; ++i)
        l.weight[static_cast<std::size_t>(i * out + o)] = w[static_cast<std::size_t>(o * in + i)];
    l.bias = get(name + ".bias", {out});
    return l;
  }

  Norm norm(const std::string& name, std::int64_t n) const {
    return Norm{get(name + ".weight", {n}), get(name + ".bias", {n})};
  }

 private:
  std::string dir_;
  SafetensorsCheckpoint checkpoint_;
};

// Three Linears with the same input side by side: [in, a.out + b.out + c.out].
Linear concatenate(const Linear& a, const Linear& b, const Linear& c) {
  Linear l;
  l.in = a.in;
  l.out = a.out + b.out + c.out;
  l.weight.resize(static_cast<std::size_t>(l.in * l.out));
  for (std::int64_t i = 0; i < l.in; ++i) {
    float* row = l.weight.data() + i * l.out;
    for (const Linear* part : {&a, &b, &c}) {
      row = std::copy_n(part->weight.data() + i * part->out, part->out, row);
    }
  }
  for (const Linear* part : {&a, &b, &c}) l.bias.insert(l.bias.end(), part->bias.begin(), part->bias.end());
  return l;
}

}  // namespace

struct BertEngine::Impl {
  std::string dir;
  BertConfig config;
  RankerManifest manifest;
  BertEngineOptions options;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<PairEncoder> encoder;
  Activation activation = Activation::kGeluErf;
  float eps = 1e-12f;

  std::vector<float> word, position, token_type;  // [vocab, H], [max_positions, H], [types, H]
  Norm embedding_norm;
  std::vector<Layer> layers;
  Linear pooler;
  std::vector<float> classifier;  // [H]
  float classifier_bias = 0;

  int levels = 255;  // int8 mode: the largest quantized activation (activation_levels())

  // One workspace per thread when each thread runs its own forward calls; the first when one call at a time
  // uses every thread.
  std::vector<std::unique_ptr<Workspace>> workspaces;
  std::vector<std::size_t> call_bounds;  // score_raw: the first pair of each forward call, then the end

  bool int8() const { return options.precision == Precision::kInt8; }
  // Sizes every buffer of `ws` for calls up to `shape` run by a team of `team` threads.
  void prepare(Workspace& ws, int team, const CallShape& shape) const;
  // attention()'s floats per thread for sequences up to `longest` tokens.
  std::int64_t attention_scores_floats(std::int64_t longest) const;
  std::int64_t attention_floats_per_thread(std::int64_t longest, bool cls_only) const;
  // One forward call; `ws` must have been prepared for it (score_raw prepares every workspace for its largest
  // call first).
  void forward(Workspace& ws, std::span<const EncodedPair> pairs, double* out) const;
  void embed(Workspace& ws, std::span<const EncodedPair> pairs) const;
  void attention(Workspace& ws, std::int64_t sequences, const float* query, std::int64_t query_ld,
                 bool cls_only, Rows& ctx) const;
  template <class RowOp>
  void dense(Workspace& ws, std::int64_t rows, const Rows& in, const Linear& linear, std::int64_t first,
             std::int64_t count, float* out, std::int64_t out_ld, RowOp op) const;
};

BertEngine::BertEngine() : impl_(std::make_unique<Impl>()) {}
BertEngine::~BertEngine() = default;

std::unique_ptr<BertEngine> BertEngine::load(const std::string& dir, std::int64_t default_max_length,
                                             BertEngineOptions options) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) throw Error(dir, 0, "", "model directory not found");
  const std::string config_path = (root / kHfConfigFile).string();
  if (read_model_type(config_path) != "bert")
    throw Error(config_path, 0, "model_type", "the fast engine runs BERT students only");
  std::unique_ptr<BertEngine> engine(new BertEngine());
  Impl& m = *engine->impl_;
  m.dir = dir;
  m.options = options;
  m.config = read_bert_config(config_path);
  const BertConfig& c = m.config;
  if (c.num_labels != 1)
    throw Error(config_path, 0, "num_labels",
                "a ranker has one score, this config has " + std::to_string(c.num_labels));
  m.activation = parse_activation(c.hidden_act, config_path);
  m.eps = static_cast<float>(c.layer_norm_eps);
  const fs::path manifest_path = root / kRankerManifestFile;
  if (fs::exists(manifest_path)) {
    m.manifest = read_ranker_manifest(manifest_path.string());
    if (m.manifest.pooling != Pooling::kCls)
      throw Error(manifest_path.string(), 0, "pooling", "a BERT model pools [CLS] (use cls)");
  } else {
    m.manifest.role = RankerRole::kStudent;
    m.manifest.pooling = Pooling::kCls;
    m.manifest.max_length = default_max_length;
  }
  m.tokenizer = load_tokenizer(dir);
  if (static_cast<std::int64_t>(m.tokenizer->vocab_size()) > c.vocab_size) {
    throw Error(dir, 0, "vocab_size",
                "the tokenizer has " + std::to_string(m.tokenizer->vocab_size()) +
                    " tokens, the model only " + std::to_string(c.vocab_size));
  }
  engine->set_max_length(m.manifest.max_length);

  const WeightReader weights(dir);
  const std::int64_t h = c.hidden_size;
  m.word = weights.get("bert.embeddings.word_embeddings.weight", {c.vocab_size, h});
  m.position = weights.get("bert.embeddings.position_embeddings.weight", {c.max_position_embeddings, h});
  m.token_type = weights.get("bert.embeddings.token_type_embeddings.weight", {c.type_vocab_size, h});
  m.embedding_norm = weights.norm("bert.embeddings.LayerNorm", h);
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "bert.encoder.layer." + std::to_string(i) + ".";
    Layer layer;
    layer.qkv = concatenate(weights.linear(p + "attention.self.query", h, h),
                            weights.linear(p + "attention.self.key", h, h),
                            weights.linear(p + "attention.self.value", h, h));
    layer.attention_output = weights.linear(p + "attention.output.dense", h, h);
    layer.attention_norm = weights.norm(p + "attention.output.LayerNorm", h);
    layer.intermediate = weights.linear(p + "intermediate.dense", h, c.intermediate_size);
    layer.output = weights.linear(p + "output.dense", c.intermediate_size, h);
    layer.output_norm = weights.norm(p + "output.LayerNorm", h);
    m.layers.push_back(std::move(layer));
  }
  m.pooler = weights.linear("bert.pooler.dense", h, h);
  m.classifier = weights.get("classifier.weight", {1, h});
  m.classifier_bias = weights.get("classifier.bias", {1})[0];
  if (m.int8()) {
    // The encoder's dense layers only: embeddings, pooler and classifier are a small part of the work.
    m.levels = activation_levels();
    for (Layer& layer : m.layers) {
      for (Linear* l : {&layer.qkv, &layer.attention_output, &layer.intermediate, &layer.output}) {
        // The last layer reads the qkv weight from column H on: panels must start there.
        const bool vnni = m.options.vnni_kernel && vnni_kernel_supports(l->in, l->out) && h % 16 == 0;
        const bool avx2 = !vnni && m.options.avx2_kernel && avx2_kernel_supports(l->in, l->out) && h % 8 == 0;
        l->int8 = quantize_weights(l->weight.data(), l->in, l->out, avx2 ? kAvx2WeightLevels : 127);
        if (vnni) l->vnni = pack_for_vnni(l->int8);
        if (avx2) l->avx2 = pack_for_avx2(l->int8);
        // The packed copy replaces the values (scales and column sums are still read).
        if (vnni || avx2) l->int8.values = {};
        l->weight = {};
      }
    }
  }
  return engine;
}

void BertEngine::set_max_length(std::int64_t max_length) {
  Impl& m = *impl_;
  PairEncoderOptions options;
  options.style = PairStyle::kBert;
  m.encoder =
      make_model_pair_encoder(*m.tokenizer, options, max_length, m.config.max_position_embeddings, m.dir);
  m.manifest.max_length = max_length;
}

EncodedPair BertEngine::encode(std::string_view query, std::string_view title, std::string_view summary,
                               std::size_t max_document_tokens) const {
  return impl_->encoder->encode(query, title, summary, max_document_tokens);
}

const BertConfig& BertEngine::config() const {
  return impl_->config;
}
const BertEngineOptions& BertEngine::options() const {
  return impl_->options;
}
const RankerManifest& BertEngine::manifest() const {
  return impl_->manifest;
}
const Tokenizer& BertEngine::tokenizer() const {
  return *impl_->tokenizer;
}
const PairEncoder& BertEngine::encoder() const {
  return *impl_->encoder;
}

std::vector<double> BertEngine::score(std::span<const EncodedPair> pairs, std::size_t batch_size) {
  std::vector<double> scores = score_raw(pairs, batch_size);
  for (double& s : scores) s = impl_->manifest.score.apply(s);
  return scores;
}

std::vector<double> BertEngine::score_raw(std::span<const EncodedPair> pairs, std::size_t batch_size) {
  Impl& m = *impl_;
  std::vector<double> scores(pairs.size());
  if (m.options.threads > 0) omp_set_num_threads(m.options.threads);
  const int threads = omp_get_max_threads();
  // With at least 4 pairs per thread, each thread runs whole forward passes on its own calls: a call's
  // activations stay in the thread's cache between layers (MiniLM-L6 int8 at one thread: 176 pairs/s with
  // calls of 512 tokens, 158 with 8,192, whose [tokens, 3H] floats go to memory), and no layer waits for
  // the other threads. With fewer (a thread would sit idle at the end) one call at a time uses every
  // thread, row by row, with calls up to threads × tokens_per_call tokens.
  const bool call_per_thread = threads > 1 && pairs.size() >= 4 * static_cast<std::size_t>(threads);
  const std::size_t token_budget = m.options.tokens_per_call * (call_per_thread ? 1 : threads);
  // Consecutive pairs up to the budgets per call (a pair longer than the token budget goes alone).
  const std::size_t most_pairs = batch_size > 0 ? batch_size : pairs.size();
  std::vector<std::size_t>& bounds = m.call_bounds;  // reused: no allocation in the steady state
  bounds.assign(1, 0);
  CallShape largest;  // what every workspace in use must hold
  while (bounds.back() < pairs.size()) {
    std::size_t end = bounds.back(), tokens = 0;
    while (end < pairs.size() && end - bounds.back() < most_pairs &&
           (end == bounds.back() || tokens + pairs[end].ids.size() <= token_budget)) {
      largest.longest =
          std::max<std::int64_t>(largest.longest, static_cast<std::int64_t>(pairs[end].ids.size()));
      tokens += pairs[end++].ids.size();
    }
    largest.tokens = std::max(largest.tokens, static_cast<std::int64_t>(tokens));
    largest.sequences = std::max(largest.sequences, static_cast<std::int64_t>(end - bounds.back()));
    bounds.push_back(end);
  }
  // forward() refuses longer pairs; no buffer is sized for them first.
  largest.longest = std::min(largest.longest, m.config.max_position_embeddings);
  const auto calls = static_cast<std::int64_t>(bounds.size() - 1);
  const auto run = [&](Workspace& ws, std::int64_t call) {
    const std::size_t begin = bounds[static_cast<std::size_t>(call)];
    m.forward(ws, pairs.subspan(begin, bounds[static_cast<std::size_t>(call) + 1] - begin),
              scores.data() + begin);
  };
  while (m.workspaces.size() < static_cast<std::size_t>(threads))
    m.workspaces.push_back(std::make_unique<Workspace>());
  // Every workspace the calls may land on is sized for the largest call before any runs: which thread gets
  // which call is decided at run time, and a later request then allocates nothing unless a call is larger.
  if (!call_per_thread) {
    m.prepare(*m.workspaces[0], threads, largest);
    for (std::int64_t call = 0; call < calls; ++call) run(*m.workspaces[0], call);
    return scores;
  }
  std::exception_ptr failure;  // an exception must not leave an OpenMP thread: rethrown after the loop
  for (int thread = 0; thread < threads; ++thread)
    m.prepare(*m.workspaces[static_cast<std::size_t>(thread)], 1, largest);
#pragma omp parallel for schedule(dynamic) num_threads(threads)
  for (std::int64_t call = 0; call < calls; ++call) {
    try {
      run(*m.workspaces[static_cast<std::size_t>(omp_get_thread_num())], call);
    } catch (...) {
#pragma omp critical(disranker_engine_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  return scores;
}

void BertEngine::Impl::embed(Workspace& ws, std::span<const EncodedPair> pairs) const {
  const std::int64_t h = config.hidden_size;
  const auto sequences = static_cast<std::int64_t>(pairs.size());
#pragma omp parallel for schedule(dynamic) num_threads(ws.threads)
  for (std::int64_t s = 0; s < sequences; ++s) {
    const EncodedPair& pair = pairs[static_cast<std::size_t>(s)];
    for (std::int64_t p = 0; p < ws.lengths[static_cast<std::size_t>(s)]; ++p) {
      const auto id = static_cast<std::int64_t>(pair.ids[static_cast<std::size_t>(p)]);
      const auto type = static_cast<std::int64_t>(pair.type_ids[static_cast<std::size_t>(p)]);
      const std::int64_t token = ws.offsets[static_cast<std::size_t>(s)] + p;
      float* row = ws.x.row(token);
      const float* w = word.data() + id * h;
      const float* pos = position.data() + p * h;
      const float* t = token_type.data() + type * h;
#pragma omp simd
      for (std::int64_t j = 0; j < h; ++j) row[j] = w[j] + pos[j] + t[j];
      add_residual_norm(row, nullptr, h, embedding_norm, eps);
      if (int8()) ws.x.quantize(token, levels);
    }
  }
}

// The fused kernel's workspace, or the scores of one head for the GEMM path.
std::int64_t BertEngine::Impl::attention_scores_floats(std::int64_t longest) const {
  const std::int64_t d = config.head_dim();
  const bool kernel = options.fused_attention && attention_kernel_supports(d);
  return kernel ? attention_workspace_floats(longest, d) : longest * longest;
}

// Per thread: the head's workspace, then (int8) the sequence's output rows.
std::int64_t BertEngine::Impl::attention_floats_per_thread(std::int64_t longest, bool cls_only) const {
  return attention_scores_floats(longest) + (int8() ? (cls_only ? 1 : longest) * config.hidden_size : 0);
}

void BertEngine::Impl::prepare(Workspace& ws, int team, const CallShape& shape) const {
  const std::int64_t h = config.hidden_size;
  const std::int64_t inner = config.intermediate_size;
  const bool q = int8();
  ws.threads = team;
  ws.offsets.reserve(static_cast<std::size_t>(shape.sequences));
  ws.lengths.reserve(static_cast<std::size_t>(shape.sequences));
  ws.x.reserve(shape.tokens, h, q), ws.qkv.reserve(shape.tokens, 3 * h, false);
  ws.context.reserve(shape.tokens, h, q, !q);
  ws.scratch.reserve(shape.tokens, h, q), ws.intermediate.reserve(shape.tokens, inner, q, !q);
  ws.cls.reserve(shape.sequences, h, q), ws.cls_query.reserve(shape.sequences, h, false);
  ws.cls_context.reserve(shape.sequences, h, q, !q);
  ws.cls_scratch.reserve(shape.sequences, h, q), ws.cls_intermediate.reserve(shape.sequences, inner, q, !q);
  grow(ws.attention_scores, team * attention_floats_per_thread(shape.longest, false));
  if (!q) return;
  // The widest dense layer over every token bounds each layer's scratch (it grows with rows and columns), on
  // whichever GEMM path the layers take.
  const std::int64_t widest = std::max(3 * h, inner);
  for (const Layer& layer : layers) {
    for (const Linear* linear : {&layer.qkv, &layer.attention_output, &layer.intermediate, &layer.output}) {
      const bool engine_kernel = !linear->vnni.packed.empty() || !linear->avx2.packed.empty();
      const Int8DenseScratch need = int8_dense_scratch(engine_kernel, true, shape.tokens, widest, team);
      grow(ws.row_scratch, need.row_floats), grow(ws.accumulators, need.accumulators);
    }
  }
}

// Scaled dot-product attention of each sequence with itself, head by head: the queries are rows of `query`
// (leading dimension query_ld; one per token, or with cls_only one per sequence), keys and values come from
// qkv's columns [H, 2H) and [2H, 3H) of every token; the result goes to ctx's rows. One task per sequence
// (all its heads), run single-threaded inside the parallel loop: the fused kernel of infer/attention.h where
// it runs, for every length (with heads of 64 two GEMMs win on long sequences in isolation, but sending
// those to them measured slower in the engine: bert-mini int8, 1 thread, 487–499 vs 505–514 pairs/s), else
// two small oneDNN GEMMs per head (scores = Q Kᵀ, out = softmax(scores) V; oneDNN does not nest). In int8
// mode the sequence's output rows are quantized while still in cache, and only the quantized copy is kept
// (ctx's floats are not read).
void BertEngine::Impl::attention(Workspace& ws, std::int64_t sequences, const float* query,
                                 std::int64_t query_ld, bool cls_only, Rows& ctx) const {
  const std::int64_t h = config.hidden_size;
  const std::int64_t heads = config.num_attention_heads;
  const std::int64_t d = config.head_dim();
  const std::int64_t ld = 3 * h;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const std::int64_t longest = *std::max_element(ws.lengths.begin(), ws.lengths.end());
  const bool kernel = options.fused_attention && attention_kernel_supports(d);
  const bool q8 = int8();
  const bool bf16 = q8 && options.bf16_attention && attention_bf16_supports();
  const std::int64_t scores_size = attention_scores_floats(longest);
  const std::int64_t per_thread = attention_floats_per_thread(longest, cls_only);
  grow(ws.attention_scores, ws.threads * per_thread);  // a no-op after prepare()
#pragma omp parallel for schedule(dynamic) num_threads(ws.threads)
  for (std::int64_t s = 0; s < sequences; ++s) {
    float* scores = ws.attention_scores.data() + omp_get_thread_num() * per_thread;
    const std::int64_t offset = ws.offsets[static_cast<std::size_t>(s)];
    const std::int64_t length = ws.lengths[static_cast<std::size_t>(s)];
    const std::int64_t rows = cls_only ? 1 : length;
    const std::int64_t first_row = cls_only ? s : offset;
    float* out = q8 ? scores + scores_size : ctx.row(first_row);
    for (std::int64_t head = 0; head < heads; ++head) {
      const float* keys = ws.qkv.row(offset) + h + head * d;
      const float* values = ws.qkv.row(offset) + 2 * h + head * d;
      const float* q = query + first_row * query_ld + head * d;
      if (kernel) {
        AttentionHead job;
        job.query = q, job.query_ld = query_ld, job.key = keys, job.value = values, job.kv_ld = ld;
        job.rows = rows, job.length = length, job.dim = d, job.scale = scale;
        job.out = out + head * d, job.out_ld = h, job.bf16 = bf16;
        attention_head(job, scores);
        continue;
      }
      dnnl_status_t status =
          dnnl_sgemm('N', 'T', rows, length, d, 1.0f, q, query_ld, keys, ld, 0.0f, scores, length);
      for (std::int64_t r = 0; r < rows; ++r)
        softmax(scores + r * length, static_cast<std::size_t>(length), scale);
      if (status == dnnl_success) {
        status =
            dnnl_sgemm('N', 'N', rows, d, length, 1.0f, scores, length, values, ld, 0.0f, out + head * d, h);
      }
      if (status != dnnl_success) ws.failed_status = status;  // thrown after the loop, not from a thread
    }
    if (q8)
      for (std::int64_t r = 0; r < rows; ++r) ctx.quantize(first_row + r, levels, out + r * h);
  }
  ws.rethrow_onednn_failure("sgemm failed in attention");
}

// out[i] = op(i, in[i] · W[:, first : first + count] + b[first : first + count]) for each of `rows` rows (out
// rows out_ld apart): each thread of the team multiplies blocks of rows, then adds the bias (after
// dequantizing, in int8 mode) and applies the fused row operation to a block while it is in cache.
template <class RowOp>
void BertEngine::Impl::dense(Workspace& ws, std::int64_t rows, const Rows& in, const Linear& linear,
                             std::int64_t first, std::int64_t count, float* out, std::int64_t out_ld,
                             RowOp op) const {
  const float* bias = linear.bias.data() + first;
  if (!int8()) {
    // A team splits the rows, each thread one sgemm (single-threaded inside the parallel loop) and then the
    // row pass over its block while it is in cache: oneDNN's own threading allocates bookkeeping on every
    // call, this does not.
    const std::int64_t block = (rows + ws.threads - 1) / ws.threads;
#pragma omp parallel for schedule(static) num_threads(ws.threads)
    for (std::int64_t first_row = 0; first_row < rows; first_row += block) {
      const std::int64_t m = std::min(block, rows - first_row);
      const dnnl_status_t status =
          dnnl_sgemm('N', 'N', m, count, linear.in, 1.0f, in.row(first_row), in.width,
                     linear.weight.data() + first, linear.out, 0.0f, out + first_row * out_ld, out_ld);
      if (status != dnnl_success) {
        ws.failed_status = status;  // thrown after the loop, not from a thread
        continue;
      }
      for (std::int64_t i = first_row; i < first_row + m; ++i) {
        float* row = out + i * out_ld;
#pragma omp simd
        for (std::int64_t j = 0; j < count; ++j) row[j] += bias[j];
        op(i, row);
      }
    }
    ws.rethrow_onednn_failure("sgemm failed");
    return;
  }
  const Int8Weights& w = linear.int8;
  const std::int64_t threads = ws.threads;
  if (!linear.vnni.packed.empty() || !linear.avx2.packed.empty()) {
    // int8 on the VNNI or AVX2 kernel: the dequantized rows come out of the GEMM; each thread takes blocks of
    // rows and applies the row operation to a block while it is in cache. Rows per task: 96 (a block of
    // weights is reused by more rows while in L1; 1–2% faster than 24 at one thread), fewer when that would
    // leave a thread without work (the last layer's [CLS] rows). A thread alone on its call writing to an
    // output array takes all the rows at once: each block of weights then comes from L2/L3 once per call
    // instead of once per 96 rows (MiniLM-L6 int8, one thread: 187.4–187.9 vs 182.2–186.4 pairs/s); rows
    // whose floats go to a scratch block keep 96, so that the block is still in cache when the row operation
    // reads it.
    const Int8DenseScratch need = int8_dense_scratch(true, out == nullptr, rows, count, threads);
    const std::int64_t block = need.block;
    grow(ws.row_scratch, need.row_floats);  // a no-op after prepare()
#pragma omp parallel for schedule(dynamic) num_threads(ws.threads)
    for (std::int64_t first_row = 0; first_row < rows; first_row += block) {
      const std::int64_t m = std::min(block, rows - first_row);
      float* block_out = out != nullptr ? out + first_row * out_ld
                                        : ws.row_scratch.data() + omp_get_thread_num() * block * count;
      const std::int64_t ld = out != nullptr ? out_ld : count;
      const std::uint8_t* a = in.quantized.data() + first_row * in.width;
      const float* row_scale = in.scale.data() + first_row;
      const std::int32_t* row_zero = in.zero.data() + first_row;
      if (!linear.vnni.packed.empty())
        gemm_int8_dequantize(linear.vnni, w, first, count, m, a, in.width, row_scale, row_zero, bias,
                             block_out, ld);
      else
        gemm_int8_dequantize_avx2(linear.avx2, w, first, count, m, a, in.width, row_scale, row_zero, bias,
                                  block_out, ld);
      for (std::int64_t i = 0; i < m; ++i) op(first_row + i, block_out + i * ld);
    }
    return;
  }
  // int8 on oneDNN: each thread takes blocks of rows through the integer GEMM (single-threaded inside the
  // parallel loop) and dequantizes them while the accumulators are still in its L2, instead of one GEMM over
  // all rows whose int32 output (tokens × 1,536 × 4 bytes for MiniLM's FFN: 58 MB per call) goes to memory
  // and back. Rows per block: the accumulators fill about kAccumulatorBytes, and every thread gets work.
  const Int8DenseScratch need = int8_dense_scratch(false, out == nullptr, rows, count, threads);
  const std::int64_t block = need.block;
  grow(ws.accumulators, need.accumulators), grow(ws.row_scratch, need.row_floats);  // no-ops after prepare()
#pragma omp parallel num_threads(ws.threads)
  {
    const int thread = omp_get_thread_num();
    std::int32_t* acc = ws.accumulators.data() + thread * block * count;
    float* scratch_row = ws.row_scratch.data() + thread * count;
#pragma omp for schedule(dynamic)
    for (std::int64_t first_row = 0; first_row < rows; first_row += block) {
      const std::int64_t m = std::min(block, rows - first_row);
      const int status = try_gemm_int8(m, count, w.in, in.quantized.data() + first_row * in.width, in.width,
                                       w.values.data() + first, w.out, acc, count);
      if (status != 0) {
        ws.failed_status = status;  // thrown after the loop, not from a thread
        continue;
      }
      for (std::int64_t i = first_row; i < first_row + m; ++i) {
        float* row = out != nullptr ? out + i * out_ld : scratch_row;
        dequantize_row(acc + (i - first_row) * count, count, in.scale[static_cast<std::size_t>(i)],
                       in.zero[static_cast<std::size_t>(i)], w.scale.data() + first,
                       w.column_sum.data() + first, bias, row);
        op(i, row);
      }
    }
  }
  ws.rethrow_onednn_failure("gemm_u8s8s32 failed");
}

void BertEngine::Impl::forward(Workspace& ws, std::span<const EncodedPair> pairs, double* out) const {
  const std::int64_t h = config.hidden_size;
  const std::int64_t inner = config.intermediate_size;
  const auto sequences = static_cast<std::int64_t>(pairs.size());
  ws.offsets.clear(), ws.lengths.clear();
  std::int64_t tokens = 0;
  for (const EncodedPair& pair : pairs) {
    if (pair.ids.empty()) throw Error("bert engine: an empty pair (no tokens)");
    if (pair.ids.size() > static_cast<std::size_t>(config.max_position_embeddings))
      throw Error("bert engine: a pair of " + std::to_string(pair.ids.size()) +
                  " tokens is longer than the " + std::to_string(config.max_position_embeddings) +
                  " positions of the model");
    for (std::size_t i = 0; i < pair.ids.size(); ++i) {
      if (pair.ids[i] < 0 || pair.ids[i] >= config.vocab_size || pair.type_ids[i] >= config.type_vocab_size)
        throw Error("bert engine: token id " + std::to_string(pair.ids[i]) + " (type " +
                    std::to_string(pair.type_ids[i]) + ") outside the model's vocabulary");
    }
    ws.offsets.push_back(tokens);
    ws.lengths.push_back(static_cast<std::int64_t>(pair.ids.size()));
    tokens += ws.lengths.back();
  }
  const bool q = int8();
  const auto nothing = [](std::int64_t, float*) {};

  // One encoder layer over `rows` query rows (every token, or with the last layer the [CLS] rows only): the
  // layer's input is `in` (its rows are the residual), its output overwrites `in`.
  const auto attention_block = [&](const Layer& layer, std::int64_t rows, Rows& in, Rows& query,
                                   bool cls_only, Rows& ctx, Rows& mid, Rows& ffn) {
    attention(ws, sequences, query.values.data(), query.width, cls_only, ctx);
    dense(ws, rows, ctx, layer.attention_output, 0, h, mid.row(0), h, [&](std::int64_t i, float* row) {
      add_residual_norm(row, in.row(i), h, layer.attention_norm, eps);
      if (q) mid.quantize(i, levels);  // the next dense layer reads the quantized row
    });
    // int8: only the quantized GELU output is read (by the next GEMM), its floats stay in a per-thread row.
    dense(ws, rows, mid, layer.intermediate, 0, inner, q ? nullptr : ffn.row(0), inner,
          [&](std::int64_t i, float* row) {
            activate(row, inner, activation);
            if (q) ffn.quantize(i, levels, row);
          });
    dense(ws, rows, ffn, layer.output, 0, h, in.row(0), h, [&](std::int64_t i, float* row) {
      add_residual_norm(row, mid.row(i), h, layer.output_norm, eps);
      if (q) in.quantize(i, levels);
    });
  };

  embed(ws, pairs);
  const auto layer_count = static_cast<std::int64_t>(layers.size());
  for (std::int64_t l = 0; l + 1 < layer_count; ++l) {
    const Layer& layer = layers[static_cast<std::size_t>(l)];
    dense(ws, tokens, ws.x, layer.qkv, 0, 3 * h, ws.qkv.row(0), 3 * h, nothing);
    attention_block(layer, tokens, ws.x, ws.qkv, false, ws.context, ws.scratch, ws.intermediate);
  }
  // The [CLS] rows of the last layer's input; the last layer computes only them (keys and values: every row).
  for (std::int64_t s = 0; s < sequences; ++s) {
    std::copy_n(ws.x.row(ws.offsets[static_cast<std::size_t>(s)]), h, ws.cls.row(s));
    if (q) ws.cls.quantize(s, levels);
  }
  if (layer_count > 0) {
    const Layer& layer = layers.back();
    dense(ws, tokens, ws.x, layer.qkv, h, 2 * h, ws.qkv.row(0) + h, 3 * h, nothing);
    dense(ws, sequences, ws.cls, layer.qkv, 0, h, ws.cls_query.row(0), h, nothing);
    attention_block(layer, sequences, ws.cls, ws.cls_query, true, ws.cls_context, ws.cls_scratch,
                    ws.cls_intermediate);
  }
  // Pooler and classifier (float32 in both modes).
  gemm(sequences, h, h, ws.cls.values.data(), h, pooler.weight.data(), h, ws.cls_scratch.values.data(), h);
  for (std::int64_t s = 0; s < sequences; ++s) {
    const float* row = ws.cls_scratch.row(s);
    double logit = classifier_bias;
    for (std::int64_t j = 0; j < h; ++j)
      logit += static_cast<double>(std::tanh(row[j] + pooler.bias[static_cast<std::size_t>(j)]) *
                                   classifier[static_cast<std::size_t>(j)]);
    out[s] = logit;
  }
}

}  // namespace disranker
