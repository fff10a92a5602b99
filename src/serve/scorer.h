// What `disranker serve` scores with. The server, its request parsing and its batching know nothing of the
// model: a libtorch file binds a Ranker to this interface, and the tests bind a fake one.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace disranker::serve {

struct ScoreRequestDoc {
  std::string title;
  std::string text;
};

// One batch of (query, document) pairs: queries[i] goes with docs[i]. Pairs of different requests share a
// batch. max_tokens_per_doc caps each document's title + text tokens (text cut first; the query is
// untouched); 0 = no cap beyond the model's pair budget.
struct PairBatch {
  std::vector<std::string> queries;
  std::vector<ScoreRequestDoc> docs;
  std::size_t max_tokens_per_doc = 0;
};

struct Scorer {
  virtual ~Scorer() = default;
  // Scores a batch of (query, document) pairs; returns one raw model score per pair and fills tokens (the sum
  // of the encoded pair lengths). Called from the one batching thread only. May throw: the error reaches the
  // requests of the batch (HTTP 500), and the server goes on.
  virtual std::vector<double> score(const PairBatch& batch, std::size_t& tokens) = 0;
  // The encoded length of one pair under that cap, for the batch's token budget. Called from the batching
  // thread only.
  virtual std::size_t count_tokens(const std::string& query, const ScoreRequestDoc& doc,
                                   std::size_t max_tokens_per_doc) = 0;
  // Raw score → reported score (raw, sigmoid or affine, as the model directory declares). Called from request
  // threads concurrently: must not change state.
  virtual double transform(double raw) const = 0;
  virtual std::string model_name() const = 0;
};

}  // namespace disranker::serve
