#include "text/wordpiece.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/files.h"
#include "core/utf8.h"
#include "text/text_util.h"

namespace disranker {

namespace {

constexpr std::uint32_t kNoNode = std::numeric_limits<std::uint32_t>::max();

// A byte trie whose edges live in one open-addressing hash table keyed by (node, byte): one multiply and
// usually one probe per byte of text, no allocation while matching.
class ByteTrie {
 public:
  ByteTrie() { token_.assign(2, -1); }  // node 0: word-initial pieces, node 1: continuing pieces

  void insert(std::uint32_t root, std::string_view key, TokenId id) {
    std::uint32_t node = root;
    for (const char ch : key) {
      const auto byte = static_cast<unsigned char>(ch);
      std::uint32_t next = child(node, byte);
      if (next == kNoNode) {
        next = static_cast<std::uint32_t>(token_.size());
        token_.push_back(-1);
        add_edge(node, byte, next);
      }
      node = next;
    }
    token_[node] = id;
  }

  std::uint32_t child(std::uint32_t node, unsigned char byte) const {
    if (slots_.empty()) return kNoNode;
    const std::uint64_t key = (static_cast<std::uint64_t>(node) << 8) | byte;
    std::size_t slot = hash(key);
    while (true) {
      const Slot& s = slots_[slot];
      if (s.key == key) return s.child;
      if (s.key == kEmpty) return kNoNode;
      slot = (slot + 1) & mask_;
    }
  }

  TokenId token(std::uint32_t node) const { return token_[node]; }

 private:
  static constexpr std::uint64_t kEmpty = std::numeric_limits<std::uint64_t>::max();
  struct Slot {
    std::uint64_t key = kEmpty;
    std::uint32_t child = kNoNode;
  };

  std::size_t hash(std::uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_) & mask_;
  }

  void add_edge(std::uint32_t node, unsigned char byte, std::uint32_t next) {
    if ((edges_ + 1) * 2 > slots_.size()) grow();
    place((static_cast<std::uint64_t>(node) << 8) | byte, next);
    ++edges_;
  }

  void place(std::uint64_t key, std::uint32_t next) {
    std::size_t slot = hash(key);
    while (slots_[slot].key != kEmpty) slot = (slot + 1) & mask_;
    slots_[slot] = {key, next};
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    const std::size_t size = old.empty() ? 1024 : old.size() * 2;
    slots_.assign(size, Slot{});
    mask_ = size - 1;
    int bits = 0;
    while ((std::size_t{1} << bits) < size) ++bits;
    shift_ = 64 - bits;
    for (const Slot& s : old) {
      if (s.key != kEmpty) place(s.key, s.child);
    }
  }

  std::vector<TokenId> token_;
  std::vector<Slot> slots_;
  std::size_t edges_ = 0;
  std::size_t mask_ = 0;
  int shift_ = 64;
};

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text.compare(0, prefix.size(), prefix) == 0;
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  std::size_t pos = text.find(from);
  if (pos == std::string::npos) return;
  std::string out;
  std::size_t last = 0;
  while (pos != std::string::npos) {
    out.append(text, last, pos - last);
    out.append(to);
    last = pos + from.size();
    pos = text.find(from, last);
  }
  out.append(text, last, std::string::npos);
  text = std::move(out);
}

// Hugging Face's decoders::wordpiece::cleanup.
void cleanup(std::string& token) {
  replace_all(token, " .", ".");
  replace_all(token, " ?", "?");
  replace_all(token, " !", "!");
  replace_all(token, " ,", ",");
  replace_all(token, " ' ", "'");
  replace_all(token, " n't", "n't");
  replace_all(token, " 'm", "'m");
  replace_all(token, " do not", " don't");
  replace_all(token, " 's", "'s");
  replace_all(token, " 've", "'ve");
  replace_all(token, " 're", "'re");
}

// Rust's char::is_whitespace, which is what \s means to Rust's regex.
bool is_space(char32_t c) {
  return bert_is_whitespace(c);
}

