// BERT WordPiece: hand-derived cases for the normalizer, the pre-tokenizer, the WordPiece model and the
// decoder, then identity with Hugging Face's tokenizers library (tests/oracle) on every code point, on hard
// strings and on every string of the shared data sets, for the uncased and the Chinese BERT vocabularies and
// for tokenizer.json.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "core/utf8.h"
#include "oracle_util.h"
#include "test_util.h"
#include "text/bert_normalizer.h"
#include "text/wordpiece.h"

namespace disranker {
namespace {

using testing::OracleEncoding;
using testing::TempDir;

// ---------------------------------------------------------------------------------------------------------------
// Helpers

std::string u8(char32_t c) {
  std::string s;
  append_utf8(c, s);
  return s;
}

// A string for a failure message: control and non-ASCII bytes escaped, long strings shortened.
std::string printable(std::string_view s, std::size_t max = 300) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b >= 0x20 && b < 0x7F && b != '\\') {
      out.push_back(static_cast<char>(b));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", b);
      out += buf;
    }
  }
  if (s.size() > max) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

template <typename T>
std::string join(const std::vector<T>& items, std::size_t max = 60) {
  std::ostringstream out;
  out << "[";
  for (std::size_t i = 0; i < items.size() && i < max; ++i) out << (i ? " " : "") << items[i];
  if (items.size() > max) out << " ... (" << items.size() << ")";
  out << "]";
  return out.str();
}

std::vector<std::string> tokens_of(const Tokenizer& tokenizer, const std::vector<TokenId>& ids) {
  std::vector<std::string> tokens;
  for (const TokenId id : ids) tokens.emplace_back(tokenizer.id_to_token(id));
  return tokens;
}

// Encodes every input with `ours` and compares with the oracle's ids; reports the first 5 differences
// readably.
void expect_same_ids(const Tokenizer& ours, const std::vector<std::string>& inputs,
                     const std::vector<OracleEncoding>& theirs, const std::string& what) {
  ASSERT_EQ(theirs.size(), inputs.size()) << what << ": the oracle gave no answer";
  std::size_t mismatches = 0;
  std::ostringstream report;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto ids = ours.encode(inputs[i]);
    const std::vector<TokenId> expected(theirs[i].ids.begin(), theirs[i].ids.end());
    if (ids == expected) continue;
    if (++mismatches <= 5) {
      report << "\n#" << i << " \"" << printable(inputs[i]) << "\"\n  ours ids:    " << join(ids)
             << "\n  HF ids:      " << join(expected) << "\n  ours tokens: " << join(tokens_of(ours, ids))
             << "\n  HF tokens:   " << join(theirs[i].tokens);
    }
  }
  std::cout << "[ oracle   ] " << what << ": " << inputs.size() << " strings compared, " << mismatches
            << " mismatches\n";
  EXPECT_EQ(mismatches, 0u) << what << ": " << mismatches << " of " << inputs.size()
                            << " strings tokenize differently; the first ones:" << report.str();
}

void expect_same_decode(const Tokenizer& ours, const std::vector<OracleEncoding>& theirs, bool skip_special,
                        const std::string& what) {
  std::size_t mismatches = 0;
  std::ostringstream report;
  for (std::size_t i = 0; i < theirs.size(); ++i) {
    const std::vector<TokenId> ids(theirs[i].ids.begin(), theirs[i].ids.end());
    const auto text = ours.decode(ids, skip_special);
    if (text == theirs[i].decoded) continue;
    if (++mismatches <= 5) {
      report << "\n#" << i << " ids " << join(ids) << "\n  ours: \"" << printable(text) << "\"\n  HF:   \""
             << printable(theirs[i].decoded) << "\"";
    }
  }
  std::cout << "[ oracle   ] " << what << ": " << theirs.size() << " decodes compared, " << mismatches
            << " mismatches\n";
  EXPECT_EQ(mismatches, 0u) << what << ": " << mismatches << " decodes differ:" << report.str();
}

std::string vocab_file(const std::string& name) {
  const std::string dir = testing::shared_data_dir();
  return dir.empty() ? "" : dir + "/weights/vocab/" + name;
}

#define REQUIRE_SHARED_DATA()                                                                             \
  do {                                                                                                    \
    if (testing::shared_data_dir().empty()) GTEST_SKIP() << "shared data not found (set DISRANKER_DATA)"; \
  } while (0)

// Every query, title and text of the shared sets, read once.
const std::vector<std::string>& all_shared_strings() {
  static const std::vector<std::string> strings =
      testing::shared_strings({"trec-dl19", "trec-dl21", "trec-dl22", "wikiqa-train", "wikiqa-dev",
                               "qbqtc-train", "qbqtc-dev", "cranfield", "cisi"});
  return strings;
}

