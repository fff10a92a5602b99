// load_tokenizer: picks the implementation from the file (or model directory) the user points at.
#include "text/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "text/bert_normalizer.h"
#include "text/bpe.h"
#include "text/llama2c_tokenizer.h"
#include "text/wordpiece.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string(), 0, "", "cannot open file for reading");
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    return nlohmann::json::parse(buffer.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(path.string(), 0, "", std::string("malformed JSON: ") + e.what());
  }
}

std::unique_ptr<Tokenizer> load_tokenizer_json(const fs::path& path) {
  const auto json = read_json(path);
  if (!json.is_object() || !json.contains("model") || !json["model"].is_object()) {
    throw Error(path.string(), 0, "model", "not a Hugging Face tokenizer.json (no \"model\" object)");
  }
  const auto type = json["model"].value("type", std::string());
  if (type == "WordPiece") return load_wordpiece_json(json, path.string());
  if (type == "BPE") return load_bpe_json(json, path.string());
  throw Error(path.string(), 0, "model.type",
              "unsupported tokenizer model '" + type + "' (supported: WordPiece, BPE)");
}

// A vocab.txt is lower-cased unless the model says otherwise: tokenizer_config.json's do_lower_case beside it, or a
// file name saying "cased" (bert-base-cased-vocab.txt) but not "uncased".
BertNormalizerOptions vocab_normalizer(const fs::path& vocab) {
  BertNormalizerOptions options;
  const auto config = vocab.parent_path() / "tokenizer_config.json";
  if (fs::exists(config)) {
    const auto json = read_json(config);
    if (json.contains("do_lower_case") && json["do_lower_case"].is_boolean()) {
      options.lowercase = json["do_lower_case"].get<bool>();
      return options;
    }
  }
  const auto name = vocab.filename().string();
  if (name.find("cased") != std::string::npos && name.find("uncased") == std::string::npos) options.lowercase = false;
  return options;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path_text) {
  const fs::path path(path_text);
  if (fs::is_directory(path)) {
    if (fs::exists(path / "tokenizer.json")) return load_tokenizer_json(path / "tokenizer.json");
    if (fs::exists(path / "vocab.txt")) return load_wordpiece_vocab((path / "vocab.txt").string(), vocab_normalizer(path / "vocab.txt"));
    if (fs::exists(path / "tokenizer.bin")) return load_llama2c_tokenizer((path / "tokenizer.bin").string());
    throw Error(path_text, 0, "", "directory holds no tokenizer.json, vocab.txt or tokenizer.bin");
  }
  if (!fs::exists(path)) throw Error(path_text, 0, "", "tokenizer file not found");
  const auto extension = path.extension().string();
  if (extension == ".json") return load_tokenizer_json(path);
  if (extension == ".txt") return load_wordpiece_vocab(path_text, vocab_normalizer(path));
  if (extension == ".bin") return load_llama2c_tokenizer(path_text);
  throw Error(path_text, 0, "",
              "unknown tokenizer file type (expected tokenizer.json, a WordPiece vocab .txt or a llama2.c .bin)");
}

}  // namespace disranker
