#include "serve/api.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>

#include "core/utf8.h"

namespace disranker::serve {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr auto npos = std::string_view::npos;
constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

std::string member_path(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

std::string element_path(const std::string& path, std::size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

std::string got(const json& value) {
  return std::string(", got ") + value.type_name();
}

// A member that is absent or null: clients generated from OpenAPI specs send null for unset optional fields.
const json* optional_member(const json& object, const std::string& key) {
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; the client needs only the rest.
std::string parse_error_message(const char* what) {
  const std::string_view message(what);
  const std::size_t end = message.find("] ");
  return std::string(end == npos ? message : message.substr(end + 2));
}

bool contains_escaped_replacement_character(std::string_view body) {
  for (std::size_t pos = body.find("\\u"); pos != npos; pos = body.find("\\u", pos + 2)) {
    std::string hex(body.substr(pos + 2, 4));
    std::transform(hex.begin(), hex.end(), hex.begin(),
                   [](char c) { return static_cast<char>(std::tolower(c)); });
    if (hex == "fffd") return true;
  }
  return false;
}

class RequestParser {
 public:
  RequestParser(std::string_view body, const RequestLimits& limits) : body_(body), limits_(limits) {}

  RerankRequest parse() {
    if (body_.size() > limits_.max_body_bytes)
      throw ApiError(413,
                     "request body: " + std::to_string(body_.size()) +
                         " bytes exceed the limit max_body_bytes=" + std::to_string(limits_.max_body_bytes));
    const json root = parse_json();
    if (!root.is_object()) throw ApiError(400, "request body: expected a JSON object" + got(root));

    RerankRequest request;
    const bool has_documents = root.contains("documents"), has_texts = root.contains("texts");
    if (root.contains("queries")) {
      if (root.contains("query") || has_documents || has_texts)
        throw ApiError(400, "queries: cannot be combined with query, documents or texts");
      request.shape = RequestShape::kBatch;
      parse_batch(root.at("queries"), request);
    } else if (has_texts) {
      if (has_documents) throw ApiError(400, "texts: cannot be combined with documents");
      request.shape = RequestShape::kTei;
      request.queries.push_back(parse_query(root, "", RequestShape::kTei));
    } else {
      request.queries.push_back(parse_query(root, "", RequestShape::kRerank));
    }
    // Bad bytes that no field we read holds (an ignored member, a key) still make the request invalid.
    if (bad_utf8_offset_ != npos) throw ApiError(400, "request body: " + bad_utf8_description());
    return request;
  }

 private:
  // nlohmann's parser rejects invalid UTF-8 without saying in which field it is. So bad bytes are replaced by
  // U+FFFD, the repaired body parsed, and the first string read that holds a U+FFFD names the field; when the
  // client sent U+FFFD of its own, that would be a guess, and only the byte offset is given.
  json parse_json() {
    std::string repaired;
    std::string_view text = body_;
    bad_utf8_offset_ = find_invalid_utf8(body_);
    if (bad_utf8_offset_ != npos) {
      repaired = replace_invalid_utf8(body_);
      text = repaired;
      can_name_bad_utf8_field_ =
          body_.find(kReplacementCharacter) == npos && !contains_escaped_replacement_character(body_);
    }
    try {
      return json::parse(text);
    } catch (const json::parse_error& e) {
      if (bad_utf8_offset_ != npos) throw ApiError(400, "request body: " + bad_utf8_description());
      throw ApiError(400, "malformed JSON: " + parse_error_message(e.what()));
    }
  }

  std::string bad_utf8_description() const {
    return "invalid UTF-8 (first bad byte at offset " + std::to_string(bad_utf8_offset_) + " of the body)";
  }

  std::string string_value(const json& value, const std::string& path) {
    if (!value.is_string()) throw ApiError(400, path + ": expected a string" + got(value));
    std::string text = value.get<std::string>();
    if (bad_utf8_offset_ != npos && can_name_bad_utf8_field_ && text.find(kReplacementCharacter) != npos)
      throw ApiError(400, path + ": " + bad_utf8_description());
    return text;
  }

  std::string required_string(const json& object, const std::string& prefix, const std::string& key) {
    const json* value = optional_member(object, key);
    if (value == nullptr) throw ApiError(400, member_path(prefix, key) + ": missing");
    return string_value(*value, member_path(prefix, key));
  }

  std::optional<std::string> optional_string(const json& object, const std::string& prefix,
                                             const std::string& key) {
    const json* value = optional_member(object, key);
    if (value == nullptr) return std::nullopt;
    return string_value(*value, member_path(prefix, key));
  }

  static bool optional_bool(const json& object, const std::string& prefix, const std::string& key) {
    const json* value = optional_member(object, key);
    if (value == nullptr) return false;
    if (!value->is_boolean())
      throw ApiError(400, member_path(prefix, key) + ": expected a boolean" + got(*value));
    return value->get<bool>();
  }

  // 0 when absent; otherwise at least 1.
  static std::size_t optional_positive_integer(const json& object, const std::string& prefix,
                                               const std::string& key) {
    const json* value = optional_member(object, key);
    if (value == nullptr) return 0;
    const std::string path = member_path(prefix, key);
    if (!value->is_number_integer()) throw ApiError(400, path + ": expected an integer" + got(*value));
    if (!value->is_number_unsigned() || value->get<std::uint64_t>() == 0)
      throw ApiError(422, path + ": must be at least 1, got " + value->dump());
    return static_cast<std::size_t>(value->get<std::uint64_t>());
  }

  const json& document_array(const json& object, const std::string& prefix, const std::string& key) {
    const json* value = optional_member(object, key);
    const std::string path = member_path(prefix, key);
    if (value == nullptr) throw ApiError(400, path + ": missing");
    if (!value->is_array()) throw ApiError(400, path + ": expected an array" + got(*value));
    if (value->empty()) throw ApiError(422, path + ": must not be empty");
    if (value->size() > limits_.max_documents)
      throw ApiError(
          422, path + ": " + std::to_string(value->size()) +
                   " documents exceed the limit max_documents=" + std::to_string(limits_.max_documents));
    return *value;
  }

  RequestDocument parse_document(const json& value, const std::string& path, RequestShape shape) {
    RequestDocument document;
    if (value.is_string() || shape == RequestShape::kTei) {  // TEI's texts are strings only
      document.text = string_value(value, path);
      return document;
    }
    if (!value.is_object()) throw ApiError(400, path + ": expected a string or an object" + got(value));
    document.id = optional_string(value, path, "id");
    document.title = optional_string(value, path, "title");
    document.text = required_string(value, path, "text");
    return document;
  }

  QueryRequest parse_query(const json& object, const std::string& prefix, RequestShape shape) {
    QueryRequest query;
    query.query = required_string(object, prefix, "query");
    const std::string query_path = member_path(prefix, "query");
    if (is_blank(query.query)) throw ApiError(422, query_path + ": must not be empty");
    if (query.query.size() > limits_.max_query_bytes)
      throw ApiError(
          422, query_path + ": " + std::to_string(query.query.size()) +
                   " bytes exceed the limit max_query_bytes=" + std::to_string(limits_.max_query_bytes));

    const std::string documents_key = shape == RequestShape::kTei ? "texts" : "documents";
    const json& documents = document_array(object, prefix, documents_key);
    const std::string documents_path = member_path(prefix, documents_key);
    query.documents.reserve(documents.size());
    for (std::size_t i = 0; i < documents.size(); ++i)
      query.documents.push_back(parse_document(documents[i], element_path(documents_path, i), shape));

    if (shape == RequestShape::kTei) {
      query.raw_scores = optional_bool(object, prefix, "raw_scores");
      query.return_documents = optional_bool(object, prefix, "return_text");
    } else {
      query.top_n = optional_positive_integer(object, prefix, "top_n");
      query.return_documents = optional_bool(object, prefix, "return_documents");
      query.max_tokens_per_doc = optional_positive_integer(object, prefix, "max_tokens_per_doc");
    }
    return query;
  }

  void parse_batch(const json& queries, RerankRequest& request) {
    if (!queries.is_array()) throw ApiError(400, "queries: expected an array" + got(queries));
    if (queries.empty()) throw ApiError(422, "queries: must not be empty");
    // The document limit holds for the request as a whole, so check it before any work on the parts.
    std::size_t total_documents = 0;
    for (const json& entry : queries) {
      if (const json* documents = entry.is_object() ? optional_member(entry, "documents") : nullptr;
          documents != nullptr && documents->is_array())
        total_documents += documents->size();
    }
    if (total_documents > limits_.max_documents)
      throw ApiError(422, "queries: " + std::to_string(total_documents) +
                              " documents in all exceed the limit max_documents=" +
                              std::to_string(limits_.max_documents));
    for (std::size_t i = 0; i < queries.size(); ++i) {
      const std::string path = element_path("queries", i);
      if (!queries[i].is_object()) throw ApiError(400, path + ": expected an object" + got(queries[i]));
      request.queries.push_back(parse_query(queries[i], path, RequestShape::kRerank));
    }
  }

  std::string_view body_;
  const RequestLimits& limits_;
  std::size_t bad_utf8_offset_ = npos;
  bool can_name_bad_utf8_field_ = false;
};

// Document positions in the order of the response: reported score descending, ties by position, NaN last.
std::vector<std::size_t> ranking(const std::vector<double>& scores) {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const bool a_nan = std::isnan(scores[a]), b_nan = std::isnan(scores[b]);
    if (a_nan != b_nan) return b_nan;
    if (!a_nan && scores[a] != scores[b]) return scores[a] > scores[b];
    return a < b;
  });
  return order;
}

ordered_json document_json(const RequestDocument& document) {
  ordered_json out = ordered_json::object();
  if (document.id) out["id"] = *document.id;
  if (document.title) out["title"] = *document.title;
  out["text"] = document.text;
  return out;
}

std::vector<double> reported_scores(const QueryRequest& query, const QueryScores& scores,
                                    const std::function<double(double)>& transform) {
  if (scores.raw.size() != query.documents.size())
    throw std::logic_error("render_rerank_response: " + std::to_string(scores.raw.size()) + " scores for " +
                           std::to_string(query.documents.size()) + " documents");
  std::vector<double> reported(scores.raw);
  if (!query.raw_scores) std::transform(reported.begin(), reported.end(), reported.begin(), transform);
  return reported;
}

// TEI answers with a bare array: [{"index", "score", "text"?}].
ordered_json tei_response(const QueryRequest& query, const QueryScores& scores,
                          const std::function<double(double)>& transform) {
  const std::vector<double> reported = reported_scores(query, scores, transform);
  ordered_json results = ordered_json::array();
  for (const std::size_t i : ranking(reported)) {
    ordered_json result = {{"index", i}, {"score", reported[i]}};
    if (query.return_documents) result["text"] = query.documents[i].text;
    results.push_back(std::move(result));
  }
  return results;
}

ordered_json rerank_response(const QueryRequest& query, const QueryScores& scores,
                             const std::function<double(double)>& transform, const std::string& model) {
  const std::vector<double> reported = reported_scores(query, scores, transform);
  std::vector<std::size_t> order = ranking(reported);
  if (query.top_n > 0 && query.top_n < order.size()) order.resize(query.top_n);
  ordered_json results = ordered_json::array();
  for (const std::size_t i : order) {
    ordered_json result = {{"index", i}};
    if (query.documents[i].id) result["id"] = *query.documents[i].id;
    result["relevance_score"] = reported[i];
    if (query.return_documents) result["document"] = document_json(query.documents[i]);
    results.push_back(std::move(result));
  }
  return {{"results", std::move(results)}, {"model", model}, {"usage", {{"tokens", scores.tokens}}}};
}

}  // namespace

RerankRequest parse_rerank_request(std::string_view body, const RequestLimits& limits) {
  return RequestParser(body, limits).parse();
}

ordered_json render_rerank_response(const RerankRequest& request, const std::vector<QueryScores>& scores,
                                    const std::function<double(double)>& transform,
                                    const std::string& model) {
  if (scores.size() != request.queries.size())
    throw std::logic_error("render_rerank_response: " + std::to_string(scores.size()) + " score lists for " +
                           std::to_string(request.queries.size()) + " queries");
  switch (request.shape) {
    case RequestShape::kTei:
      return tei_response(request.queries.front(), scores.front(), transform);
    case RequestShape::kRerank:
      return rerank_response(request.queries.front(), scores.front(), transform, model);
    case RequestShape::kBatch:
      break;
  }
  ordered_json results = ordered_json::array();
  std::size_t tokens = 0;
  for (std::size_t i = 0; i < request.queries.size(); ++i) {
    results.push_back(rerank_response(request.queries[i], scores[i], transform, model));
    tokens += scores[i].tokens;
  }
  return {{"results", std::move(results)}, {"model", model}, {"usage", {{"tokens", tokens}}}};
}

ordered_json error_body(int status, std::string_view message) {
  return {{"error", {{"status", status}, {"message", std::string(message)}}}};
}

std::string to_json_text(const ordered_json& value) {
  return value.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

}  // namespace disranker::serve
