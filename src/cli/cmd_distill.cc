// placeholder: being written
#include "cli/command.h"

namespace disranker::cli {
void register_distill(CLI::App&) {}
}  // namespace disranker::cli
