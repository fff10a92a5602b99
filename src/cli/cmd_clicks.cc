// disranker clicks: click logs for the CPT stage and for click-derived labels.
//   simulate   graded qrels -> a realistic click log (PBM, cascade or DBN click model, log-normal dwell
//   times) cpt-pairs  click log (satisfied clicks) or WikiQA qrels -> CPT pairs (query, title, summary)
//   labels     click log -> graded pseudo-qrels (naive or position-debiased CTR)
// The models and estimators live in data/click_model.h and data/click_derive.h; this file parses options and
// prints what was kept and dropped.
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/click_model_flags.h"
#include "cli/command.h"
#include "core/error.h"
#include "core/table.h"
#include "data/click_derive.h"
#include "data/click_model.h"
#include "data/clicks.h"
#include "data/cpt_pairs.h"
#include "data/docs.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"
#include "data/tsv.h"

namespace disranker::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string percent(std::size_t part, std::size_t whole) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f%%",
                whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole));
  return buffer;
}

std::string fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
  return buffer;
}

// Prints "  <count> <what>" when the count is not zero: what was left out, so that nothing disappears
// silently.
void print_count(std::size_t count, const char* what) {
  if (count > 0) std::fprintf(stderr, "  %zu %s\n", count, what);
}

// ---- simulate ----

struct SimulateCommand {
  std::string qrels_path;
  std::string queries_path;
  std::string docs_path;
  std::string run_path;
  std::string out_path;
  ClickModelFlags model{"pbm"};
  std::size_t sessions = 10000;
  std::uint64_t seed = 0;
  std::size_t depth = 10;

  void run() const {
    const auto start = Clock::now();
    const Qrels qrels = read_qrels(qrels_path);
    const Queries queries = read_queries(queries_path);
    const Docs docs = read_docs(docs_path);
    std::optional<Run> run;
    if (!run_path.empty()) run = read_run(run_path);

    ClickSimulationOptions options;
    options.sessions = sessions;
    options.seed = seed;
    options.depth = depth;
    options.model = model.resolve(qrels);

    ClickSimulationReport report;
    const auto log = simulate_click_log(queries, docs, qrels, run ? &*run : nullptr, options, &report);
    write_click_log(out_path, log);

    const ClickModel click_model(options.model);
    std::fprintf(stderr,
                 "simulated %zu sessions over %zu queries with the %s model (depth %zu, eta %g, epsilon %g, "
                 "max grade %d, seed %llu) in %.1fs -> %s\n",
                 report.sessions, report.eligible_queries, model.kind.c_str(), depth, model.eta,
                 model.epsilon, options.model.max_grade, static_cast<unsigned long long>(seed),
                 seconds_since(start), out_path.c_str());
    std::fprintf(stderr, "  page: %s\n",
                 run ? ("the run's top " + std::to_string(depth)).c_str()
                     : "the judged documents in a fixed seed-dependent shuffle per query (no --run)");
    print_count(report.no_query_text, "qrels queries left out: not in --queries");
    print_count(report.no_candidates,
                run ? "qrels queries left out: no candidate in the run (or none in --docs)"
                    : "qrels queries left out: no judged document in --docs");
    print_count(report.missing_docs, "candidate documents left out: not in --docs");
    std::fprintf(stderr, "  clicks: %zu (%.2f per session); sessions without a click: %s\n", report.clicks,
                 report.sessions == 0
                     ? 0.0
                     : static_cast<double>(report.clicks) / static_cast<double>(report.sessions),
                 percent(report.sessions_without_click, report.sessions).c_str());
    std::fprintf(stderr, "  attractiveness by grade:");
    for (int g = 0; g <= options.model.max_grade; ++g)
      std::fprintf(stderr, " %d:%.3f", g, click_model.attractiveness(g));
    std::fprintf(stderr, "; median dwell by grade:");
    for (int g = 0; g <= options.model.max_grade; ++g)
      std::fprintf(stderr, " %d:%.1fs", g, click_model.dwell_median_ms(g) / 1000);
    std::fprintf(stderr, "\n");
    TextTable table(options.model.kind == ClickModelKind::kPbm
                        ? std::vector<std::string>{"position", "impressions", "clicks", "CTR", "exam(k)"}
                        : std::vector<std::string>{"position", "impressions", "clicks", "CTR"});
    for (std::size_t k = 0; k < report.impressions_at.size(); ++k) {
      if (report.impressions_at[k] == 0) continue;
      std::vector<std::string> row = {
          std::to_string(k + 1), std::to_string(report.impressions_at[k]),
          std::to_string(report.clicks_at[k]),
          fixed(static_cast<double>(report.clicks_at[k]) / static_cast<double>(report.impressions_at[k]), 4)};
      if (options.model.kind == ClickModelKind::kPbm)
        row.push_back(fixed(click_model.examination(static_cast<int>(k) + 1), 4));
      table.add_row(std::move(row));
    }
    std::fprintf(stderr, "%s", table.render().c_str());
  }
};

