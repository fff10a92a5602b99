// Click simulation, what is derived from click logs (CPT pairs, graded labels) and the CPT pairs format. The
// click models are checked against their formulas (rates within binomial tolerances), the estimators against
// a log built to fool naive CTR, and the pairs against hand-written logs and WikiQA-style qrels.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/random.h"
#include "data/click_derive.h"
#include "data/click_model.h"
#include "data/clicks.h"
#include "data/cpt_pairs.h"
#include "test_util.h"

namespace disranker {
namespace {

using testing::TempDir;

// The action throws an Error at file:line, naming the field, whose message holds `what`.
void expect_error_at(const std::function<void()>& action, const std::string& file, std::size_t line,
                     const std::string& field, const std::string& what) {
  try {
    action();
  } catch (const Error& e) {
    EXPECT_EQ(e.line(), line) << e.what();
    testing::expect_error([&] { throw e; }, file, field, what);
    return;
  }
  ADD_FAILURE() << "expected a disranker::Error at " << file << ":" << line << " (" << field << ")";
}

// Five binomial standard deviations: a correct model fails this about once in 3.5 million checks.
double binomial_tolerance(double p, std::size_t n) {
  return 5 * std::sqrt(p * (1 - p) / static_cast<double>(n));
}

ClickModelOptions pbm(double eta = 1.0, double epsilon = 0.1, int max_grade = 3) {
  ClickModelOptions options;
  options.kind = ClickModelKind::kPbm;
  options.eta = eta;
  options.epsilon = epsilon;
  options.max_grade = max_grade;
  return options;
}

ClickModelOptions cascade(double epsilon = 0.1, int max_grade = 3) {
  ClickModelOptions options = pbm(1.0, epsilon, max_grade);
  options.kind = ClickModelKind::kCascade;
  return options;
}

// Click counts per position over `sessions` simulated sessions of one page.
std::vector<std::size_t> clicks_per_position(const ClickModel& model, const std::vector<int>& grades,
                                             std::size_t sessions, std::uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<std::size_t> clicks(grades.size(), 0);
  for (std::size_t s = 0; s < sessions; ++s) {
    const auto outcome = model.simulate(grades, rng);
    for (std::size_t i = 0; i < grades.size(); ++i) clicks[i] += outcome[i].clicked ? 1 : 0;
  }
  return clicks;
}

// ---- the click model's formulas ----

TEST(ClickModel, AttractivenessIsTheExponentialGainScaledAboveTheNoiseFloor) {
  const ClickModel model(pbm(1.0, 0.1, 3));
  // epsilon + (1 - epsilon)(2^g - 1)/(2^3 - 1), by hand.
  EXPECT_DOUBLE_EQ(model.attractiveness(0), 0.1);
  EXPECT_DOUBLE_EQ(model.attractiveness(1), 0.1 + 0.9 * 1 / 7);
  EXPECT_DOUBLE_EQ(model.attractiveness(2), 0.1 + 0.9 * 3 / 7);
  EXPECT_DOUBLE_EQ(model.attractiveness(3), 1.0);
  // Unjudged/negative grades count as 0; grades above gmax are clamped.
  EXPECT_DOUBLE_EQ(model.attractiveness(-1), 0.1);
  EXPECT_DOUBLE_EQ(model.attractiveness(7), 1.0);
  // Binary labels (WikiQA): 0 -> epsilon, 1 -> 1.
  const ClickModel binary(pbm(1.0, 0.2, 1));
  EXPECT_DOUBLE_EQ(binary.attractiveness(0), 0.2);
  EXPECT_DOUBLE_EQ(binary.attractiveness(1), 1.0);
}

TEST(ClickModel, ExaminationFollowsThePowerLawOfRank) {
  const ClickModel model(pbm(1.0));
  EXPECT_DOUBLE_EQ(model.examination(1), 1.0);
  EXPECT_DOUBLE_EQ(model.examination(2), 0.5);
  EXPECT_DOUBLE_EQ(model.examination(4), 0.25);
  EXPECT_DOUBLE_EQ(ClickModel(pbm(2.0)).examination(2), 0.25);
  EXPECT_DOUBLE_EQ(ClickModel(pbm(0.0)).examination(9), 1.0);  // no position bias
}

TEST(ClickModel, DwellMedianGrowsGeometricallyFromGradeZeroToTheTopGrade) {
  const ClickModel model(pbm());
  EXPECT_DOUBLE_EQ(model.dwell_median_ms(0), 8000);
  EXPECT_NEAR(model.dwell_median_ms(1), 8000 * std::cbrt(7.5), 1e-6);
  EXPECT_NEAR(model.dwell_median_ms(2), 8000 * std::cbrt(7.5 * 7.5), 1e-6);
  EXPECT_DOUBLE_EQ(model.dwell_median_ms(3), 60000);
}

TEST(ClickModel, RejectsOptionsOutOfRange) {
  EXPECT_THROW(ClickModel(pbm(-1.0)), Error);
  EXPECT_THROW(ClickModel(pbm(1.0, 1.5)), Error);
  EXPECT_THROW(ClickModel(pbm(1.0, 0.1, 0)), Error);
  ClickModelOptions dwell = pbm();
  dwell.dwell_min_ms = 70000;  // above the top grade's median
  EXPECT_THROW((ClickModel(dwell)), Error);
  EXPECT_THROW(parse_click_model_kind("ubm"), Error);
  EXPECT_EQ(parse_click_model_kind("cascade"), ClickModelKind::kCascade);
}

// ---- simulated clicks against the formulas ----

TEST(ClickModel, PbmClickRatePerPositionConvergesToExaminationTimesAttractiveness) {
  const ClickModel model(pbm(1.0, 0.1, 3));
  const std::vector<int> grades = {3, 0, 2, 1, 3, 0, 2};
  constexpr std::size_t kSessions = 40000;
  const auto clicks = clicks_per_position(model, grades, kSessions, 12345);
  for (std::size_t i = 0; i < grades.size(); ++i) {
    const int rank = static_cast<int>(i) + 1;
    // A direct transcription of the PBM: (1/k)^eta * (eps + (1 - eps)(2^g - 1)/(2^gmax - 1)).
    const double expected = (1.0 / rank) * (0.1 + 0.9 * (std::exp2(grades[i]) - 1) / 7);
    EXPECT_NEAR(static_cast<double>(clicks[i]) / kSessions, expected, binomial_tolerance(expected, kSessions))
        << "rank " << rank;
  }
}

TEST(ClickModel, PbmWithSteeperBiasMatchesTheSteeperCurve) {
  const ClickModel model(pbm(2.0, 0.1, 1));
  const std::vector<int> grades = {1, 1, 1, 1};
  constexpr std::size_t kSessions = 40000;
  const auto clicks = clicks_per_position(model, grades, kSessions, 99);
  for (std::size_t i = 0; i < grades.size(); ++i) {
    const double expected = 1.0 / static_cast<double>((i + 1) * (i + 1));
    EXPECT_NEAR(static_cast<double>(clicks[i]) / kSessions, expected,
                binomial_tolerance(expected, kSessions));
  }
}

TEST(ClickModel, CascadeNeverClicksBelowASatisfyingStop) {
  // Grade 3 has attractiveness and satisfaction 1: once reached, it is clicked and it is the last click.
  const ClickModel model(cascade(0.1, 3));
  const std::vector<int> grades = {0, 3, 2, 3, 1};
  SplitMix64 rng(5);
  std::size_t first_clicks = 0;
  std::size_t second_clicks = 0;
  constexpr std::size_t kSessions = 20000;
  for (std::size_t s = 0; s < kSessions; ++s) {
    const auto outcome = model.simulate(grades, rng);
    for (std::size_t i = 2; i < grades.size(); ++i) ASSERT_FALSE(outcome[i].clicked) << "rank " << i + 1;
    first_clicks += outcome[0].clicked ? 1 : 0;
    second_clicks += outcome[1].clicked ? 1 : 0;
  }
  EXPECT_NEAR(static_cast<double>(first_clicks) / kSessions, 0.1, binomial_tolerance(0.1, kSessions));
  // Rank 2 is reached unless rank 1 was clicked (0.1) and satisfied (0.1): 1 - 0.01.
  EXPECT_NEAR(static_cast<double>(second_clicks) / kSessions, 0.99, binomial_tolerance(0.99, kSessions));
}

TEST(ClickModel, CascadeContinuesAfterAnUnsatisfyingClick) {
  // Two results of attractiveness a: the second is examined unless the first was clicked and satisfied, so
  // P(click 2) = a * (1 - a * a) (satisfaction = attractiveness), by hand from the model's definition.
  const ClickModel model(cascade(0.1, 3));
  const double a = model.attractiveness(1);
  constexpr std::size_t kSessions = 60000;
  const auto clicks = clicks_per_position(model, {1, 1}, kSessions, 77);
  EXPECT_NEAR(static_cast<double>(clicks[0]) / kSessions, a, binomial_tolerance(a, kSessions));
  const double second = a * (1 - a * a);
  EXPECT_NEAR(static_cast<double>(clicks[1]) / kSessions, second, binomial_tolerance(second, kSessions));
}

TEST(ClickModel, DwellIsPositiveOnlyOnClicksAndItsMedianRisesWithTheGrade) {
  // Epsilon 1: every result is attractive, so every grade gets clicked often.
  const ClickModel model(pbm(0.0, 1.0, 3));
  const std::vector<int> grades = {0, 1, 2, 3};
  SplitMix64 rng(2024);
  std::vector<std::vector<double>> dwell(4);
  for (int s = 0; s < 4000; ++s) {
    const auto outcome = model.simulate(grades, rng);
    for (std::size_t i = 0; i < grades.size(); ++i) {
      ASSERT_EQ(outcome[i].clicked, outcome[i].dwell_ms > 0);
      if (outcome[i].clicked) dwell[i].push_back(outcome[i].dwell_ms);
    }
  }
  double previous = 0;
  for (int g = 0; g <= 3; ++g) {
    auto& d = dwell[static_cast<std::size_t>(g)];
    ASSERT_EQ(d.size(), 4000u);
    std::nth_element(d.begin(), d.begin() + 2000, d.end());
    const double median = d[2000];
    // The sample median of 4000 log-normal draws (sigma 0.5) is within ~4% of the true median at 5 sd.
    EXPECT_NEAR(median / model.dwell_median_ms(g), 1.0, 0.05) << "grade " << g;
    EXPECT_GT(median, previous) << "grade " << g;
    previous = median;
  }
}

// ---- simulate_click_log on a tiny collection ----

struct TinyCollection {
  Queries queries;
  Docs docs;
  Qrels qrels;
  Run run;

