// placeholder: being written
#include "cli/command.h"

namespace disranker::cli {
void register_cpt(CLI::App&) {}
}  // namespace disranker::cli
