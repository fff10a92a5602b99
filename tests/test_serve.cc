// Specification of `disranker serve` without a model: request parsing and validation, response rendering, the
// metrics, cross-request batching, and the HTTP server on a loopback port with a fake scorer.
//
// No assertion is about speed: where a test needs requests to meet in the batcher, a gate holds the scorer
// and the test waits (with a generous bound, against hangs) for the state it needs.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "serve/api.h"
#include "serve/batcher.h"
#include "serve/metrics.h"
#include "serve/scorer.h"
#include "serve/server.h"

namespace disranker::serve {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kPatience = 10s;  // only a hang waits this long

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string word; in >> word;) {
    std::transform(word.begin(), word.end(), word.begin(),
                   [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
    out.push_back(word);
  }
  return out;
}

// Holds the scorer inside score() while closed, and tells the test how many calls have come in.
class Gate {
 public:
  void close() {
    const std::lock_guard lock(mutex_);
    closed_ = true;
  }
  void open() {
    {
      const std::lock_guard lock(mutex_);
      closed_ = false;
    }
    changed_.notify_all();
  }
  void pass() {
    std::unique_lock lock(mutex_);
    ++entered_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return !closed_; });
  }
  bool wait_entered(int calls) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return entered_ >= calls; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool closed_ = false;
  int entered_ = 0;
};

// Encoding: one token per word (lower-cased), ids from a vocabulary the fake grows as it meets words; type 0
// for the query's, type 1 for the document's title and text, cut to max_tokens_per_doc. Raw score: how many
// of the query's words the document holds. Query "boom" makes score() throw, query "unreadable" makes
// encode() throw.
class FakeScorer : public Scorer {
 public:
  EncodedPair encode(const std::string& query, const ScoreRequestDoc& doc,
                     std::size_t max_tokens_per_doc) override {
    if (query == "unreadable") throw std::runtime_error("cannot encode");
    std::vector<std::string> doc_words = words(doc.title);
    for (std::string& word : words(doc.text)) doc_words.push_back(std::move(word));
    if (max_tokens_per_doc > 0 && doc_words.size() > max_tokens_per_doc) doc_words.resize(max_tokens_per_doc);
    const std::lock_guard lock(mutex_);
    EncodedPair pair;
    for (const std::string& word : words(query)) add(pair, word, 0);
    pair.query_tokens = pair.ids.size();
    for (const std::string& word : doc_words) add(pair, word, 1);
    return pair;
  }
  std::vector<double> score(std::span<const EncodedPair> pairs) override {
    gate.pass();
    std::vector<double> scores;
    for (const EncodedPair& pair : pairs) {
      if (query_of(pair) == "boom") throw std::runtime_error("the model fell over");
      const std::set<TokenId> document(pair.ids.begin() + static_cast<std::ptrdiff_t>(pair.query_tokens),
                                       pair.ids.end());
      double found = 0;
      for (std::size_t i = 0; i < pair.query_tokens; ++i) found += document.count(pair.ids[i]) > 0 ? 1 : 0;
      scores.push_back(found);
    }
    const std::lock_guard lock(mutex_);
    batches_.emplace_back(pairs.begin(), pairs.end());
    return scores;
  }
  double transform(double raw) const override { return raw / 10; }
  std::string model_name() const override { return "fake-model"; }

  // The query of an encoded pair, its words joined by spaces.
  std::string query_of(const EncodedPair& pair) {
    const std::lock_guard lock(mutex_);
    std::string query;
    for (std::size_t i = 0; i < pair.query_tokens; ++i)
      query += (i > 0 ? " " : "") + vocabulary_[static_cast<std::size_t>(pair.ids[i])];
    return query;
  }

  // The batches score() returned scores for.
  std::vector<std::vector<EncodedPair>> batches() {
    const std::lock_guard lock(mutex_);
    return batches_;
  }

  Gate gate;

 private:
  void add(EncodedPair& pair, const std::string& word, std::uint8_t type) {
    auto [at, inserted] = ids_.try_emplace(word, static_cast<TokenId>(vocabulary_.size()));
    if (inserted) vocabulary_.push_back(word);
    pair.ids.push_back(at->second);
    pair.type_ids.push_back(type);
  }

  std::mutex mutex_;
  std::map<std::string, TokenId> ids_;
  std::vector<std::string> vocabulary_;
  std::vector<std::vector<EncodedPair>> batches_;
};

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

// -----------------------------------------------------------------------------------------------------------
// Request parsing

RequestLimits small_limits() {
  RequestLimits limits;
  limits.max_documents = 5;
  limits.max_query_bytes = 32;
  limits.max_body_bytes = 1024;
  return limits;
}

// The status and message of the ApiError that parsing `body` throws; {0, ""} when it parses.
std::pair<int, std::string> parse_failure(const std::string& body,
                                          const RequestLimits& limits = small_limits()) {
  try {
    parse_rerank_request(body, limits);
  } catch (const ApiError& e) {
    return {e.status(), e.what()};
  }
  return {0, ""};
}

struct FailureCase {
  std::string body;
  int status;
  std::string message;  // the start of the message
};

void expect_failures(const std::vector<FailureCase>& cases) {
  for (const FailureCase& c : cases) {
    const auto [status, message] = parse_failure(c.body);
    EXPECT_EQ(status, c.status) << c.body << " → " << message;
    EXPECT_TRUE(starts_with(message, c.message)) << c.body << " → " << message << "; expected " << c.message;
  }
}

