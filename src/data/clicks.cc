#include "data/clicks.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "core/utf8.h"
#include "data/tsv.h"

namespace disranker {
namespace {

using nlohmann::json;

constexpr int kMaxPosition = 100000;
constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

// Validation context: the file and the line (0 when writing), and the JSON path prefix of the impression
// ("" when reading one line, "impressions[3]." when writing).
struct Where {
  const std::string& file;
  std::size_t line;
  std::string prefix;

  [[noreturn]] void fail(const std::string& field, const std::string& message) const {
    throw Error(file, line, prefix + field, message);
  }
};

// Follows the parser through the line to know the JSON path of what it is reading ("results[2].title"): to
// reject a key that appears twice in one object (nlohmann keeps the last one silently), to name the field of
// a number that overflows, and to find the string that holds `marker` (which stands for an invalid UTF-8
// byte).
class PathTracker {
 public:
  PathTracker(const Where& where, std::string_view marker) : where_(where), marker_(marker) {}

  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        start_element();
        frames_.push_back(Frame{event == json::parse_event_t::array_start, -1, {}, {}});
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!frames_.empty()) frames_.pop_back();
        break;
      case json::parse_event_t::key: {
        if (frames_.empty()) break;
        Frame& frame = frames_.back();
        frame.key = parsed.get<std::string>();
        for (const auto& seen : frame.keys) {
          if (seen == frame.key) where_.fail(path(), "key appears twice in the same object");
        }
        frame.keys.push_back(frame.key);
        note_marker(frame.key);
        break;
      }
      case json::parse_event_t::value:
        start_element();
        if (parsed.is_string()) note_marker(parsed.get_ref<const std::string&>());
        break;
    }
    return true;
  }

  // The path of the value being read: "qid", "results[1].dwell_ms".
  std::string path() const {
    std::string out;
    for (const auto& frame : frames_) {
      if (frame.array) {
        if (frame.index >= 0) out += "[" + std::to_string(frame.index) + "]";
      } else if (!frame.key.empty()) {
        out += (out.empty() ? "" : ".") + frame.key;
      }
    }
    return out;
  }

  // The path of the first string that held the marker, or "" when none did.
  const std::string& marker_path() const { return marker_path_; }

 private:
  struct Frame {
    bool array = false;
    long long index = -1;
    std::string key;
    std::vector<std::string> keys;
  };

  void start_element() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
  }
  void note_marker(const std::string& text) {
    if (!marker_.empty() && marker_path_.empty() && text.find(marker_) != std::string::npos)
      marker_path_ = path();
  }

  const Where& where_;
  std::string_view marker_;
  std::vector<Frame> frames_;
  std::string marker_path_;
};

// A valid UTF-8 character that does not occur in `text`, to stand for its first invalid byte.
std::string_view pick_marker(std::string_view text) {
  static constexpr std::string_view kCandidates[] = {"\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBE", "\xEF\xBF\xBF",
                                                     "\xEF\xBF\xBE", "\xF3\xBF\xBF\xBD"};
  for (const auto candidate : kCandidates) {
    if (text.find(candidate) == std::string_view::npos) return candidate;
  }
  return {};
}

// `text` with its first invalid UTF-8 byte replaced by `marker` and every later one by U+FFFD.
std::string replace_invalid_utf8(std::string_view text, std::string_view marker) {
  std::string out;
  bool first = true;
  while (true) {
    const auto bad = find_invalid_utf8(text);
    if (bad == std::string_view::npos) break;
    out += text.substr(0, bad);
    out += first ? marker : kReplacementCharacter;
    first = false;
    text.remove_prefix(bad + 1);
  }
  out += text;
  return out;
}

void check_known_fields(const json& object, std::initializer_list<std::string_view> known, const Where& where,
                        const std::string& prefix) {
  for (const auto& item : object.items()) {
    bool found = false;
    for (const auto name : known) found = found || item.key() == name;
    if (!found) where.fail(prefix + item.key(), "unknown field (a misspelt name would otherwise be ignored)");
  }
}

