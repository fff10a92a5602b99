// disranker eval: trec_eval-compatible metrics (plus PNR) for one or more runs against qrels.
#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/eval_options.h"
#include "core/error.h"
#include "core/table.h"
#include "data/run.h"

namespace disranker::cli {
namespace {

struct EvalCommand {
  std::string qrels_path;
  std::vector<std::string> run_paths;
  bool per_query = false;
  bool json = false;
  EvalFlags flags;

  void run() const {
    const Qrels qrels = flags.load_qrels(qrels_path);
    if (qrels.by_query.empty()) throw Error(qrels_path, 0, "", "no judged queries to evaluate");
    const auto metrics = flags.metrics();
    const auto options = flags.options();
    if (per_query && run_paths.size() != 1) throw Error("--per-query takes exactly one --run");

    std::vector<Evaluation> evaluations;
    for (const auto& path : run_paths)
      evaluations.push_back(evaluate(qrels, read_run(path), metrics, options));

    if (json) {
      print_json(evaluations);
    } else if (per_query) {
      print_per_query(evaluations.front());
    } else {
      print_table(evaluations);
    }
  }

  static std::string value_text(double v) { return std::isnan(v) ? "-" : format_metric(v); }

  // trec_eval -q style: "metric<TAB>qid<TAB>value" per query, then the "all" line of each metric.
  static void print_per_query(const Evaluation& e) {
    for (std::size_t m = 0; m < e.metrics.size(); ++m) {
      for (const auto& q : e.queries) {
        if (!std::isnan(q.values[m]))
          std::cout << e.metrics[m].name << '\t' << q.qid << '\t' << format_metric(q.values[m]) << '\n';
      }
      std::cout << e.metrics[m].name << "\tall\t" << value_text(e.summary[m]) << '\n';
    }
  }

  void print_table(const std::vector<Evaluation>& evaluations) const {
    std::vector<std::string> header = {"metric"};
    for (const auto& path : run_paths) header.push_back(std::filesystem::path(path).filename().string());
    TextTable table(header);
    const auto& first = evaluations.front();
    for (std::size_t m = 0; m < first.metrics.size(); ++m) {
      std::vector<std::string> row = {first.metrics[m].name};
      for (const auto& e : evaluations) row.push_back(value_text(e.summary[m]));
      table.add_row(row);
    }
    std::vector<std::string> count_row = {"queries"};
    for (const auto& e : evaluations) count_row.push_back(std::to_string(e.queries.size()));
    table.add_row(count_row);
    std::cout << table.render();
  }

  void print_json(const std::vector<Evaluation>& evaluations) const {
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t r = 0; r < evaluations.size(); ++r) {
      const auto& e = evaluations[r];
      nlohmann::json entry;
      entry["run"] = run_paths[r];
      entry["queries"] = e.queries.size();
      auto number = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
      for (std::size_t m = 0; m < e.metrics.size(); ++m)
        entry["metrics"][e.metrics[m].name] = number(e.summary[m]);
      if (per_query) {
        for (const auto& q : e.queries) {
          for (std::size_t m = 0; m < e.metrics.size(); ++m)
            entry["per_query"][q.qid][e.metrics[m].name] = number(q.values[m]);
        }
      }
      double concordant = 0, discordant = 0;
      for (const auto& q : e.queries) concordant += q.pnr.concordant, discordant += q.pnr.discordant;
      entry["pnr_pairs"] = {{"concordant", concordant}, {"discordant", discordant}};
      out.push_back(entry);
    }
    std::cout << (evaluations.size() == 1 ? out.front() : out).dump(2) << '\n';
  }
};

}  // namespace

void register_eval(CLI::App& app) {
  auto command = std::make_shared<EvalCommand>();
  CLI::App* sub =
      app.add_subcommand("eval", "Evaluate TREC runs against qrels (trec_eval semantics, plus PNR)");
  sub->add_option("--qrels", command->qrels_path, "TREC qrels file")->required()->check(CLI::ExistingFile);
  sub->add_option("--run", command->run_paths, "TREC run file (repeat to compare runs side by side)")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_flag("-q,--per-query", command->per_query,
                "Print metric<TAB>qid<TAB>value per query, as trec_eval -q");
  sub->add_flag("--json", command->json, "Print JSON instead of a table");
  command->flags.add_to(*sub);
  sub->callback([command] { command->run(); });
}

}  // namespace disranker::cli
