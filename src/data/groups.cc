#include "data/groups.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <unordered_set>

#include "core/error.h"
#include "core/random.h"

namespace disranker {
namespace {

// A query's candidates in ranking order, cut to `max_candidates` (0: all). The run may have been built in
// memory without sort_by_score(), so the order is established here rather than trusted.
std::vector<RunEntry> top_candidates(const std::vector<RunEntry>& entries, std::size_t max_candidates) {
  std::vector<RunEntry> sorted = entries;
  std::stable_sort(sorted.begin(), sorted.end(), ranks_before);
  if (max_candidates > 0 && sorted.size() > max_candidates) sorted.resize(max_candidates);
  return sorted;
}

// Label of a candidate from the qrels (unjudged: 0, judged false).
void set_label(GroupDoc* doc, const Qrels* qrels, const std::string& qid) {
  const int* grade = qrels ? qrels->grade(qid, doc->docid) : nullptr;
  doc->judged = grade != nullptr;
  doc->label = grade ? *grade : 0;
}

// Counts the qrels queries that have no entry in the candidate run: their judgements cannot be trained on.
std::size_t qrels_queries_absent(const Qrels& qrels, const Run& run) {
  std::size_t absent = 0;
  for (const auto& [qid, judged] : qrels.by_query) {
    if (!run.by_query.contains(qid)) ++absent;
  }
  return absent;
}

// Keeps or drops a finished group, counting why it was dropped.
void finish_group(QueryGroup group, const GroupOptions& options, std::vector<QueryGroup>* groups,
                  GroupReport* report) {
  if (options.require_positive && group.max_label() < 1) {
    ++report->no_positive;
    return;
  }
  if (group.docs.empty()) {
    // Every candidate was dropped (missing documents or teacher scores): nothing is left to train on.
    ++report->no_candidates;
    return;
  }
  groups->push_back(std::move(group));
}

std::string format_score(double score) {
  std::ostringstream out;
  out << score;
  return out.str();
}

}  // namespace

int QueryGroup::max_label() const {
  if (docs.empty()) return 0;
  int best = docs.front().label;
  for (const auto& doc : docs) best = std::max(best, doc.label);
  return best;
}

std::vector<std::string> GroupReport::lines() const {
  std::vector<std::string> out;
  out.push_back(std::to_string(groups_out) + " query groups built from " + std::to_string(queries_in) +
                " queries");
  const auto add = [&out](std::size_t count, const std::string& what) {
    if (count > 0) out.push_back(std::to_string(count) + " " + what);
  };
  add(no_positive, "queries without a positive label dropped");
  add(no_candidates,
      "queries without candidates dropped (judged but absent from the candidate run, or every candidate "
      "dropped)");
  add(missing_query_text, "queries dropped: qid not in the queries file");
  add(missing_docs, "candidates dropped: docid not in the docs file");
  add(missing_teacher, "judged documents left out: no teacher score for them");
  add(nonfinite_teacher, "teacher scores not finite (NaN or infinite)");
  return out;
}

std::vector<QueryGroup> build_label_groups(const Queries& queries, const Docs& docs, const Qrels& qrels,
                                           const Run* candidates, const GroupOptions& options,
                                           GroupReport* report) {
  GroupReport local;
  GroupReport& counts = report ? *report : local;
  counts = GroupReport{};
  std::vector<QueryGroup> groups;

  if (candidates) {
    counts.no_candidates += qrels_queries_absent(qrels, *candidates);
    for (const auto& [qid, entries] : candidates->by_query) {
      ++counts.queries_in;
      if (!queries.find(qid)) {
        ++counts.missing_query_text;
        continue;
      }
      QueryGroup group{qid, {}};
      for (const auto& entry : top_candidates(entries, options.max_candidates)) {
        if (!docs.find(entry.docid)) {
          ++counts.missing_docs;
          continue;
        }
        GroupDoc doc;
        doc.docid = entry.docid;
        set_label(&doc, &qrels, qid);
        group.docs.push_back(std::move(doc));
      }
      finish_group(std::move(group), options, &groups, &counts);
    }
  } else {
    // Without a run the judged documents are the candidates (WikiQA): in docid order, so that the groups do
    // not depend on the hash order of the qrels. max_candidates is a retrieval depth and does not apply here.
    for (const auto& [qid, judged] : qrels.by_query) {
      ++counts.queries_in;
      if (!queries.find(qid)) {
        ++counts.missing_query_text;
        continue;
      }
      std::vector<std::string> docids;
      docids.reserve(judged.size());
      for (const auto& [docid, grade] : judged) docids.push_back(docid);
      std::sort(docids.begin(), docids.end());
      QueryGroup group{qid, {}};
      for (const auto& docid : docids) {
        if (!docs.find(docid)) {
          ++counts.missing_docs;
          continue;
        }
        GroupDoc doc;
        doc.docid = docid;
        set_label(&doc, &qrels, qid);
        group.docs.push_back(std::move(doc));
      }
      finish_group(std::move(group), options, &groups, &counts);
    }
  }
  counts.groups_out = groups.size();
  return groups;
}

std::vector<QueryGroup> build_teacher_groups(const Queries& queries, const Docs& docs, const Run& teacher,
                                             const Qrels* qrels, const GroupOptions& options,
                                             GroupReport* report) {
  if (options.require_positive && !qrels) {
    throw Error("teacher groups: a positive label is required but no qrels were given");
  }
  GroupReport local;
  GroupReport& counts = report ? *report : local;
  counts = GroupReport{};
  std::vector<QueryGroup> groups;

  // Checked over the whole run before anything else, so that a bad score fails fast and is never hidden by
  // the query or document being dropped for another reason.
  for (const auto& [qid, entries] : teacher.by_query) {
    for (const auto& entry : entries) {
      if (!std::isfinite(entry.score)) {
        throw Error("teacher run '" + teacher.tag + "'", 0, "score",
                    "query '" + qid + "' document '" + entry.docid + "': teacher score " +
                        format_score(entry.score) + " is not finite");
      }
    }
  }
  if (qrels) counts.no_candidates += qrels_queries_absent(*qrels, teacher);

  for (const auto& [qid, entries] : teacher.by_query) {
    ++counts.queries_in;
    if (!queries.find(qid)) {
      ++counts.missing_query_text;
      continue;
    }
    QueryGroup group{qid, {}};
    std::unordered_set<std::string> scored;
    for (const auto& entry : entries) scored.insert(entry.docid);
    for (const auto& entry : top_candidates(entries, options.max_candidates)) {
      if (!docs.find(entry.docid)) {
        ++counts.missing_docs;
        continue;
      }
      GroupDoc doc;
      doc.docid = entry.docid;
      doc.teacher = entry.score;
      set_label(&doc, qrels, qid);
      group.docs.push_back(std::move(doc));
    }
    if (qrels) {
      // Judged documents the teacher never scored cannot be distilled: count them so that a teacher run over
      // the wrong pool shows up.
      const auto judged = qrels->by_query.find(qid);
      if (judged != qrels->by_query.end()) {
        for (const auto& [docid, grade] : judged->second) {
          if (!scored.contains(docid)) ++counts.missing_teacher;
        }
      }
    }
    finish_group(std::move(group), options, &groups, &counts);
  }
  counts.groups_out = groups.size();
  return groups;
}

std::vector<std::size_t> sample_group(const QueryGroup& group, const SampleOptions& options,
                                      std::uint64_t seed) {
  const std::size_t n = group.docs.size();
  std::vector<std::size_t> all(n);
  std::iota(all.begin(), all.end(), std::size_t{0});
  // The full graded list: no sampling, so the result does not depend on the seed.
  if (options.group_size == 0) return all;

  SplitMix64 rng(seed);
  // The first `count` entries of `pool` become a uniform sample without replacement (partial Fisher-Yates).
  const auto draw = [&rng](std::vector<std::size_t> pool, std::size_t count) {
    count = std::min(count, pool.size());
    for (std::size_t i = 0; i < count; ++i) {
      std::swap(pool[i], pool[i + rng.below(pool.size() - i)]);
    }
    pool.resize(count);
    return pool;
  };

  std::vector<std::size_t> positives;
  for (std::size_t i = 0; i < n; ++i) {
    if (group.docs[i].label >= 1) positives.push_back(i);
  }
  // A group without a positive (require_positive off) has no "1 positive + k negatives" to give: it is
  // sampled uniformly, as for distillation.
  if (!options.positive_first || positives.empty()) return draw(std::move(all), options.group_size);

  const std::size_t positive = positives[rng.below(positives.size())];
  std::vector<std::size_t> negatives;
  for (std::size_t i = 0; i < n; ++i) {
    if (group.docs[i].label < group.docs[positive].label) negatives.push_back(i);
  }
  std::vector<std::size_t> chosen{positive};
  for (std::size_t i : draw(std::move(negatives), options.group_size - 1)) chosen.push_back(i);
  return chosen;
}

}  // namespace disranker
