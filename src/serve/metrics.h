// The server's counters, exposed on GET /metrics in the Prometheus text format (version 0.0.4):
//   disranker_requests_total{route,status}      counter
//   disranker_request_duration_seconds{route}   histogram, buckets 0.005 … 10 s
//   disranker_batch_pairs                       histogram of the pairs per model call
//   disranker_batch_requests                    histogram of the requests (pair groups) per model call
//   disranker_tokens_total                      counter, tokens the model read
//   disranker_errors_total                      counter, responses with a status >= 400
//   disranker_scorer_failures_total             counter, model calls that threw
//   disranker_queued_pairs                      gauge, pairs submitted and not yet in a model call
// Thread-safe: request threads and the batching thread record concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace disranker::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // The exposition lines of `name` with `labels` ("" or `route="/rerank"`), without the # HELP/# TYPE lines.
  std::string exposition(const std::string& name, const std::string& labels) const;
  std::uint64_t count() const { return count_; }
  // Observations that were > `value`.
  std::uint64_t count_above(double value) const;

 private:
  std::vector<double> upper_bounds_;
  std::vector<std::uint64_t> bucket_counts_;  // not cumulative; one more than the bounds, for +Inf
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();

  // One HTTP response. `route` must come from a fixed set (unknown paths as "other"), to keep the label
  // bounded.
  void record_request(const std::string& route, int status, double seconds);
  // One model call: its pairs, the requests they came from and the tokens it read.
  void record_batch(std::size_t pairs, std::size_t requests, std::size_t tokens);
  void record_scorer_failure();
  void queue_pairs(std::size_t pairs);
  void dequeue_pairs(std::size_t pairs);

  std::string exposition() const;

  // For tests.
  std::uint64_t batches_with_more_requests_than(std::size_t requests) const;
  std::uint64_t requests(const std::string& route, int status) const;
  std::uint64_t queued_pairs() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  Histogram batch_pairs_;
  Histogram batch_requests_;
  std::uint64_t tokens_ = 0;
  std::uint64_t errors_ = 0;
  std::uint64_t scorer_failures_ = 0;
  std::uint64_t queued_pairs_ = 0;
};

}  // namespace disranker::serve
