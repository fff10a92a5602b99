// disranker pipeline: the whole method in one command (docs/pipeline.md). The steps that train or score run
// as child processes of this binary; this command only plans, skips what is done, and reports.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/command.h"
#include "cli/train_options.h"
#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "dist/launch.h"
#include "pipeline/plan.h"
#include "pipeline/report_data.h"
#include "pipeline/step_runner.h"
#include "report/report.h"

namespace disranker::cli {
namespace {

struct PipelineCommand {
  pipeline::PipelineSettings settings;
  bool dry_run = false;
  std::string data_dir;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void run_pipeline(PipelineCommand& command, const std::string& config_path, const std::string& command_line) {
  auto& settings = command.settings;
  settings.data_dir = command.data_dir.empty() ? data_dir().string() : command.data_dir;
  settings.stage_flags = pipeline::read_stage_flags(config_path);
  settings.online = pipeline::read_online_settings(config_path);
  std::filesystem::create_directories(settings.out_dir);
  const pipeline::Plan plan = pipeline::build_plan(settings);

  if (command.dry_run) {
    std::size_t index = 0;
    for (const auto& step : plan.steps) {
      std::cout << "[" << ++index << "/" << plan.steps.size() << "] " << step.name << ": "
                << step.description;
      if (step.data_parallel && settings.ranks > 1) std::cout << " (as " << settings.ranks << " ranks)";
      if (!step.args.empty()) {
        std::cout << "\n    disranker";
        for (const auto& arg : step.args) std::cout << " " << arg;
      }
      std::cout << "\n";
    }
    return;
  }

  const auto start = std::chrono::steady_clock::now();
  pipeline::StepRunner runner(settings.out_dir, pipeline::self_executable());
  runner.set_ranks(settings.ranks);
  pipeline::ReportContext context;
  for (std::size_t i = 0; i < plan.steps.size(); ++i) {
    context.stages.push_back(runner.run(plan.steps[i], i + 1, plan.steps.size()));
  }
  context.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  context.settings = &settings;
  context.plan = &plan;
  context.command = command_line;
  context.config_text = config_path.empty() ? "" : read_text(config_path);

  std::cerr << "evaluating and writing the report\n";
  const nlohmann::json report = pipeline::build_report(context);
  const std::string report_path = (std::filesystem::path(settings.out_dir) / "report.json").string();
  write_file_atomically(report_path, [&](std::ostream& out) { out << report.dump(2) << "\n"; });
  const auto written = write_report(settings.out_dir);
  std::cout << pipeline::summary_tables(report);
  for (const auto& line : report["summary"]) std::cout << "- " << line.get<std::string>() << "\n";
  std::cout << "\nreport: " << (std::filesystem::path(settings.out_dir) / "report.md").string() << " (and "
            << written.size() << " files beside it); deployable student: " << plan.student_dir << "\n"
            << "pipeline wall time " << ProgressBar::format_duration(context.wall_seconds) << "\n";
}

}  // namespace

void register_pipeline(CLI::App& app) {
  auto command = std::make_shared<PipelineCommand>();
  auto& s = command->settings;
  CLI::App* sub = app.add_subcommand(
      "pipeline",
      "The DisRanker method end to end: data → vocabularies → teacher CPT and rank SFT → teacher scores of "
      "the "
      "distillation pool → student MLM, labels-only baseline and hybrid distillation → scores of every "
      "system on "
      "the dev sets → report.md/html and a deployable student. Each step's state is kept in OUT/state: a "
      "rerun "
      "skips finished steps (unless their inputs or settings changed) and resumes a killed training step.\n"
      "Example: disranker pipeline --config configs/quickstart.toml --out runs/quickstart");
  add_config_option(*sub);
  sub->add_option("--out", s.out_dir,
                  "Output directory (data/, train/, runs/, state/, logs/, report.md, student/)")
      ->required();
  sub->add_option("--data", command->data_dir,
                  "Shared data directory (default: $DISRANKER_DATA or ../shared/data)");
  sub->add_option("--train-sets", s.train_sets, "Labelled training sets (teacher SFT, labels-only student)")
      ->capture_default_str();
  sub->add_option("--pool-sets", s.pool_sets,
                  "Unlabelled sets whose BM25 candidates join the distillation pool")
      ->capture_default_str();
  sub->add_option("--dev-sets", s.dev_sets, "Evaluation sets (the first one also validates each epoch)")
      ->capture_default_str();
  sub->add_option("--ood-sets", s.ood_sets,
                  "Out-of-domain collections: BM25 over the whole collection, reranked")
      ->capture_default_str();
  sub->add_option("--require-relevant", s.require_relevant,
                  "Sets evaluated on queries with a relevant document only (WikiQA's protocol)")
      ->capture_default_str();
  sub->add_option("--rel-level-2", s.rel_level_2,
                  "Sets whose binary metrics count grade >= 2 as relevant (TREC DL)")
      ->capture_default_str();
  sub->add_option("--candidates", s.candidates, "Top K of a set's run.BM25.txt as its candidates")
      ->capture_default_str();
  sub->add_option("--ood-candidates", s.ood_candidates, "BM25 depth on the out-of-domain collections")
      ->capture_default_str();
  sub->add_option("--cpt-qrels-sets", s.cpt_qrels_sets,
                  "Training sets whose qrels are clicks (WikiQA: question → clicked page) for CPT pairs")
      ->capture_default_str();
  sub->add_option("--click-sessions", s.click_sessions,
                  "Sessions simulated (PBM) over the other training sets' candidates for CPT pairs (0: none)")
      ->capture_default_str();
  sub->add_option("--teacher-config", s.teacher_config, "Decoder preset (configs/models)")
      ->capture_default_str();
  sub->add_option("--teacher-vocab-size", s.teacher_vocab_size, "BPE vocabulary of the teacher")
      ->capture_default_str();
  sub->add_option("--teacher-max-length", s.teacher_max_length, "Teacher pair budget (tokens)")
      ->capture_default_str();
  sub->add_option("--student-config", s.student_config, "BERT preset (configs/models)")
      ->capture_default_str();
  sub->add_option(
      "--student-vocab", s.student_vocab,
      "Student vocab.txt (e.g. the shared BERT vocabulary); empty: WordPiece trained on the pool");
  sub->add_option("--student-vocab-size", s.student_vocab_size, "WordPiece vocabulary size when trained")
      ->capture_default_str();
  sub->add_option("--student-max-length", s.student_max_length, "Student pair budget (tokens)")
      ->capture_default_str();
  sub->add_option("--alphas", s.alphas, "Hybrid loss weights to train students with (the alpha ablation)")
      ->capture_default_str();
  sub->add_option("--alpha", s.alpha, "Hybrid loss weight of the deployed student")->capture_default_str();
  sub->add_option("--ablate-cpt", s.ablate_cpt, "Also train the teacher without CPT")->capture_default_str();
  sub->add_option("--ablate-pooling", s.ablate_pooling, "Also train the teacher with mean pooling")
      ->capture_default_str();
  sub->add_option("--metrics", s.metrics, "Metrics of the report (trec_eval names, plus pnr)")
      ->capture_default_str();
  sub->add_option("--device", s.device, "cpu, cuda or cuda:N (every training and scoring step)")
      ->capture_default_str();
  sub->add_option("--threads", s.threads, "libtorch threads per step (0: one per core)")
      ->capture_default_str();
  sub->add_option("--ranks", s.ranks,
                  "Processes per training and scoring step: a data-parallel job on this machine "
                  "(docs/distributed.md); --threads 0 then gives each rank its share of the cores")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--seed", s.seed, "Seed of every step")->capture_default_str();
  sub->add_flag("--dry-run", command->dry_run, "Print the steps and their commands, run nothing");
  sub->footer(
      "Stage settings: the config's [teacher-cpt], [teacher-sft], [student-mlm], [student-sft], "
      "[student-distill]\n"
      "and [score] sections hold flags of `disranker cpt`, `sft`, `mlm`, `sft`, `distill` and `score` "
      "(without\n"
      "the dashes). [pipeline.online] sets the report's simulated online experiment of the students against "
      "BM25\n"
      "(docs/online.md). configs/quickstart.toml documents every setting.");
  sub->callback([command, &app]() {
    // One driver runs the steps as child processes, which inherit its environment: started as several ranks,
    // every rank would run and write every step, and every child would try to join a job.
    if (const dist::Launch launch = dist::launch_from_environment(); launch.distributed()) {
      throw Error("pipeline: started as rank " + std::to_string(launch.rank) + " of " +
                  std::to_string(launch.world_size) + " (" + launch.launcher +
                  "): run the pipeline as one process; launch the training or scoring commands themselves as "
                  "ranks to run them data-parallel (docs/distributed.md)");
    }
    std::string config_path;
    if (const auto* config = app.get_config_ptr(); config && config->count() > 0) {
      config_path = config->as<std::string>();
    }
    std::string line = "disranker pipeline";
    if (!config_path.empty()) line += " --config " + config_path;
    line += " --out " + command->settings.out_dir;
    run_pipeline(*command, config_path, line);
  });
}

}  // namespace disranker::cli