  TinyCollection() {
    queries.add({"q1", "what is a cave"});
    queries.add({"q2", "tallest mountain"});
    queries.add({"q3", "no judgments"});
    for (int i = 1; i <= 8; ++i) {
      const std::string id = "d" + std::to_string(i);
      docs.add({id, "Title " + id, "Text of " + id});
    }
    qrels.by_query["q1"] = {{"d1", 3}, {"d2", 0}, {"d3", 1}, {"d4", 2}, {"d5", 0}, {"d6", 1}};
    qrels.by_query["q2"] = {{"d7", 1}, {"d8", 0}};
    qrels.by_query["q9"] = {{"d1", 1}};  // no query text
    // "dX" is not in the docs: left out of the page (and counted).
    run.by_query["q1"] = {{"d4", 9}, {"dX", 8}, {"d2", 7}, {"d1", 6}, {"d3", 5}};
    run.by_query["q2"] = {{"d8", 2}, {"d7", 1}};
  }
};

TEST(SimulateClickLog, ShowsTheRunsTopDepthWithTitlesSummariesAndCountsWhatWasLeftOut) {
  TinyCollection c;
  ClickSimulationOptions options;
  options.model = pbm();
  options.sessions = 400;
  options.depth = 3;
  options.seed = 11;
  ClickSimulationReport report;
  const auto log = simulate_click_log(c.queries, c.docs, c.qrels, &c.run, options, &report);
  ASSERT_EQ(log.size(), 400u);
  EXPECT_EQ(report.eligible_queries, 2u);  // q1, q2 (q3: no qrels, q9: no text)
  EXPECT_EQ(report.no_query_text, 1u);
  EXPECT_EQ(report.missing_docs, 1u);  // dX, once per query page
  std::size_t q1 = 0;
  for (const auto& imp : log) {
    std::vector<std::string> shown;
    for (const auto& r : imp.results) {
      shown.push_back(r.docid);
      EXPECT_EQ(r.title, "Title " + r.docid);
      EXPECT_EQ(r.summary, "Text of " + r.docid);
    }
    if (imp.qid == "q1") {
      ++q1;
      EXPECT_EQ(imp.query, "what is a cave");
      EXPECT_EQ(shown, (std::vector<std::string>{"d4", "d2", "d1"}));  // run order, dX left out, depth 3
    } else {
      ASSERT_EQ(imp.qid, "q2");
      EXPECT_EQ(shown, (std::vector<std::string>{"d8", "d7"}));
    }
    for (std::size_t i = 0; i < imp.results.size(); ++i)
      EXPECT_EQ(imp.results[i].position, static_cast<int>(i) + 1);
  }
  // Queries are drawn uniformly: Binomial(400, 1/2).
  EXPECT_NEAR(static_cast<double>(q1) / 400, 0.5, binomial_tolerance(0.5, 400));
  // The log is valid in the click log format and survives a round trip.
  TempDir dir;
  const auto path = (dir.path() / "clicks.jsonl").string();
  write_click_log(path, log);
  const auto back = read_click_log(path);
  ASSERT_EQ(back.size(), log.size());
  for (std::size_t i = 0; i < log.size(); ++i) {
    ASSERT_EQ(back[i].results.size(), log[i].results.size());
    for (std::size_t j = 0; j < log[i].results.size(); ++j) {
      EXPECT_EQ(back[i].results[j].clicked, log[i].results[j].clicked);
      EXPECT_EQ(back[i].results[j].dwell_ms, log[i].results[j].dwell_ms);
    }
  }
}

TEST(SimulateClickLog, IsAFunctionOfTheSeedAndLongerLogsExtendShorterOnes) {
  TinyCollection c;
  ClickSimulationOptions options;
  options.model = cascade();
  options.sessions = 200;
  options.seed = 3;
  auto flatten = [](const std::vector<Impression>& log) {
    std::vector<std::string> out;
    for (const auto& imp : log) {
      std::string line = imp.qid + ":";
      for (const auto& r : imp.results)
        line += r.docid + (r.clicked ? "*" + std::to_string(r.dwell_ms) : "") + " ";
      out.push_back(line);
    }
    return out;
  };
  const auto a = flatten(simulate_click_log(c.queries, c.docs, c.qrels, &c.run, options, nullptr));
  const auto b = flatten(simulate_click_log(c.queries, c.docs, c.qrels, &c.run, options, nullptr));
  EXPECT_EQ(a, b);
  options.sessions = 300;
  const auto longer = flatten(simulate_click_log(c.queries, c.docs, c.qrels, &c.run, options, nullptr));
  EXPECT_EQ(std::vector<std::string>(longer.begin(), longer.begin() + 200), a);
  options.sessions = 200;
  options.seed = 4;
  EXPECT_NE(flatten(simulate_click_log(c.queries, c.docs, c.qrels, &c.run, options, nullptr)), a);
}

TEST(SimulateClickLog, WithoutARunShowsTheJudgedDocumentsInAFixedSeedDependentOrder) {
  TinyCollection c;
  ClickSimulationOptions options;
  options.model = pbm();
  options.sessions = 100;
  options.seed = 8;
  const auto log = simulate_click_log(c.queries, c.docs, c.qrels, nullptr, options, nullptr);
  const auto order = judged_page_order(c.qrels, "q1", 8);
  auto sorted = order;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<std::string>{"d1", "d2", "d3", "d4", "d5", "d6"}));  // a permutation
  for (const auto& imp : log) {
    if (imp.qid != "q1") continue;
    std::vector<std::string> shown;
    for (const auto& r : imp.results) shown.push_back(r.docid);
    EXPECT_EQ(shown, order);  // the same page every session
  }
  // Another seed gives another order (for these fixed seeds; 720 orders are possible).
  EXPECT_NE(judged_page_order(c.qrels, "q1", 9), order);
  EXPECT_EQ(judged_page_order(c.qrels, "q1", 8), order);
}

