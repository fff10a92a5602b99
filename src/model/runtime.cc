#include "model/runtime.h"

#include <dlfcn.h>

#include "core/error.h"
#include "dist/launch.h"

namespace disranker {

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available()) {
      throw Error("--device " + name +
                  ": CUDA is not available (this libtorch build or machine has no GPU); use cpu");
    }
    // A data-parallel job's ranks on one machine each take their own GPU when none is named.
    const dist::Launch launch = dist::launch_from_environment();
    if (name == "cuda" && launch.distributed()) {
      return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(launch.local_rank));
    }
    try {
      return torch::Device(name);
    } catch (const c10::Error&) {
      throw Error("--device " + name + ": not a valid CUDA device name (cuda or cuda:N)");
    }
  }
  throw Error("--device " + name + ": expected cpu, cuda or cuda:N");
}

void set_torch_threads(int threads) {
  // "One per core" shares the cores among the ranks of a data-parallel job on this machine.
  const int n = threads > 0 ? threads : dist::default_threads(dist::launch_from_environment());
  at::set_num_threads(n);
}

std::string runtime_summary(const torch::Device& device) {
  std::string blas = "unknown BLAS";
  // OpenBLAS exports its kernel name; looked up at run time so that any BLAS works.
  using CoreName = char* (*)();
  if (auto* fn = reinterpret_cast<CoreName>(::dlsym(RTLD_DEFAULT, "openblas_get_corename")); fn != nullptr) {
    blas = std::string("OpenBLAS ") + fn();
  }
  return "device " + device.str() + ", " + std::to_string(at::get_num_threads()) + " threads, " + blas;
}

}  // namespace disranker
