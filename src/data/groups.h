// Query groups for ranking training: each query's candidate documents with their labels and (for distillation)
// teacher scores, and the deterministic sampler that turns a group into a training group of fixed size.
//
// Candidates come from a run (TREC: the documents a first stage retrieved; unjudged ones are label 0 — the
// "negatives from the candidate runs"), or, without a run, from the qrels themselves (WikiQA: every candidate
// sentence is judged). Problems are counted, never skipped silently: GroupReport says how many queries had no
// positive, no candidates, no text, how many teacher scores were missing or not finite.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "data/docs.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"

namespace disranker {

struct GroupDoc {
  std::string docid;
  int label = 0;                                               // grade (0 for unjudged candidates)
  bool judged = false;
  double teacher = std::numeric_limits<double>::quiet_NaN();  // teacher score when given
};

struct QueryGroup {
  std::string qid;
  std::vector<GroupDoc> docs;  // in candidate order (run rank, or docid order from qrels)
  int max_label() const;
};

struct GroupOptions {
  // Drop queries that have no document with label >= 1 (a rank loss has nothing to learn from them).
  bool require_positive = true;
  // Keep at most this many candidates per query from the run (its top ones); 0 = all.
  std::size_t max_candidates = 0;
};

struct GroupReport {
  std::size_t queries_in = 0;              // queries seen in the run (or qrels)
  std::size_t groups_out = 0;
  std::size_t no_positive = 0;             // dropped by require_positive
  std::size_t no_candidates = 0;           // qrels queries absent from the run
  std::size_t missing_query_text = 0;      // dropped: qid not in queries
  std::size_t missing_docs = 0;            // candidates dropped: docid not in docs
  std::size_t missing_teacher = 0;         // candidates dropped: no teacher score
  std::size_t nonfinite_teacher = 0;       // NaN / inf teacher scores (an Error unless allowed, see below)
  // One line per non-zero count, e.g. "1247 queries without a positive label dropped".
  std::vector<std::string> lines() const;
};

// Groups for rank training from qrels and an optional candidate run (null: candidates are the judged documents).
std::vector<QueryGroup> build_label_groups(const Queries& queries, const Docs& docs, const Qrels& qrels,
                                           const Run* candidates, const GroupOptions& options,
                                           GroupReport* report);

// Groups for distillation from a teacher run (its scores), with labels from qrels when given (null: all 0).
// A NaN or infinite teacher score is an Error naming the run file, query and document.
std::vector<QueryGroup> build_teacher_groups(const Queries& queries, const Docs& docs, const Run& teacher,
                                             const Qrels* qrels, const GroupOptions& options, GroupReport* report);

struct SampleOptions {
  // Documents per training group: 1 positive + (group_size - 1) negatives ("softmax"/"pairwise" SFT), or any
  // documents ("distill"). 0: the whole group (the full graded list).
  std::size_t group_size = 8;
  // SFT: the first document is a positive (label >= 1, chosen uniformly), the others are drawn from the
  // documents with a lower label. Distillation: a uniform sample of distinct documents.
  bool positive_first = true;
};

// The documents (indices into group.docs) of one training group, a function of (group, options, seed) only.
// When the group has fewer documents than asked, all are returned (the batch masks the rest).
std::vector<std::size_t> sample_group(const QueryGroup& group, const SampleOptions& options, std::uint64_t seed);

}  // namespace disranker