// A small vocabulary for hand-derived cases, as a vocab.txt.
const char* kSmallVocab =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"              // 0-4
    "un\n##aff\n##able\naff\nable\n"                    // 5-9
    "a\n##a\nb\n##b\n,\n"                               // 10-14
    "!\n.\n'\ns\nhello\n"                               // 15-19
    "##s\n\xc3\xa9\n##\xc3\xa9\nworld\n\xe5\x8c\x97\n"  // 20-24: ##s é ##é world 北
    "\xe4\xba\xac\n";                                   // 25: 京

class WordPieceSmallVocab : public ::testing::Test {
 protected:
  void SetUp() override { path_ = dir_.write("vocab.txt", kSmallVocab); }
  std::unique_ptr<Tokenizer> load(const BertNormalizerOptions& options = {}) {
    return load_wordpiece_vocab(path_, options);
  }
  TempDir dir_;
  std::string path_;
};

// ---------------------------------------------------------------------------------------------------------------
// BertNormalizer, hand-derived

BertNormalizerOptions only(bool clean, bool chinese, bool strip, bool lower) {
  BertNormalizerOptions o;
  o.clean_text = clean;
  o.handle_chinese_chars = chinese;
  o.strip_accents = strip;
  o.lowercase = lower;
  return o;
}

TEST(BertNormalizer, LowercasesAndStripsAccentsByDefault) {
  EXPECT_EQ(BertNormalizer().normalize("Caf\xc3\xa9 \xc3\x91"
                                       "and\xc3\xba"),
            "cafe nandu");
  EXPECT_EQ(BertNormalizer().normalize("cafe\xcc\x81"), "cafe");  // combining acute
}

TEST(BertNormalizer, StripAccentsFollowsLowercaseWhenUnset) {
  BertNormalizerOptions options;
  EXPECT_TRUE(options.strips_accents());
  options.lowercase = false;
  EXPECT_FALSE(options.strips_accents());
  EXPECT_EQ(BertNormalizer(options).normalize("Caf\xc3\xa9"), "Caf\xc3\xa9");
  options.strip_accents = true;
  EXPECT_EQ(BertNormalizer(options).normalize("Caf\xc3\xa9"), "Cafe");
}

TEST(BertNormalizer, KeepsAccentsWhenLowercasingWithStripAccentsOff) {
  EXPECT_EQ(BertNormalizer(only(true, true, false, true)).normalize("CAF\xc3\x89"), "caf\xc3\xa9");
}

TEST(BertNormalizer, LowercasesDottedCapitalIToTwoCharactersAsRustDoes) {
  // U+0130 -> "i" U+0307 (Rust's char::to_lowercase; utf8proc's simple mapping would give "i").
  EXPECT_EQ(BertNormalizer(only(true, true, false, true)).normalize("\xc4\xb0stanbul"), "i\xcc\x87stanbul");
  // With accents stripped, NFD splits off the dot first.
  EXPECT_EQ(BertNormalizer().normalize("\xc4\xb0stanbul"), "istanbul");
}

TEST(BertNormalizer, LowercasesSigmaCharacterByCharacter) {
  // No final-sigma rule: Hugging Face lowercases each character on its own.
  EXPECT_EQ(BertNormalizer().normalize("\xce\xa3\xce\x91\xce\xa3"), "\xcf\x83\xce\xb1\xcf\x83");
}

TEST(BertNormalizer, LeavesHangulDecomposedAfterStrippingAccents) {
  // U+D55C -> U+1112 U+1161 U+11AB: NFD is not recomposed.
  EXPECT_EQ(BertNormalizer().normalize("\xed\x95\x9c"), "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab");
  EXPECT_EQ(BertNormalizer(only(true, true, false, true)).normalize("\xed\x95\x9c"), "\xed\x95\x9c");
}

TEST(BertNormalizer, PadsCjkIdeographsWithSpaces) {
  EXPECT_EQ(BertNormalizer().normalize("\xe5\x8c\x97\xe4\xba\xac"
                                       "abc"),
            " \xe5\x8c\x97  \xe4\xba\xac abc");
  // Hiragana and Hangul are not in the CJK ideograph blocks.
  EXPECT_EQ(BertNormalizer(only(true, true, false, false)).normalize("\xe3\x81\x93"), "\xe3\x81\x93");
  EXPECT_EQ(BertNormalizer(only(true, false, false, false)).normalize("\xe5\x8c\x97"), "\xe5\x8c\x97");
}