void register_simulate(CLI::App& parent) {
  auto command = std::make_shared<SimulateCommand>();
  CLI::App* sub = parent.add_subcommand(
      "simulate", "Simulate a click log from graded qrels with a standard click model (PBM, cascade or DBN)");
  sub->footer(
      "Each session picks a query uniformly among those with qrels, query text and a candidate in --docs; "
      "the "
      "page is the run's top --depth (without --run: the query's judged documents, sorted by docid and "
      "shuffled once per query by the seed, the same page in every session). Attractiveness of grade g: "
      "attract(g) = epsilon + (1 - epsilon)(2^g - 1)/(2^gmax - 1), unjudged = 0.\n"
      "  pbm: click at rank k with probability (1/k)^eta * attract(g).\n"
      "  cascade: scan top-down, click with attract(g), stop after a click with probability attract(g).\n"
      "  dbn: the cascade, but after an unsatisfying result the user goes on only with probability gamma.\n"
      "Dwell of a click: log-normal with median dwell-min-ms * (dwell-max-ms/dwell-min-ms)^(g/gmax) and "
      "sigma dwell-sigma (defaults: 8 s for grade 0, 60 s for the top grade, sigma 0.5).");
  sub->add_option("--qrels", command->qrels_path, "TREC qrels: the grades behind the clicks")->required();
  sub->add_option("--queries", command->queries_path, "Queries TSV: qid<TAB>query")->required();
  sub->add_option("--docs", command->docs_path,
                  "Documents TSV: docid<TAB>title<TAB>text (title and summary "
                  "of each result)")
      ->required();
  sub->add_option("--run", command->run_path,
                  "TREC run: the ranking shown (its top --depth); unjudged = grade 0");
  sub->add_option("--out", command->out_path, "Click log to write (JSON Lines, see docs/clicks.md)")
      ->required();
  sub->add_option("--sessions", command->sessions, "Number of sessions (impressions)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--seed", command->seed, "Random seed (the log is a function of the seed and options)")
      ->capture_default_str();
  sub->add_option("--depth", command->depth, "Results per page")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  add_click_model_flags(sub, command->model, "--model", /*explicit_mappings=*/false);
  sub->callback([command] { command->run(); });
}

// ---- cpt-pairs ----

struct CptPairsCommand {
  std::string clicks_path;
  bool from_qrels = false;
  std::string queries_path;
  std::string docs_path;
  std::string qrels_path;
  std::string target = "page";
  std::string out_path;
  double min_dwell_ms = 10000;
  bool no_dedup = false;
  CLI::Option* min_dwell_option = nullptr;
  CLI::Option* target_option = nullptr;

