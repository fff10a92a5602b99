#include "core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <utility>

namespace disranker {

ProgressBar::ProgressBar(std::string label, std::size_t total, std::string unit, bool quiet)
    : label_(std::move(label)), total_(total), unit_(std::move(unit)), quiet_(quiet), tty_(isatty(2) == 1) {}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(Clock::now() - start_).count();
}

std::string ProgressBar::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<long long>(std::llround(seconds));
  char buffer[32];
  if (total >= 3600) {
    std::snprintf(buffer, sizeof(buffer), "%lldh%02lldm", total / 3600, (total % 3600) / 60);
  } else if (total >= 60) {
    std::snprintf(buffer, sizeof(buffer), "%lldm%02llds", total / 60, total % 60);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%llds", total);
  }
  return buffer;
}

std::string ProgressBar::line(std::size_t done, const std::string& extra) const {
  const double elapsed = elapsed_seconds();
  const double new_units = done > start_done_ ? static_cast<double>(done - start_done_) : 0.0;
  const double rate = elapsed > 0 ? new_units / elapsed : 0.0;
  std::string text = label_ + " ";
  char buffer[160];
  if (total_ > 0) {
    const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(fraction * kWidth);
    text += "[" + std::string(static_cast<std::size_t>(filled), '#') +
            std::string(static_cast<std::size_t>(kWidth - filled), '.') + "] ";
    const double eta = rate > 0 ? static_cast<double>(total_ - std::min(done, total_)) / rate : NAN;
    std::snprintf(buffer, sizeof(buffer), "%zu/%zu %s %3.0f%% | %.1f %s/s | %s elapsed, ETA %s", done, total_,
                  unit_.c_str(), 100.0 * fraction, rate, unit_.c_str(), format_duration(elapsed).c_str(),
                  done >= total_ ? "0s" : format_duration(eta).c_str());
  } else {
    std::snprintf(buffer, sizeof(buffer), "%zu %s | %.1f %s/s | %s elapsed", done, unit_.c_str(), rate,
                  unit_.c_str(), format_duration(elapsed).c_str());
  }
  text += buffer;
  if (!extra.empty()) text += " | " + extra;
  return text;
}

void ProgressBar::update(std::size_t done, const std::string& extra) {
  last_done_ = done;
  if (quiet_) return;
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (printed_ && since < (tty_ ? 0.2 : log_interval_seconds_)) return;
  last_print_ = now;
  printed_ = true;
  const std::string text = line(done, extra);
  if (tty_) {
    std::fprintf(stderr, "\r%s\033[K", text.c_str());
  } else {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
  std::fflush(stderr);
}

void ProgressBar::finish(const std::string& extra) {
  if (quiet_) return;
  const std::size_t done = last_done_;
  const std::string text = line(done, extra);
  std::fprintf(stderr, tty_ ? "\r%s\033[K\n" : "%s\n", text.c_str());
  std::fflush(stderr);
}

}  // namespace disranker
