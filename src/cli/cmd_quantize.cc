// disranker quantize: what int8 inference costs a student in ranking quality, and what it buys in speed.
//
// Scores the same candidates with the fast engine in fp32 and in int8 (infer/int8_gemm.h: weights per output
// column at load, activations per token), evaluates both runs against the qrels (NDCG@10, PNR, MRR@10, MAP,
// with a paired randomization test on NDCG@10), times both engines one call per query (the serving pattern),
// and checks the NDCG@10 drop against a budget: exit status 2 when int8 loses more than --max-ndcg-drop.
// Quantization happens at load, so nothing is written but the optional JSON report and runs: serve or score
// the same model directory with --precision int8.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/engine_option.h"
#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/table.h"
#include "data/docs.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"
#include "eval/metrics.h"
#include "eval/significance.h"
#include "infer/bert_engine.h"
#include "infer/int8_gemm.h"

namespace disranker::cli {
namespace {

namespace fs = std::filesystem;

struct Candidates {
  std::vector<std::string> qids;
  std::vector<std::vector<std::string>> docids;
  std::vector<std::vector<EncodedPair>> pairs;
  std::size_t total = 0;
};

struct Timed {
  Run run;
  double seconds = 0;
};

// Scores every query's candidates in one call each (after one warm-up call), as `serve` does.
Timed score_all(BertEngine& engine, const Candidates& c, const std::string& label) {
  Timed out;
  engine.score(c.pairs.front());  // warm-up: buffers, oneDNN's kernels
  ProgressBar progress("quantize " + label, c.total, "pairs");
  std::size_t done = 0;
  for (std::size_t q = 0; q < c.qids.size(); ++q) {
    const auto start = std::chrono::steady_clock::now();
    const std::vector<double> scores = engine.score(c.pairs[q]);
    out.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    auto& entries = out.run.by_query[c.qids[q]];
    for (std::size_t i = 0; i < scores.size(); ++i) {
      if (!std::isfinite(scores[i]))
        throw Error("quantize: " + label + " scored a non-finite value for query " + c.qids[q] +
                    ", document " + c.docids[q][i]);
      entries.push_back({c.docids[q][i], scores[i]});
    }
    progress.update(done += scores.size());
  }
  progress.finish();
  out.run.tag = label;
  out.run.sort_by_score();
  return out;
}

std::string signed_text(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%+.4f", v);
  return text;
}

struct QuantizeCommand {
  std::string model_dir;
  std::string qrels_path;
  std::string run_path;
  std::string queries_path;
  std::string docs_path;
  int threads = 0;
  std::int64_t max_length = 0;
  int rel_level = 1;
  double max_ndcg_drop = 0.002;
  std::string out_path;
  std::string runs_prefix;

