// Byte-level BPE (text/bpe.h): hand-derived unit tests on a tiny tokenizer.json, and id-for-id identity with
// Hugging Face's tokenizers library on tokenizers it trains (GPT-2, RoBERTa, Qwen2 and Llama-3 styles) over
// the adversarial strings and every string of the shared data.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "bpe_test_util.h"
#include "core/error.h"
#include "core/utf8.h"
#include "text/bpe.h"
#include "text/byte_level.h"
#include "text/tokenizer.h"

namespace disranker {
namespace {

using testing::TempDir;

// ---------------------------------------------------------------------------------------------------------------
// Hand-derived tests on a tiny vocabulary
// ---------------------------------------------------------------------------------------------------------------

// Tokens: the characters a b c d, "Ġ" (the space byte) and "Ċ" (the newline byte); merges in rank order
// "b c" (0), "a b" (1), "ab c" (2), "Ġ a" (3), "Ġa b" (4).
nlohmann::json tiny_json(bool legacy_merges = false) {
  nlohmann::json json = nlohmann::json::parse(R"({
    "version": "1.0", "truncation": null, "padding": null,
    "added_tokens": [
      {"id": 12, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false,
       "normalized": false, "special": true},
      {"id": 13, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false,
       "normalized": false, "special": true}
    ],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
    "post_processor": null,
    "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
    "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
              "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
              "vocab": {"a": 0, "b": 1, "c": 2, "d": 3, "Ġ": 4, "Ċ": 5, "bc": 6, "ab": 7, "abc": 8, "Ġa": 9,
                        "Ġab": 10, "<unk>": 11, "<|endoftext|>": 12},
              "merges": [["b", "c"], ["a", "b"], ["ab", "c"], ["Ġ", "a"], ["Ġa", "b"]]}
  })");
  if (legacy_merges) json["model"]["merges"] = {"b c", "a b", "ab c", "Ġ a", "Ġa b"};
  return json;
}

std::vector<TokenId> ids(std::initializer_list<TokenId> list) {
  return list;
}

TEST(BpeByteLevel, GptTwoByteToUnicodeTable) {
  using byte_level::byte_to_char;
  EXPECT_EQ(byte_to_char('!'), U'!');
  EXPECT_EQ(byte_to_char('~'), U'~');
  EXPECT_EQ(byte_to_char(0xA1), U'\u00A1');
  EXPECT_EQ(byte_to_char(0xFF), U'\u00FF');
  EXPECT_EQ(byte_to_char(0x00), U'\u0100');  // the 68 other bytes take U+0100.. in byte order
  EXPECT_EQ(byte_to_char('\n'), U'\u010A');  // "Ċ"
  EXPECT_EQ(byte_to_char(' '), U'\u0120');   // "Ġ": bytes 0..32 are the first 33
  EXPECT_EQ(byte_to_char(0x7F), U'\u0121');
  EXPECT_EQ(byte_to_char(0xA0), U'\u0142');
  EXPECT_EQ(byte_to_char(0xAD), U'\u0143');  // the last one
  EXPECT_EQ(byte_level::bytes_to_chars("a b\n"),
            "a\xC4\xA0"
            "b\xC4\x8A");
  std::string raw;
  ASSERT_TRUE(
      byte_level::chars_to_bytes("a\xC4\xA0"
                                 "b",
                                 raw));
  EXPECT_EQ(raw, "a b");
  EXPECT_FALSE(byte_level::chars_to_bytes("\xE4\xB8\xAD", raw));  // not a byte character
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  ASSERT_TRUE(byte_level::chars_to_bytes(byte_level::bytes_to_chars(all), raw));
  EXPECT_EQ(raw, all);
}

TEST(BpeUnit, MergesApplyInRankOrderNotLeftToRight) {
  const auto bpe = BpeTokenizer::from_json(tiny_json(), "tiny.json");
  EXPECT_EQ(bpe->encode("abc"), ids({0, 6}));  // "b c" (rank 0) before "a b" (rank 1): a + bc, and no "a bc"
  EXPECT_EQ(bpe->encode("ab"), ids({7}));
  EXPECT_EQ(bpe->encode("abd"), ids({7, 3}));
  EXPECT_EQ(bpe->encode("abab"), ids({7, 7}));
  EXPECT_EQ(bpe->encode("ba"), ids({1, 0}));
  // " ab": "a b" (rank 1) before "Ġ a" (rank 3), so "Ġab" is never reached: Ġ + ab.
  EXPECT_EQ(bpe->encode(" ab"), ids({4, 7}));
  EXPECT_EQ(bpe->encode(" a"), ids({9}));
  // The GPT-2 regex splits "ab cd\n" into "ab", " cd", "\n".
  EXPECT_EQ(bpe->encode("ab cd\n"), ids({7, 4, 2, 3, 5}));
  EXPECT_EQ(bpe->encode(""), ids({}));
}

