// What `disranker serve` scores with. The server, its request parsing and its batching know nothing of the
// model: `disranker serve` binds the fast engine or a libtorch Ranker to this interface, and the tests bind a
// fake one.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "text/pair_encoding.h"

namespace disranker::serve {

struct ScoreRequestDoc {
  std::string title;
  std::string text;
};

struct Scorer {
  virtual ~Scorer() = default;
  // One (query, document) pair as the model reads it, encoded once when its request is queued: its length
  // sizes the batches, and the same pair goes to score(). max_tokens_per_doc caps the document's title +
  // text tokens (text cut first; the query is untouched); 0 = no cap beyond the model's pair budget. Called
  // from the batching thread only. May throw: the error reaches that request only.
  virtual EncodedPair encode(const std::string& query, const ScoreRequestDoc& doc,
                             std::size_t max_tokens_per_doc) = 0;
  // Scores a batch of encoded pairs (of any requests and budgets); returns one raw model score per pair.
  // Called from the batching thread only. May throw: the error reaches the requests of the batch (HTTP 500),
  // and the server goes on.
  virtual std::vector<double> score(std::span<const EncodedPair> pairs) = 0;
  // Raw score → reported score (raw, sigmoid or affine, as the model directory declares). Called from request
  // threads concurrently: must not change state.
  virtual double transform(double raw) const = 0;
  virtual std::string model_name() const = 0;
};

}  // namespace disranker::serve