  void run() const {
    const auto start = Clock::now();
    if (from_qrels) {
      if (!clicks_path.empty())
        throw Error("clicks cpt-pairs: give either --clicks or --from-qrels, not both");
      if (queries_path.empty() || docs_path.empty() || qrels_path.empty())
        throw Error("clicks cpt-pairs --from-qrels needs --queries, --docs and --qrels");
      if (min_dwell_option->count() > 0)
        throw Error("clicks cpt-pairs: --min-dwell-ms applies to click logs, not to --from-qrels");
      run_from_qrels(start);
      return;
    }
    if (clicks_path.empty())
      throw Error("clicks cpt-pairs needs --clicks (or --from-qrels with WikiQA-style data)");
    if (!queries_path.empty() || !docs_path.empty() || !qrels_path.empty() || target_option->count() > 0)
      throw Error("clicks cpt-pairs: --queries, --docs, --qrels and --target go with --from-qrels");
    const auto log = read_click_log(clicks_path);
    ClickPairOptions options;
    options.min_dwell_ms = min_dwell_ms;
    options.dedup = !no_dedup;
    ClickPairReport report;
    const auto pairs = cpt_pairs_from_clicks(log, options, &report);
    write_cpt_pairs(out_path, pairs);
    std::fprintf(stderr, "wrote %zu CPT pairs from %zu impressions with %zu clicks in %.1fs -> %s\n",
                 report.kept, report.impressions, report.clicks, seconds_since(start), out_path.c_str());
    std::fprintf(stderr,
                 "  dropped: %zu clicks with dwell < %g ms, %zu clicks on results without title or "
                 "summary, %zu duplicates%s\n",
                 report.short_dwell, min_dwell_ms, report.no_text, report.duplicates,
                 no_dedup ? " (--no-dedup: duplicates kept)" : "");
  }

  void run_from_qrels(Clock::time_point start) const {
    const Queries queries = read_queries(queries_path);
    const Docs docs = read_docs(docs_path);
    const auto judgments = read_qrels_in_file_order(qrels_path);
    QrelsPairOptions options;
    options.target = parse_qrels_pair_target(target);
    options.dedup = !no_dedup;
    QrelsPairReport report;
    const auto pairs = cpt_pairs_from_qrels(queries, docs, judgments, options, &report);
    write_cpt_pairs(out_path, pairs);
    std::fprintf(stderr, "wrote %zu CPT pairs (target %s) from %zu questions in %.1fs -> %s\n", report.kept,
                 target.c_str(), report.questions, seconds_since(start), out_path.c_str());
    print_count(report.without_positive,
                options.target == QrelsPairTarget::kPage
                    ? "questions without a positive sentence (kept: their page was still clicked)"
                    : "questions without a positive sentence (no pair)");
    print_count(report.without_candidates, "questions without judged sentences in --docs (no pair)");
    print_count(report.missing_docs, "judged documents left out: not in --docs");
    print_count(report.unknown_qids, "qrels queries left out: not in --queries");
    print_count(report.mixed_titles, "questions whose sentences have different titles (first title used)");
    print_count(report.duplicates, "duplicate pairs dropped");
  }
};

void register_cpt_pairs(CLI::App& parent) {
  auto command = std::make_shared<CptPairsCommand>();
  CLI::App* sub = parent.add_subcommand(
      "cpt-pairs", "Make CPT training pairs (query<TAB>title<TAB>summary) from a click log or WikiQA qrels");
  sub->footer(
      "From a click log (--clicks): one pair per satisfied click (dwell >= --min-dwell-ms), de-duplicated on "
      "(case-folded, whitespace-collapsed query, title, summary).\n"
      "From WikiQA-style qrels (--from-qrels --queries --docs --qrels): each question was paired with the "
      "Wikipedia page Bing users clicked; --target page (default) gives one pair per question with the page "
      "title and all its candidate sentences joined by spaces (qrels file order), --target positive one pair "
      "per (question, positive sentence).");
  sub->add_option("--clicks", command->clicks_path, "Click log (JSON Lines)");
  sub->add_flag("--from-qrels", command->from_qrels, "Build pairs from questions, docs and qrels (WikiQA)");
  sub->add_option("--queries", command->queries_path, "With --from-qrels: queries TSV");
  sub->add_option("--docs", command->docs_path, "With --from-qrels: documents TSV (title = page title)");
  sub->add_option("--qrels", command->qrels_path, "With --from-qrels: qrels (the candidate sentences)");
  command->target_option = sub->add_option("--target", command->target, "With --from-qrels: page or positive")
                               ->check(CLI::IsMember({"page", "positive"}))
                               ->capture_default_str();
  sub->add_option("--out", command->out_path, "CPT pairs TSV to write")->required();
  command->min_dwell_option =
      sub->add_option("--min-dwell-ms", command->min_dwell_ms, "Shortest dwell of a satisfied click (ms)")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
  sub->add_flag("--no-dedup", command->no_dedup, "Keep duplicate pairs (a pair clicked often weighs more)");
  sub->callback([command] { command->run(); });
}

