// llama2.c's encode (run.c), transcribed as directly as possible: the O(n^2) loop that rescans every adjacent
// pair after each merge. The reference that Llama2cTokenizer's heap-based merge loop must match id for id, in
// the tests and in the fuzz target fuzz/fuzz_llama2c_loader.cc. Works on any loaded vocabulary through the
// public interface.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/utf8.h"
#include "text/llama2c_tokenizer.h"

namespace disranker::testing {

class Llama2cReference {
 public:
  explicit Llama2cReference(const Llama2cTokenizer& t) : t_(t) {
    for (TokenId id = static_cast<TokenId>(t.vocab_size()) - 1; id >= 0; --id) {
      lookup_[std::string(t.id_to_token(id))] = id;  // the lowest id wins
    }
  }

  std::vector<TokenId> encode(const std::string& raw, bool bos, bool eos) const {
    const std::string text = replace_invalid_utf8(raw);
    std::vector<TokenId> tokens;
    if (bos) tokens.push_back(1);
    if (!text.empty()) tokens.push_back(str_lookup(" "));
    // One code point at a time: a lead byte starts a new buffer, continuation bytes (at most 4 in all) join
    // it.
    std::string buffer;
    for (std::size_t c = 0; c < text.size(); ++c) {
      if ((static_cast<unsigned char>(text[c]) & 0xC0) != 0x80) buffer.clear();
      buffer += text[c];
      if (c + 1 < text.size() && (static_cast<unsigned char>(text[c + 1]) & 0xC0) == 0x80 &&
          buffer.size() < 4) {
        continue;
      }
      const TokenId id = str_lookup(buffer);
      if (id != -1) {
        tokens.push_back(id);
      } else {
        for (const char b : buffer) tokens.push_back(static_cast<unsigned char>(b) + 3);  // byte fallback
      }
      buffer.clear();
    }
    // Merge the best pair until none is left: the first pair with a strictly higher score than -1e10 and all
    // before.
    while (true) {
      float best_score = -1e10f;
      TokenId best_id = -1;
      std::ptrdiff_t best_idx = -1;
      for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
        const std::string merged =
            std::string(t_.id_to_token(tokens[i])) + std::string(t_.id_to_token(tokens[i + 1]));
        const TokenId id = str_lookup(merged);
        if (id != -1 && t_.score(id) > best_score) {
          best_score = t_.score(id);
          best_id = id;
          best_idx = static_cast<std::ptrdiff_t>(i);
        }
      }
      if (best_idx == -1) break;
      tokens[static_cast<std::size_t>(best_idx)] = best_id;
      tokens.erase(tokens.begin() + best_idx + 1);
    }
    if (eos) tokens.push_back(2);
    return tokens;
  }

 private:
  TokenId str_lookup(const std::string& s) const {
    const auto it = lookup_.find(s);
    return it == lookup_.end() ? -1 : it->second;
  }

  const Llama2cTokenizer& t_;
  std::unordered_map<std::string, TokenId> lookup_;  // bytes -> lowest id
};

}  // namespace disranker::testing
