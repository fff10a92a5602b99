// Scoring a pool of (query, document) candidates with any PairScorer (a Ranker or the fast engine): the body
// of `disranker score`, of the validation at each epoch's end and of the teacher-scoring stage.
//
// Efficiency: pairs are encoded once, sorted by token length and batched, so that a batch pads to nearly the
// length of its longest pair (on the shared sets this halves the padded tokens); the scores are put back in
// candidate order. Sharding: --shard i/N keeps the queries whose position in the sorted qid list is ≡ i (mod
// N), so shard outputs are disjoint by query and `cat` of the shard runs is the whole run.
// Data-parallel jobs (dist/process_group.h): with a group of several ranks, the sorted batches are dealt
// round-robin to the ranks and the scores gathered, so every rank returns the whole run, and as every batch
// is the one a single process would score, the run equals the single-process run bit for bit (at equal
// threads).
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "data/docs.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"
#include "dist/process_group.h"
#include "infer/pair_scorer.h"
#include "model/ranker.h"

namespace disranker {

struct ScorePoolOptions {
  std::size_t batch_size = 64;
  std::size_t shard_index = 0;  // 0-based
  std::size_t shard_count = 1;
  bool sort_by_length = true;
  bool quiet = false;  // no progress bar
  std::string tag = "disranker";
  dist::Group* group = nullptr;  // the ranks sharing the work; nullptr: this process alone
};

// Parses "i/N" (1 <= ... see below): "0/4" .. "3/4". Throws Error naming --shard.
void parse_shard(const std::string& text, std::size_t* index, std::size_t* count);

// A libtorch Ranker as a PairScorer.
class RankerPairScorer : public PairScorer {
 public:
  explicit RankerPairScorer(Ranker& ranker) : ranker_(ranker) {}
  EncodedPair encode(std::string_view query, std::string_view title, std::string_view summary,
                     std::size_t max_document_tokens) const override {
    return ranker_.encode(query, title, summary, max_document_tokens);
  }
  std::vector<double> score(std::span<const EncodedPair> pairs, std::size_t batch_size) override {
    return ranker_.score(pairs, batch_size);
  }

 private:
  Ranker& ranker_;
};

// Scores every candidate of `candidates` (its scores are ignored) and returns a run with the model's scores,
// each query's documents ranked by score. A qid missing from `queries` or a docid missing from `docs` is an
// Error naming `candidates_source` and the id. A non-finite model score is an Error naming the pair.
Run score_pool(PairScorer& scorer, const Queries& queries, const Docs& docs, const Run& candidates,
               const ScorePoolOptions& options, const std::string& candidates_source = "candidates");
inline Run score_pool(Ranker& ranker, const Queries& queries, const Docs& docs, const Run& candidates,
                      const ScorePoolOptions& options, const std::string& candidates_source = "candidates") {
  RankerPairScorer scorer(ranker);
  return score_pool(scorer, queries, docs, candidates, options, candidates_source);
}

// A run whose candidates are the judged documents of each query (WikiQA has no retrieval run): score 0.
Run candidates_from_qrels(const Qrels& qrels);

}  // namespace disranker
