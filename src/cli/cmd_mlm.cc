// disranker mlm: masked-LM pre-training of the BERT student from scratch (BERT's 15% / 80-10-10 recipe) on
// documents or queries, before distillation. The library does the work (train/mlm.h); this file binds the
// flags.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "cli/stage_command.h"
#include "cli/train_options.h"
#include "model/ranker.h"
#include "model/runtime.h"
#include "train/mlm.h"

namespace disranker::cli {
namespace {

struct MlmCommand {
  std::string model_dir;
  MlmOptions options;
  RunOptions run;
  OptimizerOptions optimizer;

  void execute(const CLI::App& command) {
    validate(options);
    auto ranker = open_stage_model(model_dir, run, optimizer, command);
    const auto summary = run_mlm(*ranker, model_dir, options, run, optimizer);
    print_stage_summary("mlm", summary, run.out_dir, {{"tokens_per_second", "tokens/s"}});
    if (summary.contains("validation")) {
      std::fprintf(stderr, "mlm: held-out masked-token loss %.4f, accuracy %.4f (held out: %s)\n",
                   summary["validation"].value("loss", 0.0), summary["validation"].value("accuracy", 0.0),
                   summary.value("validation_source", std::string()).c_str());
    }
  }
};

}  // namespace

void register_mlm(CLI::App& app) {
  auto command = std::make_shared<MlmCommand>();
  command->optimizer.learning_rate = 5e-4;
  CLI::App* sub = app.add_subcommand(
      "mlm",
      "Masked-LM pre-training of the BERT student from scratch (15% of tokens chosen: 80% [MASK], 10% "
      "random, "
      "10% kept), on texts packed into [CLS] text [SEP] text [SEP] ... sequences. Then run distill or sft on "
      "OUT/model. With a pretrained Hugging Face BERT, skip this stage.\n"
      "Example: disranker init --config configs/models/bert-mini.json --tokenizer vocab.txt --mlm-head --out "
      "student-init && disranker mlm --model student-init --text docs.tsv --out runs/mlm");
  sub->add_option("--model", command->model_dir,
                  "BERT model directory with an MLM head (`disranker init --mlm-head`)")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->add_option("--text", command->options.text_paths,
                  "Documents TSV `docid<TAB>title<TAB>text` or queries TSV `qid<TAB>query` (repeatable)")
      ->required();
  sub->add_option(
      "--dev-text", command->options.dev_text_path,
      "Held-out texts (same formats) for masked-token loss and accuracy; default: every 100th input "
      "text is held out");
  sub->add_option("--max-length", command->options.max_length,
                  "Tokens per sequence; longer texts are split into pieces")
      ->capture_default_str();
  sub->add_option("--mask-prob", command->options.mask_prob, "Share of the non-special tokens chosen")
      ->capture_default_str();
  sub->add_option("--batch-size", command->options.batch_size, "Sequences per micro-batch")
      ->capture_default_str();
  add_config_option(*sub);
  add_run_options(*sub, command->run);
  add_optimizer_options(*sub, command->optimizer);
  sub->callback([command, sub] { command->execute(*sub); });
}

}  // namespace disranker::cli
