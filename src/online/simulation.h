// Online evaluation by simulation: what an A/B test and an interleaving experiment between two rankings would
// show, with simulated users whose clicks follow a click model (data/click_model.h) driven by graded labels.
// It answers the question the paper answers with real traffic (page CTR, user CTR, dwell time of DisRanker
// against the production ranker) before any real user sees the new ranking. See docs/online.md.
//
// The traffic: `users` users over `days` days. Each user has an activity level, a log-normal draw with mean
// queries_per_user_day and log-spread activity_sigma (a few heavy users issue most queries, as in real logs:
// that is what makes page CTR and user CTR differ); each day they issue Poisson(activity) queries, drawn
// uniformly from the eligible queries or in proportion to a query-frequency weight. Every query shows a
// result page: the top `depth` of a ranking, with the qrels grades (unjudged: 0) driving the click model.
//
// A/B test: users are split into buckets A and B by a hash of their id (about half each, fixed for the whole
// experiment, as production A/B systems do); a user always sees their bucket's ranking. Metrics per bucket:
//   page CTR            pages with >= 1 click / pages
//   user CTR            mean over users (with >= 1 page) of the user's own page CTR: every user weighs the
//   same clicks per page     clicks / pages dwell per click     mean dwell time of a click (seconds)
//   abandonment rate    pages without a click / pages (= 1 - page CTR)
//   satisfied CTR       pages with a click of dwell >= satisfied_dwell_ms / pages
// and the relative difference B/A - 1 of each, with a bootstrap confidence interval that resamples users
// within each bucket (a user's pages are not independent of each other in real traffic, so the user is the
// unit of resampling, as in production A/B analyses).
//
// Interleaving: the same kind of traffic (a separate draw), every page team-draft interleaved from A and B
// (online/interleaving.h); wins, losses and ties of B, and the two-sided sign test on wins against losses.
//
// Sensitivity: for each impression budget n, `repetitions` independent experiments of n impressions (each
// impression a fresh user, so that pages are independent) of both kinds: the A/B test of page CTR by a
// two-proportion z-test, interleaving by the sign test. The fraction of experiments with p < alpha is the
// power of the test at that budget (or its false-positive rate when A and B are the same ranking).
//
// Everything is a function of the seed: user u's traffic is drawn from SplitMix64(batch_seed(seed, stream,
// u)) and each repetition from its own stream, so results do not depend on the number of threads.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/random.h"
#include "data/click_model.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"

namespace disranker::online {

// One eligible query: both rankings' pages, as grades (the A/B pages) and as document ids local to the query
// (what interleaving merges).
struct QueryPages {
  std::string qid;
  std::vector<int> grades_a;  // grades of run A's top `depth`, top first
  std::vector<int> grades_b;
  std::vector<std::uint32_t> docs_a;  // the same documents as ids 0.. local to this query
  std::vector<std::uint32_t> docs_b;
  std::vector<int> grade_of;  // local id -> grade
};

// qid -> relative query frequency (>= 0).
using QueryWeights = std::map<std::string, double>;

// Reads `qid<TAB>weight` lines (a query log's counts, say): ids unique, weights finite and >= 0.
QueryWeights read_query_weights(const std::string& path);

struct Experiment {
  std::vector<QueryPages> queries;
  std::vector<double> cumulative_weights;  // empty: queries are drawn uniformly
  std::size_t depth = 10;

  // What was left out (for the summary).
  std::size_t qrels_queries = 0;
  std::size_t no_query_text = 0;    // qrels queries missing from the queries file
  std::size_t not_in_runs = 0;      // qrels queries neither run ranks
  std::size_t only_in_b = 0;        // eligible queries run A does not rank (A shows an empty page)
  std::size_t only_in_a = 0;        // eligible queries run B does not rank
  std::size_t zero_weight = 0;      // eligible queries with no (or zero) weight: never issued
  std::size_t unknown_weights = 0;  // weighted qids that are not eligible queries (ignored)

