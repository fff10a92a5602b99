#include "text/wordpiece_trainer.h"

#include <algorithm>
#include <limits>
#include <map>
#include <ostream>
#include <queue>
#include <unordered_map>

#include "core/error.h"
#include "core/files.h"
#include "core/utf8.h"
#include "text/text_util.h"

namespace disranker {
namespace {

using text::StringEqual;
using text::StringHash;

using Symbol = std::int32_t;
constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

std::uint64_t pair_key(Symbol a, Symbol b) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
}

// Open-addressing map from a pair of symbols to its index in the pair tables.
class PairIndex {
 public:
  PairIndex() { rehash(1 << 16); }
  // The index of `key`, created as `next` when absent (then `created` is set).
  std::uint32_t find_or_insert(std::uint64_t key, std::uint32_t next, bool& created) {
    if ((size_ + 1) * 2 > keys_.size()) rehash(keys_.size() * 2);
    std::size_t slot = hash(key);
    while (true) {
      if (values_[slot] == kNone) {
        keys_[slot] = key;
        values_[slot] = next;
        ++size_;
        created = true;
        return next;
      }
      if (keys_[slot] == key) {
        created = false;
        return values_[slot];
      }
      slot = (slot + 1) & mask_;
    }
  }

 private:
  std::size_t hash(std::uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_) & mask_;
  }
  void rehash(std::size_t size) {
    std::vector<std::uint64_t> keys = std::move(keys_);
    std::vector<std::uint32_t> values = std::move(values_);
    keys_.assign(size, 0);
    values_.assign(size, kNone);
    mask_ = size - 1;
    int bits = 0;
    while ((std::size_t{1} << bits) < size) ++bits;
    shift_ = 64 - bits;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (values[i] == kNone) continue;
      std::size_t slot = hash(keys[i]);
      while (values_[slot] != kNone) slot = (slot + 1) & mask_;
      keys_[slot] = keys[i];
      values_[slot] = values[i];
    }
  }

  std::vector<std::uint64_t> keys_;
  std::vector<std::uint32_t> values_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
  int shift_ = 64;
};

// The merge loop's state: words as runs of symbols in one flat array, pair counts, and for each pair the
// words it may occur in (a linked list of chunks in one pool; stale or repeated entries are filtered when
// merging).
class Merger {
 public:
  Merger(std::vector<Symbol> symbols, std::vector<std::uint32_t> begin, std::vector<std::uint32_t> length,
         std::vector<std::uint64_t> counts)
      : symbols_(std::move(symbols)),
        begin_(std::move(begin)),
        length_(std::move(length)),
        counts_(std::move(counts)),
        word_stamp_(counts_.size(), 0) {
    for (std::uint32_t w = 0; w < counts_.size(); ++w) {
      const Symbol* s = &symbols_[begin_[w]];
      for (std::uint32_t i = 0; i + 1 < length_[w]; ++i) {
        const std::uint32_t p = pair(s[i], s[i + 1]);
        pair_count_[p] += static_cast<std::int64_t>(counts_[w]);
        add_position(p, w);
      }
    }
    for (std::uint32_t p = 0; p < pair_keys_.size(); ++p) {
      if (pair_count_[p] > 0) heap_.push({pair_count_[p], pair_keys_[p]});
    }
  }

  // The most frequent pair (ties: the smaller pair), or false when none is left.
  bool top(std::uint64_t& key, std::int64_t& count) {
    while (!heap_.empty()) {
      const Entry e = heap_.top();
      heap_.pop();
      bool created = false;
      const std::uint32_t p =
          index_.find_or_insert(e.key, static_cast<std::uint32_t>(pair_keys_.size()), created);
      if (created) add_pair_slot(e.key);
      const std::int64_t current = pair_count_[p];
      if (current != e.count) {
        if (current > 0) heap_.push({current, e.key});
        continue;
      }
      key = e.key;
      count = e.count;
      return true;
    }
    return false;
  }

  // Replaces every occurrence of the pair `key` by `replacement`, updating the counts of the pairs around it.
  void merge(std::uint64_t key, Symbol replacement) {
    const auto a = static_cast<Symbol>(key >> 32);
    const auto b = static_cast<Symbol>(key & 0xFFFFFFFFu);
    bool created = false;
    const std::uint32_t merged =
        index_.find_or_insert(key, static_cast<std::uint32_t>(pair_keys_.size()), created);
    if (created) add_pair_slot(key);
    ++stamp_;
    touched_.clear();
    // Detach the position list first: merging adds positions to other pairs only, but the pool may grow.
    std::uint32_t chunk = pair_head_[merged];
    pair_head_[merged] = kNone;
    while (chunk != kNone) {
      const std::uint32_t w = pool_word_[chunk];
      const std::uint32_t next = pool_next_[chunk];
      if (word_stamp_[w] != stamp_) {
        word_stamp_[w] = stamp_;
        merge_word(w, a, b, replacement);
      }
      chunk = next;
    }
    pair_count_[merged] = 0;
    for (const std::uint32_t p : touched_) {
      if (pair_count_[p] > 0) heap_.push({pair_count_[p], pair_keys_[p]});
    }
  }

