// Click simulation: realistic search impressions (a query, the result page shown, which results were clicked
// and how long the user stayed) from graded relevance labels, with the standard click models of the
// literature. It stands in for the search engine logs the paper's CPT stage learns from, which are not
// public.
//
// Attractiveness of a result of grade g (Chapelle et al. 2009; Chuklin, Markov, de Rijke, "Click Models for
// Web Search", 2015):
//   attract(g) = epsilon + (1 - epsilon) * (2^g - 1) / (2^gmax - 1)
// with g clamped to [0, gmax] (unjudged and negative grades are 0) and epsilon the click-noise floor (a
// non-relevant result still gets clicked sometimes).
//
// Models:
//   PBM (position-based model): each result at rank k (1-based) is clicked independently with probability
//     exam(k) * attract(g), exam(k) = (1/k)^eta (the position-bias curve of Joachims et al. 2017; eta = 1 is
//     their default, larger eta is a steeper bias).
//   Cascade (dependent click model, Guo et al. 2009): the user scans top-down; at each result they click with
//     probability attract(g); after a click they stop, satisfied, with probability satisfaction(g) =
//     attract(g), otherwise continue; without a click they continue; the session ends at the bottom. A
//     top-grade result (attract 1) is therefore always clicked and always ends the session.
//   DBN (dynamic Bayesian network, Chapelle & Zhang 2009): the cascade with a patience: after a result that
//     did not satisfy (no click, or a click without satisfaction) the user examines the next one only with
//     probability gamma, otherwise abandons the page. P(examine k+1 | examine k) = gamma * (1 - a_k * s_k),
//     so gamma = 1 is the cascade above. Satisfaction uses the same per-grade mapping as the cascade.
// The label -> attractiveness and label -> satisfaction mappings are settings: the formula above by default,
// or one explicit probability per grade 0..gmax (attractiveness_by_grade, satisfaction_by_grade).
// Satisfaction defaults to the attractiveness (a result worth clicking is as likely to end the search). Dwell
// time of a click: log-normal, median(g) = dwell_min_ms * (dwell_max_ms / dwell_min_ms)^(g / gmax) (8 s for
// grade 0 up to 60 s for the top grade by default, geometric in between), times exp(sigma * N(0,1)), rounded
// to whole milliseconds (at least 1).
//
// Everything is a function of the seed: session i draws from SplitMix64(batch_seed(seed, 0, i)), so a log of
// N sessions is the first N sessions of any longer log with the same seed and options.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/random.h"
#include "data/clicks.h"
#include "data/docs.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"

namespace disranker {

enum class ClickModelKind { kPbm, kCascade, kDbn };

// "pbm", "cascade" or "dbn"; anything else is an Error listing them.
ClickModelKind parse_click_model_kind(const std::string& name);
std::string click_model_kind_name(ClickModelKind kind);

struct ClickModelOptions {
  ClickModelKind kind = ClickModelKind::kPbm;
  double eta = 1.0;             // PBM position-bias exponent: exam(k) = (1/k)^eta
  double epsilon = 0.1;         // attractiveness of a non-relevant result
  int max_grade = 3;            // gmax: the grade of attractiveness 1 (> 0)
  double dwell_min_ms = 8000;   // median dwell of a grade-0 click
  double dwell_max_ms = 60000;  // median dwell of a top-grade click
  double dwell_sigma = 0.5;     // log-normal spread (standard deviation of log dwell)
  double gamma = 0.9;           // DBN continuation probability after an unsatisfying result
  // Explicit mappings, one probability in [0, 1] per grade 0..max_grade; empty: the defaults above.
  std::vector<double> attractiveness_by_grade;
  std::vector<double> satisfaction_by_grade;
};

// One result's outcome in a simulated session.
struct SimulatedClick {
  bool clicked = false;
  double dwell_ms = 0;  // 0 when not clicked
};

class ClickModel {
 public:
  // Throws Error for options out of range (eta < 0, epsilon outside [0, 1], max_grade < 1, dwell medians not
  // positive or dwell_min_ms > dwell_max_ms, sigma < 0, gamma outside [0, 1], an explicit mapping that does
  // not have max_grade + 1 probabilities in [0, 1]).
  explicit ClickModel(const ClickModelOptions& options);

