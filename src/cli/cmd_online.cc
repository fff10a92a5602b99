// disranker online: what an online experiment between two rankings would show, by simulation. Simulated users
// search, are split into A/B buckets, see their bucket's top 10 and click according to a click model driven
// by the qrels grades; the report gives the paper's online metrics (page CTR, user CTR, dwell time) with
// bootstrap intervals, a team-draft interleaving experiment, and how many impressions each needs to see the
// difference. The simulation lives in online/simulation.h; this file parses options and renders the report.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/click_model_flags.h"
#include "cli/command.h"
#include "core/error.h"
#include "core/files.h"
#include "core/table.h"
#include "data/click_model.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"
#include "data/tsv.h"
#include "eval/metrics.h"
#include "online/results_json.h"
#include "online/simulation.h"

namespace disranker::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string fixed(double value, int decimals) {
  if (!std::isfinite(value)) return "-";
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
  return buffer;
}

std::string signed_percent(double fraction, int decimals = 2) {
  if (!std::isfinite(fraction)) return "-";
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%+.*f%%", decimals, 100 * fraction);
  return buffer;
}

std::string percent(double fraction, int decimals = 1) {
  if (!std::isfinite(fraction)) return "-";
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f%%", decimals, 100 * fraction);
  return buffer;
}

std::string p_value_text(double p) {
  // The exact sign test's p underflows to 0 below the smallest double: say so rather than print 0.
  if (p < 1e-300) return "< 1e-300";
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), p < 1e-4 ? "= %.1e" : "= %.4f", p);
  return buffer;
}

// Impression budgets: positive whole numbers, sorted and without repeats.
std::vector<std::size_t> parse_budgets(const std::string& text) {
  std::vector<std::size_t> budgets;
  if (text.empty()) return budgets;
  for (const double value : parse_number_list(text, "--budgets")) {
    if (!(value >= 1) || value != std::floor(value) || value > 1e9)
      throw Error("--budgets: impression budgets are whole numbers in [1, 1e9], got " + fixed(value, 3));
    budgets.push_back(static_cast<std::size_t>(value));
  }
  std::sort(budgets.begin(), budgets.end());
  budgets.erase(std::unique(budgets.begin(), budgets.end()), budgets.end());
  return budgets;
}

struct OnlineCommand {
  std::string qrels_path;
  std::string queries_path;
  std::vector<std::string> run_paths;
  std::string weights_path;
  ClickModelFlags click_model{"dbn"};
  online::TrafficOptions traffic;
  std::size_t depth = 10;
  online::AbOptions ab;
  std::string budgets = "100,300,1000,3000,10000,30000,100000";
  online::SensitivityOptions sensitivity;
  std::string out_path;
  std::string markdown_path;

