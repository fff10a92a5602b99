// The pipeline report (src/report): reading report.json, the Markdown and HTML renderings, and the SVG plots.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "core/table.h"
#include "core/utf8.h"
#include "report/report.h"
#include "report/svg_plot.h"
#include "test_util.h"

namespace disranker {
namespace {

using testing::TempDir;

// A report.json with every section, small enough to check the rendering line by line.
const char* const kFullReport = R"json({
  "title": "DisRanker quickstart",
  "created": "2026-11-27T03:10:00Z",
  "command": "disranker pipeline --config configs/quickstart.toml --out runs/quickstart",
  "machine": {"cpu": "AMD EPYC 7B13", "cores": 2, "memory_gib": 23.4, "device": "cpu"},
  "wall_seconds": 1034.2,
  "summary": ["teacher beats BM25 on wikiqa-dev MRR (p=0.01)"],
  "stages": [
    {"name": "sft-teacher", "description": "teacher rank SFT on wikiqa-train", "status": "ran", "seconds": 300},
    {"name": "distill", "description": "hybrid distillation", "status": "ran", "seconds": 100},
    {"name": "index", "status": "skipped"}
  ],
  "evaluations": [
    {"dataset": "wikiqa-dev", "note": "126 questions with a positive",
     "metrics": ["ndcg_cut.10", "mrr_cut.10", "map"],
     "systems": [
       {"name": "BM25", "values": {"ndcg_cut.10": 0.7435, "mrr_cut.10": 0.68, "map": 0.6812}},
       {"name": "student (distilled)", "values": {"ndcg_cut.10": 0.76454, "mrr_cut.10": 0.69, "map": null},
        "tests": [{"against": "BM25", "metric": "ndcg_cut.10", "p_value": 0.012, "delta": 0.021},
                  {"against": "BM25", "metric": "mrr_cut.10", "p_value": 0.3},
                  {"against": "teacher", "metric": "mrr_cut.10", "p_value": 0.0002, "delta": -0.03}]},
       {"name": "teacher", "values": {"ndcg_cut.10": 0.8, "mrr_cut.10": 0.72, "map": 0.7}}
     ]}
  ],
  "ablations": [
    {"title": "Hybrid loss weight alpha", "dataset": "wikiqa-dev", "metric": "ndcg_cut.10", "x_label": "alpha",
     "rows": [{"name": "alpha=0.5", "x": 0.5, "value": 0.72}, {"name": "alpha=0", "x": 0, "value": 0.7}]},
    {"title": "Teacher pooling", "metric": "ndcg_cut.10",
     "rows": [{"name": "last token", "value": 0.8}, {"name": "mean", "value": 0.75}]}
  ],
  "curves": [
    {"title": "Teacher rank SFT", "x_label": "step", "y_label": "training loss",
     "series": [{"name": "loss", "points": [[10, 1.9], [20, 1.5], [30, null]]}]}
  ],
  "latency": {"x_label": "ms per query", "y_label": "NDCG@10",
              "points": [{"name": "teacher", "x": 95.0, "y": 0.8}, {"name": "student", "x": 9.5, "y": 0.76454}]},
  "config": "[pipeline]\nout = \"runs/quickstart\"\n"
})json";

// The lines of `text`.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text)) {
    if (l == line) return true;
  }
  return false;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++count;
  return count;
}

ReportData load_text(const TempDir& dir, const std::string& json) {
  return load_report_json(dir.write("report.json", json));
}

// --- report.json ---

TEST(ReportJson, ReadsEverySection) {
  TempDir dir;
  const ReportData report = load_text(dir, kFullReport);
  EXPECT_EQ(report.title, "DisRanker quickstart");
  ASSERT_TRUE(report.machine.has_value());
  EXPECT_EQ(report.machine->cores, 2);
  EXPECT_DOUBLE_EQ(*report.wall_seconds, 1034.2);
  ASSERT_EQ(report.stages.size(), 3u);
  EXPECT_FALSE(report.stages[2].seconds.has_value());
  ASSERT_EQ(report.evaluations.size(), 1u);
  const auto& student = report.evaluations[0].systems[1];
  EXPECT_TRUE(std::isnan(student.values.at("map")));  // null
  ASSERT_EQ(student.tests.size(), 3u);
  EXPECT_FALSE(student.tests[1].delta.has_value());
  EXPECT_FALSE(report.ablations[1].rows[0].x.has_value());
  EXPECT_TRUE(std::isnan(report.curves[0].series[0].points[2].second));
  EXPECT_EQ(report.latency->title, "Latency and quality");  // the default
  EXPECT_EQ(report.config, "[pipeline]\nout = \"runs/quickstart\"\n");
}

TEST(ReportJson, OnlyTheTitleIsRequired) {
  TempDir dir;
  const ReportData report = load_text(dir, R"({"title": "t"})");
  EXPECT_EQ(report.title, "t");
  EXPECT_TRUE(report.evaluations.empty());
  EXPECT_FALSE(report.latency.has_value());
  const std::string md = render_markdown(report);
  EXPECT_EQ(md, "# t\n");
}