TEST(ServeApi, ParsesTheCohereShape) {
  const RerankRequest request = parse_rerank_request(
      R"({"query": "red fox", "documents": ["plain", {"id": "d2", "title": "T", "text": "body"}],
          "top_n": 1, "return_documents": true, "max_tokens_per_doc": 64, "model": "ignored"})",
      small_limits());
  EXPECT_EQ(request.shape, RequestShape::kRerank);
  ASSERT_EQ(request.queries.size(), 1u);
  const QueryRequest& query = request.queries[0];
  EXPECT_EQ(query.query, "red fox");
  ASSERT_EQ(query.documents.size(), 2u);
  EXPECT_EQ(query.documents[0].text, "plain");
  EXPECT_FALSE(query.documents[0].id.has_value());
  EXPECT_FALSE(query.documents[0].title.has_value());
  EXPECT_EQ(query.documents[1].id, "d2");
  EXPECT_EQ(query.documents[1].title, "T");
  EXPECT_EQ(query.documents[1].text, "body");
  EXPECT_EQ(query.top_n, 1u);
  EXPECT_TRUE(query.return_documents);
  EXPECT_EQ(query.max_tokens_per_doc, 64u);
  EXPECT_FALSE(query.raw_scores);
}

TEST(ServeApi, ParsesTheTeiShape) {
  const RerankRequest request = parse_rerank_request(
      R"({"query": "q", "texts": ["a", "b"], "raw_scores": true, "return_text": true, "truncate": true})",
      small_limits());
  EXPECT_EQ(request.shape, RequestShape::kTei);
  ASSERT_EQ(request.queries.size(), 1u);
  ASSERT_EQ(request.queries[0].documents.size(), 2u);
  EXPECT_EQ(request.queries[0].documents[1].text, "b");
  EXPECT_TRUE(request.queries[0].raw_scores);
  EXPECT_TRUE(request.queries[0].return_documents);
}

TEST(ServeApi, ParsesTheBatchShape) {
  const RerankRequest request =
      parse_rerank_request(R"({"queries": [{"query": "a", "documents": ["x"]},)"
                           R"( {"query": "b", "documents": ["y", "z"], "top_n": 1}]})",
                           small_limits());
  EXPECT_EQ(request.shape, RequestShape::kBatch);
  ASSERT_EQ(request.queries.size(), 2u);
  EXPECT_EQ(request.queries[0].query, "a");
  EXPECT_EQ(request.queries[1].documents.size(), 2u);
  EXPECT_EQ(request.queries[1].top_n, 1u);
}

TEST(ServeApi, NullOptionalFieldsMeanAbsent) {
  const RerankRequest request = parse_rerank_request(
      R"({"query": "q", "documents": [{"id": null, "text": "t"}], "top_n": null, "return_documents": null})",
      small_limits());
  EXPECT_EQ(request.queries[0].top_n, 0u);
  EXPECT_FALSE(request.queries[0].return_documents);
  EXPECT_FALSE(request.queries[0].documents[0].id.has_value());
}

TEST(ServeApi, MalformedJsonAndWrongTypesAre400NamingTheField) {
  expect_failures({
      {R"({"query": "q", "documents": ["a",)", 400, "malformed JSON: parse error at line 1"},
      {"", 400, "malformed JSON: "},
      {R"([1, 2])", 400, "request body: expected a JSON object, got array"},
      {R"({"documents": ["a"]})", 400, "query: missing"},
      {R"({"query": 7, "documents": ["a"]})", 400, "query: expected a string, got number"},
      {R"({"query": "q"})", 400, "documents: missing"},
      {R"({"query": "q", "documents": "a"})", 400, "documents: expected an array, got string"},
      {R"({"query": "q", "documents": ["a", "b", "c", {"text": "d", "title": 5}]})", 400,
       "documents[3].title: expected a string, got number"},
      {R"({"query": "q", "documents": [{"title": "t"}]})", 400, "documents[0].text: missing"},
      {R"({"query": "q", "documents": [{"id": 3, "text": "t"}]})", 400, "documents[0].id: expected a string"},
      {R"({"query": "q", "documents": [true]})", 400,
       "documents[0]: expected a string or an object, got boolean"},
      {R"({"query": "q", "documents": ["a"], "top_n": "3"})", 400, "top_n: expected an integer, got string"},
      {R"({"query": "q", "documents": ["a"], "top_n": 2.5})", 400, "top_n: expected an integer, got number"},
      {R"({"query": "q", "documents": ["a"], "return_documents": "yes"})", 400,
       "return_documents: expected a boolean, got string"},
      {R"({"query": "q", "documents": ["a"], "max_tokens_per_doc": [1]})", 400,
       "max_tokens_per_doc: expected an integer, got array"},
      {R"({"query": "q", "texts": [1]})", 400, "texts[0]: expected a string, got number"},
      {R"({"query": "q", "texts": ["a"], "raw_scores": 1})", 400,
       "raw_scores: expected a boolean, got number"},
      {R"({"query": "q", "texts": ["a"], "documents": ["a"]})", 400,
       "texts: cannot be combined with documents"},
      {R"({"queries": {}})", 400, "queries: expected an array, got object"},
      {R"({"queries": ["q"]})", 400, "queries[0]: expected an object, got string"},
      {R"({"queries": [{"query": "q", "documents": ["a"]}, {"query": "q", "documents": [{"text": 1}]}]})",
       400, "queries[1].documents[0].text: expected a string, got number"},
      {R"({"queries": [], "query": "q"})", 400, "queries: cannot be combined with query, documents or texts"},
  });
}

TEST(ServeApi, EmptyAndOutOfRangeValuesAre422NamingTheField) {
  expect_failures({
      {R"({"query": "", "documents": ["a"]})", 422, "query: must not be empty"},
      {R"({"query": " \t", "documents": ["a"]})", 422, "query: must not be empty"},
      {R"({"query": "q", "documents": []})", 422, "documents: must not be empty"},
      {R"({"query": "q", "texts": []})", 422, "texts: must not be empty"},
      {R"({"queries": []})", 422, "queries: must not be empty"},
      {R"({"queries": [{"query": "", "documents": ["a"]}]})", 422, "queries[0].query: must not be empty"},
      {R"({"query": "q", "documents": ["a"], "top_n": 0})", 422, "top_n: must be at least 1, got 0"},
      {R"({"query": "q", "documents": ["a"], "top_n": -2})", 422, "top_n: must be at least 1, got -2"},
      {R"({"query": "q", "documents": ["a"], "max_tokens_per_doc": 0})", 422,
       "max_tokens_per_doc: must be at least 1, got 0"},
  });
}