  void run() {
    const auto start = Clock::now();
    if (run_paths.size() != 2) throw Error("online takes exactly two runs: --run A --run B");
    sensitivity.budgets = parse_budgets(budgets);
    online::check_traffic_options(traffic);
    if (traffic.threads == 0) traffic.threads = std::max(1u, std::thread::hardware_concurrency());

    const Qrels qrels = read_qrels(qrels_path);
    const Queries queries = read_queries(queries_path);
    const Run run_a = read_run(run_paths[0]);
    const Run run_b = read_run(run_paths[1]);
    std::optional<online::QueryWeights> weights;
    if (!weights_path.empty()) weights = online::read_query_weights(weights_path);
    const ClickModel model(click_model.resolve(qrels));
    const auto experiment =
        online::prepare_experiment(qrels, queries, run_a, run_b, depth, weights ? &*weights : nullptr);

    // Offline nDCG@10 beside the online deltas: the offline difference the simulation translates.
    const std::vector<MetricSpec> ndcg = {parse_metric("ndcg_cut.10")};
    const double ndcg_a = evaluate(qrels, run_a, ndcg, EvalOptions{}).summary[0];
    const double ndcg_b = evaluate(qrels, run_b, ndcg, EvalOptions{}).summary[0];

    const auto simulation_start = Clock::now();
    const auto users = online::simulate_ab_users(experiment, model, traffic);
    const double ab_seconds = seconds_since(simulation_start);
    const auto interleaving_start = Clock::now();
    const auto interleaving = online::simulate_interleaving(experiment, model, traffic);
    const double interleaving_seconds = seconds_since(interleaving_start);
    const auto sensitivity_start = Clock::now();
    const auto curve =
        sensitivity.repetitions > 0 && !sensitivity.budgets.empty()
            ? online::simulate_sensitivity(experiment, model, sensitivity, traffic.seed, traffic.threads)
            : online::SensitivityResult{};
    const double sensitivity_seconds = seconds_since(sensitivity_start);
    const auto bootstrap_start = Clock::now();
    const auto ab_result = online::analyse_ab(users, ab, traffic.seed, traffic.threads);
    const double bootstrap_seconds = seconds_since(bootstrap_start);
    const std::size_t impressions =
        ab_result.a.pages + ab_result.b.pages + interleaving.impressions + curve.impressions;
    const double simulation_seconds = ab_seconds + interleaving_seconds + sensitivity_seconds;

    print_summary(experiment, model, weights.has_value());
    const std::string name_a = std::filesystem::path(run_paths[0]).filename().string();
    const std::string name_b = std::filesystem::path(run_paths[1]).filename().string();
    const Tables tables = make_tables(ab_result, curve);
    std::cout << "A = " << name_a << ", B = " << name_b << "; offline nDCG@10 A " << format_metric(ndcg_a)
              << ", B " << format_metric(ndcg_b) << " (B-A " << (ndcg_b >= ndcg_a ? "+" : "")
              << format_metric(ndcg_b - ndcg_a) << ")\n\n";
    std::cout << ab_heading(ab_result) << "\n" << tables.ab.render() << ab_footnote() << "\n\n";
    std::cout << interleaving_line(interleaving) << "\n";
    if (!curve.points.empty()) {
      std::cout << "\n"
                << sensitivity_heading(curve) << "\n"
                << tables.sensitivity.render() << needed_line(curve) << "\n";
    }
    char timing[256];
    std::snprintf(
        timing, sizeof(timing),
        "\nsimulated %zu impressions in %.2f s (%.2f M impressions/s, %zu threads); bootstrap %.2f s; "
        "total %.2f s\n",
        impressions, simulation_seconds,
        simulation_seconds > 0 ? static_cast<double>(impressions) / simulation_seconds / 1e6 : 0.0,
        traffic.threads, bootstrap_seconds, seconds_since(start));
    std::cout << timing;

    if (!out_path.empty()) {
      nlohmann::json report;
      report["runs"] = {{"a", run_paths[0]}, {"b", run_paths[1]}};
      const auto& o = model.options();
      std::vector<double> attract_by_grade;
      std::vector<double> satisfy_by_grade;
      for (int g = 0; g <= o.max_grade; ++g) {
        attract_by_grade.push_back(model.attractiveness(g));
        satisfy_by_grade.push_back(model.satisfaction(g));
      }
      report["click_model"] = {{"kind", click_model_kind_name(o.kind)},
                               {"eta", o.eta},
                               {"epsilon", o.epsilon},
                               {"gamma", o.gamma},
                               {"max_grade", o.max_grade},
                               {"attractiveness_by_grade", attract_by_grade},
                               {"satisfaction_by_grade", satisfy_by_grade},
                               {"dwell_min_ms", o.dwell_min_ms},
                               {"dwell_max_ms", o.dwell_max_ms},
                               {"dwell_sigma", o.dwell_sigma}};
      report["traffic"] = {
          {"users", traffic.users},
          {"days", traffic.days},
          {"queries_per_user_day", traffic.queries_per_user_day},
          {"activity_sigma", traffic.activity_sigma},
          {"satisfied_dwell_ms", traffic.satisfied_dwell_ms},
          {"depth", depth},
          {"seed", traffic.seed},
          {"query_weights", weights_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(weights_path)}};
      report["queries"] = {
          {"eligible", experiment.queries.size()},     {"qrels", experiment.qrels_queries},
          {"no_query_text", experiment.no_query_text}, {"not_in_runs", experiment.not_in_runs},
          {"only_in_a", experiment.only_in_a},         {"only_in_b", experiment.only_in_b},
          {"zero_weight", experiment.zero_weight},     {"unknown_weights", experiment.unknown_weights}};
      report["offline"] = {{"ndcg_cut.10", {{"a", ndcg_a}, {"b", ndcg_b}, {"diff", ndcg_b - ndcg_a}}}};
      report["ab_test"] = online::ab_test_json(ab_result, ab);
      report["interleaving"] = online::interleaving_json(interleaving);
      nlohmann::json points = nlohmann::json::array();
      for (const auto& p : curve.points) {
        points.push_back({{"impressions", p.impressions},
                          {"ab_power", online::finite_or_null(p.ab_power)},
                          {"interleaving_power", online::finite_or_null(p.interleaving_power)},
                          {"ab_b_better", online::finite_or_null(p.ab_b_better)},
                          {"interleaving_b_better", online::finite_or_null(p.interleaving_b_better)}});
      }
      const auto needed = [](std::size_t n) { return n == 0 ? nlohmann::json(nullptr) : nlohmann::json(n); };
      report["sensitivity"] = {{"repetitions", curve.repetitions},
                               {"alpha", sensitivity.alpha},
                               {"power", sensitivity.power},
                               {"points", points},
                               {"ab_impressions_needed", needed(curve.ab_needed)},
                               {"interleaving_impressions_needed", needed(curve.interleaving_needed)}};
      report["timing"] = {
          {"impressions", impressions},
          {"simulation_seconds", simulation_seconds},
          {"impressions_per_second",
           simulation_seconds > 0 ? static_cast<double>(impressions) / simulation_seconds : 0.0},
          {"bootstrap_seconds", bootstrap_seconds},
          {"threads", traffic.threads}};
      write_file_atomically(out_path, [&](std::ostream& out) { out << report.dump(2) << '\n'; });
      std::fprintf(stderr, "report -> %s\n", out_path.c_str());
    }
    if (!markdown_path.empty()) {
      write_file_atomically(markdown_path, [&](std::ostream& out) {
        out << "# Simulated online experiment: " << name_b << " (B) against " << name_a << " (A)\n\n";
        out << "Click model " << click_model_kind_name(model.options().kind) << ", " << traffic.users
            << " users over " << traffic.days << " days, " << experiment.queries.size() << " queries, seed "
            << traffic.seed << ". Offline nDCG@10: A " << format_metric(ndcg_a) << ", B "
            << format_metric(ndcg_b) << ".\n\n";
        out << "## A/B test\n\n"
            << ab_heading(ab_result) << "\n\n"
            << tables.ab.render_markdown() << "\n"
            << ab_footnote() << "\n\n";
        out << "## Interleaving\n\n" << interleaving_line(interleaving) << "\n";
        if (!curve.points.empty()) {
          out << "\n## Sensitivity\n\n"
              << sensitivity_heading(curve) << "\n\n"
              << tables.sensitivity.render_markdown() << "\n"
              << needed_line(curve) << "\n";
        }
      });
      std::fprintf(stderr, "markdown -> %s\n", markdown_path.c_str());
    }
  }