  double attractiveness(int grade) const { return attractiveness_[clamp_grade(grade)]; }
  // PBM examination probability of 1-based rank k.
  double examination(int rank) const;
  // Cascade and DBN: probability of stopping after a click on a result of this grade.
  double satisfaction(int grade) const { return satisfaction_[clamp_grade(grade)]; }
  double dwell_median_ms(int grade) const { return dwell_median_ms_[clamp_grade(grade)]; }

  // The clicks on a page whose results (top first) have these grades.
  std::vector<SimulatedClick> simulate(std::span<const int> grades, SplitMix64& rng) const;
  // The same without allocating: `out` must hold grades.size() entries (the hot loop of the online
  // simulation). Draws exactly the random numbers simulate() draws.
  void simulate_into(std::span<const int> grades, SplitMix64& rng, std::span<SimulatedClick> out) const;

  // Exact probabilities under the model, for checks and for reasoning about a page without sampling:
  // P(click at rank k) for each result, and P(at least one click on the page).
  std::vector<double> click_probabilities(std::span<const int> grades) const;
  double page_click_probability(std::span<const int> grades) const;

  const ClickModelOptions& options() const { return options_; }

 private:
  std::size_t clamp_grade(int grade) const {
    return static_cast<std::size_t>(grade < 0 ? 0
                                              : (grade > options_.max_grade ? options_.max_grade : grade));
  }
  // P(examine the next result | this one did not satisfy): gamma for the DBN, 1 for the cascade.
  double patience() const { return options_.kind == ClickModelKind::kDbn ? options_.gamma : 1.0; }
  double sample_dwell_ms(int grade, SplitMix64& rng) const;
  ClickModelOptions options_;
  // Per-grade tables (index 0..max_grade), computed once: the simulation looks them up per result.
  std::vector<double> attractiveness_;
  std::vector<double> satisfaction_;
  std::vector<double> dwell_median_ms_;
  std::vector<double> examination_;  // PBM examination of ranks 1..kCachedRanks
  static constexpr int kCachedRanks = 64;
};

// A standard normal draw (Box-Muller, one uniform pair per draw).
double standard_normal(SplitMix64& rng);

struct ClickSimulationOptions {
  ClickModelOptions model;
  std::size_t sessions = 10000;
  std::uint64_t seed = 0;
  std::size_t depth = 10;  // results per page
};

// What the simulation did, for the summary on stderr.
struct ClickSimulationReport {
  std::size_t eligible_queries = 0;  // queries sessions were drawn from
  std::size_t qrels_queries = 0;     // queries in the qrels
  std::size_t no_query_text = 0;     // qrels queries missing from the queries file (left out)
  std::size_t no_candidates = 0;     // qrels queries with no candidate (in the run / in docs; left out)
  std::size_t missing_docs = 0;      // candidates left out because they are not in the docs file
  std::size_t sessions = 0;
  std::size_t clicks = 0;
  std::size_t sessions_without_click = 0;
  std::vector<std::size_t> impressions_at;  // [k-1]: results shown at rank k
  std::vector<std::size_t> clicks_at;       // [k-1]: clicks at rank k
};

// The largest grade in the qrels (0 when there is none above 0).
int max_grade_in(const Qrels& qrels);

// The order in which a query's judged documents are shown when there is no run: sorted by docid, then
// shuffled by Fisher-Yates driven by SplitMix64(batch_seed(seed, 1, fnv1a64(qid))). Fixed for a (seed, qid):
// every session of the query sees the same page, as from a fixed ranker.
std::vector<std::string> judged_page_order(const Qrels& qrels, const std::string& qid, std::uint64_t seed);

// 64-bit FNV-1a: a portable hash of a string (std::hash differs between standard libraries).
std::uint64_t fnv1a64(const std::string& text);

// Simulates `options.sessions` impressions. Sessions pick a query uniformly among the eligible ones (queries
// with qrels, text in `queries` and at least one candidate present in `docs`). The page is the run's top
// `depth` documents (run order), or without a run the judged documents in judged_page_order; candidates not
// in `docs` are left out (counted). Grades come from the qrels (unjudged: 0). Titles and summaries are the
// documents' title and text. Throws Error when no query is eligible.
std::vector<Impression> simulate_click_log(const Queries& queries, const Docs& docs, const Qrels& qrels,
                                           const Run* run, const ClickSimulationOptions& options,
                                           ClickSimulationReport* report);

}  // namespace disranker