TEST(ReportJson, MissingOrWrongTypedFieldIsAnErrorNamingTheField) {
  TempDir dir;
  const std::string path = (dir.path() / "report.json").string();
  EXPECT_ERROR(load_text(dir, R"({"created": "x"})"), path, "title", "missing (expected a string)");
  EXPECT_ERROR(load_text(dir, R"({"title": 3})"), path, "title", "expected a string, found number");
  EXPECT_ERROR(load_text(dir, R"({"title": "t", "wall_seconds": "10"})"), path, "wall_seconds",
               "expected a number, found string");
  EXPECT_ERROR(load_text(dir, R"({"title": "t", "summary": ["a", 2]})"), path, "summary[1]",
               "expected a string, found number");
  EXPECT_ERROR(load_text(dir, R"({"title": "t", "machine": {"cores": 1.5}})"), path, "machine.cores",
               "expected a non-negative integer");
  EXPECT_ERROR(load_text(dir, R"({"title": "t", "evaluations": [{"dataset": "d", "metrics": ["map"],
                 "systems": [{"name": "a", "values": {"map": 0.5}}, {"name": "b", "values": {"map": "0.5"}}]}]})"),
               path, "evaluations[0].systems[1].values.map", "expected a number or null, found string");
  EXPECT_ERROR(load_text(dir, R"({"title": "t", "evaluations": [{"dataset": "d", "metrics": ["map"],
                 "systems": [{"name": "a", "values": {"map": 0.5}},
                             {"name": "b", "values": {"map": 0.6},
                              "tests": [{"against": "a", "metric": "map", "p_value": "0.01"}]}]}]})"),
               path, "evaluations[0].systems[1].tests[0].p_value", "expected a number, found string");
  EXPECT_ERROR(load_text(dir, R"({"title": "t", "evaluations": [{"dataset": "d", "metrics": ["map"],
                 "systems": [{"name": "a"}]}]})"),
               path, "evaluations[0].systems[0].values", "missing (expected an object)");
  EXPECT_ERROR(load_text(dir, R"({"title": "t", "curves": [{"title": "c", "series": [{"name": "s",
                 "points": [[1, 2], [3]]}]}]})"),
               path, "curves[0].series[0].points[1]", "expected an [x, y] pair");
  EXPECT_ERROR(load_text(dir, R"({"title": "t", "latency": {"points": [{"name": "a", "x": 1}]}})"), path,
               "latency.points[0].y", "missing (expected a number or null)");
}

TEST(ReportJson, UnknownFieldsAndInconsistentTestsAreErrors) {
  TempDir dir;
  const std::string path = (dir.path() / "report.json").string();
  // A misspelt section would otherwise vanish from the report without a word.
  EXPECT_ERROR(load_text(dir, R"({"title": "t", "evaluation": []})"), path, "evaluation", "unknown field");
  const std::string systems = R"([{"name": "a", "values": {"map": 0.5}},
                                  {"name": "b", "values": {"map": 0.6}, "tests": [TEST]}])";
  auto with_test = [&](const std::string& test) {
    std::string json = R"({"title": "t", "evaluations": [{"dataset": "d", "metrics": ["map"], "systems": )" +
                       systems + "}]}";
    json.replace(json.find("TEST"), 4, test);
    return json;
  };
  EXPECT_ERROR(load_text(dir, with_test(R"({"against": "c", "metric": "map", "p_value": 0.1})")), path,
               "evaluations[0].systems[1].tests[0].against", "not another system");
  EXPECT_ERROR(load_text(dir, with_test(R"({"against": "b", "metric": "map", "p_value": 0.1})")), path,
               "evaluations[0].systems[1].tests[0].against", "not another system");
  EXPECT_ERROR(load_text(dir, with_test(R"({"against": "a", "metric": "mrr", "p_value": 0.1})")), path,
               "evaluations[0].systems[1].tests[0].metric", "not one of the evaluation's metrics");
  EXPECT_ERROR(load_text(dir, with_test(R"({"against": "a", "metric": "map", "p_value": 0.1},
                                           {"against": "a", "metric": "map", "p_value": 0.2})")),
               path, "evaluations[0].systems[1].tests[1]", "a second test against 'a' on map");
  EXPECT_ERROR(load_text(dir, with_test(R"({"against": "a", "metric": "map", "p_value": 1.5})")), path,
               "evaluations[0].systems[1].tests[0].p_value", "must lie in [0, 1]");
  EXPECT_ERROR(load_text(dir, R"({"title": "t", "evaluations": [{"dataset": "d", "metrics": ["map"],
                 "systems": [{"name": "a", "values": {}}, {"name": "a", "values": {}}]}]})"),
               path, "evaluations[0].systems[1].name", "appears twice");
}

TEST(ReportJson, UnreadableFilesAreErrorsNamingTheFile) {
  TempDir dir;
  const std::string path = (dir.path() / "report.json").string();
  EXPECT_ERROR(load_text(dir, "{\"title\": "), path, "", "not valid JSON");
  EXPECT_ERROR(load_text(dir, "[1, 2]"), path, "", "expected an object, found array");
  const std::string missing = (dir.path() / "absent.json").string();
  EXPECT_ERROR(load_report_json(missing), missing, "", "cannot open");
}

// --- Markdown ---

// Expects `expected` as consecutive lines of `text`, starting at the line equal to expected[0].
void expect_lines(const std::string& text, const std::vector<std::string>& expected) {
  const auto lines = lines_of(text);
  const auto start = std::find(lines.begin(), lines.end(), expected[0]);
  ASSERT_NE(start, lines.end()) << text;
  ASSERT_GE(static_cast<std::size_t>(lines.end() - start), expected.size()) << text;
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_EQ(start[static_cast<std::ptrdiff_t>(i)], expected[i]);
}

