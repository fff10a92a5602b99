// disranker train-tokenizer: trains a vocabulary on corpus text with the trainers of src/text.
//   bpe        byte-level BPE (Hugging Face's BpeTrainer algorithm) -> tokenizer.json, for the teacher LLM
//   wordpiece  BERT WordPiece (Hugging Face's WordPieceTrainer algorithm) -> vocab.txt, for the student
// Inputs: documents TSV (title and text, each as a line), queries TSV (the query text) and plain text files
// (each line). This is how the quickstart makes the teacher's vocabulary from the shared corpus.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/error.h"
#include "core/files.h"
#include "data/docs.h"
#include "data/queries.h"
#include "text/bpe_trainer.h"
#include "text/wordpiece_trainer.h"

namespace disranker::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// What was fed to the trainer, for the summary.
struct CorpusCount {
  std::size_t lines = 0;
  std::size_t bytes = 0;
};

struct TrainTokenizerCommand {
  std::string kind;
  std::string out;
  std::size_t vocab_size = 0;
  std::vector<std::string> docs_paths;
  std::vector<std::string> text_paths;
  std::vector<std::string> queries_paths;
  bool lowercase = false;
  long long min_frequency = -1;  // -1: the trainer's default

  // Calls feed(line) for every line of every input, in the order docs, queries, text files.
  template <typename Feed>
  CorpusCount read_corpus(Feed&& feed) const {
    CorpusCount count;
    auto add = [&](const std::string& line) {
      if (line.empty()) return;
      ++count.lines;
      count.bytes += line.size();
      feed(line);
    };
    for (const auto& path : docs_paths) {
      const Docs docs = read_docs(path);
      for (const auto& doc : docs.items()) {
        add(doc.title);
        add(doc.text);
      }
    }
    for (const auto& path : queries_paths) {
      const Queries queries = read_queries(path);
      for (const auto& query : queries.items()) add(query.text);
    }
    for (const auto& path : text_paths) {
      // The text files go through the same validation of readability as the others, line by line.
      for_each_line(path, [&](std::size_t, std::string_view line) { add(std::string(line)); });
    }
    return count;
  }

  // --out, or the conventional file name inside it when it is a directory.
  std::string output_path(const char* file_name) const {
    return fs::is_directory(out) ? (fs::path(out) / file_name).string() : out;
  }

  void run() const {
    if (docs_paths.empty() && text_paths.empty() && queries_paths.empty())
      throw Error("train-tokenizer needs some text: --docs, --queries or --text");
    if (kind == "bpe") {
      train_bpe();
    } else {
      train_wordpiece();
    }
  }

  void train_bpe() const {
    if (lowercase) {
      throw Error(
          "train-tokenizer: --lowercase is for wordpiece only: a byte-level BPE tokenizer.json here has no "
          "lower-casing normalizer, so a vocabulary trained on lower-cased text would not match the text it "
          "tokenizes");
    }
    const auto start = Clock::now();
    BpeTrainerOptions options;
    options.vocab_size = vocab_size;
    if (min_frequency >= 0) options.min_frequency = static_cast<std::uint64_t>(min_frequency);
    BpeTrainer trainer(options);
    // Each line with its "\n", as Hugging Face's train(files) counts a text file (and BpeTrainer::add_file).
    const CorpusCount count = read_corpus([&](const std::string& line) { trainer.add_text(line + "\n"); });
    const double read_seconds = seconds_since(start);
    const BpeModel model = trainer.train();
    const std::string path = output_path("tokenizer.json");
    write_bpe_tokenizer_json(model, path);
    std::fprintf(stderr,
                 "trained a byte-level BPE tokenizer: %zu tokens (%zu special, %zu merges) on %zu lines "
                 "(%.1f MB, %zu distinct words) in %.1fs (%.1fs reading, %.1fs training) -> %s\n",
                 model.vocab.size(), model.special_tokens.size(), model.merges.size(), count.lines,
                 static_cast<double>(count.bytes) / 1e6, trainer.distinct_words(), seconds_since(start),
                 read_seconds, seconds_since(start) - read_seconds, path.c_str());
  }

