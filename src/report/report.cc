#include "report/report.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string_view>

#include "core/error.h"
#include "core/files.h"
#include "core/table.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------------------------------------------------
// Reading report.json: every error names the file and the field's path ("evaluations[0].systems[1].name").

std::string element_path(const std::string& array_path, std::size_t index) {
  return array_path + "[" + std::to_string(index) + "]";
}

// A JSON object being read. Unknown keys are errors: with every section optional, a misspelt key would
// otherwise drop its section without a word.
class Fields {
 public:
  Fields(const std::string& file, const json& value, std::string path,
         std::initializer_list<const char*> known)
      : file_(file), value_(value), path_(std::move(path)) {
    if (!value.is_object()) {
      throw Error(file_, 0, path_, std::string("expected an object, found ") + value.type_name());
    }
    for (auto it = value.begin(); it != value.end(); ++it) {
      bool is_known = false;
      for (const char* key : known) is_known = is_known || it.key() == key;
      if (is_known) continue;
      std::string expected;
      for (const char* key : known) expected += (expected.empty() ? "" : ", ") + std::string(key);
      throw Error(file_, 0, name(it.key()), "unknown field (known fields here: " + expected + ")");
    }
  }

  const std::string& file() const { return file_; }
  std::string name(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  bool has(const char* key) const { return value_.contains(key); }

  std::string required_string(const char* key) const {
    const json& value = required(key, "a string");
    if (!value.is_string()) throw wrong_type(key, "a string", value);
    return value.get<std::string>();
  }
  std::string optional_string(const char* key) const { return has(key) ? required_string(key) : ""; }

  double required_number(const char* key) const {
    const json& value = required(key, "a number");
    if (!value.is_number()) throw wrong_type(key, "a number", value);
    return value.get<double>();
  }
  // Absent or null: nothing (nlohmann::json writes a NaN as null).
  std::optional<double> optional_number(const char* key) const {
    if (!has(key) || value_.at(key).is_null()) return std::nullopt;
    return required_number(key);
  }
  // A required number that may be null (a value that could not be computed): NaN.
  double number_or_null(const char* key) const {
    const json& value = required(key, "a number or null");
    if (value.is_null()) return kNaN;
    if (!value.is_number()) throw wrong_type(key, "a number or null", value);
    return value.get<double>();
  }

  // A non-negative whole number (a count).
  std::uint64_t required_count(const char* key) const {
    const json& value = required(key, "a non-negative integer");
    if (!value.is_number_unsigned() && !(value.is_number_integer() && value.get<long long>() >= 0)) {
      throw Error(file_, 0, name(key), "expected a non-negative integer, found " + value.dump());
    }
    return value.get<std::uint64_t>();
  }
  std::optional<std::uint64_t> optional_count(const char* key) const {
    if (!has(key)) return std::nullopt;
    return required_count(key);
  }
  // An optional number that may be null: NaN when absent or null.
  double optional_number_or_nan(const char* key) const { return optional_number(key).value_or(kNaN); }

  bool optional_bool(const char* key) const {
    if (!has(key)) return false;
    const json& value = value_.at(key);
    if (!value.is_boolean()) throw wrong_type(key, "true or false", value);
    return value.get<bool>();
  }

  const json& required_array(const char* key) const {
    const json& value = required(key, "an array");
    if (!value.is_array()) throw wrong_type(key, "an array", value);
    return value;
  }
  // Every element of the array `key`, each read by read_one(file, element, the element's path).
  template <class Reader>
  auto read_each(const char* key, Reader read_one) const {
    const json& array = required_array(key);
    std::vector<decltype(read_one(file_, array, std::string()))> out;
    for (std::size_t i = 0; i < array.size(); ++i)
      out.push_back(read_one(file_, array[i], element_path(name(key), i)));
    return out;
  }
  const json& required_object(const char* key) const {
    const json& value = required(key, "an object");
    if (!value.is_object()) throw wrong_type(key, "an object", value);
    return value;
  }

  Error error(const std::string& key, const std::string& message) const {
    return Error(file_, 0, name(key), message);
  }

 private:
  const json& required(const char* key, const char* what) const {
    if (!has(key)) throw Error(file_, 0, name(key), std::string("missing (expected ") + what + ")");
    return value_.at(key);
  }
  Error wrong_type(const char* key, const char* what, const json& value) const {
    return Error(file_, 0, name(key), std::string("expected ") + what + ", found " + value.type_name());
  }

  const std::string& file_;
  const json& value_;
  std::string path_;
};

std::vector<std::string> read_strings(const Fields& parent, const char* key) {
  std::vector<std::string> out;
  const json& array = parent.required_array(key);
  for (std::size_t i = 0; i < array.size(); ++i) {
    if (!array[i].is_string()) {
      throw Error(parent.file(), 0, element_path(parent.name(key), i),
                  std::string("expected a string, found ") + array[i].type_name());
    }
    out.push_back(array[i].get<std::string>());
  }
  return out;
}

ReportMachine read_machine(const std::string& file, const json& value) {
  const Fields f(file, value, "machine", {"cpu", "cores", "memory_gib", "device"});
  ReportMachine machine;
  machine.cpu = f.optional_string("cpu");
  machine.device = f.optional_string("device");
  machine.memory_gib = f.optional_number("memory_gib");
  if (f.has("cores")) {
    const json& cores = value.at("cores");
    if (!cores.is_number_integer() || cores.get<long long>() < 0) {
      throw f.error("cores", std::string("expected a non-negative integer, found ") + cores.dump());
    }
    machine.cores = cores.get<long long>();
  }
  return machine;
}

ReportStage read_stage(const std::string& file, const json& value, const std::string& path) {
  const Fields f(file, value, path, {"name", "description", "status", "seconds"});
  ReportStage stage;
  stage.name = f.required_string("name");
  stage.description = f.optional_string("description");
  stage.status = f.optional_string("status");
  stage.seconds = f.optional_number("seconds");
  return stage;
}

ReportTest read_test(const std::string& file, const json& value, const std::string& path) {
  const Fields f(file, value, path, {"against", "metric", "p_value", "delta"});
  ReportTest test;
  test.against = f.required_string("against");
  test.metric = f.required_string("metric");
  test.p_value = f.required_number("p_value");
  if (!(test.p_value >= 0 && test.p_value <= 1)) throw f.error("p_value", "must lie in [0, 1]");
  test.delta = f.optional_number("delta");
  return test;
}

ReportSystem read_system(const std::string& file, const json& value, const std::string& path) {
  const Fields f(file, value, path, {"name", "values", "tests"});
  ReportSystem system;
  system.name = f.required_string("name");
  const json& values = f.required_object("values");
  for (auto it = values.begin(); it != values.end(); ++it) {
    if (it->is_null()) {
      system.values[it.key()] = kNaN;
    } else if (it->is_number()) {
      system.values[it.key()] = it->get<double>();
    } else {
      throw Error(file, 0, f.name("values") + "." + it.key(),
                  std::string("expected a number or null, found ") + it->type_name());
    }
  }
  if (f.has("tests")) system.tests = f.read_each("tests", read_test);
  return system;
}

// A metric of the simulated A/B test (online/results_json.h's shape).
ReportOnlineMetric read_online_metric(const Fields& metrics, const char* key) {
  const Fields f(metrics.file(), metrics.required_object(key), metrics.name(key),
                 {"a", "b", "relative", "ci_low", "ci_high", "significant"});
  return ReportOnlineMetric{f.number_or_null("a"),
                            f.number_or_null("b"),
                            f.number_or_null("relative"),
                            f.optional_number_or_nan("ci_low"),
                            f.optional_number_or_nan("ci_high"),
                            f.optional_bool("significant")};
}

// A bucket's totals; only the pages are shown (the impressions in the note).
std::size_t read_bucket_pages(const Fields& ab_test, const char* key) {
  const Fields f(ab_test.file(), ab_test.required_object(key), ab_test.name(key),
                 {"users", "active_users", "pages", "clicked_pages", "clicks", "satisfied_pages"});
  return f.required_count("pages");
}

ReportOnlineSystem read_online_system(const std::string& file, const json& value, const std::string& path) {
  const Fields f(file, value, path, {"name", "queries", "offline", "ab_test", "interleaving"});
  ReportOnlineSystem system;
  system.name = f.required_string("name");
  system.queries = f.optional_count("queries").value_or(0);
  system.ndcg_diff = kNaN;
  if (f.has("offline")) {
    const Fields offline(file, f.required_object("offline"), f.name("offline"), {"ndcg_cut.10"});
    if (offline.has("ndcg_cut.10")) {
      const Fields ndcg(file, offline.required_object("ndcg_cut.10"), offline.name("ndcg_cut.10"),
                        {"a", "b", "diff"});
      system.ndcg_diff = ndcg.number_or_null("diff");
    }
  }
  const Fields ab(file, f.required_object("ab_test"), f.name("ab_test"),
                  {"a", "b", "metrics", "bootstrap_resamples", "confidence"});
  system.pages = read_bucket_pages(ab, "a") + read_bucket_pages(ab, "b");
  if (const auto confidence = ab.optional_number("confidence")) {
    if (!(*confidence > 0 && *confidence < 1)) throw ab.error("confidence", "must lie in (0, 1)");
    system.confidence = *confidence;
  }
  ab.optional_count("bootstrap_resamples");
  const Fields metrics(
      file, ab.required_object("metrics"), ab.name("metrics"),
      {"page_ctr", "user_ctr", "clicks_per_page", "dwell_per_click_s", "abandonment_rate", "satisfied_ctr"});
  system.page_ctr = read_online_metric(metrics, "page_ctr");
  system.user_ctr = read_online_metric(metrics, "user_ctr");
  system.dwell_per_click = read_online_metric(metrics, "dwell_per_click_s");
  system.abandonment = read_online_metric(metrics, "abandonment_rate");
  for (const char* other : {"clicks_per_page", "satisfied_ctr"}) {
    if (metrics.has(other)) read_online_metric(metrics, other);
  }
  const Fields interleaving(
      file, f.required_object("interleaving"), f.name("interleaving"),
      {"method", "impressions", "wins_b", "wins_a", "ties", "clicks", "b_win_share", "delta_ab", "p_value"});
  system.interleaved = interleaving.required_count("impressions");
  system.wins = interleaving.required_count("wins_b");
  system.losses = interleaving.required_count("wins_a");
  system.ties = interleaving.required_count("ties");
  system.p_value = interleaving.required_number("p_value");
  if (!(system.p_value >= 0 && system.p_value <= 1))
    throw interleaving.error("p_value", "must lie in [0, 1]");
  return system;
}

ReportOnline read_online(const std::string& file, const json& value, const std::string& path) {
  const Fields f(file, value, path,
                 {"click_model", "reference", "users", "days", "depth", "seed", "systems"});
  ReportOnline online;
  online.click_model = f.required_string("click_model");
  online.reference = f.required_string("reference");
  online.users = f.required_count("users");
  online.days = f.required_count("days");
  online.depth = f.required_count("depth");
  online.seed = f.required_count("seed");
  online.systems = f.read_each("systems", read_online_system);
  return online;
}

ReportEvaluation read_evaluation(const std::string& file, const json& value, const std::string& path) {
  const Fields f(file, value, path, {"dataset", "note", "metrics", "systems", "online"});
  ReportEvaluation evaluation;
  evaluation.dataset = f.required_string("dataset");
  evaluation.note = f.optional_string("note");
  evaluation.metrics = read_strings(f, "metrics");
  if (evaluation.metrics.empty()) throw f.error("metrics", "is empty: name the metrics to show");
  for (std::size_t i = 0; i < evaluation.metrics.size(); ++i) {
    const auto& metric = evaluation.metrics[i];
    if (std::count(evaluation.metrics.begin(), evaluation.metrics.end(), metric) > 1) {
      throw Error(file, 0, element_path(f.name("metrics"), i), "'" + metric + "' appears twice");
    }
  }
  const json& systems = f.required_array("systems");
  if (systems.empty()) throw f.error("systems", "is empty: an evaluation needs at least one system");
  std::set<std::string> names;
  for (std::size_t i = 0; i < systems.size(); ++i) {
    const std::string system_path = element_path(f.name("systems"), i);
    evaluation.systems.push_back(read_system(file, systems[i], system_path));
    if (!names.insert(evaluation.systems.back().name).second) {
      throw Error(file, 0, system_path + ".name",
                  "'" + evaluation.systems.back().name + "' appears twice (tests name systems by name)");
    }
  }
  // A test must be shown somewhere: its metric is a column and `against` is another system of the table.
  for (std::size_t s = 0; s < evaluation.systems.size(); ++s) {
    const auto& system = evaluation.systems[s];
    for (std::size_t t = 0; t < system.tests.size(); ++t) {
      const auto& test = system.tests[t];
      const std::string test_path = element_path(element_path(f.name("systems"), s) + ".tests", t);
      if (std::find(evaluation.metrics.begin(), evaluation.metrics.end(), test.metric) ==
          evaluation.metrics.end()) {
        throw Error(file, 0, test_path + ".metric",
                    "'" + test.metric + "' is not one of the evaluation's metrics");
      }
      if (!names.count(test.against) || test.against == system.name) {
        throw Error(file, 0, test_path + ".against",
                    "'" + test.against + "' is not another system of this evaluation");
      }
      for (std::size_t u = 0; u < t; ++u) {
        if (system.tests[u].against == test.against && system.tests[u].metric == test.metric) {
          throw Error(file, 0, test_path, "a second test against '" + test.against + "' on " + test.metric);
        }
      }
    }
  }
  if (f.has("online")) evaluation.online = read_online(file, f.required_object("online"), f.name("online"));
  return evaluation;
}

ReportAblation read_ablation(const std::string& file, const json& value, const std::string& path) {
  const Fields f(file, value, path, {"title", "dataset", "metric", "x_label", "rows"});
  ReportAblation ablation;
  ablation.title = f.required_string("title");
  ablation.dataset = f.optional_string("dataset");
  ablation.metric = f.optional_string("metric");
  ablation.x_label = f.optional_string("x_label");
  const json& rows = f.required_array("rows");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Fields row(file, rows[i], element_path(f.name("rows"), i), {"name", "x", "value"});
    ablation.rows.push_back(ReportAblationRow{row.required_string("name"), row.optional_number("x"),
                                              row.number_or_null("value")});
  }
  return ablation;
}