TEST(ReportMarkdown, EvaluationTableShowsValuesWithFourDecimalsAndSignificanceMarks) {
  TempDir dir;
  const std::string md = render_markdown(load_text(dir, kFullReport));
  // The references get marks in table order: BM25 (row 1) †, teacher (row 3) ‡. A value is marked when its
  // test against that reference has p < 0.05 (ndcg vs BM25 p=0.012, mrr vs teacher p=0.0002; not mrr vs
  // BM25 p=0.3). null is "-".
  expect_lines(
      md, {
              "## Evaluation: wikiqa-dev",
              "",
              "126 questions with a positive",
              "",
              "| system | ndcg_cut.10 | mrr_cut.10 | map |",
              "| --- | ---: | ---: | ---: |",
              "| BM25 | 0.7435 | 0.6800 | 0.6812 |",
              "| student (distilled) | 0.7645 \xE2\x80\xA0 | 0.6900 \xE2\x80\xA1 | - |",
              "| teacher | 0.8000 | 0.7200 | 0.7000 |",
              "",
              "Each cell: the metric averaged over the queries (4 decimals; - where undefined). \xE2\x80\xA0 "
              "marks a value that differs from BM25 with p < 0.05; \xE2\x80\xA1 from teacher (paired tests "
              "over the queries, detailed below).",
          });
  // The tests: the difference as given (or the difference of the two values: 0.69 - 0.68), the p-value to
  // three decimals or "<0.001", and "*" for p < 0.05.
  expect_lines(
      md, {
              "### Paired tests: wikiqa-dev",
              "",
              "| system | against | ndcg_cut.10 | mrr_cut.10 | map |",
              "| --- | --- | ---: | ---: | ---: |",
              "| student (distilled) | BM25 | +0.0210 (p=0.012)* | +0.0100 (p=0.300) |  |",
              "| student (distilled) | teacher |  | -0.0300 (p<0.001)* |  |",
              "",
              "Each cell: the system's value minus the reference's and the p-value of a paired significance "
              "test over the queries; * marks p < 0.05.",
          });
}

TEST(ReportMarkdown, EvaluationWithoutTestsHasNoMarksAndNoTestsTable) {
  ReportData report;
  report.title = "t";
  ReportEvaluation evaluation;
  evaluation.dataset = "d";
  evaluation.metrics = {"map", "pnr"};
  evaluation.systems.push_back(ReportSystem{"a", {{"map", 0.123456}, {"pnr", 12}}, {}});
  report.evaluations.push_back(evaluation);
  expect_lines(render_markdown(report),
               {"| system | map | pnr |", "| --- | ---: | ---: |", "| a | 0.1235 | 12.0000 |", "",
                "Each cell: the metric averaged over the queries (4 decimals; - where undefined)."});
  EXPECT_EQ(render_markdown(report).find("Paired tests"), std::string::npos);
}

TEST(ReportMarkdown, SectionsComeInTheDocumentedOrder) {
  TempDir dir;
  const std::string md = render_markdown(load_text(dir, kFullReport));
  const std::vector<std::string> headings = {"# DisRanker quickstart",
                                             "## Summary",
                                             "## Evaluation: wikiqa-dev",
                                             "## Ablation: Hybrid loss weight alpha",
                                             "## Ablation: Teacher pooling",
                                             "## Training curves",
                                             "### Teacher rank SFT",
                                             "## Latency and quality",
                                             "## Stage wall times",
                                             "## Machine",
                                             "## Command",
                                             "## Config"};
  EXPECT_EQ(md.rfind(headings[0] + "\n", 0), 0u);  // the title opens the file
  std::size_t at = 0;
  for (std::size_t i = 1; i < headings.size(); ++i) {
    const auto found = md.find("\n" + headings[i] + "\n", at);  // after the previous heading
    ASSERT_NE(found, std::string::npos) << headings[i] << "\n" << md;
    at = found + 1;
  }
  EXPECT_TRUE(has_line(md, "Created 2026-11-27T03:10:00Z \xC2\xB7 wall time 17 min 14 s"));
  EXPECT_TRUE(has_line(md, "- teacher beats BM25 on wikiqa-dev MRR (p=0.01)"));
  EXPECT_TRUE(has_line(md, "- CPU: AMD EPYC 7B13"));
  EXPECT_TRUE(has_line(md, "- memory: 23.4 GiB"));
  EXPECT_NE(
      md.find("```sh\ndisranker pipeline --config configs/quickstart.toml --out runs/quickstart\n```\n"),
      std::string::npos);
  EXPECT_NE(md.find("```toml\n[pipeline]\nout = \"runs/quickstart\"\n```\n"), std::string::npos);
  EXPECT_EQ(md.back(), '\n');
  EXPECT_NE(md.substr(md.size() - 2), "\n\n");
}

TEST(ReportMarkdown, AblationWithXHasATableAndAPlotOtherwiseATableOnly) {
  TempDir dir;
  const std::string md = render_markdown(load_text(dir, kFullReport));
  EXPECT_TRUE(has_line(md, "Measured: ndcg_cut.10 on wikiqa-dev."));
  // Rows in the file's order; the plot sorts them by x.
  EXPECT_TRUE(has_line(md, "| setting | alpha | ndcg_cut.10 |"));
  EXPECT_TRUE(has_line(md, "| alpha=0.5 | 0.5 | 0.7200 |"));
  EXPECT_TRUE(has_line(md, "| alpha=0 | 0 | 0.7000 |"));
  EXPECT_TRUE(has_line(md, "![Hybrid loss weight alpha](plots/hybrid-loss-weight-alpha.svg)"));
  EXPECT_TRUE(has_line(md, "| setting | ndcg_cut.10 |"));
  EXPECT_TRUE(has_line(md, "| last token | 0.8000 |"));
  EXPECT_EQ(md.find("plots/teacher-pooling.svg"), std::string::npos);
  EXPECT_TRUE(has_line(md, "![Teacher rank SFT](plots/teacher-rank-sft.svg)"));
  EXPECT_TRUE(has_line(md, "![Latency and quality](plots/latency-and-quality.svg)"));
  EXPECT_TRUE(has_line(md, "| student | 9.5 | 0.7645 |"));
}