TEST(ServeApi, LimitsNameTheLimitAndItsValue) {
  const std::string oversized = R"({"query": "q", "documents": [")" + std::string(1100, 'd') + R"("]})";
  expect_failures({
      {R"({"query": "q", "documents": ["1", "2", "3", "4", "5", "6"]})", 422,
       "documents: 6 documents exceed the limit max_documents=5"},
      {R"({"queries": [{"query": "a", "documents": ["1", "2", "3"]},)"
       R"( {"query": "b", "documents": ["4", "5", "6"]}]})",
       422, "queries: 6 documents in all exceed the limit max_documents=5"},
      {R"({"query": ")" + std::string(33, 'q') + R"(", "documents": ["a"]})", 422,
       "query: 33 bytes exceed the limit max_query_bytes=32"},
      {oversized, 413,
       "request body: " + std::to_string(oversized.size()) + " bytes exceed the limit max_body_bytes=1024"},
  });
  // At the limits, the request is accepted.
  EXPECT_EQ(
      parse_failure(R"({"query": ")" + std::string(32, 'q') + R"(", "documents": ["1", "2", "3", "4", "5"]})")
          .first,
      0);
}

TEST(ServeApi, InvalidUtf8NamesTheField) {
  const std::string in_title =
      "{\"query\": \"q\", \"documents\": [\"ok\", {\"title\": \"caf\xC3\", \"text\": \"x\"}]}";
  expect_failures({
      {in_title, 400,
       "documents[1].title: invalid UTF-8 (first bad byte at offset " +
           std::to_string(in_title.find('\xC3')) + " of the body)"},
      {"{\"query\": \"\xFF\", \"documents\": [\"a\"]}", 400,
       "query: invalid UTF-8 (first bad byte at offset 11 "},
      {"{\"query\": \"q\", \"texts\": [\"a\", \"\xED\xA0\x80\"]}", 400, "texts[1]: invalid UTF-8"},
      // Bad bytes in a member that is not read, or outside any string, still fail the request.
      {"{\"query\": \"q\", \"documents\": [\"a\"], \"model\": \"\xFF\"}", 400,
       "request body: invalid UTF-8 (first bad byte at offset 45 of the body)"},
      {"\xFF{\"query\": \"q\", \"documents\": [\"a\"]}", 400,
       "request body: invalid UTF-8 (first bad byte at offset 0"},
      // With a U+FFFD of the client's own in the body, the field cannot be told for sure: only the offset is.
      {"{\"query\": \"\xEF\xBF\xBD\", \"documents\": [\"\xFF\"]}", 400, "request body: invalid UTF-8"},
      {"{\"query\": \"\\uFFFD\", \"documents\": [\"\xFF\"]}", 400, "request body: invalid UTF-8"},
  });
  // Valid multi-byte text, and escapes, are fine.
  EXPECT_EQ(
      parse_failure("{\"query\": \"caf\xC3\xA9 \xE5\xA6\x82\", \"documents\": [\"\\u00e9\\ud83d\\ude00\"]}")
          .first,
      0);
}

// -----------------------------------------------------------------------------------------------------------
// Response rendering

json render(const std::string& body, const std::vector<QueryScores>& scores) {
  const RerankRequest request = parse_rerank_request(body, small_limits());
  return json::parse(to_json_text(render_rerank_response(
      request, scores, [](double raw) { return raw * 2; }, "m")));
}

TEST(ServeApi, RendersResultsByScoreWithTiesInRequestOrderAndTopN) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const json out =
      render(R"({"query": "q", "documents": ["a", {"id": "b", "title": "B", "text": "bb"}, "c", "d"],
                              "top_n": 3, "return_documents": true})",
             {{{1.0, 3.0, 1.0, nan}, 42}});
  EXPECT_EQ(out, json::parse(R"({
    "results": [
      {"index": 1, "id": "b", "relevance_score": 6.0, "document": {"id": "b", "title": "B", "text": "bb"}},
      {"index": 0, "relevance_score": 2.0, "document": {"text": "a"}},
      {"index": 2, "relevance_score": 2.0, "document": {"text": "c"}}],
    "model": "m", "usage": {"tokens": 42}})"));
}

TEST(ServeApi, RendersEveryDocumentWithoutTopNAndNanLast) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const json out =
      render(R"({"query": "q", "documents": ["a", "b", "c"], "top_n": 10})", {{{nan, -1.0, 0.5}, 3}});
  ASSERT_EQ(out["results"].size(), 3u);
  EXPECT_EQ(out["results"][0]["index"], 2);
  EXPECT_EQ(out["results"][1]["index"], 1);
  EXPECT_EQ(out["results"][2]["index"], 0);
  EXPECT_TRUE(out["results"][2]["relevance_score"].is_null());  // JSON has no NaN
  EXPECT_FALSE(out["results"][0].contains("document"));
}

TEST(ServeApi, RendersTeiResponsesRawOrTransformed) {
  EXPECT_EQ(render(R"({"query": "q", "texts": ["a", "b"]})", {{{1.0, 2.0}, 0}}),
            json::parse(R"([{"index": 1, "score": 4.0}, {"index": 0, "score": 2.0}])"));
  EXPECT_EQ(
      render(R"({"query": "q", "texts": ["a", "b"], "raw_scores": true, "return_text": true})",
             {{{1.0, 2.0}, 0}}),
      json::parse(R"([{"index": 1, "score": 2.0, "text": "b"}, {"index": 0, "score": 1.0, "text": "a"}])"));
}