TEST(SimulateClickLog, FailsWhenNoQueryIsEligible) {
  TinyCollection c;
  disranker::Run unrelated;
  unrelated.by_query["q3"] = {{"d1", 1}};
  EXPECT_THROW(simulate_click_log(c.queries, c.docs, c.qrels, &unrelated, {}, nullptr), Error);
}

// ---- labels from clicks ----

// A log of one query whose ranker always shows an irrelevant document first and a relevant one fifth: the
// naive CTR ranks the irrelevant one higher.
std::vector<Impression> position_biased_log(std::size_t sessions) {
  const ClickModel model(pbm(1.0, 0.25, 3));
  const std::vector<std::string> docids = {"irrelevant", "f1", "f2", "f3", "relevant"};
  const std::vector<int> grades = {0, 0, 0, 0, 2};
  SplitMix64 rng(31337);
  std::vector<Impression> log;
  for (std::size_t s = 0; s < sessions; ++s) {
    const auto clicks = model.simulate(grades, rng);
    Impression imp{"q", "query", "", "", {}};
    for (std::size_t i = 0; i < docids.size(); ++i)
      imp.results.push_back(
          {docids[i], "", "", static_cast<int>(i) + 1, clicks[i].clicked, clicks[i].dwell_ms});
    log.push_back(std::move(imp));
  }
  return log;
}

