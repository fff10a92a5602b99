// Ranker: one model directory, whichever architecture it holds, scored through one template and one score
// contract. See ranker.h for the layout of the inputs; the notes here are about loading and saving.
//
// Tokenizer files are read into memory when the model is opened or created and written from memory on save:
// a training run may save into the directory it was loaded from, or delete the checkpoint it started from,
// and the saved model must still carry its tokenizer. They are written under the names load_tokenizer looks
// for in a directory (vocab.txt, tokenizer.json, tokenizer.bin), so that a vocabulary given as
// bert-base-uncased-vocab.txt is found again; a vocab.txt gets a tokenizer_config.json recording its
// lower-casing, which the file name decided before the rename.
#include "model/ranker.h"

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "model/lora.h"
#include "model/torch_tensors.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;

// Tokenizer files of a model directory that are carried along on save (Hugging Face's names).
constexpr const char* kTokenizerFileNames[] = {"tokenizer.json", "vocab.txt", "tokenizer_config.json",
                                               "special_tokens_map.json", "tokenizer.bin"};

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string(), 0, "", "cannot open file for reading");
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw Error(path.string(), 0, "", "read failed");
  return buffer.str();
}

// The do_lower_case load_tokenizer applies to a vocab .txt (text/tokenizer.cc): tokenizer_config.json beside
// it decides, else the file name ("cased" without "uncased" keeps case).
bool vocab_lowercase(const fs::path& vocab) {
  const auto config_path = vocab.parent_path() / "tokenizer_config.json";
  if (fs::exists(config_path)) {
    try {
      const auto json = nlohmann::json::parse(read_bytes(config_path));
      if (json.is_object() && json.contains("do_lower_case") && json["do_lower_case"].is_boolean()) {
        return json["do_lower_case"].get<bool>();
      }
    } catch (const nlohmann::json::parse_error& e) {
      throw Error(config_path.string(), 0, "", std::string("malformed JSON: ") + e.what());
    }
  }
  const auto name = vocab.filename().string();
  return !(name.find("cased") != std::string::npos && name.find("uncased") == std::string::npos);
}

using NamedBytes = std::vector<std::pair<std::string, std::string>>;

// The tokenizer files to carry, by their name in a model directory, read from a tokenizer path (a file or a
// directory), so that load_tokenizer(saved dir) gives the tokenizer load_tokenizer(path) gave.
NamedBytes tokenizer_files_from(const std::string& path_text) {
  const fs::path path(path_text);
  NamedBytes files;
  if (fs::is_directory(path)) {
    for (const char* name : kTokenizerFileNames) {
      if (fs::is_regular_file(path / name)) files.emplace_back(name, read_bytes(path / name));
    }
    if (files.empty()) throw Error(path_text, 0, "", "directory holds no tokenizer files");
    return files;
  }
  const auto extension = path.extension().string();
  if (extension == ".json") {
    files.emplace_back("tokenizer.json", read_bytes(path));
  } else if (extension == ".txt") {
    files.emplace_back("vocab.txt", read_bytes(path));
    nlohmann::json config = {{"do_lower_case", vocab_lowercase(path)}, {"tokenizer_class", "BertTokenizer"}};
    files.emplace_back("tokenizer_config.json", config.dump(2) + "\n");
  } else if (extension == ".bin") {
    files.emplace_back("tokenizer.bin", read_bytes(path));
  } else {
    throw Error(path_text, 0, "", "unknown tokenizer file type (expected .json, .txt or .bin)");
  }
  return files;
}

// A directory under the system temp dir holding the tokenizer files for one save, removed afterwards.
class StagedFiles {
 public:
  explicit StagedFiles(const NamedBytes& files) {
    if (files.empty()) return;
    std::string pattern = (fs::temp_directory_path() / "disranker-tokenizer-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw Error(pattern, 0, "", "cannot create a temporary directory");
    dir_ = pattern;
    for (const auto& [name, bytes] : files) {
      const auto path = dir_ / name;
      std::ofstream out(path, std::ios::binary);
      out << bytes;
      out.close();
      if (!out) throw Error(path.string(), 0, "", "write failed");
      paths_.push_back(path.string());
    }
  }
  ~StagedFiles() {
    std::error_code ignored;
    if (!dir_.empty()) fs::remove_all(dir_, ignored);
  }
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;
  const std::vector<std::string>& paths() const { return paths_; }

 private:
  fs::path dir_;
  std::vector<std::string> paths_;
};

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

void check_vocab(const Tokenizer& tokenizer, std::int64_t model_vocab, const std::string& source) {
  if (static_cast<std::int64_t>(tokenizer.vocab_size()) > model_vocab) {
    throw Error(source, 0, "vocab_size",
                "the tokenizer has " + std::to_string(tokenizer.vocab_size()) + " tokens, the model only " +
                    std::to_string(model_vocab));
  }
}

// The manifest's pooling must be one the architecture computes.
void check_pooling(Architecture architecture, Pooling pooling, const std::string& source) {
  const bool ok = architecture == Architecture::kBert ? pooling == Pooling::kCls : pooling != Pooling::kCls;
  if (!ok) {
    throw Error(source, 0, "pooling",
                std::string(to_string(pooling)) + " pooling does not go with a " +
                    (architecture == Architecture::kBert ? "BERT model (use cls)"
                                                         : "decoder model (use last_token or mean)"));
  }
}

}  // namespace

