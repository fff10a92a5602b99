// The pipeline report: a run directory's report.json (written by the pipeline) rendered as report.md,
// report.html (self-contained, the plots inlined as SVG) and plots/<slug>.svg. The schema and the rendering
// conventions are documented in docs/report.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "report/svg_plot.h"

namespace disranker {

struct ReportMachine {
  std::string cpu;  // empty: not given
  std::optional<long long> cores;
  std::optional<double> memory_gib;
  std::string device;
};

struct ReportStage {
  std::string name;
  std::string description;
  std::string status;  // e.g. "ran", "skipped (up to date)"
  std::optional<double> seconds;
};

// A paired significance test of one system against another on one metric.
struct ReportTest {
  std::string against;  // the name of another system of the same evaluation
  std::string metric;   // one of the evaluation's metrics
  double p_value = 1;
  std::optional<double> delta;  // this system minus `against`; absent: computed from the two values
};

struct ReportSystem {
  std::string name;
  std::map<std::string, double> values;  // metric -> value; NaN where report.json has null
  std::vector<ReportTest> tests;
};

// One online metric of a simulated A/B test: the reference's (A) and the system's (B) value, and B/A - 1 with
// its bootstrap interval. NaN where report.json has null.
struct ReportOnlineMetric {
  double a = 0;
  double b = 0;
  double relative = 0;
  double ci_low = 0;
  double ci_high = 0;
  bool significant = false;  // the interval excludes 0 (as the simulation judged it)
};

// A system (B) in the simulated online experiment against the reference (A).
struct ReportOnlineSystem {
  std::string name;
  std::size_t queries = 0;  // eligible queries
  double ndcg_diff = 0;     // offline NDCG@10 of B minus A's; NaN where null
  ReportOnlineMetric page_ctr;
  ReportOnlineMetric user_ctr;
  ReportOnlineMetric dwell_per_click;
  ReportOnlineMetric abandonment;
  std::size_t pages = 0;  // A/B pages, both buckets
  double confidence = 0.95;
  std::size_t interleaved = 0;  // interleaved impressions
  std::size_t wins = 0;         // B's team won
  std::size_t losses = 0;       // A's team won
  std::size_t ties = 0;
  double p_value = 1;  // sign test
};

// An evaluation's "online" entry: the simulated online experiment of its students (pipeline/evaluate.h).
struct ReportOnline {
  std::string click_model;
  std::string reference;
  std::size_t users = 0;
  std::size_t days = 0;
  std::size_t depth = 0;
  std::uint64_t seed = 0;
  std::vector<ReportOnlineSystem> systems;
};

struct ReportEvaluation {
  std::string dataset;
  std::string note;
  std::vector<std::string> metrics;  // the table's columns, in this order
  std::vector<ReportSystem> systems;
  std::optional<ReportOnline> online;
};

struct ReportAblationRow {
  std::string name;
  std::optional<double> x;
  double value = 0;  // NaN where report.json has null
};

struct ReportAblation {
  std::string title;
  std::string dataset;
  std::string metric;
  std::string x_label;
  std::vector<ReportAblationRow> rows;
};

struct ReportCurve {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;
  std::vector<Series> series;  // null coordinates in report.json are NaN here (not drawn)
};

struct ReportLatency {
  std::string title = "Latency and quality";
  std::string x_label;
  std::string y_label;
  bool log_x = false;
  std::vector<LabeledPoint> points;
};

// Everything but the title is optional: an empty vector / string or an absent optional omits its section.
struct ReportData {
  std::string title;
  std::string created;
  std::string command;
  std::optional<ReportMachine> machine;
  std::optional<double> wall_seconds;
  std::vector<std::string> summary;
  std::vector<ReportStage> stages;
  std::vector<ReportEvaluation> evaluations;
  std::vector<ReportAblation> ablations;
  std::vector<ReportCurve> curves;
  std::optional<ReportLatency> latency;
  std::string config;
};

// Reads and validates report.json. A missing required field, a field of the wrong type, an unknown field
// (a typo would otherwise silently drop a section), a test naming an unknown system or metric, or a duplicate
// system name is an Error naming `path` and the field ("evaluations[0].systems[1].tests[0].p_value").
ReportData load_report_json(const std::string& path);
// The same for a parsed document; `source` names it in errors (the file it came from).
ReportData report_from_json(const nlohmann::json& root, const std::string& source);

// A table as plain-text cells, and the note under it.
struct ReportTableText {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string note;
};

// The "Online (simulated)" table of an evaluation: one row per simulated system. The report and the summary
// the pipeline prints show it from this one function, so the two cannot disagree.
ReportTableText online_table(const ReportOnline& online);

// One plot of the report: its file name stem (unique within the report) and its SVG markup.
struct ReportPlot {
  std::string slug;
  std::string title;
  std::string svg;
};

// The plots in the order the report shows them: each ablation whose rows all have an x, each curve, then the
// latency scatter.
std::vector<ReportPlot> report_plots(const ReportData& report);

// "DisRanker quickstart!" -> "disranker-quickstart": lower-case ASCII letters and digits, every other run of
// characters one '-', none at either end, at most 60 characters; "plot" when nothing is left.
std::string slugify(const std::string& title);

// The report as GitHub-flavoured Markdown; plots are images at "<plots_dir>/<slug>.svg".
std::string render_markdown(const ReportData& report, const std::string& plots_dir = "plots");

// The report as one self-contained HTML page: CSS in the head, each plot's <svg> inlined.
std::string render_html(const ReportData& report);

// Reads RUN_DIR/report.json and writes RUN_DIR/plots/<slug>.svg, RUN_DIR/report.md and RUN_DIR/report.html,
// each atomically (plots/ is created). Returns the paths written, in that order.
std::vector<std::string> write_report(const std::string& run_dir);

}  // namespace disranker