TEST(ClickLabels, IpwRecoversTheGradeOrderWhereNaiveCtrIsFooledByPosition) {
  constexpr std::size_t kSessions = 20000;
  const auto log = position_biased_log(kSessions);
  // attract(0) = 0.25 at rank 1; attract(2) = 0.25 + 0.75 * 3/7 at rank 5 (examination 1/5).
  const double attract_relevant = 0.25 + 0.75 * 3.0 / 7;
  std::map<std::string, ClickRate> rates;
  for (const auto& rate : click_rates(log, 1.0, 10)) rates[rate.docid] = rate;
  EXPECT_NEAR(rates["irrelevant"].ctr, 0.25, binomial_tolerance(0.25, kSessions));
  EXPECT_NEAR(rates["relevant"].ctr, attract_relevant / 5,
              binomial_tolerance(attract_relevant / 5, kSessions));
  // Every impression of "relevant" is at rank 5: its IPW estimate is exactly 5 times its CTR.
  EXPECT_DOUBLE_EQ(rates["relevant"].ipw, 5 * rates["relevant"].ctr);
  EXPECT_DOUBLE_EQ(rates["irrelevant"].ipw, rates["irrelevant"].ctr);

  ClickLabelOptions options;
  options.thresholds = {0.2, 0.5};
  options.method = ClickLabelMethod::kCtr;
  const Qrels naive = click_labels(log, options, nullptr);
  EXPECT_GT(*naive.grade("q", "irrelevant"), *naive.grade("q", "relevant"));  // fooled
  options.method = ClickLabelMethod::kIpw;
  ClickLabelReport report;
  const Qrels debiased = click_labels(log, options, &report);
  EXPECT_EQ(*debiased.grade("q", "irrelevant"), 1);
  EXPECT_EQ(*debiased.grade("q", "relevant"), 2);
  EXPECT_EQ(report.labelled, 5u);
  EXPECT_EQ(report.clipped_weights, 0u);
}

