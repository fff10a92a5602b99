// disranker tokenize: one input line -> one output line, for checking token ids against other tools and for
// users' scripts. Plain mode encodes the line (no special tokens unless --add-special); --pair reads
// query<TAB>title<TAB>summary (or query<TAB>text) and prints the ranker's encoded pair, template included.
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/command.h"
#include "core/error.h"
#include "core/utf8.h"
#include "text/pair_encoding.h"
#include "text/tokenizer.h"

namespace disranker::cli {
namespace {

struct TokenizeCommand {
  std::string tokenizer_path;
  bool pair = false;
  bool add_special = false;
  std::string format = "ids";
  std::string style = "auto";
  PairEncoderOptions pair_options;

  void run() {
    const auto tokenizer = load_tokenizer(tokenizer_path);
    if (style == "auto") {
      pair_options.style = tokenizer->kind() == "wordpiece" ? PairStyle::kBert : PairStyle::kDecoder;
    } else {
      pair_options.style = style == "bert" ? PairStyle::kBert : PairStyle::kDecoder;
    }
    std::optional<PairEncoder> encoder;
    if (pair || add_special) encoder.emplace(*tokenizer, pair_options);

    std::ios::sync_with_stdio(false);
    std::string line;
    std::size_t number = 0;
    while (std::getline(std::cin, line)) {
      ++number;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      EncodedPair encoded;
      if (pair) {
        encoded = encode_pair_line(*encoder, line, number);
      } else if (add_special) {
        encoded = encoder->encode_single(line);
      } else {
        encoded.ids = tokenizer->encode(line);
        encoded.type_ids.assign(encoded.ids.size(), 0);
      }
      print(*tokenizer, encoded);
    }
  }

  static EncodedPair encode_pair_line(const PairEncoder& encoder, const std::string& line,
                                      std::size_t number) {
    std::vector<std::string_view> fields;
    std::string_view rest(line);
    while (true) {
      const auto tab = rest.find('\t');
      fields.push_back(rest.substr(0, tab));
      if (tab == std::string_view::npos) break;
      rest.remove_prefix(tab + 1);
    }
    if (fields.size() == 2) return encoder.encode(fields[0], "", fields[1]);
    if (fields.size() == 3) return encoder.encode(fields[0], fields[1], fields[2]);
    throw Error("<stdin>", number, "",
                "--pair expects query<TAB>title<TAB>summary or query<TAB>text, found " +
                    std::to_string(fields.size()) + " fields");
  }

  void print(const Tokenizer& tokenizer, const EncodedPair& encoded) const {
    if (format == "json") {
      nlohmann::json out;
      out["ids"] = encoded.ids;
      std::vector<std::string> tokens;
      // A byte-level or byte-fallback token need not be valid UTF-8 on its own; JSON needs it to be.
      for (auto id : encoded.ids) tokens.push_back(replace_invalid_utf8(tokenizer.id_to_token(id)));
      out["tokens"] = tokens;
      out["type_ids"] = encoded.type_ids;
      if (encoded.truncated) out["truncated"] = true;
      std::cout << out.dump() << '\n';
      return;
    }
    std::string text;
    for (std::size_t i = 0; i < encoded.ids.size(); ++i) {
      if (i > 0) text += ' ';
      if (format == "ids") {
        text += std::to_string(encoded.ids[i]);
      } else {
        text += tokenizer.id_to_token(encoded.ids[i]);
      }
    }
    std::cout << text << '\n';
  }
};

}  // namespace

void register_tokenize(CLI::App& app) {
  auto command = std::make_shared<TokenizeCommand>();
  CLI::App* sub =
      app.add_subcommand("tokenize", "Tokenize stdin line by line (ids, tokens or JSON per line)");
  sub->add_option(
         "--tokenizer", command->tokenizer_path,
         "vocab.txt (WordPiece), tokenizer.json (WordPiece or byte-level BPE), llama2.c .bin, or a model "
         "directory")
      ->required();
  sub->add_flag("--pair", command->pair,
                "Lines are query<TAB>title<TAB>summary or query<TAB>text; print the ranker's pair encoding");
  sub->add_flag("--add-special", command->add_special,
                "Wrap single lines in the special tokens ([CLS] … [SEP] or … </s>)");
  sub->add_option("--format", command->format,
                  "ids (space-separated), tokens, or json (ids, tokens, type_ids)")
      ->check(CLI::IsMember({"ids", "tokens", "json"}))
      ->capture_default_str();
  sub->add_option("--style", command->style, "Pair template: bert, decoder, or auto (bert for WordPiece)")
      ->check(CLI::IsMember({"auto", "bert", "decoder"}))
      ->capture_default_str();
  sub->add_option("--max-length", command->pair_options.max_length,
                  "Pair budget in tokens, specials included")
      ->capture_default_str();
  sub->add_option("--protected-query-tokens", command->pair_options.protected_query_tokens,
                  "The query's first N tokens are never truncated")
      ->capture_default_str();
  sub->add_flag("--add-bos", command->pair_options.add_bos, "Decoder template: start with the bos token");
  sub->callback([command] { command->run(); });
}

}  // namespace disranker::cli
