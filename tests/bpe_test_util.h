// Helpers of the byte-level BPE tests: training corpora from the shared data, Hugging Face training through
// tests/oracle/hf_train_bpe.js, and the id-for-id comparison with Hugging Face's tokenizers library.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "data/docs.h"
#include "oracle_util.h"
#include "test_util.h"
#include "text/bpe.h"

namespace disranker::testing {

// Every shared set the tests compare on.
inline const std::vector<std::string>& all_shared_sets() {
  static const std::vector<std::string> sets = {"trec-dl19",    "trec-dl21",  "trec-dl22",
                                                "wikiqa-train", "wikiqa-dev", "qbqtc-train",
                                                "qbqtc-dev",    "cranfield",  "cisi"};
  return sets;
}

// Hard cases for byte-level BPE beyond adversarial_strings(): White_Space edge characters, case-insensitive
// contractions, digits, added tokens in context, normalization, newlines, long words.
inline std::vector<std::string> bpe_adversarial_strings() {
  std::vector<std::string> strings = adversarial_strings();
  const std::vector<std::string> more = {
      "\xE1\xA0\x8E x\xC2\x85y \x1C\x1D\x1E\x1F z\xE2\x80\x8B\xEF\xBB\xBF w\xE3\x80\x80v",  // U+180E NEL
                                                                                            // FS..US ZWSP BOM
      "a\xE1\xA0\x8E"
      "b c\xC2\x85 d e\x1C f \xE2\x80\xA8 g\xE2\x80\xA9h \xE2\x80\xAF i\xE2\x81\x9F",
      // Runs that split differently when the character is White_Space ("a", " ", "!") or not ("a", " !").
      "a\xE1\xA0\x8E! x \xE1\xA0\x8E\xE1\xA0\x8Ey b\xC2\x85? c\x1C. d\xE2\x80\x8B, e\xEF\xBB\xBF; f\x1F\x1F!",
      "g\xC2\xA0! h\xE3\x80\x80? i\xE2\x80\x8A. j\xE2\x80\x8C, k\xE2\x81\xA0; l\xC2\x85\xC2\x85m",
      "'s 'S '\xC5\xBF 'T 'RE 'Ve 'M 'LL 'D don't DON'T we'LL you'Re it\xE2\x80\x99s",
      "1234567 12 123 1234 \xD9\xA3\xD9\xA4\xD9\xA5\xD9\xA6 \xC2\xB2\xC2\xB3 \xE2\x85\xAB 1,000,000 3.14159 "
      "a1b22c333",
      "<|endoftext|><|endoftext|>",
      "a<|endoftext|>b",
      " <|endoftext|> ",
      "<|endoftext|",
      "<|endoftext",
      "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
      "<|begin_of_text|>Hello<|end_of_text|><|eot_id|> <|reserved_special_token_0|>",
      "[WORD] x[WORD]y [WORD]. ([WORD]) _[WORD]_ \xC3\xA9[WORD]",
      "<mask>",
      "  <mask>  hi",
      "a<mask>",
      "a <mask> b",
      "<rs>   x",
      "<rs>",
      "x <rs>\n\ny",
      "hello world",
      "hello  world hello world!",
      "say hello world",
      "Hello World",
      "<s>hi</s> <pad><unk>",
      "<s> </s>",
      "e\xCC\x81 \xC3\xA9 A\xCC\x8A \xC3\x85 \xEF\xAC\x81 \xEF\xBD\x86\xEF\xBD\x95\xEF\xBD\x8C\xEF\xBD\x8C "
      "\xE2\x84\xAB",
      "\n",
      "\n\n\n",
      " \n ",
      "a  \n\n  b",
      "x\r\n\r\ny",
      "   ",
      "a   b",
      "a \t b",
      "\t\t",
      "  leading",
      "trailing  ",
      "word\n",
      "\r\r\n",
      " \t\n\r\x0B\x0C",
      "\xE4\xB8\xAD\xE6\x96\x87\xE6\xB5\x8B\xE8\xAF\x95 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE"
      "\xE3\x83\x86\xE3\x82\xAD\xE3\x82\xB9\xE3\x83\x88",
      std::string(300, ' '),
      std::string(300, 'x') + " " + std::string(257, 'y') + "z",
      "the the the the the the the the",
      "\xF0\x9F\x99\x82\xF0\x9F\x99\x82\xF0\x9F\x99\x82 \xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB",
      "\xC3\x80\xC3\x81\xC3\x82\xC3\x83\xC3\x84\xC3\x85",
      "$$$ ... !!! ??? --- ___ *** ### @@@",
      "http://example.com/path?q=1&r=2#frag",
      "C++ C# F# .NET node.js",
      "a'b'c' 'd ''",
      "\xC2\xAD soft\xC2\xADhyphen",
  };
  strings.insert(strings.end(), more.begin(), more.end());
  return strings;
}

// Writes the documents (title and text joined by a space) of `sets`, one per line, to `path`. False when the
// shared data is absent.
inline bool write_corpus(const std::string& path, const std::vector<std::string>& sets) {
  const std::string root = shared_data_dir();
  if (root.empty()) return false;
  std::ofstream out(path, std::ios::binary);
  for (const auto& set : sets) {
    const auto docs =
        read_docs((std::filesystem::path(root) / set / "docs.tsv").string(), /*allow_empty=*/true);
    for (const auto& d : docs.items()) {
      if (d.title.empty() && d.text.empty()) continue;
      out << d.title << (d.title.empty() || d.text.empty() ? "" : " ") << d.text << '\n';
    }
  }
  return static_cast<bool>(out);
}

// Runs tests/oracle/hf_train_bpe.js; returns its summary line, or "" after ADD_FAILURE.
inline std::string hf_train_bpe(const std::string& out, const std::string& style, std::size_t vocab_size,
                                const std::vector<std::string>& corpus, const std::string& extra = "") {
  const auto script = std::filesystem::path(DISRANKER_SOURCE_DIR) / "tests" / "oracle" / "hf_train_bpe.js";
  const std::string summary = out + ".summary";
  std::string command = "node '" + script.string() + "' --out '" + out + "' --style " + style +
                        " --vocab-size " + std::to_string(vocab_size) + " " + extra;
  for (const auto& file : corpus) command += " '" + file + "'";
  command += " > '" + summary + "' 2>/dev/null";
  if (std::system(command.c_str()) != 0) {
    ADD_FAILURE() << "Hugging Face training failed: " << command;
    return "";
  }
  std::ifstream in(summary);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

inline std::string to_base64(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += {alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63], alphabet[v & 63]};
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += {alphabet[v >> 18], alphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const unsigned v =
        (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += {alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63], '='};
  }
  return out;
}

// The words of Hugging Face's pre-tokenizer of `tokenizer_path` for each input
// (tests/oracle/hf_pretokenize.js); empty after ADD_FAILURE when Node fails.
inline std::vector<std::vector<std::string>> hf_pretokenize(const std::string& tokenizer_path,
                                                            const std::vector<std::string>& inputs) {
  TempDir dir;
  {
    std::ofstream in(dir.path() / "in.b64", std::ios::binary);
    for (const auto& s : inputs) in << to_base64(s) << '\n';
  }
  const auto script = std::filesystem::path(DISRANKER_SOURCE_DIR) / "tests" / "oracle" / "hf_pretokenize.js";
  const std::string command = "node '" + script.string() + "' --tokenizer '" + tokenizer_path + "' < '" +
                              (dir.path() / "in.b64").string() + "' > '" +
                              (dir.path() / "out.jsonl").string() + "'";
  std::vector<std::vector<std::string>> results;
  if (std::system(command.c_str()) != 0) {
    ADD_FAILURE() << "pre-tokenizer oracle failed: " << command;
    return results;
  }
  std::ifstream out(dir.path() / "out.jsonl");
  std::string line;
  while (std::getline(out, line)) {
    results.push_back(nlohmann::json::parse(line).at("words").get<std::vector<std::string>>());
  }
  if (results.size() != inputs.size()) {
    ADD_FAILURE() << "pre-tokenizer oracle returned " << results.size() << " results for " << inputs.size();
    results.clear();
  }
  return results;
}

inline std::string show_words(const std::vector<std::string>& words) {
  std::string out = "[";
  for (std::size_t i = 0; i < words.size(); ++i) out += (i ? ", \"" : "\"") + words[i] + "\"";
  return out + "]";
}

inline std::string show_ids(const std::vector<int>& ids) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < ids.size(); ++i) out << (i ? "," : "") << ids[i];
  out << ']';
  return out.str();
}

