// The ranks of a data-parallel job as one object: libtorch's own collective engine, c10d's Gloo process group
// (TCP between processes and machines), joined through a TCPStore rendezvous at MASTER_ADDR:MASTER_PORT that
// rank 0 hosts. One process alone is a group of size 1 whose collectives return at once, so the trainer and
// the scorer have a single code path. Debian's libtorch 1.13 has Gloo but no C++ DistributedDataParallel:
// the trainer all-reduces its gradients itself (train/trainer.cc).
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "dist/launch.h"

namespace disranker::dist {

class Group {
 public:
  Group();  // this process alone
  // Joins the job that `launch` describes; blocks until all its ranks have joined (or `timeout`, an Error).
  Group(const Launch& launch, std::chrono::milliseconds timeout);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  const Launch& launch() const { return launch_; }
  int rank() const { return launch_.rank; }
  int size() const { return launch_.world_size; }
  bool is_root() const { return launch_.rank == 0; }
  bool distributed() const { return launch_.world_size > 1; }

  // Sums `tensor` (contiguous, CPU) over the ranks in place; every rank ends with the same values.
  void all_reduce_sum(torch::Tensor& tensor);
  // Sums the gradients of `parameters` over the ranks, packed into one buffer per dtype (one collective per
  // step, not one per tensor). A parameter without a gradient on this rank (it ran no micro-batch of the
  // step) contributes zeros and receives the sum.
  void all_reduce_gradients(const std::vector<torch::Tensor>& parameters);
  // Overwrites every rank's `tensors` with rank 0's values (same shapes and dtypes on every rank).
  void broadcast_from_root(const std::vector<torch::Tensor>& tensors);
  // Every rank's bytes, indexed by rank.
  std::vector<std::string> all_gather(const std::string& bytes);
  void barrier();

 private:
  struct Backend;
  Launch launch_;
  std::unique_ptr<Backend> backend_;
};

// The job this process belongs to, joined from the environment (dist/launch.h) on first use, which logs one
// line naming the rank, the launcher and the rendezvous. DISRANKER_DIST_TIMEOUT (seconds, default 600) bounds
// the rendezvous and every collective, so that a rank that died does not leave the others waiting forever.
Group& world();

}  // namespace disranker::dist
