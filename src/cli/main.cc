// disranker: one binary, one subcommand per stage. Errors from the library arrive as disranker::Error with
// "file:line: field: what is wrong"; they are printed and the process exits with status 1.
#include <malloc.h>

#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "core/openblas_env.h"

int main(int argc, char** argv) {
  disranker::ensure_openblas_coretype(argv);
  // libtorch allocates and frees its activations batch after batch; above glibc's mmap threshold every one is a
  // fresh mmap whose pages fault in zeroed. Keeping such blocks in the heap instead took teacher scoring on
  // this machine (decoder-mini, TREC DL pairs, 1 thread) from 1.37 M page faults and 18.1 s to 0.06 M and
  // 15.6 s, scores unchanged (docs/distributed.md). Freed memory stays reserved up to the trim threshold.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  CLI::App app{"DisRanker: distil an LLM's relevance judgement into a fast BERT ranker for web search"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "disranker 0.1.0");
  app.set_config("--config", "",
                 "TOML file of settings, one [command] section per command (e.g. [sft]); flags win");
  disranker::cli::register_eval(app);
  disranker::cli::register_compare(app);
  disranker::cli::register_index(app);
  disranker::cli::register_retrieve(app);
  disranker::cli::register_tokenize(app);
  disranker::cli::register_clicks(app);
  disranker::cli::register_train_tokenizer(app);
  disranker::cli::register_report(app);
  disranker::cli::register_export(app);
  disranker::cli::register_quantize(app);
  disranker::cli::register_online(app);
#ifdef DISRANKER_HAVE_TORCH
  disranker::cli::register_generate(app);
  disranker::cli::register_init(app);
  disranker::cli::register_cpt(app);
  disranker::cli::register_sft(app);
  disranker::cli::register_score(app);
  disranker::cli::register_mlm(app);
  disranker::cli::register_distill(app);
  disranker::cli::register_pipeline(app);
  disranker::cli::register_serve(app);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const disranker::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
