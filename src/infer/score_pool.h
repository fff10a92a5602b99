// Scoring a pool of (query, document) candidates with any Ranker: the body of `disranker score`, of the
// validation at each epoch's end and of the teacher-scoring stage.
//
// Efficiency: pairs are encoded once, sorted by token length and batched, so that a batch pads to nearly the
// length of its longest pair (on the shared sets this halves the padded tokens); the scores are put back in
// candidate order. Sharding: --shard i/N keeps the queries whose position in the sorted qid list is ≡ i (mod N),
// so shard outputs are disjoint by query and `cat` of the shard runs is the whole run.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "data/docs.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"
#include "model/ranker.h"

namespace disranker {

struct ScorePoolOptions {
  std::size_t batch_size = 64;
  std::size_t shard_index = 0;  // 0-based
  std::size_t shard_count = 1;
  bool sort_by_length = true;
  bool quiet = false;           // no progress bar
  std::string tag = "disranker";
};

// Parses "i/N" (1 <= ... see below): "0/4" .. "3/4". Throws Error naming --shard.
void parse_shard(const std::string& text, std::size_t* index, std::size_t* count);

// Scores every candidate of `candidates` (its scores are ignored) and returns a run with the model's scores,
// each query's documents ranked by score. A qid missing from `queries` or a docid missing from `docs` is an
// Error naming `candidates_source` and the id. A non-finite model score is an Error naming the pair.
Run score_pool(Ranker& ranker, const Queries& queries, const Docs& docs, const Run& candidates,
               const ScorePoolOptions& options, const std::string& candidates_source = "candidates");

// A run whose candidates are the judged documents of each query (WikiQA has no retrieval run): score 0.
Run candidates_from_qrels(const Qrels& qrels);

}  // namespace disranker
