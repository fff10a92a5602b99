// How a process learns its place in a data-parallel job from the launcher's environment (dist/launch.h).
#include "dist/launch.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <thread>

#include "test_util.h"

namespace disranker::dist {
namespace {

// An environment of exactly these variables.
Launch launch_with(const std::map<std::string, std::string>& variables) {
  return launch_from_environment([&variables](const char* name) -> const char* {
    const auto it = variables.find(name);
    return it == variables.end() ? nullptr : it->second.c_str();
  });
}

TEST(Launch, NoLauncherVariablesMeanOneProcessAlone) {
  const Launch launch = launch_with({});
  EXPECT_FALSE(launch.distributed());
  EXPECT_TRUE(launch.is_root());
  EXPECT_EQ(launch.world_size, 1);
  EXPECT_EQ(launch.master_addr, "127.0.0.1");
  EXPECT_EQ(launch.master_port, 29500);
  EXPECT_EQ(launch.launcher, "single process");
}

TEST(Launch, TorchrunVariablesGiveTheRankAndTheRendezvous) {
  const Launch launch = launch_with({{"WORLD_SIZE", "8"},
                                     {"RANK", "5"},
                                     {"LOCAL_WORLD_SIZE", "4"},
                                     {"LOCAL_RANK", "1"},
                                     {"MASTER_ADDR", "node0.cluster"},
                                     {"MASTER_PORT", "23456"}});
  EXPECT_TRUE(launch.distributed());
  EXPECT_FALSE(launch.is_root());
  EXPECT_EQ(launch.rank, 5);
  EXPECT_EQ(launch.world_size, 8);
  EXPECT_EQ(launch.local_rank, 1);
  EXPECT_EQ(launch.local_world_size, 4);
  EXPECT_EQ(launch.master_addr, "node0.cluster");
  EXPECT_EQ(launch.master_port, 23456);
  EXPECT_EQ(launch.launcher, "RANK/WORLD_SIZE");
}

TEST(Launch, OpenMpiVariablesAreReadWhenTorchrunOnesAreAbsent) {
  const Launch launch = launch_with({{"OMPI_COMM_WORLD_SIZE", "4"},
                                     {"OMPI_COMM_WORLD_RANK", "3"},
                                     {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                                     {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}});
  EXPECT_EQ(launch.rank, 3);
  EXPECT_EQ(launch.world_size, 4);
  EXPECT_EQ(launch.local_world_size, 2);
  EXPECT_EQ(launch.local_rank, 1);
  EXPECT_EQ(launch.launcher, "Open MPI (mpirun)");
  // Explicit RANK/WORLD_SIZE win over what mpirun exports.
  EXPECT_EQ(
      launch_with(
          {{"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_RANK", "3"}, {"WORLD_SIZE", "2"}, {"RANK", "0"}})
          .world_size,
      2);
}

// What a program that starts the ranks itself puts in each rank's environment reads back as the same launch.
TEST(Launch, ItsEnvironmentVariablesReadBackAsTheSameLaunch) {
  Launch launch;
  launch.rank = 3, launch.world_size = 4, launch.local_rank = 1, launch.local_world_size = 2;
  launch.master_addr = "node0", launch.master_port = 40001;
  std::map<std::string, std::string> variables;
  for (const std::string& entry : launch_environment(launch)) {
    const std::size_t equals = entry.find('=');
    ASSERT_NE(equals, std::string::npos) << entry;
    variables[entry.substr(0, equals)] = entry.substr(equals + 1);
  }
  EXPECT_EQ(variables.size(), 6u);
  const Launch read = launch_with(variables);
  EXPECT_EQ(read.rank, 3);
  EXPECT_EQ(read.world_size, 4);
  EXPECT_EQ(read.local_rank, 1);
  EXPECT_EQ(read.local_world_size, 2);
  EXPECT_EQ(read.master_addr, "node0");
  EXPECT_EQ(read.master_port, 40001);
  EXPECT_EQ(read.launcher, "RANK/WORLD_SIZE");
}

TEST(Launch, LocalRanksDefaultToTheWholeJobOnLoopbackAndToOneElsewhere) {
  // Every rank on this machine: they share its cores.
  Launch local = launch_with({{"WORLD_SIZE", "2"}, {"RANK", "1"}});
  EXPECT_EQ(local.local_world_size, 2);
  EXPECT_EQ(local.local_rank, 1);
  // A remote rendezvous and no LOCAL_WORLD_SIZE: assume one rank per machine.
  Launch remote = launch_with({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "10.0.0.1"}});
  EXPECT_EQ(remote.local_world_size, 1);
  EXPECT_EQ(remote.local_rank, 0);
}

TEST(Launch, DefaultThreadsShareTheCoresAmongTheLocalRanks) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_EQ(default_threads(launch_with({})), cores);
  Launch crowded = launch_with({{"WORLD_SIZE", "64"}, {"RANK", "0"}});
  EXPECT_EQ(default_threads(crowded), std::max(1, cores / 64));  // never 0
  EXPECT_GE(default_threads(crowded), 1);
}

TEST(Launch, BadValuesAreErrorsNamingTheVariable) {
  EXPECT_ERROR(launch_with({{"WORLD_SIZE", "2"}}), "environment", "RANK", "not set");
  EXPECT_ERROR(launch_with({{"WORLD_SIZE", "2"}, {"RANK", "2"}}), "environment", "RANK", "out of range");
  EXPECT_ERROR(launch_with({{"WORLD_SIZE", "two"}, {"RANK", "0"}}), "environment", "WORLD_SIZE", "integer");
  EXPECT_ERROR(launch_with({{"WORLD_SIZE", "0"}, {"RANK", "0"}}), "environment", "WORLD_SIZE",
               "out of range");
  EXPECT_ERROR(launch_with({{"WORLD_SIZE", "2"}, {"RANK", "-1"}}), "environment", "RANK", "out of range");
  EXPECT_ERROR(launch_with({{"MASTER_PORT", "70000"}}), "environment", "MASTER_PORT", "out of range");
  EXPECT_ERROR(launch_with({{"MASTER_PORT", "29500x"}}), "environment", "MASTER_PORT", "integer");
  EXPECT_ERROR(launch_with({{"MASTER_ADDR", ""}}), "environment", "MASTER_ADDR", "empty");
  EXPECT_ERROR(launch_with({{"WORLD_SIZE", "4"}, {"RANK", "0"}, {"LOCAL_WORLD_SIZE", "5"}}), "environment",
               "LOCAL_WORLD_SIZE", "out of range");
  EXPECT_ERROR(launch_with({{"OMPI_COMM_WORLD_SIZE", "2"}}), "environment", "OMPI_COMM_WORLD_RANK",
               "not set");
}

}  // namespace
}  // namespace disranker::dist