TEST(BertNormalizer, RemovesControlCharactersAndMapsWhitespaceToSpace) {
  // \x01 dropped, \t -> ' ', NBSP -> ' ', ZERO WIDTH SPACE (Cf) dropped, U+FFFD dropped, NUL dropped.
  const std::string text = std::string(
                               "a\x01"
                               "b\tc\xc2\xa0"
                               "d\xe2\x80\x8b"
                               "e\xef\xbf\xbd"
                               "f") +
                           '\0' + "g";
  EXPECT_EQ(BertNormalizer(only(true, false, false, false)).normalize(text), "ab c defg");
  // \v and \f are controls to Hugging Face (deleted), not whitespace.
  EXPECT_EQ(BertNormalizer(only(true, false, false, false)).normalize("a\vb\fc"), "abc");
}

TEST(BertNormalizer, KeepsUnassignedCodePointsLikeHuggingFace) {
  // U+0378 is unassigned (Cn): Hugging Face's is_control does not include Cn.
  EXPECT_EQ(BertNormalizer().normalize("a\xcd\xb8"
                                       "b"),
            "a\xcd\xb8"
            "b");
}

TEST(BertNormalizer, ChangesNothingWithEveryOptionOff) {
  const std::string text = "A\x01\t\xe5\x8c\x97 Caf\xc3\xa9 \xef\xbf\xbd";
  EXPECT_EQ(BertNormalizer(only(false, false, false, false)).normalize(text), text);
}

TEST(BertNormalizer, ReplacesInvalidUtf8BeforeNormalizing) {
  // The bad byte becomes U+FFFD, which clean_text deletes.
  EXPECT_EQ(BertNormalizer().normalize("a\xff"
                                       "b"),
            "ab");
  EXPECT_EQ(BertNormalizer(only(false, false, false, false))
                .normalize("a\xff"
                           "b"),
            "a\xef\xbf\xbd"
            "b");
}

TEST(BertNormalizer, OrdersSurvivingCombiningMarksCanonically) {
  // U+1D16D (Mc, class 226) before U+1D165 (Mc, class 216): NFD swaps them; neither is a nonspacing mark.
  EXPECT_EQ(BertNormalizer(only(false, false, true, false)).normalize("x" + u8(0x1D16D) + u8(0x1D165)),
            "x" + u8(0x1D165) + u8(0x1D16D));
}

// ---------------------------------------------------------------------------------------------------------------
// BertPreTokenizer, hand-derived

TEST(WordPieceBertPreTokenizer, SplitsOnWhitespaceAndIsolatesEachPunctuationCharacter) {
  const auto words = bert_pre_tokenize("Hey friend!     How are you?!?");
  EXPECT_EQ(words, (std::vector<std::string_view>{"Hey", "friend", "!", "How", "are", "you", "?", "!", "?"}));
}

TEST(WordPieceBertPreTokenizer, UsesRustWhitespaceAndUnicodePunctuation) {
  // U+0085 NEXT LINE is White_Space (not Zs); U+3001 IDEOGRAPHIC COMMA is Po; '$' and '^' are ASCII
  // punctuation although Unicode calls them symbols; U+00A3 POUND SIGN (Sc) is not punctuation.
  EXPECT_EQ(bert_pre_tokenize("a\xc2\x85"
                              "b"),
            (std::vector<std::string_view>{"a", "b"}));
  EXPECT_EQ(bert_pre_tokenize("a\xe3\x80\x81"
                              "b"),
            (std::vector<std::string_view>{"a", "\xe3\x80\x81", "b"}));
  EXPECT_EQ(bert_pre_tokenize("$5^2"), (std::vector<std::string_view>{"$", "5", "^", "2"}));
  EXPECT_EQ(bert_pre_tokenize("\xc2\xa3"
                              "5"),
            (std::vector<std::string_view>{"\xc2\xa3"
                                           "5"}));
  EXPECT_TRUE(bert_pre_tokenize("  \t ").empty());
}

// ---------------------------------------------------------------------------------------------------------------
// WordPiece, hand-derived

TEST_F(WordPieceSmallVocab, LooksUpTheSpecialTokens) {
  const auto t = load();
  EXPECT_EQ(t->special().pad, 0);
  EXPECT_EQ(t->special().unk, 1);
  EXPECT_EQ(t->special().cls, 2);
  EXPECT_EQ(t->special().sep, 3);
  EXPECT_EQ(t->special().mask, 4);
  EXPECT_EQ(t->kind(), "wordpiece");
  EXPECT_EQ(t->vocab_size(), 26u);
  EXPECT_EQ(t->id_to_token(6), "##aff");
  EXPECT_EQ(t->token_to_id("##able"), 7);
  EXPECT_FALSE(t->token_to_id("nope").has_value());
  EXPECT_EQ(t->id_to_token(26), "");
}