 private:
  struct Entry {
    std::int64_t count;
    std::uint64_t key;
    bool operator<(const Entry& o) const {  // max-heap on count, then the smaller pair first
      return count != o.count ? count < o.count : key > o.key;
    }
  };

  void add_pair_slot(std::uint64_t key) {
    pair_keys_.push_back(key);
    pair_count_.push_back(0);
    pair_head_.push_back(kNone);
    pair_stamp_.push_back(0);
  }

  std::uint32_t pair(Symbol a, Symbol b) {
    bool created = false;
    const std::uint64_t key = pair_key(a, b);
    const std::uint32_t p =
        index_.find_or_insert(key, static_cast<std::uint32_t>(pair_keys_.size()), created);
    if (created) add_pair_slot(key);
    return p;
  }

  void add_position(std::uint32_t p, std::uint32_t w) {
    if (pair_head_[p] != kNone && pool_word_[pair_head_[p]] == w) return;  // same word again
    pool_word_.push_back(w);
    pool_next_.push_back(pair_head_[p]);
    pair_head_[p] = static_cast<std::uint32_t>(pool_word_.size() - 1);
  }

  void change(Symbol x, Symbol y, int delta, std::uint32_t w) {
    const std::uint32_t p = pair(x, y);
    pair_count_[p] += delta * static_cast<std::int64_t>(counts_[w]);
    if (delta > 0) {
      add_position(p, w);
      if (pair_stamp_[p] != stamp_) {
        pair_stamp_[p] = stamp_;
        touched_.push_back(p);
      }
    }
  }

  // Hugging Face's Word::merge: left to right, non-overlapping.
  void merge_word(std::uint32_t w, Symbol a, Symbol b, Symbol replacement) {
    Symbol* s = &symbols_[begin_[w]];
    const std::uint32_t n = length_[w];
    std::uint32_t out = 0;
    std::uint32_t i = 0;
    while (i < n) {
      if (s[i] == a && i + 1 < n && s[i + 1] == b) {
        if (out > 0) {
          change(s[out - 1], a, -1, w);
          change(s[out - 1], replacement, +1, w);
        }
        if (i + 2 < n) {
          change(b, s[i + 2], -1, w);
          change(replacement, s[i + 2], +1, w);
        }
        s[out++] = replacement;
        i += 2;
      } else {
        s[out++] = s[i++];
      }
    }
    length_[w] = out;
  }

  std::vector<Symbol> symbols_;
  std::vector<std::uint32_t> begin_, length_;
  std::vector<std::uint64_t> counts_;
  std::vector<std::uint32_t> word_stamp_;
  PairIndex index_;
  std::vector<std::uint64_t> pair_keys_;
  std::vector<std::int64_t> pair_count_;
  std::vector<std::uint32_t> pair_head_;
  std::vector<std::uint32_t> pair_stamp_;
  std::vector<std::uint32_t> pool_word_, pool_next_;
  std::vector<std::uint32_t> touched_;
  std::uint32_t stamp_ = 0;
  std::priority_queue<Entry> heap_;
};

}  // namespace

struct WordPieceTrainer::Counts {
  std::unordered_map<std::string, std::uint64_t, StringHash, StringEqual> words;
};

WordPieceTrainer::WordPieceTrainer(WordPieceTrainerOptions options)
    : options_(std::move(options)), normalizer_(options_.normalizer), counts_(std::make_unique<Counts>()) {
  for (const auto& token : options_.special_tokens) {
    if (token.empty()) throw Error("WordPiece trainer: a special token is empty");
  }
}

WordPieceTrainer::~WordPieceTrainer() = default;

void WordPieceTrainer::feed(std::string_view text) {
  if (is_valid_utf8(text)) {
    normalizer_.normalize_valid(text, buffer_);
  } else {
    normalizer_.normalize_valid(replace_invalid_utf8(text), buffer_);
  }
  auto& words = counts_->words;
  bert_pre_tokenize(buffer_, [&](std::string_view word) {
    auto it = words.find(word);
    if (it == words.end()) {
      words.emplace(std::string(word), 1);
    } else {
      ++it->second;
    }
  });
}

void WordPieceTrainer::feed_file(const std::string& path) {
  for_each_line(path, [&](std::size_t, std::string_view line) { feed(line); });
}

std::size_t WordPieceTrainer::word_types() const {
  return counts_->words.size();
}

