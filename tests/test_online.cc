// Online evaluation by simulation (online/) and the DBN click model. The click models are checked against
// probabilities derived by hand on a three-result page (exactly, and as empirical frequencies); team-draft
// interleaving against hand-traced drafts; the statistics against hand-computed p-values; and the experiment
// as a whole against what must happen: no preference when A = B (false-positive rates near the nominal 5%),
// a clear win of the ideal ranking with every click model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/random.h"
#include "data/click_model.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"
#include "online/interleaving.h"
#include "online/simulation.h"
#include "online/statistics.h"
#include "test_util.h"

namespace disranker {
namespace {

using online::Metric;
using online::Preference;
using online::Team;

// Five binomial standard deviations: a correct implementation fails such a check about once in 3.5 million.
double binomial_tolerance(double p, std::size_t n) {
  return 5 * std::sqrt(p * (1 - p) / static_cast<double>(n));
}

// Three binomial standard errors around a nominal rate observed over n independent experiments: wide enough
// that a correct test passes (99.7%), narrow enough that a test with twice the nominal rate fails.
double rate_tolerance(double nominal, std::size_t n) {
  return 3 * std::sqrt(nominal * (1 - nominal) / static_cast<double>(n));
}

// A model with round probabilities, so that the exact click probabilities can be derived by hand:
// grades 0, 1, 2 -> attractiveness 0.2, 0.5, 0.8 and satisfaction 0.1, 0.4, 0.9.
ClickModelOptions round_model(ClickModelKind kind, double gamma = 0.5) {
  ClickModelOptions options;
  options.kind = kind;
  options.max_grade = 2;
  options.eta = 1;
  options.gamma = gamma;
  options.attractiveness_by_grade = {0.2, 0.5, 0.8};
  options.satisfaction_by_grade = {0.1, 0.4, 0.9};
  return options;
}

// The page of the hand derivations: grades 1, 0, 2 (attractiveness 0.5, 0.2, 0.8; satisfaction 0.4, 0.1,
// 0.9).
const std::vector<int> kPage = {1, 0, 2};

struct HandValues {
  std::vector<double> click;  // P(click at rank k)
  double page = 0;            // P(at least one click)
};

HandValues hand_values(ClickModelKind kind) {
  switch (kind) {
    case ClickModelKind::kPbm:
      // (1/k) * a_k; P(no click) = (1 - 0.5)(1 - 0.1)(1 - 0.8/3) = 0.5 * 0.9 * 0.7333.. = 0.33.
      return {{0.5, 0.2 / 2, 0.8 / 3}, 1 - 0.33};
    case ClickModelKind::kCascade:
      // Rank 2 is reached unless rank 1 was clicked and satisfied: 1 - 0.5 * 0.4 = 0.8, so P(C2) = 0.8 * 0.2;
      // rank 3: 0.8 * (1 - 0.2 * 0.1) = 0.784, P(C3) = 0.784 * 0.8 = 0.6272. No click: 0.5 * 0.8 * 0.2 =
      // 0.08.
      return {{0.5, 0.16, 0.6272}, 0.92};
    case ClickModelKind::kDbn:
      // gamma 0.5 on top of the cascade: E2 = 0.5 * 0.8 = 0.4, P(C2) = 0.08; E3 = 0.5 * 0.4 * 0.98 = 0.196,
      // P(C3) = 0.1568. No click, backwards: rank 3: 0.2; rank 2: 0.8 (0.5 * 0.2 + 0.5) = 0.48;
      // rank 1: 0.5 (0.5 * 0.48 + 0.5) = 0.37.
      return {{0.5, 0.08, 0.1568}, 0.63};
  }
  return {};
}

const ClickModelKind kAllKinds[] = {ClickModelKind::kPbm, ClickModelKind::kCascade, ClickModelKind::kDbn};

// ---- the click models on a three-result page ----

TEST(ClickModel, ParsesAndNamesDbn) {
  EXPECT_EQ(parse_click_model_kind("dbn"), ClickModelKind::kDbn);
  EXPECT_EQ(click_model_kind_name(ClickModelKind::kDbn), "dbn");
  EXPECT_EQ(click_model_kind_name(ClickModelKind::kCascade), "cascade");
  EXPECT_EQ(click_model_kind_name(ClickModelKind::kPbm), "pbm");
  EXPECT_THROW(parse_click_model_kind("ubm"), Error);
}

TEST(ClickModel, ExactClickProbabilitiesMatchHandDerivedValues) {
  for (const auto kind : kAllKinds) {
    const ClickModel model(round_model(kind));
    const HandValues expected = hand_values(kind);
    const auto probabilities = model.click_probabilities(kPage);
    ASSERT_EQ(probabilities.size(), 3u);
    for (std::size_t k = 0; k < 3; ++k)
      EXPECT_NEAR(probabilities[k], expected.click[k], 1e-12)
          << click_model_kind_name(kind) << " rank " << k + 1;
    EXPECT_NEAR(model.page_click_probability(kPage), expected.page, 1e-12) << click_model_kind_name(kind);
  }
}

TEST(ClickModel, SimulatedClickRatesMatchTheHandDerivedProbabilities) {
  constexpr std::size_t kSessions = 200000;
  for (const auto kind : kAllKinds) {
    const ClickModel model(round_model(kind));
    const HandValues expected = hand_values(kind);
    SplitMix64 rng(2025);
    std::vector<std::size_t> clicks(3, 0);
    std::size_t clicked_pages = 0;
    for (std::size_t s = 0; s < kSessions; ++s) {
      const auto outcome = model.simulate(kPage, rng);
      bool any = false;
      for (std::size_t k = 0; k < 3; ++k) {
        clicks[k] += outcome[k].clicked ? 1 : 0;
        any = any || outcome[k].clicked;
      }
      clicked_pages += any ? 1 : 0;
    }
    for (std::size_t k = 0; k < 3; ++k) {
      EXPECT_NEAR(static_cast<double>(clicks[k]) / kSessions, expected.click[k],
                  binomial_tolerance(expected.click[k], kSessions))
          << click_model_kind_name(kind) << " rank " << k + 1;
    }
    EXPECT_NEAR(static_cast<double>(clicked_pages) / kSessions, expected.page,
                binomial_tolerance(expected.page, kSessions))
        << click_model_kind_name(kind);
  }
}

TEST(ClickModel, DbnWithGammaOneIsTheCascadeSessionForSession) {
  ClickModelOptions dbn;
  dbn.kind = ClickModelKind::kDbn;
  dbn.gamma = 1;
  ClickModelOptions cascade = dbn;
  cascade.kind = ClickModelKind::kCascade;
  const std::vector<int> grades = {0, 2, 1, 3, 0, 1, 2, 0, 0, 1};
  SplitMix64 rng_dbn(7);
  SplitMix64 rng_cascade(7);
  for (int s = 0; s < 2000; ++s) {
    const auto a = ClickModel(dbn).simulate(grades, rng_dbn);
    const auto b = ClickModel(cascade).simulate(grades, rng_cascade);
    for (std::size_t k = 0; k < grades.size(); ++k) {
      ASSERT_EQ(a[k].clicked, b[k].clicked);
      ASSERT_EQ(a[k].dwell_ms, b[k].dwell_ms);
    }
  }
}

TEST(ClickModel, DbnAbandonsWithoutAClickAtRateOneMinusGamma) {
  // Grade 0 is never clicked here: the user reaches rank k with probability gamma^(k-1), so P(click at rank
  // 3) = gamma^2 * a(2) = 0.7^2 * 0.8 = 0.392, by hand.
  ClickModelOptions options = round_model(ClickModelKind::kDbn, 0.7);
  options.attractiveness_by_grade = {0.0, 0.5, 0.8};
  const ClickModel model(options);
  const std::vector<int> grades = {0, 0, 2};
  constexpr std::size_t kSessions = 100000;
  SplitMix64 rng(11);
  std::size_t third = 0;
  for (std::size_t s = 0; s < kSessions; ++s) third += model.simulate(grades, rng)[2].clicked ? 1 : 0;
  EXPECT_NEAR(static_cast<double>(third) / kSessions, 0.392, binomial_tolerance(0.392, kSessions));
  EXPECT_NEAR(model.click_probabilities(grades)[2], 0.392, 1e-12);
}

TEST(ClickModel, DefaultSatisfactionIsTheAttractivenessAndMappingsAreChecked) {
  ClickModelOptions options;
  options.kind = ClickModelKind::kDbn;
  const ClickModel model(options);
  for (int g = 0; g <= 3; ++g) EXPECT_DOUBLE_EQ(model.satisfaction(g), model.attractiveness(g));
  EXPECT_DOUBLE_EQ(model.attractiveness(2), 0.1 + 0.9 * 3 / 7);  // the formula, unchanged

  options.gamma = 1.5;
  EXPECT_THROW(ClickModel{options}, Error);
  options.gamma = 0.9;
  options.attractiveness_by_grade = {0.1, 0.2, 0.3};  // 3 values for grades 0..3
  EXPECT_THROW(ClickModel{options}, Error);
  options.attractiveness_by_grade = {0.1, 0.2, 0.3, 1.2};
  EXPECT_THROW(ClickModel{options}, Error);
  options.attractiveness_by_grade = {0.1, 0.2, 0.3, 0.4};
  options.satisfaction_by_grade = {0.5, 0.6, 0.7, 0.8};
  const ClickModel explicit_model(options);
  EXPECT_DOUBLE_EQ(explicit_model.attractiveness(3), 0.4);
  EXPECT_DOUBLE_EQ(explicit_model.attractiveness(9), 0.4);  // clamped to gmax
  EXPECT_DOUBLE_EQ(explicit_model.satisfaction(-1), 0.5);   // negative grades count as 0
}

// ---- statistics ----

TEST(OnlineStatistics, SignTestMatchesTheBinomialByHand) {
  // n = 10, k = 1: P(X <= 1) = (1 + 10) / 2^10, two-sided: 22 / 1024.
  EXPECT_NEAR(online::sign_test_p_value(9, 1), 22.0 / 1024, 1e-15);
  EXPECT_NEAR(online::sign_test_p_value(1, 9), 22.0 / 1024, 1e-15);
  // n = 5, k = 0: 2 / 32.
  EXPECT_NEAR(online::sign_test_p_value(5, 0), 2.0 / 32, 1e-15);
  EXPECT_DOUBLE_EQ(online::sign_test_p_value(5, 5), 1.0);
  EXPECT_DOUBLE_EQ(online::sign_test_p_value(0, 0), 1.0);
  // n = 10000, 5100 wins: the normal approximation with continuity correction gives z = 99.5 / 50 = 1.99,
  // p = 0.0466; the exact value is within a few 1e-4 of it.
  EXPECT_NEAR(online::sign_test_p_value(5100, 4900), 0.0466, 1e-3);
  // Millions of impressions stay finite and tiny rather than underflowing to garbage.
  const double p = online::sign_test_p_value(1100000, 1000000);
  EXPECT_GE(p, 0.0);
  EXPECT_LT(p, 1e-100);
}

TEST(OnlineStatistics, TwoProportionZTestByHand) {
  // 50/100 against 60/100: pooled 0.55, se = sqrt(0.55 * 0.45 * 0.02) = 0.070356, z = 1.42134,
  // p = erfc(1.42134 / sqrt 2) = 0.15521.
  EXPECT_NEAR(online::two_proportion_p_value(50, 100, 60, 100), 0.15521, 1e-4);
  EXPECT_DOUBLE_EQ(online::two_proportion_p_value(50, 100, 50, 100), 1.0);
  EXPECT_DOUBLE_EQ(online::two_proportion_p_value(0, 100, 0, 50), 1.0);  // no variance
  EXPECT_DOUBLE_EQ(online::two_proportion_p_value(1, 0, 1, 5), 1.0);     // an empty group
}

TEST(OnlineStatistics, QuantilesInterpolateBetweenOrderStatistics) {
  const std::vector<double> values = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(online::quantile_of_sorted(values, 0), 1);
  EXPECT_DOUBLE_EQ(online::quantile_of_sorted(values, 1), 4);
  EXPECT_DOUBLE_EQ(online::quantile_of_sorted(values, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(online::quantile_of_sorted(values, 1.0 / 3), 2);
  EXPECT_TRUE(std::isnan(online::quantile_of_sorted({}, 0.5)));
}

TEST(OnlineStatistics, PoissonDrawsHaveTheirMeanAsMeanAndVariance) {
  for (const double mean : {0.3, 3.7, 75.0}) {  // 75: drawn in chunks of at most 30
    SplitMix64 rng(static_cast<std::uint64_t>(mean * 10));
    constexpr std::size_t kDraws = 100000;
    double sum = 0;
    double sum_squares = 0;
    for (std::size_t i = 0; i < kDraws; ++i) {
      const auto x = static_cast<double>(online::poisson(mean, rng));
      sum += x;
      sum_squares += x * x;
    }
    const double sample_mean = sum / kDraws;
    const double sample_variance = sum_squares / kDraws - sample_mean * sample_mean;
    EXPECT_NEAR(sample_mean, mean, 5 * std::sqrt(mean / kDraws)) << mean;
    // The variance of the sample variance of a Poisson is about (mean + 2 mean^2) / n.
    EXPECT_NEAR(sample_variance, mean, 5 * std::sqrt((mean + 2 * mean * mean) / kDraws)) << mean;
  }
  SplitMix64 rng(1);
  EXPECT_EQ(online::poisson(0, rng), 0u);
}

// ---- team-draft interleaving ----

std::vector<std::uint32_t> ids(std::initializer_list<std::uint32_t> list) {
  return list;
}

TEST(TeamDraftOnline, AlternatesPicksInRoundsDecidedByTheCoin) {
  const auto a = ids({1, 2, 3, 4});
  const auto b = ids({11, 12, 13, 14});
  online::InterleavedPage page;
  online::team_draft(
      a, b, 4, [] { return true; }, page);
  EXPECT_EQ(page.docs, ids({1, 11, 2, 12}));
  EXPECT_EQ(page.teams, (std::vector<Team>{Team::kA, Team::kB, Team::kA, Team::kB}));
  online::team_draft(
      a, b, 4, [] { return false; }, page);
  EXPECT_EQ(page.docs, ids({11, 1, 12, 2}));
  EXPECT_EQ(page.teams, (std::vector<Team>{Team::kB, Team::kA, Team::kB, Team::kA}));
  // Coins true, false: round 1 A first, round 2 B first.
  bool coin = false;
  int flips = 0;
  online::team_draft(
      a, b, 4,
      [&] {
        ++flips;
        return coin = !coin;
      },
      page);
  EXPECT_EQ(page.docs, ids({1, 11, 12, 2}));
  EXPECT_EQ(flips, 2);  // once per round
}

TEST(TeamDraftOnline, SkipsDocumentsAlreadyShownAndFillsFromTheOtherRanking) {
  // A = x y z, B = y x w (x=1, y=2, z=3, w=4), traced by hand. Coin A: A picks x, B's best unshown is y;
  // round 2: A picks z, B picks w.
  const auto a = ids({1, 2, 3});
  const auto b = ids({2, 1, 4});
  online::InterleavedPage page;
  online::team_draft(
      a, b, 4, [] { return true; }, page);
  EXPECT_EQ(page.docs, ids({1, 2, 3, 4}));
  EXPECT_EQ(page.teams, (std::vector<Team>{Team::kA, Team::kB, Team::kA, Team::kB}));
  // Coin B: B picks y, A picks x; round 2: B picks w (y and x are shown), A picks z.
  online::team_draft(
      a, b, 4, [] { return false; }, page);
  EXPECT_EQ(page.docs, ids({2, 1, 4, 3}));
  EXPECT_EQ(page.teams, (std::vector<Team>{Team::kB, Team::kA, Team::kB, Team::kA}));
  // A runs out after one document: B fills the page.
  online::team_draft(
      ids({5}), ids({6, 7, 8}), 4, [] { return true; }, page);
  EXPECT_EQ(page.docs, ids({5, 6, 7, 8}));
  EXPECT_EQ(page.teams, (std::vector<Team>{Team::kA, Team::kB, Team::kB, Team::kB}));
  // Both run out before the depth: the page is shorter.
  online::team_draft(
      ids({5}), ids({5}), 10, [] { return false; }, page);
  EXPECT_EQ(page.docs, ids({5}));
  EXPECT_EQ(page.teams, std::vector<Team>{Team::kB});
}

TEST(TeamDraftOnline, IdenticalRankingsShowTheRankingWithBalancedRandomTeams) {
  const auto a = ids({9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 10, 11});
  SplitMix64 rng(3);
  online::InterleavedPage page;
  std::size_t b_at_top = 0;
  constexpr std::size_t kPages = 20000;
  for (std::size_t s = 0; s < kPages; ++s) {
    online::team_draft(a, a, 10, rng, page);
    ASSERT_EQ(page.docs, std::vector<std::uint32_t>(a.begin(), a.begin() + 10));
    std::size_t picks_a = 0;
    std::size_t picks_b = 0;
    for (const Team team : page.teams) {
      (team == Team::kA ? picks_a : picks_b) += 1;
      ASSERT_LE(std::max(picks_a, picks_b) - std::min(picks_a, picks_b), 1u);
    }
    b_at_top += page.teams[0] == Team::kB ? 1 : 0;
  }
  EXPECT_NEAR(static_cast<double>(b_at_top) / kPages, 0.5, binomial_tolerance(0.5, kPages));
}

TEST(TeamDraftOnline, CreditGoesToTheTeamWithMoreClicks) {
  const std::vector<Team> teams = {Team::kA, Team::kB, Team::kA, Team::kB};
  auto clicks = [](std::initializer_list<bool> clicked) {
    std::vector<SimulatedClick> out;
    for (const bool c : clicked) out.push_back({c, c ? 1000.0 : 0.0});
    return out;
  };
  EXPECT_EQ(online::credit(teams, clicks({false, false, false, false})), Preference::kTie);
  EXPECT_EQ(online::credit(teams, clicks({true, false, false, false})), Preference::kA);
  EXPECT_EQ(online::credit(teams, clicks({true, true, false, true})), Preference::kB);
  EXPECT_EQ(online::credit(teams, clicks({true, true, false, false})), Preference::kTie);
}

// ---- preparing the experiment ----

struct TinySet {
  Qrels qrels;
  Queries queries;
  Run a;
  Run b;
  TinySet() {
    queries.add({"q1", "first"});
    queries.add({"q2", "second"});
    queries.add({"q3", "third"});
    qrels.by_query["q1"] = {{"d1", 2}, {"d2", 0}, {"d3", 1}};
    qrels.by_query["q2"] = {{"d4", 1}};
    qrels.by_query["q3"] = {{"d5", 1}};                    // ranked by neither run
    qrels.by_query["q9"] = {{"d1", 1}};                    // no query text
    a.by_query["q1"] = {{"d1", 3}, {"dX", 2}, {"d2", 1}};  // dX unjudged: grade 0
    b.by_query["q1"] = {{"d3", 3}, {"d1", 2}};
    b.by_query["q2"] = {{"d4", 1}};  // only B ranks q2
  }
};

TEST(OnlineExperiment, PagesCarryGradesAndSharedDocumentIdsAndCountWhatWasLeftOut) {
  TinySet s;
  const auto experiment = online::prepare_experiment(s.qrels, s.queries, s.a, s.b, 2, nullptr);
  ASSERT_EQ(experiment.queries.size(), 2u);
  const auto& q1 = experiment.queries[0];
  EXPECT_EQ(q1.qid, "q1");
  EXPECT_EQ(q1.grades_a, (std::vector<int>{2, 0}));  // depth 2: d1, dX
  EXPECT_EQ(q1.grades_b, (std::vector<int>{1, 2}));  // d3, d1
  // d1 is the same document in both rankings: the same local id, which interleaving needs.
  EXPECT_EQ(q1.docs_a[0], q1.docs_b[1]);
  EXPECT_NE(q1.docs_a[1], q1.docs_b[0]);
  EXPECT_EQ(experiment.queries[1].qid, "q2");
  EXPECT_TRUE(experiment.queries[1].grades_a.empty());
  EXPECT_EQ(experiment.no_query_text, 1u);
  EXPECT_EQ(experiment.not_in_runs, 1u);
  EXPECT_EQ(experiment.only_in_b, 1u);
  EXPECT_EQ(experiment.only_in_a, 0u);
  EXPECT_THROW(online::prepare_experiment(s.qrels, s.queries, s.a, s.b, 0, nullptr), Error);
  EXPECT_THROW(online::prepare_experiment(s.qrels, Queries{}, s.a, s.b, 10, nullptr), Error);
}

TEST(OnlineExperiment, QueryWeightsSetHowOftenEachQueryIsIssued) {
  TinySet s;
  const online::QueryWeights weights = {{"q1", 1}, {"q2", 3}, {"q7", 5}};
  const auto experiment = online::prepare_experiment(s.qrels, s.queries, s.a, s.b, 10, &weights);
  ASSERT_EQ(experiment.queries.size(), 2u);
  EXPECT_EQ(experiment.unknown_weights, 1u);  // q7
  SplitMix64 rng(5);
  constexpr std::size_t kDraws = 40000;
  std::size_t q2 = 0;
  for (std::size_t i = 0; i < kDraws; ++i) q2 += experiment.sample_query(rng) == 1 ? 1 : 0;
  EXPECT_NEAR(static_cast<double>(q2) / kDraws, 0.75, binomial_tolerance(0.75, kDraws));
  const online::QueryWeights only_q1 = {{"q1", 2}, {"q2", 0}};
  const auto one = online::prepare_experiment(s.qrels, s.queries, s.a, s.b, 10, &only_q1);
  EXPECT_EQ(one.queries.size(), 1u);
  EXPECT_EQ(one.zero_weight, 1u);
}

TEST(OnlineExperiment, ReadsQueryWeightsAndRejectsBadLines) {
  testing::TempDir dir;
  const auto good = dir.write("w.tsv", "q1\t10\nq2\t0.5\n");
  const auto weights = online::read_query_weights(good);
  EXPECT_EQ(weights.size(), 2u);
  EXPECT_DOUBLE_EQ(weights.at("q2"), 0.5);
  const auto negative = dir.write("neg.tsv", "q1\t1\nq2\t-1\n");
  EXPECT_ERROR(online::read_query_weights(negative), negative, "weight", "must be >= 0");
  const auto twice = dir.write("twice.tsv", "q1\t1\nq1\t2\n");
  EXPECT_ERROR(online::read_query_weights(twice), twice, "qid", "listed twice");
  const auto text = dir.write("text.tsv", "q1\tmany\n");
  EXPECT_THROW(online::read_query_weights(text), Error);
}

// ---- the A/B analysis ----

TEST(OnlineAbTest, MetricsFollowTheirDefinitionsOnHandBuiltUsers) {
  // Bucket A: a user with 2 pages (1 clicked, 1 click of 40 s), one with 4 pages (all clicked, 6 clicks,
  // 60 s in all, 3 satisfied pages) and an inactive user. Bucket B: one user, 5 pages, none clicked.
  std::vector<online::UserOutcome> users(4);
  users[0] = {2, 1, 1, 1, 40000, false};
  users[1] = {4, 4, 6, 3, 60000, false};
  users[2] = {0, 0, 0, 0, 0, false};
  users[3] = {5, 0, 0, 0, 0, true};
  online::AbOptions options;
  options.bootstrap = 0;
  const auto result = online::analyse_ab(users, options, 1, 1);
  EXPECT_EQ(result.a.users, 3u);
  EXPECT_EQ(result.a.active_users, 2u);
  EXPECT_EQ(result.b.users, 1u);
  const auto a = [&](Metric m) { return result.deltas[static_cast<std::size_t>(m)].a; };
  EXPECT_DOUBLE_EQ(a(Metric::kPageCtr), 5.0 / 6);          // clicked pages / pages
  EXPECT_DOUBLE_EQ(a(Metric::kUserCtr), (0.5 + 1.0) / 2);  // the mean of the users' own CTRs
  EXPECT_DOUBLE_EQ(a(Metric::kClicksPerPage), 7.0 / 6);
  EXPECT_DOUBLE_EQ(a(Metric::kDwellPerClick), 100.0 / 7);  // seconds
  EXPECT_DOUBLE_EQ(a(Metric::kAbandonment), 1.0 / 6);
  EXPECT_DOUBLE_EQ(a(Metric::kSatisfiedCtr), 4.0 / 6);
  const auto& page_ctr = result.deltas[static_cast<std::size_t>(Metric::kPageCtr)];
  EXPECT_DOUBLE_EQ(page_ctr.b, 0.0);
  EXPECT_DOUBLE_EQ(page_ctr.relative, -1.0);
  EXPECT_TRUE(std::isnan(result.deltas[static_cast<std::size_t>(Metric::kDwellPerClick)].b));  // no click
}

// One query whose pages are given grade lists.
online::Experiment one_query(std::vector<int> grades_a, std::vector<int> grades_b) {
  online::Experiment experiment;
  online::QueryPages page;
  page.qid = "q";
  page.grades_a = std::move(grades_a);
  page.grades_b = std::move(grades_b);
  experiment.queries.push_back(page);
  return experiment;
}

TEST(OnlineAbTest, PageCtrPerBucketIsTheModelsExactPageClickProbability) {
  const auto experiment = one_query({1, 0, 2}, {0, 0, 1});
  const ClickModel model(round_model(ClickModelKind::kDbn));
  online::TrafficOptions traffic;
  traffic.users = 4000;
  traffic.days = 10;
  traffic.seed = 8;
  const auto users = online::simulate_ab_users(experiment, model, traffic);
  online::AbOptions options;
  options.bootstrap = 0;
  const auto result = online::analyse_ab(users, options, traffic.seed, 2);
  // By hand (DBN, gamma 0.5): page A is kPage, 0.63; page B (0.2, 0.2, 0.5): no click
  // 0.8 (0.5 * 0.8 (0.5 * 0.5 + 0.5) + 0.5) = 0.8 * 0.8 = 0.64, so 0.36.
  const auto& ctr = result.deltas[static_cast<std::size_t>(Metric::kPageCtr)];
  EXPECT_NEAR(ctr.a, 0.63, binomial_tolerance(0.63, result.a.pages));
  EXPECT_NEAR(ctr.b, 0.36, binomial_tolerance(0.36, result.b.pages));
  // Buckets split users about evenly, and users issue queries_per_user_day * days pages on average.
  const auto users_total = static_cast<double>(traffic.users);
  EXPECT_NEAR(static_cast<double>(result.b.users) / users_total, 0.5, binomial_tolerance(0.5, traffic.users));
  const double pages_per_user = static_cast<double>(result.a.pages + result.b.pages) / users_total;
  EXPECT_NEAR(pages_per_user, 10.0, 1.0);
}

TEST(OnlineAbTest, IsAFunctionOfTheSeedNotOfTheThreadCount) {
  const auto experiment = one_query({1, 0, 2}, {2, 1, 0});
  const ClickModel model(round_model(ClickModelKind::kPbm));
  online::TrafficOptions traffic;
  traffic.users = 3000;
  traffic.days = 3;
  traffic.seed = 4;
  traffic.threads = 1;
  const auto one = online::simulate_ab_users(experiment, model, traffic);
  traffic.threads = 2;
  const auto two = online::simulate_ab_users(experiment, model, traffic);
  ASSERT_EQ(one.size(), two.size());
  for (std::size_t u = 0; u < one.size(); ++u) {
    ASSERT_EQ(one[u].pages, two[u].pages);
    ASSERT_EQ(one[u].clicks, two[u].clicks);
    ASSERT_EQ(one[u].dwell_ms, two[u].dwell_ms);
    ASSERT_EQ(one[u].in_b, two[u].in_b);
  }
  online::AbOptions options;
  options.bootstrap = 200;
  const auto r1 = online::analyse_ab(one, options, 4, 1);
  const auto r2 = online::analyse_ab(two, options, 4, 2);
  EXPECT_EQ(r1.deltas[0].ci_low, r2.deltas[0].ci_low);
  EXPECT_EQ(r1.deltas[0].ci_high, r2.deltas[0].ci_high);
  traffic.seed = 5;
  const auto other = online::simulate_ab_users(experiment, model, traffic);
  std::size_t differ = 0;
  for (std::size_t u = 0; u < one.size(); ++u) differ += one[u].clicks != other[u].clicks ? 1 : 0;
  EXPECT_GT(differ, 100u);
}

// A collection where the ideal ranking and a poor one can be compared: 30 queries of 20 documents with grades
// 0..3; A ranks each query's documents in a fixed random order, B by grade (the ideal ranking).
struct RankingPair {
  Qrels qrels;
  Queries queries;
  Run random;
  Run ideal;
  RankingPair() {
    SplitMix64 rng(99);
    for (int q = 0; q < 30; ++q) {
      const std::string qid = "q" + std::to_string(q);
      queries.add({qid, "query " + qid});
      std::vector<std::pair<std::string, int>> docs;
      for (int d = 0; d < 20; ++d) {
        // Mostly non-relevant, a few good documents: like a TREC DL candidate list.
        const double u = rng.uniform();
        const int grade = u < 0.6 ? 0 : u < 0.8 ? 1 : u < 0.93 ? 2 : 3;
        docs.emplace_back(qid + "d" + std::to_string(d), grade);
        qrels.by_query[qid][docs.back().first] = grade;
      }
      for (std::size_t i = docs.size(); i > 1; --i) std::swap(docs[i - 1], docs[rng.below(i)]);
      for (std::size_t i = 0; i < docs.size(); ++i) {
        random.by_query[qid].push_back({docs[i].first, static_cast<double>(docs.size() - i)});
        ideal.by_query[qid].push_back({docs[i].first, docs[i].second + 0.001 * static_cast<double>(i)});
      }
      ideal.sort_by_score();
      random.sort_by_score();
    }
  }
};

ClickModelOptions standard_model(ClickModelKind kind) {
  ClickModelOptions options;
  options.kind = kind;
  return options;
}

TEST(OnlineAbTest, TheIdealRankingWinsWithEveryClickModel) {
  RankingPair pair;
  const auto experiment =
      online::prepare_experiment(pair.qrels, pair.queries, pair.random, pair.ideal, 10, nullptr);
  for (const auto kind : kAllKinds) {
    SCOPED_TRACE(click_model_kind_name(kind));
    const ClickModel model(standard_model(kind));
    online::TrafficOptions traffic;
    traffic.users = 4000;
    traffic.days = 7;
    traffic.seed = 21;
    online::AbOptions options;
    options.bootstrap = 500;
    const auto ab = online::analyse_ab(online::simulate_ab_users(experiment, model, traffic), options, 21, 0);
    const auto delta = [&](Metric m) { return ab.deltas[static_cast<std::size_t>(m)]; };
    // Better results are clicked on more satisfyingly: longer dwell, more satisfied pages, in every model.
    EXPECT_GT(delta(Metric::kDwellPerClick).ci_low, 0);
    EXPECT_GT(delta(Metric::kSatisfiedCtr).ci_low, 0);
    // B's top 10 holds more relevant documents than A's random 10 of 20: more pages get a click in every
    // model (for the cascade only because of the different documents: see the next test).
    EXPECT_GT(delta(Metric::kPageCtr).ci_low, 0);
    EXPECT_GT(delta(Metric::kUserCtr).ci_low, 0);
    EXPECT_LT(delta(Metric::kAbandonment).ci_high, 0);
    const auto interleaving = online::simulate_interleaving(experiment, model, traffic);
    EXPECT_GT(interleaving.wins_b, interleaving.wins_a);
    EXPECT_LT(interleaving.p_value, 1e-6);
    EXPECT_GT(interleaving.delta(), 0);
  }
}

TEST(OnlineAbTest, CascadePageCtrIsTheSameForEveryOrderOfThePage) {
  const ClickModel model(standard_model(ClickModelKind::kCascade));
  std::vector<int> page = {0, 3, 1, 0, 2, 0, 0, 1, 0, 0};
  const double expected = model.page_click_probability(page);
  std::sort(page.begin(), page.end(), std::greater<>());
  EXPECT_NEAR(model.page_click_probability(page), expected, 1e-12);
  // The DBN's page CTR does depend on the order: good results first are reached before the user gives up.
  const ClickModel dbn(standard_model(ClickModelKind::kDbn));
  const double sorted = dbn.page_click_probability(page);
  std::reverse(page.begin(), page.end());
  EXPECT_GT(sorted, dbn.page_click_probability(page) + 0.05);
}

TEST(OnlineAbTest, WhenAEqualsBTheIntervalCoversZeroAtTheNominalRate) {
  RankingPair pair;
  const auto experiment =
      online::prepare_experiment(pair.qrels, pair.queries, pair.random, pair.random, 10, nullptr);
  const ClickModel model(standard_model(ClickModelKind::kDbn));
  constexpr std::size_t kSeeds = 300;
  std::size_t covered = 0;
  for (std::size_t seed = 0; seed < kSeeds; ++seed) {
    online::TrafficOptions traffic;
    traffic.users = 600;
    traffic.days = 5;
    traffic.seed = seed;
    online::AbOptions options;
    options.bootstrap = 400;
    const auto ab =
        online::analyse_ab(online::simulate_ab_users(experiment, model, traffic), options, seed, 0);
    const auto& page_ctr = ab.deltas[static_cast<std::size_t>(Metric::kPageCtr)];
    covered += page_ctr.ci_low <= 0 && 0 <= page_ctr.ci_high ? 1 : 0;
  }
  const double coverage = static_cast<double>(covered) / kSeeds;
  EXPECT_NEAR(coverage, 0.95, rate_tolerance(0.95, kSeeds)) << covered << " of " << kSeeds;
}

TEST(OnlineInterleaving, WhenAEqualsBFalsePositivesStayNearTheNominalFivePercent) {
  RankingPair pair;
  const auto experiment =
      online::prepare_experiment(pair.qrels, pair.queries, pair.random, pair.random, 10, nullptr);
  for (const auto kind : kAllKinds) {
    SCOPED_TRACE(click_model_kind_name(kind));
    const ClickModel model(standard_model(kind));
    online::SensitivityOptions options;
    options.budgets = {3000};
    options.repetitions = 1000;
    const auto result = online::simulate_sensitivity(experiment, model, options, 17, 0);
    ASSERT_EQ(result.points.size(), 1u);
    // The exact sign test is slightly conservative (its size is at most alpha), hence the one-sided slack
    // below 5% on top of three standard errors.
    const double tolerance = rate_tolerance(0.05, options.repetitions);
    EXPECT_LE(result.points[0].interleaving_power, 0.05 + tolerance);
    EXPECT_GE(result.points[0].interleaving_power, 0.05 - tolerance - 0.01);
    EXPECT_NEAR(result.points[0].ab_power, 0.05, tolerance);
  }
}

TEST(OnlineInterleaving, IsMoreSensitiveThanAnAbTestAndItsPowerGrowsWithTheBudget) {
  RankingPair pair;
  const auto experiment =
      online::prepare_experiment(pair.qrels, pair.queries, pair.random, pair.ideal, 10, nullptr);
  const ClickModel model(standard_model(ClickModelKind::kDbn));
  online::SensitivityOptions options;
  options.budgets = {30, 100, 300, 1000, 3000};
  options.repetitions = 200;
  const auto result = online::simulate_sensitivity(experiment, model, options, 5, 0);
  ASSERT_EQ(result.points.size(), 5u);
  for (std::size_t i = 1; i < result.points.size(); ++i) {
    // Power does not fall with more impressions (up to sampling noise).
    EXPECT_GE(result.points[i].interleaving_power, result.points[i - 1].interleaving_power - 0.1);
    EXPECT_GE(result.points[i].ab_power, result.points[i - 1].ab_power - 0.1);
  }
  EXPECT_GT(result.points.back().interleaving_power, 0.95);
  EXPECT_EQ(result.points.back().interleaving_b_better, 1.0);  // every significant result favours B
  ASSERT_GT(result.interleaving_needed, 0u);
  EXPECT_TRUE(result.ab_needed == 0 || result.interleaving_needed <= result.ab_needed);
  EXPECT_EQ(result.impressions, 2 * 200 * (30 + 100 + 300 + 1000 + 3000));
  // The same with another thread count: the same curve.
  const auto again = online::simulate_sensitivity(experiment, model, options, 5, 1);
  for (std::size_t i = 0; i < result.points.size(); ++i) {
    EXPECT_EQ(again.points[i].ab_power, result.points[i].ab_power);
    EXPECT_EQ(again.points[i].interleaving_power, result.points[i].interleaving_power);
  }
}

}  // namespace
}  // namespace disranker
