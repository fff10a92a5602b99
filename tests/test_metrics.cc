// Metrics against values derived by hand (the derivations are in the comments), trec_eval's ordering rules, and
// the published TREC DL figures.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "eval/metrics.h"

namespace disranker {
namespace {

// Query q1: judged d1=3, d2=0, d3=1, d4=2; the run retrieves d2 .9, d1 .8, d5 .7 (unjudged), d3 .6 and misses d4.
// Query q2: judged a=1, b=0, both scored 1.0 (a tie that trec_eval breaks by docid descending: b, then a).
// Query q3: judged, absent from the run. Query q9: in the run only.
Qrels example_qrels() {
  Qrels qrels;
  qrels.by_query["q1"] = {{"d1", 3}, {"d2", 0}, {"d3", 1}, {"d4", 2}};
  qrels.by_query["q2"] = {{"a", 1}, {"b", 0}};
  qrels.by_query["q3"] = {{"x", 1}};
  return qrels;
}

Run example_run() {
  disranker::Run run;
  // Deliberately not in score order: evaluation must not trust the file order.
  run.by_query["q1"] = {{"d3", 0.6}, {"d1", 0.8}, {"d2", 0.9}, {"d5", 0.7}};
  run.by_query["q2"] = {{"a", 1.0}, {"b", 1.0}};
  run.by_query["q9"] = {{"z", 1.0}};
  return run;
}

double metric_for(const Evaluation& e, const std::string& qid, std::size_t metric) {
  for (const auto& q : e.queries) {
    if (q.qid == qid) return q.values[metric];
  }
  ADD_FAILURE() << "no query " << qid;
  return NAN;
}

Evaluation run_metrics(const std::vector<std::string>& names, EvalOptions options = {}) {
  std::vector<MetricSpec> specs;
  for (const auto& n : names) specs.push_back(parse_metric(n));
  return evaluate(example_qrels(), example_run(), specs, options);
}

TEST(Ndcg, UsesLinearGainAndIdealFromAllJudgments) {
  // Ranked gains 0,3,0,1; DCG = 3/log2(3) + 1/log2(5) = 2.3234659.
  // Ideal from every judgment (d4 was not retrieved): 3,2,1,0; IDCG = 3 + 2/log2(3) + 1/2 = 4.7618595.
  const auto e = run_metrics({"ndcg", "ndcg_cut.2"});
  EXPECT_NEAR(metric_for(e, "q1", 0), 0.4879324590, 1e-9);
  // Top 2: DCG = 3/log2(3) = 1.8927893; IDCG@2 = 3 + 2/log2(3) = 4.2618595.
  EXPECT_NEAR(metric_for(e, "q1", 1), 0.4441228664, 1e-9);
}

TEST(Ndcg, ExponentialGainIsTwoToTheGradeMinusOne) {
  // Gains 0,7,0,1 against ideal 7,3,1,0.
  EvalOptions options;
  options.gain = GainMode::kExponential;
  EXPECT_NEAR(metric_for(run_metrics({"ndcg"}, options), "q1", 0), 0.5160538258, 1e-9);
}

TEST(Ordering, TiedScoresAreBrokenByDocidDescendingAsTrecEval) {
  // q2: a and b tie at 1.0; trec_eval ranks b (larger docid) first, so the relevant a sits at rank 2.
  const auto e = run_metrics({"recip_rank", "ndcg"});
  EXPECT_DOUBLE_EQ(metric_for(e, "q2", 0), 0.5);
  EXPECT_NEAR(metric_for(e, "q2", 1), 1.0 / std::log2(3.0), 1e-12);
}

TEST(BinaryMetrics, CountRelevantAsGradeAtLeastRelLevel) {
  // rel_level 1: relevant d1, d3, d4 (num_rel 3), retrieved at ranks 2 and 4: AP = (1/2 + 2/4) / 3.
  const auto e1 = run_metrics({"map", "recip_rank", "P.2", "P.10", "recall.2", "recall.10"});
  EXPECT_NEAR(metric_for(e1, "q1", 0), 1.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(metric_for(e1, "q1", 1), 0.5);
  EXPECT_DOUBLE_EQ(metric_for(e1, "q1", 2), 0.5);
  EXPECT_DOUBLE_EQ(metric_for(e1, "q1", 3), 0.2);  // P.K divides by K even when fewer are retrieved
  EXPECT_NEAR(metric_for(e1, "q1", 4), 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(metric_for(e1, "q1", 5), 2.0 / 3.0, 1e-12);
  // rel_level 2: relevant d1, d4 (num_rel 2); only d1 retrieved, at rank 2: AP = (1/2) / 2.
  EvalOptions options;
  options.rel_level = 2;
  const auto e2 = run_metrics({"map", "recip_rank"}, options);
  EXPECT_DOUBLE_EQ(metric_for(e2, "q1", 0), 0.25);
  EXPECT_DOUBLE_EQ(metric_for(e2, "q1", 1), 0.5);
  EXPECT_DOUBLE_EQ(metric_for(e2, "q2", 1), 0.0);  // grade 1 is not relevant at level 2
}

TEST(MrrCut, IgnoresRelevantDocumentsBelowTheCutoff) {
  const auto e = run_metrics({"mrr_cut.1", "mrr_cut.2"});
  EXPECT_DOUBLE_EQ(metric_for(e, "q1", 0), 0.0);
  EXPECT_DOUBLE_EQ(metric_for(e, "q1", 1), 0.5);
}

TEST(MissingQueries, ScoreZeroAndCountInTheMeanLikeTrecEvalDashC) {
  const auto e = run_metrics({"recip_rank"});
  ASSERT_EQ(e.queries.size(), 3u);  // q1, q2, q3; q9 (no judgments) is ignored
  EXPECT_DOUBLE_EQ(metric_for(e, "q3", 0), 0.0);
  EXPECT_DOUBLE_EQ(e.summary[0], (0.5 + 0.5 + 0.0) / 3.0);
}

TEST(MissingQueries, AreDroppedWhenAskedLikeTrecEvalWithoutDashC) {
  EvalOptions options;
  options.missing_as_zero = false;
  const auto e = run_metrics({"recip_rank"}, options);
  ASSERT_EQ(e.queries.size(), 2u);
  EXPECT_DOUBLE_EQ(e.summary[0], 0.5);
}

TEST(DepthCut, KeepsOnlyTheTopDocumentsOfEachQuery) {
  EvalOptions options;
  options.max_depth = 1;  // q1 keeps d2 (grade 0) only
  const auto e = run_metrics({"ndcg", "recip_rank", "map"}, options);
  EXPECT_DOUBLE_EQ(metric_for(e, "q1", 0), 0.0);
  EXPECT_DOUBLE_EQ(metric_for(e, "q1", 1), 0.0);
  EXPECT_DOUBLE_EQ(metric_for(e, "q1", 2), 0.0);
}

TEST(Pnr, CountsConcordantAndDiscordantPairsOfDifferentGrades) {
  // q1 judged and retrieved: d2 (0, .9), d1 (3, .8), d3 (1, .6). Pairs: d1>d2 discordant, d3>d2 discordant,
  // d1>d3 concordant; the unjudged d5 and the unretrieved d4 take no part.
  const auto e = run_metrics({"pnr", "pnr_macro"});
  const auto& q1 = e.queries[0];
  EXPECT_EQ(q1.pnr.pairs, 3u);
  EXPECT_DOUBLE_EQ(q1.pnr.concordant, 1.0);
  EXPECT_DOUBLE_EQ(q1.pnr.discordant, 2.0);
  EXPECT_DOUBLE_EQ(metric_for(e, "q1", 0), 0.5);
  // q2: one pair with tied scores counts half to each side: 0.5 / max(0.5, 1).
  EXPECT_DOUBLE_EQ(metric_for(e, "q2", 0), 0.5);
  // q3 has no pairs: PNR is undefined there and left out of the macro mean.
  EXPECT_TRUE(std::isnan(metric_for(e, "q3", 0)));
  // Micro: (1 + 0.5) / (2 + 0.5); macro: mean(0.5, 0.5).
  EXPECT_DOUBLE_EQ(e.summary[0], 1.5 / 2.5);
  EXPECT_DOUBLE_EQ(e.summary[1], 0.5);
}

TEST(Pnr, PerfectOrderingOfManyGradesCountsEveryPair) {
  Qrels qrels;
  qrels.by_query["q"] = {{"a", 3}, {"b", 2}, {"c", 1}, {"d", 0}, {"e", 0}};
  disranker::Run run;
  run.by_query["q"] = {{"a", 5}, {"b", 4}, {"c", 3}, {"d", 2}, {"e", 1}};
  const auto e = evaluate(qrels, run, {parse_metric("pnr")}, {});
  // 10 pairs minus the (d, e) pair of equal grades = 9 concordant, 0 discordant: 9 / max(0, 1).
  EXPECT_EQ(e.queries[0].pnr.pairs, 9u);
  EXPECT_DOUBLE_EQ(e.summary[0], 9.0);
}

TEST(Ndcg, QueryWithoutPositiveJudgmentsScoresZero) {
  Qrels qrels;
  qrels.by_query["q"] = {{"a", 0}};
  disranker::Run run;
  run.by_query["q"] = {{"a", 1}};
  const auto e = evaluate(qrels, run, {parse_metric("ndcg_cut.10"), parse_metric("map")}, {});
  EXPECT_DOUBLE_EQ(e.summary[0], 0.0);
  EXPECT_DOUBLE_EQ(e.summary[1], 0.0);
}

TEST(ParseMetric, AcceptsTrecEvalNamesAndRejectsOthers) {
  EXPECT_EQ(parse_metric("ndcg_cut.10").cutoff, 10u);
  EXPECT_EQ(parse_metric("P.5").kind, MetricSpec::Kind::kPrecision);
  EXPECT_THROW(parse_metric("ndcg_cut"), Error);
  EXPECT_THROW(parse_metric("ndcg_cut.0"), Error);
  EXPECT_THROW(parse_metric("ndcg_cut.x"), Error);
  EXPECT_THROW(parse_metric("map.5"), Error);
  EXPECT_THROW(parse_metric("bleu"), Error);
}

// The published figures: BM25 top-100 on TREC DL 2019 and 2021, trec_eval nDCG@10 (linear gain).
std::filesystem::path shared_data() {
  const char* env = std::getenv("DISRANKER_DATA");
  return env != nullptr ? std::filesystem::path(env) : std::filesystem::path(DISRANKER_SOURCE_DIR) / "../shared/data";
}

TEST(PublishedFigures, Bm25OnTrecDlMatchesTrecEval) {
  const auto dir = shared_data();
  if (!std::filesystem::exists(dir / "trec-dl19/run.BM25.txt")) GTEST_SKIP() << "shared data not found at " << dir;
  const std::vector<MetricSpec> ndcg10 = {parse_metric("ndcg_cut.10")};
  const auto dl19 = evaluate(read_qrels((dir / "trec-dl19/qrels.txt").string()),
                             read_run((dir / "trec-dl19/run.BM25.txt").string()), ndcg10, {});
  EXPECT_EQ(dl19.queries.size(), 43u);
  EXPECT_NEAR(dl19.summary[0], 0.5058, 5e-5);
  const auto dl21 = evaluate(read_qrels((dir / "trec-dl21/qrels.txt").string()),
                             read_run((dir / "trec-dl21/run.BM25.txt").string()), ndcg10, {});
  EXPECT_EQ(dl21.queries.size(), 53u);
  EXPECT_NEAR(dl21.summary[0], 0.4458, 5e-5);
}

}  // namespace
}  // namespace disranker