TEST(ReportMarkdown, StageTableHasATotal) {
  TempDir dir;
  const std::string md = render_markdown(load_text(dir, kFullReport));
  EXPECT_TRUE(has_line(md, "| stage | status | seconds | share | description |"));
  EXPECT_TRUE(has_line(md, "| --- | --- | ---: | ---: | --- |"));
  EXPECT_TRUE(has_line(md, "| sft-teacher | ran | 300.0 | 75% | teacher rank SFT on wikiqa-train |"));
  EXPECT_TRUE(has_line(md, "| index | skipped | - | - |  |"));
  EXPECT_TRUE(has_line(md, "| total |  | 400.0 | 100% | 6 min 40 s |"));
}

TEST(ReportMarkdown, TextIsEscapedWhereItCouldBeMarkup) {
  ReportData report;
  report.title = "A | B";
  report.summary = {"# not a heading", "a *b* c_d _e_ <b>x</b> p<0.05 `x` [l](u)"};
  ReportEvaluation evaluation;
  evaluation.dataset = "d";
  evaluation.metrics = {"map"};
  evaluation.systems.push_back(ReportSystem{"x|y", {{"map", 0.5}}, {}});
  report.evaluations.push_back(evaluation);
  report.config = "a = \"```\"\n";
  const std::string md = render_markdown(report);
  EXPECT_TRUE(has_line(md, "# A \\| B"));
  EXPECT_TRUE(has_line(md, "- \\# not a heading"));
  EXPECT_TRUE(has_line(md, "- a \\*b* c_d \\_e_ \\<b>x\\</b> p<0.05 \\`x\\` \\[l\\](u)"));
  EXPECT_TRUE(has_line(md, "| x\\|y | 0.5000 |"));
  // The fence is longer than the backticks inside the config.
  EXPECT_NE(md.find("````toml\na = \"```\"\n````\n"), std::string::npos);
}

TEST(ReportMarkdown, PlotSlugsAreUnique) {
  EXPECT_EQ(slugify("DisRanker quickstart!"), "disranker-quickstart");
  EXPECT_EQ(slugify("Hybrid loss weight alpha (1 = point-wise MSE only)"),
            "hybrid-loss-weight-alpha-1-point-wise-mse-only");
  EXPECT_EQ(slugify("NDCG@10 on wikiqa-dev by epoch"), "ndcg-10-on-wikiqa-dev-by-epoch");
  EXPECT_EQ(slugify("???"), "plot");
  EXPECT_EQ(slugify(std::string(100, 'a')).size(), 60u);
  ReportData report;
  report.title = "t";
  report.curves.push_back(ReportCurve{"Loss", "", "", false, {}});
  report.curves.push_back(ReportCurve{"loss", "", "", false, {}});
  const auto plots = report_plots(report);
  ASSERT_EQ(plots.size(), 2u);
  EXPECT_EQ(plots[0].slug, "loss");
  EXPECT_EQ(plots[1].slug, "loss-2");
  EXPECT_TRUE(has_line(render_markdown(report), "![loss](plots/loss-2.svg)"));
}

// --- the simulated online experiment ---

// An evaluation with an "online" entry in the pipeline's shape (online/results_json.h): one significant
// system, one with a missing interval and an undefined dwell.
const char* const kOnlineReport = R"json({
  "title": "t",
  "evaluations": [
    {"dataset": "trec-dl19", "metrics": ["ndcg_cut.10"],
     "systems": [{"name": "BM25", "values": {"ndcg_cut.10": 0.5058}},
                 {"name": "student (distilled)", "values": {"ndcg_cut.10": 0.7308}},
                 {"name": "teacher", "values": {"ndcg_cut.10": 0.5}}],
     "online": {"click_model": "dbn", "reference": "BM25", "users": 20000, "days": 14, "depth": 10, "seed": 7,
       "systems": [
         {"name": "student (distilled)", "queries": 43,
          "offline": {"ndcg_cut.10": {"a": 0.5058, "b": 0.7308, "diff": 0.225}},
          "ab_test": {"a": {"users": 10000, "pages": 140000}, "b": {"pages": 139000},
                      "metrics": {
                        "page_ctr": {"a": 0.853, "b": 0.93, "relative": 0.0912, "ci_low": 0.0872,
                                     "ci_high": 0.0951, "significant": true},
                        "user_ctr": {"a": 0.8, "b": 0.87, "relative": 0.0886, "ci_low": 0.0819, "ci_high": 0.095,
                                     "significant": true},
                        "dwell_per_click_s": {"a": 42.7, "b": 49.2, "relative": 0.1517, "ci_low": 0.143,
                                              "ci_high": 0.1607, "significant": true},
                        "abandonment_rate": {"a": 0.147, "b": 0.07, "relative": -0.5277, "ci_low": -0.5413,
                                             "ci_high": -0.512, "significant": true}},
                      "bootstrap_resamples": 1000, "confidence": 0.95},
          "interleaving": {"method": "team_draft", "impressions": 138387, "wins_b": 75349, "wins_a": 37220,
                           "ties": 25818, "p_value": 0}},
         {"name": "teacher", "queries": 43,
          "offline": {"ndcg_cut.10": {"a": 0.5058, "b": 0.5, "diff": -0.0058}},
          "ab_test": {"a": {"pages": 140001}, "b": {"pages": 140001},
                      "metrics": {
                        "page_ctr": {"a": 0.853, "b": 0.852, "relative": -0.0012, "ci_low": -0.006,
                                     "ci_high": 0.0035},
                        "user_ctr": {"a": 0.8, "b": 0.8, "relative": 0, "ci_low": null, "ci_high": null},
                        "dwell_per_click_s": {"a": 42.7, "b": null, "relative": null},
                        "abandonment_rate": {"a": 0.147, "b": 0.148, "relative": 0.0068, "ci_low": -0.02,
                                             "ci_high": 0.03}},
                      "confidence": 0.95},
          "interleaving": {"impressions": 138001, "wins_b": 100, "wins_a": 90, "ties": 137811,
                           "p_value": 0.5134}}]}}
  ]
})json";