TEST(ClickLabels, ClipsTheInverseWeightAndLeavesOutRarelyShownPairs) {
  // d20 is always at rank 20 and clicked in 2 of 6 impressions; weight 20 is clipped to 10.
  std::vector<Impression> log;
  for (int s = 0; s < 6; ++s) {
    Impression imp{"q", "query", "", "", {}};
    imp.results.push_back({"d1", "", "", 1, false, 0});
    imp.results.push_back({"d20", "", "", 20, s < 2, s < 2 ? 1000.0 : 0.0});
    if (s < 4) imp.results.push_back({"rare", "", "", 2, true, 500});
    log.push_back(std::move(imp));
  }
  std::size_t clipped = 0;
  const auto rates = click_rates(log, 1.0, 10, &clipped);
  EXPECT_EQ(clipped, 2u);
  const auto d20 =
      std::find_if(rates.begin(), rates.end(), [](const ClickRate& r) { return r.docid == "d20"; });
  ASSERT_NE(d20, rates.end());
  EXPECT_DOUBLE_EQ(d20->ipw, 2 * 10.0 / 6);

  ClickLabelOptions options;
  options.min_impressions = 5;
  ClickLabelReport report;
  const Qrels qrels = click_labels(log, options, &report);
  EXPECT_EQ(qrels.grade("q", "rare"), nullptr);  // 4 impressions
  EXPECT_EQ(report.too_few_impressions, 1u);
  EXPECT_EQ(report.pairs, 3u);
  EXPECT_EQ(*qrels.grade("q", "d1"), 0);
  EXPECT_EQ(*qrels.grade("q", "d20"), 3);  // 3.33 reaches the default thresholds 0.15, 0.35 and 0.7
  EXPECT_EQ(report.grade_counts, (std::vector<std::size_t>{1, 0, 0, 1}));
}