// A coordinate of a curve point: a number, or null for a value that was not finite when it was written.
double read_coordinate(const std::string& file, const json& value, const std::string& path) {
  if (value.is_null()) return kNaN;
  if (!value.is_number()) {
    throw Error(file, 0, path, std::string("expected a number or null, found ") + value.type_name());
  }
  return value.get<double>();
}

Series read_series(const std::string& file, const json& value, const std::string& path) {
  const Fields f(file, value, path, {"name", "points"});
  Series series;
  series.name = f.required_string("name");
  const json& points = f.required_array("points");
  for (std::size_t i = 0; i < points.size(); ++i) {
    const std::string point_path = element_path(f.name("points"), i);
    if (!points[i].is_array() || points[i].size() != 2) {
      throw Error(file, 0, point_path, "expected an [x, y] pair, found " + points[i].dump());
    }
    series.points.emplace_back(read_coordinate(file, points[i][0], point_path + "[0]"),
                               read_coordinate(file, points[i][1], point_path + "[1]"));
  }
  return series;
}

ReportCurve read_curve(const std::string& file, const json& value, const std::string& path) {
  const Fields f(file, value, path, {"title", "x_label", "y_label", "log_x", "series"});
  ReportCurve curve;
  curve.title = f.required_string("title");
  curve.x_label = f.optional_string("x_label");
  curve.y_label = f.optional_string("y_label");
  curve.log_x = f.optional_bool("log_x");
  curve.series = f.read_each("series", read_series);
  return curve;
}

