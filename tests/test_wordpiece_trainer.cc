// The WordPiece vocabulary trainer: hand-derived merges, the layout of the vocabulary, determinism, and that
// what it writes is a vocab.txt that Hugging Face's library loads and tokenizes with exactly as DisRanker
// does.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/utf8.h"
#include "oracle_util.h"
#include "test_util.h"
#include "text/bert_normalizer.h"
#include "text/wordpiece.h"
#include "text/wordpiece_trainer.h"

namespace disranker {
namespace {

using testing::TempDir;

const std::vector<std::string> kSpecials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

WordPieceTrainerOptions options(std::size_t vocab_size, std::uint64_t min_frequency = 1) {
  WordPieceTrainerOptions o;
  o.vocab_size = vocab_size;
  o.min_frequency = min_frequency;
  return o;
}

std::vector<std::string> tail(const std::vector<std::string>& vocab, std::size_t from) {
  return std::vector<std::string>(vocab.begin() + static_cast<std::ptrdiff_t>(from), vocab.end());
}

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> texts = {
      "The quick brown fox jumps over the lazy dog.",
      "Hugging Face's tokenizers: WordPiece, BPE and Unigram!",
      "Caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 \xe2\x80\x94 accents are stripped.",
      "\xe5\x8c\x97\xe4\xba\xac\xe5\xa4\xa7\xe5\xad\xa6 is in Beijing; \xe6\xb8\x85\xe5\x8d\x8e too.",
      "search ranking, searching rankers, ranked searches",
      "distilling large language models into BERT for web search ranking",
  };
  return texts;
}

TEST(WordPieceTrainer, PutsTheSpecialTokensFirstInTheStandardOrder) {
  const auto vocab = train_wordpiece(corpus(), options(200));
  ASSERT_GE(vocab.size(), 5u);
  EXPECT_EQ(std::vector<std::string>(vocab.begin(), vocab.begin() + 5), kSpecials);
}

TEST(WordPieceTrainer, ContainsTheAlphabetAsWordStartsAndContinuations) {
  const auto vocab = train_wordpiece(corpus(), options(200));
  const std::set<std::string> tokens(vocab.begin(), vocab.end());
  const BertNormalizer normalizer;
  for (const auto& text : corpus()) {
    const std::string normalized = normalizer.normalize(text);
    for (const auto word : bert_pre_tokenize(normalized)) {
      std::size_t pos = 0;
      while (pos < word.size()) {
        const bool first = pos == 0;
        const std::size_t start = pos;
        next_code_point(word, pos);
        const std::string c(word.substr(start, pos - start));
        EXPECT_TRUE(tokens.count(c)) << "missing character '" << c << "'";
        if (!first) {
          EXPECT_TRUE(tokens.count("##" + c)) << "missing continuation '##" << c << "'";
        }
      }
    }
  }
  // The alphabet comes right after the specials, in code point order: "!" is the smallest character here.
  EXPECT_EQ(vocab[5], "!");
}

TEST(WordPieceTrainer, MergesTheMostFrequentPairFirst) {
  // Words: ab x3, ac x1. Vocabulary: specials, a b c, ##b ##c, then "ab" (3) before "ac" (1).
  const auto vocab = train_wordpiece({"ab ab ab ac"}, options(100));
  EXPECT_EQ(tail(vocab, 5), (std::vector<std::string>{"a", "b", "c", "##b", "##c", "ab", "ac"}));
}

TEST(WordPieceTrainer, BreaksTiesTowardsTheSmallerPairOfIds) {
  // xab, yab: (##a, ##b) occurs twice, so "##ab" comes first; then (x, ##ab) and (y, ##ab) tie at 1 and x <
  // y.
  EXPECT_EQ(tail(train_wordpiece({"xab yab"}, options(100)), 5),
            (std::vector<std::string>{"a", "b", "x", "y", "##a", "##b", "##ab", "xab", "yab"}));
  // xab twice: (x, ##a) and (##a, ##b) tie at 2; (x, ##a) has the smaller ids ("x" < "##a"), then "xab".
  EXPECT_EQ(tail(train_wordpiece({"xab xab"}, options(100)), 5),
            (std::vector<std::string>{"a", "b", "x", "##a", "##b", "xa", "xab"}));
}

TEST(WordPieceTrainer, StopsAtTheVocabularySizeOrTheMinimumFrequency) {
  const auto big = train_wordpiece(corpus(), options(100000));
  for (const std::size_t size : {std::size_t{120}, std::size_t{150}}) {
    ASSERT_GT(big.size(), size);
    const auto vocab = train_wordpiece(corpus(), options(size));
    EXPECT_EQ(vocab.size(), size);
    // A smaller target is a prefix of a larger one: merges are greedy.
    EXPECT_EQ(vocab, std::vector<std::string>(big.begin(), big.begin() + static_cast<std::ptrdiff_t>(size)));
  }
  // No pair occurs a million times: only the specials and the alphabet.
  const auto none = train_wordpiece(corpus(), options(100000, 1000000));
  EXPECT_TRUE(std::none_of(none.begin() + 5, none.end(), [](const std::string& t) {
    std::size_t pos = t.rfind("##", 0) == 0 ? 2 : 0;
    next_code_point(t, pos);
    return pos != t.size();  // more than one character
  }));
}

TEST(WordPieceTrainer, KeepsTheMostFrequentCharactersWhenTheAlphabetIsLimited) {
  auto o = options(100);
  o.limit_alphabet = 2;
  // a: 3, b: 3, c: 1 -> alphabet a, b; "c" is left out everywhere ("bc" becomes the one-symbol word "b").
  // Pairs (a, ##a), (##a, ##b), (a, ##b) all occur once: the smallest ids first, so "aa", then "ab", then
  // "aab".
  const auto vocab = train_wordpiece({"aab ab bc"}, o);
  EXPECT_EQ(tail(vocab, 5), (std::vector<std::string>{"a", "b", "##a", "##b", "aa", "ab", "aab"}));
}

TEST(WordPieceTrainer, IsDeterministicWhateverTheOrderOfTheTexts) {
  auto texts = corpus();
  const auto first = train_wordpiece(texts, options(180));
  std::reverse(texts.begin(), texts.end());
  EXPECT_EQ(train_wordpiece(texts, options(180)), first);
  WordPieceTrainer trainer(options(180));
  for (const auto& t : texts) trainer.feed(t);
  EXPECT_EQ(trainer.train(), first);
  EXPECT_EQ(trainer.train(), first);  // train() does not consume the counts
}

TEST(WordPieceTrainer, TrainsFromFilesLineByLine) {
  TempDir dir;
  std::string text;
  for (const auto& t : corpus()) text += t + "\n";
  const auto path = dir.write("corpus.txt", text);
  EXPECT_EQ(train_wordpiece_files({path}, options(150)), train_wordpiece(corpus(), options(150)));
  EXPECT_THROW(train_wordpiece_files({(dir.path() / "missing.txt").string()}, options(150)), Error);
}

TEST(WordPieceTrainer, WritesAVocabTxtThatLoadsBack) {
  TempDir dir;
  const auto vocab = train_wordpiece(corpus(), options(150));
  const auto path = (dir.path() / "vocab.txt").string();
  write_wordpiece_vocab(path, vocab);
  const auto read = read_wordpiece_vocab(path);
  ASSERT_EQ(read.size(), vocab.size());
  for (std::size_t i = 0; i < vocab.size(); ++i) EXPECT_EQ(read[i].first, vocab[i]);
  const auto tokenizer = load_wordpiece_vocab(path, {});
  EXPECT_EQ(tokenizer->special().unk, 1);
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("Searching rankers!")), "searching rankers!");
  // No temporary file is left beside it, and a missing directory is an Error that leaves nothing behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
  EXPECT_THROW(write_wordpiece_vocab((dir.path() / "no" / "vocab.txt").string(), vocab), Error);
  EXPECT_THROW(write_wordpiece_vocab(path, {"[UNK]", "a\nb"}), Error);
}