// A set of added-token strings matched leftmost-longest, as the aho-corasick automaton Hugging Face builds.
struct PatternSet {
  struct Pattern {
    std::string text;
    std::size_t token;  // index into Impl::added
  };
  std::vector<Pattern> patterns;  // longest first
  bool first_byte[256] = {};

  void add(std::string text, std::size_t token) {
    if (text.empty()) return;
    first_byte[static_cast<unsigned char>(text[0])] = true;
    patterns.push_back({std::move(text), token});
  }
  void finish() {
    std::stable_sort(patterns.begin(), patterns.end(),
                     [](const Pattern& a, const Pattern& b) { return a.text.size() > b.text.size(); });
  }
  bool empty() const { return patterns.empty(); }
};

struct Piece {
  std::size_t start, stop;
  std::ptrdiff_t token;  // -1: text, else an index into Impl::added
};

}  // namespace

struct WordPieceTokenizer::Impl {
  ByteTrie trie;
  TokenId unk = -1;
  std::unordered_map<std::string_view, TokenId> model_ids;  // views into config_.vocab
  std::unordered_map<std::string_view, TokenId> added_ids;  // views into config_.added_tokens
  std::vector<std::string_view> id_tokens;                  // "" where absent
  std::vector<std::uint8_t> id_present;
  std::vector<std::uint8_t> id_special;
  std::optional<BertNormalizer> normalizer;
  struct Added {
    const WordPieceAddedToken* token;
    TokenId id;
  };
  std::vector<Added> added;
  PatternSet raw_patterns;         // normalized = false
  PatternSet normalized_patterns;  // normalized = true, matched after normalization

  // Hugging Face's AddedVocabulary::find_matches: the pieces of `text` around the added tokens of `set`.
  std::vector<Piece> split(std::string_view text, const PatternSet& set) const {
    std::vector<Piece> pieces;
    std::size_t offset = 0;  // end of the last piece
    std::size_t pos = 0;
    const std::size_t n = text.size();
    while (pos < n) {
      if (!set.first_byte[static_cast<unsigned char>(text[pos])]) {
        ++pos;
        continue;
      }
      const PatternSet::Pattern* found = nullptr;
      for (const auto& p : set.patterns) {
        if (starts_with(text.substr(pos), p.text)) {
          found = &p;
          break;
        }
      }
      if (found == nullptr) {
        ++pos;
        continue;
      }
      std::size_t start = pos;
      std::size_t stop = pos + found->text.size();
      pos = stop;
      const WordPieceAddedToken& token = *added[found->token].token;
      if (token.single_word) {
        const bool space_before =
            start == 0 || !text::is_word_char(text::last_code_point(text.substr(0, start)));
        std::size_t after = stop;
        const bool space_after = stop == n || !text::is_word_char(detail::decode_utf8(text, after));
        if (!space_before || !space_after) continue;
      }
      if (token.lstrip) {
        std::size_t s = start;
        while (s > 0) {
          std::size_t b = s - 1;
          while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
          std::size_t q = b;
          if (!is_space(detail::decode_utf8(text, q))) break;
          s = b;
        }
        start = std::max(s, offset);
      }
      if (token.rstrip) {
        while (stop < n) {
          std::size_t q = stop;
          if (!is_space(detail::decode_utf8(text, q))) break;
          stop = q;
        }
      }
      if (offset < start) pieces.push_back({offset, start, -1});
      pieces.push_back({start, stop, static_cast<std::ptrdiff_t>(found->token)});
      offset = stop;
    }
    if (offset < n || pieces.empty()) pieces.push_back({offset, n, -1});
    return pieces;
  }
};

WordPieceTokenizer::~WordPieceTokenizer() = default;