const json& require(const json& object, const char* key, const Where& where, const std::string& field) {
  const auto it = object.find(key);
  if (it == object.end()) where.fail(field, "missing field");
  return *it;
}

std::string require_string(const json& object, const char* key, const Where& where,
                           const std::string& field) {
  const json& value = require(object, key, where, field);
  if (!value.is_string()) where.fail(field, std::string("expected a string, got ") + value.type_name());
  return value.get<std::string>();
}

std::string optional_string(const json& object, const char* key, const Where& where,
                            const std::string& field) {
  if (!object.contains(key)) return "";
  return require_string(object, key, where, field);
}

ClickResult parse_result(const json& item, const Where& where, const std::string& prefix) {
  if (!item.is_object()) where.fail(prefix, std::string("expected an object, got ") + item.type_name());
  check_known_fields(item, {"docid", "title", "summary", "position", "clicked", "dwell_ms"}, where,
                     prefix + ".");
  ClickResult r;
  r.docid = require_string(item, "docid", where, prefix + ".docid");
  r.title = optional_string(item, "title", where, prefix + ".title");
  r.summary = optional_string(item, "summary", where, prefix + ".summary");
  const json& position = require(item, "position", where, prefix + ".position");
  if (!position.is_number_integer() || position.get<long long>() < 1 ||
      position.get<long long>() > kMaxPosition) {
    where.fail(prefix + ".position",
               "expected an integer from 1 to " + std::to_string(kMaxPosition) + ", got " + position.dump());
  }
  r.position = position.get<int>();
  const json& clicked = require(item, "clicked", where, prefix + ".clicked");
  if (!clicked.is_boolean()) where.fail(prefix + ".clicked", "expected true or false, got " + clicked.dump());
  r.clicked = clicked.get<bool>();
  if (const auto dwell = item.find("dwell_ms"); dwell != item.end()) {
    if (!dwell->is_number())
      where.fail(prefix + ".dwell_ms", "expected a non-negative number, got " + dwell->dump());
    r.dwell_ms = dwell->get<double>();
  }
  return r;
}

void check_text(const std::string& text, const Where& where, const std::string& field) {
  const auto bad = find_invalid_utf8(text);
  if (bad != std::string_view::npos)
    where.fail(field, "invalid UTF-8 at byte " + std::to_string(bad) + " of the field");
}

void check_id(const std::string& id, const Where& where, const std::string& field) {
  check_text(id, where, field);
  if (id.empty()) where.fail(field, "empty id");
  if (id.find_first_of(" \t\n\r\v\f") != std::string::npos) {
    where.fail(field, "id contains whitespace: '" + id + "' (it could not be matched in TREC qrels or runs)");
  }
}

// The rules every impression obeys, whether read or about to be written.
void validate(const Impression& imp, const Where& where) {
  check_id(imp.qid, where, "qid");
  check_text(imp.query, where, "query");
  if (is_blank(imp.query)) where.fail("query", "empty query text");
  check_text(imp.session, where, "session");
  check_text(imp.user, where, "user");
  if (imp.results.empty()) where.fail("results", "expected a non-empty array");
  std::unordered_set<int> positions;
  std::unordered_set<std::string_view> docids;
  for (std::size_t i = 0; i < imp.results.size(); ++i) {
    const auto& r = imp.results[i];
    const std::string prefix = "results[" + std::to_string(i) + "]";
    check_id(r.docid, where, prefix + ".docid");
    check_text(r.title, where, prefix + ".title");
    check_text(r.summary, where, prefix + ".summary");
    if (r.position < 1 || r.position > kMaxPosition) {
      where.fail(prefix + ".position", "expected an integer from 1 to " + std::to_string(kMaxPosition) +
                                           ", got " + std::to_string(r.position));
    }
    if (!std::isfinite(r.dwell_ms) || r.dwell_ms < 0) {
      where.fail(prefix + ".dwell_ms", "expected a non-negative number, got " + json(r.dwell_ms).dump());
    }
    if (!r.clicked && r.dwell_ms > 0)
      where.fail(prefix + ".dwell_ms", "dwell time on a result that was not clicked");
    if (!positions.insert(r.position).second) {
      where.fail(prefix + ".position", "position " + std::to_string(r.position) + " appears twice");
    }
    if (!docids.insert(r.docid).second)
      where.fail(prefix + ".docid", "document '" + r.docid + "' appears twice");
  }
}

