// disranker retrieve: first-stage BM25 retrieval from an index built by `disranker index`, written as a TREC
// run.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"
#include "retrieve/bm25.h"

namespace disranker::cli {
namespace {

struct RetrieveCommand {
  std::string index_dir;
  std::string queries_path;
  std::string out_path;
  std::string candidates_run;
  std::string candidates_qrels;
  RetrieveOptions options;

  void run() const {
    const auto start = std::chrono::steady_clock::now();
    const Queries queries = read_queries(queries_path);
    if (!candidates_run.empty() || !candidates_qrels.empty()) {
      const bool from_run = !candidates_run.empty();
      const Run candidates =
          from_run ? read_run(candidates_run) : judged_candidates(read_qrels(candidates_qrels));
      const Run run =
          rerank_bm25(index_dir, queries, candidates, options, from_run ? candidates_run : candidates_qrels);
      write_run(out_path, run);
      std::fprintf(stderr, "reranked %zu candidates of %zu queries with BM25 in %.1fs\n", run.num_entries(),
                   run.by_query.size(),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      return;
    }
    const Run run = retrieve_bm25(index_dir, queries, options);
    write_run(out_path, run);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // A query with no hits has no line in a TREC run, so say how many there were: a large count usually means
    // the queries and the index disagree (language, field, or the wrong index).
    std::fprintf(stderr, "retrieved %zu documents for %zu queries in %.1fs; %zu queries matched nothing\n",
                 run.num_entries(), queries.size(), seconds, queries.size() - run.by_query.size());
  }
};

}  // namespace

void register_retrieve(CLI::App& app) {
  auto command = std::make_shared<RetrieveCommand>();
  auto& options = command->options;
  CLI::App* sub =
      app.add_subcommand("retrieve", "Rank an index's documents for each query with BM25; write a TREC run");
  sub->add_option("--index", command->index_dir, "Index directory built by `disranker index`")->required();
  sub->add_option("--queries", command->queries_path, "Queries TSV: qid<TAB>query")->required();
  sub->add_option("--out", command->out_path, "TREC run to write (atomically)")->required();
  sub->add_option("--k", options.k, "Documents per query")->capture_default_str();
  sub->add_option("--k1", options.k1, "BM25 term-frequency saturation")->capture_default_str();
  sub->add_option("--b", options.b, "BM25 document-length normalisation, in [0, 1]")->capture_default_str();
  sub->add_option("--tag", options.tag, "Run tag (last column of the run)")->capture_default_str();
  auto* rerank =
      sub->add_option("--candidates", command->candidates_run,
                      "Rerank this run's documents per query with BM25 instead of retrieving (--k ignored)");
  sub->add_option("--candidates-qrels", command->candidates_qrels,
                  "Rerank each query's judged documents (WikiQA: its candidate sentences) with BM25")
      ->excludes(rerank);
  sub->add_flag("--title-only", options.title_only, "Search document titles only");
  sub->callback([command] { command->run(); });
}

}  // namespace disranker::cli