TEST(ReportOnline, TableShowsDeltasIntervalsInterleavingAndTheOfflineDifference) {
  TempDir dir;
  const ReportData report = load_text(dir, kOnlineReport);
  ASSERT_TRUE(report.evaluations[0].online.has_value());
  const std::string md = render_markdown(report);
  // After the evaluation's own table. A relative difference is B/A - 1 in percent (2 decimals), with its
  // interval where the column asks for one and "*" where the interval excludes 0; null is "-"; the sign test
  // p as in the paired tests; the offline NDCG@10 difference with 4 decimals. The note's impressions are the
  // means over the systems: (279000 + 280002) / 2 A/B pages, (138387 + 138001) / 2 interleaved.
  expect_lines(
      md,
      {
          "### Online (simulated): trec-dl19",
          "",
          "| system | page CTR (A \xE2\x86\x92 B) | \xCE\x94 page CTR (95% CI) | \xCE\x94 user CTR (95% CI) "
          "| "
          "\xCE\x94 dwell per click | \xCE\x94 abandonment | interleaving wins / losses / ties | sign test | "
          "\xCE\x94NDCG@10 |",
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
          "| student (distilled) | 0.8530 \xE2\x86\x92 0.9300 | +9.12% (+8.72%, +9.51%)* | +8.86% (+8.19%, "
          "+9.50%)* | +15.17%* | -52.77%* | 75349 / 37220 / 25818 | p<0.001* | +0.2250 |",
          "| teacher | 0.8530 \xE2\x86\x92 0.8520 | -0.12% (-0.60%, +0.35%) | +0.00% | - | +0.68% | 100 / 90 "
          "/ "
          "137811 | p=0.513 | -0.0058 |",
          "",
          "Simulated, not measured: clicks follow the DBN click model driven by the qrels grades (unjudged = "
          "0). "
          "A = BM25, B = each system; 20000 users over 14 days on 43 queries, top 10, seed 7: about 279501 "
          "A/B "
          "pages and 138194 interleaved impressions per system. \xCE\x94: B/A - 1 with its 95% bootstrap "
          "interval over users, * where it excludes 0; interleaving: team draft, B's wins / losses / ties "
          "against A and the two-sided sign test, * for p < 0.05; \xCE\x94NDCG@10: B - A offline, on the "
          "same "
          "queries.",
      });
  EXPECT_LT(md.find("| teacher | 0.5000 |"), md.find("### Online (simulated): trec-dl19"));

  const std::string html = render_html(report);
  EXPECT_NE(html.find("<h3>Online (simulated): trec-dl19</h3>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"num\">+9.12% (+8.72%, +9.51%)*</td>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"num\">75349 / 37220 / 25818</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>teacher</td><td class=\"num\">0.8530 \xE2\x86\x92 0.8520</td>"),
            std::string::npos);

  // The table the pipeline prints comes from the same cells.
  const ReportTableText cells = online_table(*report.evaluations[0].online);
  ASSERT_EQ(cells.rows.size(), 2u);
  EXPECT_EQ(cells.rows[1][5], "+0.68%");
  EXPECT_EQ(cells.rows[1][6], "100 / 90 / 137811");
}

TEST(ReportOnline, TheTerminalTableLinesUpItsUnicodeCells) {
  TempDir dir;
  const ReportTableText cells = online_table(*load_text(dir, kOnlineReport).evaluations[0].online);
  TextTable table(cells.header);
  for (const auto& row : cells.rows) table.add_row(row);
  // Padded by code points, not bytes: every column starts at the same column on every line ("Δ" and "→" are
  // two and three bytes).
  const auto lines = lines_of(table.render());
  ASSERT_EQ(lines.size(), 4u);
  const auto column_of = [](const std::string& line, const std::string& cell) {
    const std::string before = line.substr(0, line.find(cell));
    std::size_t columns = 0;
    for (std::size_t at = 0; at < before.size(); ++columns) next_code_point(before, at);
    return columns;
  };
  EXPECT_EQ(column_of(lines[0], "sign test"), column_of(lines[2], "p<0.001*"));
  EXPECT_EQ(column_of(lines[0], "sign test"), column_of(lines[3], "p=0.513"));
  EXPECT_EQ(column_of(lines[2], "75349"), column_of(lines[3], "100 / 90"));
}

TEST(ReportOnline, AnEvaluationWithoutOnlineOrWithoutSystemsHasNoOnlineTable) {
  TempDir dir;
  EXPECT_EQ(render_markdown(load_text(dir, kFullReport)).find("Online (simulated)"), std::string::npos);
  std::string json = kOnlineReport;
  const auto begin = json.find("\"systems\": [\n         {\"name\": \"student");
  const auto end = json.find("}}]}}");
  ASSERT_NE(begin, std::string::npos);
  json.replace(begin, end + 3 - begin, "\"systems\": []");
  const ReportData report = load_text(dir, json);
  ASSERT_TRUE(report.evaluations[0].online.has_value());
  EXPECT_EQ(render_markdown(report).find("Online (simulated)"), std::string::npos);
}