  struct Tables {
    TextTable ab{{"metric", "A", "B", "B/A-1", "CI", "sig"}};
    TextTable sensitivity{{"impressions", "A/B page CTR", "interleaving"}};
  };

  Tables make_tables(const online::AbResult& ab_result, const online::SensitivityResult& curve) const {
    Tables tables;
    for (std::size_t m = 0; m < online::kMetricCount; ++m) {
      const auto metric = static_cast<online::Metric>(m);
      const auto& d = ab_result.deltas[m];
      const int decimals = metric == online::Metric::kDwellPerClick ? 2 : 4;
      const std::string interval =
          std::isfinite(d.ci_low) ? "[" + signed_percent(d.ci_low) + ", " + signed_percent(d.ci_high) + "]"
                                  : "-";
      tables.ab.add_row({online::metric_name(metric), fixed(d.a, decimals), fixed(d.b, decimals),
                         signed_percent(d.relative), interval, d.significant() ? "*" : ""});
    }
    for (const auto& p : curve.points) {
      tables.sensitivity.add_row(
          {std::to_string(p.impressions), fixed(p.ab_power, 3), fixed(p.interleaving_power, 3)});
    }
    return tables;
  }

  std::string ab_heading(const online::AbResult& r) const {
    return "A/B test: " + std::to_string(r.a.pages + r.b.pages) + " pages; A: " + std::to_string(r.a.users) +
           " users, " + std::to_string(r.a.pages) + " pages; B: " + std::to_string(r.b.users) + " users, " +
           std::to_string(r.b.pages) + " pages";
  }

