// BM25 retrieval with Xapian: scores against the formula worked by hand, stemming, fields, CJK, plain-text
// queries, atomic index builds and the errors a user can meet.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "core/error.h"
#include "data/qrels.h"
#include "retrieve/bm25.h"
#include "test_util.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// Xapian's BM25Weight with k2 = 0 and query wqf 1, as documented in xapian-core/weight/bm25weight.cc:
//   idf  = log(tw), tw = (N - n + 0.5) / (n + 0.5), raised to tw / 2 + 1 when below 2 (so it stays positive)
//   norm = max(doclen / avgdoclen, 0.5)
//   w    = idf * (k1 + 1) * wdf / (k1 * (b * norm + 1 - b) + wdf)
double xapian_bm25(double wdf, double doclen, double avgdoclen, double n_docs, double term_docs, double k1,
                   double b) {
  double tw = (n_docs - term_docs + 0.5) / (term_docs + 0.5);
  if (tw < 2) tw = tw * 0.5 + 1;
  const double norm = std::max(doclen / avgdoclen, 0.5);
  return std::log(tw) * (k1 + 1) * wdf / (k1 * (b * norm + 1 - b) + wdf);
}

// Every word below is lower-case letters, so the indexer (STEM_SOME) gives each occurrence two terms of wdf
// 1, the word and its Z-stem, and a title word counts twice more for the S-prefixed title field. Xapian's
// document length is the sum of the wdfs: 4 * title words + 2 * text words.
Docs english_docs() {
  Docs docs;
  docs.add({"d1", "", "the cat sat on the mat"});         // 4*0 + 2*6 = 12
  docs.add({"d2", "dogs", "a dog chased the cat"});       // 4*1 + 2*5 = 14
  docs.add({"d3", "morning jog", "she runs every day"});  // 4*2 + 2*4 = 16
  docs.add({"d4", "weather report", "rain and wind"});    // 4*2 + 2*3 = 14
  docs.add({"d5", "", "cats and dogs and cats"});         // 4*0 + 2*5 = 10
  return docs;
}
constexpr double kAverageLength = (12 + 14 + 16 + 14 + 10) / 5.0;

std::string build(const TempDir& tmp, const Docs& docs, const std::string& name = "index",
                  const std::string& language = "english") {
  const std::string dir = (tmp.path() / name).string();
  IndexOptions options;
  options.language = language;
  build_bm25_index(docs, dir, options);
  return dir;
}

// Names in `parent` that start with `stem`: the index directory and any temporary directory left beside it.
std::vector<std::string> entries_starting_with(const fs::path& parent, const std::string& stem) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(parent)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(stem)) names.push_back(name);
  }
  return names;
}

TEST(Bm25, SingleTermScoreMatchesTheFormula) {
  TempDir tmp;
  const Bm25Index index(build(tmp, english_docs()));
  EXPECT_EQ(index.num_docs(), 5u);
  const RetrieveOptions options;  // k1 = 0.9, b = 0.4

  // "mat" is in d1 only: tw = 4.5 / 1.5 = 3.
  const auto mat = index.search("mat", options);
  ASSERT_EQ(mat.size(), 1u);
  EXPECT_EQ(mat[0].docid, "d1");
  EXPECT_NEAR(mat[0].score, xapian_bm25(1, 12, kAverageLength, 5, 1, 0.9, 0.4), 1e-9);

  // "cat" (stem of "cats") is in d1, d2 and d5 (twice): tw = 2.5 / 3.5 < 2 takes the raised branch. The
  // shortest document with the most occurrences wins; d1 beats d2 on length alone.
  const auto cat = index.search("cat", options);
  ASSERT_EQ(cat.size(), 3u);
  EXPECT_EQ(cat[0].docid, "d5");
  EXPECT_EQ(cat[1].docid, "d1");
  EXPECT_EQ(cat[2].docid, "d2");
  EXPECT_NEAR(cat[0].score, xapian_bm25(2, 10, kAverageLength, 5, 3, 0.9, 0.4), 1e-9);
  EXPECT_NEAR(cat[2].score, xapian_bm25(1, 14, kAverageLength, 5, 3, 0.9, 0.4), 1e-9);
}