TEST(BpeUnit, BothMergeFormatsGiveTheSameTokenizer) {
  const auto pairs = BpeTokenizer::from_json(tiny_json(false), "tiny.json");
  const auto strings = BpeTokenizer::from_json(tiny_json(true), "tiny.json");
  EXPECT_EQ(pairs->merge_count(), 5u);
  EXPECT_EQ(strings->merge_count(), 5u);
  for (const std::string text : {"abc", " ab", "abcabc dab", "a b c d", "cab bca"}) {
    EXPECT_EQ(pairs->encode(text), strings->encode(text)) << text;
  }
}

TEST(BpeUnit, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  auto json = tiny_json();
  json["model"]["ignore_merges"] = true;
  const auto bpe = BpeTokenizer::from_json(json, "tiny.json");
  EXPECT_EQ(bpe->encode(" ab"), ids({10}));  // "Ġab" is in the vocabulary
  EXPECT_EQ(bpe->encode("abc"), ids({8}));
  EXPECT_EQ(bpe->encode("abd"), ids({7, 3}));  // not in the vocabulary: merges as usual
}

TEST(BpeUnit, AddedTokensAreSplitOutBeforePreTokenization) {
  const auto bpe = BpeTokenizer::from_json(tiny_json(), "tiny.json");
  EXPECT_EQ(bpe->encode("ab<|endoftext|>ab"), ids({7, 12, 7}));
  EXPECT_EQ(bpe->encode("<|endoftext|></s>"), ids({12, 13}));
  EXPECT_EQ(bpe->encode("a</s> b"), ids({0, 13, 4, 1}));
  EXPECT_EQ(bpe->decode(ids({7, 12, 7}), true), "abab");
  EXPECT_EQ(bpe->decode(ids({7, 12, 7}), false), "ab<|endoftext|>ab");
  EXPECT_EQ(bpe->decode(ids({9, 6, 5, 99, -1}), true), " abc\n");  // ids out of range are left out
}

TEST(BpeUnit, UnknownBytesAreDroppedOrBecomeUnk) {
  auto json = tiny_json();
  const auto dropping = BpeTokenizer::from_json(json, "tiny.json");
  // 'z' is not in the vocabulary and there is no unk_token: dropped, and "a b" then merge.
  EXPECT_EQ(dropping->encode("azzb"), ids({7}));
  EXPECT_EQ(dropping->encode("ab\xE4\xB8\xAD"), ids({7}));
  json["model"]["unk_token"] = "<unk>";
  const auto unk = BpeTokenizer::from_json(json, "tiny.json");
  EXPECT_EQ(unk->encode("azzb"), ids({0, 11, 11, 1}));
  EXPECT_EQ(unk->special().unk, 11);
  json["model"]["fuse_unk"] = true;
  const auto fused = BpeTokenizer::from_json(json, "tiny.json");
  EXPECT_EQ(fused->encode("azzb"), ids({0, 11, 1}));
}

TEST(BpeUnit, VocabularyAccessAndSpecialTokens) {
  const auto bpe = BpeTokenizer::from_json(tiny_json(), "tiny.json");
  EXPECT_EQ(bpe->vocab_size(), 14u);
  EXPECT_EQ(bpe->kind(), "bpe");
  EXPECT_EQ(bpe->id_to_token(9),
            "\xC4\xA0"
            "a");
  EXPECT_EQ(bpe->id_to_token(13), "</s>");
  EXPECT_EQ(bpe->id_to_token(14), "");
  EXPECT_EQ(bpe->token_to_id("</s>"), 13);
  EXPECT_EQ(bpe->token_to_id("abc"), 8);
  EXPECT_FALSE(bpe->token_to_id("zz").has_value());
  EXPECT_TRUE(bpe->is_special(12));
  EXPECT_FALSE(bpe->is_special(7));
  EXPECT_EQ(bpe->special().eos, 13);  // "</s>" is preferred to "<|endoftext|>"
  EXPECT_EQ(bpe->special().bos, -1);
  EXPECT_EQ(bpe->special().pad, 12);  // "<|endoftext|>"
  EXPECT_EQ(bpe->special().unk, -1);
}