WordPieceTokenizer::WordPieceTokenizer(WordPieceConfig config, const std::string& source)
    : config_(std::move(config)), impl_(std::make_unique<Impl>()) {
  Impl& impl = *impl_;
  // The model vocabulary: a token seen twice keeps its later id.
  impl.model_ids.reserve(config_.vocab.size() * 2);
  for (const auto& [token, id] : config_.vocab) {
    if (id < 0) throw Error(source, 0, "vocab", "negative id for token '" + token + "'");
    impl.model_ids[token] = id;
  }
  TokenId max_id = -1;
  for (const auto& [token, id] : impl.model_ids) max_id = std::max(max_id, id);

  // Added tokens get their ids as Hugging Face's AddedVocabulary::add_tokens assigns them.
  const auto model_size = static_cast<TokenId>(impl.model_ids.size());
  std::unordered_set<std::string> specials(config_.special_tokens.begin(), config_.special_tokens.end());
  for (const auto& token : config_.added_tokens) {
    if (token.content.empty()) continue;
    if (token.special) specials.insert(token.content);
    TokenId id;
    if (auto it = impl.added_ids.find(token.content); it != impl.added_ids.end()) {
      id = it->second;
    } else if (auto m = impl.model_ids.find(token.content); m != impl.model_ids.end()) {
      id = m->second;
    } else {
      TokenId max_added = -1;
      for (const auto& a : impl.added) max_added = std::max(max_added, a.id);
      id = max_added < 0 ? model_size
                         : (max_added >= model_size || model_size == 0 ? max_added + 1 : model_size);
    }
    impl.added_ids[token.content] = id;
    bool replaced = false;
    for (auto& a : impl.added) {
      if (a.token->content == token.content) a = {&token, id}, replaced = true;
    }
    if (!replaced) impl.added.push_back({&token, id});
    max_id = std::max(max_id, id);
  }

  const auto entries = static_cast<TokenId>(impl.model_ids.size() + impl.added.size());
  if (max_id > std::max<TokenId>(1 << 24, 4 * entries)) {
    throw Error(
        source, 0, "vocab",
        "ids up to " + std::to_string(max_id) + " for " + std::to_string(entries) + " tokens: too sparse");
  }
  const auto size = static_cast<std::size_t>(max_id + 1);
  impl.id_tokens.assign(size, std::string_view());
  impl.id_present.assign(size, 0);
  impl.id_special.assign(size, 0);
  for (const auto& [token, id] : impl.model_ids) {
    impl.id_tokens[id] = token;
    impl.id_present[id] = 1;
  }
  for (const auto& a : impl.added) {
    impl.id_tokens[a.id] = a.token->content;
    impl.id_present[a.id] = 1;
  }
  for (std::size_t id = 0; id < size; ++id) {
    if (impl.id_present[id] && specials.count(std::string(impl.id_tokens[id]))) impl.id_special[id] = 1;
  }

  const auto unk = impl.model_ids.find(config_.unk_token);
  if (unk == impl.model_ids.end()) {
    throw Error(source, 0, "unk_token",
                "the unknown token '" + config_.unk_token + "' is not in the vocabulary");
  }
  impl.unk = unk->second;

  // Word-initial pieces match any vocabulary entry verbatim; continuing pieces match the entries that start
  // with the prefix, without it (Hugging Face tries prefix + substring).
  const std::string& prefix = config_.continuing_subword_prefix;
  for (const auto& [token, id] : impl.model_ids) {
    impl.trie.insert(0, token, id);
    if (starts_with(token, prefix)) impl.trie.insert(1, token.substr(prefix.size()), id);
  }

  if (config_.normalizer) impl.normalizer.emplace(*config_.normalizer);
  for (std::size_t k = 0; k < impl.added.size(); ++k) {
    const WordPieceAddedToken& token = *impl.added[k].token;
    if (!token.normalized) {
      impl.raw_patterns.add(token.content, k);
    } else {
      impl.normalized_patterns.add(
          impl.normalizer ? impl.normalizer->normalize(token.content) : token.content, k);
    }
  }
  impl.raw_patterns.finish();
  impl.normalized_patterns.finish();

  auto find = [&](std::string_view token) -> TokenId {
    const auto id = token_to_id(token);
    return id ? *id : -1;
  };
  special_.pad = find("[PAD]");
  special_.unk = impl.unk;
  special_.cls = find("[CLS]");
  special_.sep = find("[SEP]");
  special_.mask = find("[MASK]");
}