TEST(Bm25, ParametersReachTheWeightingScheme) {
  TempDir tmp;
  const Bm25Index index(build(tmp, english_docs()));
  RetrieveOptions options;
  options.k1 = 1.2;
  options.b = 0.75;
  const auto hits = index.search("mat", options);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_NEAR(hits[0].score, xapian_bm25(1, 12, kAverageLength, 5, 1, 1.2, 0.75), 1e-9);
}

TEST(Bm25, RepeatedQueryWordScalesItsWeight) {
  TempDir tmp;
  const Bm25Index index(build(tmp, english_docs()));
  const auto once = index.search("mat", {});
  const auto twice = index.search("mat Mat", {});
  ASSERT_EQ(once.size(), 1u);
  ASSERT_EQ(twice.size(), 1u);
  EXPECT_NEAR(twice[0].score, 2 * once[0].score, 1e-9);
}

TEST(Bm25, MultiWordQueryAddsTheTermScores) {
  TempDir tmp;
  const Bm25Index index(build(tmp, english_docs()));
  // OR semantics: d2 and d5 have both words, d1 only "cat". Zdog is in d2 (title "dogs" and text "dog": wdf
  // 2) and d5; Zcat is in d1, d2 and d5 (wdf 2).
  const auto hits = index.search("dog cat", {});
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(hits[0].docid, "d2");
  EXPECT_EQ(hits[1].docid, "d5");
  EXPECT_EQ(hits[2].docid, "d1");
  const auto term = [](double wdf, double len, double term_docs) {
    return xapian_bm25(wdf, len, kAverageLength, 5, term_docs, 0.9, 0.4);
  };
  EXPECT_NEAR(hits[0].score, term(2, 14, 2) + term(1, 14, 3), 1e-9);
  EXPECT_NEAR(hits[1].score, term(1, 10, 2) + term(2, 10, 3), 1e-9);
}

TEST(Bm25, StemmingMatchesOtherFormsOfAWord) {
  TempDir tmp;
  const Bm25Index index(build(tmp, english_docs()));
  for (const char* query : {"running", "Running", "RUNS", "run"}) {
    const auto hits = index.search(query, {});
    ASSERT_EQ(hits.size(), 1u) << query;
    EXPECT_EQ(hits[0].docid, "d3") << query;
  }
}

TEST(Bm25, NoStemmingWhenTheIndexSaysNone) {
  TempDir tmp;
  const Bm25Index index(build(tmp, english_docs(), "index", "none"));
  EXPECT_EQ(index.language(), "none");
  EXPECT_TRUE(index.search("running", {}).empty());
  const auto hits = index.search("runs", {});
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].docid, "d3");
}

TEST(Bm25, TitleWordsAreSearchedWithTheText) {
  TempDir tmp;
  const Bm25Index index(build(tmp, english_docs()));
  const auto hits = index.search("weather", {});  // in d4's title only
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].docid, "d4");
}

TEST(Bm25, TitleOnlySearchIgnoresTheText) {
  TempDir tmp;
  const Bm25Index index(build(tmp, english_docs()));
  RetrieveOptions options;
  options.title_only = true;
  const auto title = index.search("Weather reports", options);
  ASSERT_EQ(title.size(), 1u);
  EXPECT_EQ(title[0].docid, "d4");
  EXPECT_TRUE(index.search("rain", options).empty());  // d4's text, not its title
  const auto dogs = index.search("dog", options);      // d2's title; d5 has dogs in its text only
  ASSERT_EQ(dogs.size(), 1u);
  EXPECT_EQ(dogs[0].docid, "d2");
}

