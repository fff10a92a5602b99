// Cross-request dynamic batching. Request threads submit the pairs of one query (a "group") and wait on a
// future; one worker thread packs the pairs of whatever groups are waiting into batches and calls
// Scorer::score.
//
// Each pair is encoded once (Scorer::encode), when the worker takes its group in; a batch closes when it
// reaches max_tokens (the encoded lengths of its pairs) or max_pairs, or when its oldest group has waited
// max_wait, so that a lone request pays at most max_wait for the chance of sharing a model call. Groups are
// served first come, first served; a large group is split over several batches, its pairs taken shortest
// first (so that each batch holds pairs of similar length), and a batch can end with the first part of a
// group and go on with the next one. A batch's pairs are sorted by token length before the model sees them,
// so that a scorer that cuts the batch into padded micro-batches pads little.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "serve/metrics.h"
#include "serve/scorer.h"

namespace disranker::serve {

struct BatcherOptions {
  std::size_t max_tokens = 16384;  // per batch; a single pair over the budget is scored alone
  std::size_t max_pairs = 256;     // per batch
  std::chrono::milliseconds max_wait{2};
};

// The pairs of one query: (query, docs[i]).
struct PairGroup {
  std::string query;
  std::vector<ScoreRequestDoc> docs;
  std::size_t max_tokens_per_doc = 0;  // caps title + text tokens; 0 = no cap (Scorer::encode)
};

struct GroupScores {
  std::vector<double> raw;  // one per document, in document order
  std::size_t tokens = 0;   // the tokens the model read for this group (its encoded pairs' lengths)
};

// What a submit() future holds after stop(): the server answers 503.
class BatcherStopped : public std::runtime_error {
 public:
  BatcherStopped() : std::runtime_error("the server is shutting down") {}
};

class Batcher {
 public:
  // `metrics` may be null.
  Batcher(Scorer& scorer, BatcherOptions options, Metrics* metrics = nullptr);
  ~Batcher();  // stop()
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues the group's pairs. The future yields their scores, or rethrows what Scorer::encode threw for one
  // of them or Scorer::score for a batch that held any of them, or BatcherStopped after stop(). An empty
  // group is answered at once.
  std::future<GroupScores> submit(PairGroup group);

  // Scores everything already submitted, then ends the worker. Idempotent.
  void stop();

 private:
  struct Group;
  struct Item;

  void run();
  // Moves newly submitted groups to pending_, encoding their pairs (outside the lock: it is model work).
  void take_submitted(std::unique_lock<std::mutex>& lock);
  bool pending_fills_batch() const;
  std::vector<Item> next_batch();
  void score(std::vector<Item> batch);

  Scorer& scorer_;
  const BatcherOptions options_;
  Metrics* const metrics_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Group>> submitted_;  // guarded by mutex_
  bool stopping_ = false;                         // guarded by mutex_

  // The worker's own state.
  std::deque<std::shared_ptr<Group>> pending_;  // counted, not yet wholly in a batch
  std::size_t pending_pairs_ = 0;
  std::size_t pending_tokens_ = 0;

  std::mutex stop_mutex_;  // serializes stop() callers around the join
  std::thread worker_;
};

}  // namespace disranker::serve