// ---------------------------------------------------------------------------------------------------------------
// With Hugging Face

std::string write_lines(const TempDir& dir, const std::string& name, const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) {
    std::string clean = line;
    std::replace(clean.begin(), clean.end(), '\n', ' ');
    std::replace(clean.begin(), clean.end(), '\r', ' ');
    text += clean + "\n";
  }
  return dir.write(name, text);
}

TEST(WordPieceTrainerOracle, TrainedVocabTokenizesSharedStringsLikeHuggingFace) {
  if (testing::shared_data_dir().empty()) GTEST_SKIP() << "shared data not found (set DISRANKER_DATA)";
  const auto train_texts = testing::shared_strings({"wikiqa-train", "cranfield", "qbqtc-train"});
  auto o = options(8000, 2);
  const auto start = std::chrono::steady_clock::now();
  const auto vocab = train_wordpiece(train_texts, o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[ trainer  ] " << train_texts.size() << " texts -> " << vocab.size() << " tokens in "
            << seconds << " s\n";
  ASSERT_EQ(vocab.size(), 8000u);
  TempDir dir;
  const auto path = (dir.path() / "vocab.txt").string();
  write_wordpiece_vocab(path, vocab);

  const auto ours = load_wordpiece_vocab(path, {});
  auto inputs = testing::adversarial_strings();
  const auto held_out = testing::shared_strings({"wikiqa-dev", "qbqtc-dev", "cisi", "trec-dl19"});
  inputs.insert(inputs.end(), held_out.begin(), held_out.end());
  const auto theirs = testing::hf_encode(path, inputs);
  ASSERT_EQ(theirs.size(), inputs.size());
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto ids = ours->encode(inputs[i]);
    const std::vector<TokenId> expected(theirs[i].ids.begin(), theirs[i].ids.end());
    if (ids != expected && ++mismatches <= 5) {
      ADD_FAILURE() << "string #" << i << " tokenizes differently with the trained vocabulary";
    }
  }
  std::cout << "[ oracle   ] trained vocab: " << inputs.size() << " strings compared, " << mismatches
            << " mismatches\n";
  EXPECT_EQ(mismatches, 0u);
}