TEST(ServeApi, RendersOneResponsePerQueryOfABatch) {
  const json out =
      render(R"({"queries": [{"query": "a", "documents": ["x", "y"]}, {"query": "b", "documents": ["z"]}]})",
             {{{1.0, 2.0}, 5}, {{0.5}, 2}});
  EXPECT_EQ(out, json::parse(R"({
    "results": [
      {"results": [{"index": 1, "relevance_score": 4.0}, {"index": 0, "relevance_score": 2.0}],
       "model": "m", "usage": {"tokens": 5}},
      {"results": [{"index": 0, "relevance_score": 1.0}], "model": "m", "usage": {"tokens": 2}}],
    "model": "m", "usage": {"tokens": 7}})"));
}

TEST(ServeApi, ErrorBodies) {
  EXPECT_EQ(to_json_text(error_body(422, "query: must not be empty")),
            R"({"error":{"status":422,"message":"query: must not be empty"}})");
  // A client's bad bytes quoted in a message do not make serialization throw.
  EXPECT_EQ(to_json_text(error_body(400, "bad \xFF")),
            "{\"error\":{\"status\":400,\"message\":\"bad \xEF\xBF\xBD\"}}");
}

// -----------------------------------------------------------------------------------------------------------
// Metrics

bool contains_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

TEST(ServeMetrics, ExposesPrometheusText) {
  Metrics metrics;
  metrics.record_request("/rerank", 200, 0.003);
  metrics.record_request("/rerank", 200, 0.2);
  metrics.record_request("other", 404, 0.001);
  metrics.record_batch(3, 2, 30);
  metrics.record_batch(1, 1, 4);
  metrics.record_scorer_failure();
  metrics.queue_pairs(5);
  metrics.dequeue_pairs(2);
  const std::string text = metrics.exposition();
  for (const char* line : {
           "# TYPE disranker_requests_total counter",
           R"(disranker_requests_total{route="/rerank",status="200"} 2)",
           R"(disranker_requests_total{route="other",status="404"} 1)",
           "# TYPE disranker_request_duration_seconds histogram",
           R"(disranker_request_duration_seconds_bucket{route="/rerank",le="0.005"} 1)",
           R"(disranker_request_duration_seconds_bucket{route="/rerank",le="0.1"} 1)",
           R"(disranker_request_duration_seconds_bucket{route="/rerank",le="0.25"} 2)",
           R"(disranker_request_duration_seconds_bucket{route="/rerank",le="10"} 2)",
           R"(disranker_request_duration_seconds_bucket{route="/rerank",le="+Inf"} 2)",
           R"(disranker_request_duration_seconds_count{route="/rerank"} 2)",
           R"(disranker_batch_pairs_bucket{le="1"} 1)",
           R"(disranker_batch_pairs_bucket{le="2"} 1)",
           R"(disranker_batch_pairs_bucket{le="4"} 2)",
           "disranker_batch_pairs_sum 4",
           "disranker_batch_pairs_count 2",
           R"(disranker_batch_requests_bucket{le="1"} 1)",
           R"(disranker_batch_requests_bucket{le="2"} 2)",
           "disranker_tokens_total 34",
           "disranker_errors_total 1",
           "disranker_scorer_failures_total 1",
           "# TYPE disranker_queued_pairs gauge",
           "disranker_queued_pairs 3",
       })
    EXPECT_TRUE(contains_line(text, line)) << line << "\n" << text;
  EXPECT_EQ(metrics.batches_with_more_requests_than(1), 1u);
  EXPECT_EQ(metrics.requests("/rerank", 200), 2u);
}

TEST(ServeMetrics, CountsFromManyThreads) {
  Metrics metrics;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        metrics.record_request("/rerank", 200, 0.01);
        metrics.record_batch(2, 1, 3);
      }
    });
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(metrics.requests("/rerank", 200), 4000u);
  EXPECT_TRUE(contains_line(metrics.exposition(), "disranker_tokens_total 12000"));
}

// -----------------------------------------------------------------------------------------------------------
// Batching

PairGroup group_of(const std::string& query, const std::vector<std::string>& texts,
                   std::size_t max_tokens_per_doc = 0) {
  PairGroup group;
  group.query = query;
  for (const std::string& text : texts) group.docs.push_back({"", text});
  group.max_tokens_per_doc = max_tokens_per_doc;
  return group;
}

std::vector<std::size_t> batch_sizes(FakeScorer& scorer) {
  std::vector<std::size_t> sizes;
  for (const std::vector<EncodedPair>& batch : scorer.batches()) sizes.push_back(batch.size());
  return sizes;
}

TEST(ServeBatcher, ScoresAGroupInDocumentOrderWithItsTokens) {
  FakeScorer scorer;
  Batcher batcher(scorer, {});
  const GroupScores scores = batcher.submit(group_of("red fox", {"a red fox", "blue", "red"})).get();
  EXPECT_EQ(scores.raw, (std::vector<double>{2, 0, 1}));
  EXPECT_EQ(scores.tokens, 5u + 3u + 3u);
  EXPECT_TRUE(batcher.submit(group_of("q", {})).get().raw.empty());
}

TEST(ServeBatcher, GroupsThatWaitTogetherShareOneModelCall) {
  FakeScorer scorer;
  Metrics metrics;
  Batcher batcher(scorer, {}, &metrics);
  scorer.gate.close();
  auto first = batcher.submit(group_of("a", {"a"}));
  ASSERT_TRUE(scorer.gate.wait_entered(1));  // the worker is busy with the first group...
  std::vector<std::future<GroupScores>> waiting;
  for (const char* query : {"b", "c", "d"})
    waiting.push_back(batcher.submit(group_of(query, {query, "x y"})));
  EXPECT_EQ(metrics.queued_pairs(), 6u);
  scorer.gate.open();  // ...so the other three are in the queue together when it comes back
  EXPECT_EQ(first.get().raw, (std::vector<double>{1}));
  for (auto& future : waiting) {
    const GroupScores scores = future.get();
    EXPECT_EQ(scores.raw, (std::vector<double>{1, 0}));
    EXPECT_EQ(scores.tokens, 2u + 3u);  // the group's own share of the batch's tokens
  }
  EXPECT_EQ(batch_sizes(scorer), (std::vector<std::size_t>{1, 6}));
  EXPECT_EQ(metrics.batches_with_more_requests_than(1), 1u);
  EXPECT_EQ(metrics.queued_pairs(), 0u);
}

