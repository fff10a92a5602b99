#include "pipeline/evaluate.h"

#include <algorithm>
#include <cmath>

#include "data/click_model.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"
#include "eval/metrics.h"
#include "eval/significance.h"
#include "online/results_json.h"
#include "online/simulation.h"

namespace disranker::pipeline {
namespace {

// The set's judgments as its tables count them: the online simulation runs on the same queries, so that its
// deltas and the offline ones describe one query set.
Qrels set_qrels(const EvalSet& set) {
  Qrels qrels = read_qrels(set.qrels);
  if (set.require_relevant) keep_queries_with_relevant(qrels, set.rel_level);
  return qrels;
}

}  // namespace

nlohmann::json evaluate_set(const EvalSet& set, const std::vector<SystemRun>& systems,
                            const std::vector<std::string>& metric_names,
                            const std::vector<std::string>& against, std::size_t permutations) {
  const Qrels qrels = set_qrels(set);
  std::vector<MetricSpec> metrics;
  for (const auto& name : metric_names) metrics.push_back(parse_metric(name));
  EvalOptions options;
  options.rel_level = set.rel_level;

  std::vector<Evaluation> evaluations;
  for (const auto& system : systems)
    evaluations.push_back(evaluate(qrels, read_run(system.run), metrics, options));

  nlohmann::json out;
  out["dataset"] = set.name;
  out["note"] = set.note + (set.note.empty() ? "" : "; ") + std::to_string(qrels.by_query.size()) +
                " queries evaluated" +
                (set.rel_level > 1 ? ", relevant = grade >= " + std::to_string(set.rel_level) : "");
  out["metrics"] = metric_names;
  out["systems"] = nlohmann::json::array();
  RandomizationOptions test_options;
  test_options.samples = permutations;
  for (std::size_t s = 0; s < systems.size(); ++s) {
    nlohmann::json system;
    system["name"] = systems[s].name;
    system["values"] = nlohmann::json::object();
    for (std::size_t m = 0; m < metrics.size(); ++m) {
      const double value = evaluations[s].summary[m];
      system["values"][metric_names[m]] = std::isfinite(value) ? nlohmann::json(value) : nlohmann::json();
    }
    system["tests"] = nlohmann::json::array();
    for (const auto& reference : against) {
      const auto it =
          std::find_if(systems.begin(), systems.end(), [&](const auto& x) { return x.name == reference; });
      if (it == systems.end() || it->name == systems[s].name) continue;
      const auto& base = evaluations[static_cast<std::size_t>(it - systems.begin())];
      for (std::size_t m = 0; m < metrics.size(); ++m) {
        const Comparison comparison = randomization_test(base, evaluations[s], m, test_options);
        if (!std::isfinite(comparison.a) || !std::isfinite(comparison.b)) continue;
        system["tests"].push_back({{"against", reference},
                                   {"metric", metric_names[m]},
                                   {"p_value", comparison.p_value},
                                   {"delta", comparison.b - comparison.a}});
      }
    }
    out["systems"].push_back(system);
  }
  return out;
}

nlohmann::json simulate_online(const EvalSet& set, const SystemRun& reference,
                               const std::vector<SystemRun>& systems, const OnlineSettings& settings,
                               std::size_t threads) {
  const Qrels qrels = set_qrels(set);
  const int max_grade = max_grade_in(qrels);
  if (max_grade < 1) return nullptr;
  const Queries queries = read_queries(set.queries);
  // The click model of `disranker online` with its defaults; the top grade of the set is attractiveness 1.
  ClickModelOptions model_options;
  model_options.kind = parse_click_model_kind(settings.click_model);
  model_options.max_grade = max_grade;
  const ClickModel model(model_options);
  online::TrafficOptions traffic;
  traffic.users = settings.users;
  traffic.days = settings.days;
  traffic.seed = settings.seed;
  traffic.threads = threads;
  online::check_traffic_options(traffic);
  online::AbOptions ab;
  ab.bootstrap = settings.bootstrap;

  const std::vector<MetricSpec> ndcg = {parse_metric("ndcg_cut.10")};
  EvalOptions eval_options;
  eval_options.rel_level = set.rel_level;
  const Run run_a = read_run(reference.run);
  const double ndcg_a = evaluate(qrels, run_a, ndcg, eval_options).summary[0];

  nlohmann::json out = {{"click_model", click_model_kind_name(model_options.kind)},
                        {"reference", reference.name},
                        {"users", settings.users},
                        {"days", settings.days},
                        {"depth", settings.depth},
                        {"seed", settings.seed},
                        {"systems", nlohmann::json::array()}};
  for (const auto& system : systems) {
    const Run run_b = read_run(system.run);
    const auto experiment = online::prepare_experiment(qrels, queries, run_a, run_b, settings.depth, nullptr);
    const auto ab_result =
        online::analyse_ab(online::simulate_ab_users(experiment, model, traffic), ab, traffic.seed, threads);
    const auto interleaving = online::simulate_interleaving(experiment, model, traffic);
    const double ndcg_b = evaluate(qrels, run_b, ndcg, eval_options).summary[0];
    out["systems"].push_back({{"name", system.name},
                              {"queries", experiment.queries.size()},
                              {"offline",
                               {{"ndcg_cut.10",
                                 {{"a", online::finite_or_null(ndcg_a)},
                                  {"b", online::finite_or_null(ndcg_b)},
                                  {"diff", online::finite_or_null(ndcg_b - ndcg_a)}}}}},
                              {"ab_test", online::ab_test_json(ab_result, ab)},
                              {"interleaving", online::interleaving_json(interleaving)}});
  }
  return out;
}

}  // namespace disranker::pipeline
