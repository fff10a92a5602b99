// Gathers what the pipeline measured into report.json (schema: docs/report.md): evaluation tables with
// significance tests, the ablations, training curves from each stage's metrics.jsonl, latency, wall times,
// the machine and the config. No libtorch.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pipeline/plan.h"

namespace disranker::pipeline {

struct ReportContext {
  const PipelineSettings* settings = nullptr;
  const Plan* plan = nullptr;
  std::vector<StepResult> stages;
  std::string command;      // the command line that ran the pipeline
  std::string config_text;  // the config file's text
  double wall_seconds = 0;
};

// Evaluates every system on every evaluation set and assembles report.json.
nlohmann::json build_report(const ReportContext& context);

// The summary printed at the end of the pipeline: one table per evaluation set.
std::string summary_tables(const nlohmann::json& report);

// "AMD EPYC 7B13, 2 cores, 23.4 GiB" from /proc (empty fields when unavailable).
nlohmann::json describe_machine(const std::string& device);

}  // namespace disranker::pipeline
