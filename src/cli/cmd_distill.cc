// disranker distill: the student trained on the teacher's scores (a TREC run from `disranker score` with the
// teacher) with DisRanker's hybrid loss, α·MSE(s, t) + (1 − α)·MSE(Δs, Δt). The library does the work
// (train/distill.h); this file binds the flags.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "cli/stage_command.h"
#include "cli/train_options.h"
#include "core/error.h"
#include "model/ranker.h"
#include "model/runtime.h"
#include "train/distill.h"

namespace disranker::cli {
namespace {

struct DistillCommand {
  std::string model_dir;
  DistillOptions options;
  std::string pairs = "all";
  std::string norm = "none";
  RunOptions run;
  OptimizerOptions optimizer;

  void execute(const CLI::App& command) {
    options.train.loss.pairs = parse_pair_selection(pairs);
    options.norm = parse_teacher_norm(norm);
    validate(options);
    auto student = open_stage_model(model_dir, run, optimizer, command);
    const auto summary = run_distill(*student, model_dir, options, run, optimizer);
    print_stage_summary("distill", summary, run.out_dir, {{"pairs_per_second", "pairs/s"}});
  }
};

}  // namespace

void register_distill(CLI::App& app) {
  auto command = std::make_shared<DistillCommand>();
  command->optimizer.learning_rate = 1e-4;
  CLI::App* sub = app.add_subcommand(
      "distill",
      "Distil the teacher's scores into the student: each micro-batch holds --groups-per-batch queries with "
      "--group-size documents drawn uniformly from the teacher run; loss hybrid = alpha * MSE(s, t) + "
      "(1 - alpha) * MSE(s_i - s_j, t_i - t_j) over the documents and pairs of each query.\n"
      "Example: disranker score --model runs/sft/model --queries Q --docs D --run POOL --out teacher.run; "
      "disranker distill --model student-mlm/model --teacher-run teacher.run --queries Q --docs D "
      "--dev wikiqa-dev --dev-require-relevant --out runs/distill");
  sub->add_option(
         "--model", command->model_dir,
         "Student model directory to train (from `disranker init`, `mlm` or an earlier run's OUT/model)")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->add_option("--teacher-run", command->options.teacher_run_path,
                  "TREC run with the teacher's scores (from `disranker score` with the teacher)")
      ->required();
  sub->add_option("--queries", command->options.queries_path, "Queries TSV: qid<TAB>query")->required();
  sub->add_option("--docs", command->options.docs_path, "Documents TSV: docid<TAB>title<TAB>text")
      ->required();
  sub->add_option("--qrels", command->options.qrels_path,
                  "Labels (TREC qrels), needed by --pairs pos-neg; unjudged documents are label 0");
  sub->add_option("--loss", command->options.train.loss.name,
                  "hybrid (DisRanker), margin-mse (pairs only), point-mse (scores only), kl (listwise)")
      ->capture_default_str();
  sub->add_option("--alpha", command->options.train.loss.alpha,
                  "hybrid: weight of the point-wise MSE (1 - alpha on the pair-wise margin MSE)")
      ->capture_default_str();
  sub->add_option("--pairs", command->pairs,
                  "Pairs of the margin term: all (every pair of a group) or pos-neg (label-discordant pairs; "
                  "needs --qrels)")
      ->capture_default_str();
  sub->add_option(
         "--teacher-norm", command->norm,
         "Teacher score normalisation: none; query (z-score per query: only the order and relative gaps "
         "count); global (one affine map of the pool to mean 0, sd 1). Point-MSE trains the student to "
         "the normalised scale")
      ->capture_default_str();
  sub->add_option("--temperature", command->options.train.loss.temperature, "kl: softmax temperature")
      ->capture_default_str();
  sub->add_option("--group-size", command->options.train.batching.sample.group_size,
                  "Documents drawn uniformly per query and micro-batch (0: all of the query's)")
      ->capture_default_str();
  sub->add_option("--groups-per-batch", command->options.train.batching.groups_per_batch,
                  "Queries per micro-batch")
      ->capture_default_str();
  sub->add_option("--max-candidates", command->options.groups.max_candidates,
                  "Keep only the teacher run's top N documents of each query (0: all)")
      ->capture_default_str();
  add_rank_validation_options(*sub, command->options);
  add_config_option(*sub);
  add_run_options(*sub, command->run);
  add_optimizer_options(*sub, command->optimizer);
  sub->callback([command, sub] { command->execute(*sub); });
}

}  // namespace disranker::cli