TEST(ServeBatcher, CutsBatchesAtThePairBudget) {
  FakeScorer scorer;
  BatcherOptions options;
  options.max_pairs = 4;
  Batcher batcher(scorer, options);
  std::vector<std::string> texts;
  for (int i = 0; i < 10; ++i) texts.push_back(i % 3 == 0 ? "hit" : "miss");
  const GroupScores scores = batcher.submit(group_of("hit", texts)).get();
  EXPECT_EQ(scores.raw, (std::vector<double>{1, 0, 0, 1, 0, 0, 1, 0, 0, 1}));
  EXPECT_EQ(batch_sizes(scorer), (std::vector<std::size_t>{4, 4, 2}));
  EXPECT_EQ(scores.tokens, 20u);
}

TEST(ServeBatcher, CutsAGroupShortestFirstAtTheTokenBudgetAndScoresALongPairAlone) {
  FakeScorer scorer;
  BatcherOptions options;
  options.max_tokens = 10;
  Batcher batcher(scorer, options);
  std::vector<std::string> texts(6, "w");                      // 2 tokens a pair with the query
  texts.push_back("x y");                                      // 3 tokens
  texts.push_back("a b c d e f g h i j k l m n o p q r s t");  // 21 tokens with the query
  texts.push_back("w");
  batcher.submit(group_of("q", texts)).get();
  // Shortest first: five 2-token pairs (10 tokens), then 2 + 2 + 3, then the 21-token pair alone.
  EXPECT_EQ(batch_sizes(scorer), (std::vector<std::size_t>{5, 3, 1}));
  std::vector<std::size_t> lengths;
  for (const std::vector<EncodedPair>& batch : scorer.batches())
    for (const EncodedPair& pair : batch) lengths.push_back(pair.ids.size());
  EXPECT_EQ(lengths, (std::vector<std::size_t>{2, 2, 2, 2, 2, 2, 2, 3, 21}));
}

TEST(ServeBatcher, SortsABatchByLengthAndPutsTheScoresBack) {
  FakeScorer scorer;
  Batcher batcher(scorer, {});
  const GroupScores scores =
      batcher.submit(group_of("fox", {"one two three four fox", "fox", "a b fox", "none"})).get();
  EXPECT_EQ(scores.raw, (std::vector<double>{1, 1, 1, 0}));
  const std::vector<std::vector<EncodedPair>> batches = scorer.batches();
  ASSERT_EQ(batches.size(), 1u);
  std::vector<std::size_t> lengths;
  for (const EncodedPair& pair : batches[0]) lengths.push_back(pair.ids.size());
  EXPECT_EQ(lengths, (std::vector<std::size_t>{2, 2, 4, 6}));
}

TEST(ServeBatcher, EncodesEachRequestUnderItsOwnDocumentBudgetAndStillSharesModelCalls) {
  FakeScorer scorer;
  Batcher batcher(scorer, {});
  scorer.gate.close();
  auto first = batcher.submit(group_of("a", {"a"}));
  ASSERT_TRUE(scorer.gate.wait_entered(1));
  auto b = batcher.submit(group_of("b", {"b x y"}, 1));  // the document cut to "b"
  auto c = batcher.submit(group_of("c", {"x c"}, 1));    // cut to "x": the query word is lost
  auto d = batcher.submit(group_of("d", {"x y d"}));     // no budget
  scorer.gate.open();
  EXPECT_EQ(first.get().raw, (std::vector<double>{1}));
  const GroupScores scores_b = b.get(), scores_c = c.get(), scores_d = d.get();
  EXPECT_EQ(scores_b.raw, (std::vector<double>{1}));
  EXPECT_EQ(scores_c.raw, (std::vector<double>{0}));
  EXPECT_EQ(scores_d.raw, (std::vector<double>{1}));
  EXPECT_EQ(scores_b.tokens, 2u);
  EXPECT_EQ(scores_c.tokens, 2u);
  EXPECT_EQ(scores_d.tokens, 4u);
  // The three waiting requests, budgets mixed, went to the model together.
  const std::vector<std::vector<EncodedPair>> batches = scorer.batches();
  ASSERT_EQ(batches.size(), 2u);
  std::vector<std::string> queries;
  for (const EncodedPair& pair : batches[1]) queries.push_back(scorer.query_of(pair));
  EXPECT_EQ(queries, (std::vector<std::string>{"b", "c", "d"}));
}

TEST(ServeBatcher, AScorerErrorReachesTheGroupsOfItsBatchOnly) {
  FakeScorer scorer;
  Metrics metrics;
  Batcher batcher(scorer, {}, &metrics);
  scorer.gate.close();
  auto first = batcher.submit(group_of("a", {"a"}));
  ASSERT_TRUE(scorer.gate.wait_entered(1));
  auto boom = batcher.submit(group_of("boom", {"x", "y"}));
  auto neighbour = batcher.submit(group_of("b", {"b"}));  // shares the failing batch
  scorer.gate.open();
  EXPECT_EQ(first.get().raw, (std::vector<double>{1}));
  for (auto* future : {&boom, &neighbour}) {
    try {
      future->get();
      ADD_FAILURE() << "expected the scorer's error";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "the model fell over");
    }
  }
  EXPECT_EQ(batcher.submit(group_of("c", {"c"})).get().raw, (std::vector<double>{1}));
  EXPECT_TRUE(contains_line(metrics.exposition(), "disranker_scorer_failures_total 1"));
  EXPECT_EQ(metrics.queued_pairs(), 0u);
}