  void train_wordpiece() const {
    const auto start = Clock::now();
    WordPieceTrainerOptions options;
    options.vocab_size = vocab_size;
    if (min_frequency >= 0) options.min_frequency = static_cast<std::uint64_t>(min_frequency);
    options.normalizer.lowercase = lowercase;
    WordPieceTrainer trainer(options);
    const CorpusCount count = read_corpus([&](const std::string& line) { trainer.feed(line); });
    const double read_seconds = seconds_since(start);
    const auto vocab = trainer.train();
    const std::string path = output_path("vocab.txt");
    write_wordpiece_vocab(path, vocab);
    // load_tokenizer lower-cases a vocab.txt unless tokenizer_config.json beside it says otherwise: record
    // how this vocabulary was trained so that it is used the same way.
    const std::string config = write_tokenizer_config(path);
    std::fprintf(
        stderr,
        "trained a WordPiece vocabulary: %zu tokens (%s) on %zu lines (%.1f MB, %zu distinct words) in "
        "%.1fs (%.1fs reading, %.1fs training) -> %s (do_lower_case %s in %s)\n",
        vocab.size(), lowercase ? "lower-cased, accents stripped" : "cased", count.lines,
        static_cast<double>(count.bytes) / 1e6, trainer.word_types(), seconds_since(start), read_seconds,
        seconds_since(start) - read_seconds, path.c_str(), lowercase ? "true" : "false", config.c_str());
  }

  // Sets do_lower_case in the tokenizer_config.json beside the vocabulary (keeping its other keys).
  std::string write_tokenizer_config(const std::string& vocab_path) const {
    const fs::path config = fs::path(vocab_path).parent_path() / "tokenizer_config.json";
    nlohmann::json json = nlohmann::json::object();
    if (fs::exists(config)) {
      std::ifstream in(config);
      try {
        json = nlohmann::json::parse(in);
      } catch (const nlohmann::json::exception& e) {
        throw Error(config.string(), 0, "", std::string("not valid JSON, not updated: ") + e.what());
      }
      if (!json.is_object()) throw Error(config.string(), 0, "", "not a JSON object, not updated");
    }
    json["do_lower_case"] = lowercase;
    write_file_atomically(config.string(), [&](std::ostream& o) { o << json.dump(2) << '\n'; });
    return config.string();
  }
};

}  // namespace

void register_train_tokenizer(CLI::App& app) {
  auto command = std::make_shared<TrainTokenizerCommand>();
  CLI::App* sub = app.add_subcommand(
      "train-tokenizer", "Train a BPE (teacher) or WordPiece (student) vocabulary on corpus text");
  sub->footer(
      "  bpe: byte-level BPE (GPT-2 pre-tokenizer, Hugging Face's BpeTrainer algorithm), written as a "
      "tokenizer.json with <s> </s> <pad> <unk> at ids 0-3: the teacher's vocabulary.\n"
      "  wordpiece: BERT WordPiece (Hugging Face's WordPieceTrainer algorithm), written as a vocab.txt with "
      "[PAD] [UNK] [CLS] [SEP] [MASK] at ids 0-4, plus a tokenizer_config.json beside it recording "
      "do_lower_case (so that load_tokenizer uses it as trained).\n"
      "Inputs: --docs contributes each document's title and text (one line each), --queries the query texts, "
      "--text every line of a file; empty lines are skipped. Deterministic: the same inputs and options give "
      "the same file.");
  sub->add_option("--kind", command->kind, "Tokenizer to train")
      ->required()
      ->check(CLI::IsMember({"bpe", "wordpiece"}));
  sub->add_option(
         "--out", command->out,
         "File to write (tokenizer.json for bpe, vocab.txt for wordpiece), or an existing directory to "
         "write it into")
      ->required();
  sub->add_option(
         "--vocab-size", command->vocab_size,
         "Target vocabulary size, special tokens and alphabet included (the alphabet is always kept)")
      ->required()
      ->check(CLI::Range(std::size_t{8}, std::size_t{10000000}));
  sub->add_option("--docs", command->docs_paths, "Documents TSV(s): docid<TAB>title<TAB>text");
  sub->add_option("--queries", command->queries_paths, "Queries TSV(s): qid<TAB>query");
  sub->add_option("--text", command->text_paths, "Plain text file(s), one sequence per line");
  sub->add_flag("--lowercase", command->lowercase,
                "wordpiece: lower-case and strip accents (BERT uncased); default: cased. Not for bpe");
  sub->add_option("--min-frequency", command->min_frequency,
                  "Merge only pairs seen at least this often (default: 0 for bpe, 2 for wordpiece, as in "
                  "Hugging Face)")
      ->check(CLI::NonNegativeNumber);
  sub->callback([command] { command->run(); });
}

}  // namespace disranker::cli
