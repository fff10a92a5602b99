// placeholder: being written
#include "cli/command.h"

namespace disranker::cli {
void register_score(CLI::App&) {}
}  // namespace disranker::cli