TEST_F(WordPieceSmallVocab, SplitsWordsGreedilyLongestMatchFirstWithContinuingPrefix) {
  const auto t = load();
  EXPECT_EQ(t->encode("unaffable"), (std::vector<TokenId>{5, 6, 7}));    // un ##aff ##able
  EXPECT_EQ(t->encode("aff able"), (std::vector<TokenId>{8, 9}));        // whole words first
  EXPECT_EQ(t->encode("abab"), (std::vector<TokenId>{10, 13, 11, 13}));  // a ##b ##a ##b
}

TEST_F(WordPieceSmallVocab, MakesAWordThatCannotBeCoveredOneUnk) {
  const auto t = load();
  // "x" is nowhere in the vocabulary: the whole word is [UNK], not "un ##aff ##able [UNK]".
  EXPECT_EQ(t->encode("unaffablex"), (std::vector<TokenId>{1}));
  // Unknown in the middle, and a word that starts with a continuing-only piece.
  EXPECT_EQ(t->encode("unxable"), (std::vector<TokenId>{1}));
  EXPECT_EQ(t->encode("able unxable a"), (std::vector<TokenId>{9, 1, 10}));
}

TEST_F(WordPieceSmallVocab, MakesAWordOfMoreThanMaxInputCharactersOneUnk) {
  const auto t = load();
  std::vector<TokenId> hundred(100, 11);
  hundred[0] = 10;
  EXPECT_EQ(t->encode(std::string(100, 'a')), hundred);
  EXPECT_EQ(t->encode(std::string(101, 'a') + " b"), (std::vector<TokenId>{1, 12}));
}

TEST_F(WordPieceSmallVocab, CountsCharactersNotBytesForTheLengthLimit) {
  const auto t = load(only(true, true, false, false));  // keep the accent
  std::string word;
  for (int i = 0; i < 100; ++i) word += "\xc3\xa9";  // 100 characters, 200 bytes
  std::vector<TokenId> expected(100, 22);
  expected[0] = 21;
  EXPECT_EQ(t->encode(word), expected);
  EXPECT_EQ(t->encode(word + "\xc3\xa9"), (std::vector<TokenId>{1}));
}

TEST_F(WordPieceSmallVocab, IsolatesPunctuationAndPadsChineseBeforeWordPiece) {
  const auto t = load();
  EXPECT_EQ(t->encode("Hello, World!"), (std::vector<TokenId>{19, 14, 23, 15}));
  EXPECT_EQ(t->encode("\xe5\x8c\x97\xe4\xba\xac"), (std::vector<TokenId>{24, 25}));  // 北京 -> 北 京
}

TEST_F(WordPieceSmallVocab, StripsAccentsBeforeLookingUpPieces) {
  const auto t = load();
  EXPECT_EQ(t->encode("\xc3\x81"
                      "B"),
            (std::vector<TokenId>{10, 13}));  // "ÁB" -> a ##b
}

TEST_F(WordPieceSmallVocab, RemovesControlCharactersBeforeSplitting) {
  const auto t = load();
  EXPECT_EQ(t->encode("a\x01"
                      "b\xe2\x80\x8b"),
            (std::vector<TokenId>{10, 13}));                         // "ab"
  EXPECT_EQ(t->encode("a\x7f\tb"), (std::vector<TokenId>{10, 12}));  // \t separates
}

TEST_F(WordPieceSmallVocab, DecodesPiecesGluedAndPunctuationCleanedUp) {
  const auto t = load();
  // un ##aff ##able , a ' s !  -> "unaffable, a's!"
  const std::vector<TokenId> ids = {5, 6, 7, 14, 10, 17, 18, 15};
  EXPECT_EQ(t->decode(ids), "unaffable, a ' s!");  // " ' " is cleaned up only inside one piece, as HF does
  EXPECT_EQ(t->decode(std::vector<TokenId>{19, 16, 23}), "hello. world");
  EXPECT_EQ(t->decode(std::vector<TokenId>{11, 10}), "##a a");  // a first "##" piece keeps its prefix
}

TEST_F(WordPieceSmallVocab, DecodeLeavesOutSpecialTokensWhenAskedAndSkipsUnknownIds) {
  const auto t = load();
  const std::vector<TokenId> ids = {2, 19, 1, 3, 99, -1};
  EXPECT_EQ(t->decode(ids), "hello");
  EXPECT_EQ(t->decode(ids, /*skip_special=*/false), "[CLS] hello [UNK] [SEP]");
}

TEST_F(WordPieceSmallVocab, TokenizesSpecialTokenTextAsTextFromAVocabTxt) {
  // The vocab.txt pipeline has no added tokens (like tests/oracle/hf_encode.js): "[CLS]" is "[", "cls", "]".
  const auto t = load();
  EXPECT_EQ(t->encode("[CLS]").size(), 3u);
}

