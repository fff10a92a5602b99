// disranker init: a freshly initialised model directory (config preset + tokenizer), the starting point of
// the training stages: `mlm` (BERT student with an MLM head), `cpt` (decoder teacher with an LM head), `sft`.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "cli/command.h"
#include "core/error.h"
#include "model/lora.h"
#include "model/ranker.h"
#include "model/runtime.h"

namespace disranker::cli {
namespace {

struct InitCommand {
  std::string config_path;
  std::string tokenizer_path;
  std::string out_dir;
  std::string role_name;  // empty: student for BERT, teacher for decoders
  std::int64_t max_length = 256;
  std::uint64_t seed = 42;
  bool no_lm_head = false;
  bool mlm_head = false;

  void run() const {
    set_torch_threads(1);  // initialisation is cheap; leave the cores to whatever else runs
    if (max_length < 1) throw Error("--max-length must be >= 1");
    RankerCreateOptions options;
    options.max_length = max_length;
    options.seed = seed;
    options.lm_head = !no_lm_head;
    options.mlm_head = mlm_head;
    const bool is_bert = read_model_type(config_path) == "bert";
    if (is_bert && no_lm_head) throw Error("--no-lm-head is for decoder configs (a BERT has no LM head)");
    if (!is_bert && mlm_head)
      throw Error("--mlm-head is for BERT configs (a decoder's LM head is kept by default)");
    if (role_name.empty()) {
      options.role = is_bert ? RankerRole::kStudent : RankerRole::kTeacher;
    } else if (role_name == "student") {
      options.role = RankerRole::kStudent;
    } else if (role_name == "teacher") {
      options.role = RankerRole::kTeacher;
    } else {
      throw Error("--role must be student or teacher, got '" + role_name + "'");
    }

    const auto ranker = Ranker::create(config_path, tokenizer_path, torch::Device(torch::kCPU), options);
    nlohmann::json provenance = {
        {"stage", "init"},
        {"config", std::filesystem::absolute(config_path).lexically_normal().string()},
        {"tokenizer", std::filesystem::absolute(tokenizer_path).lexically_normal().string()},
        {"seed", seed}};
    ranker->save(out_dir, provenance);

    std::string heads;
    if (auto* bert = ranker->bert()) {
      heads = bert->heads().mlm ? "ranking + MLM heads" : "ranking head";
    } else {
      heads = ranker->decoder()->options().lm_head ? "score + LM heads" : "score head";
    }
    std::cout << "init: wrote " << out_dir << " (" << (is_bert ? "bert" : "decoder") << ", "
              << count_parameters(ranker->module()) << " parameters, " << heads << ", vocabulary "
              << ranker->tokenizer().vocab_size() << ", role " << to_string(ranker->manifest().role)
              << ", max_length " << ranker->manifest().max_length << ", seed " << seed << ")\n";
  }
};

}  // namespace

void register_init(CLI::App& app) {
  auto command = std::make_shared<InitCommand>();
  CLI::App* sub = app.add_subcommand(
      "init",
      "Write a freshly initialised model directory (Hugging Face layout + disranker.json) from a config "
      "preset "
      "and a tokenizer: the starting point of `mlm` (BERT, with --mlm-head), `cpt` (decoder, LM head kept) "
      "and "
      "`sft`.\nExample: disranker init --config configs/models/bert-mini.json "
      "--tokenizer ../shared/data/weights/vocab/bert-base-uncased-vocab.txt --out models/bert-mini-init");
  sub->add_option(
         "--config", command->config_path,
         "config.json preset (configs/models/*.json): model_type bert, llama or qwen2; vocab_size and "
         "the special token ids are taken from the tokenizer")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option(
         "--tokenizer", command->tokenizer_path,
         "vocab.txt (WordPiece), tokenizer.json (WordPiece or BPE) or a directory holding one; copied "
         "into the model directory. Decoders need an eos token (the </s> that is scored)")
      ->required()
      ->check(CLI::ExistingPath);
  sub->add_option("--out", command->out_dir, "Model directory to write (replaced atomically if it is one)")
      ->required();
  sub->add_option("--role", command->role_name,
                  "student or teacher (disranker.json); default: student for BERT, teacher for decoders");
  sub->add_option("--max-length", command->max_length, "Pair budget in tokens, special tokens included")
      ->capture_default_str();
  sub->add_option("--seed", command->seed, "Seed of the random initialisation")->capture_default_str();
  sub->add_flag("--no-lm-head", command->no_lm_head,
                "Decoder: no LM head (a ranking-only teacher; CPT needs the LM head)");
  sub->add_flag("--mlm-head", command->mlm_head, "BERT: add the MLM head, for `disranker mlm` pre-training");
  sub->callback([command] { command->run(); });
}

}  // namespace disranker::cli
