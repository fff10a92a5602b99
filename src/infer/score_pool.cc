// score_pool: encode once, sort by length, batch, score, scatter back. See score_pool.h.
#include "infer/score_pool.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "core/progress.h"

namespace disranker {
namespace {

// A whole field of decimal digits, or nothing.
bool parse_count(std::string_view text, std::size_t* value) {
  if (text.empty() || text.size() > 18) return false;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

void parse_shard(const std::string& text, std::size_t* index, std::size_t* count) {
  const auto slash = text.find('/');
  std::size_t i = 0, n = 0;
  if (slash == std::string::npos || !parse_count(std::string_view(text).substr(0, slash), &i) ||
      !parse_count(std::string_view(text).substr(slash + 1), &n)) {
    throw Error("--shard: expected INDEX/COUNT such as 0/4 (0-based index), got '" + text + "'");
  }
  if (n < 1) throw Error("--shard: the shard count must be >= 1, got '" + text + "'");
  if (i >= n) {
    throw Error("--shard: the index is 0-based and must be below the count (0/" + std::to_string(n) + " .. " +
                std::to_string(n - 1) + "/" + std::to_string(n) + "), got '" + text + "'");
  }
  *index = i;
  *count = n;
}

Run score_pool(PairScorer& ranker, const Queries& queries, const Docs& docs, const Run& candidates,
               const ScorePoolOptions& options, const std::string& candidates_source) {
  if (options.batch_size < 1) throw Error("score: the batch size must be >= 1");
  if (options.shard_count < 1 || options.shard_index >= options.shard_count) {
    throw Error("score: shard index " + std::to_string(options.shard_index) + " is not below the count " +
                std::to_string(options.shard_count));
  }

  // The pairs of this shard, in candidate order (by_query is ordered by qid: its position is the shard key).
  struct Candidate {
    const std::string* qid;
    const std::string* docid;
  };
  std::vector<Candidate> order;
  std::vector<EncodedPair> pairs;
  std::size_t position = 0;
  for (const auto& [qid, entries] : candidates.by_query) {
    if (position++ % options.shard_count != options.shard_index) continue;
    const Query* query = queries.find(qid);
    if (query == nullptr) {
      throw Error(candidates_source, 0, "qid", "query '" + qid + "' is not in the queries file");
    }
    for (const auto& entry : entries) {
      const Doc* doc = docs.find(entry.docid);
      if (doc == nullptr) {
        throw Error(candidates_source, 0, "docid",
                    "document '" + entry.docid + "' (query '" + qid + "') is not in the documents file");
      }
      order.push_back({&qid, &entry.docid});
      pairs.push_back(ranker.encode(query->text, doc->title, doc->text, 0));
    }
  }

  // Longest first: a batch pads to nearly its own length, and an out-of-memory surfaces at once, not at the
  // end. stable_sort keeps equal lengths in candidate order, so the result does not depend on the sort.
  std::vector<std::size_t> permutation(pairs.size());
  std::iota(permutation.begin(), permutation.end(), std::size_t{0});
  if (options.sort_by_length) {
    std::stable_sort(permutation.begin(), permutation.end(), [&pairs](std::size_t a, std::size_t b) {
      return pairs[a].ids.size() > pairs[b].ids.size();
    });
  }
  std::vector<EncodedPair> sorted;
  sorted.reserve(pairs.size());
  for (const auto i : permutation) sorted.push_back(std::move(pairs[i]));
  pairs.clear();

  if (!options.quiet && !sorted.empty() && (options.group == nullptr || options.group->is_root())) {
    std::size_t tokens = 0, longest = 0;
    for (const auto& pair : sorted) {
      tokens += pair.ids.size();
      longest = std::max(longest, pair.ids.size());
    }
    std::fprintf(stderr, "score: %zu pairs, %.1f tokens per pair (longest %zu)\n", sorted.size(),
                 static_cast<double>(tokens) / static_cast<double>(sorted.size()), longest);
  }
  std::vector<double> scores(sorted.size());
  const std::size_t ranks = options.group ? static_cast<std::size_t>(options.group->size()) : 1;
  const std::size_t rank = options.group ? static_cast<std::size_t>(options.group->rank()) : 0;
  const std::size_t stride = options.batch_size * ranks;  // this rank scores batches rank, rank + ranks, ...
  std::size_t share = 0;
  for (std::size_t begin = rank * options.batch_size; begin < sorted.size(); begin += stride) {
    share += std::min(options.batch_size, sorted.size() - begin);
  }
  ProgressBar progress("score", share, "pairs", options.quiet || rank != 0);
  std::string scored;  // (sorted position, score) records of this rank, for the other ranks
  std::size_t done = 0;
  const std::span<const EncodedPair> all(sorted);
  for (std::size_t begin = rank * options.batch_size; begin < sorted.size(); begin += stride) {
    const auto chunk = all.subspan(begin, std::min(options.batch_size, sorted.size() - begin));
    const auto batch_scores = ranker.score(chunk, options.batch_size);
    for (std::size_t k = 0; k < chunk.size(); ++k) {
      const auto original = permutation[begin + k];
      if (!std::isfinite(batch_scores[k])) {
        throw Error("score: the model gave a non-finite score (" + std::to_string(batch_scores[k]) +
                    ") to query '" + *order[original].qid + "', document '" + *order[original].docid + "'");
      }
      scores[original] = batch_scores[k];
      if (ranks > 1) {
        const std::uint64_t sorted_position = begin + k;
        scored.append(reinterpret_cast<const char*>(&sorted_position), sizeof(sorted_position));
        scored.append(reinterpret_cast<const char*>(&batch_scores[k]), sizeof(double));
      }
    }
    done += chunk.size();
    progress.update(done);
  }
  progress.finish();
  if (ranks > 1) {
    // The ranks are processes of one build on one kind of machine: the records travel as raw bytes.
    constexpr std::size_t kRecord = sizeof(std::uint64_t) + sizeof(double);
    for (const auto& records : options.group->all_gather(scored)) {
      for (std::size_t at = 0; at + kRecord <= records.size(); at += kRecord) {
        std::uint64_t sorted_position = 0;
        double score = 0;
        std::memcpy(&sorted_position, records.data() + at, sizeof(sorted_position));
        std::memcpy(&score, records.data() + at + sizeof(sorted_position), sizeof(score));
        if (sorted_position >= permutation.size())
          throw Error("score: a rank sent a pair position out of range");
        scores[permutation[sorted_position]] = score;
      }
    }
  }

  Run run;
  run.tag = options.tag;
  for (std::size_t i = 0; i < order.size(); ++i) {
    run.by_query[*order[i].qid].push_back(RunEntry{*order[i].docid, scores[i]});
  }
  run.sort_by_score();  // trec_eval's order: score descending, ties by docid descending
  return run;
}

Run candidates_from_qrels(const Qrels& qrels) {
  Run run;
  for (const auto& [qid, judged] : qrels.by_query) {
    auto& entries = run.by_query[qid];
    for (const auto& [docid, grade] : judged) entries.push_back(RunEntry{docid, 0.0});
    // unordered_map order is arbitrary: fix it so that the candidates (and anything derived) are
    // reproducible.
    std::sort(entries.begin(), entries.end(),
              [](const RunEntry& a, const RunEntry& b) { return a.docid < b.docid; });
  }
  return run;
}

}  // namespace disranker
