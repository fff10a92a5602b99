// Pair templates, truncation budgets and dynamic padding, on a toy tokenizer whose ids are easy to read:
// every whitespace-separated word w<N> is token N; [CLS]=101, [SEP]=102, [PAD]=0, </s>=2, <s>=1.
#include <gtest/gtest.h>

#include <sstream>

#include "core/error.h"
#include "text/pair_encoding.h"

namespace disranker {
namespace {

class ToyTokenizer : public Tokenizer {
 public:
  explicit ToyTokenizer(bool bert) {
    if (bert) {
      special_.cls = 101, special_.sep = 102, special_.pad = 0;
    } else {
      special_.bos = 1, special_.eos = 2, special_.pad = 0;
    }
  }
  // "w7 w8" -> {7, 8}; any other word (the decoder template's "query:", "document:") -> 900 + its length.
  std::vector<TokenId> encode(std::string_view text) const override {
    std::vector<TokenId> ids;
    std::istringstream words{std::string(text)};
    std::string w;
    while (words >> w)
      ids.push_back(w[0] == 'w' ? std::stoi(w.substr(1)) : 900 + static_cast<TokenId>(w.size()));
    return ids;
  }
  std::string decode(std::span<const TokenId>, bool) const override { return ""; }
  std::size_t vocab_size() const override { return 1000; }
  std::string_view id_to_token(TokenId) const override { return "t"; }
  std::optional<TokenId> token_to_id(std::string_view) const override { return std::nullopt; }
  std::string_view kind() const override { return "toy"; }
};

std::string words(int from, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) out += "w" + std::to_string(from + i) + " ";
  return out;
}

TEST(BertPairTemplate, IsClsQuerySepTitleSepSummarySepWithTypesZeroThenOne) {
  ToyTokenizer tok(true);
  PairEncoder encoder(tok, {});
  const auto e = encoder.encode("w11 w12", "w21", "w31 w32");
  EXPECT_EQ(e.ids, (std::vector<TokenId>{101, 11, 12, 102, 21, 102, 31, 32, 102}));
  EXPECT_EQ(e.type_ids, (std::vector<std::uint8_t>{0, 0, 0, 0, 1, 1, 1, 1, 1}));
  EXPECT_FALSE(e.truncated);
}

TEST(BertPairTemplate, OneTextFieldEncodesLikeAStandardSentencePair) {
  ToyTokenizer tok(true);
  PairEncoder encoder(tok, {});
  // [CLS] q [SEP] text [SEP], as Hugging Face's tokenizer(query, text).
  EXPECT_EQ(encoder.encode("w1", "", "w5 w6").ids, (std::vector<TokenId>{101, 1, 102, 5, 6, 102}));
  EXPECT_EQ(encoder.encode("w1", "w5", "").ids, (std::vector<TokenId>{101, 1, 102, 5, 102}));
}

// A model's encoder takes its budget from the caller and refuses one its position embeddings cannot hold,
// naming the model and the limit.
TEST(ModelPairEncoder, TakesTheBudgetWithinTheModelsPositions) {
  ToyTokenizer tok(true);
  PairEncoderOptions options;
  options.protected_query_tokens = 2;
  const auto encoder = make_model_pair_encoder(tok, options, 10, 64, "models/student");
  EXPECT_EQ(encoder->options().max_length, 10u);
  EXPECT_EQ(encoder->encode("w1 w2", "w21 w22", words(31, 5)).ids.size(), 10u);
  EXPECT_EQ(make_model_pair_encoder(tok, options, 64, 64, "m")->options().max_length, 64u);
  for (const std::int64_t bad : {0, -3, 65}) {
    try {
      make_model_pair_encoder(tok, options, bad, 64, "models/student");
      ADD_FAILURE() << "accepted max_length " << bad;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("models/student"), std::string::npos) << what;
      EXPECT_NE(what.find("must be in [1, 64]"), std::string::npos) << what;
    }
  }
}