TEST(Bm25, ChineseQueriesMatchChineseTitlesByNgrams) {
  TempDir tmp;
  Docs docs;
  docs.add({"c1", "人工智能的发展", ""});
  docs.add({"c2", "天气预报", ""});
  docs.add({"c3", "机器学习入门", ""});
  const Bm25Index index(build(tmp, docs));
  const auto exact = index.search("人工智能", {});
  ASSERT_EQ(exact.size(), 1u);
  EXPECT_EQ(exact[0].docid, "c1");
  // A query longer than the title still matches on the n-grams it shares (OR, not AND).
  const auto longer = index.search("人工智能有哪些应用", {});
  ASSERT_FALSE(longer.empty());
  EXPECT_EQ(longer[0].docid, "c1");
  const auto mixed = index.search("明天 weather 天气", {});
  ASSERT_FALSE(mixed.empty());
  EXPECT_EQ(mixed[0].docid, "c2");
}

TEST(Bm25, QueriesArePlainText) {
  TempDir tmp;
  const Bm25Index index(build(tmp, english_docs()));
  // Operators and punctuation are not syntax: none of these may throw.
  for (const char* query : {"AND", "cat AND NOT dog", "(", "\"", "-", "+mat -cat", "title:weather", "?!",
                            "mat*", "NEAR ADJ XOR", "a..b", "~cat", "'", "\\"}) {
    EXPECT_NO_THROW(index.search(query, {})) << query;
  }
  // Quotes and hyphens do not stop stemming or force phrases: each word is a term of the bag.
  const auto quoted = index.search("who is \"running\"?", {});
  ASSERT_FALSE(quoted.empty());
  EXPECT_EQ(quoted[0].docid, "d3");
  const auto hyphenated = index.search("weather-reports", {});
  ASSERT_EQ(hyphenated.size(), 1u);
  EXPECT_EQ(hyphenated[0].docid, "d4");
  EXPECT_TRUE(index.search("?!", {}).empty());
  EXPECT_TRUE(index.search("zebra", {}).empty());
}

TEST(Bm25, KLimitsTheResults) {
  TempDir tmp;
  const Bm25Index index(build(tmp, english_docs()));
  RetrieveOptions options;
  options.k = 2;
  EXPECT_EQ(index.search("cat dog the", options).size(), 2u);
}

TEST(Bm25, BadOptionsAreErrors) {
  TempDir tmp;
  const Bm25Index index(build(tmp, english_docs()));
  RetrieveOptions options;
  options.k = 0;
  EXPECT_THROW(index.search("cat", options), Error);
  options = {};
  options.b = 1.5;
  EXPECT_THROW(index.search("cat", options), Error);
  options = {};
  options.k1 = -1;
  EXPECT_THROW(index.search("cat", options), Error);
}

TEST(Bm25, RetrieveWritesOnlyQueriesWithHits) {
  TempDir tmp;
  const std::string dir = build(tmp, english_docs());
  Queries queries;
  queries.add({"q1", "cat"});
  queries.add({"q2", "zebra"});
  RetrieveOptions options;
  options.tag = "mytag";
  const disranker::Run run = retrieve_bm25(dir, queries, options);
  EXPECT_EQ(run.tag, "mytag");
  ASSERT_EQ(run.by_query.size(), 1u);
  EXPECT_EQ(run.by_query.at("q1").size(), 3u);
}