TEST(ReportOnline, BadOnlineEntriesAreErrorsNamingTheField) {
  TempDir dir;
  const std::string path = (dir.path() / "report.json").string();
  auto with = [](const std::string& from, const std::string& to) {
    std::string json = kOnlineReport;
    const auto at = json.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return json.replace(at, from.size(), to);
  };
  EXPECT_ERROR(load_text(dir, with("\"users\": 20000", "\"users\": -1")), path, "evaluations[0].online.users",
               "expected a non-negative integer");
  EXPECT_ERROR(load_text(dir, with("\"page_ctr\": {\"a\": 0.853, \"b\": 0.93",
                                   "\"page_ctr\": {\"a\": 0.853, \"typo\": 1, \"b\": 0.93")),
               path, "evaluations[0].online.systems[0].ab_test.metrics.page_ctr.typo", "unknown field");
  EXPECT_ERROR(load_text(dir, with("\"user_ctr\": {\"a\": 0.8, \"b\": 0.87", "\"user_ctr\": {\"b\": 0.87")),
               path, "evaluations[0].online.systems[0].ab_test.metrics.user_ctr.a", "missing");
  EXPECT_ERROR(load_text(dir, with("\"p_value\": 0.5134", "\"p_value\": 2")), path,
               "evaluations[0].online.systems[1].interleaving.p_value", "must lie in [0, 1]");
  EXPECT_ERROR(load_text(dir, with("\"wins_a\": 37220", "\"wins_a\": 1.5")), path,
               "evaluations[0].online.systems[0].interleaving.wins_a", "expected a non-negative integer");
}

// --- HTML ---

TEST(ReportHtml, IsOnePageWithEveryPlotInlined) {
  TempDir dir;
  const ReportData report = load_text(dir, kFullReport);
  const std::string html = render_html(report);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<title>DisRanker quickstart</title>"), std::string::npos);
  EXPECT_NE(html.find("<style>"), std::string::npos);
  const auto plots = report_plots(report);
  ASSERT_EQ(plots.size(), 3u);  // the alpha ablation, the curve, the latency scatter
  for (const auto& plot : plots) {
    EXPECT_EQ(plot.svg.rfind("<svg ", 0), 0u);
    EXPECT_NE(html.find(plot.svg), std::string::npos) << plot.slug;
  }
  EXPECT_EQ(count_of(html, "<svg "), plots.size());
  EXPECT_EQ(count_of(html, "</svg>"), plots.size());
  // Nothing is fetched from elsewhere.
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"num\">0.7645 \xE2\x80\xA0</td>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"num\">+0.0210 (p=0.012)*</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>student (distilled)</td>"), std::string::npos);
}

TEST(ReportHtml, EscapesText) {
  ReportData report;
  report.title = "<script>&";
  report.summary = {"a < b"};
  const std::string html = render_html(report);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("<h1>&lt;script&gt;&amp;</h1>"), std::string::npos);
  EXPECT_NE(html.find("<li>a &lt; b</li>"), std::string::npos);
}

// --- write_report ---

TEST(ReportWrite, WritesMarkdownHtmlAndPlotsAtomically) {
  TempDir dir;
  dir.write("report.json", kFullReport);
  const auto written = write_report(dir.path().string());
  const std::vector<std::string> expected = {(dir.path() / "plots" / "hybrid-loss-weight-alpha.svg").string(),
                                             (dir.path() / "plots" / "teacher-rank-sft.svg").string(),
                                             (dir.path() / "plots" / "latency-and-quality.svg").string(),
                                             (dir.path() / "report.md").string(),
                                             (dir.path() / "report.html").string()};
  EXPECT_EQ(written, expected);
  for (const auto& path : expected) EXPECT_GT(std::filesystem::file_size(path), 100u) << path;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
  }
  // The files hold what the renderers return.
  std::ifstream in(dir.path() / "report.md");
  std::stringstream md;
  md << in.rdbuf();
  EXPECT_EQ(md.str(), render_markdown(load_report_json((dir.path() / "report.json").string())));
}

TEST(ReportWrite, BadInputWritesNothing) {
  TempDir dir;
  const std::string path = dir.write("report.json", R"({"title": "t", "stages": [{"seconds": 1}]})");
  EXPECT_ERROR(write_report(dir.path().string()), path, "stages[0].name", "missing");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "report.md"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "plots"));
  EXPECT_ERROR(write_report((dir.path() / "nope").string()), (dir.path() / "nope").string(), "",
               "not a directory");
}

// --- SVG ---

TEST(SvgTicks, NiceStepsOfOneTwoFive) {
  auto expect_ticks = [](double lo, double hi, const std::vector<double>& expected) {
    const auto ticks = nice_ticks(lo, hi);
    ASSERT_EQ(ticks.size(), expected.size()) << lo << ".." << hi;
    for (std::size_t i = 0; i < ticks.size(); ++i)
      EXPECT_DOUBLE_EQ(ticks[i], expected[i]) << lo << ".." << hi;
  };
  // 0.87 / 5 = 0.174 -> step 0.2; the ticks lie inside the range, so 1.0 is not one.
  expect_ticks(0, 0.87, {0, 0.2, 0.4, 0.6, 0.8});
  // 0.4 / 5 = 0.08 -> step 0.1.
  expect_ticks(1.5, 1.9, {1.5, 1.6, 1.7, 1.8, 1.9});
  // 100 / 5 = 20 -> step 20.
  expect_ticks(0, 100, {0, 20, 40, 60, 80, 100});
  // 10 / 5 = 2 -> step 2; ticks at the multiples of 2 inside.
  expect_ticks(-3, 7, {-2, 0, 2, 4, 6});
  // 900 / 5 = 180 -> step 200.
  expect_ticks(9.5, 909.5, {200, 400, 600, 800});
  // 0.04 / 5 = 0.008 -> 8 rounds up to step 0.01.
  expect_ticks(0.7, 0.74, {0.7, 0.71, 0.72, 0.73, 0.74});
  EXPECT_TRUE(nice_ticks(1, 1).empty());
  EXPECT_TRUE(nice_ticks(0, std::numeric_limits<double>::infinity()).empty());
}