void WordPieceTokenizer::encode_word(std::string_view word, std::vector<TokenId>& out) const {
  const Impl& impl = *impl_;
  const auto* bytes = reinterpret_cast<const unsigned char*>(word.data());
  const std::size_t n = word.size();
  if (n > config_.max_input_chars_per_word) {
    std::size_t chars = 0;
    for (std::size_t i = 0; i < n; ++i) chars += (bytes[i] & 0xC0) != 0x80;
    if (chars > config_.max_input_chars_per_word) {
      out.push_back(impl.unk);
      return;
    }
  }
  const std::size_t mark = out.size();
  std::size_t start = 0;
  while (start < n) {
    std::uint32_t node = start == 0 ? 0 : 1;
    TokenId best = -1;
    std::size_t best_end = 0;
    for (std::size_t i = start; i < n; ++i) {
      node = impl.trie.child(node, bytes[i]);
      if (node == kNoNode) break;
      const TokenId id = impl.trie.token(node);
      // Only whole characters: Hugging Face shortens the candidate one character at a time.
      if (id >= 0 && (i + 1 == n || (bytes[i + 1] & 0xC0) != 0x80)) best = id, best_end = i + 1;
    }
    if (best < 0) {
      out.resize(mark);
      out.push_back(impl.unk);
      return;
    }
    out.push_back(best);
    start = best_end;
  }
}

void WordPieceTokenizer::encode_normalized(std::string_view normalized, std::vector<TokenId>& out) const {
  if (config_.bert_pre_tokenizer) {
    bert_pre_tokenize(normalized, [&](std::string_view word) { encode_word(word, out); });
  } else if (!normalized.empty()) {
    encode_word(normalized, out);
  }
}

void WordPieceTokenizer::encode_text(std::string_view text, std::vector<TokenId>& out) const {
  const Impl& impl = *impl_;
  std::string normalized;
  auto encode_piece = [&](std::string_view piece) {
    std::string_view view = piece;
    if (impl.normalizer) {
      impl.normalizer->normalize_valid(piece, normalized);
      view = normalized;
    }
    if (impl.normalized_patterns.empty()) {
      encode_normalized(view, out);
      return;
    }
    const std::string copy(view);  // `normalized` is reused below only after this piece is done
    for (const Piece& p : impl.split(copy, impl.normalized_patterns)) {
      if (p.token >= 0) {
        out.push_back(impl.added[static_cast<std::size_t>(p.token)].id);
      } else {
        encode_normalized(std::string_view(copy).substr(p.start, p.stop - p.start), out);
      }
    }
  };
  if (impl.raw_patterns.empty()) {
    encode_piece(text);
    return;
  }
  for (const Piece& p : impl.split(text, impl.raw_patterns)) {
    if (p.token >= 0) {
      out.push_back(impl.added[static_cast<std::size_t>(p.token)].id);
    } else {
      encode_piece(text.substr(p.start, p.stop - p.start));
    }
  }
}

std::vector<TokenId> WordPieceTokenizer::encode(std::string_view text) const {
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 4 + 4);
  if (is_valid_utf8(text)) {
    encode_text(text, ids);
  } else {
    encode_text(replace_invalid_utf8(text), ids);
  }
  return ids;
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> tokens;
  for (const TokenId id : encode(text)) tokens.emplace_back(id_to_token(id));
  return tokens;
}