  std::string ab_footnote() const {
    return "CI: " + fixed(100 * ab.confidence, 0) + "% bootstrap percentile interval of B/A-1 (" +
           std::to_string(ab.bootstrap) + " resamples of users within each bucket); * when it excludes 0";
  }

  static std::string interleaving_line(const online::InterleavingResult& r) {
    const double n = static_cast<double>(std::max<std::size_t>(1, r.impressions));
    char buffer[512];
    std::snprintf(
        buffer, sizeof(buffer),
        "Interleaving (team draft): %zu impressions; B wins %zu (%s), A wins %zu (%s), ties %zu (%s); "
        "B wins %s of decided impressions, Delta_AB %+.4f; sign test p %s",
        r.impressions, r.wins_b, percent(static_cast<double>(r.wins_b) / n).c_str(), r.wins_a,
        percent(static_cast<double>(r.wins_a) / n).c_str(), r.ties,
        percent(static_cast<double>(r.ties) / n).c_str(), percent(r.b_win_share()).c_str(), r.delta(),
        p_value_text(r.p_value).c_str());
    return buffer;
  }

  std::string sensitivity_heading(const online::SensitivityResult& curve) const {
    return "Sensitivity: share of " + std::to_string(curve.repetitions) +
           " simulated experiments per impression budget with p < " + fixed(sensitivity.alpha, 2) +
           " (A/B: page CTR, two-proportion z-test, one fresh user per impression; interleaving: sign test)";
  }

  std::string needed_line(const online::SensitivityResult& curve) const {
    const auto needed = [](std::size_t n) {
      return n == 0 ? std::string("more than the largest budget") : std::to_string(n) + " impressions";
    };
    return "Power " + fixed(sensitivity.power, 2) + " reached by A/B at " + needed(curve.ab_needed) +
           ", by interleaving at " + needed(curve.interleaving_needed);
  }

  void print_summary(const online::Experiment& experiment, const ClickModel& model, bool weighted) const {
    const auto& o = model.options();
    std::fprintf(stderr,
                 "online: %zu queries (%s), %zu users x %zu days, top %zu, %s click model (seed %llu)\n",
                 experiment.queries.size(), weighted ? "weighted by --query-weights" : "uniform",
                 traffic.users, traffic.days, depth, click_model_kind_name(o.kind).c_str(),
                 static_cast<unsigned long long>(traffic.seed));
    const auto count = [](std::size_t n, const char* what) {
      if (n > 0) std::fprintf(stderr, "  %zu %s\n", n, what);
    };
    count(experiment.no_query_text, "qrels queries left out: not in --queries");
    count(experiment.not_in_runs, "qrels queries left out: in neither run");
    count(experiment.zero_weight, "queries left out: no positive weight in --query-weights");
    count(experiment.unknown_weights, "weighted queries ignored: not eligible");
    count(experiment.only_in_a, "queries run B does not rank (B shows an empty page)");
    count(experiment.only_in_b, "queries run A does not rank (A shows an empty page)");
    std::fprintf(stderr, "  attractiveness by grade:");
    for (int g = 0; g <= o.max_grade; ++g) std::fprintf(stderr, " %d:%.3f", g, model.attractiveness(g));
    if (o.kind != ClickModelKind::kPbm) {
      std::fprintf(stderr, "; satisfaction:");
      for (int g = 0; g <= o.max_grade; ++g) std::fprintf(stderr, " %d:%.3f", g, model.satisfaction(g));
    }
    if (o.kind == ClickModelKind::kDbn) std::fprintf(stderr, "; gamma %g", o.gamma);
    if (o.kind == ClickModelKind::kPbm) std::fprintf(stderr, "; eta %g", o.eta);
    std::fprintf(stderr, "\n");
  }
};

}  // namespace