TEST(Bm25, MissingIndexIsAnErrorNamingThePath) {
  TempDir tmp;
  const std::string missing = (tmp.path() / "no-such-index").string();
  try {
    Bm25Index index(missing);
    FAIL() << "opened a missing index";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  Queries queries;
  queries.add({"q1", "cat"});
  EXPECT_THROW(retrieve_bm25(missing, queries, {}), Error);
  // A directory that is not an index is just as clear.
  const std::string empty = (tmp.path() / "empty").string();
  fs::create_directory(empty);
  try {
    Bm25Index index(empty);
    FAIL() << "opened an empty directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(empty), std::string::npos) << e.what();
  }
}

TEST(Bm25Index, FailedBuildLeavesNothingBehind) {
  TempDir tmp;
  const std::string dir = (tmp.path() / "index").string();
  EXPECT_THROW(build_bm25_index(Docs{}, dir, {}), Error);
  EXPECT_TRUE(entries_starting_with(tmp.path(), "index").empty());

  // Xapian rejects the docid term of the last document (longer than its 245-byte term limit) after the others
  // were indexed: the partial index must go.
  Docs docs = english_docs();
  docs.add({std::string(300, 'x'), "", "too long an id"});
  EXPECT_THROW(build_bm25_index(docs, dir, {}), Error);
  EXPECT_TRUE(entries_starting_with(tmp.path(), "index").empty());

  IndexOptions bad_language;
  bad_language.language = "klingon";
  EXPECT_THROW(build_bm25_index(english_docs(), dir, bad_language), Error);
  EXPECT_TRUE(entries_starting_with(tmp.path(), "index").empty());
}

TEST(Bm25Index, ExistingDirectoryNeedsForce) {
  TempDir tmp;
  const std::string dir = build(tmp, english_docs());
  Docs one;
  one.add({"only", "one document", ""});
  try {
    build_bm25_index(one, dir, {});
    FAIL() << "replaced an index without force";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos) << e.what();
  }
  EXPECT_EQ(Bm25Index(dir).num_docs(), 5u);

  IndexOptions force;
  force.force = true;
  build_bm25_index(one, dir + "/", force);  // a trailing slash names the same directory
  EXPECT_EQ(Bm25Index(dir).num_docs(), 1u);
  EXPECT_EQ(entries_starting_with(tmp.path(), "index"), std::vector<std::string>{"index"});
}

TEST(Bm25Index, ForceNeverReplacesSomethingElse) {
  TempDir tmp;
  const std::string precious = tmp.write("notes.txt", "keep me");
  const std::string dir = (tmp.path() / "mine").string();
  fs::create_directory(dir);
  tmp.write("mine/file.txt", "keep me too");
  IndexOptions force;
  force.force = true;
  EXPECT_THROW(build_bm25_index(english_docs(), dir, force), Error);
  EXPECT_THROW(build_bm25_index(english_docs(), precious, force), Error);
  EXPECT_TRUE(fs::exists(tmp.path() / "mine" / "file.txt"));
  EXPECT_TRUE(fs::is_regular_file(precious));
}

TEST(Bm25Index, CreatesMissingParentDirectories) {
  TempDir tmp;
  const std::string dir = (tmp.path() / "a" / "b" / "index").string();
  build_bm25_index(english_docs(), dir, {});
  EXPECT_EQ(Bm25Index(dir).num_docs(), 5u);
}

TEST(Bm25Index, ReportsProgress) {
  TempDir tmp;
  std::size_t calls = 0, last_done = 0, last_total = 0;
  IndexOptions options;
  options.on_progress = [&](std::size_t done, std::size_t total) {
    ++calls, last_done = done, last_total = total;
  };
  build_bm25_index(english_docs(), (tmp.path() / "index").string(), options);
  EXPECT_EQ(calls, 5u);
  EXPECT_EQ(last_done, 5u);
  EXPECT_EQ(last_total, 5u);
}

// The CLI end to end: `index` then `retrieve`, and the refusal to overwrite. DISRANKER_BIN is set by ctest.
TEST(Bm25Cli, IndexThenRetrieve) {
  const char* bin = std::getenv("DISRANKER_BIN");
  if (bin == nullptr) GTEST_SKIP() << "DISRANKER_BIN not set (run through ctest)";
  TempDir tmp;
  const std::string docs =
      tmp.write("docs.tsv", "d1\t\tthe cat sat on the mat\nd2\tdogs\ta dog chased the cat\n");
  const std::string queries = tmp.write("queries.tsv", "q1\tcats\nq2\tzebra\nq3\tWhat \"dogs\"? AND -(\n");
  const std::string index = (tmp.path() / "index").string();
  const std::string run = (tmp.path() / "run.txt").string();
  const std::string quiet = " 2>" + (tmp.path() / "stderr.txt").string();
  const std::string index_cmd = std::string(bin) + " index --docs " + docs + " --out " + index + quiet;
  ASSERT_EQ(std::system(index_cmd.c_str()), 0);
  EXPECT_NE(std::system(index_cmd.c_str()), 0);  // exists, no --force
  ASSERT_EQ(std::system((index_cmd + " --force").c_str()), 0);
  const std::string retrieve_cmd = std::string(bin) + " retrieve --index " + index + " --queries " + queries +
                                   " --k 1 --tag T --out " + run + quiet;
  ASSERT_EQ(std::system(retrieve_cmd.c_str()), 0);
  std::ifstream in(run);
  std::vector<std::string> hits;
  for (std::string qid, q0, docid, rest; in >> qid >> q0 >> docid && std::getline(in, rest);) {
    hits.push_back(qid + " " + docid);
  }
  EXPECT_EQ(hits, (std::vector<std::string>{"q1 d1", "q3 d2"}));
  const std::string missing_cmd = std::string(bin) + " retrieve --index " + index + "-missing --queries " +
                                  queries + " --out " + run + quiet;
  EXPECT_NE(std::system(missing_cmd.c_str()), 0);
}