torch::nn::Module& Ranker::module() {
  if (bert_) return *bert_;
  return *decoder_;
}

void Ranker::init_encoder() {
  const auto& special = tokenizer_->special();
  if (architecture_ == Architecture::kBert) {
    pad_id_ = special.pad >= 0 ? special.pad : static_cast<TokenId>(bert_->config().pad_token_id);
  } else {
    // Padding is masked out: any id in the vocabulary will do when the tokenizer has no pad token.
    const auto& config = decoder_->config();
    pad_id_ = special.pad >= 0                  ? special.pad
              : config.pad_token_id.has_value() ? static_cast<TokenId>(*config.pad_token_id)
                                                : special.eos;
  }
  encoder_.reset();
  sync_encoder();
}

void Ranker::sync_encoder() const {
  if (encoder_ && encoder_->options().max_length == static_cast<std::size_t>(manifest_.max_length)) return;
  const std::int64_t max_positions = architecture_ == Architecture::kBert
                                         ? bert_->config().max_position_embeddings
                                         : decoder_->config().max_position_embeddings;
  PairEncoderOptions options;
  options.style = architecture_ == Architecture::kBert ? PairStyle::kBert : PairStyle::kDecoder;
  options.add_bos = architecture_ == Architecture::kDecoder && tokenizer_->special().bos >= 0;
  encoder_ = make_model_pair_encoder(*tokenizer_, options, manifest_.max_length, max_positions, source_);
}

std::unique_ptr<Ranker> Ranker::load(const std::string& dir, const torch::Device& device,
                                     std::int64_t default_max_length) {
  const auto root = fs::path(dir);
  if (!fs::is_directory(root)) throw Error(dir, 0, "", "model directory not found");
  const auto config_path = (root / "config.json").string();
  const auto model_type = read_model_type(config_path);

  std::unique_ptr<Ranker> ranker(new Ranker());
  ranker->source_ = dir;
  std::optional<RankerManifest> manifest;
  if (model_type == "bert") {
    ranker->architecture_ = Architecture::kBert;
    // The MLM head stays when the checkpoint has one (`mlm` continues from its own output); the ranking head
    // is always built, fresh when an MLM-pretrained encoder has none.
    bool has_mlm = false;
    {
      const auto hf = load_hf_model_dir(dir);
      const auto names = hf.names();
      for (const auto& name : names)
        has_mlm = has_mlm || bert_checkpoint_name(name, names).starts_with("cls.predictions.");
    }
    BertLoadOptions options;
    options.heads = BertHeads{.ranking = true, .mlm = has_mlm};
    options.init_missing_heads = true;
    options.allow_unexpected = true;  // e.g. the NSP head of a BertForPreTraining checkpoint
    auto loaded = load_bert(dir, options);
    if (loaded.model->config().num_labels != 1) {
      throw Error(config_path, 0, "num_labels",
                  "a ranker has one score, this config has " +
                      std::to_string(loaded.model->config().num_labels) + " labels");
    }
    if (!loaded.report.missing.empty()) {
      std::cerr << "ranker: " << dir
                << " has no trained ranking head; initialised fresh: " << join(loaded.report.missing) << "\n";
    }
    if (!loaded.report.unexpected.empty()) {
      std::cerr << "ranker: " << dir
                << ": ignored tensors the model has no place for: " << join(loaded.report.unexpected) << "\n";
    }
    ranker->bert_ = loaded.model;
    manifest = loaded.manifest;
  } else {
    ranker->architecture_ = Architecture::kDecoder;
    const auto hf = load_hf_model_dir(dir);
    const auto config = parse_decoder_config(hf.config.dump(), config_path);
    const auto names = hf.names();
    const auto has = [&names](const char* name) {
      return std::find(names.begin(), names.end(), name) != names.end();
    };
    if (hf.disranker) manifest = read_ranker_manifest((root / "disranker.json").string());
    DecoderOptions options;
    options.lm_head = has("lm_head.weight") || config.tie_word_embeddings;
    options.score_head = true;
    options.pooling = manifest ? manifest->pooling : Pooling::kLastToken;
    check_pooling(Architecture::kDecoder, options.pooling, (root / "disranker.json").string());
    ranker->decoder_ = Decoder(config, options);
    // strict: every body tensor must be there; only the heads may be missing.
    const auto report = ranker->decoder_->load_hf_tensors(hf.tensors(), /*strict=*/true, hf.weights.path());
    if (std::find(report.missing.begin(), report.missing.end(), "score.weight") != report.missing.end()) {
      std::cerr << "ranker: " << dir
                << " has no score head (a CPT or base checkpoint?); initialised fresh: score.weight\n";
    }
  }
  if (manifest) {
    check_pooling(ranker->architecture_, manifest->pooling, (root / "disranker.json").string());
    ranker->manifest_ = *manifest;
  } else {
    ranker->manifest_.role =
        ranker->architecture_ == Architecture::kBert ? RankerRole::kStudent : RankerRole::kTeacher;
    ranker->manifest_.pooling =
        ranker->architecture_ == Architecture::kBert ? Pooling::kCls : Pooling::kLastToken;
    ranker->manifest_.max_length = default_max_length;
  }

  ranker->tokenizer_ = load_tokenizer(dir);
  ranker->tokenizer_file_bytes_ = tokenizer_files_from(dir);
  for (const auto& [name, bytes] : ranker->tokenizer_file_bytes_) ranker->tokenizer_files_.push_back(name);
  check_vocab(*ranker->tokenizer_,
              ranker->bert_ ? ranker->bert_->config().vocab_size : ranker->decoder_->config().vocab_size,
              dir);
  ranker->init_encoder();
  ranker->device_ = device;
  ranker->module().to(device);
  ranker->module().eval();
  return ranker;
}