TEST(Truncation, CutsTheSummaryFirst) {
  ToyTokenizer tok(true);
  PairEncoderOptions options;
  options.max_length = 10;
  options.protected_query_tokens = 2;
  PairEncoder encoder(tok, options);
  // 4 specials + 2 query + 2 title leave 2 of the summary's 5 tokens.
  const auto e = encoder.encode("w1 w2", "w21 w22", words(31, 5));
  EXPECT_EQ(e.ids, (std::vector<TokenId>{101, 1, 2, 102, 21, 22, 102, 31, 32, 102}));
  EXPECT_TRUE(e.truncated);
}

TEST(Truncation, CutsTheTitleAfterTheSummary) {
  ToyTokenizer tok(true);
  PairEncoderOptions options;
  options.max_length = 8;
  options.protected_query_tokens = 2;
  PairEncoder encoder(tok, options);
  // 4 specials + 2 + 4 + 2 = 12 > 8: the summary goes (with its [SEP]: 9), then one title token (8).
  const auto e = encoder.encode("w1 w2", "w21 w22 w23 w24", "w31 w32");
  EXPECT_EQ(e.ids, (std::vector<TokenId>{101, 1, 2, 102, 21, 22, 23, 102}));
}

TEST(Truncation, NeverCutsTheProtectedQueryTokens) {
  ToyTokenizer tok(true);
  PairEncoderOptions options;
  options.max_length = 8;
  options.protected_query_tokens = 3;
  PairEncoder encoder(tok, options);
  // A 6-token query and a 1-token title and summary: 4 specials + 8 tokens = 12. The summary goes (with its
  // [SEP]: 10), then the title (8): the whole query fits, and no token of the budget is wasted.
  const auto e = encoder.encode(words(1, 6), "w21", "w31");
  EXPECT_EQ(e.query_tokens, 6u);
  EXPECT_EQ(e.ids, (std::vector<TokenId>{101, 1, 2, 3, 4, 5, 6, 102}));
  // A 9-token query: everything else goes and the query keeps 8 - 2 = 6 tokens (at least the protected 3).
  EXPECT_EQ(encoder.encode(words(1, 9), "w21", "w31").query_tokens, 6u);
  EXPECT_LE(e.ids.size(), options.max_length);
}

TEST(DocumentBudget, CapsTitlePlusSummaryCuttingTheSummaryFirst) {
  ToyTokenizer tok(true);
  PairEncoder encoder(tok, {});  // max_length 256: only the document budget cuts
  // Title 2 + summary 4 = 6 > 3: the summary keeps 1 token; the query is untouched.
  const auto e = encoder.encode(words(1, 5), "w21 w22", words(31, 4), 3);
  EXPECT_EQ(e.ids, (std::vector<TokenId>{101, 1, 2, 3, 4, 5, 102, 21, 22, 102, 31, 102}));
  EXPECT_TRUE(e.truncated);
  // A budget below the title's length drops the summary (and its [SEP]) and cuts the title.
  EXPECT_EQ(encoder.encode("w1", "w21 w22 w23", "w31", 2).ids,
            (std::vector<TokenId>{101, 1, 102, 21, 22, 102}));
  // A document within the budget, or no budget (0), is left alone.
  const auto whole = encoder.encode("w1", "w21", "w31", 2);
  EXPECT_EQ(whole.ids, (std::vector<TokenId>{101, 1, 102, 21, 102, 31, 102}));
  EXPECT_FALSE(whole.truncated);
  EXPECT_EQ(encoder.encode("w1", "w21", words(31, 9), 0).ids.size(), 3u + 1 + 1 + 9 + 1);
}

TEST(DocumentBudget, StillObeysMaxLength) {
  ToyTokenizer tok(true);
  PairEncoderOptions options;
  options.max_length = 8;
  options.protected_query_tokens = 2;
  PairEncoder encoder(tok, options);
  // The document budget (5) leaves title 2 + summary 3: 4 specials + 7 = 11 > 8, so max_length cuts the whole
  // summary, its [SEP] with it.
  EXPECT_EQ(encoder.encode("w1 w2", "w21 w22", words(31, 6), 5).ids,
            (std::vector<TokenId>{101, 1, 2, 102, 21, 22, 102}));
}

