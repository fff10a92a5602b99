#include "pipeline/step_runner.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "dist/launch.h"

extern char** environ;

namespace disranker::pipeline {
namespace fs = std::filesystem;

namespace {

// FNV-1a, 64 bits: a fingerprint only has to change when its input does, not resist an adversary.
struct Fnv1a {
  std::uint64_t state = 1469598103934665603ull;
  void add(std::string_view bytes) {
    for (unsigned char c : bytes) {
      state ^= c;
      state *= 1099511628211ull;
    }
    state ^= 0xff;  // separator, so that ("ab","c") and ("a","bc") differ
    state *= 1099511628211ull;
  }
};

void add_file(Fnv1a& hash, const fs::path& path) {
  std::error_code error;
  const auto size = fs::file_size(path, error);
  const auto time = fs::last_write_time(path, error);
  hash.add(path.string());
  hash.add(std::to_string(size));
  hash.add(std::to_string(time.time_since_epoch().count()));
}

std::string state_path(const std::string& out_dir, const std::string& name) {
  return (fs::path(out_dir) / "state" / (name + ".json")).string();
}

nlohmann::json read_state(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    return nlohmann::json::object();  // a state file is only written atomically; an unreadable one means "not
                                      // done"
  }
}

void write_state(const std::string& path, const nlohmann::json& state) {
  write_file_atomically(path, [&](std::ostream& out) { out << state.dump(2) << "\n"; });
}

std::string quote_args(const std::string& program, const std::vector<std::string>& args) {
  std::string line = program;
  for (const auto& arg : args) {
    const bool plain = !arg.empty() && arg.find_first_of(" \t'\"\\$") == std::string::npos;
    line += " " + (plain ? arg : "'" + arg + "'");
  }
  return line;
}

// A free TCP port on the loopback interface for a job's rendezvous, as the kernel assigns it. Another process
// could take it before rank 0 binds it; rank 0 then fails with an error that names the port.
int free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error("socket: " + std::string(std::strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t size = sizeof address;
  const bool found = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                     getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0;
  const int error = errno;
  close(fd);
  if (!found) throw Error("cannot find a free port on 127.0.0.1: " + std::string(std::strerror(error)));
  return ntohs(address.sin_port);
}

// This process's environment with the variables of `job` (dist::launch_environment) replacing any of the
// same names.
std::vector<std::string> rank_environment(const std::vector<std::string>& job) {
  const auto name_of = [](std::string_view variable) { return variable.substr(0, variable.find('=') + 1); };
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view variable(*entry);
    if (std::none_of(job.begin(), job.end(),
                     [&](const std::string& set) { return name_of(set) == name_of(variable); }))
      environment.emplace_back(variable);
  }
  environment.insert(environment.end(), job.begin(), job.end());
  return environment;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (auto& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

Step command_step(std::string name, std::string description, std::vector<std::string> args,
                  std::vector<std::string> inputs) {
  Step step;
  step.name = std::move(name);
  step.description = std::move(description);
  step.args = std::move(args);
  step.inputs = std::move(inputs);
  return step;
}

Step training_step(std::string name, std::string description, std::vector<std::string> args,
                   std::vector<std::string> inputs, std::string output_dir) {
  Step step = command_step(std::move(name), std::move(description), std::move(args), std::move(inputs));
  step.output_dir = std::move(output_dir);
  step.resumable = true;
  step.data_parallel = true;
  return step;
}

Step scoring_step(std::string name, std::string description, std::vector<std::string> args,
                  std::vector<std::string> inputs) {
  Step step = command_step(std::move(name), std::move(description), std::move(args), std::move(inputs));
  step.data_parallel = true;
  return step;
}

Step action_step(std::string name, std::string description, std::function<void()> action,
                 std::vector<std::string> inputs) {
  Step step;
  step.name = std::move(name);
  step.description = std::move(description);
  step.action = std::move(action);
  step.inputs = std::move(inputs);
  return step;
}

std::string self_executable() {
  std::error_code error;
  const auto path = fs::read_symlink("/proc/self/exe", error);
  if (error) throw Error("cannot find this program's path (/proc/self/exe): " + error.message());
  return path.string();
}

StepRunner::StepRunner(std::string out_dir, std::string program)
    : out_dir_(std::move(out_dir)), program_(std::move(program)) {
  fs::create_directories(fs::path(out_dir_) / "state");
  fs::create_directories(fs::path(out_dir_) / "logs");
}

void StepRunner::set_ranks(int ranks) {
  if (ranks < 1) throw Error("pipeline: --ranks must be at least 1, not " + std::to_string(ranks));
  ranks_ = ranks;
}

std::string StepRunner::fingerprint(const Step& step) {
  Fnv1a hash;
  for (const auto& arg : step.args) hash.add(arg);
  hash.add(step.output_dir);
  for (const auto& input : step.inputs) {
    std::error_code error;
    if (fs::is_directory(input, error)) {
      std::vector<fs::path> files;
      for (const auto& entry : fs::recursive_directory_iterator(input, error)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());  // directory order is not stable
      for (const auto& file : files) add_file(hash, file);
    } else if (fs::exists(input, error)) {
      add_file(hash, input);
    } else {
      hash.add("missing:" + input);
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash.state));
  return hex;
}

StepResult StepRunner::run(const Step& step, std::size_t index, std::size_t total) {
  const std::string path = state_path(out_dir_, step.name);
  const std::string log_path = (fs::path(out_dir_) / "logs" / (step.name + ".log")).string();
  const std::string print = fingerprint(step);
  nlohmann::json state = read_state(path);
  const std::string header =
      "[" + std::to_string(index) + "/" + std::to_string(total) + "] " + step.name + ": " + step.description;

  if (state.value("status", "") == "done" && state.value("fingerprint", "") == print) {
    std::cerr << header << " (done, skipped)\n";
    return {step.name, step.description, "skipped", state.value("seconds", 0.0)};
  }
  // Continue a killed training run only when nothing it depends on changed; anything else starts clean.
  const bool resume =
      step.resumable && state.value("status", "") == "started" && state.value("fingerprint", "") == print;
  if (!resume && !step.output_dir.empty()) fs::remove_all(step.output_dir);
  state = {{"status", "started"}, {"fingerprint", print}, {"description", step.description}};
  if (!step.args.empty()) state["command"] = quote_args("disranker", step.args);
  write_state(path, state);

  std::cerr << header << (resume ? " (resuming)" : "") << "\n";
  const auto start = std::chrono::steady_clock::now();
  if (step.action) {
    step.action();
  } else {
    run_child(step, resume, log_path);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  state["status"] = "done";
  state["seconds"] = seconds;
  write_state(path, state);
  std::cerr << "    " << step.name << " done in " << ProgressBar::format_duration(seconds) << "\n";
  return {step.name, step.description, resume ? "resumed" : "ran", seconds};
}

// The child's stdout and stderr go through one pipe into the step's log and this process's stderr, so that
// the terminal shows the stage's progress and the log keeps it. As ranks, that is rank 0 (the one that logs);
// the other ranks write to their own logs.
void StepRunner::run_child(const Step& step, bool resume, const std::string& log_path) const {
  std::vector<std::string> args = {program_};
  args.insert(args.end(), step.args.begin(), step.args.end());
  if (resume) args.push_back("--resume");
  const std::vector<std::string> shown(args.begin() + 1, args.end());
  const int ranks = step.data_parallel ? ranks_ : 1;
  std::vector<std::string> logs = {log_path};
  for (int rank = 1; rank < ranks; ++rank)
    logs.push_back(
        (fs::path(out_dir_) / "logs" / (step.name + ".rank" + std::to_string(rank) + ".log")).string());
  for (const std::string& path : logs)
    std::ofstream(path, std::ios::app) << "$ " << quote_args(program_, shown) << "\n";
  std::cerr << "    $ " << quote_args("disranker", shown) << "\n";
  const int port = ranks > 1 ? free_loopback_port() : 0;
  if (ranks > 1)
    std::cerr << "    as " << ranks << " ranks on this machine (rendezvous 127.0.0.1:" << port
              << "); rank r > 0 logs to " << step.name << ".rank<r>.log\n";

  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) throw Error("pipe: " + std::string(std::strerror(errno)));
  std::vector<pid_t> pids;
  for (int rank = 0; rank < ranks; ++rank) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (rank == 0) {
      posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    } else {
      posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, logs[static_cast<std::size_t>(rank)].c_str(),
                                       O_WRONLY | O_CREAT | O_APPEND, 0644);
    }
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[1]);
    std::vector<std::string> environment;
    if (ranks > 1) {
      dist::Launch launch;
      launch.rank = launch.local_rank = rank;
      launch.world_size = launch.local_world_size = ranks;
      launch.master_addr = "127.0.0.1";
      launch.master_port = port;
      environment = rank_environment(dist::launch_environment(launch));
    }
    std::vector<char*> argv = c_strings(args);
    std::vector<char*> envp = c_strings(environment);
    pid_t pid = 0;
    const int spawn_error = posix_spawn(&pid, program_.c_str(), &actions, nullptr, argv.data(),
                                        ranks > 1 ? envp.data() : environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawn_error != 0) {
      close(pipe_fds[0]), close(pipe_fds[1]);
      for (const pid_t started : pids) kill(started, SIGTERM), waitpid(started, nullptr, 0);
      throw Error("cannot start " + program_ + ": " + std::strerror(spawn_error));
    }
    pids.push_back(pid);
  }
  close(pipe_fds[1]);
  std::ofstream log(log_path, std::ios::app);
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(pipe_fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    log.write(buffer, n);
    log.flush();
    std::cerr.write(buffer, n);
    std::cerr.flush();
  }
  close(pipe_fds[0]);
  std::vector<int> statuses(pids.size(), 0);
  for (std::size_t rank = 0; rank < pids.size(); ++rank) {
    while (waitpid(pids[rank], &statuses[rank], 0) < 0 && errno == EINTR) {
    }
    // Rank 0 failed: the other ranks would wait for it in their next collective until the timeout.
    const bool failed = !WIFEXITED(statuses[rank]) || WEXITSTATUS(statuses[rank]) != 0;
    if (rank == 0 && failed)
      for (std::size_t other = 1; other < pids.size(); ++other) kill(pids[other], SIGTERM);
  }
  // The first rank that failed names the log; a rank's failure makes the others fail after it, and each
  // rank's log says what it saw.
  for (std::size_t rank = 0; rank < pids.size(); ++rank) {
    const int status = statuses[rank];
    const std::string who =
        "step " + step.name +
        (pids.size() > 1 ? " (rank " + std::to_string(rank) + " of " + std::to_string(pids.size()) + ")"
                         : "");
    if (WIFSIGNALED(status)) {
      throw Error(logs[rank], 0, "",
                  who + " was killed by signal " + std::to_string(WTERMSIG(status)) +
                      "; rerun the pipeline to continue it");
    }
    if (WEXITSTATUS(status) != 0) {
      throw Error(logs[rank], 0, "",
                  who + " failed (exit status " + std::to_string(WEXITSTATUS(status)) +
                      "); its output is in this log");
    }
  }
}

}  // namespace disranker::pipeline
