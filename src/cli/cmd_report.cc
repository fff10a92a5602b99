// disranker report: renders a run directory's report.json (written by the pipeline) as report.md,
// report.html and plots/*.svg. Rendering again after editing report.json (or after a renderer change) needs
// no model and no data: everything the report shows is in report.json.
#include <iostream>
#include <memory>
#include <string>

#include "cli/command.h"
#include "report/report.h"

namespace disranker::cli {

void register_report(CLI::App& app) {
  auto run_dir = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand(
      "report", "Render a run's report.json as report.md, report.html (plots inlined) and plots/*.svg");
  sub->footer(
      "Example: disranker report --dir runs/quickstart\n"
      "Reads RUN_DIR/report.json (written by the pipeline; schema in docs/report.md) and writes "
      "RUN_DIR/report.md, RUN_DIR/report.html (self-contained) and RUN_DIR/plots/<slug>.svg beside it, each "
      "atomically; prints the paths written, one a line. Needs no model and no data, so a report can be "
      "rendered again after editing report.json.");
  sub->add_option("--dir", *run_dir, "Run directory holding report.json")
      ->type_name("RUN_DIR")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->callback([run_dir] {
    for (const auto& path : write_report(*run_dir)) std::cout << path << '\n';
  });
}

}  // namespace disranker::cli