  // A query index drawn from the query distribution.
  std::size_t sample_query(SplitMix64& rng) const;
};

// Eligible queries: judged (in the qrels), with text in `queries`, ranked by at least one run; with weights,
// only those with a positive weight. Pages are each run's first `depth` entries in the run's order (read_run
// sorts them as trec_eval does). Throws Error when no query is eligible or depth is 0.
Experiment prepare_experiment(const Qrels& qrels, const Queries& queries, const Run& a, const Run& b,
                              std::size_t depth, const QueryWeights* weights);

struct TrafficOptions {
  std::size_t users = 10000;
  std::size_t days = 14;
  double queries_per_user_day = 1.0;  // mean activity
  double activity_sigma = 1.0;        // log-normal spread of activity across users (0: all alike)
  double satisfied_dwell_ms = 30000;  // a click at least this long satisfied the user
  std::uint64_t seed = 0;
  std::size_t threads = 0;  // 0: all hardware threads
};

// Throws Error for options out of range.
void check_traffic_options(const TrafficOptions& options);

// ---- A/B test ----

enum class Metric { kPageCtr, kUserCtr, kClicksPerPage, kDwellPerClick, kAbandonment, kSatisfiedCtr };
inline constexpr std::size_t kMetricCount = 6;
std::string metric_name(Metric metric);  // "page CTR", ...
std::string metric_key(Metric metric);   // "page_ctr", ... (JSON)

// One user's experience over the whole experiment.
struct UserOutcome {
  std::uint32_t pages = 0;
  std::uint32_t clicked_pages = 0;
  std::uint32_t clicks = 0;
  std::uint32_t satisfied_pages = 0;
  double dwell_ms = 0;
  bool in_b = false;
};

struct ArmTotals {
  std::size_t users = 0;
  std::size_t active_users = 0;  // with at least one page
  std::size_t pages = 0;
  std::size_t clicked_pages = 0;
  std::size_t clicks = 0;
  std::size_t satisfied_pages = 0;
  double dwell_ms = 0;
  double user_ctr_sum = 0;  // sum over active users of their page CTR

  void add(const UserOutcome& user);
  // The value of a metric (NaN when undefined: no page, or no click for dwell per click).
  double value(Metric metric) const;
};

struct MetricDelta {
  double a = 0;
  double b = 0;
  double relative = 0;  // b / a - 1
  double ci_low = 0;    // bootstrap percentile interval of the relative difference
  double ci_high = 0;

  // The interval exists and excludes 0: the difference is significant at the interval's confidence.
  bool significant() const;
};

struct AbOptions {
  std::size_t bootstrap = 1000;  // bootstrap resamples (0: no interval)
  double confidence = 0.95;
};

struct AbResult {
  ArmTotals a;
  ArmTotals b;
  std::array<MetricDelta, kMetricCount> deltas;
  std::size_t bootstrap = 0;
};

// Simulates every user's traffic with their bucket's ranking (stream 0 of the seed, buckets from stream 2).
std::vector<UserOutcome> simulate_ab_users(const Experiment& experiment, const ClickModel& model,
                                           const TrafficOptions& traffic);
// Totals, relative differences and bootstrap intervals (resample r draws from batch_seed(seed, 3, r)).
AbResult analyse_ab(const std::vector<UserOutcome>& users, const AbOptions& options, std::uint64_t seed,
                    std::size_t threads);

// ---- interleaving ----

struct InterleavingResult {
  std::size_t impressions = 0;
  std::size_t wins_b = 0;  // B's team got more clicks
  std::size_t wins_a = 0;
  std::size_t ties = 0;  // including impressions without a click
  std::size_t clicks = 0;
  double p_value = 1;  // two-sided sign test on wins_b against wins_a

  // Share of decided impressions that B won (0.5 when none was decided).
  double b_win_share() const;
  // Chapelle et al.'s Delta_AB: (wins_b + ties/2) / impressions - 1/2; positive when B is preferred.
  double delta() const;
};

// Simulates the same kind of traffic (stream 4 of the seed), every page team-draft interleaved.
InterleavingResult simulate_interleaving(const Experiment& experiment, const ClickModel& model,
                                         const TrafficOptions& traffic);

// ---- sensitivity ----

struct SensitivityOptions {
  std::vector<std::size_t> budgets = {100, 300, 1000, 3000, 10000, 30000, 100000};
  std::size_t repetitions = 100;
  double alpha = 0.05;
  double power = 0.8;  // the power that "impressions needed" asks for
};

struct SensitivityPoint {
  std::size_t impressions = 0;
  double ab_power = 0;  // fraction of A/B experiments (page CTR z-test) with p < alpha
  double interleaving_power = 0;
  // Of the significant experiments, the fraction that favoured B (direction of the effect).
  double ab_b_better = 0;
  double interleaving_b_better = 0;
};

struct SensitivityResult {
  std::vector<SensitivityPoint> points;
  std::size_t repetitions = 0;
  std::size_t impressions = 0;  // simulated in total (both kinds)
  // The smallest budget whose power reaches options.power; 0 when none does.
  std::size_t ab_needed = 0;
  std::size_t interleaving_needed = 0;
};

// Repetition r of budget i draws from batch_seed(seed, 100 + i, 2r) (A/B) and (..., 2r + 1) (interleaving).
SensitivityResult simulate_sensitivity(const Experiment& experiment, const ClickModel& model,
                                       const SensitivityOptions& options, std::uint64_t seed,
                                       std::size_t threads);

// Poisson(mean) draw (Knuth's product of uniforms, in chunks of mean <= 30 so that exp(-mean) never
// underflows). Exposed for its test.
std::size_t poisson(double mean, SplitMix64& rng);

}  // namespace disranker::online