std::unique_ptr<Ranker> Ranker::create(const std::string& config_path, const std::string& tokenizer_path,
                                       const torch::Device& device, const RankerCreateOptions& options) {
  const auto model_type = read_model_type(config_path);
  std::unique_ptr<Ranker> ranker(new Ranker());
  ranker->source_ = config_path;
  ranker->tokenizer_ = load_tokenizer(tokenizer_path);
  const auto& special = ranker->tokenizer_->special();
  const auto vocab_size = static_cast<std::int64_t>(ranker->tokenizer_->vocab_size());

  if (model_type == "bert") {
    ranker->architecture_ = Architecture::kBert;
    auto config = read_bert_config(config_path);
    if (config.num_labels != 1) {
      throw Error(config_path, 0, "num_labels",
                  "a ranker has one score, this config has " + std::to_string(config.num_labels) + " labels");
    }
    config.vocab_size = vocab_size;
    if (special.pad >= 0) config.pad_token_id = special.pad;
    validate_bert_config(config, config_path);
    torch::manual_seed(options.seed);
    ranker->bert_ = BertRanker(config, BertHeads{.ranking = true, .mlm = options.mlm_head});
    ranker->manifest_.pooling = Pooling::kCls;
  } else {
    ranker->architecture_ = Architecture::kDecoder;
    auto config = read_decoder_config(config_path);
    if (special.eos < 0) {
      throw Error(
          tokenizer_path, 0, "eos",
          "the decoder template ends with </s> (the scored token), and this tokenizer has no eos token");
    }
    config.vocab_size = vocab_size;
    config.bos_token_id = special.bos >= 0 ? std::optional<std::int64_t>(special.bos) : std::nullopt;
    config.eos_token_ids = {special.eos};
    config.pad_token_id = special.pad >= 0 ? std::optional<std::int64_t>(special.pad) : std::nullopt;
    validate_decoder_config(config, config_path);
    DecoderOptions decoder_options;
    decoder_options.lm_head = options.lm_head;
    decoder_options.score_head = true;
    decoder_options.pooling = Pooling::kLastToken;
    torch::manual_seed(options.seed);
    ranker->decoder_ = Decoder(config, decoder_options);
    ranker->manifest_.pooling = Pooling::kLastToken;
  }
  ranker->manifest_.role = options.role;
  ranker->manifest_.max_length = options.max_length;
  ranker->tokenizer_file_bytes_ = tokenizer_files_from(tokenizer_path);
  for (const auto& [name, bytes] : ranker->tokenizer_file_bytes_) ranker->tokenizer_files_.push_back(name);
  ranker->init_encoder();
  ranker->device_ = device;
  ranker->module().to(device);
  ranker->module().eval();
  return ranker;
}