TEST(ClickLabels, GradeIsTheNumberOfThresholdsReached) {
  const std::vector<double> t = {0.05, 0.2, 0.5};
  EXPECT_EQ(grade_from_thresholds(0.0, t), 0);
  EXPECT_EQ(grade_from_thresholds(0.049, t), 0);
  EXPECT_EQ(grade_from_thresholds(0.05, t), 1);
  EXPECT_EQ(grade_from_thresholds(0.3, t), 2);
  EXPECT_EQ(grade_from_thresholds(0.5, t), 3);
  EXPECT_EQ(grade_from_thresholds(7.0, t), 3);
}

TEST(ClickLabels, RejectsThresholdsThatAreNotAscending) {
  ClickLabelOptions options;
  options.thresholds = {0.2, 0.1};
  EXPECT_THROW(click_labels({}, options, nullptr), Error);
  options.thresholds = {};
  EXPECT_THROW(click_labels({}, options, nullptr), Error);
  options.thresholds = {-0.1, 0.5};
  EXPECT_THROW(click_labels({}, options, nullptr), Error);
}

// ---- CPT pairs from a click log ----

Impression impression(const std::string& query, std::vector<ClickResult> results) {
  return Impression{"q", query, "", "", std::move(results)};
}

TEST(CptPairsFromClicks, KeepsSatisfiedClicksOnceEach) {
  const std::vector<Impression> log = {
      impression("What is a Cave?", {{"d1", "Cave", "A cave is a hollow.", 1, true, 12000},
                                     {"d2", "Caving", "Caving is a sport.", 2, true, 9999},
                                     {"d3", "Bat", "Bats live in caves.", 3, false, 0}}),
      // The same query up to case and spaces: its click on d1 is a duplicate; exactly 10 s is satisfied.
      impression("  what is a  cave? ", {{"d1", "Cave", "A cave is a hollow.", 1, true, 15000},
                                         {"d4", "Grotto", "A small cave.", 2, true, 10000}}),
      impression("tab\tquery", {{"d5", "", "", 1, true, 20000}, {"d6", "T", "", 2, true, 30000}}),
  };
  ClickPairReport report;
  const auto pairs = cpt_pairs_from_clicks(log, {}, &report);
  const std::vector<CptPair> expected = {{"What is a Cave?", "Cave", "A cave is a hollow."},
                                         {"  what is a  cave? ", "Grotto", "A small cave."},
                                         {"tab query", "T", ""}};  // the tab flattened to a space
  EXPECT_EQ(pairs, expected);
  EXPECT_EQ(report.impressions, 3u);
  EXPECT_EQ(report.clicks, 6u);
  EXPECT_EQ(report.short_dwell, 1u);
  EXPECT_EQ(report.duplicates, 1u);
  EXPECT_EQ(report.no_text, 1u);  // d5 has neither title nor summary
  EXPECT_EQ(report.kept, 3u);

  ClickPairOptions keep_all;
  keep_all.dedup = false;
  keep_all.min_dwell_ms = 0;
  EXPECT_EQ(cpt_pairs_from_clicks(log, keep_all, &report).size(), 5u);
  EXPECT_EQ(report.duplicates, 0u);
  EXPECT_EQ(report.short_dwell, 0u);
}

