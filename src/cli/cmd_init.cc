// placeholder: being written
#include "cli/command.h"

namespace disranker::cli {
void register_init(CLI::App&) {}
}  // namespace disranker::cli
