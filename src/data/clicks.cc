#include "data/clicks.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <ostream>
#include <unordered_set>

#include "core/error.h"
#include "core/files.h"

namespace disranker {
namespace {

using nlohmann::json;

// Validation context: the file, the line, and the JSON path of the field being read.
struct Where {
  const std::string& file;
  std::size_t line;
};

const json& require(const json& object, const char* key, const Where& where, const std::string& field) {
  const auto it = object.find(key);
  if (it == object.end()) throw Error(where.file, where.line, field, "missing field");
  return *it;
}

std::string require_string(const json& object, const char* key, const Where& where, const std::string& field,
                           bool allow_empty) {
  const json& value = require(object, key, where, field);
  if (!value.is_string()) throw Error(where.file, where.line, field, std::string("expected a string, got ") + value.type_name());
  auto text = value.get<std::string>();
  if (!allow_empty && text.find_first_not_of(' ') == std::string::npos) throw Error(where.file, where.line, field, "empty");
  return text;
}

std::string optional_string(const json& object, const char* key, const Where& where, const std::string& field) {
  if (!object.contains(key)) return "";
  return require_string(object, key, where, field, true);
}

ClickResult parse_result(const json& item, const Where& where, const std::string& prefix) {
  if (!item.is_object()) throw Error(where.file, where.line, prefix, "expected an object");
  ClickResult r;
  r.docid = require_string(item, "docid", where, prefix + ".docid", false);
  r.title = optional_string(item, "title", where, prefix + ".title");
  r.summary = optional_string(item, "summary", where, prefix + ".summary");
  const json& position = require(item, "position", where, prefix + ".position");
  if (!position.is_number_integer() || position.get<long long>() < 1 || position.get<long long>() > 100000) {
    throw Error(where.file, where.line, prefix + ".position", "expected an integer from 1 to 100000, got " + position.dump());
  }
  r.position = position.get<int>();
  const json& clicked = require(item, "clicked", where, prefix + ".clicked");
  if (!clicked.is_boolean()) throw Error(where.file, where.line, prefix + ".clicked", "expected true or false, got " + clicked.dump());
  r.clicked = clicked.get<bool>();
  if (item.contains("dwell_ms")) {
    const json& dwell = item["dwell_ms"];
    if (!dwell.is_number() || !std::isfinite(dwell.get<double>()) || dwell.get<double>() < 0) {
      throw Error(where.file, where.line, prefix + ".dwell_ms", "expected a non-negative number, got " + dwell.dump());
    }
    r.dwell_ms = dwell.get<double>();
    if (!r.clicked && r.dwell_ms > 0) {
      throw Error(where.file, where.line, prefix + ".dwell_ms", "dwell time on a result that was not clicked");
    }
  }
  return r;
}

}  // namespace

std::vector<Impression> read_click_log(const std::string& path) {
  std::vector<Impression> impressions;
  for_each_line(path, [&](std::size_t line, std::string_view text) {
    const Where where{path, line};
    if (text.empty()) throw Error(path, line, "", "empty line");
    json object;
    try {
      object = json::parse(text);
    } catch (const json::parse_error& e) {
      throw Error(path, line, "", std::string("malformed JSON: ") + e.what());
    }
    if (!object.is_object()) throw Error(path, line, "", "expected a JSON object per line");
    Impression imp;
    imp.qid = require_string(object, "qid", where, "qid", false);
    imp.query = require_string(object, "query", where, "query", false);
    imp.session = optional_string(object, "session", where, "session");
    imp.user = optional_string(object, "user", where, "user");
    const json& results = require(object, "results", where, "results");
    if (!results.is_array() || results.empty()) throw Error(path, line, "results", "expected a non-empty array");
    std::unordered_set<int> positions;
    std::unordered_set<std::string> docids;
    for (std::size_t i = 0; i < results.size(); ++i) {
      const std::string prefix = "results[" + std::to_string(i) + "]";
      auto result = parse_result(results[i], where, prefix);
      if (!positions.insert(result.position).second) {
        throw Error(path, line, prefix + ".position", "position " + std::to_string(result.position) + " appears twice");
      }
      if (!docids.insert(result.docid).second) {
        throw Error(path, line, prefix + ".docid", "document '" + result.docid + "' appears twice");
      }
      imp.results.push_back(std::move(result));
    }
    impressions.push_back(std::move(imp));
  });
  return impressions;
}

void write_click_log(const std::string& path, const std::vector<Impression>& impressions) {
  write_file_atomically(path, [&](std::ostream& out) {
    for (const auto& imp : impressions) {
      json object;
      object["qid"] = imp.qid;
      object["query"] = imp.query;
      if (!imp.session.empty()) object["session"] = imp.session;
      if (!imp.user.empty()) object["user"] = imp.user;
      json results = json::array();
      for (const auto& r : imp.results) {
        results.push_back({{"docid", r.docid}, {"title", r.title}, {"summary", r.summary}, {"position", r.position},
                           {"clicked", r.clicked}, {"dwell_ms", r.dwell_ms}});
      }
      object["results"] = std::move(results);
      out << object.dump() << '\n';
    }
  });
}

}  // namespace disranker
