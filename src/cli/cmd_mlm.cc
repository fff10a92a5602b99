// placeholder: being written
#include "cli/command.h"

namespace disranker::cli {
void register_mlm(CLI::App&) {}
}  // namespace disranker::cli
