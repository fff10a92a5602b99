// disranker score: rerank a candidate pool with a model directory (teacher or student) and write a TREC run.
// The teacher-scoring stage of distillation is this command on the teacher; sharding splits it across
// processes or machines by query.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "cli/command.h"
#include "cli/engine_option.h"
#include "core/error.h"
#include "data/docs.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"
#include "dist/process_group.h"
#include "infer/score_pool.h"
#include "model/ranker.h"
#include "model/runtime.h"

namespace disranker::cli {
namespace {

struct ScoreCommand {
  std::string model_dir;
  std::string queries_path;
  std::string docs_path;
  std::string run_path;
  std::string qrels_path;
  std::string out_path;
  std::size_t batch_size = 64;
  std::string shard = "0/1";
  bool no_sort = false;
  std::string tag = "disranker";
  std::string device_name = "cpu";
  int threads = 0;
  std::int64_t max_length = 0;  // 0: the manifest's
  std::string engine = "auto";
  std::string precision = "fp32";

  void run() const {
    ScorePoolOptions options;
    parse_shard(shard, &options.shard_index, &options.shard_count);  // before the slow loading
    if (batch_size < 1) throw Error("--batch-size must be >= 1");
    if (max_length < 0) throw Error("--max-length must be >= 1 (or 0 for the model's own)");
    const auto device = parse_device(device_name);
    set_torch_threads(threads);

    const Queries queries = read_queries(queries_path);
    const Docs docs = read_docs(docs_path, /*allow_empty=*/true);
    if (!docs.empty_ids().empty()) {
      std::cerr << "score: " << docs.empty_ids().size() << " documents of " << docs_path
                << " have neither title nor text (scored as empty)\n";
    }
    const std::string source = run_path.empty() ? qrels_path : run_path;
    const Run candidates =
        run_path.empty() ? candidates_from_qrels(read_qrels(qrels_path)) : read_run(run_path);
    if (candidates.by_query.empty()) throw Error(source, 0, "", "no candidates to score");

    BertEngineOptions engine_options;
    engine_options.precision = parse_precision(precision);
    std::unique_ptr<BertEngine> fast =
        open_fast_engine(engine, model_dir, device_name, "score", engine_options);
    std::unique_ptr<Ranker> ranker;
    std::unique_ptr<PairScorer> ranker_scorer;
    PairScorer* scorer = fast.get();
    if (fast) {
      if (max_length > 0) fast->set_max_length(max_length);  // an out-of-range budget fails here
      std::cerr << "score: " << model_dir << " (bert, " << to_string(fast->manifest().role) << ", max_length "
                << fast->manifest().max_length << ", score " << to_string(fast->manifest().score.type)
                << "), fast engine " << precision << ", " << runtime_summary(device) << "\n";
    } else {
      ranker = Ranker::load(model_dir, device);
      if (max_length > 0) {
        ranker->manifest().max_length = max_length;  // the encoder follows the manifest's budget
        (void)ranker->encoder();                     // an out-of-range budget fails here, before any work
      }
      std::cerr << "score: " << model_dir << " ("
                << (ranker->architecture() == Architecture::kBert ? "bert" : "decoder") << ", "
                << to_string(ranker->manifest().role) << ", max_length " << ranker->manifest().max_length
                << ", score " << to_string(ranker->manifest().score.type) << "), libtorch, "
                << runtime_summary(device) << "\n";
      ranker_scorer = std::make_unique<RankerPairScorer>(*ranker);
      scorer = ranker_scorer.get();
    }

    options.batch_size = batch_size;
    options.sort_by_length = !no_sort;
    options.tag = tag;
    options.group = &dist::world();
    const auto start = std::chrono::steady_clock::now();
    const Run run = score_pool(*scorer, queries, docs, candidates, options, source);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!options.group->is_root()) return;  // rank 0 writes the merged run
    write_run(out_path, run);
    // One summary line for scripts and logs (encoding included in the rate).
    std::fprintf(stderr,
                 "score: wrote %s: %zu queries, %zu pairs in %.1fs (%.1f pairs/s; shard %zu/%zu of %zu "
                 "queries)\n",
                 out_path.c_str(), run.by_query.size(), run.num_entries(), seconds,
                 seconds > 0 ? static_cast<double>(run.num_entries()) / seconds : 0.0, options.shard_index,
                 options.shard_count, candidates.by_query.size());
  }
};

}  // namespace

void register_score(CLI::App& app) {
  auto command = std::make_shared<ScoreCommand>();
  CLI::App* sub = app.add_subcommand(
      "score",
      "Score (query, document) candidates with a model directory (teacher or student) and write a TREC run, "
      "each query's documents ranked by score. The model's disranker.json decides the template, budget and "
      "score transform.\n"
      "Example: disranker score --model models/student --queries DATA/wikiqa-dev/queries.tsv "
      "--docs DATA/wikiqa-dev/docs.tsv --qrels DATA/wikiqa-dev/qrels.txt --out runs/student.wikiqa-dev.txt\n"
      "Sharding: run --shard 0/4 .. 3/4 (in parallel, or on several machines) with one --out each; each "
      "shard "
      "holds whole queries and the shards are disjoint, so `cat shard-*.txt > run.txt` is the full run.\n"
      "Data-parallel: under mpirun or torchrun-style variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) "
      "the "
      "ranks share the batches and rank 0 writes the merged run, equal to the single-process run "
      "(docs/distributed.md).");
  sub->add_option("--model", command->model_dir,
                  "Model directory (config.json, model.safetensors, tokenizer, "
                  "disranker.json)")
      ->required();
  sub->add_option("--queries", command->queries_path, "Queries TSV: qid<TAB>query")->required();
  sub->add_option("--docs", command->docs_path, "Documents TSV: docid<TAB>title<TAB>text")->required();
  auto* run = sub->add_option("--run", command->run_path,
                              "Candidates: a TREC run (its scores are ignored), e.g. BM25's top 100");
  auto* qrels = sub->add_option("--qrels", command->qrels_path,
                                "Candidates: the judged documents of each query (for sets without a run, "
                                "e.g. WikiQA)");
  run->excludes(qrels);
  qrels->excludes(run);
  sub->add_option("--out", command->out_path, "TREC run to write (atomically)")->required();
  sub->add_option("--batch-size", command->batch_size, "Pairs per forward pass")->capture_default_str();
  sub->add_option("--shard", command->shard,
                  "i/N: score only the queries whose position in the sorted qid list is i modulo N (0-based)")
      ->capture_default_str();
  sub->add_flag("--no-sort", command->no_sort,
                "Batch pairs in candidate order instead of by token length (slower: more padding)");
  sub->add_option("--tag", command->tag, "Run tag (last column)")->capture_default_str();
  sub->add_option("--device", command->device_name, "cpu, cuda or cuda:N")->capture_default_str();
  sub->add_option("--threads", command->threads, "Intra-op threads; 0: one per core")->capture_default_str();
  sub->add_option("--engine", command->engine, kEngineHelp)->capture_default_str();
  sub->add_option("--precision", command->precision, kPrecisionHelp)->capture_default_str();
  sub->add_option("--max-length", command->max_length,
                  "Pair budget in tokens, overriding disranker.json's max_length (0: the model's)")
      ->capture_default_str();
  sub->callback([command, sub] {
    if (sub->count("--run") == 0 && sub->count("--qrels") == 0) {
      throw Error("score: give the candidates with --run (a TREC run) or --qrels (the judged documents)");
    }
    command->run();
  });
}

}  // namespace disranker::cli