TEST(CptPairsFromClicks, NormalisationFoldsCaseCompatibilityFormsAndSpaces) {
  EXPECT_EQ(normalize_for_dedup("  What IS\ta  Cave? "), "what is a cave?");
  EXPECT_EQ(normalize_for_dedup("Straße"), "strasse");            // full case folding
  EXPECT_EQ(normalize_for_dedup("ﬁle №1"), "file no1");           // NFKC
  EXPECT_EQ(normalize_for_dedup("Cafe\xCC\x81"), "caf\xC3\xA9");  // composed
}

// ---- CPT pairs from WikiQA-style qrels ----

struct TinyWikiQa {
  TempDir dir;
  Queries queries;
  Docs docs;
  std::vector<OrderedJudgments> judgments;

  TinyWikiQa() {
    queries.add({"Q1", "how are caves formed"});
    queries.add({"Q2", "who built the pyramids"});
    queries.add({"Q3", "a question without candidates"});
    docs.add({"D1-0", "Cave", "A cave is a natural void."});
    docs.add({"D1-1", "Cave", "Caves form by dissolution of limestone."});
    docs.add({"D1-2", "Cave", "Some caves are very large."});
    docs.add({"D1-10", "Cave", "Erosion by water also forms caves."});
    docs.add({"D2-0", "Pyramid", "A pyramid is a structure."});
    docs.add({"D2-1", "Pyramid", "Pyramids are in Egypt."});
    // Page order, which is not docid order: D1-10 is the page's last sentence.
    const auto path = dir.write("qrels.txt",
                                "Q1 0 D1-0 0\nQ1 0 D1-1 1\nQ1 0 D1-2 0\nQ1 0 D1-10 1\n"
                                "Q2 0 D2-0 0\nQ2 0 D2-1 0\nQ9 0 D1-0 1\nQ2 0 D2-missing 0\n");
    judgments = read_qrels_in_file_order(path);
  }
};

TEST(CptPairsFromQrels, PageTargetPairsEveryQuestionWithItsPageInQrelsOrder) {
  TinyWikiQa w;
  ASSERT_EQ(w.judgments.size(), 3u);
  EXPECT_EQ(w.judgments[1].qid, "Q2");
  EXPECT_EQ(w.judgments[1].docs.back().first, "D2-missing");  // file order kept across interleaved queries
  QrelsPairReport report;
  const auto pairs = cpt_pairs_from_qrels(w.queries, w.docs, w.judgments, {}, &report);
  const std::vector<CptPair> expected = {
      {"how are caves formed", "Cave",
       "A cave is a natural void. Caves form by dissolution of limestone. Some caves are very large. Erosion "
       "by "
       "water also forms caves."},
      {"who built the pyramids", "Pyramid", "A pyramid is a structure. Pyramids are in Egypt."}};
  EXPECT_EQ(pairs, expected);
  EXPECT_EQ(report.questions, 3u);
  EXPECT_EQ(report.kept, 2u);
  EXPECT_EQ(report.without_positive, 1u);    // Q2: still paired with its page
  EXPECT_EQ(report.without_candidates, 1u);  // Q3
  EXPECT_EQ(report.missing_docs, 1u);        // D2-missing
  EXPECT_EQ(report.unknown_qids, 1u);        // Q9
  EXPECT_EQ(report.mixed_titles, 0u);
}

