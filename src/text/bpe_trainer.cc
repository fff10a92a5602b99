#include "text/bpe_trainer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <ostream>
#include <system_error>
#include <unordered_map>

#include "core/error.h"
#include "core/files.h"
#include "core/utf8.h"
#include "text/byte_level.h"
#include "text/text_util.h"

namespace disranker {
namespace {

using text::StringEqual;
using text::StringHash;

using Pair = std::uint64_t;  // (left id << 32) | right id: ordering the keys orders the pairs
constexpr Pair make_pair_key(std::uint32_t a, std::uint32_t b) {
  return (Pair{a} << 32) | b;
}
constexpr std::uint32_t left_of(Pair p) {
  return static_cast<std::uint32_t>(p >> 32);
}
constexpr std::uint32_t right_of(Pair p) {
  return static_cast<std::uint32_t>(p);
}

// A queue entry of Hugging Face's trainer: a pair, its count when pushed, and the words that may contain it.
struct Entry {
  std::int64_t count;
  Pair pair;
  std::vector<std::uint32_t> words;
};
// std heap order: the top is the largest count, then the smallest pair.
bool lower_priority(const Entry& a, const Entry& b) {
  return a.count != b.count ? a.count < b.count : a.pair > b.pair;
}

struct Change {
  Pair pair;
  int delta;
};

// Hugging Face's Word::merge: replaces each non-overlapping (c1, c2), left to right, by `replacement` and
// reports the pair count changes around each replacement.
void merge_word(std::vector<std::uint32_t>& symbols, std::uint32_t c1, std::uint32_t c2,
                std::uint32_t replacement, std::vector<Change>& changes) {
  std::size_t i = 0;
  while (i < symbols.size()) {
    if (symbols[i] == c1 && i + 1 < symbols.size() && symbols[i + 1] == c2) {
      if (i > 0) {
        changes.push_back({make_pair_key(symbols[i - 1], c1), -1});
        changes.push_back({make_pair_key(symbols[i - 1], replacement), 1});
      }
      symbols[i] = replacement;
      symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(i) + 1);
      if (i + 1 < symbols.size()) {
        changes.push_back({make_pair_key(c2, symbols[i + 1]), -1});
        changes.push_back({make_pair_key(replacement, symbols[i + 1]), 1});
      }
    }
    ++i;
  }
}

}  // namespace

struct BpeTrainer::Impl {
  BpeTrainerOptions options;
  byte_level::Regex regex{byte_level::kGpt2Pattern};
  std::unordered_map<std::string, std::uint64_t, StringHash, StringEqual> word_counts;  // raw bytes
  std::vector<std::pair<std::size_t, std::size_t>> words, matches;

  void count(std::string_view text) {
    words.clear();
    byte_level::split(regex, text, byte_level::SplitBehavior::kIsolated, false, words, matches);
    for (const auto& [start, end] : words) {
      const std::string_view word = text.substr(start, end - start);
      const auto it = word_counts.find(word);
      if (it == word_counts.end()) {
        word_counts.emplace(std::string(word), 1);
      } else {
        ++it->second;
      }
    }
  }
};

BpeTrainer::BpeTrainer(BpeTrainerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  for (const auto& token : impl_->options.special_tokens) {
    if (token.empty() || !is_valid_utf8(token)) {
      throw Error("BPE trainer: special tokens must be non-empty valid UTF-8");
    }
  }
}

BpeTrainer::~BpeTrainer() = default;

void BpeTrainer::add_text(std::string_view text) {
  if (is_valid_utf8(text)) {
    impl_->count(text);
  } else {
    impl_->count(replace_invalid_utf8(text));
  }
}

void BpeTrainer::add_file(const std::string& path) {
  errno = 0;
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    throw Error(path, 0, "",
                "cannot open file for reading: " + std::error_code(errno, std::generic_category()).message());
  }
  std::string line;
  std::vector<char> buffer(1 << 20);
  while (true) {
    const std::size_t got = std::fread(buffer.data(), 1, buffer.size(), file);
    std::size_t start = 0;
    for (std::size_t i = 0; i < got; ++i) {
      if (buffer[i] != '\n') continue;
      line.append(buffer.data() + start, i + 1 - start);
      add_text(line);
      line.clear();
      start = i + 1;
    }
    line.append(buffer.data() + start, got - start);
    if (got < buffer.size()) break;
  }
  const bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) throw Error(path, 0, "", "read error");
  if (!line.empty()) add_text(line);
}

std::size_t BpeTrainer::distinct_words() const {
  return impl_->word_counts.size();
}