std::vector<std::string> WordPieceTrainer::train() const {
  const std::string& prefix = options_.continuing_subword_prefix;
  std::vector<std::string> vocab;
  std::unordered_map<std::string, Symbol, StringHash, StringEqual> ids;
  auto add = [&](std::string token) -> Symbol {
    if (auto it = ids.find(token); it != ids.end()) return it->second;
    const auto id = static_cast<Symbol>(vocab.size());
    ids.emplace(token, id);
    vocab.push_back(std::move(token));
    return id;
  };
  for (const auto& token : options_.special_tokens) add(token);

  // Words in a fixed order, split into code points.
  std::vector<std::pair<std::string_view, std::uint64_t>> words;
  words.reserve(counts_->words.size());
  for (const auto& [word, count] : counts_->words) words.emplace_back(word, count);
  std::sort(words.begin(), words.end());

  // The alphabet: every character, weighted by word counts; the most frequent limit_alphabet of them.
  std::map<char32_t, std::uint64_t> alphabet;
  for (const auto& [word, count] : words) {
    for (std::size_t pos = 0; pos < word.size();) alphabet[detail::decode_utf8(word, pos)] += count;
  }
  std::vector<std::pair<char32_t, std::uint64_t>> kept(alphabet.begin(), alphabet.end());
  if (options_.limit_alphabet > 0 && kept.size() > options_.limit_alphabet) {
    std::stable_sort(kept.begin(), kept.end(),
                     [](const auto& x, const auto& y) { return x.second > y.second; });
    kept.resize(options_.limit_alphabet);
    std::sort(kept.begin(), kept.end());
  }
  std::map<char32_t, Symbol> initial;  // character -> id of "c"
  for (const auto& [c, count] : kept) {
    std::string s;
    append_utf8(c, s);
    initial[c] = add(std::move(s));
  }
  // "##c" for each kept character seen inside a word, in code point order.
  std::map<char32_t, bool> inside;
  for (const auto& [word, count] : words) {
    std::size_t pos = 0;
    detail::decode_utf8(word, pos);
    while (pos < word.size()) {
      const char32_t c = detail::decode_utf8(word, pos);
      if (initial.count(c)) inside[c] = true;
    }
  }
  std::map<char32_t, Symbol> continuing;
  for (const auto& [c, unused] : inside) {
    std::string s = prefix;
    append_utf8(c, s);
    continuing[c] = add(std::move(s));
  }

  // Words as symbol sequences (characters outside the alphabet are left out, as Hugging Face does); words of
  // one symbol have no pair and are dropped.
  std::vector<Symbol> symbols;
  std::vector<std::uint32_t> begin, length;
  std::vector<std::uint64_t> counts;
  std::vector<Symbol> word_symbols;
  for (const auto& [word, count] : words) {
    word_symbols.clear();
    for (std::size_t pos = 0; pos < word.size();) {
      const bool first = pos == 0;
      const char32_t c = detail::decode_utf8(word, pos);
      if (!initial.count(c)) continue;
      word_symbols.push_back(first ? initial[c] : continuing[c]);
    }
    if (word_symbols.size() < 2) continue;
    begin.push_back(static_cast<std::uint32_t>(symbols.size()));
    length.push_back(static_cast<std::uint32_t>(word_symbols.size()));
    counts.push_back(count);
    symbols.insert(symbols.end(), word_symbols.begin(), word_symbols.end());
  }

  Merger merger(std::move(symbols), std::move(begin), std::move(length), std::move(counts));
  while (vocab.size() < options_.vocab_size) {
    std::uint64_t key = 0;
    std::int64_t count = 0;
    if (!merger.top(key, count)) break;
    if (count < 1 || static_cast<std::uint64_t>(count) < options_.min_frequency) break;
    const std::string& part_a = vocab[static_cast<std::size_t>(key >> 32)];
    std::string_view part_b = vocab[static_cast<std::size_t>(key & 0xFFFFFFFFu)];
    if (part_b.substr(0, prefix.size()) == prefix) part_b.remove_prefix(prefix.size());
    std::string token = part_a;
    token.append(part_b);
    const Symbol id = add(std::move(token));
    merger.merge(key, id);
  }
  return vocab;
}

std::vector<std::string> train_wordpiece(const std::vector<std::string>& texts,
                                         const WordPieceTrainerOptions& options) {
  WordPieceTrainer trainer(options);
  for (const auto& text : texts) trainer.feed(text);
  return trainer.train();
}

std::vector<std::string> train_wordpiece_files(const std::vector<std::string>& paths,
                                               const WordPieceTrainerOptions& options) {
  WordPieceTrainer trainer(options);
  for (const auto& path : paths) trainer.feed_file(path);
  return trainer.train();
}

void write_wordpiece_vocab(const std::string& path, const std::vector<std::string>& vocab) {
  for (std::size_t i = 0; i < vocab.size(); ++i) {
    if (vocab[i].empty() || vocab[i].find_first_of("\n\r") != std::string::npos) {
      throw Error(path, 0, "",
                  "token " + std::to_string(i) + " cannot be written to a vocab.txt (empty or a line break)");
    }
  }
  write_file_atomically(path, [&](std::ostream& out) {
    for (const auto& token : vocab) out << token << '\n';
  });
}

}  // namespace disranker