TEST(CptPairsFromQrels, PositiveTargetPairsEachQuestionWithEachPositiveSentence) {
  TinyWikiQa w;
  QrelsPairOptions options;
  options.target = QrelsPairTarget::kPositive;
  QrelsPairReport report;
  const auto pairs = cpt_pairs_from_qrels(w.queries, w.docs, w.judgments, options, &report);
  const std::vector<CptPair> expected = {
      {"how are caves formed", "Cave", "Caves form by dissolution of limestone."},
      {"how are caves formed", "Cave", "Erosion by water also forms caves."}};
  EXPECT_EQ(pairs, expected);
  EXPECT_EQ(report.without_positive, 1u);
  EXPECT_THROW(parse_qrels_pair_target("sentence"), Error);
}

TEST(CptPairsFromQrels, ReadingQrelsInFileOrderReportsBadLines) {
  TempDir dir;
  const auto path = dir.write("qrels.txt", "Q1 0 D1 1\nQ1 0 D1 0\n");
  EXPECT_ERROR(read_qrels_in_file_order(path), path, "docid", "duplicate judgment");
}

// ---- the CPT pairs file ----

TEST(CptPairsFile, RoundTripsExactly) {
  TempDir dir;
  const auto path = (dir.path() / "pairs.tsv").string();
  const std::vector<CptPair> pairs = {{"what is a cave", "Cave", "A cave is a hollow."},
                                      {"title only", "Only a title", ""},
                                      {"summary only", "", "Only a summary, ünïcödé."}};
  write_cpt_pairs(path, pairs);
  EXPECT_EQ(read_cpt_pairs(path), pairs);
  write_cpt_pairs(path, {});
  EXPECT_TRUE(read_cpt_pairs(path).empty());
}

TEST(CptPairsFile, ReaderNamesFileLineAndFieldOfMalformedLines) {
  TempDir dir;
  const std::string good = "q\tt\ts\n";
  auto file = [&](const std::string& name, const std::string& bad_line) {
    return dir.write(name, good + bad_line);
  };
  std::string path = file("two.tsv", "query\ttitle\n");
  expect_error_at([&] { read_cpt_pairs(path); }, path, 2, "summary", "expected 3 tab-separated columns");
  path = file("four.tsv", "query\ttitle\tsummary\textra\n");
  expect_error_at([&] { read_cpt_pairs(path); }, path, 2, "summary", "found 4");
  path = file("empty_query.tsv", " \ttitle\tsummary\n");
  expect_error_at([&] { read_cpt_pairs(path); }, path, 2, "query", "empty query");
  path = file("no_document.tsv", "query\t\t \n");
  expect_error_at([&] { read_cpt_pairs(path); }, path, 2, "summary", "both empty");
  path = file("utf8.tsv", "query\tbad \xC3\x28 title\tsummary\n");
  expect_error_at([&] { read_cpt_pairs(path); }, path, 2, "title", "invalid UTF-8");
  path = file("blank.tsv", "\n");
  expect_error_at([&] { read_cpt_pairs(path); }, path, 2, "", "empty line");
}

TEST(CptPairsFile, WriterRejectsWhatTheReaderWouldAndLeavesNoFile) {
  TempDir dir;
  const auto path = (dir.path() / "pairs.tsv").string();
  EXPECT_ERROR(write_cpt_pairs(path, {{"q", "t", "s"}, {"q", "a\tb", "s"}}), path, "pairs[1].title", "tab");
  EXPECT_ERROR(write_cpt_pairs(path, {{"  ", "t", "s"}}), path, "pairs[0].query", "empty query");
  EXPECT_ERROR(write_cpt_pairs(path, {{"q", "", ""}}), path, "pairs[0].summary", "both empty");
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace disranker