BpeModel BpeTrainer::train() const {
  const BpeTrainerOptions& options = impl_->options;
  BpeModel model;
  // Token identity is the byte-level string, as in Hugging Face (a special token and a learned token with the
  // same text share an id).
  std::unordered_map<std::string, std::uint32_t, StringHash, StringEqual> word_to_id;
  std::vector<std::string>& id_to_word = model.vocab;
  auto add_token = [&](const std::string& token) {
    if (word_to_id.contains(token)) return;
    word_to_id.emplace(token, static_cast<std::uint32_t>(id_to_word.size()));
    id_to_word.push_back(token);
  };

  // 1. Special tokens.
  for (const auto& token : options.special_tokens) {
    if (!word_to_id.contains(token)) model.special_tokens.push_back(token);
    add_token(token);
  }

  // 2. The alphabet, by code point of the byte-level character.
  std::array<bool, 256> seen{};
  if (options.full_byte_alphabet) seen.fill(true);
  for (const auto& [word, count] : impl_->word_counts) {
    for (const char c : word) seen[static_cast<unsigned char>(c)] = true;
  }
  std::vector<unsigned char> alphabet;
  for (int b = 0; b < 256; ++b)
    if (seen[b]) alphabet.push_back(static_cast<unsigned char>(b));
  std::sort(alphabet.begin(), alphabet.end(), [](unsigned char x, unsigned char y) {
    return byte_level::byte_to_char(x) < byte_level::byte_to_char(y);
  });
  std::array<std::uint32_t, 256> byte_id{};
  for (const unsigned char b : alphabet) {
    const std::string token(byte_level::byte_to_utf8(b));
    add_token(token);
    byte_id[b] = word_to_id.at(token);
  }

  // 3. Words as symbol ids. Sorted so that the word indices, and everything after, do not depend on hash
  // order.
  std::vector<std::pair<std::string_view, std::uint64_t>> sorted_words(impl_->word_counts.begin(),
                                                                       impl_->word_counts.end());
  std::sort(sorted_words.begin(), sorted_words.end());
  std::vector<std::vector<std::uint32_t>> words(sorted_words.size());
  std::vector<std::int64_t> counts(sorted_words.size());
  for (std::size_t i = 0; i < sorted_words.size(); ++i) {
    const auto& [word, count] = sorted_words[i];
    words[i].reserve(word.size());
    for (const char c : word) words[i].push_back(byte_id[static_cast<unsigned char>(c)]);
    counts[i] = static_cast<std::int64_t>(count);
  }

  // 4. Pair counts and where each pair occurs.
  std::unordered_map<Pair, std::int64_t> pair_counts;
  std::unordered_map<Pair, std::vector<std::uint32_t>> where;
  pair_counts.reserve(1 << 20);
  where.reserve(1 << 20);
  for (std::size_t i = 0; i < words.size(); ++i) {
    const auto& symbols = words[i];
    for (std::size_t j = 0; j + 1 < symbols.size(); ++j) {
      const Pair pair = make_pair_key(symbols[j], symbols[j + 1]);
      pair_counts[pair] += counts[i];
      auto& positions = where[pair];
      if (positions.empty() || positions.back() != i) positions.push_back(static_cast<std::uint32_t>(i));
    }
  }
  std::vector<Entry> queue;
  queue.reserve(where.size());
  auto push_updates = [&] {
    std::vector<Pair> keys;
    keys.reserve(where.size());
    for (const auto& [pair, positions] : where) keys.push_back(pair);
    std::sort(keys.begin(), keys.end());
    for (const Pair pair : keys) {
      const std::int64_t count = pair_counts[pair];
      if (count > 0) {
        queue.push_back({count, pair, std::move(where[pair])});
        std::push_heap(queue.begin(), queue.end(), lower_priority);
      }
    }
    where.clear();
  };
  push_updates();

  // 5. Merges.
  std::vector<Change> changes;
  while (word_to_id.size() < options.vocab_size && !queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), lower_priority);
    Entry top = std::move(queue.back());
    queue.pop_back();
    const std::int64_t current = pair_counts[top.pair];
    if (top.count != current) {  // stale: requeue with the current count
      top.count = current;
      queue.push_back(std::move(top));
      std::push_heap(queue.begin(), queue.end(), lower_priority);
      continue;
    }
    if (top.count < 1 || static_cast<std::uint64_t>(top.count) < options.min_frequency) break;

    const std::uint32_t a = left_of(top.pair), b = right_of(top.pair);
    const std::string merged = id_to_word[a] + id_to_word[b];
    add_token(merged);
    const std::uint32_t new_id = word_to_id.at(merged);
    model.merges.emplace_back(static_cast<TokenId>(a), static_cast<TokenId>(b));

    for (const std::uint32_t w : top.words) {
      changes.clear();
      merge_word(words[w], a, b, new_id, changes);
      for (const Change& change : changes) {
        pair_counts[change.pair] += change.delta * counts[w];
        if (change.delta > 0) {
          auto& positions = where[change.pair];
          if (positions.empty() || positions.back() != w) positions.push_back(w);
        }
      }
    }
    push_updates();
  }
  return model;
}

std::string bpe_tokenizer_json(const BpeModel& model) {
  using Json = nlohmann::ordered_json;
  Json added = Json::array();
  for (const auto& token : model.special_tokens) {
    const auto it = std::find(model.vocab.begin(), model.vocab.end(), token);
    added.push_back(Json{{"id", it - model.vocab.begin()},
                         {"content", token},
                         {"single_word", false},
                         {"lstrip", false},
                         {"rstrip", false},
                         {"normalized", false},
                         {"special", true}});
  }
  Json vocab = Json::object();
  for (std::size_t id = 0; id < model.vocab.size(); ++id) vocab[model.vocab[id]] = id;
  Json merges = Json::array();
  for (const auto& [a, b] : model.merges) {
    merges.push_back(
        Json::array({model.vocab[static_cast<std::size_t>(a)], model.vocab[static_cast<std::size_t>(b)]}));
  }
  const Json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  Json json = {{"version", "1.0"},
               {"truncation", nullptr},
               {"padding", nullptr},
               {"added_tokens", std::move(added)},
               {"normalizer", nullptr},
               {"pre_tokenizer", byte_level},
               {"post_processor", nullptr},
               {"decoder", byte_level},
               {"model",
                {{"type", "BPE"},
                 {"dropout", nullptr},
                 {"unk_token", nullptr},
                 {"continuing_subword_prefix", nullptr},
                 {"end_of_word_suffix", nullptr},
                 {"fuse_unk", false},
                 {"byte_fallback", false},
                 {"ignore_merges", false},
                 {"vocab", std::move(vocab)},
                 {"merges", std::move(merges)}}}};
  return json.dump(1) + "\n";
}

void write_bpe_tokenizer_json(const BpeModel& model, const std::string& path) {
  const std::string text = bpe_tokenizer_json(model);
  write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

}  // namespace disranker