// ---- labels ----

struct LabelsCommand {
  std::string clicks_path;
  std::string out_path;
  std::string method = "ipw";
  double eta = 1.0;
  double max_weight = 10;
  std::string thresholds = "0.15,0.35,0.7";
  std::size_t min_impressions = 5;

  void run() const {
    const auto start = Clock::now();
    ClickLabelOptions options;
    options.method = parse_click_label_method(method);
    options.eta = eta;
    options.max_weight = max_weight;
    options.thresholds = parse_number_list(thresholds, "--thresholds");
    options.min_impressions = min_impressions;
    const auto log = read_click_log(clicks_path);
    ClickLabelReport report;
    const Qrels qrels = click_labels(log, options, &report);
    write_qrels(out_path, qrels);
    std::fprintf(stderr,
                 "labelled %zu (query, document) pairs of %zu from %zu impressions with %s "
                 "(thresholds %s) in %.1fs -> %s\n",
                 report.labelled, report.pairs, report.impressions,
                 options.method == ClickLabelMethod::kIpw
                     ? ("IPW, eta " + fixed(eta, 2) + ", weights clipped at " + fixed(max_weight, 1)).c_str()
                     : "naive CTR",
                 thresholds.c_str(), seconds_since(start), out_path.c_str());
    if (report.too_few_impressions > 0) {
      std::fprintf(stderr, "  %zu pairs left out: fewer than %zu impressions\n", report.too_few_impressions,
                   min_impressions);
    }
    if (options.method == ClickLabelMethod::kIpw)
      print_count(report.clipped_weights, "clicks with a clipped IPW weight");
    std::fprintf(stderr, "  grades:");
    for (std::size_t g = 0; g < report.grade_counts.size(); ++g)
      std::fprintf(stderr, " %zu:%zu", g, report.grade_counts[g]);
    std::fprintf(stderr, "\n");
  }
};

void register_labels(CLI::App& parent) {
  auto command = std::make_shared<LabelsCommand>();
  CLI::App* sub = parent.add_subcommand(
      "labels", "Graded pseudo-labels (TREC qrels) from a click log: naive or position-debiased CTR");
  sub->footer(
      "ctr: clicks / impressions of each (query, document). ipw: position-debiased CTR, the mean over "
      "impressions of click * min(k^eta, --max-weight) at position k (1 / the PBM examination probability "
      "(1/k)^eta; clipped because deep positions would let single clicks decide). The grade is the number of "
      "--thresholds the estimate reaches. Pairs with fewer than --min-impressions impressions get no label.");
  sub->add_option("--clicks", command->clicks_path, "Click log (JSON Lines)")->required();
  sub->add_option("--out", command->out_path, "Qrels to write")->required();
  sub->add_option("--method", command->method, "Estimator: ipw or ctr")
      ->check(CLI::IsMember({"ipw", "ctr"}))
      ->capture_default_str();
  sub->add_option("--eta", command->eta, "Position-bias exponent of the propensities (as in simulate)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--max-weight", command->max_weight, "Largest IPW weight (inverse propensity)")
      ->check(CLI::Range(1.0, 1e9))
      ->capture_default_str();
  sub->add_option("--thresholds", command->thresholds,
                  "Ascending comma-separated thresholds on the estimate: grade = how many are reached")
      ->capture_default_str();
  sub->add_option("--min-impressions", command->min_impressions, "Fewer impressions: no label")
      ->capture_default_str();
  sub->callback([command] { command->run(); });
}

}  // namespace

void register_clicks(CLI::App& app) {
  CLI::App* clicks = app.add_subcommand(
      "clicks", "Click logs: simulate them from qrels, turn them into CPT pairs or graded labels");
  clicks->require_subcommand(1);
  register_simulate(*clicks);
  register_cpt_pairs(*clicks);
  register_labels(*clicks);
}

}  // namespace disranker::cli