TEST(SvgTicks, LabelsUseTheDecimalsOfTheStep) {
  EXPECT_EQ(tick_label(0.4, 0.2), "0.4");
  EXPECT_EQ(tick_label(0.6000000000000001, 0.2), "0.6");
  EXPECT_EQ(tick_label(0.05, 0.05), "0.05");
  EXPECT_EQ(tick_label(40, 20), "40");
  EXPECT_EQ(tick_label(-1e-17, 0.1), "0.0");
  EXPECT_EQ(tick_label(2e7, 1e7), "2e+07");
}

TEST(SvgTicks, LogAxisTicks) {
  EXPECT_EQ(log_ticks(1, 1000), (std::vector<double>{1, 10, 100, 1000}));
  // Fewer than three powers of ten inside: 1, 2, 5 of each decade.
  EXPECT_EQ(log_ticks(8, 95), (std::vector<double>{10, 20, 50}));
  EXPECT_EQ(log_ticks(0.8, 1.1).size(), nice_ticks(0.8, 1.1).size());  // under a factor of two: linear ticks
}

TEST(SvgAxis, MapsDataToPixelsWithAFivePercentMargin) {
  // 0..1 widened by 0.05 on each side: -0.05..1.05 onto pixels 100..500 (1.1 data units over 400 pixels).
  const Axis axis = make_axis(0, 1, 100, 500);
  EXPECT_DOUBLE_EQ(axis.lo, -0.05);
  EXPECT_DOUBLE_EQ(axis.hi, 1.05);
  EXPECT_DOUBLE_EQ(axis.to_pixel(0.5), 300);
  EXPECT_NEAR(axis.to_pixel(0), 100 + 0.05 / 1.1 * 400, 1e-9);  // 118.18
  EXPECT_NEAR(axis.to_pixel(-0.05), 100, 1e-9);
  // A y axis grows downwards: pixel_lo is the bottom.
  const Axis y = make_axis(0, 1, 360, 44);
  EXPECT_NEAR(y.to_pixel(0), 360 - 0.05 / 1.1 * 316, 1e-9);
  // One value: +-10% of it; zero: +-1.
  const Axis single = make_axis(5, 5, 0, 100);
  EXPECT_DOUBLE_EQ(single.lo, 4.5);
  EXPECT_DOUBLE_EQ(single.hi, 5.5);
  EXPECT_DOUBLE_EQ(single.to_pixel(5), 50);
  EXPECT_DOUBLE_EQ(make_axis(0, 0, 0, 100).lo, -1);
  // A log axis is linear in log10: 1..100 (+-5% of 2 decades) puts 10 in the middle.
  const Axis log_axis = make_axis(1, 100, 0, 100, true);
  EXPECT_NEAR(log_axis.to_pixel(10), 50, 1e-9);
}

TEST(SvgPlot, PointsLandWhereTheAxesPutThem) {
  // The plot area spans x 76..530 (454 wide) and y 360 (bottom)..44 (top, 316 high). The data 0..1 on both
  // axes is widened to -0.05..1.05, so (0, 0) is at x = 76 + 0.05/1.1 * 454 = 96.64,
  // y = 360 - 0.05/1.1 * 316 = 345.64; (0.5, 0.5) in the middle, (303, 202); and (1, 1) at
  // x = 76 + 1.05/1.1 * 454 = 509.36, y = 360 - 1.05/1.1 * 316 = 58.36.
  const std::string svg = line_plot_svg("t", "x", "y", {Series{"s", {{0, 0}, {0.5, 0.5}, {1, 1}}}});
  EXPECT_NE(svg.find("points=\"96.64,345.64 303.00,202.00 509.36,58.36\""), std::string::npos) << svg;
  EXPECT_NE(svg.find("<circle cx=\"96.64\" cy=\"345.64\""), std::string::npos);
  // Ticks at 0, 0.2, .., 1 with labels; 0.2 is at x = 76 + 0.25/1.1 * 454 = 179.18.
  EXPECT_NE(svg.find("<text x=\"179.18\" y=\"379.00\" text-anchor=\"middle\">0.2</text>"), std::string::npos);
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"420\"", 0), 0u);
  EXPECT_NE(svg.find("font-weight=\"bold\">t</text>"), std::string::npos);  // the title
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
}

TEST(SvgPlot, WholeNumberXGetsWholeNumberTicks) {
  // Epochs 1..4: nice_ticks would step by 0.5; an epoch 1.5 does not exist.
  const std::string svg =
      line_plot_svg("t", "epoch", "y", {Series{"s", {{1, 0.5}, {2, 0.6}, {3, 0.7}, {4, 0.8}}}});
  for (const char* tick : {">1</text>", ">2</text>", ">3</text>", ">4</text>"}) {
    EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  }
  EXPECT_EQ(svg.find(">1.5</text>"), std::string::npos);
}

TEST(SvgPlot, LongLabelsShrinkOrAreCutToFit) {
  const std::string long_label(300, 'x');
  const std::string svg = line_plot_svg(long_label, long_label, long_label, {Series{"s", {{0, 0}, {1, 1}}}});
  EXPECT_EQ(count_of(svg, long_label), 1u);  // in full only in <title>, the picture's accessible name
  EXPECT_NE(svg.find("font-size=\"9\""), std::string::npos);
  EXPECT_NE(svg.find("x\xE2\x80\xA6</text>"), std::string::npos);
  // Legend names are cut at 22 characters, never inside a UTF-8 sequence.
  std::string accents;
  for (int i = 0; i < 30; ++i) accents += "\xC3\xA9";  // é
  const std::string legend = line_plot_svg("t", "x", "y", {Series{accents, {{0, 0}, {1, 1}}}});
  EXPECT_NE(legend.find(">" + accents.substr(0, 2 * 21) + "\xE2\x80\xA6</text>"), std::string::npos)
      << legend;
  EXPECT_TRUE(is_valid_utf8(legend));
  // A short label keeps its size.
  EXPECT_NE(line_plot_svg("t", "step", "loss", {}).find("font-size=\"12\">step</text>"), std::string::npos);
}