inline std::string show_string(const std::string& s, std::size_t limit = 160) {
  std::string shown = s.size() > limit ? s.substr(0, limit) + "..." : s;
  std::ostringstream out;
  out << '"';
  for (const char c : shown) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
      static const char* hex = "0123456789abcdef";
      out << "\\x" << hex[u >> 4] << hex[u & 15];
    } else {
      out << c;
    }
  }
  out << "\" (" << s.size() << " bytes)";
  return out.str();
}

struct CompareResult {
  std::size_t compared = 0;
  std::size_t id_mismatches = 0;
  std::size_t decode_mismatches = 0;
};

// Encodes `inputs` with `ours` and with Hugging Face (tokenizer file `path`) and expects identical ids and,
// when check_decode, identical decode(ids, skip_special=true). Reports the first 5 mismatches of each kind.
inline CompareResult compare_with_hf(const BpeTokenizer& ours, const std::string& path,
                                     const std::vector<std::string>& inputs, bool check_decode) {
  CompareResult result;
  const auto expected = hf_encode(path, inputs, check_decode);
  if (expected.size() != inputs.size()) return result;
  std::ostringstream report;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto ids = ours.encode(inputs[i]);
    const std::vector<int> got(ids.begin(), ids.end());
    ++result.compared;
    if (got != expected[i].ids) {
      if (++result.id_mismatches <= 5) {
        report << "ids differ for " << show_string(inputs[i]) << "\n  ours " << show_ids(got) << "\n  HF   "
               << show_ids(expected[i].ids) << "\n";
      }
      continue;
    }
    if (check_decode) {
      const std::string decoded = ours.decode(ids, true);
      if (decoded != expected[i].decoded && ++result.decode_mismatches <= 5) {
        report << "decode differs for " << show_string(inputs[i]) << "\n  ours " << show_string(decoded)
               << "\n  HF   " << show_string(expected[i].decoded) << "\n";
      }
    }
  }
  EXPECT_EQ(result.id_mismatches, 0u)
      << path << ": " << result.id_mismatches << " of " << inputs.size() << " inputs encode differently\n"
      << report.str();
  EXPECT_EQ(result.decode_mismatches, 0u)
      << path << ": " << result.decode_mismatches << " of " << inputs.size() << " decodes differ\n"
      << report.str();
  return result;
}

}  // namespace disranker::testing
