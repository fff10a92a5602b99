#include "pipeline/evaluate.h"

#include <algorithm>
#include <cmath>

#include "data/qrels.h"
#include "data/run.h"
#include "eval/metrics.h"
#include "eval/significance.h"

namespace disranker::pipeline {

nlohmann::json evaluate_set(const EvalSet& set, const std::vector<SystemRun>& systems,
                            const std::vector<std::string>& metric_names,
                            const std::vector<std::string>& against, std::size_t permutations) {
  Qrels qrels = read_qrels(set.qrels);
  if (set.require_relevant) keep_queries_with_relevant(qrels, set.rel_level);
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

}  // namespace disranker::pipeline
