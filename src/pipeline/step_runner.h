// Runs the pipeline's steps with a resumable state per step (no libtorch: steps that train or score run as
// child processes of this same binary, `disranker <subcommand> ...`).
//
// A step is done when OUT/state/<name>.json records the fingerprint it finished with. The fingerprint hashes
// the step's command line and the size and modification time of every input file (directories: every file
// below them), so a step reruns when its settings or its inputs changed, and every step after it that reads
// its outputs reruns too (their inputs changed). A step that was started but not finished (killed) is
// continued with --resume when it trains and its fingerprint is unchanged; otherwise its output directory is
// removed and the step starts over.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace disranker::pipeline {

struct Step {
  std::string name;         // "teacher-sft": names the state file and the log
  std::string description;  // one line for humans and the report
  // A child `disranker` command line (without the program name), or empty with `action` set.
  std::vector<std::string> args;
  std::function<void()> action;     // an in-process step (data preparation, evaluation)
  std::vector<std::string> inputs;  // files or directories whose change reruns the step
  std::string output_dir;           // removed before a fresh start (empty: none)
  bool resumable = false;           // a training command: add --resume when continuing a killed run
  bool data_parallel = false;       // a command that can run as ranks (training, scoring): see set_ranks
};

// A child `disranker` command.
Step command_step(std::string name, std::string description, std::vector<std::string> args,
                  std::vector<std::string> inputs);
// A training command: resumable after a kill, its output directory removed before a fresh start.
Step training_step(std::string name, std::string description, std::vector<std::string> args,
                   std::vector<std::string> inputs, std::string output_dir);
// A scoring command: runs as ranks like the training commands, but is not resumable.
Step scoring_step(std::string name, std::string description, std::vector<std::string> args,
                  std::vector<std::string> inputs);
// Work done in this process.
Step action_step(std::string name, std::string description, std::function<void()> action,
                 std::vector<std::string> inputs);

struct StepResult {
  std::string name;
  std::string description;
  std::string status;  // "ran", "resumed", "skipped"
  double seconds = 0;  // wall time of this run (for a skipped step: of the run that made it)
};

class StepRunner {
 public:
  // out_dir: the pipeline's directory (state/ and logs/ are created in it); program: this binary's path.
  StepRunner(std::string out_dir, std::string program);

  // Data-parallel steps run as `ranks` processes on this machine (a c10d job over loopback: RANK, WORLD_SIZE,
  // LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free MASTER_PORT in their environment); rank
  // 0's output goes to the step's log and the terminal, rank r's to logs/<step>.rank<r>.log. Default 1. The
  // result does not depend on it (docs/distributed.md), so it is not part of a step's fingerprint.
  void set_ranks(int ranks);

  // Runs the step unless it is done with the same fingerprint. Throws Error (naming the log file) when the
  // child fails or is killed.
  StepResult run(const Step& step, std::size_t index, std::size_t total);

  // Hash of the command line and the inputs' sizes and modification times (hex). Missing inputs hash as such.
  static std::string fingerprint(const Step& step);

 private:
  void run_child(const Step& step, bool resume, const std::string& log_path) const;
  std::string out_dir_;
  std::string program_;
  int ranks_ = 1;
};

// The path of the running binary (/proc/self/exe), for spawning its own subcommands.
std::string self_executable();

}  // namespace disranker::pipeline