json parse_line(std::string_view text, const Where& where) {
  // nlohmann rejects invalid UTF-8 with a parse error that names no field. Parse a copy in which the first
  // bad byte is replaced by a marker, and report the field whose string holds the marker.
  const auto bad = find_invalid_utf8(text);
  std::string sanitized;
  std::string_view marker;
  if (bad != std::string_view::npos) {
    marker = pick_marker(text);
    sanitized = replace_invalid_utf8(text, marker);
    text = sanitized;
  }
  PathTracker tracker(where, marker);
  json object;
  try {
    object = json::parse(text, std::ref(tracker));
  } catch (const json::out_of_range& e) {
    where.fail(tracker.path(), std::string("number out of range: ") + e.what());
  } catch (const json::exception& e) {
    if (bad != std::string_view::npos) {
      where.fail(tracker.marker_path(), "invalid UTF-8 at byte " + std::to_string(bad) + " of the line");
    }
    where.fail("", std::string("malformed JSON: ") + e.what());
  }
  if (bad != std::string_view::npos) {
    where.fail(tracker.marker_path(), "invalid UTF-8 at byte " + std::to_string(bad) + " of the line");
  }
  return object;
}

}  // namespace

std::vector<Impression> read_click_log(const std::string& path) {
  std::vector<Impression> impressions;
  for_each_line(path, [&](std::size_t line, std::string_view text) {
    const Where where{path, line, ""};
    if (is_blank(text)) where.fail("", "empty line");
    const json object = parse_line(text, where);
    if (!object.is_object())
      where.fail("", std::string("expected a JSON object per line, got ") + object.type_name());
    check_known_fields(object, {"qid", "query", "session", "user", "results"}, where, "");
    Impression imp;
    imp.qid = require_string(object, "qid", where, "qid");
    imp.query = require_string(object, "query", where, "query");
    imp.session = optional_string(object, "session", where, "session");
    imp.user = optional_string(object, "user", where, "user");
    const json& results = require(object, "results", where, "results");
    if (!results.is_array())
      where.fail("results", std::string("expected a non-empty array, got ") + results.type_name());
    for (std::size_t i = 0; i < results.size(); ++i) {
      imp.results.push_back(parse_result(results[i], where, "results[" + std::to_string(i) + "]"));
    }
    validate(imp, where);
    impressions.push_back(std::move(imp));
  });
  return impressions;
}

void write_click_log(const std::string& path, const std::vector<Impression>& impressions) {
  // Everything the reader would reject (including invalid UTF-8, on which nlohmann throws a type_error that
  // names no file) is rejected before the file is touched.
  for (std::size_t i = 0; i < impressions.size(); ++i) {
    validate(impressions[i], Where{path, 0, "impressions[" + std::to_string(i) + "]."});
  }
  write_file_atomically(path, [&](std::ostream& out) {
    for (std::size_t i = 0; i < impressions.size(); ++i) {
      const auto& imp = impressions[i];
      json object;
      object["qid"] = imp.qid;
      object["query"] = imp.query;
      if (!imp.session.empty()) object["session"] = imp.session;
      if (!imp.user.empty()) object["user"] = imp.user;
      json results = json::array();
      for (const auto& r : imp.results) {
        results.push_back({{"docid", r.docid},
                           {"title", r.title},
                           {"summary", r.summary},
                           {"position", r.position},
                           {"clicked", r.clicked},
                           {"dwell_ms", r.dwell_ms}});
      }
      object["results"] = std::move(results);
      try {
        out << object.dump() << '\n';
      } catch (const json::exception& e) {
        throw Error(path, 0, "impressions[" + std::to_string(i) + "]",
                    std::string("cannot be written: ") + e.what());
      }
    }
  });
}

}  // namespace disranker