TEST(BpeUnit, InvalidUtf8IsReplacedFirst) {
  auto json = tiny_json();
  json["model"]["unk_token"] = "<unk>";
  const auto bpe = BpeTokenizer::from_json(json, "tiny.json");
  // "\xFF" becomes U+FFFD (3 bytes, none in the vocabulary): three unk.
  EXPECT_EQ(bpe->encode("a\xFF"), ids({0, 11, 11, 11}));
}

TEST(BpeUnit, LoaderErrorsNameTheFileAndField) {
  TempDir dir;
  auto expect_error = [](const std::function<void()>& load, const std::string& file,
                         const std::string& field) {
    try {
      load();
      ADD_FAILURE() << "no error for field " << field;
    } catch (const Error& e) {
      EXPECT_EQ(e.file(), file) << e.what();
      EXPECT_EQ(e.field(), field) << e.what();
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
  };
  const std::string malformed = dir.write("bad.json", "{\"model\": {\"type\": \"BPE\", ");
  expect_error([&] { load_bpe_file(malformed); }, malformed, "");
  const std::string missing = (dir.path() / "missing.json").string();
  expect_error([&] { load_bpe_file(missing); }, missing, "");

  auto with = [](const std::function<void(nlohmann::json&)>& edit) {
    auto json = tiny_json();
    edit(json);
    return json;
  };
  auto load = [](const nlohmann::json& json) {
    return [json] { BpeTokenizer::from_json(json, "tok.json"); };
  };
  expect_error(load(with([](auto& j) { j["model"]["type"] = "Unigram"; })), "tok.json", "model.type");
  expect_error(load(with([](auto& j) { j.erase("model"); })), "tok.json", "model");
  expect_error(load(with([](auto& j) {
                 j["model"]["merges"][1] = {"a", "zz"};
               })),
               "tok.json", "model.merges[1]");
  expect_error(load(with([](auto& j) { j["model"]["merges"] = {"a  b"}; })), "tok.json", "model.merges[0]");
  expect_error(load(with([](auto& j) { j["model"]["merges"] = {"a d"}; })), "tok.json", "model.merges[0]");
  expect_error(load(with([](auto& j) { j["model"]["vocab"]["x"] = -3; })), "tok.json", "model.vocab");
  expect_error(load(with([](auto& j) { j["model"]["byte_fallback"] = true; })), "tok.json",
               "model.byte_fallback");
  expect_error(load(with([](auto& j) { j["model"]["dropout"] = 0.1; })), "tok.json", "model.dropout");
  expect_error(load(with([](auto& j) { j["model"]["unk_token"] = "<nope>"; })), "tok.json",
               "model.unk_token");
  expect_error(load(with([](auto& j) {
                 j["normalizer"] = {{"type", "Lowercase"}};
               })),
               "tok.json", "normalizer.type");
  expect_error(load(with([](auto& j) {
                 j["pre_tokenizer"] = {{"type", "Whitespace"}};
               })),
               "tok.json", "pre_tokenizer.type");
  expect_error(load(with([](auto& j) { j["pre_tokenizer"] = nullptr; })), "tok.json", "pre_tokenizer");
  expect_error(
      load(with([](auto& j) {
        j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(a"}}}, {"behavior", "Isolated"}};
      })),
      "tok.json", "pre_tokenizer.pattern");
  expect_error(load(with([](auto& j) {
                 j["decoder"] = {{"type", "WordPiece"}};
               })),
               "tok.json", "decoder.type");
  expect_error(load(with([](auto& j) { j["added_tokens"][0].erase("content"); })), "tok.json",
               "added_tokens[0].content");
  // load_tokenizer dispatches a BPE tokenizer.json here.
  const std::string file = dir.write("tokenizer.json", tiny_json().dump());
  const auto loaded = load_tokenizer(file);
  EXPECT_EQ(loaded->kind(), "bpe");
  EXPECT_EQ(loaded->encode("abc"), ids({0, 6}));
}

TEST(BpeUnit, TinyTokenizerMatchesHuggingFace) {
  TempDir dir;
  for (const bool legacy : {false, true}) {
    for (const bool ignore_merges : {false, true}) {
      auto json = tiny_json(legacy);
      json["model"]["ignore_merges"] = ignore_merges;
      const std::string path = dir.write("tiny.json", json.dump());
      const auto bpe = load_bpe_file(path);
      const std::vector<std::string> inputs = {
          "abc",  " ab",     "abcabc dab", "a b c d",  "ab<|endoftext|>ab",
          "azzb", "a</s> b", "abd\n\nab",  "bcab cabc"};
      testing::compare_with_hf(*bpe, path, inputs, true);
    }
  }
}

TEST(BpeUnit, ConcurrentEncodesAgree) {
  const auto bpe = BpeTokenizer::from_json(tiny_json(), "tiny.json");
  const std::string text = "abc abd bcab ab<|endoftext|>cab dcba";
  const auto expected = bpe->encode(text);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i)
        if (bpe->encode(text) != expected) ++failures;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Identity with Hugging Face on trained tokenizers
// ---------------------------------------------------------------------------------------------------------------

// Tokenizers trained by Hugging Face once per process, by style and options.
class HfTrained {
 public:
  static std::string get(const std::string& style, const std::string& extra = "") {
    static TempDir dir;
    static std::map<std::string, std::string> files;
    static std::string corpus;
    if (testing::shared_data_dir().empty()) return "";
    if (corpus.empty()) {
      corpus = (dir.path() / "corpus.txt").string();
      if (!testing::write_corpus(corpus, {"wikiqa-train", "trec-dl19"})) return "";
    }
    const std::string key = style + extra;
    if (auto it = files.find(key); it != files.end()) return it->second;
    const std::string out = (dir.path() / (style + std::to_string(files.size()) + ".json")).string();
    const std::string summary = testing::hf_train_bpe(out, style, 8000, {corpus}, extra);
    if (summary.empty()) return "";
    std::cout << "[HF trained " << style << " " << extra << "] " << summary << "\n";
    return files[key] = out;
  }
};

std::vector<std::string> all_inputs() {
  std::vector<std::string> inputs = testing::bpe_adversarial_strings();
  const auto shared = testing::shared_strings(testing::all_shared_sets());
  inputs.insert(inputs.end(), shared.begin(), shared.end());
  return inputs;
}

void check_style(const std::string& style, const std::string& extra, bool round_trip) {
  const std::string path = HfTrained::get(style, extra);
  if (testing::shared_data_dir().empty()) GTEST_SKIP() << "shared data not found";
  ASSERT_FALSE(path.empty());
  const auto bpe = load_bpe_file(path);
  const auto inputs = all_inputs();
  const auto start = std::chrono::steady_clock::now();
  std::size_t tokens = 0, bytes = 0;
  for (const auto& s : inputs) tokens += bpe->encode(s).size(), bytes += s.size();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[" << style << " " << extra << "] encoded " << inputs.size() << " strings, " << bytes
            << " bytes, " << tokens << " tokens in " << seconds << " s (first pass, cold cache)\n";
  const auto result = testing::compare_with_hf(*bpe, path, inputs, /*check_decode=*/true);
  std::cout << "[" << style << " " << extra << "] compared " << result.compared
            << " strings with Hugging Face: " << result.id_mismatches << " id mismatches, "
            << result.decode_mismatches << " decode mismatches\n";
  EXPECT_EQ(result.compared, inputs.size());
  if (round_trip) {
    std::size_t failures = 0;
    for (const auto& s : inputs) {
      if (!is_valid_utf8(s)) continue;
      if (bpe->decode(bpe->encode(s), /*skip_special=*/false) != s && ++failures <= 5) {
        ADD_FAILURE() << "decode(encode(x)) != x for " << testing::show_string(s);
      }
    }
    EXPECT_EQ(failures, 0u);
  }
}

TEST(BpeOracle, Gpt2StyleMatchesHuggingFaceOnAllSharedStrings) {
  check_style("gpt2", "", /*round_trip=*/true);
}

TEST(BpeOracle, RobertaStyleWithPrefixSpaceAndAddedTokenFlags) {
  check_style("roberta", "", false);
}

TEST(BpeOracle, Qwen2StyleNfcSplitRegexLegacyMerges) {
  check_style("qwen2", "", false);
}

TEST(BpeOracle, Llama3StyleIgnoreMergesAndUnseenBytesDropped) {
  check_style("llama3", "--alphabet seen", false);
}

// The pre-tokenizers alone (the GPT-2 regex, Qwen2's and Llama-3's Split patterns, add_prefix_space) against
// PreTokenizer.preTokenizeString: pieces can differ where ids do not (no merge across the boundary).
TEST(BpeOracle, PreTokenizerWordsMatchHuggingFace) {
  if (testing::shared_data_dir().empty()) GTEST_SKIP() << "shared data not found";
  const auto inputs = all_inputs();
  for (const std::string style : {"gpt2", "roberta", "qwen2", "llama3"}) {
    const std::string path = HfTrained::get(style);
    ASSERT_FALSE(path.empty());
    const auto bpe = load_bpe_file(path);
    const auto expected = testing::hf_pretokenize(path, inputs);
    ASSERT_EQ(expected.size(), inputs.size());
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const auto words = bpe->pre_tokenize(inputs[i]);
      if (words != expected[i] && ++mismatches <= 5) {
        ADD_FAILURE() << style << ": pre-tokenization differs for " << testing::show_string(inputs[i])
                      << "\n  ours " << testing::show_words(words) << "\n  HF   "
                      << testing::show_words(expected[i]);
      }
    }
    std::cout << "[" << style << "] pre-tokenized " << inputs.size() << " strings: " << mismatches
              << " mismatches\n";
    EXPECT_EQ(mismatches, 0u) << style;
  }
}

// Split behaviours, invert, a String pattern, NFKC and a null decoder, on variants of the GPT-2-style
// tokenizer.
TEST(BpeOracle, SplitVariantsMatchHuggingFace) {
  const std::string base = HfTrained::get("gpt2");
  if (testing::shared_data_dir().empty()) GTEST_SKIP() << "shared data not found";
  ASSERT_FALSE(base.empty());
  std::ifstream in(base);
  const nlohmann::json original = nlohmann::json::parse(in);
  std::vector<std::string> inputs = testing::bpe_adversarial_strings();
  const auto shared = testing::shared_strings({"wikiqa-dev", "qbqtc-dev", "cisi"});
  inputs.insert(inputs.end(), shared.begin(), shared.end());
  auto split = [](const std::string& pattern, const std::string& behavior, bool invert, bool regex = true) {
    return nlohmann::json{{"type", "Split"},
                          {"pattern", {{regex ? "Regex" : "String", pattern}}},
                          {"behavior", behavior},
                          {"invert", invert}};
  };
  const nlohmann::json byte_level_plain = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}};
  const nlohmann::json byte_level_prefix = {
      {"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  std::vector<std::pair<std::string, nlohmann::json>> variants;
  for (const std::string behavior :
       {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"}) {
    for (const bool invert : {false, true}) {
      variants.emplace_back(
          behavior + (invert ? "-inverted" : ""),
          nlohmann::json{{"type", "Sequence"},
                         {"pretokenizers", {split(R"(\s+|[.,;!?])", behavior, invert), byte_level_plain}}});
    }
  }
  variants.emplace_back(
      "string-pattern-then-gpt2-regex-with-prefix",
      nlohmann::json{{"type", "Sequence"},
                     {"pretokenizers", {split("the", "MergedWithNext", false, false), byte_level_prefix}}});
  // Oniguruma's ^ and $ are line anchors (Ruby syntax).
  variants.emplace_back(
      "line-anchors",
      nlohmann::json{{"type", "Sequence"},
                     {"pretokenizers", {split(R"(^\s+|\s+$|\d+)", "Removed", false), byte_level_plain}}});
  variants.emplace_back("two-splits",
                        nlohmann::json{{"type", "Sequence"},
                                       {"pretokenizers",
                                        {split(R"(\p{N}+)", "Isolated", false),
                                         split(R"(\s)", "MergedWithPrevious", false), byte_level_plain}}});
  TempDir dir;
  for (const auto& [name, pre_tokenizer] : variants) {
    nlohmann::json json = original;
    json["pre_tokenizer"] = pre_tokenizer;
    if (name == "two-splits") {
      json["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFKC"}}, {{"type", "NFD"}}}}};
      json["decoder"] = nullptr;
    }
    const std::string path = dir.write(name + ".json", json.dump());
    SCOPED_TRACE(name);
    const auto bpe = load_bpe_file(path);
    const auto result = testing::compare_with_hf(*bpe, path, inputs, /*check_decode=*/true);
    std::cout << "[" << name << "] compared " << result.compared << " strings: " << result.id_mismatches
              << " id mismatches, " << result.decode_mismatches << " decode mismatches\n";
  }
}

}  // namespace
}  // namespace disranker
