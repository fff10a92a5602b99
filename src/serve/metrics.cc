#include "serve/metrics.h"

#include <algorithm>
#include <charconv>
#include <sstream>

namespace disranker::serve {
namespace {

// Shortest text that reads back as the same double ("0.005", "10"), as Prometheus expects.
std::string number_text(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

std::string join_labels(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "," + b;
}

std::string braces(const std::string& labels) {
  return labels.empty() ? "" : "{" + labels + "}";
}

std::string route_label(const std::string& route) {
  return "route=\"" + route + "\"";
}

// Seconds: from a cheap cache hit to a long model call of a large request.
const std::vector<double> kLatencyBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
// Powers of two up to past the default 256 pairs per batch.
const std::vector<double> kBatchPairBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
const std::vector<double> kBatchRequestBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256};

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), bucket_counts_(upper_bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  // Prometheus buckets are "less than or equal": the first bound >= value.
  const auto bucket =
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin();
  ++bucket_counts_[static_cast<std::size_t>(bucket)];
  sum_ += value;
  ++count_;
}

std::uint64_t Histogram::count_above(double value) const {
  // Buckets whose lower bound is >= value hold only observations > value; exact when value is a bound.
  std::uint64_t above = 0;
  for (std::size_t k = 1; k < bucket_counts_.size(); ++k)
    if (upper_bounds_[k - 1] >= value) above += bucket_counts_[k];
  return above;
}

std::string Histogram::exposition(const std::string& name, const std::string& labels) const {
  std::ostringstream out;
  std::uint64_t cumulative = 0;
  for (std::size_t k = 0; k < bucket_counts_.size(); ++k) {
    cumulative += bucket_counts_[k];
    const std::string le = k < upper_bounds_.size() ? number_text(upper_bounds_[k]) : "+Inf";
    out << name << "_bucket{" << join_labels(labels, "le=\"" + le + "\"") << "} " << cumulative << "\n";
  }
  out << name << "_sum" << braces(labels) << " " << number_text(sum_) << "\n";
  out << name << "_count" << braces(labels) << " " << count_ << "\n";
  return out.str();
}

Metrics::Metrics() : batch_pairs_(kBatchPairBounds), batch_requests_(kBatchRequestBounds) {}

void Metrics::record_request(const std::string& route, int status, double seconds) {
  const std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
  latency_.try_emplace(route, kLatencyBounds).first->second.observe(seconds);
  if (status >= 400) ++errors_;
}

void Metrics::record_batch(std::size_t pairs, std::size_t requests, std::size_t tokens) {
  const std::lock_guard lock(mutex_);
  batch_pairs_.observe(static_cast<double>(pairs));
  batch_requests_.observe(static_cast<double>(requests));
  tokens_ += tokens;
}

void Metrics::record_scorer_failure() {
  const std::lock_guard lock(mutex_);
  ++scorer_failures_;
}

void Metrics::queue_pairs(std::size_t pairs) {
  const std::lock_guard lock(mutex_);
  queued_pairs_ += pairs;
}

void Metrics::dequeue_pairs(std::size_t pairs) {
  const std::lock_guard lock(mutex_);
  queued_pairs_ -= std::min<std::uint64_t>(pairs, queued_pairs_);
}

std::uint64_t Metrics::queued_pairs() const {
  const std::lock_guard lock(mutex_);
  return queued_pairs_;
}

std::uint64_t Metrics::batches_with_more_requests_than(std::size_t requests) const {
  const std::lock_guard lock(mutex_);
  return batch_requests_.count_above(static_cast<double>(requests));
}

std::uint64_t Metrics::requests(const std::string& route, int status) const {
  const std::lock_guard lock(mutex_);
  const auto it = requests_.find({route, status});
  return it == requests_.end() ? 0 : it->second;
}

std::string Metrics::exposition() const {
  const std::lock_guard lock(mutex_);
  std::ostringstream out;
  out << "# HELP disranker_requests_total HTTP responses by route and status.\n"
      << "# TYPE disranker_requests_total counter\n";
  for (const auto& [key, count] : requests_)
    out << "disranker_requests_total{" << route_label(key.first) << ",status=\"" << key.second << "\"} "
        << count << "\n";
  out << "# HELP disranker_request_duration_seconds Time from the request's arrival to its response.\n"
      << "# TYPE disranker_request_duration_seconds histogram\n";
  for (const auto& [route, histogram] : latency_)
    out << histogram.exposition("disranker_request_duration_seconds", route_label(route));
  out << "# HELP disranker_batch_pairs Query-document pairs per model call.\n"
      << "# TYPE disranker_batch_pairs histogram\n"
      << batch_pairs_.exposition("disranker_batch_pairs", "");
  out << "# HELP disranker_batch_requests Requests (one per query) whose pairs share a model call.\n"
      << "# TYPE disranker_batch_requests histogram\n"
      << batch_requests_.exposition("disranker_batch_requests", "");
  out << "# HELP disranker_tokens_total Tokens the model read.\n"
      << "# TYPE disranker_tokens_total counter\n"
      << "disranker_tokens_total " << tokens_ << "\n";
  out << "# HELP disranker_errors_total Responses with a status of 400 or more.\n"
      << "# TYPE disranker_errors_total counter\n"
      << "disranker_errors_total " << errors_ << "\n";
  out << "# HELP disranker_scorer_failures_total Model calls that failed.\n"
      << "# TYPE disranker_scorer_failures_total counter\n"
      << "disranker_scorer_failures_total " << scorer_failures_ << "\n";
  out << "# HELP disranker_queued_pairs Pairs waiting for a model call.\n"
      << "# TYPE disranker_queued_pairs gauge\n"
      << "disranker_queued_pairs " << queued_pairs_ << "\n";
  return out.str();
}

}  // namespace disranker::serve