EncodedPair Ranker::encode(std::string_view query, std::string_view title, std::string_view summary,
                           std::size_t max_document_tokens) const {
  sync_encoder();
  return encoder_->encode(query, title, summary, max_document_tokens);
}

Ranker::DeviceBatch Ranker::to_device(const Batch& batch) const {
  const auto shape = std::vector<std::int64_t>{static_cast<std::int64_t>(batch.batch_size),
                                               static_cast<std::int64_t>(batch.seq_len)};
  const auto tensor = [&](const std::vector<std::int64_t>& values) {
    // from_blob does not own the memory: clone before the batch goes away (to() on CPU would alias it).
    return torch::from_blob(const_cast<std::int64_t*>(values.data()), shape, torch::kInt64)
        .clone()
        .to(device_);
  };
  return DeviceBatch{tensor(batch.input_ids), tensor(batch.token_type_ids), tensor(batch.attention_mask)};
}

torch::Tensor Ranker::forward(const Batch& batch) {
  const auto inputs = to_device(batch);
  torch::Tensor scores;
  if (bert_) {
    scores = bert_->forward(inputs.input_ids, inputs.token_type_ids, inputs.attention_mask);
  } else {
    const auto hidden = decoder_->forward(inputs.input_ids, inputs.attention_mask);
    scores = decoder_->score(hidden, inputs.attention_mask);
  }
  return scores.to(torch::kFloat32);
}

std::vector<double> Ranker::score(std::span<const EncodedPair> pairs, std::size_t batch_size) {
  if (batch_size < 1) throw Error("score: batch size must be >= 1");
  auto& model = module();
  const bool was_training = model.is_training();
  model.eval();
  struct RestoreMode {
    torch::nn::Module& model;
    bool training;
    ~RestoreMode() { model.train(training); }
  } restore{model, was_training};
  torch::NoGradGuard no_grad;

  std::vector<double> out;
  out.reserve(pairs.size());
  for (std::size_t begin = 0; begin < pairs.size(); begin += batch_size) {
    const auto chunk = pairs.subspan(begin, std::min(batch_size, pairs.size() - begin));
    const auto raw = forward(make_batch(chunk, pad_id_)).to(torch::kCPU).to(torch::kFloat64).contiguous();
    const double* values = raw.data_ptr<double>();
    for (std::size_t i = 0; i < chunk.size(); ++i) out.push_back(manifest_.score.apply(values[i]));
  }
  return out;
}

void Ranker::save(const std::string& dir, const nlohmann::json& provenance) {
  RankerManifest manifest = manifest_;
  // An empty provenance keeps the one the model came with (re-saving a loaded model must not erase it).
  if (!provenance.is_object()) throw Error(dir, 0, "provenance", "must be a JSON object");
  if (!provenance.empty()) manifest.provenance = provenance;
  const StagedFiles tokenizer_files(tokenizer_file_bytes_);

  if (bert_) {
    save_bert(dir, *bert_, tokenizer_files.paths(), manifest);
    return;
  }
  // LoRA adapters are folded into copies of the weights (W + scale B A, what merge_lora computes), so that
  // the saved model is a plain checkpoint and the live weights are not perturbed by a merge / unmerge round
  // trip: training goes on exactly where it was.
  auto tensors = decoder_->named_hf_tensors();
  std::map<std::string, torch::Tensor> merged;
  {
    torch::NoGradGuard no_grad;
    for (const auto& item : decoder_->named_modules("", /*include_self=*/false)) {
      const auto* layer = dynamic_cast<const LoraLinearImpl*>(item.value().get());
      if (layer != nullptr && layer->has_lora() && !layer->merged()) {
        merged.emplace(item.key() + ".weight", (layer->weight + layer->delta_weight()).detach());
      }
    }
  }
  for (auto& [name, tensor] : tensors) {
    const auto it = merged.find(name);
    if (it != merged.end()) tensor = it->second;
  }
  const auto config_json =
      decoder_config_to_json(decoder_->config(), (fs::path(dir) / "config.json").string());
  save_hf_model_dir(dir, config_json, tensors, tokenizer_files.paths(),
                    ranker_manifest_to_json(manifest, (fs::path(dir) / "disranker.json").string()));
}

}  // namespace disranker
