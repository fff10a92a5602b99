#include "dist/launch.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <string_view>
#include <thread>

#include "core/error.h"

namespace disranker::dist {
namespace {

int read_int(const Getenv& getenv, const char* name, int fallback, int minimum, int maximum) {
  const char* value = getenv(name);
  if (value == nullptr) return fallback;
  const std::string_view text(value);
  int parsed = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), parsed);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    throw Error("environment", 0, name, "expected an integer, got '" + std::string(text) + "'");
  }
  if (parsed < minimum || parsed > maximum) {
    throw Error("environment", 0, name,
                std::to_string(parsed) + " is out of range [" + std::to_string(minimum) + ", " +
                    std::to_string(maximum) + "]");
  }
  return parsed;
}

struct Convention {
  const char* size;
  const char* rank;
  const char* local_size;
  const char* local_rank;
  const char* name;
};
constexpr Convention kConventions[] = {
    {"WORLD_SIZE", "RANK", "LOCAL_WORLD_SIZE", "LOCAL_RANK", "RANK/WORLD_SIZE"},
    {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
     "OMPI_COMM_WORLD_LOCAL_RANK", "Open MPI (mpirun)"}};

bool is_loopback(const std::string& address) {
  return address == "127.0.0.1" || address == "localhost" || address == "::1";
}

}  // namespace

Launch launch_from_environment(const Getenv& getenv) {
  Launch launch;
  constexpr int kMaxRanks = 1 << 20;
  if (const char* address = getenv("MASTER_ADDR"); address != nullptr) {
    if (*address == '\0') throw Error("environment", 0, "MASTER_ADDR", "is empty");
    launch.master_addr = address;
  }
  launch.master_port = read_int(getenv, "MASTER_PORT", launch.master_port, 1, 65535);
  for (const auto& convention : kConventions) {
    if (getenv(convention.size) == nullptr) continue;
    launch.world_size = read_int(getenv, convention.size, 1, 1, kMaxRanks);
    if (getenv(convention.rank) == nullptr) {
      throw Error("environment", 0, convention.rank,
                  std::string("not set, but ") + convention.size + " is: every rank needs its own " +
                      convention.rank);
    }
    launch.rank = read_int(getenv, convention.rank, 0, 0, launch.world_size - 1);
    const int local_default = is_loopback(launch.master_addr) ? launch.world_size : 1;
    launch.local_world_size = read_int(getenv, convention.local_size, local_default, 1, launch.world_size);
    launch.local_rank = read_int(getenv, convention.local_rank, launch.rank % launch.local_world_size, 0,
                                 launch.local_world_size - 1);
    launch.launcher = convention.name;
    break;
  }
  return launch;
}

std::vector<std::string> launch_environment(const Launch& launch) {
  const Convention& torchrun = kConventions[0];
  return {std::string(torchrun.rank) + "=" + std::to_string(launch.rank),
          std::string(torchrun.size) + "=" + std::to_string(launch.world_size),
          std::string(torchrun.local_rank) + "=" + std::to_string(launch.local_rank),
          std::string(torchrun.local_size) + "=" + std::to_string(launch.local_world_size),
          "MASTER_ADDR=" + launch.master_addr,
          "MASTER_PORT=" + std::to_string(launch.master_port)};
}

Launch launch_from_environment() {
  return launch_from_environment([](const char* name) { return std::getenv(name); });
}

int default_threads(const Launch& launch) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, launch.local_world_size));
}

}  // namespace disranker::dist
