// Process-wide libtorch settings every command that runs a model applies first: the device, the number of
// threads (libtorch 1.13 defaults to 1 here), and a log line naming the BLAS kernels in use.
#pragma once

#include <torch/torch.h>

#include <string>

namespace disranker {

// "cpu", "cuda" or "cuda:N"; plain "cuda" in a data-parallel job is cuda:LOCAL_RANK. Throws Error when CUDA is asked for and this libtorch or machine has none.
torch::Device parse_device(const std::string& name);

// Intra-op threads for libtorch (and OpenBLAS through OpenMP); 0 means one per core, shared among the ranks
// of a data-parallel job on this machine (dist/launch.h).
void set_torch_threads(int threads);

// One line for logs: threads, the OpenBLAS kernel set (e.g. "SkylakeX") when OpenBLAS is the BLAS, the device.
std::string runtime_summary(const torch::Device& device);

}  // namespace disranker