ReportLatency read_latency(const std::string& file, const json& value) {
  const Fields f(file, value, "latency", {"title", "x_label", "y_label", "log_x", "points"});
  ReportLatency latency;
  if (f.has("title")) latency.title = f.required_string("title");
  latency.x_label = f.optional_string("x_label");
  latency.y_label = f.optional_string("y_label");
  latency.log_x = f.optional_bool("log_x");
  const json& points = f.required_array("points");
  for (std::size_t i = 0; i < points.size(); ++i) {
    const Fields point(file, points[i], element_path(f.name("points"), i), {"name", "x", "y"});
    latency.points.push_back(
        LabeledPoint{point.required_string("name"), point.number_or_null("x"), point.number_or_null("y")});
  }
  return latency;
}

// Calls read(element, path) for each element of the optional array `key`.
template <typename Read>
void for_each_element(const Fields& f, const char* key, Read&& read) {
  if (!f.has(key)) return;
  const json& array = f.required_array(key);
  for (std::size_t i = 0; i < array.size(); ++i) read(array[i], element_path(f.name(key), i));
}

// ---------------------------------------------------------------------------------------------------------
// Number formatting.

std::string printf_string(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

std::string value_text(double value) {
  return std::isfinite(value) ? format_metric(value) : "-";
}

// "p=0.012", or "p<0.001" below what three decimals can show.
std::string p_value_text(double p) {
  return p < 0.001 ? "p<0.001" : printf_string("p=%.3f", p);
}

// A plain number for axes values and latencies: up to 4 significant digits, no exponent below 10^6.
std::string number_text(double value) {
  if (!std::isfinite(value)) return "-";
  if (std::abs(value) >= 1000 && std::abs(value) < 1e6) return printf_string("%.0f", value);
  return printf_string("%.4g", value);
}

// "12.3 s", "17 min 14 s", "2 h 05 min".
std::string duration_text(double seconds) {
  if (seconds < 60) return printf_string("%.1f s", seconds);
  const long long whole = std::llround(seconds);
  char buffer[64];
  if (whole < 3600) {
    std::snprintf(buffer, sizeof buffer, "%lld min %02lld s", whole / 60, whole % 60);
  } else {
    std::snprintf(buffer, sizeof buffer, "%lld h %02lld min", whole / 3600, (whole % 3600) / 60);
  }
  return buffer;
}

// A relative difference as a signed percentage: "+9.12%".
std::string percent_text(double fraction) {
  return std::isfinite(fraction) ? printf_string("%+.2f%%", 100 * fraction) : "-";
}

// "+9.12% (+8.72%, +9.51%)*": B/A - 1, its interval when there is one, "*" when it is significant (the
// interval excludes 0).
std::string online_delta_cell(const ReportOnlineMetric& metric, bool with_interval) {
  std::string cell = percent_text(metric.relative);
  if (with_interval && std::isfinite(metric.ci_low) && std::isfinite(metric.ci_high))
    cell += " (" + percent_text(metric.ci_low) + ", " + percent_text(metric.ci_high) + ")";
  return metric.significant ? cell + "*" : cell;
}

std::string click_model_text(const std::string& kind) {
  if (kind == "dbn") return "DBN";
  if (kind == "pbm") return "PBM";
  return kind;
}

// ---------------------------------------------------------------------------------------------------------
// The document: the report as a list of blocks, built once and rendered to Markdown or HTML, so that the two
// outputs cannot disagree. Blocks hold plain text; each renderer escapes it for its format.

struct Table {
  std::vector<std::string> header;
  std::vector<bool> numeric;  // per column: right-aligned
  std::vector<std::vector<std::string>> rows;
};

struct Block {
  enum class Kind { kHeading, kParagraph, kNote, kBullets, kTable, kPlot, kCode };
  Kind kind = Kind::kParagraph;
  int level = 2;                   // kHeading
  std::string text;                // kHeading, kParagraph, kNote, kCode; kPlot: its title
  std::string language;            // kCode
  std::vector<std::string> items;  // kBullets
  Table table;                     // kTable
  std::string slug;                // kPlot
  std::string svg;                 // kPlot
};

class Document {
 public:
  void heading(int level, const std::string& text) { add(Block::Kind::kHeading, text).level = level; }
  void paragraph(const std::string& text) { add(Block::Kind::kParagraph, text); }
  void note(const std::string& text) { add(Block::Kind::kNote, text); }
  void bullets(std::vector<std::string> items) { add(Block::Kind::kBullets, "").items = std::move(items); }
  void table(Table table) { add(Block::Kind::kTable, "").table = std::move(table); }
  void code(const std::string& language, const std::string& text) {
    add(Block::Kind::kCode, text).language = language;
  }
  // A plot with a file name stem not used before in this document.
  void plot(const std::string& title, std::string svg) {
    Block& block = add(Block::Kind::kPlot, title);
    const std::string base = slugify(title);
    block.slug = base;
    for (int n = 2; !slugs_.insert(block.slug).second; ++n) block.slug = base + "-" + std::to_string(n);
    block.svg = std::move(svg);
  }
  const std::vector<Block>& blocks() const { return blocks_; }

 private:
  Block& add(Block::Kind kind, const std::string& text) {
    blocks_.emplace_back();
    blocks_.back().kind = kind;
    blocks_.back().text = text;
    return blocks_.back();
  }
  std::vector<Block> blocks_;
  std::set<std::string> slugs_;
};

double metric_value(const ReportSystem& system, const std::string& metric) {
  const auto it = system.values.find(metric);
  return it == system.values.end() ? kNaN : it->second;
}

// The systems that others are tested against, in table order. Each gets a mark for the main table.
std::vector<std::string> reference_systems(const ReportEvaluation& evaluation) {
  std::set<std::string> named;
  for (const auto& system : evaluation.systems) {
    for (const auto& test : system.tests) named.insert(test.against);
  }
  std::vector<std::string> references;
  for (const auto& system : evaluation.systems) {
    if (named.count(system.name)) references.push_back(system.name);
  }
  return references;
}

std::string reference_mark(std::size_t index) {
  static const char* const kMarks[] = {"\xE2\x80\xA0", "\xE2\x80\xA1", "\xC2\xA7", "\xC2\xB6",
                                       "\xE2\x80\x96"};  // † ‡ § ¶ ‖
  constexpr std::size_t kMarkCount = sizeof kMarks / sizeof kMarks[0];
  return index < kMarkCount ? kMarks[index] : "#" + std::to_string(index + 1);
}

// A cell of the main table: the value, then the mark of each reference system it differs from with p < 0.05.
// Only marks: with every system tested against two references on every metric (what the pipeline does), the
// differences and p-values in the cells would make the table unreadably wide; they get their own table.
std::string value_cell(const ReportSystem& system, const std::string& metric,
                       const std::vector<std::string>& references) {
  std::string marks;
  for (std::size_t r = 0; r < references.size(); ++r) {
    for (const auto& test : system.tests) {
      if (test.metric == metric && test.against == references[r] && test.p_value < 0.05)
        marks += reference_mark(r);
    }
  }
  const std::string value = value_text(metric_value(system, metric));
  return marks.empty() ? value : value + " " + marks;
}

// A cell of the tests table: "+0.0210 (p=0.012)*", the difference (the system minus the reference; computed
// from the two values when the test does not give it) and the p-value, "*" for p < 0.05.
std::string test_cell(const ReportSystem& system, const ReportSystem& reference, const ReportTest& test) {
  const double delta =
      test.delta ? *test.delta : metric_value(system, test.metric) - metric_value(reference, test.metric);
  std::string cell = std::isfinite(delta) ? printf_string("%+.4f", delta) + " " : "";
  cell += "(" + p_value_text(test.p_value) + ")";
  if (test.p_value < 0.05) cell += "*";
  return cell;
}

const ReportSystem& system_named(const ReportEvaluation& evaluation, const std::string& name) {
  for (const auto& system : evaluation.systems) {
    if (system.name == name) return system;
  }
  throw Error("report: no system named '" + name + "'");  // the reader checks every test's reference
}

// One row per (system, reference) pair with tests, one column per metric.
void add_tests_table(Document& doc, const ReportEvaluation& evaluation,
                     const std::vector<std::string>& references) {
  doc.heading(3, "Paired tests: " + evaluation.dataset);
  Table table;
  table.header = {"system", "against"};
  table.numeric = {false, false};
  for (const auto& metric : evaluation.metrics) {
    table.header.push_back(metric);
    table.numeric.push_back(true);
  }
  for (const auto& system : evaluation.systems) {
    for (const auto& reference : references) {
      std::vector<std::string> row = {system.name, reference};
      bool any = false;
      for (const auto& metric : evaluation.metrics) {
        std::string cell;
        for (const auto& test : system.tests) {
          if (test.against != reference || test.metric != metric) continue;
          cell = test_cell(system, system_named(evaluation, reference), test);
          any = true;
        }
        row.push_back(cell);
      }
      if (any) table.rows.push_back(std::move(row));
    }
  }
  doc.table(std::move(table));
  doc.note(
      "Each cell: the system's value minus the reference's and the p-value of a paired significance test "
      "over "
      "the queries; * marks p < 0.05.");
}

// The simulated online experiment, after the offline tables of the same set (online_table has the cells).
void add_online(Document& doc, const std::string& dataset, const ReportOnline& online) {
  if (online.systems.empty()) return;
  doc.heading(3, "Online (simulated): " + dataset);
  const ReportTableText text = online_table(online);
  Table table;
  table.header = text.header;
  table.numeric.assign(text.header.size(), true);
  table.numeric[0] = false;
  table.rows = text.rows;
  doc.table(std::move(table));
  doc.note(text.note);
}

void add_evaluation(Document& doc, const ReportEvaluation& evaluation) {
  doc.heading(2, "Evaluation: " + evaluation.dataset);
  if (!evaluation.note.empty()) doc.paragraph(evaluation.note);
  const auto references = reference_systems(evaluation);
  Table table;
  table.header.push_back("system");
  table.numeric.push_back(false);
  for (const auto& metric : evaluation.metrics) {
    table.header.push_back(metric);
    table.numeric.push_back(true);
  }
  for (const auto& system : evaluation.systems) {
    std::vector<std::string> row = {system.name};
    for (const auto& metric : evaluation.metrics) row.push_back(value_cell(system, metric, references));
    table.rows.push_back(std::move(row));
  }
  doc.table(std::move(table));
  std::string note = "Each cell: the metric averaged over the queries (4 decimals; - where undefined).";
  for (std::size_t r = 0; r < references.size(); ++r) {
    if (r == 0) {
      note +=
          " " + reference_mark(r) + " marks a value that differs from " + references[r] + " with p < 0.05";
    } else {
      note += "; " + reference_mark(r) + " from " + references[r];
    }
  }
  if (!references.empty()) note += " (paired tests over the queries, detailed below).";
  doc.note(note);
  if (!references.empty()) add_tests_table(doc, evaluation, references);
  if (evaluation.online) add_online(doc, evaluation.dataset, *evaluation.online);
}

// An ablation's rows as one series sorted by x, when every row has an x (else it has no plot).
std::optional<Series> ablation_series(const ReportAblation& ablation) {
  if (ablation.rows.empty()) return std::nullopt;
  Series series;
  series.name = ablation.metric.empty() ? "value" : ablation.metric;
  for (const auto& row : ablation.rows) {
    if (!row.x) return std::nullopt;
    series.points.emplace_back(*row.x, row.value);
  }
  std::stable_sort(series.points.begin(), series.points.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return series;
}

void add_ablation(Document& doc, const ReportAblation& ablation) {
  doc.heading(2, "Ablation: " + ablation.title);
  // "ndcg_cut.10 on wikiqa-dev", or whichever half is given.
  std::string measured = ablation.metric;
  if (!ablation.dataset.empty()) measured += (measured.empty() ? "on " : " on ") + ablation.dataset;
  if (!measured.empty()) doc.paragraph("Measured: " + measured + ".");

  const auto series = ablation_series(ablation);
  const std::string x_label = ablation.x_label.empty() ? "x" : ablation.x_label;
  Table table;
  table.header = {"setting"};
  table.numeric = {false};
  if (series) {
    table.header.push_back(x_label);
    table.numeric.push_back(true);
  }
  table.header.push_back(ablation.metric.empty() ? "value" : ablation.metric);
  table.numeric.push_back(true);
  for (const auto& row : ablation.rows) {
    std::vector<std::string> cells = {row.name};
    if (series) cells.push_back(number_text(*row.x));
    cells.push_back(value_text(row.value));
    table.rows.push_back(std::move(cells));
  }
  doc.table(std::move(table));
  if (series) {
    doc.plot(ablation.title,
             line_plot_svg(ablation.title, x_label, measured.empty() ? "value" : measured, {*series}));
  }
}

void add_stages(Document& doc, const std::vector<ReportStage>& stages) {
  doc.heading(2, "Stage wall times");
  double total = 0;
  for (const auto& stage : stages) total += stage.seconds.value_or(0);
  Table table;
  table.header = {"stage", "status", "seconds", "share", "description"};
  table.numeric = {false, false, true, true, false};
  auto share = [&](double seconds) {
    return total > 0 ? printf_string("%.0f%%", 100 * seconds / total) : "-";
  };
  for (const auto& stage : stages) {
    table.rows.push_back({stage.name, stage.status,
                          stage.seconds ? printf_string("%.1f", *stage.seconds) : "-",
                          stage.seconds ? share(*stage.seconds) : "-", stage.description});
  }
  table.rows.push_back({"total", "", printf_string("%.1f", total), share(total), duration_text(total)});
  doc.table(std::move(table));
}

void add_machine(Document& doc, const ReportMachine& machine) {
  std::vector<std::string> items;
  if (!machine.cpu.empty()) items.push_back("CPU: " + machine.cpu);
  if (machine.cores) items.push_back("cores: " + std::to_string(*machine.cores));
  if (machine.memory_gib) items.push_back("memory: " + printf_string("%.1f", *machine.memory_gib) + " GiB");
  if (!machine.device.empty()) items.push_back("device: " + machine.device);
  if (items.empty()) return;
  doc.heading(2, "Machine");
  doc.bullets(std::move(items));
}

Document build_document(const ReportData& report) {
  Document doc;
  doc.heading(1, report.title);
  std::vector<std::string> meta;
  if (!report.created.empty()) meta.push_back("Created " + report.created);
  if (report.wall_seconds) meta.push_back("wall time " + duration_text(*report.wall_seconds));
  if (!meta.empty()) {
    std::string line = meta[0];
    for (std::size_t i = 1; i < meta.size(); ++i) line += " \xC2\xB7 " + meta[i];  // a middle dot
    doc.paragraph(line);
  }
  if (!report.summary.empty()) {
    doc.heading(2, "Summary");
    doc.bullets(report.summary);
  }
  for (const auto& evaluation : report.evaluations) add_evaluation(doc, evaluation);
  for (const auto& ablation : report.ablations) add_ablation(doc, ablation);
  if (!report.curves.empty()) {
    doc.heading(2, "Training curves");
    for (const auto& curve : report.curves) {
      doc.heading(3, curve.title);
      doc.plot(curve.title,
               line_plot_svg(curve.title, curve.x_label, curve.y_label, curve.series, curve.log_x));
    }
  }
  if (report.latency) {
    const auto& latency = *report.latency;
    doc.heading(2, latency.title);
    Table table;
    table.header = {"system", latency.x_label.empty() ? "x" : latency.x_label,
                    latency.y_label.empty() ? "y" : latency.y_label};
    table.numeric = {false, true, true};
    for (const auto& point : latency.points) {
      table.rows.push_back({point.label, number_text(point.x), value_text(point.y)});
    }
    doc.table(std::move(table));
    doc.plot(latency.title, scatter_plot_svg(latency.title, latency.x_label, latency.y_label, latency.points,
                                             latency.log_x));
  }
  if (!report.stages.empty()) add_stages(doc, report.stages);
  if (report.machine) add_machine(doc, *report.machine);
  if (!report.command.empty()) {
    doc.heading(2, "Command");
    doc.code("sh", report.command);
  }
  if (!report.config.empty()) {
    doc.heading(2, "Config");
    doc.code("toml", report.config);
  }
  return doc;
}

// ---------------------------------------------------------------------------------------------------------
// Markdown.

bool is_ascii_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_ascii_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Plain text as Markdown inline text that renders as itself, escaping only what could be markup so that the
// file stays readable: "ndcg_cut.10" and "p<0.001" are left alone, "|" (a table cell's end), "`", "[", "]"
// and
// "\" are always escaped, "*" and "_" where they could open emphasis, "<" where it could open a tag, "&"
// where it could start an entity. Newlines become spaces (a cell or a bullet is one line). With
// `block_start`, a leading "#", ">", "-", "+" or "1." (a heading, quote or list) is escaped too.
std::string markdown_text(std::string_view text, bool block_start) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const char next = i + 1 < text.size() ? text[i + 1] : ' ';
    const char previous = i > 0 ? text[i - 1] : ' ';
    const bool next_is_space = next == ' ' || next == '\t' || next == '\n' || next == '\r';
    bool escape = false;
    switch (c) {
      case '\\':
      case '`':
      case '[':
      case ']':
      case '|':
        escape = true;
        break;
      case '*':
        escape = !next_is_space;
        break;
      case '_':
        escape = !next_is_space && !is_ascii_alnum(previous);
        break;
      case '<':
        escape = is_ascii_letter(next) || next == '/' || next == '!' || next == '?';
        break;
      case '&':
        escape = is_ascii_letter(next) || next == '#';
        break;
      case '#':
      case '>':
      case '-':
      case '+':
        escape = block_start && i == 0;
        break;
      case '.':
      case ')':
        // "1. item" would become a numbered list.
        escape = block_start && i > 0 && next_is_space &&
                 std::all_of(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(i),
                             [](char d) { return d >= '0' && d <= '9'; });
        break;
      default:
        break;
    }
    if (c == '\n' || c == '\r') {
      out += ' ';
      continue;
    }
    if (escape) out += '\\';
    out += c;
  }
  return out;
}