TEST(Truncation, RejectsABudgetThatCannotHoldTheProtectedQuery) {
  ToyTokenizer tok(true);
  PairEncoderOptions options;
  options.max_length = 5;
  options.protected_query_tokens = 2;  // 4 specials + 2 > 5
  EXPECT_THROW(PairEncoder(tok, options), Error);
}

TEST(DecoderPairTemplate, EndsWithEosAndKeepsItWhenTruncated) {
  ToyTokenizer tok(false);
  PairEncoderOptions options;
  options.style = PairStyle::kDecoder;
  options.max_length = 12;
  options.protected_query_tokens = 1;
  PairEncoder encoder(tok, options);
  // "query:" -> 906, "document:" -> 909, the " " separator encodes to nothing in the toy tokenizer.
  const auto e = encoder.encode("w1 w2", "w21", "w31 w32");
  EXPECT_EQ(e.ids, (std::vector<TokenId>{906, 1, 2, 909, 21, 31, 32, 2}));
  const auto cut = encoder.encode("w1 w2", "w21", words(31, 20));
  EXPECT_EQ(cut.ids.size(), 12u);
  EXPECT_EQ(cut.ids.back(), 2) << "the final </s> carries the score and is always kept";
  EXPECT_EQ(cut.ids[4], 21) << "the title is kept while the summary is cut";
}

TEST(DecoderPairTemplate, CanStartWithBos) {
  ToyTokenizer tok(false);
  PairEncoderOptions options;
  options.style = PairStyle::kDecoder;
  options.add_bos = true;
  PairEncoder encoder(tok, options);
  EXPECT_EQ(encoder.encode("w1", "", "w5").ids, (std::vector<TokenId>{1, 906, 1, 909, 5, 2}));
}

TEST(DecoderPairTemplate, NeedsAnEosToken) {
  ToyTokenizer tok(true);  // BERT specials only
  PairEncoderOptions options;
  options.style = PairStyle::kDecoder;
  EXPECT_THROW(PairEncoder(tok, options), Error);
}

TEST(Batching, PadsToTheLongestPairWithMaskAndLengths) {
  ToyTokenizer tok(true);
  PairEncoder encoder(tok, {});
  const std::vector<EncodedPair> pairs = {encoder.encode("w1", "", "w5"),
                                          encoder.encode("w1 w2", "w3", "w4 w5")};
  const Batch b = make_batch(pairs, 0);
  EXPECT_EQ(b.batch_size, 2u);
  // Row 1 is [CLS] w1 w2 [SEP] w3 [SEP] w4 w5 [SEP]: 9 tokens; row 0 (5 tokens) is padded to 9.
  EXPECT_EQ(b.seq_len, 9u);
  EXPECT_EQ(b.lengths, (std::vector<std::size_t>{5, 9}));
  EXPECT_EQ(std::vector<std::int64_t>(b.input_ids.begin(), b.input_ids.begin() + 9),
            (std::vector<std::int64_t>{101, 1, 102, 5, 102, 0, 0, 0, 0}));
  EXPECT_EQ(std::vector<std::int64_t>(b.attention_mask.begin(), b.attention_mask.begin() + 9),
            (std::vector<std::int64_t>{1, 1, 1, 1, 1, 0, 0, 0, 0}));
  EXPECT_EQ(std::vector<std::int64_t>(b.token_type_ids.begin(), b.token_type_ids.begin() + 9),
            (std::vector<std::int64_t>{0, 0, 0, 1, 1, 0, 0, 0, 0}));
  EXPECT_EQ(std::vector<std::int64_t>(b.input_ids.begin() + 9, b.input_ids.end()),
            (std::vector<std::int64_t>{101, 1, 2, 102, 3, 102, 4, 5, 102}));
}

}  // namespace
}  // namespace disranker
