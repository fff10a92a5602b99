// placeholder: being written
#include "cli/command.h"

namespace disranker::cli {
void register_clicks(CLI::App&) {}
}  // namespace disranker::cli
