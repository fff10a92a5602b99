// Strict JSON parsing for the checkpoint formats (safetensors headers, config.json, index files): invalid
// UTF-8, invalid JSON, a key that appears twice in one object (nlohmann keeps the last one silently) and
// nesting deeper than a limit are all Errors naming the file and, where there is one, the key path
// ("weight_map.a.b"). Internal to src/model: header-only so that it adds no file to the build.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "core/utf8.h"

namespace disranker::detail {

inline nlohmann::json parse_strict_json(std::string_view text, const std::string& file, std::size_t max_depth,
                                        const std::string& what = "JSON") {
  using nlohmann::json;
  if (const std::size_t bad = find_invalid_utf8(text); bad != std::string_view::npos) {
    throw Error(file, 0, "", what + " is not valid UTF-8 (byte " + std::to_string(bad) + ")");
  }
  // nlohmann's lexer takes a NUL byte for the end of the input and would accept "{}\0garbage"; JSON text can
  // hold no raw NUL (not even inside a string), so any is an error.
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    throw Error(file, 0, "", what + " is not valid JSON: NUL byte at byte " + std::to_string(nul));
  }
  struct Frame {
    bool array = false;
    std::string key;
    std::unordered_set<std::string> keys;
  };
  std::vector<Frame> frames;
  auto path = [&frames](const std::string& last) {
    std::string out;
    for (const auto& frame : frames) {
      if (frame.array || frame.key.empty()) continue;
      out += (out.empty() ? "" : ".") + frame.key;
    }
    if (!last.empty()) out += (out.empty() ? "" : ".") + last;
    return out;
  };
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (frames.size() >= max_depth) {
          throw Error(file, 0, path(""),
                      what + " is nested more than " + std::to_string(max_depth) + " levels deep");
        }
        frames.push_back(Frame{event == json::parse_event_t::array_start, {}, {}});
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!frames.empty()) frames.pop_back();
        break;
      case json::parse_event_t::key:
        if (!frames.empty()) {
          std::string key = parsed.get<std::string>();
          if (!frames.back().keys.insert(key).second) {
            frames.back().key.clear();
            throw Error(file, 0, path(key), "key appears twice in the same object");
          }
          frames.back().key = std::move(key);
        }
        break;
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    throw Error(file, 0, "", what + " is not valid JSON: " + e.what());
  }
}

}  // namespace disranker::detail