std::string markdown_table(const Table& table) {
  auto row_text = [](const std::vector<std::string>& row) {
    std::string line = "|";
    for (const auto& cell : row) line += " " + markdown_text(cell, false) + " |";
    return line + "\n";
  };
  std::string out = row_text(table.header) + "|";
  for (std::size_t c = 0; c < table.header.size(); ++c) out += table.numeric[c] ? " ---: |" : " --- |";
  out += "\n";
  for (const auto& row : table.rows) out += row_text(row);
  return out;
}

// A fence longer than any run of backticks inside the text, so that the text cannot close it.
std::string code_fence(const std::string& text) {
  std::size_t longest = 0, run = 0;
  for (const char c : text) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  return std::string(std::max<std::size_t>(3, longest + 1), '`');
}

std::string to_markdown(const Document& doc, const std::string& plots_dir) {
  std::string out;
  for (const auto& block : doc.blocks()) {
    switch (block.kind) {
      case Block::Kind::kHeading:
        out += std::string(static_cast<std::size_t>(block.level), '#') + " " +
               markdown_text(block.text, false) + "\n";
        break;
      case Block::Kind::kParagraph:
      case Block::Kind::kNote:
        out += markdown_text(block.text, true) + "\n";
        break;
      case Block::Kind::kBullets:
        for (const auto& item : block.items) out += "- " + markdown_text(item, true) + "\n";
        break;
      case Block::Kind::kTable:
        out += markdown_table(block.table);
        break;
      case Block::Kind::kPlot:
        out += "![" + markdown_text(block.text, false) + "](" + plots_dir + "/" + block.slug + ".svg)\n";
        break;
      case Block::Kind::kCode: {
        const std::string fence = code_fence(block.text);
        out += fence + block.language + "\n" + block.text;
        if (block.text.empty() || block.text.back() != '\n') out += "\n";
        out += fence + "\n";
        break;
      }
    }
    out += "\n";
  }
  out.pop_back();  // one newline at the end, not a blank line
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// HTML.

constexpr const char* kCss =
    R"(body { font-family: sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
p.note { color: #555; font-size: 0.9em; }
figure { margin: 1em 0; }
figure svg { max-width: 100%; height: auto; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
)";

std::string html_table(const Table& table) {
  auto cell = [&](const char* tag, std::size_t column, const std::string& text) {
    const bool numeric = column < table.numeric.size() && table.numeric[column];
    return std::string("<") + tag + (numeric ? " class=\"num\"" : "") + ">" + xml_escape(text) + "</" + tag +
           ">";
  };
  std::string out = "<table>\n<thead><tr>";
  for (std::size_t c = 0; c < table.header.size(); ++c) out += cell("th", c, table.header[c]);
  out += "</tr></thead>\n<tbody>\n";
  for (const auto& row : table.rows) {
    out += "<tr>";
    for (std::size_t c = 0; c < row.size(); ++c) out += cell("td", c, row[c]);
    out += "</tr>\n";
  }
  return out + "</tbody>\n</table>\n";
}

std::string to_html(const std::string& title, const Document& doc) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
                    xml_escape(title) + "</title>\n<style>\n" + kCss + "</style>\n</head>\n<body>\n";
  for (const auto& block : doc.blocks()) {
    switch (block.kind) {
      case Block::Kind::kHeading: {
        const std::string tag = "h" + std::to_string(block.level);
        out += "<" + tag + ">" + xml_escape(block.text) + "</" + tag + ">\n";
        break;
      }
      case Block::Kind::kParagraph:
        out += "<p>" + xml_escape(block.text) + "</p>\n";
        break;
      case Block::Kind::kNote:
        out += "<p class=\"note\">" + xml_escape(block.text) + "</p>\n";
        break;
      case Block::Kind::kBullets:
        out += "<ul>\n";
        for (const auto& item : block.items) out += "<li>" + xml_escape(item) + "</li>\n";
        out += "</ul>\n";
        break;
      case Block::Kind::kTable:
        out += html_table(block.table);
        break;
      case Block::Kind::kPlot:
        out += "<figure id=\"" + block.slug + "\">\n" + block.svg + "</figure>\n";
        break;
      case Block::Kind::kCode:
        out += "<pre><code>" + xml_escape(block.text) + "</code></pre>\n";
        break;
    }
  }
  return out + "</body>\n</html>\n";
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------

ReportData load_report_json(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(path, 0, "", "is a directory, expected report.json");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, 0, "", "cannot open file for reading");
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error(path, 0, "", "read error");
  json root;
  try {
    root = json::parse(text.str());
  } catch (const json::exception& e) {
    throw Error(path, 0, "", std::string("not valid JSON: ") + e.what());
  }
  return report_from_json(root, path);
}

ReportData report_from_json(const json& root, const std::string& path) {
  const Fields f(path, root, "",
                 {"title", "created", "command", "machine", "wall_seconds", "summary", "stages",
                  "evaluations", "ablations", "curves", "latency", "config"});
  ReportData report;
  report.title = f.required_string("title");
  if (report.title.empty()) throw f.error("title", "is empty");
  report.created = f.optional_string("created");
  report.command = f.optional_string("command");
  if (f.has("machine")) report.machine = read_machine(path, root.at("machine"));
  report.wall_seconds = f.optional_number("wall_seconds");
  if (f.has("summary")) report.summary = read_strings(f, "summary");
  for_each_element(f, "stages", [&](const json& v, const std::string& p) {
    report.stages.push_back(read_stage(path, v, p));
  });
  for_each_element(f, "evaluations", [&](const json& v, const std::string& p) {
    report.evaluations.push_back(read_evaluation(path, v, p));
  });
  for_each_element(f, "ablations", [&](const json& v, const std::string& p) {
    report.ablations.push_back(read_ablation(path, v, p));
  });
  for_each_element(f, "curves", [&](const json& v, const std::string& p) {
    report.curves.push_back(read_curve(path, v, p));
  });
  if (f.has("latency")) report.latency = read_latency(path, root.at("latency"));
  report.config = f.optional_string("config");
  return report;
}

ReportTableText online_table(const ReportOnline& online) {
  ReportTableText table;
  const double confidence = online.systems.empty() ? 0.95 : online.systems.front().confidence;
  const std::string level = printf_string("%.0f%%", 100 * confidence);
  table.header = {"system",
                  "page CTR (A \xE2\x86\x92 B)",           // →
                  "\xCE\x94 page CTR (" + level + " CI)",  // Δ
                  "\xCE\x94 user CTR (" + level + " CI)",
                  "\xCE\x94 dwell per click",
                  "\xCE\x94 abandonment",
                  "interleaving wins / losses / ties",
                  "sign test",
                  "\xCE\x94NDCG@10"};
  double pages = 0, interleaved = 0;
  std::size_t fewest_queries = std::numeric_limits<std::size_t>::max(), most_queries = 0;
  for (const auto& system : online.systems) {
    table.rows.push_back(
        {system.name, value_text(system.page_ctr.a) + " \xE2\x86\x92 " + value_text(system.page_ctr.b),
         online_delta_cell(system.page_ctr, true), online_delta_cell(system.user_ctr, true),
         online_delta_cell(system.dwell_per_click, false), online_delta_cell(system.abandonment, false),
         std::to_string(system.wins) + " / " + std::to_string(system.losses) + " / " +
             std::to_string(system.ties),
         p_value_text(system.p_value) + (system.p_value < 0.05 ? "*" : ""),
         std::isfinite(system.ndcg_diff) ? printf_string("%+.4f", system.ndcg_diff) : "-"});
    pages += static_cast<double>(system.pages);
    interleaved += static_cast<double>(system.interleaved);
    fewest_queries = std::min(fewest_queries, system.queries);
    most_queries = std::max(most_queries, system.queries);
  }
  const double systems = static_cast<double>(std::max<std::size_t>(1, online.systems.size()));
  // A query that neither run ranks is not issued, so systems can differ in their number of queries.
  const std::string queries = fewest_queries >= most_queries
                                  ? std::to_string(most_queries)
                                  : std::to_string(fewest_queries) + "-" + std::to_string(most_queries);
  // One line that says what the numbers are: a simulation driven by the labels, not a measurement.
  table.note = "Simulated, not measured: clicks follow the " + click_model_text(online.click_model) +
               " click model driven by the qrels grades (unjudged = 0). A = " + online.reference +
               ", B = each system; " + std::to_string(online.users) + " users over " +
               std::to_string(online.days) + " days on " + queries + " queries, top " +
               std::to_string(online.depth) + ", seed " + std::to_string(online.seed) + ": about " +
               printf_string("%.0f", pages / systems) + " A/B pages and " +
               printf_string("%.0f", interleaved / systems) +
               " interleaved impressions per system. \xCE\x94: B/A - 1 with its " + level +
               " bootstrap interval over users, * where it excludes 0; interleaving: team draft, B's wins / "
               "losses / ties against A and the two-sided sign test, * for p < 0.05; \xCE\x94NDCG@10: B - A "
               "offline, on the same queries.";
  return table;
}

std::string slugify(const std::string& title) {
  constexpr std::size_t kMaxLength = 60;
  std::string slug;
  for (const char c : title) {
    if (is_ascii_alnum(c)) {
      slug += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    } else if (!slug.empty() && slug.back() != '-') {
      slug += '-';
    }
  }
  if (slug.size() > kMaxLength) slug.resize(kMaxLength);
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return slug.empty() ? "plot" : slug;
}

std::vector<ReportPlot> report_plots(const ReportData& report) {
  std::vector<ReportPlot> plots;
  const Document doc = build_document(report);
  for (const auto& block : doc.blocks()) {
    if (block.kind == Block::Kind::kPlot) plots.push_back(ReportPlot{block.slug, block.text, block.svg});
  }
  return plots;
}

std::string render_markdown(const ReportData& report, const std::string& plots_dir) {
  return to_markdown(build_document(report), plots_dir);
}

std::string render_html(const ReportData& report) {
  return to_html(report.title, build_document(report));
}

std::vector<std::string> write_report(const std::string& run_dir) {
  const fs::path dir(run_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(run_dir, 0, "", "not a directory (expected a run directory)");
  const ReportData report = load_report_json((dir / "report.json").string());
  const Document doc = build_document(report);

  std::vector<std::string> written;
  auto write = [&](const fs::path& path, const std::string& content) {
    write_file_atomically(path.string(), [&](std::ostream& out) { out << content; });
    written.push_back(path.string());
  };
  const fs::path plots_dir = dir / "plots";
  for (const auto& block : doc.blocks()) {
    if (block.kind != Block::Kind::kPlot) continue;
    fs::create_directories(plots_dir, ec);
    if (ec) throw Error(plots_dir.string(), 0, "", "cannot create directory: " + ec.message());
    write(plots_dir / (block.slug + ".svg"), block.svg);
  }
  write(dir / "report.md", to_markdown(doc, "plots"));
  write(dir / "report.html", to_html(report.title, doc));
  return written;
}

}  // namespace disranker
