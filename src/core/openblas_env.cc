#include "core/openblas_env.h"

#include <unistd.h>

#include <cstdlib>

namespace disranker {

void ensure_openblas_coretype(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const char* core = nullptr;
  if (__builtin_cpu_supports("avx512f")) {
    core = "SkylakeX";
  } else if (__builtin_cpu_supports("avx2")) {
    core = "Haswell";
  }
  if (core == nullptr) return;
  ::setenv("OPENBLAS_CORETYPE", core, 0);
  ::execv("/proc/self/exe", argv);
  // execv only returns on failure (no /proc): carry on with the default kernels rather than fail.
}

}  // namespace disranker