TEST(SvgPlot, NamesAndLabelsAreEscaped) {
  const std::string svg = line_plot_svg("a<b", "x & y", "\"q\"", {Series{"<&>", {{0, 0}, {1, 1}}}});
  EXPECT_NE(svg.find("&lt;&amp;&gt;"), std::string::npos);
  EXPECT_NE(svg.find("a&lt;b"), std::string::npos);
  EXPECT_NE(svg.find("x &amp; y"), std::string::npos);
  EXPECT_NE(svg.find("&quot;q&quot;"), std::string::npos);
  EXPECT_EQ(svg.find("<&>"), std::string::npos);
  EXPECT_EQ(svg.find("a<b"), std::string::npos);
  EXPECT_EQ(xml_escape("a\x01"
                       "b'"),
            "ab&apos;");
}

TEST(SvgPlot, NonFinitePointsAreSkipped) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const std::string svg =
      line_plot_svg("t", "x", "y", {Series{"s", {{0, 0}, {nan, 0.5}, {0.5, inf}, {1, 1}}}});
  // The same picture as the two finite points alone.
  EXPECT_NE(svg.find("points=\"96.64,345.64 509.36,58.36\""), std::string::npos) << svg;
  EXPECT_EQ(count_of(svg, "<circle"), 2u + 1u);  // two markers and the legend's
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
  // On a log axis, x <= 0 cannot be drawn either.
  const std::string log_svg = line_plot_svg("t", "x", "y", {Series{"s", {{0, 5}, {1, 1}, {100, 2}}}}, true);
  EXPECT_EQ(count_of(log_svg, "<circle"), 2u + 1u);
  EXPECT_NE(log_svg.find(">10</text>"), std::string::npos);
}

TEST(SvgPlot, OnePointIsAMarkerAndNoPointsSayNoData) {
  const std::string one = line_plot_svg("t", "x", "y", {Series{"s", {{3, 0.7}}}});
  EXPECT_EQ(one.find("<polyline"), std::string::npos);
  // The single point sits in the middle of the plot area: x = (76 + 530) / 2, y = (360 + 44) / 2.
  EXPECT_NE(one.find("<circle cx=\"303.00\" cy=\"202.00\""), std::string::npos) << one;
  EXPECT_EQ(one.find("no data"), std::string::npos);

  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const std::string& svg :
       {line_plot_svg("t", "x", "y", {}), line_plot_svg("t", "x", "y", {Series{"s", {{nan, 1}}}}),
        scatter_plot_svg("t", "x", "y", {})}) {
    EXPECT_NE(svg.find(">no data</text>"), std::string::npos);
    EXPECT_EQ(svg.find("<polyline"), std::string::npos);
    EXPECT_EQ(svg.find("<circle"), std::string::npos);
    EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  }
}

TEST(SvgPlot, SeriesGetDistinctColoursAndALegend) {
  std::vector<Series> series;
  for (int i = 0; i < 3; ++i) series.push_back(Series{"run " + std::to_string(i), {{0, i}, {1, i + 1}}});
  const std::string svg = line_plot_svg("t", "x", "y", series);
  EXPECT_EQ(count_of(svg, "<polyline fill=\"none\" stroke=\"#1f77b4\""), 1u);
  EXPECT_EQ(count_of(svg, "<polyline fill=\"none\" stroke=\"#ff7f0e\""), 1u);
  EXPECT_EQ(count_of(svg, "<polyline fill=\"none\" stroke=\"#2ca02c\""), 1u);
  for (int i = 0; i < 3; ++i) EXPECT_NE(svg.find(">run " + std::to_string(i) + "</text>"), std::string::npos);
  // Past the ten colours, a dash pattern keeps series apart.
  std::vector<Series> many;
  for (int i = 0; i < 11; ++i) many.push_back(Series{"s", {{0, i}, {1, i}}});
  EXPECT_NE(line_plot_svg("t", "x", "y", many)
                .find("stroke=\"#1f77b4\" stroke-width=\"1.8\" stroke-linejoin=\"round\" "
                      "stroke-dasharray=\"6 3\""),
            std::string::npos);
}

TEST(SvgPlot, ScatterLabelsEachPoint) {
  const std::string svg =
      scatter_plot_svg("latency", "ms", "NDCG@10", {{"teacher <13B>", 95, 0.72}, {"student", 9.5, 0.71}});
  EXPECT_EQ(count_of(svg, "<circle"), 4u);  // two points, two legend rows
  EXPECT_EQ(count_of(svg, "teacher &lt;13B&gt;</text>"), 2u);
  EXPECT_EQ(count_of(svg, ">student</text>"), 2u);
  // The student (x 9.5, the minimum) sits 5% in from the left edge: 76 + 0.05/1.1 * 454 = 96.64.
  EXPECT_NE(svg.find("<circle cx=\"96.64\""), std::string::npos);
  // On a log x axis 9.5 .. 95 is one decade: 95 is 5% in from the right edge.
  const std::string log_svg =
      scatter_plot_svg("latency", "ms", "NDCG@10", {{"a", 95, 0.72}, {"b", 9.5, 0.71}, {"c", 0, 1}}, true);
  EXPECT_NE(log_svg.find("<circle cx=\"509.36\""), std::string::npos) << log_svg;
  EXPECT_EQ(count_of(log_svg, "<circle"), 2u + 3u);  // x = 0 cannot be drawn; the legend lists all three
}

}  // namespace
}  // namespace disranker