TEST(ServeBatcher, AnEncodingErrorReachesItsGroupOnly) {
  FakeScorer scorer;
  Batcher batcher(scorer, {});
  auto bad = batcher.submit(group_of("unreadable", {"x"}));
  EXPECT_THROW(bad.get(), std::runtime_error);
  EXPECT_EQ(batcher.submit(group_of("c", {"c"})).get().raw, (std::vector<double>{1}));
}

TEST(ServeBatcher, StopScoresWhatWasSubmittedThenRefuses) {
  FakeScorer scorer;
  Batcher batcher(scorer, {});
  scorer.gate.close();
  auto first = batcher.submit(group_of("a", {"a"}));
  ASSERT_TRUE(scorer.gate.wait_entered(1));
  auto second = batcher.submit(group_of("b", {"b", "c"}));
  std::thread stopper([&] { batcher.stop(); });  // waits for the work in flight and in the queue
  scorer.gate.open();
  EXPECT_EQ(first.get().raw, (std::vector<double>{1}));
  EXPECT_EQ(second.get().raw, (std::vector<double>{1, 0}));
  stopper.join();
  auto late = batcher.submit(group_of("c", {"c"}));
  EXPECT_THROW(late.get(), BatcherStopped);
  batcher.stop();  // idempotent
}

// -----------------------------------------------------------------------------------------------------------
// The HTTP server

ServeOptions test_options() {
  ServeOptions options;
  options.port = 0;
  options.max_documents = 50;
  options.max_query_bytes = 256;
  options.max_body_bytes = 64 << 10;
  options.threads = 8;
  return options;
}

// Polls `condition` until it holds: for state that the server updates after the client has its response.
bool eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

class ServeServer : public ::testing::Test {
 protected:
  void SetUp() override { start(test_options()); }

  void start(const ServeOptions& options) {
    server_ = std::make_unique<Server>(scorer_, options);
    thread_ = std::thread([this] {
      try {
        server_->listen();
      } catch (const std::exception& e) {
        listen_error_ = e.what();
      }
    });
    ASSERT_TRUE(eventually([this] { return server_->listening() || !listen_error_.empty(); }));
    ASSERT_EQ(listen_error_, "");
    ASSERT_GT(server_->port(), 0);
  }

  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  httplib::Client client() const { return httplib::Client("127.0.0.1", server_->port()); }

  httplib::Result post(const std::string& body, const std::string& path = "/rerank") const {
    return client().Post(path.c_str(), body, "application/json");
  }

  // The parsed body of a 200 response to POST /rerank.
  json rerank(const std::string& body) const {
    const httplib::Result res = post(body);
    if (!res) {
      ADD_FAILURE() << "no response: " << httplib::to_string(res.error());
      return nullptr;
    }
    EXPECT_EQ(res->status, 200) << res->body;
    return json::parse(res->body);
  }

  std::string metrics_text() const {
    const httplib::Result res = client().Get("/metrics");
    return res && res->status == 200 ? res->body : "";
  }

  FakeScorer scorer_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::string listen_error_;
};

TEST_F(ServeServer, HealthNamesTheModel) {
  const httplib::Result res = client().Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(json::parse(res->body), json::parse(R"({"status": "ok", "model": "fake-model"})"));
}

TEST_F(ServeServer, RerankSortsByScoreWithIndexIntoTheRequest) {
  const json out =
      rerank(R"({"query": "red fox",)"
             R"( "documents": ["blue sky", {"id": "d2", "title": "Red", "text": "a fox"}, "red"]})");
  EXPECT_EQ(out, json::parse(R"({
    "results": [{"index": 1, "id": "d2", "relevance_score": 0.2}, {"index": 2, "relevance_score": 0.1},
                {"index": 0, "relevance_score": 0.0}],
    "model": "fake-model", "usage": {"tokens": 12}})"));
}

TEST_F(ServeServer, TopNAndReturnDocuments) {
  const json out =
      rerank(R"({"query": "red fox", "documents": ["fox", {"id": "d2", "text": "red fox"}, "none"],
                              "top_n": 2, "return_documents": true})");
  EXPECT_EQ(out["results"], json::parse(R"([
    {"index": 1, "id": "d2", "relevance_score": 0.2, "document": {"id": "d2", "text": "red fox"}},
    {"index": 0, "relevance_score": 0.1, "document": {"text": "fox"}}])"));
}

TEST_F(ServeServer, TeiShapeReportsRawOrTransformedScores) {
  EXPECT_EQ(
      rerank(R"({"query": "red fox", "texts": ["red", "red fox", "blue"], "raw_scores": true})"),
      json::parse(R"([{"index": 1, "score": 2.0}, {"index": 0, "score": 1.0}, {"index": 2, "score": 0.0}])"));
  EXPECT_EQ(
      rerank(R"({"query": "red fox", "texts": ["red", "red fox"], "return_text": true})"),
      json::parse(
          R"([{"index": 1, "score": 0.2, "text": "red fox"}, {"index": 0, "score": 0.1, "text": "red"}])"));
}

TEST_F(ServeServer, BatchShapeAnswersEachQueryAsASingleRequestWould) {
  const std::string first = R"({"query": "red fox", "documents": ["fox", "red fox", "none"], "top_n": 2})";
  const std::string second =
      R"({"query": "blue", "documents": ["blue sky", "red"], "return_documents": true})";
  const json out = rerank(R"({"queries": [)" + first + ", " + second + "]}");
  ASSERT_EQ(out["results"].size(), 2u);
  EXPECT_EQ(out["results"][0], rerank(first));
  EXPECT_EQ(out["results"][1], rerank(second));
  EXPECT_EQ(out["model"], "fake-model");
  EXPECT_EQ(out["usage"]["tokens"], out["results"][0]["usage"]["tokens"].get<int>() +
                                        out["results"][1]["usage"]["tokens"].get<int>());
}

