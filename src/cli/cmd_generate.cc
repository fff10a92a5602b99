// Placeholder: filled in by the model work (issue 4).
#include "cli/command.h"
namespace disranker::cli {
void register_generate(CLI::App&) {}
}  // namespace disranker::cli
