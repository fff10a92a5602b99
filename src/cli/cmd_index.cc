// disranker index: builds the BM25 index (Xapian) that `disranker retrieve` searches.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "data/docs.h"
#include "retrieve/bm25.h"

namespace disranker::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Prints "indexed N/T documents (P%), ETA Ss" on stderr at most every two seconds: inputs that index in under
// two seconds print nothing, large ones show that they are alive and how long is left.
class Progress {
 public:
  void report(std::size_t done, std::size_t total) {
    const auto now = Clock::now();
    if (now - last_ < std::chrono::seconds(2) || done == total) return;
    last_ = now;
    const double elapsed = seconds_since(start_);
    const double eta = elapsed * static_cast<double>(total - done) / static_cast<double>(done);
    std::fprintf(stderr, "indexed %zu/%zu documents (%.0f%%), ETA %.0fs\n", done, total,
                 100.0 * static_cast<double>(done) / static_cast<double>(total), eta);
  }

 private:
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_ = start_;
};

struct IndexCommand {
  std::string docs_path;
  std::string out_dir;
  std::string language = "english";
  bool force = false;
  bool allow_empty_docs = false;

  void run() const {
    const auto start = Clock::now();
    const Docs docs = read_docs(docs_path, allow_empty_docs);
    if (!docs.empty_ids().empty()) {
      std::string ids;
      for (const auto& id : docs.empty_ids()) ids += (ids.empty() ? "" : ", ") + id;
      std::fprintf(stderr, "warning: %zu empty documents indexed without terms: %s\n",
                   docs.empty_ids().size(), ids.c_str());
    }
    Progress progress;
    IndexOptions options;
    options.language = language;
    options.force = force;
    options.on_progress = [&progress](std::size_t done, std::size_t total) { progress.report(done, total); };
    build_bm25_index(docs, out_dir, options);
    std::fprintf(stderr, "indexed %zu documents into %s in %.1fs\n", docs.size(), out_dir.c_str(),
                 seconds_since(start));
  }
};

}  // namespace

void register_index(CLI::App& app) {
  auto command = std::make_shared<IndexCommand>();
  CLI::App* sub =
      app.add_subcommand("index", "Build a BM25 index (Xapian) of a documents TSV for `retrieve`");
  sub->add_option("--docs", command->docs_path, "Documents TSV: docid<TAB>title<TAB>text")->required();
  sub->add_option("--out", command->out_dir, "Index directory to create (built beside it, then renamed)")
      ->required();
  sub->add_option("--language", command->language,
                  "Stemming language: english, none, or another Xapian stemmer")
      ->capture_default_str();
  sub->add_flag("--force", command->force, "Replace an existing index at --out");
  sub->add_flag(
      "--allow-empty-docs", command->allow_empty_docs,
      "Keep documents with neither title nor text (listed on stderr) instead of rejecting the file");
  sub->callback([command] { command->run(); });
}

}  // namespace disranker::cli