std::string WordPieceTokenizer::decode(std::span<const TokenId> ids, bool skip_special) const {
  const Impl& impl = *impl_;
  std::string out;
  std::string token;
  bool first = true;
  for (const TokenId id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= impl.id_tokens.size() || !impl.id_present[id]) continue;
    if (skip_special && impl.id_special[id]) continue;
    const std::string_view text = impl.id_tokens[id];
    if (!config_.wordpiece_decoder) {
      if (!first) out.push_back(' ');
      out.append(text);
      first = false;
      continue;
    }
    token.clear();
    if (first) {
      token.assign(text);
    } else if (starts_with(text, config_.decoder_prefix)) {
      token.assign(text.substr(config_.decoder_prefix.size()));
    } else {
      token.push_back(' ');
      token.append(text);
    }
    if (config_.decoder_cleanup) cleanup(token);
    out += token;
    first = false;
  }
  return out;
}

std::size_t WordPieceTokenizer::vocab_size() const {
  return impl_->id_tokens.size();
}

std::string_view WordPieceTokenizer::id_to_token(TokenId id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= impl_->id_tokens.size()) return {};
  return impl_->id_tokens[id];
}

std::optional<TokenId> WordPieceTokenizer::token_to_id(std::string_view token) const {
  if (auto it = impl_->added_ids.find(token); it != impl_->added_ids.end()) return it->second;
  if (auto it = impl_->model_ids.find(token); it != impl_->model_ids.end()) return it->second;
  return std::nullopt;
}

// ---- loaders ----

std::vector<std::pair<std::string, TokenId>> read_wordpiece_vocab(const std::string& vocab_txt) {
  std::vector<std::pair<std::string, TokenId>> vocab;
  for_each_line(vocab_txt, [&](std::size_t line, std::string_view text) {
    if (!is_valid_utf8(text)) throw Error(vocab_txt, line, "", "invalid UTF-8 in the vocabulary");
    // Rust's str::trim_end: trailing White_Space.
    while (!text.empty()) {
      std::size_t b = text.size() - 1;
      while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
      std::size_t pos = b;
      if (!bert_is_whitespace(detail::decode_utf8(text, pos))) break;
      text = text.substr(0, b);
    }
    vocab.emplace_back(std::string(text), static_cast<TokenId>(line - 1));
  });
  return vocab;
}

std::unique_ptr<Tokenizer> load_wordpiece_vocab(const std::string& vocab_txt,
                                                const BertNormalizerOptions& options) {
  WordPieceConfig config;
  config.vocab = read_wordpiece_vocab(vocab_txt);
  if (config.vocab.empty()) throw Error(vocab_txt, 0, "", "empty WordPiece vocabulary");
  config.normalizer = options;
  config.special_tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  return std::make_unique<WordPieceTokenizer>(std::move(config), vocab_txt);
}

