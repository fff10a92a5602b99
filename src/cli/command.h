// How subcommands slot into the CLI: each cmd_*.cc defines one `register_<name>` function that adds a CLI11
// subcommand and sets its callback. main.cc calls them all; adding a command means one file and one line
// there.
#pragma once

#include <CLI/CLI.hpp>

namespace disranker::cli {

void register_eval(CLI::App& app);
void register_compare(CLI::App& app);
void register_index(CLI::App& app);
void register_retrieve(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_clicks(CLI::App& app);
void register_train_tokenizer(CLI::App& app);
void register_report(CLI::App& app);
void register_export(CLI::App& app);
void register_quantize(CLI::App& app);
void register_online(CLI::App& app);
#ifdef DISRANKER_HAVE_TORCH
void register_generate(CLI::App& app);
void register_init(CLI::App& app);
void register_score(CLI::App& app);
void register_cpt(CLI::App& app);
void register_mlm(CLI::App& app);
void register_sft(CLI::App& app);
void register_distill(CLI::App& app);
void register_pipeline(CLI::App& app);
void register_serve(CLI::App& app);
#endif

}  // namespace disranker::cli
