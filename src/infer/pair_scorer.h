// What scores (query, document) pairs for `score`, validation and `serve`: the libtorch Ranker (any model,
// any device) or the fast CPU engine for BERT students (infer/bert_engine.h). No libtorch here.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "text/pair_encoding.h"

namespace disranker {

class PairScorer {
 public:
  virtual ~PairScorer() = default;
  // The model's pair template and budget; max_document_tokens (0: none) also caps title + summary tokens.
  virtual EncodedPair encode(std::string_view query, std::string_view title, std::string_view summary,
                             std::size_t max_document_tokens) const = 0;
  // Scores as disranker.json's transform declares them, one per pair, in order; at most batch_size pairs per
  // model call.
  virtual std::vector<double> score(std::span<const EncodedPair> pairs, std::size_t batch_size) = 0;
};

}  // namespace disranker