TEST_F(ServeServer, EveryErrorIsJsonWithItsStatus) {
  struct Case {
    std::string method, path, body;
    int status;
    std::string message;  // the start of it
  };
  std::string many_documents = R"({"query": "q", "documents": [)";
  for (int i = 0; i < 51; ++i) many_documents += std::string(i > 0 ? ", " : "") + "\"d\"";
  many_documents += "]}";
  const std::string oversized = R"({"query": "q", "documents": [")" + std::string(100 << 10, 'x') + R"("]})";
  const std::string bad_utf8 = "{\"query\": \"q\", \"documents\": [\"ok\", {\"text\": \"\xC0\xAF\"}]}";
  const std::vector<Case> cases = {
      {"POST", "/rerank", R"({"query": "q", "documents": ["a")", 400, "malformed JSON: parse error"},
      {"POST", "/rerank", R"({"query": "q", "documents": ["a", {"text": "b", "title": 3}]})", 400,
       "documents[1].title: expected a string, got number"},
      {"POST", "/rerank", many_documents, 422, "documents: 51 documents exceed the limit max_documents=50"},
      {"POST", "/rerank", R"({"query": ")" + std::string(257, 'q') + R"(", "documents": ["a"]})", 422,
       "query: 257 bytes exceed the limit max_query_bytes=256"},
      {"POST", "/rerank", oversized, 413, "request body: over the limit max_body_bytes=65536"},
      {"POST", "/rerank", R"({"query": "", "documents": ["a"]})", 422, "query: must not be empty"},
      {"POST", "/rerank", R"({"query": "q", "documents": []})", 422, "documents: must not be empty"},
      {"POST", "/rerank", bad_utf8, 400, "documents[1].text: invalid UTF-8"},
      {"GET", "/nowhere", "", 404, "no route GET /nowhere"},
      {"POST", "/nowhere", "{}", 404, "no route POST /nowhere"},
      {"GET", "/rerank", "", 405, "GET /rerank: method not allowed; use POST"},
      {"POST", "/health", "{}", 405, "POST /health: method not allowed; use GET"},
      {"DELETE", "/metrics", "", 405, "DELETE /metrics: method not allowed; use GET"},
  };
  for (const Case& c : cases) {
    httplib::Client cli = client();
    const httplib::Result res = c.method == "GET"    ? cli.Get(c.path.c_str())
                                : c.method == "POST" ? cli.Post(c.path.c_str(), c.body, "application/json")
                                                     : cli.Delete(c.path.c_str());
    const std::string what = c.method + " " + c.path + " " + c.body.substr(0, 80);
    ASSERT_TRUE(res) << what << ": " << httplib::to_string(res.error());
    EXPECT_EQ(res->status, c.status) << what << " → " << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json") << what;
    const json body = json::parse(res->body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << what << " → " << res->body;
    EXPECT_EQ(body["error"]["status"], c.status) << what;
    EXPECT_TRUE(starts_with(body["error"]["message"].get<std::string>(), c.message))
        << what << " → " << res->body << "; expected " << c.message;
    if (c.status == 405) {
      EXPECT_EQ(res->get_header_value("Allow"), c.method == "GET" ? "POST" : "GET");
    }
  }
  // The server is fine after all that.
  EXPECT_EQ(rerank(R"({"query": "q", "documents": ["q"]})")["results"][0]["relevance_score"], 0.1);
}

TEST_F(ServeServer, ReadsTheBodyWhateverItsFraming) {
  // curl -d sends a form content type; the body is JSON all the same, and longer than httplib's 8 KiB form
  // limit.
  const std::string long_document(10 << 10, 'x');
  const httplib::Result form =
      client().Post("/rerank", json{{"query", "x"}, {"documents", {long_document, "x"}}}.dump(),
                    "application/x-www-form-urlencoded");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->status, 200) << form->body;

  // A chunked body has no Content-Length for httplib to check: the server stops reading it at the limit.
  const std::string oversized = R"({"query": "q", "documents": [")" + std::string(100 << 10, 'x') + R"("]})";
  std::size_t sent = 0;
  const httplib::Result chunked = client().Post(
      "/rerank",
      [&](std::size_t, httplib::DataSink& sink) {
        if (sent == oversized.size()) {
          sink.done();
          return true;
        }
        const std::size_t length = std::min<std::size_t>(4096, oversized.size() - sent);
        sent += length;
        return sink.write(oversized.data() + sent - length, length);
      },
      "application/json");
  // The server answers 413 and closes the connection; a client still sending may see the close instead.
  if (chunked) {
    EXPECT_EQ(chunked->status, 413);
    EXPECT_TRUE(starts_with(json::parse(chunked->body)["error"]["message"], "request body: over the limit"));
  }
  EXPECT_TRUE(eventually([&] {
    return contains_line(metrics_text(), R"(disranker_requests_total{route="/rerank",status="413"} 1)");
  }));

  const httplib::Result multipart =
      client().Post("/rerank", httplib::MultipartFormDataItems{{"query", "q", "", ""}});
  ASSERT_TRUE(multipart);
  EXPECT_EQ(multipart->status, 415);
  EXPECT_EQ(json::parse(multipart->body)["error"]["message"],
            "request body: multipart/form-data is not supported; send JSON");
}

