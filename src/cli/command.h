// How subcommands slot into the CLI: each cmd_*.cc defines one `register_<name>` function that adds a CLI11
// subcommand and sets its callback. main.cc calls them all; adding a command means one file and one line there.
#pragma once

#include <CLI/CLI.hpp>

namespace disranker::cli {

void register_eval(CLI::App& app);
void register_compare(CLI::App& app);
void register_index(CLI::App& app);
void register_retrieve(CLI::App& app);
void register_tokenize(CLI::App& app);
#ifdef DISRANKER_HAVE_TORCH
void register_generate(CLI::App& app);
#endif

}  // namespace disranker::cli
