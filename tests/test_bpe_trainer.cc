// The byte-level BPE trainer (text/bpe_trainer.h): a hand-derived example, the same vocabulary and merges as
// Hugging Face's BpeTrainer on the shared text, and a trained tokenizer.json that Hugging Face loads and that
// tokenizes every shared string identically in both libraries.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bpe_test_util.h"
#include "core/error.h"
#include "core/utf8.h"
#include "text/bpe.h"
#include "text/bpe_trainer.h"
#include "text/byte_level.h"

namespace disranker {
namespace {

using testing::TempDir;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Vocabulary (token -> id) and merges of a tokenizer.json, for comparing two files.
struct ModelContent {
  std::map<std::string, int> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
};

ModelContent model_content(const std::string& path) {
  const auto json = nlohmann::json::parse(read_file(path));
  ModelContent content;
  for (const auto& [token, id] : json.at("model").at("vocab").items()) content.vocab[token] = id.get<int>();
  for (const auto& merge : json.at("model").at("merges")) {
    if (merge.is_string()) {
      const auto text = merge.get<std::string>();
      const auto space = text.find(' ');
      content.merges.emplace_back(text.substr(0, space), text.substr(space + 1));
    } else {
      content.merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
    }
  }
  return content;
}

BpeTrainerOptions hf_default_options(std::size_t vocab_size) {
  BpeTrainerOptions options;
  options.vocab_size = vocab_size;
  options.special_tokens.clear();
  options.full_byte_alphabet = false;
  return options;
}

TEST(BpeTrainer, HandDerivedMerges) {
  // Words of "abab ab": "abab" and "Ġab". Alphabet by code point: a=0, b=1, Ġ=2.
  // Pair counts: (a,b) 3, (b,a) 1, (Ġ,a) 1 -> merge a+b = "ab" (3). Words: [ab ab], [Ġ ab].
  // Then (ab,ab) 1 and (Ġ,ab) 1 tie: the smaller pair (2,3) wins -> "Ġab" (4); then (3,3) -> "abab" (5).
  BpeTrainer trainer(hf_default_options(5));
  trainer.add_text("abab ab");
  EXPECT_EQ(trainer.distinct_words(), 2u);
  const BpeModel model = trainer.train();
  const std::vector<std::string> vocab = {"a", "b", "\xC4\xA0", "ab",
                                          "\xC4\xA0"
                                          "ab"};
  EXPECT_EQ(model.vocab, vocab);
  const std::vector<std::pair<TokenId, TokenId>> merges = {{0, 1}, {2, 3}};
  EXPECT_EQ(model.merges, merges);

  BpeTrainer larger(hf_default_options(100));
  larger.add_text("abab ab");
  EXPECT_EQ(larger.train().vocab.back(), "abab");  // stops when no pair is left

  // Hugging Face trains the same from the same file.
  TempDir dir;
  const std::string corpus = dir.write("corpus.txt", "abab ab");
  const std::string hf = (dir.path() / "hf.json").string();
  ASSERT_FALSE(testing::hf_train_bpe(hf, "gpt2", 5, {corpus}, "--raw").empty());
  BpeTrainer from_file(hf_default_options(5));
  from_file.add_file(corpus);
  const std::string ours = (dir.path() / "ours.json").string();
  write_bpe_tokenizer_json(from_file.train(), ours);
  const auto a = model_content(ours), b = model_content(hf);
  EXPECT_EQ(a.vocab, b.vocab);
  EXPECT_EQ(a.merges, b.merges);
}

TEST(BpeTrainer, SpecialTokensFirstThenTheFullByteAlphabet) {
  BpeTrainerOptions options;
  options.vocab_size = 262;
  BpeTrainer trainer(options);
  trainer.add_text("hello hello hello");
  const BpeModel model = trainer.train();
  ASSERT_EQ(model.vocab.size(), 262u);
  const std::vector<std::string> specials = {"<s>", "</s>", "<pad>", "<unk>"};
  EXPECT_EQ(std::vector<std::string>(model.vocab.begin(), model.vocab.begin() + 4), specials);
  EXPECT_EQ(model.special_tokens, specials);
  EXPECT_EQ(model.vocab[4], "!");               // the alphabet sorted by code point: '!' (0x21) first
  EXPECT_EQ(model.vocab[4 + 255], "\xC5\x83");  // U+0143 (byte 0xAD) last
  EXPECT_EQ(model.merges.size(), 2u);
  // A vocabulary smaller than the special tokens and the alphabet gets just those, as in Hugging Face.
  options.vocab_size = 10;
  BpeTrainer small(options);
  small.add_text("hello");
  EXPECT_EQ(small.train().vocab.size(), 260u);
}

TEST(BpeTrainer, ErrorsNameTheFile) {
  BpeTrainer trainer;
  try {
    trainer.add_file("/nonexistent/corpus.txt");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.file(), "/nonexistent/corpus.txt");
  }
  trainer.add_text("abc");
  EXPECT_THROW(write_bpe_tokenizer_json(trainer.train(), "/nonexistent/dir/tokenizer.json"), Error);
  BpeTrainerOptions bad;
  bad.special_tokens = {"ok", "\xFF"};
  EXPECT_THROW(BpeTrainer{bad}, Error);
}

TEST(BpeTrainer, InvalidUtf8IsCountedAsReplacementCharacters) {
  BpeTrainer trainer(hf_default_options(1000));
  trainer.add_text("\xFF\xFF \xFF\xFF");
  const BpeModel model = trainer.train();
  const std::string replacement = byte_level::bytes_to_chars("\xEF\xBF\xBD");
  EXPECT_NE(std::find(model.vocab.begin(), model.vocab.end(), replacement + replacement), model.vocab.end());
}

// The shared text the trainer tests learn from: every document of every shared set (about 20 MB).
std::string large_corpus(const TempDir& dir) {
  const std::string path = (dir.path() / "corpus.txt").string();
  return testing::write_corpus(path, testing::all_shared_sets()) ? path : "";
}

TEST(BpeTrainer, SameVocabularyAndMergesAsHuggingFaceOnSharedText) {
  TempDir dir;
  const std::string corpus = large_corpus(dir);
  if (corpus.empty()) GTEST_SKIP() << "shared data not found";
  const std::string hf = (dir.path() / "hf.json").string();
  const std::string summary = testing::hf_train_bpe(hf, "gpt2", 8000, {corpus}, "--raw");
  ASSERT_FALSE(summary.empty());
  std::cout << "[Hugging Face, 2 threads] " << summary << "\n";

  const auto start = std::chrono::steady_clock::now();
  BpeTrainer trainer(hf_default_options(8000));
  trainer.add_file(corpus);
  const double count_seconds = seconds_since(start);
  const BpeModel model = trainer.train();
  const double total_seconds = seconds_since(start);
  std::cout << "[DisRanker, 1 thread] " << std::filesystem::file_size(corpus) << " bytes, "
            << trainer.distinct_words() << " distinct words: counted in " << count_seconds << " s, "
            << model.merges.size() << " merges in " << total_seconds - count_seconds << " s, total "
            << total_seconds << " s\n";
  const std::string ours = (dir.path() / "ours.json").string();
  write_bpe_tokenizer_json(model, ours);

  const auto a = model_content(ours), b = model_content(hf);
  EXPECT_EQ(a.vocab.size(), 8000u);
  EXPECT_EQ(a.vocab.size(), b.vocab.size());
  EXPECT_EQ(a.merges.size(), b.merges.size());
  std::size_t vocab_differences = 0;
  for (const auto& [token, id] : a.vocab) {
    const auto it = b.vocab.find(token);
    if ((it == b.vocab.end() || it->second != id) && ++vocab_differences <= 5) {
      ADD_FAILURE() << "token " << token << ": ours id " << id << ", Hugging Face "
                    << (it == b.vocab.end() ? std::string("absent") : std::to_string(it->second));
    }
  }
  EXPECT_EQ(vocab_differences, 0u);
  const std::size_t n = std::min(a.merges.size(), b.merges.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (a.merges[i] != b.merges[i]) {
      ADD_FAILURE() << "first differing merge, rank " << i << ": ours (" << a.merges[i].first << ", "
                    << a.merges[i].second << "), Hugging Face (" << b.merges[i].first << ", "
                    << b.merges[i].second << ")";
      break;
    }
  }
}

TEST(BpeTrainer, TrainedTokenizerLoadsInHuggingFaceAndMatchesOnAllSharedStrings) {
  TempDir dir;
  const std::string corpus = large_corpus(dir);
  if (corpus.empty()) GTEST_SKIP() << "shared data not found";
  BpeTrainer trainer;  // defaults: vocab 8000, "<s>", "</s>", "<pad>", "<unk>", all 256 bytes
  trainer.add_file(corpus);
  const std::string path = (dir.path() / "tokenizer.json").string();
  write_bpe_tokenizer_json(trainer.train(), path);

  const auto bpe = load_bpe_file(path);
  EXPECT_EQ(bpe->vocab_size(), 8000u);
  EXPECT_EQ(bpe->special().bos, 0);
  EXPECT_EQ(bpe->special().eos, 1);
  EXPECT_EQ(bpe->special().pad, 2);
  EXPECT_EQ(bpe->special().unk, 3);
  EXPECT_EQ(bpe->id_to_token(1), "</s>");
  EXPECT_TRUE(bpe->is_special(1));
  auto with_eos = bpe->encode("what is a query");
  with_eos.push_back(1);
  EXPECT_EQ(bpe->encode("what is a query</s>"), with_eos);

  std::vector<std::string> inputs = testing::bpe_adversarial_strings();
  const auto shared = testing::shared_strings(testing::all_shared_sets());
  inputs.insert(inputs.end(), shared.begin(), shared.end());
  const auto result = testing::compare_with_hf(*bpe, path, inputs, /*check_decode=*/true);
  std::cout << "[trained by DisRanker] compared " << result.compared
            << " strings with Hugging Face: " << result.id_mismatches << " id mismatches, "
            << result.decode_mismatches << " decode mismatches\n";
  EXPECT_EQ(result.compared, inputs.size());
  std::size_t failures = 0;
  for (const auto& s : inputs) {
    if (is_valid_utf8(s) && bpe->decode(bpe->encode(s), /*skip_special=*/false) != s && ++failures <= 5) {
      ADD_FAILURE() << "decode(encode(x)) != x for " << testing::show_string(s);
    }
  }
  EXPECT_EQ(failures, 0u);
}

TEST(BpeTrainer, VocabularySizeIsRespected) {
  const std::string root = testing::shared_data_dir();
  if (root.empty()) GTEST_SKIP() << "shared data not found";
  const auto texts = testing::shared_strings({"wikiqa-dev", "cisi"});
  TempDir dir;
  for (const std::size_t size : {300, 1000, 4000}) {
    BpeTrainerOptions options;
    options.vocab_size = size;
    BpeTrainer trainer(options);
    for (const auto& text : texts) trainer.add_text(text);
    const BpeModel model = trainer.train();
    EXPECT_EQ(model.vocab.size(), size);
    const std::string path = (dir.path() / ("v" + std::to_string(size) + ".json")).string();
    write_bpe_tokenizer_json(model, path);
    const auto bpe = load_bpe_file(path);
    EXPECT_EQ(bpe->vocab_size(), size);
    std::size_t max_id = 0;
    for (const auto& text : texts)
      for (const TokenId id : bpe->encode(text)) max_id = std::max(max_id, static_cast<std::size_t>(id));
    EXPECT_LT(max_id, size);
  }
}

TEST(BpeTrainer, DeterministicAndIndependentOfInputOrder) {
  const std::string root = testing::shared_data_dir();
  if (root.empty()) GTEST_SKIP() << "shared data not found";
  auto texts = testing::shared_strings({"wikiqa-dev", "cranfield", "qbqtc-dev"});
  auto train = [](const std::vector<std::string>& inputs) {
    BpeTrainerOptions options;
    options.vocab_size = 3000;
    BpeTrainer trainer(options);
    for (const auto& text : inputs) trainer.add_text(text);
    return bpe_tokenizer_json(trainer.train());
  };
  const std::string first = train(texts);
  EXPECT_EQ(train(texts), first);
  std::reverse(texts.begin(), texts.end());
  EXPECT_EQ(train(texts), first);
}

}  // namespace
}  // namespace disranker