TEST(WordPieceTrainerOracle, LearnsTheSameVocabularyAsHuggingFaceUpToTieBreaking) {
  if (testing::shared_data_dir().empty()) GTEST_SKIP() << "shared data not found (set DISRANKER_DATA)";
  TempDir dir;
  const auto texts = testing::shared_strings({"cranfield", "cisi"});
  const auto corpus_path = write_lines(dir, "corpus.txt", texts);
  const auto hf_path = (dir.path() / "hf_vocab.txt").string();
  const std::string command = "node '" + std::string(DISRANKER_SOURCE_DIR) +
                              "/tests/oracle/hf_train_wordpiece.js' --out '" + hf_path + "' '" + corpus_path +
                              "' > /dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  std::vector<std::string> hf;
  {
    std::ifstream in(hf_path);
    for (std::string line; std::getline(in, line);) hf.push_back(line);
  }
  // Hugging Face's defaults for Tokenizer.train: vocab 30000, min_frequency 0, no specials, no alphabet
  // limit.
  WordPieceTrainerOptions o;
  o.vocab_size = 30000;
  o.min_frequency = 0;
  o.limit_alphabet = 0;
  o.special_tokens.clear();
  const auto ours = train_wordpiece_files({corpus_path}, o);
  const std::set<std::string> a(hf.begin(), hf.end()), b(ours.begin(), ours.end());
  std::vector<std::string> only_hf, only_ours;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only_hf));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(only_ours));
  std::cout << "[ oracle   ] HF WordPieceTrainer: " << hf.size() << " tokens, ours " << ours.size() << "; "
            << only_hf.size() << " only in HF, " << only_ours.size() << " only in ours\n";
  // Hugging Face's own runs differ by about 0.2% here (ties between pairs of equal count follow hash-map
  // order).
  EXPECT_LT(static_cast<double>(only_hf.size() + only_ours.size()), 0.01 * static_cast<double>(hf.size()));
  // The specials-free vocabulary starts with the same alphabet, in code point order.
  ASSERT_GT(hf.size(), 20u);
  ASSERT_GT(ours.size(), 20u);
  EXPECT_EQ(std::vector<std::string>(hf.begin(), hf.begin() + 20),
            std::vector<std::string>(ours.begin(), ours.begin() + 20));
}

TEST(WordPieceTrainerOracle, TrainsA30kVocabularyOnTwentyMegabytesOfSharedTextInSeconds) {
  if (testing::shared_data_dir().empty()) GTEST_SKIP() << "shared data not found (set DISRANKER_DATA)";
  const auto texts = testing::shared_strings(
      {"trec-dl19", "trec-dl21", "trec-dl22", "wikiqa-train", "wikiqa-dev", "cranfield", "cisi"});
  std::size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();
  ASSERT_GT(bytes, 15u << 20);
  const auto start = std::chrono::steady_clock::now();
  WordPieceTrainer trainer(options(30000, 2));
  for (const auto& t : texts) trainer.feed(t);
  const auto counted = std::chrono::steady_clock::now();
  const auto vocab = trainer.train();
  const auto end = std::chrono::steady_clock::now();
  const double count_s = std::chrono::duration<double>(counted - start).count();
  const double merge_s = std::chrono::duration<double>(end - counted).count();
  std::cout << "[ trainer  ] " << static_cast<double>(bytes) / 1e6 << " MB, " << trainer.word_types()
            << " distinct words -> " << vocab.size() << " tokens: counting " << count_s << " s, merging "
            << merge_s << " s\n";
  EXPECT_EQ(vocab.size(), 30000u);
  EXPECT_LT(count_s + merge_s, 60.0);
}

}  // namespace
}  // namespace disranker
