// disranker sft: rank fine-tuning (the paper's second stage) of any ranker on graded labels — the decoder
// teacher (optionally with LoRA), or the BERT student as the "labels only" baseline. The library does the
// work (train/sft.h); this file binds the flags.
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>

#include "cli/command.h"
#include "cli/stage_command.h"
#include "cli/train_options.h"
#include "core/error.h"
#include "model/ranker.h"
#include "model/runtime.h"
#include "train/sft.h"

namespace disranker::cli {
namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

struct SftCommand {
  std::string model_dir;
  SftOptions options;
  std::string lora_targets = "q_proj,v_proj";
  bool keep_no_positive = false;
  RunOptions run;
  OptimizerOptions optimizer;

  void execute(const CLI::App& command) {
    options.lora.target_modules = split_list(lora_targets);
    options.groups.require_positive = !keep_no_positive;
    validate(options);
    auto ranker = open_stage_model(model_dir, run, optimizer, command);
    const auto summary = run_sft(*ranker, model_dir, options, run, optimizer);
    print_stage_summary("sft", summary, run.out_dir, {{"pairs_per_second", "pairs/s"}});
  }
};

}  // namespace

void register_sft(CLI::App& app) {
  auto command = std::make_shared<SftCommand>();
  command->optimizer.learning_rate = 1e-4;
  CLI::App* sub = app.add_subcommand(
      "sft",
      "Rank fine-tuning on graded labels: each micro-batch holds --groups-per-batch queries, each with 1 "
      "positive "
      "and --group-size - 1 negatives of a lower label (from the candidate run, or the judged documents), "
      "scored "
      "in one pass and trained with a listwise, pairwise or pointwise loss. Works for the decoder teacher "
      "(score "
      "from the final </s>; LoRA with --lora-r) and for the BERT student (the labels-only baseline).\n"
      "Example: disranker sft --model teacher-cpt/model --queries wikiqa-train/queries.tsv "
      "--docs wikiqa-train/docs.tsv --qrels wikiqa-train/qrels.txt --dev wikiqa-dev --dev-require-relevant "
      "--out runs/sft");
  sub->add_option("--model", command->model_dir,
                  "Model directory to fine-tune (from `disranker init`, `cpt` or an earlier run's OUT/model)")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->add_option("--queries", command->options.queries_path, "Training queries TSV: qid<TAB>query")
      ->required();
  sub->add_option("--docs", command->options.docs_path, "Training documents TSV: docid<TAB>title<TAB>text")
      ->required();
  sub->add_option("--qrels", command->options.qrels_path,
                  "Training labels (TREC qrels; unjudged candidates are 0)")
      ->required();
  sub->add_option(
      "--run", command->options.run_path,
      "Candidate run (TREC) whose documents are the negatives; without it the judged documents are "
      "the candidates (WikiQA)");
  sub->add_option(
         "--loss", command->options.train.loss.name,
         "softmax (1 positive vs the negatives; graded lists: ListNet-style), hinge, ranknet, mse, bce")
      ->capture_default_str();
  sub->add_option("--margin", command->options.train.loss.margin, "Margin of the hinge loss")
      ->capture_default_str();
  sub->add_option("--group-size", command->options.train.batching.sample.group_size,
                  "Documents per training group: 1 positive + (N - 1) negatives; 0: the whole graded list")
      ->capture_default_str();
  sub->add_option("--groups-per-batch", command->options.train.batching.groups_per_batch,
                  "Queries per micro-batch")
      ->capture_default_str();
  sub->add_option("--max-candidates", command->options.groups.max_candidates,
                  "Keep only the top N candidates of each query from --run (0: all)")
      ->capture_default_str();
  sub->add_flag(
      "--keep-no-positive", command->keep_no_positive,
      "Keep queries without a positive label (dropped and counted by default: a ranking loss learns "
      "nothing from them)");
  sub->add_option(
         "--lora-r", command->options.lora_rank,
         "LoRA rank for the decoder (0: full fine-tuning); only the adapters and the score head train")
      ->capture_default_str();
  sub->add_option("--lora-alpha", command->options.lora.alpha, "LoRA alpha (scale alpha / r)")
      ->capture_default_str();
  sub->add_option("--lora-dropout", command->options.lora.dropout, "Dropout on the LoRA input")
      ->capture_default_str();
  sub->add_option(
         "--lora-targets", command->lora_targets,
         "Comma-separated projections to adapt: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
      ->capture_default_str();
  add_rank_validation_options(*sub, command->options);
  add_config_option(*sub);
  add_run_options(*sub, command->run);
  add_optimizer_options(*sub, command->optimizer);
  sub->callback([command, sub] { command->execute(*sub); });
}

}  // namespace disranker::cli