TEST(WordPieceVocab, ReadsOneTokenPerLineTrimmingTrailingWhitespaceAndLaterDuplicatesWin) {
  TempDir dir;
  const auto path = dir.write("vocab.txt", "[UNK]\r\nx  \ny\nx\n\n");
  const auto vocab = read_wordpiece_vocab(path);
  ASSERT_EQ(vocab.size(), 5u);
  EXPECT_EQ(vocab[0].first, "[UNK]");
  EXPECT_EQ(vocab[1].first, "x");
  EXPECT_EQ(vocab[4].first, "");
  const auto t = load_wordpiece_vocab(path, {});
  EXPECT_EQ(t->token_to_id("x"), 3);
  EXPECT_EQ(t->encode("x"), (std::vector<TokenId>{3}));
  EXPECT_EQ(t->id_to_token(1), "");  // shadowed by the later "x", as in Hugging Face's reverse vocabulary
}

TEST(WordPieceVocab, RejectsAMissingFileAndAVocabularyWithoutUnk) {
  EXPECT_THROW(load_wordpiece_vocab("/nonexistent/vocab.txt", {}), Error);
  TempDir dir;
  const auto path = dir.write("vocab.txt", "a\nb\n");
  try {
    load_wordpiece_vocab(path, {});
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[UNK]"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// tokenizer.json, hand-derived

nlohmann::json bert_json(const std::vector<std::pair<std::string, TokenId>>& vocab) {
  nlohmann::json v = nlohmann::json::object();
  for (const auto& [token, id] : vocab) v[token] = id;
  nlohmann::json added = nlohmann::json::array();
  for (const char* special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    if (!v.contains(special)) continue;
    added.push_back({{"id", v[special]},
                     {"content", special},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer",
           {{"type", "BertNormalizer"},
            {"clean_text", true},
            {"handle_chinese_chars", true},
            {"strip_accents", nullptr},
            {"lowercase", true}}},
          {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
          {"model",
           {{"type", "WordPiece"},
            {"unk_token", "[UNK]"},
            {"continuing_subword_prefix", "##"},
            {"max_input_chars_per_word", 100},
            {"vocab", v}}}};
}

std::vector<std::pair<std::string, TokenId>> small_vocab() {
  std::vector<std::pair<std::string, TokenId>> vocab;
  std::istringstream in(kSmallVocab);
  TokenId id = 0;
  for (std::string line; std::getline(in, line);) vocab.emplace_back(line, id++);
  return vocab;
}

TEST(WordPieceJson, MatchesAddedSpecialTokensInTheRawText) {
  const auto t = load_wordpiece_json(bert_json(small_vocab()), "tokenizer.json");
  EXPECT_EQ(t->encode("[CLS] hello [SEP]"), (std::vector<TokenId>{2, 19, 3}));
  EXPECT_EQ(t->encode("[cls]").size(), 3u);  // not normalized: the lowercase text is not the token
  EXPECT_EQ(t->decode(std::vector<TokenId>{2, 19, 3}), "hello");
}

TEST(WordPieceJson, RejectsUnsupportedComponentsNamingTheFileAndField) {
  auto json = bert_json(small_vocab());
  json["normalizer"] = {{"type", "NFKC"}};
  try {
    load_wordpiece_json(json, "model/tokenizer.json");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.file(), "model/tokenizer.json");
    EXPECT_EQ(e.field(), "normalizer.type");
    EXPECT_NE(std::string(e.what()).find("NFKC"), std::string::npos) << e.what();
  }
  json = bert_json(small_vocab());
  json["pre_tokenizer"] = {{"type", "Whitespace"}};
  EXPECT_THROW(load_wordpiece_json(json, "tokenizer.json"), Error);
  json = bert_json(small_vocab());
  json["decoder"] = {{"type", "ByteLevel"}};
  EXPECT_THROW(load_wordpiece_json(json, "tokenizer.json"), Error);
  json = bert_json(small_vocab());
  json["model"]["vocab"]["bad"] = "x";
  EXPECT_THROW(load_wordpiece_json(json, "tokenizer.json"), Error);
  json = bert_json(small_vocab());
  json["model"]["unk_token"] = "<unk>";
  EXPECT_THROW(load_wordpiece_json(json, "tokenizer.json"), Error);
}

// ---------------------------------------------------------------------------------------------------------------
// Identity with Hugging Face

// Runs tests/oracle/hf_bert_unicode.js with `args` and `stdin_text`; returns its stdout.
std::string run_unicode_probe(const std::string& args, const std::string& stdin_text = "") {
  TempDir dir;
  const auto in = dir.write("in.txt", stdin_text);
  const auto out = (dir.path() / "out.json").string();
  const std::string command = "node '" + std::string(DISRANKER_SOURCE_DIR) +
                              "/tests/oracle/hf_bert_unicode.js' " + args + " < '" + in + "' > '" + out + "'";
  if (std::system(command.c_str()) != 0) {
    ADD_FAILURE() << "oracle failed: " << command;
    return "";
  }
  std::ifstream file(out);
  std::stringstream buffer;
  buffer << file.rdbuf();
  return buffer.str();
}

std::string base64(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned value = 0;
  int bits = 0;
  for (const char ch : bytes) {
    value = (value << 8) | static_cast<unsigned char>(ch);
    bits += 8;
    while (bits >= 6) out.push_back(alphabet[(value >> (bits -= 6)) & 63]);
  }
  if (bits > 0) out.push_back(alphabet[(value << (6 - bits)) & 63]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

std::u32string code_points(const std::string& s) {
  std::u32string out;
  for (std::size_t pos = 0; pos < s.size();) out.push_back(next_code_point(s, pos));
  return out;
}

TEST(BertNormalizerOracle, MatchesHuggingFaceOnEveryCodePoint) {
  const std::string text = run_unicode_probe("");
  ASSERT_FALSE(text.empty());
  const auto hf = nlohmann::json::parse(text);
  auto as_set = [](const nlohmann::json& list) {
    std::vector<bool> set(0x110000, false);
    for (const auto& cp : list) set[cp.get<std::uint32_t>()] = true;
    return set;
  };
  auto as_map = [](const nlohmann::json& object) {
    std::unordered_map<char32_t, std::u32string> map;
    for (const auto& [key, value] : object.items()) {
      std::u32string s;
      for (const auto& cp : value) s.push_back(cp.get<char32_t>());
      map[static_cast<char32_t>(std::stoul(key))] = s;
    }
    return map;
  };
  const auto removed = as_set(hf["removed"]), space = as_set(hf["space"]), chinese = as_set(hf["chinese"]);
  const auto whitespace = as_set(hf["whitespace"]), punctuation = as_set(hf["punctuation"]);
  const auto strip = as_map(hf["strip"]), lower = as_map(hf["lower"]);
  const BertNormalizer clean_only(only(true, false, false, false)),
      chinese_only(only(false, true, false, false));
  const BertNormalizer strip_only(only(false, false, true, false)),
      lower_only(only(false, false, false, true));

  std::size_t checked = 0;
  std::map<std::string, std::vector<std::string>> differences;
  auto differ = [&](const char* what, char32_t c, const std::string& detail) {
    auto& list = differences[what];
    if (list.size() < 5) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(c));
      list.push_back(buf + (" " + detail));
    } else {
      list.push_back("");
    }
  };
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    ++checked;
    const std::string s = u8(c);
    const std::string clean = clean_only.normalize("x" + s + "x");
    const std::string expected_clean = removed[c] ? "xx" : space[c] ? "x x" : "x" + s + "x";
    if (clean != expected_clean) differ("clean_text", c, "ours \"" + printable(clean) + "\"");
    if ((chinese_only.normalize(s) != s) != chinese[c]) differ("handle_chinese_chars", c, "");
    const auto stripped = code_points(strip_only.normalize(s));
    const auto expected_strip = strip.count(c) ? strip.at(c) : std::u32string(1, c);
    if (stripped != expected_strip)
      differ("strip_accents", c, "ours \"" + printable(strip_only.normalize(s)) + "\"");
    const auto lowered = code_points(lower_only.normalize(s));
    const auto expected_lower = lower.count(c) ? lower.at(c) : std::u32string(1, c);
    if (lowered != expected_lower)
      differ("lowercase", c, "ours \"" + printable(lower_only.normalize(s)) + "\"");
    const auto words = bert_pre_tokenize("x" + s + "x");
    const bool is_space = words.size() == 2, is_punct = words.size() == 3;
    if (is_space != whitespace[c] || is_punct != punctuation[c]) differ("pre-tokenizer", c, "");
  }
  std::cout << "[ oracle   ] BertNormalizer and BertPreTokenizer: " << checked << " code points compared\n";
  for (const auto& [what, list] : differences) {
    ADD_FAILURE() << what << ": " << list.size() << " code points differ from Hugging Face, e.g. "
                  << join(std::vector<std::string>(list.begin(),
                                                   list.begin() + std::min<std::size_t>(5, list.size())));
  }
}

TEST(BertNormalizerOracle, MatchesHuggingFaceOnCombiningSequencesAndHardStrings) {
  // Sequences where canonical reordering matters, marks newer than Hugging Face's Unicode tables, Hangul, and
  // the shared hard strings; each through the four single-option normalizers and the default one.
  std::vector<std::string> inputs = testing::adversarial_strings();
  const char32_t marks[] = {0x0301,  0x0316, 0x0345, 0x05B0, 0x0334, 0x1D165, 0x1D16D,
                            0x1D167, 0x0F72, 0x0F71, 0x1DF6, 0x1AB0, 0x1ABF,  0x0C3C,
                            0x093C,  0x0903, 0x20DD, 0x3099, 0x302A, 0x0E38};
  for (const char32_t a : marks) {
    for (const char32_t b : marks) {
      inputs.push_back("e" + u8(a) + u8(b) + "Z" + u8(b) + u8(a) + u8(0x0345));
    }
  }
  inputs.push_back("\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4 \xe1\x84\x92\xe1\x85\xa1 " + u8(0x11938) +
                   u8(0xF900) + u8(0x2F800) + u8(0x0130) + u8(0x1E9E) + u8(0x2126) + u8(0x212B) + u8(0x1F88));
  const auto& shared = all_shared_strings();
  for (std::size_t i = 0; i < shared.size(); i += 50) inputs.push_back(shared[i]);

  std::string in;
  for (const auto& s : inputs) in += base64(s) + "\n";
  const std::string text = run_unicode_probe("--normalize", in);
  std::istringstream lines(text);
  const BertNormalizer normalizers[] = {BertNormalizer(only(true, false, false, false)),
                                        BertNormalizer(only(false, true, false, false)),
                                        BertNormalizer(only(false, false, true, false)),
                                        BertNormalizer(only(false, false, false, true)), BertNormalizer()};
  const char* names[] = {"clean", "chinese", "strip", "lower", "bert"};
  std::size_t i = 0, mismatches = 0;
  for (std::string line; std::getline(lines, line); ++i) {
    ASSERT_LT(i, inputs.size());
    const auto hf = nlohmann::json::parse(line);
    for (int k = 0; k < 5; ++k) {
      const std::string ours = normalizers[k].normalize(inputs[i]);
      const std::string theirs = hf[names[k]].get<std::string>();
      if (ours != theirs && ++mismatches <= 5) {
        ADD_FAILURE() << names[k] << " on \"" << printable(inputs[i]) << "\":\n  ours \"" << printable(ours)
                      << "\"\n  HF   \"" << printable(theirs) << "\"";
      }
    }
  }
  EXPECT_EQ(i, inputs.size());
  EXPECT_EQ(mismatches, 0u);
  std::cout << "[ oracle   ] BertNormalizer: " << inputs.size() << " strings x 5 option sets compared, "
            << mismatches << " mismatches\n";
}

TEST(WordPieceOracle, UncasedVocabMatchesHuggingFaceOnAdversarialStrings) {
  REQUIRE_SHARED_DATA();
  const auto path = vocab_file("bert-base-uncased-vocab.txt");
  const auto ours = load_wordpiece_vocab(path, {});
  auto inputs = testing::adversarial_strings();
  inputs.push_back(
      "\xc4\xb0"
      "stanbul \xc3\x9f \xef\xac\x81 \xe2\x84\xab");
  const auto theirs = testing::hf_encode(path, inputs, /*decode=*/true);
  expect_same_ids(*ours, inputs, theirs, "bert-base-uncased, adversarial strings");
  // The oracle's vocab.txt pipeline has no special tokens, so its decode keeps them all.
  expect_same_decode(*ours, theirs, /*skip_special=*/false, "bert-base-uncased decode, adversarial strings");
}

TEST(WordPieceOracle, UncasedVocabMatchesHuggingFaceOnAllSharedStrings) {
  REQUIRE_SHARED_DATA();
  const auto path = vocab_file("bert-base-uncased-vocab.txt");
  const auto ours = load_wordpiece_vocab(path, {});
  const auto& inputs = all_shared_strings();
  ASSERT_GT(inputs.size(), 100000u);
  const auto theirs = testing::hf_encode(path, inputs);
  expect_same_ids(*ours, inputs, theirs, "bert-base-uncased, all shared strings");
}

TEST(WordPieceOracle, UncasedVocabDecodesLikeHuggingFace) {
  REQUIRE_SHARED_DATA();
  const auto path = vocab_file("bert-base-uncased-vocab.txt");
  const auto ours = load_wordpiece_vocab(path, {});
  const auto& shared = all_shared_strings();
  std::vector<std::string> inputs;
  for (std::size_t i = 0; i < shared.size(); i += 10) inputs.push_back(shared[i]);
  const auto theirs = testing::hf_encode(path, inputs, /*decode=*/true);
  expect_same_decode(*ours, theirs, /*skip_special=*/false,
                     "bert-base-uncased decode, every 10th shared string");
}

TEST(WordPieceOracle, CasedPipelineMatchesHuggingFace) {
  REQUIRE_SHARED_DATA();
  const auto path = vocab_file("bert-base-uncased-vocab.txt");
  BertNormalizerOptions cased;
  cased.lowercase = false;
  const auto ours = load_wordpiece_vocab(path, cased);
  auto inputs = testing::adversarial_strings();
  const auto& shared = all_shared_strings();
  for (std::size_t i = 0; i < shared.size(); i += 5) inputs.push_back(shared[i]);
  const auto theirs = testing::hf_encode(path, inputs, false, "--cased");
  expect_same_ids(*ours, inputs, theirs, "lowercase=false on the uncased vocab, every 5th shared string");
}

TEST(WordPieceOracle, ChineseVocabMatchesHuggingFaceOnAdversarialAndAllSharedStrings) {
  REQUIRE_SHARED_DATA();
  const auto path = vocab_file("bert-base-chinese-vocab.txt");
  const auto ours =
      load_wordpiece_vocab(path, {});  // lowercase, Hugging Face's default for bert-base-chinese
  auto inputs = testing::adversarial_strings();
  const auto& shared = all_shared_strings();
  inputs.insert(inputs.end(), shared.begin(), shared.end());
  const auto theirs = testing::hf_encode(path, inputs);
  expect_same_ids(*ours, inputs, theirs, "bert-base-chinese, adversarial + all shared strings");
}

// tokenizer.json files written here and read by both libraries.
class WordPieceJsonOracle : public ::testing::Test {
 protected:
  void check(const nlohmann::json& json, const std::vector<std::string>& inputs, const std::string& what) {
    const auto path = dir_.write("tokenizer.json", json.dump());
    const auto ours = load_wordpiece_json(json, path);
    const auto theirs = testing::hf_encode(path, inputs, /*decode=*/true);
    expect_same_ids(*ours, inputs, theirs, what);
    expect_same_decode(*ours, theirs, /*skip_special=*/true, what + " (decode)");
  }
  std::vector<std::string> inputs() const {
    auto inputs = testing::adversarial_strings();
    for (const char* s : {"[CLS] Hello World [SEP]", "x [MASK] y", "x[MASK]y", "[MASK][MASK] [mask]",
                          "hello world!", "Hello   World", "foo food afoo foo. _foo foo_", "a<rs>   b <rs>",
                          "  [SEP]  ", "[PAD][UNK]", "\xe5\x8c\x97[SEP]\xe4\xba\xac", "don't do not I'm"}) {
      inputs.push_back(s);
    }
    const auto& shared = all_shared_strings();
    for (std::size_t i = 0; i < shared.size(); i += 20) inputs.push_back(shared[i]);
    return inputs;
  }
  std::vector<std::pair<std::string, TokenId>> uncased() const {
    return read_wordpiece_vocab(vocab_file("bert-base-uncased-vocab.txt"));
  }
  TempDir dir_;
};

TEST_F(WordPieceJsonOracle, BertStyleTokenizerJsonMatchesHuggingFace) {
  REQUIRE_SHARED_DATA();
  check(bert_json(uncased()), inputs(), "tokenizer.json (bert-base-uncased, special added tokens)");
}

TEST_F(WordPieceJsonOracle, AddedTokenOptionsAndNormalizerOptionsMatchHuggingFace) {
  REQUIRE_SHARED_DATA();
  auto json = bert_json(uncased());
  json["normalizer"] = {{"type", "BertNormalizer"},
                        {"clean_text", true},
                        {"handle_chinese_chars", false},
                        {"strip_accents", false},
                        {"lowercase", true}};
  json["decoder"]["cleanup"] = false;
  for (auto& token : json["added_tokens"]) {
    if (token["content"] == "[MASK]") token["lstrip"] = true;
  }
  json["added_tokens"].push_back({{"id", 30522},
                                  {"content", "hello world"},
                                  {"single_word", false},
                                  {"lstrip", false},
                                  {"rstrip", false},
                                  {"normalized", true},
                                  {"special", false}});
  json["added_tokens"].push_back({{"id", 30523},
                                  {"content", "foo"},
                                  {"single_word", true},
                                  {"lstrip", false},
                                  {"rstrip", false},
                                  {"normalized", false},
                                  {"special", false}});
  json["added_tokens"].push_back({{"id", 30524},
                                  {"content", "<rs>"},
                                  {"single_word", false},
                                  {"lstrip", false},
                                  {"rstrip", true},
                                  {"normalized", false},
                                  {"special", true}});
  check(json, inputs(),
        "tokenizer.json (lowercase without strip_accents, lstrip/rstrip/single_word/normalized)");
}

TEST_F(WordPieceJsonOracle, NoNormalizerNoDecoderAndCustomModelOptionsMatchHuggingFace) {
  REQUIRE_SHARED_DATA();
  auto json = bert_json(uncased());
  json["normalizer"] = nullptr;
  json["decoder"] = nullptr;
  json["model"]["max_input_chars_per_word"] = 8;
  check(json, inputs(), "tokenizer.json (no normalizer, no decoder, max 8 characters per word)");
}

}  // namespace
}  // namespace disranker
