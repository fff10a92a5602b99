// What the training stages derive from click logs (data/clicks.h), and from WikiQA, whose questions come with
// the page users clicked:
//   - CPT pairs (data/cpt_pairs.h): (query, clicked title, clicked summary) for satisfied clicks (dwell at or
//     above a threshold), de-duplicated;
//   - graded pseudo-labels (qrels) from click-through rates, naive or debiased for position by inverse
//     propensity weighting (IPW; Joachims, Swaminathan, Schnabel 2017).
// Every count of what was kept and dropped is returned in a report, for the CLI to print.
#pragma once

#include <string>
#include <vector>

#include "data/clicks.h"
#include "data/cpt_pairs.h"
#include "data/docs.h"
#include "data/qrels.h"
#include "data/queries.h"

namespace disranker {

// The key used to find duplicate pairs: NFKC, Unicode case folding, runs of whitespace collapsed to one
// space, no leading or trailing space. "  What IS  a Cave?" and "what is a cave?" are the same query.
std::string normalize_for_dedup(std::string_view text);

// Text made storable in a TSV field: tabs, carriage returns and line feeds become spaces (as the shared data
// did to its documents).
std::string flatten_tsv_field(std::string_view text);

// ---- CPT pairs from a click log ----

struct ClickPairOptions {
  double min_dwell_ms = 10000;  // a click with a shorter dwell is not a "satisfied click"
  bool dedup = true;            // one pair per (normalised query, title, summary)
};

struct ClickPairReport {
  std::size_t impressions = 0;
  std::size_t clicks = 0;
  std::size_t kept = 0;
  std::size_t short_dwell = 0;  // clicks dropped: dwell below the threshold
  std::size_t no_text = 0;      // clicks dropped: the result had neither title nor summary
  std::size_t duplicates = 0;   // satisfied clicks dropped as duplicates of an earlier pair
};

// The pairs in log order (first occurrence kept). Query, title and summary are flattened (flatten_tsv_field).
std::vector<CptPair> cpt_pairs_from_clicks(const std::vector<Impression>& log,
                                           const ClickPairOptions& options, ClickPairReport* report);

// ---- CPT pairs from WikiQA's qrels (a question, the clicked page, its candidate sentences) ----

enum class QrelsPairTarget {
  kPage,      // one pair per question: (question, page title, every candidate sentence joined by spaces)
  kPositive,  // one pair per (question, positive sentence): (question, title, sentence)
};
// "page" or "positive"; anything else is an Error listing both.
QrelsPairTarget parse_qrels_pair_target(const std::string& name);

// One query's judged documents in the order the qrels file lists them (read_qrels keeps no order; WikiQA
// lists a page's sentences in page order).
struct OrderedJudgments {
  std::string qid;
  std::vector<std::pair<std::string, int>> docs;  // (docid, grade)
};
// Reads a qrels file (validated by read_qrels) keeping the file order of queries and documents.
std::vector<OrderedJudgments> read_qrels_in_file_order(const std::string& path);

struct QrelsPairOptions {
  QrelsPairTarget target = QrelsPairTarget::kPage;
  bool dedup = true;
};

struct QrelsPairReport {
  std::size_t questions = 0;           // queries in the queries file
  std::size_t kept = 0;                // pairs written
  std::size_t without_positive = 0;    // questions with no sentence graded >= 1
  std::size_t without_candidates = 0;  // questions with no qrels (or none whose document exists): no pair
  std::size_t missing_docs = 0;        // judged docids absent from the docs file (left out)
  std::size_t mixed_titles = 0;        // page target: questions whose sentences have different titles
                                       // (the first sentence's title is used)
  std::size_t unknown_qids = 0;        // qrels queries absent from the queries file (left out)
  std::size_t duplicates = 0;          // pairs dropped as duplicates
};

// Pairs in the queries file's order; within a question, in the qrels file's order.
std::vector<CptPair> cpt_pairs_from_qrels(const Queries& queries, const Docs& docs,
                                          const std::vector<OrderedJudgments>& judgments,
                                          const QrelsPairOptions& options, QrelsPairReport* report);

// ---- Graded labels from clicks ----

enum class ClickLabelMethod {
  kCtr,  // clicks / impressions
  kIpw,  // mean over impressions of click * min(1 / propensity(position), max_weight)
};
// "ctr" or "ipw"; anything else is an Error listing both.
ClickLabelMethod parse_click_label_method(const std::string& name);

struct ClickLabelOptions {
  ClickLabelMethod method = ClickLabelMethod::kIpw;
  double eta = 1.0;  // propensity(k) = (1/k)^eta, the PBM examination probability
  // Upper bound of an IPW weight (the inverse propensity): deep positions have tiny propensities whose
  // inverse would let a single click decide the label (the variance problem of IPW; clipping as in Joachims
  // et al. 2017 and Strehl et al. 2010). 10 leaves the top 10 unclipped at eta = 1.
  double max_weight = 10;
  std::vector<double> thresholds = {0.15, 0.35, 0.7};  // ascending; grade = number reached (estimate >= t)
  std::size_t min_impressions = 5;                    // fewer: no label (counted)
};

// The click statistics of one (query, document).
struct ClickRate {
  std::string qid;
  std::string docid;
  std::size_t impressions = 0;
  std::size_t clicks = 0;
  double ctr = 0;  // clicks / impressions
  double ipw = 0;  // position-debiased CTR (see ClickLabelOptions)
};

// Per (qid, docid), sorted by (qid, docid). `clipped` (when given) receives the number of clicks whose IPW
// weight was clipped to max_weight.
std::vector<ClickRate> click_rates(const std::vector<Impression>& log, double eta, double max_weight,
                                   std::size_t* clipped = nullptr);

// The grade of an estimate: how many thresholds it reaches.
int grade_from_thresholds(double estimate, const std::vector<double>& thresholds);

struct ClickLabelReport {
  std::size_t impressions = 0;
  std::size_t pairs = 0;  // distinct (qid, docid) shown
  std::size_t labelled = 0;
  std::size_t too_few_impressions = 0;    // pairs left out (fewer than min_impressions)
  std::size_t clipped_weights = 0;        // clicks whose IPW weight was clipped
  std::vector<std::size_t> grade_counts;  // [g]: labels of grade g
};

// Throws Error for thresholds that are empty, not strictly ascending, negative or non-finite, eta < 0 or
// max_weight < 1.
Qrels click_labels(const std::vector<Impression>& log, const ClickLabelOptions& options,
                   ClickLabelReport* report);

}  // namespace disranker
