// The DisRanker pipeline as a list of steps: data → vocabularies → teacher (CPT, rank SFT) → teacher scores
// of the distillation pool → student (MLM, labels-only baseline, hybrid distillation for each alpha) → scores
// of every system on the evaluation sets → evaluation and report. Which steps exist follows from the
// settings; docs/pipeline.md describes each one. No libtorch: the training steps are `disranker` child
// processes.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "pipeline/evaluate.h"
#include "pipeline/step_runner.h"

namespace disranker::pipeline {

// [pipeline] settings (configs/quickstart.toml documents each one).
struct PipelineSettings {
  std::string out_dir;
  std::string data_dir;  // default: $DISRANKER_DATA or ../shared/data
  std::vector<std::string> train_sets = {"wikiqa-train"};
  std::vector<std::string> pool_sets;  // unlabelled candidates added to the distillation pool
  std::vector<std::string> dev_sets = {"wikiqa-dev"};
  std::vector<std::string> ood_sets;  // whole collections: BM25 top ood_candidates, then reranked
  std::vector<std::string> require_relevant = {"wikiqa-dev"};
  std::vector<std::string> rel_level_2;  // sets whose binary metrics need grade >= 2 (TREC DL)
  std::size_t candidates = 30;           // top-K of a set's run.BM25.txt
  std::size_t ood_candidates = 100;
  std::vector<std::string> cpt_qrels_sets = {"wikiqa-train"};  // question → clicked page pairs (WikiQA)
  std::size_t click_sessions = 20000;  // simulated over the other training sets' candidates (0: none)
  std::string teacher_config = "configs/models/decoder-mini.json";
  std::size_t teacher_vocab_size = 8000;
  int teacher_max_length = 128;
  std::string student_config = "configs/models/bert-mini.json";
  std::string student_vocab;  // a vocab.txt; empty: WordPiece trained on the training corpus
  std::size_t student_vocab_size = 8000;
  int student_max_length = 128;
  std::vector<double> alphas = {0.0, 0.25, 0.5, 0.75, 1.0};
  double alpha = 0.5;  // the deployed student's
  bool ablate_cpt = true;
  bool ablate_pooling = true;
  std::vector<std::string> metrics = {"ndcg_cut.5", "ndcg_cut.10", "mrr_cut.10", "map", "pnr"};
  std::string device = "cpu";
  int threads = 0;
  int ranks =
      1;  // processes per training or scoring step, a c10d job on this machine (StepRunner::set_ranks)
  unsigned seed = 42;
  // Flags of each training command, from the config's [teacher-cpt], [teacher-sft], [student-mlm],
  // [student-sft], [student-distill] and [score] sections ("epochs" → {"--epochs", "3"}).
  std::map<std::string, std::vector<std::string>> stage_flags;
  // The simulated online experiment of the report, from the config's [pipeline.online] section.
  OnlineSettings online;
};

// Reads the stage sections of a TOML config into stage_flags (the [pipeline] section itself is read by
// CLI11). Throws Error naming the file and section for a section that is not a pipeline stage.
std::map<std::string, std::vector<std::string>> read_stage_flags(const std::string& config_path);

// Reads the config's [pipeline.online] section (the defaults where a key is absent, or without a config).
// Throws Error naming the file and the key for an unknown key or a value out of range (an unknown click
// model, fewer than 2 users, ...).
OnlineSettings read_online_settings(const std::string& config_path);

// One evaluated system: its name in the tables and its model directory (empty for BM25).
struct System {
  std::string name;
  std::string model_dir;
  bool on_ood = false;  // also scored on the out-of-domain collections
};

struct Plan {
  std::vector<Step> steps;
  std::vector<System> systems;  // in table order; systems[0] is BM25
  std::string student_dir;      // the deployable student (OUT/student)
};

// Builds the steps. `finish` is the last step's action (evaluation and report), given the plan.
Plan build_plan(const PipelineSettings& settings);

// The systems the online simulation compares with settings.online.reference: every student, and the
// teacher (each costs well under a second per set), in table order, without the reference itself.
std::vector<System> online_systems(const PipelineSettings& settings, const Plan& plan);

// Paths inside OUT, shared by the plan and the evaluation.
std::string eval_candidates_path(const PipelineSettings& settings, const std::string& set);
std::string system_run_path(const PipelineSettings& settings, const std::string& set, const System& system);
std::string system_slug(const std::string& name);

}  // namespace disranker::pipeline