TEST_F(ServeServer, ConcurrentClientsGetTheAnswersOfSingleRequests) {
  const std::vector<std::string> queries = {"red fox", "blue sky", "quick brown fox", "lazy dog", "fox"};
  const auto body_of = [](const std::string& query) {
    return json{{"query", query},
                {"documents", {"the quick brown fox", "a red sky", "lazy blue dog", "fox", "nothing here"}},
                {"top_n", 4}}
        .dump();
  };
  std::vector<std::string> expected;
  for (const std::string& query : queries) expected.push_back(post(body_of(query))->body);

  std::atomic<int> failures{0};
  std::atomic<int> successes{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 16; ++t)
    clients.emplace_back([&, t] {
      httplib::Client cli("127.0.0.1", server_->port());
      for (int i = 0; i < 20; ++i) {
        const std::size_t q = static_cast<std::size_t>(t + i) % queries.size();
        const httplib::Result res = cli.Post("/rerank", body_of(queries[q]), "application/json");
        if (res && res->status == 200 && res->body == expected[q])
          ++successes;
        else
          ++failures;
      }
    });
  for (std::thread& thread : clients) thread.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(successes, 320);
}

TEST_F(ServeServer, RequestsArrivingTogetherShareAModelCall) {
  scorer_.gate.close();
  std::vector<std::thread> clients;
  std::vector<int> statuses(4, 0);
  const auto send = [&](std::size_t k, const std::string& query) {
    clients.emplace_back([&, k, query] {
      const httplib::Result res = post(json{{"query", query}, {"documents", {query}}}.dump());
      statuses[k] = res ? res->status : -1;
    });
  };
  send(0, "first");
  ASSERT_TRUE(scorer_.gate.wait_entered(1));  // the model is busy with the first request...
  send(1, "b");
  send(2, "c");
  send(3, "d");
  // ...while the other three queue up.
  EXPECT_TRUE(eventually([&] { return contains_line(metrics_text(), "disranker_queued_pairs 3"); }));
  scorer_.gate.open();
  for (std::thread& thread : clients) thread.join();
  EXPECT_EQ(statuses, (std::vector<int>{200, 200, 200, 200}));
  const std::string text = metrics_text();
  EXPECT_TRUE(contains_line(text, R"(disranker_batch_requests_bucket{le="1"} 1)")) << text;
  EXPECT_TRUE(contains_line(text, R"(disranker_batch_requests_bucket{le="2"} 1)")) << text;
  EXPECT_TRUE(contains_line(text, R"(disranker_batch_requests_bucket{le="4"} 2)")) << text;
  EXPECT_TRUE(contains_line(text, "disranker_batch_pairs_count 2")) << text;
  EXPECT_EQ(server_->metrics().batches_with_more_requests_than(1), 1u);
}

TEST_F(ServeServer, AScorerErrorIs500AndTheServerGoesOn) {
  const httplib::Result res = post(R"({"query": "boom", "documents": ["a"]})");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);
  EXPECT_EQ(json::parse(res->body),
            json::parse(R"({"error": {"status": 500, "message": "scoring failed: the model fell over"}})"));
  EXPECT_EQ(rerank(R"({"query": "a", "documents": ["a"]})")["results"][0]["relevance_score"], 0.1);
  EXPECT_TRUE(contains_line(metrics_text(), "disranker_scorer_failures_total 1"));
}

TEST_F(ServeServer, MetricsCountRequestsByRouteAndStatus) {
  ASSERT_TRUE(client().Get("/health"));
  ASSERT_TRUE(client().Get("/nowhere"));
  rerank(R"({"query": "a b", "documents": ["a", "b c"]})");
  const httplib::Result res = client().Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  // The server counts a request after it has sent the response, so the last ones may take a moment to show.
  const std::vector<std::string> lines = {
      R"(disranker_requests_total{route="/health",status="200"} 1)",
      R"(disranker_requests_total{route="other",status="404"} 1)",
      R"(disranker_requests_total{route="/rerank",status="200"} 1)",
      R"(disranker_request_duration_seconds_count{route="/rerank"} 1)",
      "disranker_tokens_total 7",
      "disranker_errors_total 1",
  };
  for (const std::string& line : lines)
    EXPECT_TRUE(eventually([&] { return contains_line(metrics_text(), line); })) << line << "\n"
                                                                                 << metrics_text();
}

TEST_F(ServeServer, StopFinishesTheRequestInFlight) {
  scorer_.gate.close();
  int status = 0;
  std::string body;
  std::thread client_thread([&] {
    const httplib::Result res = post(R"({"query": "red", "documents": ["red", "blue"]})");
    status = res ? res->status : -1;
    body = res ? res->body : "";
  });
  ASSERT_TRUE(scorer_.gate.wait_entered(1));
  server_->stop();
  EXPECT_FALSE(client().Get("/health")) << "a stopped server accepts no new connections";
  scorer_.gate.open();
  client_thread.join();
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(json::parse(body)["results"][0]["index"], 0);
  thread_.join();  // listen() returns once the request is answered
  EXPECT_FALSE(server_->listening());
}

TEST(ServeServerLifecycle, ABusyPortIsAClearError) {
  FakeScorer scorer;
  Server first(scorer, test_options());
  std::thread thread([&] { first.listen(); });
  ASSERT_TRUE(eventually([&] { return first.listening(); }));
  ServeOptions options = test_options();
  options.port = first.port();
  Server second(scorer, options);
  try {
    second.listen();
    ADD_FAILURE() << "a second server bound the busy port " << options.port;
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(starts_with(e.what(), "cannot listen on 127.0.0.1:" + std::to_string(options.port) + ": "))
        << e.what();
  }
  first.stop();
  thread.join();
}

TEST(ServeServerLifecycle, StopBeforeListenMakesListenReturnAtOnce) {
  FakeScorer scorer;
  Server server(scorer, test_options());
  server.stop();
  server.listen();
  EXPECT_FALSE(server.listening());
}

TEST(ServeServerLifecycle, RejectsInvalidOptions) {
  FakeScorer scorer;
  ServeOptions options = test_options();
  options.threads = 0;
  EXPECT_THROW(Server server(scorer, options), std::invalid_argument);
  options = test_options();
  options.batch_pairs = 0;
  EXPECT_THROW(Server server(scorer, options), std::invalid_argument);
}

}  // namespace
}  // namespace disranker::serve
