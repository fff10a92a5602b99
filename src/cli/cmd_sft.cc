// placeholder: being written
#include "cli/command.h"

namespace disranker::cli {
void register_sft(CLI::App&) {}
}  // namespace disranker::cli
