// Placeholder: filled in by the tokenizer work (issue 3).
#include "cli/command.h"
namespace disranker::cli {
void register_tokenize(CLI::App&) {}
}  // namespace disranker::cli
