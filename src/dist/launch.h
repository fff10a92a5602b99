// How this process was started: alone, or as one rank of a data-parallel job. The job's launcher says so in
// the environment, and DisRanker reads the two conventions users already have:
//   torchrun / Kubernetes / hand-written scripts: RANK, WORLD_SIZE (and LOCAL_RANK, LOCAL_WORLD_SIZE)
//   Open MPI's mpirun:                            OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE (and _LOCAL_...)
// plus MASTER_ADDR / MASTER_PORT, where rank 0 listens for the others (the c10d TCPStore rendezvous).
// mpirun is only the launcher: the gradients travel over c10d's Gloo process group (dist/process_group.h),
// not MPI. docs/distributed.md shows the launch lines for one machine, several machines, Slurm and
// Kubernetes. No libtorch here, so that the parsing is tested without it.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace disranker::dist {

struct Launch {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;        // rank among the processes of this machine
  int local_world_size = 1;  // processes on this machine: they share its cores
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string launcher = "single process";  // which convention was read, for the log line

  bool distributed() const { return world_size > 1; }
  bool is_root() const { return rank == 0; }
};

using Getenv = std::function<const char*(const char* name)>;

// Reads the launch from the environment (RANK/WORLD_SIZE first, then Open MPI's). A malformed or
// inconsistent value (RANK >= WORLD_SIZE, a port out of range, WORLD_SIZE without RANK) is an Error naming
// the variable. LOCAL_WORLD_SIZE, when absent, is WORLD_SIZE if MASTER_ADDR is this machine (unset or
// loopback), else 1.
Launch launch_from_environment(const Getenv& getenv);
Launch launch_from_environment();  // the process's own environment

// The variables ("NAME=value", the RANK/WORLD_SIZE convention) from which launch_from_environment reads
// `launch` back: for a program that starts the ranks itself (`disranker pipeline --ranks`).
std::vector<std::string> launch_environment(const Launch& launch);

// Intra-op threads when the user asked for "one per core" (0): the machine's cores shared among this
// machine's ranks, so that two ranks on two cores do not each start two threads.
int default_threads(const Launch& launch);

}  // namespace disranker::dist