  int execute() {
    const fs::path data = fs::path(qrels_path).parent_path();
    if (queries_path.empty()) queries_path = (data / "queries.tsv").string();
    if (docs_path.empty()) docs_path = (data / "docs.tsv").string();
    const Qrels qrels = read_qrels(qrels_path);
    const Run candidates = read_run(run_path);
    const Queries queries = read_queries(queries_path);
    const Docs docs = read_docs(docs_path, /*allow_empty=*/true);

    BertEngineOptions options;
    options.threads = threads;
    auto fp32 = open_fast_engine("fast", model_dir, "cpu", "quantize", options);
    options.precision = Precision::kInt8;
    auto int8 = open_fast_engine("fast", model_dir, "cpu", "quantize", options);
    if (max_length > 0) fp32->set_max_length(max_length), int8->set_max_length(max_length);

    Candidates c;
    for (const auto& [qid, entries] : candidates.by_query) {
      const Query* query = queries.find(qid);
      if (query == nullptr) throw Error(run_path, 0, qid, "query not in " + queries_path);
      c.qids.push_back(qid);
      c.docids.emplace_back(), c.pairs.emplace_back();
      for (const RunEntry& e : entries) {
        const Doc* doc = docs.find(e.docid);
        if (doc == nullptr) throw Error(run_path, 0, e.docid, "document not in " + docs_path);
        c.docids.back().push_back(e.docid);
        c.pairs.back().push_back(fp32->encode(query->text, doc->title, doc->text));
      }
      c.total += entries.size();
    }
    if (c.total == 0) throw Error(run_path, 0, "", "no candidates to score");

    const BertConfig& config = fp32->config();
    std::fprintf(stderr,
                 "quantize: %s (bert, %lld layers, hidden %lld, max_length %lld): %zu queries, %zu pairs of "
                 "%s; %d threads; int8 activations %s\n",
                 model_dir.c_str(), static_cast<long long>(config.num_hidden_layers),
                 static_cast<long long>(config.hidden_size),
                 static_cast<long long>(fp32->manifest().max_length), c.qids.size(), c.total,
                 run_path.c_str(), threads,
                 activation_levels() == 255 ? "u8 (VNNI)" : "7-bit (no VNNI: oneDNN's int16 pair sums)");
    const Timed exact = score_all(*fp32, c, "fp32");
    const Timed quantized = score_all(*int8, c, "int8");
    if (!runs_prefix.empty()) {
      write_run(runs_prefix + ".fp32.txt", exact.run);
      write_run(runs_prefix + ".int8.txt", quantized.run);
    }

    std::vector<MetricSpec> metrics;
    for (const char* name : {"ndcg_cut.10", "pnr", "mrr_cut.10", "map", "ndcg_cut.5"})
      metrics.push_back(parse_metric(name));
    EvalOptions eval_options;
    eval_options.rel_level = rel_level;
    const Evaluation a = evaluate(qrels, exact.run, metrics, eval_options);
    const Evaluation b = evaluate(qrels, quantized.run, metrics, eval_options);
    const Comparison ndcg_test = randomization_test(a, b, 0, {});

    // How many queries' top 10 changed at all (order or membership).
    std::size_t changed_top10 = 0;
    for (const auto& [qid, entries] : exact.run.by_query) {
      const auto& other = quantized.run.by_query.at(qid);
      for (std::size_t i = 0; i < std::min<std::size_t>(10, entries.size()); ++i) {
        if (entries[i].docid != other[i].docid) {
          ++changed_top10;
          break;
        }
      }
    }

    TextTable quality({"metric", "fp32", "int8", "delta"});
    nlohmann::json report_metrics = nlohmann::json::object();
    for (std::size_t m = 0; m < metrics.size(); ++m) {
      quality.add_row({metrics[m].name, format_metric(a.summary[m]), format_metric(b.summary[m]),
                       signed_text(b.summary[m] - a.summary[m])});
      report_metrics[metrics[m].name] = {{"fp32", a.summary[m]}, {"int8", b.summary[m]}};
    }
    const auto rate = [&](const Timed& t) { return static_cast<double>(c.total) / t.seconds; };
    const auto per_query = [&](const Timed& t) {
      return 1000.0 * t.seconds / static_cast<double>(c.qids.size());
    };
    TextTable speed({"precision", "pairs/s", "ms / query", "speedup"});
    char cell[3][32];
    for (const Timed* t : {&exact, &quantized}) {
      std::snprintf(cell[0], sizeof cell[0], "%.1f", rate(*t));
      std::snprintf(cell[1], sizeof cell[1], "%.1f", per_query(*t));
      std::snprintf(cell[2], sizeof cell[2], "%.2f", exact.seconds / t->seconds);
      speed.add_row({t == &exact ? "fp32" : "int8", cell[0], cell[1], cell[2]});
    }
    const double drop = a.summary[0] - b.summary[0];
    const bool within = drop <= max_ndcg_drop;
    std::cout << quality.render() << "\n"
              << "NDCG@10 fp32 vs int8: paired randomization p = " << format_metric(ndcg_test.p_value)
              << " over " << ndcg_test.queries << " queries; top 10 changed on " << changed_top10 << " of "
              << c.qids.size() << " queries\n\n"
              << speed.render() << "(one call per query, " << threads << " threads; "
              << "the speedup is fp32 time / int8 time)\n\n"
              << (within ? "ok" : "FAILED") << ": NDCG@10 drop " << signed_text(drop)
              << (within ? " <= " : " > ") << "--max-ndcg-drop " << max_ndcg_drop << "\n";

    if (!out_path.empty()) {
      const nlohmann::json report = {
          {"model", model_dir},
          {"qrels", qrels_path},
          {"run", run_path},
          {"queries", c.qids.size()},
          {"pairs", c.total},
          {"threads", threads},
          {"activation_levels", activation_levels()},
          {"metrics", report_metrics},
          {"ndcg_cut.10_p_value", ndcg_test.p_value},
          {"changed_top10_queries", changed_top10},
          {"pairs_per_second", {{"fp32", rate(exact)}, {"int8", rate(quantized)}}},
          {"speedup", exact.seconds / quantized.seconds},
          {"max_ndcg_drop", max_ndcg_drop},
          {"within_budget", within},
      };
      write_file_atomically(out_path, [&](std::ostream& out) { out << report.dump(2) << "\n"; });
    }
    return within ? 0 : 2;
  }
};

}  // namespace

void register_quantize(CLI::App& app) {
  auto command = std::make_shared<QuantizeCommand>();
  CLI::App* sub = app.add_subcommand(
      "quantize",
      "Report what int8 inference costs a BERT student: scores the candidates with the fast engine in fp32 "
      "and int8, prints NDCG@10 / PNR / MRR@10 / MAP of both with the deltas, and the speedup. Exit status 2 "
      "when NDCG@10 drops by more than --max-ndcg-drop. Quantization happens at load: use the model with "
      "`score` or `serve --precision int8`.\n"
      "Example: disranker quantize --model runs/quickstart/student --eval-qrels DATA/trec-dl19/qrels.txt "
      "--eval-run DATA/trec-dl19/run.BM25.txt --threads 2");
  sub->add_option("--model", command->model_dir, "BERT student directory (a trained ranking head)")
      ->required();
  sub->add_option("--eval-qrels", command->qrels_path, "Judgements (TREC qrels)")->required();
  sub->add_option("--eval-run", command->run_path, "Candidates to rerank (a TREC run, e.g. BM25's top 100)")
      ->required();
  sub->add_option("--queries", command->queries_path, "Queries TSV (default: queries.tsv beside the qrels)");
  sub->add_option("--docs", command->docs_path, "Documents TSV (default: docs.tsv beside the qrels)");
  sub->add_option("--threads", command->threads, "Engine threads (0: one per core)")->capture_default_str();
  sub->add_option("--max-length", command->max_length, "Pair budget in tokens (0: the model's)")
      ->capture_default_str();
  sub->add_option("--rel-level", command->rel_level,
                  "Binary relevance threshold for MRR and MAP (TREC DL: 2)")
      ->capture_default_str();
  sub->add_option("--max-ndcg-drop", command->max_ndcg_drop,
                  "Largest acceptable NDCG@10 loss of int8 against fp32 (exit status 2 beyond it)")
      ->capture_default_str();
  sub->add_option("--out", command->out_path, "Also write the report as JSON (atomically)");
  sub->add_option("--runs-prefix", command->runs_prefix,
                  "Also write both runs: PREFIX.fp32.txt, PREFIX.int8.txt");
  sub->callback([command] {
    const int status = command->execute();
    if (status != 0) throw CLI::RuntimeError(status);
  });
}

}  // namespace disranker::cli
