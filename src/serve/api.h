// The JSON API of `disranker serve`: request bodies in, response bodies out (docs/serve.md).
//
// Three request shapes share POST /rerank:
//   Cohere/Jina  {"query", "documents": ["text" | {"id", "title", "text"}], "top_n", "return_documents",
//                 "max_tokens_per_doc"}
//   TEI          {"query", "texts": ["text"], "raw_scores", "return_text"}
//   batch        {"queries": [<Cohere/Jina request>, ...]}
// Parsing validates everything before any scoring, so that a bad request costs no model time and its error
// names the field: "documents[3].title: expected a string".
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace disranker::serve {

// An error to answer with: the HTTP status and a message that names the field or the limit.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

struct RequestLimits {
  std::size_t max_documents = 1000;  // per request, all queries of a batch request together
  std::size_t max_query_bytes = 2048;
  std::size_t max_body_bytes = 8 << 20;
};

enum class RequestShape { kRerank, kTei, kBatch };

struct RequestDocument {
  std::optional<std::string> id;  // only object documents have an id or a title
  std::optional<std::string> title;
  std::string text;
};

struct QueryRequest {
  std::string query;
  std::vector<RequestDocument> documents;
  std::size_t top_n = 0;               // 0 = every document
  bool return_documents = false;       // TEI: return_text
  std::size_t max_tokens_per_doc = 0;  // caps each document's title + text tokens; 0 = no cap
  bool raw_scores = false;             // TEI only: report raw scores instead of transformed ones
};

struct RerankRequest {
  RequestShape shape = RequestShape::kRerank;
  std::vector<QueryRequest> queries;  // exactly one unless shape == kBatch
};

// Parses and validates a POST /rerank body. Throws ApiError:
//   400  malformed JSON, a wrong type, a missing field, invalid UTF-8 (the field named when it can be found);
//   413  a body over limits.max_body_bytes;
//   422  an empty query or document list, a value out of range, more documents than limits.max_documents or a
//        query longer than limits.max_query_bytes (the message names the limit and its value).
RerankRequest parse_rerank_request(std::string_view body, const RequestLimits& limits);

// The model's output for one query of a request: raw scores in document order, and the tokens it read.
struct QueryScores {
  std::vector<double> raw;
  std::size_t tokens = 0;
};

// The response body for `request`, given scores[i] for request.queries[i]: results sorted by score,
// descending (ties: lower index first; a NaN score last), top_n applied, "index" into the request's document
// order. `transform` maps a raw score to the reported one (TEI's raw_scores skips it).
nlohmann::ordered_json render_rerank_response(const RerankRequest& request,
                                              const std::vector<QueryScores>& scores,
                                              const std::function<double(double)>& transform,
                                              const std::string& model);

// {"error": {"status": 400, "message": "..."}}
nlohmann::ordered_json error_body(int status, std::string_view message);

// Serializes a response. Never throws on bad UTF-8 (an error message may quote a client's bytes): such bytes
// become U+FFFD.
std::string to_json_text(const nlohmann::ordered_json& value);

}  // namespace disranker::serve
