#include "pipeline/report_data.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/table.h"
#include "data/queries.h"
#include "pipeline/evaluate.h"
#include "report/report.h"

namespace disranker::pipeline {
namespace fs = std::filesystem;

namespace {

std::string fixed(double value, int digits) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(digits);
  out << value;
  return out.str();
}

const nlohmann::json* find_system(const nlohmann::json& evaluation, const std::string& name) {
  for (const auto& system : evaluation["systems"]) {
    if (system["name"] == name) return &system;
  }
  return nullptr;
}

double value_of(const nlohmann::json& evaluation, const std::string& system, const std::string& metric) {
  const auto* found = find_system(evaluation, system);
  if (!found || !(*found)["values"].contains(metric) || (*found)["values"][metric].is_null()) return NAN;
  return (*found)["values"][metric].get<double>();
}

const nlohmann::json* find_test(const nlohmann::json& evaluation, const std::string& system,
                                const std::string& against, const std::string& metric) {
  const auto* found = find_system(evaluation, system);
  if (!found) return nullptr;
  for (const auto& test : (*found)["tests"]) {
    if (test["against"] == against && test["metric"] == metric) return &test;
  }
  return nullptr;
}

std::string now_iso() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

// Training loss by step, and the validation metric by epoch, from a stage's metrics.jsonl.
void read_curves(const std::string& path, std::vector<std::pair<double, double>>& loss,
                 std::vector<std::pair<double, double>>& validation, const std::string& metric) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded() || !record.is_object()) continue;
    if (record.contains("loss") && record["loss"].is_number() && record.contains("step")) {
      loss.emplace_back(record["step"].get<double>(), record["loss"].get<double>());
    }
    if (record.contains("validation") && record["validation"].is_object() &&
        record["validation"].contains(metric) && record["validation"][metric].is_number()) {
      validation.emplace_back(record["epoch"].get<double>() + 1, record["validation"][metric].get<double>());
    }
  }
}

std::string metric_label(const std::string& metric) {
  if (metric == "ndcg_cut.10") return "NDCG@10";
  if (metric == "ndcg_cut.5") return "NDCG@5";
  if (metric == "mrr_cut.10") return "MRR@10";
  if (metric == "map") return "MAP";
  if (metric == "pnr") return "PNR";
  return metric;
}

}  // namespace

nlohmann::json describe_machine(const std::string& device) {
  nlohmann::json machine;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      machine["cpu"] = line.substr(line.find(':') + 2);
      break;
    }
  }
  machine["cores"] = std::thread::hardware_concurrency();
  std::ifstream meminfo("/proc/meminfo");
  while (std::getline(meminfo, line)) {
    if (line.rfind("MemTotal:", 0) == 0) {
      machine["memory_gib"] = std::round(std::stod(line.substr(9)) / 1024.0 / 1024.0 * 10) / 10;
      break;
    }
  }
  machine["device"] = device;
  return machine;
}