void register_online(CLI::App& app) {
  auto command = std::make_shared<OnlineCommand>();
  CLI::App* sub = app.add_subcommand(
      "online", "Simulate an online A/B test and an interleaving experiment of run B against run A");
  sub->footer(
      "Simulated users (--users, each with a log-normal activity level of mean --queries-per-day) search for "
      "--days days; queries are drawn uniformly from the judged queries both files know (or by "
      "--query-weights). A/B: users are split into two buckets by a hash of their id and see the top --depth "
      "of "
      "their bucket's run; clicks and dwell times follow --click-model with the qrels grades (unjudged = "
      "0).\n"
      "  pbm: click at rank k with (1/k)^eta * attract(g). cascade: scan down, click with attract(g), stop "
      "after "
      "a click with satisf(g). dbn: the cascade, but an unsatisfied user goes on only with probability "
      "gamma.\n"
      "  attract(g) = epsilon + (1 - epsilon)(2^g - 1)/(2^gmax - 1) and satisf(g) = attract(g) unless "
      "--attractiveness / --satisfaction give one probability per grade 0..gmax.\n"
      "Reported: page CTR, user CTR, clicks per page, dwell per click, abandonment, satisfied CTR per bucket "
      "and "
      "B/A-1 with a bootstrap interval over users; team-draft interleaving (wins, losses, ties, sign test); "
      "and "
      "the share of repeated experiments with p < --alpha per impression budget (--budgets; --repetitions 0 "
      "skips it).\n"
      "Example:\n"
      "  disranker online --qrels $D/qrels.txt --queries $D/queries.tsv --run $D/run.BM25.txt \\\n"
      "    --run $D/run.SPLADE_P_P_ENSEMBLE_DISTIL.txt --click-model dbn --users 20000 --days 14 --seed 1 "
      "\\\n"
      "    --out online.json --markdown online.md");
  sub->add_option("--qrels", command->qrels_path, "TREC qrels: the grades behind the clicks")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--queries", command->queries_path, "Queries TSV (qid<TAB>query): the queries users issue")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--run", command->run_paths, "The two rankings: --run A (control) --run B (treatment)")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option(
         "--query-weights", command->weights_path,
         "qid<TAB>weight: relative query frequencies (default: uniform); unlisted queries are never issued")
      ->check(CLI::ExistingFile);
  sub->add_option("--users", command->traffic.users, "Simulated users (split between A and B)")
      ->check(CLI::Range(std::size_t{2}, std::size_t{100000000}))
      ->capture_default_str();
  sub->add_option("--days", command->traffic.days, "Days the experiment runs")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10000}))
      ->capture_default_str();
  sub->add_option("--queries-per-day", command->traffic.queries_per_user_day,
                  "Mean queries per user and day (each user's own rate is log-normal around it)")
      ->check(CLI::Range(1e-6, 1000.0))
      ->capture_default_str();
  sub->add_option("--activity-sigma", command->traffic.activity_sigma,
                  "Spread of user activity (std. dev. of the log rate; 0: all users alike)")
      ->check(CLI::Range(0.0, 5.0))
      ->capture_default_str();
  sub->add_option("--seed", command->traffic.seed,
                  "Random seed (the report is a function of seed and options)")
      ->capture_default_str();
  sub->add_option("--depth", command->depth, "Results per page")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  add_click_model_flags(sub, command->click_model, "--click-model", /*explicit_mappings=*/true);
  sub->add_option("--satisfied-dwell-ms", command->traffic.satisfied_dwell_ms,
                  "A click at least this long satisfied the user (satisfied CTR)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--bootstrap", command->ab.bootstrap, "Bootstrap resamples for the A/B intervals (0: none)")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1000000}))
      ->capture_default_str();
  sub->add_option("--confidence", command->ab.confidence, "Confidence level of the A/B intervals")
      ->check(CLI::Range(0.5, 0.9999))
      ->capture_default_str();
  sub->add_option("--budgets", command->budgets,
                  "Impression budgets of the sensitivity curve, comma-separated")
      ->capture_default_str();
  sub->add_option("--repetitions", command->sensitivity.repetitions,
                  "Simulated experiments per budget and kind (0: no sensitivity curve)")
      ->check(CLI::Range(std::size_t{0}, std::size_t{100000}))
      ->capture_default_str();
  sub->add_option("--alpha", command->sensitivity.alpha, "Significance level of the sensitivity curve")
      ->check(CLI::Range(1e-6, 0.5))
      ->capture_default_str();
  sub->add_option("--power", command->sensitivity.power, "Power that 'impressions needed' asks for")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  sub->add_option("--threads", command->traffic.threads,
                  "Threads (0: all cores; results do not depend on it)")
      ->capture_default_str();
  sub->add_option("--out", command->out_path, "JSON report to write (atomically)");
  sub->add_option("--markdown", command->markdown_path, "Markdown report to write (atomically)");
  sub->callback([command] { command->run(); });
}

}  // namespace disranker::cli
