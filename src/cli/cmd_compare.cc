// disranker compare: the difference between two runs per metric, with a paired randomization test.
#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/eval_options.h"
#include "core/error.h"
#include "core/table.h"
#include "data/run.h"
#include "eval/significance.h"

namespace disranker::cli {
namespace {

struct CompareCommand {
  std::string qrels_path;
  std::vector<std::string> run_paths;
  RandomizationOptions randomization;
  double alpha = 0.05;
  bool json = false;
  EvalFlags flags;

  void run() const {
    if (run_paths.size() != 2) throw Error("compare takes exactly two runs: --run A --run B");
    const Qrels qrels = flags.load_qrels(qrels_path);
    if (qrels.by_query.empty()) throw Error(qrels_path, 0, "", "no judged queries to evaluate");
    const auto metrics = flags.metrics();
    const auto options = flags.options();
    const auto a = evaluate(qrels, read_run(run_paths[0]), metrics, options);
    const auto b = evaluate(qrels, read_run(run_paths[1]), metrics, options);

    const std::string name_a = std::filesystem::path(run_paths[0]).filename().string();
    const std::string name_b = std::filesystem::path(run_paths[1]).filename().string();
    TextTable table({"metric", name_a + " (A)", name_b + " (B)", "B-A", "B/A-1", "p", "sig"});
    nlohmann::json out;
    out["a"] = run_paths[0];
    out["b"] = run_paths[1];
    for (std::size_t m = 0; m < metrics.size(); ++m) {
      const Comparison c = randomization_test(a, b, m, randomization);
      const double diff = c.b - c.a;
      const double relative = c.a != 0 ? diff / c.a : std::nan("");
      auto text = [](double v) { return std::isnan(v) ? std::string("-") : format_metric(v); };
      char rel_text[32];
      std::snprintf(rel_text, sizeof rel_text, "%+.1f%%", 100 * relative);
      table.add_row({metrics[m].name, text(c.a), text(c.b), text(diff), std::isnan(relative) ? "-" : rel_text,
                     text(c.p_value), c.p_value < alpha ? "*" : ""});
      out["metrics"][metrics[m].name] = {
          {"a", c.a},        {"b", c.b}, {"diff", diff}, {"p_value", c.p_value}, {"queries", c.queries},
          {"exact", c.exact}};
    }
    if (json) {
      std::cout << out.dump(2) << '\n';
      return;
    }
    std::cout << table.render();
    std::cout << "p: paired two-sided randomization test over " << a.queries.size() << " queries ("
              << (a.queries.size() <= 16 ? "exact"
                                         : std::to_string(randomization.samples) + " permutations, seed " +
                                               std::to_string(randomization.seed))
              << "); * marks p < " << alpha << "\n";
  }
};

}  // namespace

void register_compare(CLI::App& app) {
  auto command = std::make_shared<CompareCommand>();
  CLI::App* sub =
      app.add_subcommand("compare", "Compare two runs per metric with a paired randomization test");
  sub->add_option("--qrels", command->qrels_path, "TREC qrels file")->required()->check(CLI::ExistingFile);
  sub->add_option("--run", command->run_paths, "The two runs: --run A --run B")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--permutations", command->randomization.samples,
                  "Random permutations when there are > 16 queries")
      ->capture_default_str()
      ->check(CLI::Range(100, 10000000));
  sub->add_option("--seed", command->randomization.seed, "Seed of the permutations")->capture_default_str();
  sub->add_option("--alpha", command->alpha, "Significance level for the * mark")->capture_default_str();
  sub->add_flag("--json", command->json, "Print JSON instead of a table");
  command->flags.add_to(*sub);
  sub->callback([command] { command->run(); });
}

}  // namespace disranker::cli
