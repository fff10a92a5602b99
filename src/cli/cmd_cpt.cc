// disranker cpt: continued pre-training of the decoder teacher on "query → clicked title + summary" pairs
// (the paper's first stage), optionally mixed with plain documents. The library does the work (train/cpt.h);
// this file binds the flags.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "cli/stage_command.h"
#include "cli/train_options.h"
#include "model/ranker.h"
#include "model/runtime.h"
#include "train/cpt.h"

namespace disranker::cli {
namespace {

struct CptCommand {
  std::string model_dir;
  CptOptions options;
  bool no_pack = false;
  RunOptions run;
  OptimizerOptions optimizer;

  void execute(const CLI::App& command) {
    options.pack = !no_pack;
    validate(options);
    auto ranker = open_stage_model(model_dir, run, optimizer, command);
    const auto summary = run_cpt(*ranker, model_dir, options, run, optimizer);
    print_stage_summary("cpt", summary, run.out_dir,
                        {{"target_tokens_per_second", "target tokens/s"}, {"tokens_per_second", "tokens/s"}});
    if (summary.contains("validation")) {
      std::fprintf(stderr, "cpt: dev loss %.4f, perplexity %.2f\n", summary["validation"].value("loss", 0.0),
                   summary["validation"].value("perplexity", 0.0));
    }
  }
};

}  // namespace

void register_cpt(CLI::App& app) {
  auto command = std::make_shared<CptCommand>();
  command->optimizer.learning_rate = 1e-4;
  CLI::App* sub = app.add_subcommand(
      "cpt",
      "Continued pre-training of the decoder teacher: causal LM on `query → title + summary` (loss on the "
      "title, "
      "summary and </s> only), in the teacher's ranking template, optionally mixed with plain documents.\n"
      "Example: disranker cpt --model teacher-init --pairs cpt-pairs.tsv --text docs.tsv --out runs/cpt");
  sub->add_option("--model", command->model_dir,
                  "Decoder model directory with an LM head (from `disranker init` with a decoder config)")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->add_option("--pairs", command->options.pairs_path,
                  "Pairs TSV `query<TAB>title<TAB>summary` (e.g. from `disranker clicks cpt-pairs`)")
      ->required();
  sub->add_option("--text", command->options.text_paths,
                  "Documents TSV `docid<TAB>title<TAB>text` mixed in as plain text (repeatable)");
  sub->add_option("--text-ratio", command->options.text_ratio,
                  "Share of the training examples taken from --text (all documents when there are fewer)")
      ->capture_default_str();
  sub->add_option("--dev-pairs", command->options.dev_pairs_path,
                  "Pairs TSV for epoch-end validation loss and perplexity (on the target tokens)");
  sub->add_option("--max-length", command->options.max_length,
                  "Tokens per row; a longer pair loses its summary's end first, then its title's")
      ->capture_default_str();
  sub->add_option("--batch-size", command->options.batch_size, "Rows per micro-batch")->capture_default_str();
  sub->add_flag(
      "--no-pack", command->no_pack,
      "One example per row (dynamic padding, length buckets) instead of packing examples into full rows");
  add_config_option(*sub);
  add_run_options(*sub, command->run);
  add_optimizer_options(*sub, command->optimizer);
  sub->callback([command, sub] { command->execute(*sub); });
}

}  // namespace disranker::cli