nlohmann::json build_report(const ReportContext& context) {
  const PipelineSettings& s = *context.settings;
  const Plan& plan = *context.plan;
  const std::string quality = std::find(s.metrics.begin(), s.metrics.end(), "ndcg_cut.10") != s.metrics.end()
                                  ? "ndcg_cut.10"
                                  : s.metrics.front();
  nlohmann::json report;
  report["title"] = "DisRanker pipeline report";
  report["created"] = now_iso();
  report["command"] = context.command;
  report["machine"] = describe_machine(s.device);
  report["wall_seconds"] = context.wall_seconds;
  report["config"] = context.config_text;

  // Evaluation tables: every system against BM25 and against the labels-only student.
  const std::vector<std::string> against = {"BM25", "student (labels only)"};
  report["evaluations"] = nlohmann::json::array();
  std::vector<std::string> eval_sets = s.dev_sets;
  eval_sets.insert(eval_sets.end(), s.ood_sets.begin(), s.ood_sets.end());
  for (const auto& set : eval_sets) {
    const bool ood = std::find(s.ood_sets.begin(), s.ood_sets.end(), set) != s.ood_sets.end();
    EvalSet eval_set;
    eval_set.name = set;
    eval_set.qrels = (fs::path(s.data_dir) / set / "qrels.txt").string();
    eval_set.rel_level =
        std::find(s.rel_level_2.begin(), s.rel_level_2.end(), set) != s.rel_level_2.end() ? 2 : 1;
    eval_set.require_relevant =
        std::find(s.require_relevant.begin(), s.require_relevant.end(), set) != s.require_relevant.end();
    const bool has_run = fs::exists(fs::path(s.data_dir) / set / "run.BM25.txt");
    eval_set.note = ood ? "out of domain: BM25 top " + std::to_string(s.ood_candidates) +
                              " of the whole collection, reranked"
                    : has_run
                        ? "candidates: the top " + std::to_string(s.candidates) + " of the set's BM25 run"
                        : "candidates: the judged documents";
    eval_set.queries = (fs::path(s.data_dir) / set / "queries.tsv").string();
    std::vector<SystemRun> runs;
    for (const auto& system : plan.systems) {
      if (ood && !system.model_dir.empty() && !system.on_ood) continue;
      runs.push_back({system.name, system_run_path(s, set, system)});
    }
    nlohmann::json evaluation = evaluate_set(eval_set, runs, s.metrics, against);
    const auto reference = std::find_if(runs.begin(), runs.end(),
                                        [&](const SystemRun& run) { return run.name == s.online.reference; });
    if (s.online.enabled && reference != runs.end()) {
      std::vector<SystemRun> simulated;
      for (const auto& system : online_systems(s, plan)) {
        for (const auto& run : runs)
          if (run.name == system.name) simulated.push_back(run);  // on this set (not every system is on OOD)
      }
      if (!simulated.empty()) {
        const auto start = std::chrono::steady_clock::now();
        nlohmann::json online = simulate_online(eval_set, *reference, simulated, s.online,
                                                static_cast<std::size_t>(std::max(0, s.threads)));
        if (!online.is_null()) {
          evaluation["online"] = std::move(online);
          std::fprintf(stderr, "online simulation on %s: %zu systems against %s, %.1f s\n", set.c_str(),
                       simulated.size(), reference->name.c_str(),
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        }
      }
    }
    report["evaluations"].push_back(std::move(evaluation));
  }

  // Ablations on the first dev set.
  report["ablations"] = nlohmann::json::array();
  if (!s.dev_sets.empty()) {
    const auto& dev = report["evaluations"][0];
    nlohmann::json alpha_rows = nlohmann::json::array();
    for (const auto& system : plan.systems) {
      const std::string prefix = "student (distilled";
      if (system.name.rfind(prefix, 0) != 0) continue;
      const auto at = system.name.find("alpha ");
      const double alpha = at == std::string::npos ? s.alpha : std::stod(system.name.substr(at + 6));
      alpha_rows.push_back({{"name", "alpha=" + fixed(alpha, 2)},
                            {"x", alpha},
                            {"value", value_of(dev, system.name, quality)}});
    }
    std::sort(alpha_rows.begin(), alpha_rows.end(), [](const auto& a, const auto& b) {
      return a["x"].template get<double>() < b["x"].template get<double>();
    });
    report["ablations"].push_back(
        {{"title", "Hybrid loss weight alpha (1 = point-wise MSE only, 0 = Margin-MSE only)"},
         {"dataset", s.dev_sets.front()},
         {"metric", quality},
         {"x_label", "alpha"},
         {"rows", alpha_rows}});
    nlohmann::json teacher_rows = nlohmann::json::array();
    for (const std::string name : {"teacher", "teacher without CPT", "teacher, mean pooling"}) {
      if (find_system(dev, name))
        teacher_rows.push_back({{"name", name}, {"value", value_of(dev, name, quality)}});
    }
    report["ablations"].push_back({{"title", "Teacher: CPT on/off, </s> last-token vs mean pooling"},
                                   {"dataset", s.dev_sets.front()},
                                   {"metric", quality},
                                   {"rows", teacher_rows}});
  }

  // Curves: training loss of each stage, validation metric by epoch.
  report["curves"] = nlohmann::json::array();
  nlohmann::json validation_series = nlohmann::json::array();
  for (const auto& step : plan.steps) {
    if (!step.resumable) continue;
    std::vector<std::pair<double, double>> loss, validation;
    read_curves((fs::path(step.output_dir) / "metrics.jsonl").string(), loss, validation, quality);
    if (!loss.empty()) {
      report["curves"].push_back({{"title", "Training loss: " + step.name},
                                  {"x_label", "optimiser step"},
                                  {"y_label", "loss"},
                                  {"series", {{{"name", step.name}, {"points", loss}}}}});
    }
    if (!validation.empty()) validation_series.push_back({{"name", step.name}, {"points", validation}});
  }
  if (!validation_series.empty()) {
    report["curves"].push_back({{"title", metric_label(quality) + " on " + s.dev_sets.front() + " by epoch"},
                                {"x_label", "epoch"},
                                {"y_label", metric_label(quality)},
                                {"series", validation_series}});
  }

  // Latency: wall time of `disranker score` over the first dev set per query (model loading included).
  if (!s.dev_sets.empty()) {
    const std::string set = s.dev_sets.front();
    const auto queries = read_queries((fs::path(s.out_dir) / "data" / "eval" / set / "queries.tsv").string());
    nlohmann::json points = nlohmann::json::array();
    for (const auto& system : plan.systems) {
      if (system.model_dir.empty()) continue;
      const std::string step = "score-" + set + "-" + system_slug(system.name);
      for (const auto& stage : context.stages) {
        if (stage.name != step || queries.size() == 0) continue;
        points.push_back({{"name", system.name},
                          {"x", stage.seconds * 1000.0 / static_cast<double>(queries.size())},
                          {"y", value_of(report["evaluations"][0], system.name, quality)}});
      }
    }
    report["latency"] = {
        {"x_label", "ms per query on " + set + " (disranker score, " + std::to_string(s.candidates) +
                        " candidates at most, model loading included)"},
        {"y_label", metric_label(quality) + " on " + set},
        {"points", points}};
  }

  report["stages"] = nlohmann::json::array();
  for (const auto& stage : context.stages) {
    report["stages"].push_back({{"name", stage.name},
                                {"description", stage.description},
                                {"status", stage.status},
                                {"seconds", stage.seconds}});
  }

  // Summary: the paper's claims, checked on each dev set.
  nlohmann::json summary = nlohmann::json::array();
  for (const auto& evaluation : report["evaluations"]) {
    const std::string set = evaluation["dataset"];
    if (std::find(s.dev_sets.begin(), s.dev_sets.end(), set) == s.dev_sets.end()) continue;
    const double bm25 = value_of(evaluation, "BM25", quality);
    const double teacher = value_of(evaluation, "teacher", quality);
    const double student = value_of(evaluation, "student (distilled)", quality);
    const double labels = value_of(evaluation, "student (labels only)", quality);
    std::string line = set + ": " + metric_label(quality) + " BM25 " + fixed(bm25, 4) + ", teacher " +
                       fixed(teacher, 4) + ", distilled student " + fixed(student, 4) + " (" +
                       fixed(100.0 * student / teacher, 1) + "% of the teacher), labels-only student " +
                       fixed(labels, 4);
    if (const auto* test = find_test(evaluation, "student (distilled)", "student (labels only)", quality)) {
      line += "; distilled vs labels-only p=" + fixed((*test)["p_value"].get<double>(), 4);
    }
    if (const auto* test = find_test(evaluation, "teacher", "BM25", quality)) {
      line += "; teacher vs BM25 p=" + fixed((*test)["p_value"].get<double>(), 4);
    }
    summary.push_back(line);
  }
  report["summary"] = summary;
  return report;
}

std::string summary_tables(const nlohmann::json& report) {
  // The online tables come from the report's own renderer, so that the terminal shows what report.md shows.
  const ReportData data = report_from_json(report, "report.json");
  std::string text;
  for (std::size_t e = 0; e < data.evaluations.size(); ++e) {
    const auto& evaluation = report["evaluations"][e];
    std::vector<std::string> header = {std::string(evaluation["dataset"])};
    for (const auto& metric : evaluation["metrics"]) header.push_back(metric_label(metric));
    TextTable table(header);
    for (const auto& system : evaluation["systems"]) {
      std::vector<std::string> row = {system["name"]};
      for (const auto& metric : evaluation["metrics"]) {
        const auto& value = system["values"][std::string(metric)];
        row.push_back(value.is_number() ? format_metric(value.get<double>()) : "-");
      }
      table.add_row(row);
    }
    text += table.render() + "  (" + std::string(evaluation["note"]) + ")\n\n";
    const auto& online = data.evaluations[e].online;
    if (!online || online->systems.empty()) continue;
    const ReportTableText cells = online_table(*online);
    TextTable online_text(cells.header);
    for (const auto& row : cells.rows) online_text.add_row(row);
    text += "Online (simulated): " + data.evaluations[e].dataset + "\n" + online_text.render() + "  (" +
            cells.note + ")\n\n";
  }
  return text;
}

}  // namespace disranker::pipeline