// Reranking given candidates: each candidate gets exactly the score full retrieval gives it, and a candidate
// that shares no word with the query gets 0 (BM25's value) instead of disappearing from the list.
TEST(Bm25Rerank, ScoresEveryCandidateAsRetrievalWould) {
  TempDir tmp;
  const std::string dir = build(tmp, english_docs());
  Queries queries;
  queries.add({"q1", "cat"});
  disranker::Run candidates;
  candidates.by_query["q1"] = {{"d4", 9.0}, {"d1", 1.0}, {"d5", 5.0}};  // input scores are ignored
  const disranker::Run reranked = rerank_bm25(dir, queries, candidates, RetrieveOptions{});
  const disranker::Run retrieved = retrieve_bm25(dir, queries, RetrieveOptions{});
  ASSERT_EQ(reranked.by_query.at("q1").size(), 3u);
  std::map<std::string, double> full;
  for (const auto& entry : retrieved.by_query.at("q1")) full[entry.docid] = entry.score;
  std::map<std::string, double> got;
  for (const auto& entry : reranked.by_query.at("q1")) got[entry.docid] = entry.score;
  EXPECT_DOUBLE_EQ(got["d1"], full.at("d1"));
  EXPECT_DOUBLE_EQ(got["d5"], full.at("d5"));
  EXPECT_FALSE(full.count("d4"));  // "weather report / rain and wind" has no cat
  EXPECT_EQ(got["d4"], 0.0);
  EXPECT_EQ(reranked.by_query.at("q1").back().docid, "d4");  // ranked last
}

TEST(Bm25Rerank, UnknownCandidatesAndQueriesAreErrorsNamingTheSource) {
  TempDir tmp;
  const std::string dir = build(tmp, english_docs());
  Queries queries;
  queries.add({"q1", "cat"});
  disranker::Run candidates;
  candidates.by_query["q1"] = {{"nope", 0.0}};
  EXPECT_ERROR(rerank_bm25(dir, queries, candidates, RetrieveOptions{}, "cands.txt"), "cands.txt", "docid",
               "document nope of query q1 is not in the index");
  disranker::Run unknown_query;
  unknown_query.by_query["q9"] = {{"d1", 0.0}};
  EXPECT_ERROR(rerank_bm25(dir, queries, unknown_query, RetrieveOptions{}, "cands.txt"), "cands.txt", "qid",
               "query q9 is not in the queries file");
}

TEST(JudgedCandidates, AreEveryJudgedDocumentOfEachQuery) {
  Qrels qrels;
  qrels.by_query["q1"] = {{"a", 0}, {"b", 2}};
  qrels.by_query["q2"] = {{"c", 1}};
  const disranker::Run run = judged_candidates(qrels);
  ASSERT_EQ(run.by_query.size(), 2u);
  EXPECT_EQ(run.by_query.at("q1").size(), 2u);
  EXPECT_EQ(run.by_query.at("q2").at(0).docid, "c");
}

}  // namespace
}  // namespace disranker
