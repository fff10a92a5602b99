#include "oracle_util.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/docs.h"
#include "data/queries.h"

namespace disranker::testing {
namespace {

std::string base64(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += {alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63], alphabet[v & 63]};
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += {alphabet[v >> 18], alphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += {alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63], '='};
  }
  return out;
}

}  // namespace

std::vector<OracleEncoding> hf_encode(const std::string& tokenizer_path, const std::vector<std::string>& inputs,
                                      bool decode, const std::string& extra_args) {
  const std::filesystem::path oracle = std::filesystem::path(DISRANKER_SOURCE_DIR) / "tests" / "oracle";
  if (!std::filesystem::exists(oracle / "node_modules" / "tokenizers")) {
    ADD_FAILURE() << "the npm package 'tokenizers' is not installed in " << oracle
                  << " (./test.sh installs it: npm install --prefix tests/oracle)";
    return {};
  }
  const auto dir = std::filesystem::temp_directory_path() /
                   ("disranker-oracle-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream in(dir / "in.b64", std::ios::binary);
    for (const auto& s : inputs) in << base64(s) << '\n';
  }
  const std::string command = "node '" + (oracle / "hf_encode.js").string() + "' --tokenizer '" + tokenizer_path +
                              "' " + (decode ? "--decode " : "") + extra_args + " < '" + (dir / "in.b64").string() +
                              "' > '" + (dir / "out.jsonl").string() + "'";
  const int status = std::system(command.c_str());
  std::vector<OracleEncoding> results;
  if (status != 0) {
    ADD_FAILURE() << "oracle failed (" << status << "): " << command;
  } else {
    std::ifstream out(dir / "out.jsonl");
    std::string line;
    while (std::getline(out, line)) {
      const auto json = nlohmann::json::parse(line);
      OracleEncoding e;
      e.ids = json.at("ids").get<std::vector<int>>();
      e.tokens = json.at("tokens").get<std::vector<std::string>>();
      if (json.contains("decoded")) e.decoded = json.at("decoded").get<std::string>();
      results.push_back(std::move(e));
    }
    if (results.size() != inputs.size()) {
      ADD_FAILURE() << "oracle returned " << results.size() << " encodings for " << inputs.size() << " inputs";
      results.clear();
    }
  }
  std::filesystem::remove_all(dir);
  return results;
}

std::string shared_data_dir() {
  const char* env = std::getenv("DISRANKER_DATA");
  const std::filesystem::path dir =
      env != nullptr && *env != '\0' ? std::filesystem::path(env) : std::filesystem::path(DISRANKER_SOURCE_DIR) / "../shared/data";
  return std::filesystem::is_directory(dir) ? dir.string() : "";
}

std::vector<std::string> shared_strings(const std::vector<std::string>& sets) {
  std::vector<std::string> strings;
  const std::string root = shared_data_dir();
  if (root.empty()) return strings;
  for (const auto& set : sets) {
    const auto dir = std::filesystem::path(root) / set;
    const auto queries = read_queries((dir / "queries.tsv").string());
    for (const auto& q : queries.items()) strings.push_back(q.text);
    const auto docs = read_docs((dir / "docs.tsv").string(), /*allow_empty=*/true);
    for (const auto& d : docs.items()) {
      if (!d.title.empty()) strings.push_back(d.title);
      if (!d.text.empty()) strings.push_back(d.text);
    }
  }
  return strings;
}

std::vector<std::string> adversarial_strings() {
  return {
      "",
      " ",
      "\t\n\r\v\f",
      std::string("a\0b", 3),
      "\x01\x02\x1f\x7f control",
      "caf\xc3\xa9 cafe\xcc\x81 na\xc3\xafve \xc3\x85ngstr\xc3\xb6m",  // precomposed and combining accents
      "\xe1\xba\x9b\xcc\xa3 \xef\xac\x81 \xe2\x84\xab \xc4\xb0stanbul \xc3\x9f STRASSE",  // compatibility and casing
      "\xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7",  // emoji, ZWJ
      "\xe5\x8c\x97\xe4\xba\xac\xe5\xa4\xa7\xe5\xad\xa6 " "Beijing\xe5\xa4\xa7\xe5\xad\xa6 \xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf \xed\x95\x9c\xea\xb5\xad\xec\x96\xb4",
      std::string(150, 'a'),
      std::string(100, 'b'),
      std::string(101, 'c') + " d",
      "supercalifragilisticexpialidocious antidisestablishmentarianism",
      "don't stop-believing... (really?) [yes] {no} <tag> \"quoted\" 'single' #hash $5.00 100% a&b @user ~tilde",
      "\xe2\x80\x9csmart quotes\xe2\x80\x9d \xe2\x80\x94 em dash \xe2\x80\xa6 ellipsis \xc2\xbf\xc2\xa1",
      "\xc2\xa0non-breaking\xe2\x80\x83" "em space\xe3\x80\x80ideographic space\xe2\x80\x8bzero width",
      "x\xcc\x81\xcc\x82\xcc\x83\xcc\x84 stacked combining",
      "\xd8\xa7\xd9\x84\xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a\xd8\xa9 \xd7\xa2\xd7\x91\xd7\xa8\xd7\x99\xd7\xaa \xce\x95\xce\xbb\xce\xbb\xce\xb7\xce\xbd\xce\xb9\xce\xba\xce\xac \xd0\xa0\xd1\x83\xd1\x81\xd1\x81\xd0\xba\xd0\xb8\xd0\xb9",
      "\xe0\xa4\xb9\xe0\xa4\xbf\xe0\xa4\xa8\xe0\xa5\x8d\xe0\xa4\xa6\xe0\xa5\x80 \xe0\xb8\xa0\xe0\xb8\xb2\xe0\xb8\xa9\xe0\xb8\xb2\xe0\xb9\x84\xe0\xb8\x97\xe0\xb8\xa2",
      "\xff\xfe invalid \xc0\xaf overlong \xed\xa0\x80 surrogate \xf4\x90\x80\x80 too big \xe2\x82 truncated",
      "\x80\x80 stray continuation",
      "UPPER lower MiXeD 123 4.5e6 0x1F",
      "   leading and trailing spaces   ",
      "tabs\tinside\tand\nnewlines\nand\r\ncrlf",
      "<s></s>[CLS][SEP][UNK][MASK]<|endoftext|>",
      "\xef\xbf\xbd replacement char already",
      "\xf0\x9d\x90\x80\xf0\x9d\x90\x81 math bold \xe2\x91\xa0\xe2\x91\xa1 circled",
  };
}

}  // namespace disranker::testing
