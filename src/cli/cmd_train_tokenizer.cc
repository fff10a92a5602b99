// placeholder: being written
#include "cli/command.h"

namespace disranker::cli {
void register_train_tokenizer(CLI::App&) {}
}  // namespace disranker::cli
