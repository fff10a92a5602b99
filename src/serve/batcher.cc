#include "serve/batcher.h"

#include <algorithm>
#include <exception>
#include <numeric>
#include <utility>

namespace disranker::serve {

struct Batcher::Group {
  PairGroup pairs;
  std::promise<GroupScores> promise;
  std::chrono::steady_clock::time_point submitted_at;
  // The worker's, once the group has left submitted_:
  std::vector<EncodedPair> encoded;  // Scorer::encode of each pair; moved into its batch
  std::vector<std::size_t> tokens;   // each pair's encoded length
  std::vector<std::size_t> order;    // the pairs by increasing tokens: the order they go into batches
  std::size_t next = 0;              // order[next] is the first pair not yet in a batch
  std::size_t unscored = 0;
  GroupScores result;
  bool failed = false;  // its promise holds an error; its remaining pairs are dropped
};

struct Batcher::Item {
  std::shared_ptr<Group> group;
  std::size_t pair;
};

Batcher::Batcher(Scorer& scorer, BatcherOptions options, Metrics* metrics)
    : scorer_(scorer), options_(options), metrics_(metrics), worker_([this] { run(); }) {}

Batcher::~Batcher() {
  stop();
}

std::future<GroupScores> Batcher::submit(PairGroup pairs) {
  auto group = std::make_shared<Group>();
  group->pairs = std::move(pairs);
  std::future<GroupScores> future = group->promise.get_future();
  if (group->pairs.docs.empty()) {
    group->promise.set_value({});
    return future;
  }
  {
    const std::lock_guard lock(mutex_);
    if (stopping_) {
      group->promise.set_exception(std::make_exception_ptr(BatcherStopped()));
      return future;
    }
    group->submitted_at = std::chrono::steady_clock::now();
    // Counted under the lock, so that the worker cannot take the pairs off the gauge before they are on it.
    if (metrics_ != nullptr) metrics_->queue_pairs(group->pairs.docs.size());
    submitted_.push_back(std::move(group));
  }
  wake_.notify_one();
  return future;
}

void Batcher::stop() {
  const std::lock_guard stop_lock(stop_mutex_);
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void Batcher::run() {
  const auto more_work = [this] { return stopping_ || !submitted_.empty(); };
  for (;;) {
    std::unique_lock lock(mutex_);
    if (pending_.empty()) {
      wake_.wait(lock, more_work);
      if (submitted_.empty()) return;  // stopping, and everything is scored
    }
    take_submitted(lock);
    // Give other requests until the oldest waiting one has waited max_wait to join the batch. Once stopping,
    // no more will come.
    if (!pending_.empty()) {
      const auto deadline = pending_.front()->submitted_at + options_.max_wait;
      while (!stopping_ && !pending_fills_batch() && wake_.wait_until(lock, deadline, more_work))
        take_submitted(lock);
    }
    lock.unlock();
    std::vector<Item> batch = next_batch();
    if (metrics_ != nullptr) metrics_->dequeue_pairs(batch.size());
    score(std::move(batch));
  }
}

void Batcher::take_submitted(std::unique_lock<std::mutex>& lock) {
  std::deque<std::shared_ptr<Group>> incoming;
  incoming.swap(submitted_);
  lock.unlock();
  for (std::shared_ptr<Group>& group : incoming) {
    const std::size_t size = group->pairs.docs.size();
    try {
      group->encoded.reserve(size), group->tokens.reserve(size);
      for (const ScoreRequestDoc& doc : group->pairs.docs) {
        group->encoded.push_back(scorer_.encode(group->pairs.query, doc, group->pairs.max_tokens_per_doc));
        group->tokens.push_back(group->encoded.back().ids.size());
      }
    } catch (...) {
      if (metrics_ != nullptr) metrics_->dequeue_pairs(size);
      group->promise.set_exception(std::current_exception());
      continue;
    }
    // Shortest first, so that a group cut into several batches gives each batch pairs of similar length
    // (padding to the longest of a batch then wastes little).
    group->order.resize(size);
    std::iota(group->order.begin(), group->order.end(), std::size_t{0});
    std::stable_sort(
        group->order.begin(), group->order.end(),
        [&tokens = group->tokens](std::size_t a, std::size_t b) { return tokens[a] < tokens[b]; });
    group->unscored = size;
    group->result.raw.assign(size, 0.0);
    pending_pairs_ += size;
    pending_tokens_ += std::accumulate(group->tokens.begin(), group->tokens.end(), std::size_t{0});
    pending_.push_back(std::move(group));
  }
  lock.lock();
}

bool Batcher::pending_fills_batch() const {
  return pending_pairs_ >= options_.max_pairs || pending_tokens_ >= options_.max_tokens;
}

std::vector<Batcher::Item> Batcher::next_batch() {
  std::vector<Item> batch;
  std::size_t tokens = 0;
  while (!pending_.empty()) {
    Group& group = *pending_.front();
    const std::size_t size = group.pairs.docs.size();
    if (group.failed) {
      for (std::size_t i = group.next; i < size; ++i) pending_tokens_ -= group.tokens[group.order[i]];
      pending_pairs_ -= size - group.next;
      if (metrics_ != nullptr) metrics_->dequeue_pairs(size - group.next);
      pending_.pop_front();
      continue;
    }
    for (; group.next < size; ++group.next) {
      const std::size_t pair = group.order[group.next];
      const std::size_t pair_tokens = group.tokens[pair];
      if (!batch.empty() &&
          (batch.size() >= options_.max_pairs || tokens + pair_tokens > options_.max_tokens))
        return batch;
      batch.push_back({pending_.front(), pair});
      tokens += pair_tokens;
      --pending_pairs_;
      pending_tokens_ -= pair_tokens;
    }
    pending_.pop_front();
  }
  return batch;
}

void Batcher::score(std::vector<Item> batch) {
  if (batch.empty()) return;
  // The groups of the batch in arrival order (the items are still group by group), each with its tokens.
  std::vector<std::pair<Group*, std::size_t>> groups;
  std::size_t tokens = 0;
  for (const Item& item : batch) {
    if (groups.empty() || groups.back().first != item.group.get()) groups.emplace_back(item.group.get(), 0);
    const std::size_t pair_tokens = item.group->tokens[item.pair];
    groups.back().second += pair_tokens;
    tokens += pair_tokens;
  }

  std::stable_sort(batch.begin(), batch.end(), [](const Item& a, const Item& b) {
    return a.group->tokens[a.pair] < b.group->tokens[b.pair];
  });
  std::vector<double> scores;
  try {
    std::vector<EncodedPair> pairs;
    pairs.reserve(batch.size());
    // Each pair is in one batch only: its encoding moves there.
    for (const Item& item : batch) pairs.push_back(std::move(item.group->encoded[item.pair]));
    scores = scorer_.score(pairs);
    if (scores.size() != batch.size())
      throw std::runtime_error("the scorer returned " + std::to_string(scores.size()) + " scores for " +
                               std::to_string(batch.size()) + " pairs");
  } catch (...) {
    const std::exception_ptr error = std::current_exception();
    if (metrics_ != nullptr) metrics_->record_scorer_failure();
    for (auto& [group, group_tokens] : groups) {
      if (group->failed) continue;
      group->failed = true;
      group->promise.set_exception(error);
    }
    return;
  }
  if (metrics_ != nullptr) metrics_->record_batch(batch.size(), groups.size(), tokens);

  for (std::size_t k = 0; k < batch.size(); ++k) {
    Group& group = *batch[k].group;
    group.result.raw[batch[k].pair] = scores[k];
    --group.unscored;
  }
  for (auto& [group, group_tokens] : groups) {
    group->result.tokens += group_tokens;
    if (group->unscored == 0) group->promise.set_value(std::move(group->result));
  }
}

}  // namespace disranker::serve