namespace {

template <typename T>
T get_field(const nlohmann::json& object, const char* key, T fallback, const std::string& path,
            const std::string& field) {
  if (!object.contains(key) || object[key].is_null()) return fallback;
  try {
    return object[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(path, 0, field + "." + key, "unexpected type: " + object[key].dump());
  }
}

}  // namespace

std::unique_ptr<Tokenizer> load_wordpiece_json(const nlohmann::json& json, const std::string& path) {
  if (!json.is_object() || !json.contains("model") || !json["model"].is_object()) {
    throw Error(path, 0, "model", "not a Hugging Face tokenizer.json (no \"model\" object)");
  }
  const auto& model = json["model"];
  if (model.value("type", std::string()) != "WordPiece") {
    throw Error(path, 0, "model.type", "expected a WordPiece model");
  }
  WordPieceConfig config;
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    throw Error(path, 0, "model.vocab", "missing or not an object of token: id");
  }
  for (const auto& [token, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() > INT32_MAX) {
      throw Error(path, 0, "model.vocab", "token '" + token + "' has no valid id: " + id.dump());
    }
    config.vocab.emplace_back(token, static_cast<TokenId>(id.get<std::int64_t>()));
  }
  std::sort(config.vocab.begin(), config.vocab.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
  config.unk_token = get_field<std::string>(model, "unk_token", "[UNK]", path, "model");
  config.continuing_subword_prefix =
      get_field<std::string>(model, "continuing_subword_prefix", "##", path, "model");
  if (model.contains("max_input_chars_per_word") && !model["max_input_chars_per_word"].is_null()) {
    const auto& max = model["max_input_chars_per_word"];
    if (!max.is_number_integer() || max.get<std::int64_t>() < 0) {
      throw Error(path, 0, "model.max_input_chars_per_word", "not a non-negative integer: " + max.dump());
    }
    config.max_input_chars_per_word = max.get<std::size_t>();
  }

  const auto type_of = [&](const char* key) -> std::string {
    if (!json.contains(key) || json[key].is_null()) return "";
    if (!json[key].is_object() || !json[key].contains("type") || !json[key]["type"].is_string()) {
      throw Error(path, 0, std::string(key) + ".type", "missing or not a string");
    }
    return json[key]["type"].get<std::string>();
  };

  const std::string normalizer = type_of("normalizer");
  if (normalizer.empty()) {
    config.normalizer.reset();
  } else if (normalizer == "BertNormalizer") {
    const auto& n = json["normalizer"];
    BertNormalizerOptions options;
    options.clean_text = get_field<bool>(n, "clean_text", true, path, "normalizer");
    options.handle_chinese_chars = get_field<bool>(n, "handle_chinese_chars", true, path, "normalizer");
    if (n.contains("strip_accents") && !n["strip_accents"].is_null()) {
      options.strip_accents = get_field<bool>(n, "strip_accents", true, path, "normalizer");
    }
    options.lowercase = get_field<bool>(n, "lowercase", true, path, "normalizer");
    config.normalizer = options;
  } else {
    throw Error(path, 0, "normalizer.type",
                "unsupported normalizer '" + normalizer +
                    "' for a WordPiece model (supported: BertNormalizer, null)");
  }

  const std::string pre_tokenizer = type_of("pre_tokenizer");
  if (pre_tokenizer.empty()) {
    config.bert_pre_tokenizer = false;
  } else if (pre_tokenizer != "BertPreTokenizer") {
    throw Error(path, 0, "pre_tokenizer.type",
                "unsupported pre-tokenizer '" + pre_tokenizer +
                    "' for a WordPiece model (supported: BertPreTokenizer, null)");
  }

  const std::string decoder = type_of("decoder");
  if (decoder.empty()) {
    config.wordpiece_decoder = false;
  } else if (decoder == "WordPiece") {
    config.decoder_prefix = get_field<std::string>(json["decoder"], "prefix", "##", path, "decoder");
    config.decoder_cleanup = get_field<bool>(json["decoder"], "cleanup", true, path, "decoder");
  } else {
    throw Error(path, 0, "decoder.type",
                "unsupported decoder '" + decoder + "' for a WordPiece model (supported: WordPiece, null)");
  }

  if (json.contains("added_tokens") && !json["added_tokens"].is_null()) {
    if (!json["added_tokens"].is_array()) throw Error(path, 0, "added_tokens", "not an array");
    for (const auto& t : json["added_tokens"]) {
      if (!t.is_object() || !t.contains("content") || !t["content"].is_string()) {
        throw Error(path, 0, "added_tokens", "an entry has no string \"content\": " + t.dump());
      }
      WordPieceAddedToken token;
      token.content = t["content"].get<std::string>();
      token.special = get_field<bool>(t, "special", false, path, "added_tokens");
      token.single_word = get_field<bool>(t, "single_word", false, path, "added_tokens");
      token.lstrip = get_field<bool>(t, "lstrip", false, path, "added_tokens");
      token.rstrip = get_field<bool>(t, "rstrip", false, path, "added_tokens");
      token.normalized = get_field<bool>(t, "normalized", !token.special, path, "added_tokens");
      config.added_tokens.push_back(std::move(token));
    }
  }
  return std::make_unique<WordPieceTokenizer>(std::move(config), path);
}

}  // namespace disranker
