// Progress of long work on stderr: a bar with counts, rate, elapsed time, ETA and a free-form suffix (loss, lr).
//
// On a terminal the line is redrawn in place (\r) at most 5 times a second; when stderr is not a terminal (logs,
// CI) a plain line is printed at most every `log_interval_seconds` (default 10 s), so that logs stay readable.
// finish() always prints the final line. Nothing is printed when quiet.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace disranker {

class ProgressBar {
 public:
  // label: "cpt", "score"; total: units of work (0 when unknown: no bar, no ETA); unit: "steps", "pairs".
  ProgressBar(std::string label, std::size_t total, std::string unit, bool quiet = false);

  // Reports `done` units finished; `extra` is appended ("loss 0.4132 lr 1.2e-04"). Cheap when rate-limited.
  void update(std::size_t done, const std::string& extra = "");
  // Prints the final line (the last count given to update(), the total time) and ends the terminal line.
  void finish(const std::string& extra = "");

  // Seconds since construction.
  double elapsed_seconds() const;
  // Sets the starting count (resumed work): rate and ETA count only the units done in this process.
  void set_start(std::size_t done) { start_done_ = done; }

  // "1h02m", "3m05s", "12s": a duration for humans.
  static std::string format_duration(double seconds);

 private:
  std::string line(std::size_t done, const std::string& extra) const;
  using Clock = std::chrono::steady_clock;
  std::string label_;
  std::size_t total_;
  std::string unit_;
  bool quiet_;
  bool tty_;
  double log_interval_seconds_ = 10.0;
  std::size_t start_done_ = 0;
  std::size_t last_done_ = 0;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_print_{};
  bool printed_ = false;
};

}  // namespace disranker
