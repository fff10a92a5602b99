// Specification of the query groups that rank training and distillation read: which candidates a query gets
// (from a run, or from its judgements), their labels and teacher scores, what is dropped and how it is
// counted, and the deterministic sampler that cuts a training group out of a query's candidates.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/groups.h"
#include "test_util.h"

namespace disranker {
namespace {

// A small world: queries q1..q3, documents d1..d6.
struct World {
  Queries queries;
  Docs docs;
  Qrels qrels;
  World() {
    for (const char* id : {"q1", "q2", "q3"}) queries.add({id, std::string("text of ") + id});
    for (const char* id : {"d1", "d2", "d3", "d4", "d5", "d6"})
      docs.add({id, "", std::string("body of ") + id});
  }
};

disranker::Run make_run(const std::map<std::string, std::vector<RunEntry>>& entries,
                        const std::string& tag = "bm25") {
  disranker::Run run;
  run.by_query = entries;
  run.tag = tag;
  return run;
}

std::vector<std::string> docids(const QueryGroup& group) {
  std::vector<std::string> out;
  for (const auto& doc : group.docs) out.push_back(doc.docid);
  return out;
}

const QueryGroup* find_group(const std::vector<QueryGroup>& groups, const std::string& qid) {
  for (const auto& group : groups) {
    if (group.qid == qid) return &group;
  }
  return nullptr;
}

// -----------------------------------------------------------------------------------------------------------
// Label groups

TEST(LabelGroups, CandidatesFromARunAreRankedByScoreAndUnjudgedOnesAreLabelZero) {
  World w;
  w.qrels.by_query["q1"] = {{"d2", 2}, {"d3", 0}, {"d6", 1}};  // d6 is judged but was not retrieved
  // In-memory run in file order (not sorted): the group must follow the score order d2 > d1 > d3.
  const disranker::Run run = make_run({{"q1", {{"d3", 1.0}, {"d2", 3.0}, {"d1", 2.0}}}});
  GroupReport report;
  const auto groups = build_label_groups(w.queries, w.docs, w.qrels, &run, {}, &report);
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(docids(groups[0]), (std::vector<std::string>{"d2", "d1", "d3"}));
  EXPECT_EQ(groups[0].docs[0].label, 2);
  EXPECT_TRUE(groups[0].docs[0].judged);
  EXPECT_EQ(groups[0].docs[1].label, 0);  // unjudged candidate: a negative
  EXPECT_FALSE(groups[0].docs[1].judged);
  EXPECT_EQ(groups[0].docs[2].label, 0);
  EXPECT_TRUE(groups[0].docs[2].judged);
  EXPECT_TRUE(std::isnan(groups[0].docs[0].teacher));
  EXPECT_EQ(groups[0].max_label(), 2);
  EXPECT_EQ(report.queries_in, 1u);
  EXPECT_EQ(report.groups_out, 1u);
}

TEST(LabelGroups, WithoutARunTheJudgedDocumentsAreTheCandidatesInDocidOrder) {
  World w;
  w.qrels.by_query["q1"] = {{"d5", 0}, {"d1", 1}, {"d3", 0}};
  w.qrels.by_query["q2"] = {{"d2", 1}, {"d4", 0}};
  GroupReport report;
  const auto groups = build_label_groups(w.queries, w.docs, w.qrels, nullptr, {}, &report);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].qid, "q1");
  EXPECT_EQ(docids(groups[0]), (std::vector<std::string>{"d1", "d3", "d5"}));
  EXPECT_EQ(groups[0].docs[0].label, 1);
  for (const auto& doc : groups[0].docs) EXPECT_TRUE(doc.judged);
  EXPECT_EQ(docids(groups[1]), (std::vector<std::string>{"d2", "d4"}));
  EXPECT_EQ(report.queries_in, 2u);
  EXPECT_EQ(report.no_candidates, 0u);
}

TEST(LabelGroups, RequirePositiveDropsAndCountsQueriesWithoutAPositive) {
  World w;
  w.qrels.by_query["q1"] = {{"d1", 1}, {"d2", 0}};
  w.qrels.by_query["q2"] = {{"d3", 0}, {"d4", 0}};   // no positive
  w.qrels.by_query["q3"] = {{"d5", -1}, {"d6", 0}};  // a negative grade is not a positive either
  GroupReport report;
  auto groups = build_label_groups(w.queries, w.docs, w.qrels, nullptr, {}, &report);
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].qid, "q1");
  EXPECT_EQ(report.no_positive, 2u);
  EXPECT_EQ(report.groups_out, 1u);

  GroupOptions keep_all;
  keep_all.require_positive = false;
  groups = build_label_groups(w.queries, w.docs, w.qrels, nullptr, keep_all, &report);
  EXPECT_EQ(groups.size(), 3u);
  EXPECT_EQ(report.no_positive, 0u);
  EXPECT_EQ(find_group(groups, "q3")->max_label(), 0);
}

TEST(LabelGroups, MaxCandidatesKeepsTheTopOfTheRun) {
  World w;
  w.qrels.by_query["q1"] = {{"d4", 1}};
  const disranker::Run run =
      make_run({{"q1", {{"d1", 0.5}, {"d2", 0.9}, {"d3", 0.1}, {"d4", 0.7}, {"d5", 0.3}}}});
  GroupOptions options;
  options.max_candidates = 3;
  const auto groups = build_label_groups(w.queries, w.docs, w.qrels, &run, options, nullptr);
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(docids(groups[0]), (std::vector<std::string>{"d2", "d4", "d1"}));

  // The positive d4 is ranked 2nd: a depth of 1 leaves the query without a positive.
  options.max_candidates = 1;
  GroupReport report;
  EXPECT_TRUE(build_label_groups(w.queries, w.docs, w.qrels, &run, options, &report).empty());
  EXPECT_EQ(report.no_positive, 1u);
}

TEST(LabelGroups, MissingQueriesDocumentsAndRunEntriesAreCounted) {
  World w;
  w.qrels.by_query["q1"] = {{"d1", 1}};
  w.qrels.by_query["q2"] = {{"d2", 1}};  // q2 is judged but absent from the run
  w.qrels.by_query["q9"] = {{"d3", 1}};
  const disranker::Run run = make_run({
      {"q1", {{"d1", 2.0}, {"nodoc", 1.5}, {"d2", 1.0}}},  // one candidate without text
      {"q9", {{"d3", 1.0}}},                               // a query without text
      {"q3", {{"gone1", 1.0}, {"gone2", 0.5}}},            // every candidate without text
  });
  GroupOptions options;
  options.require_positive = false;
  GroupReport report;
  const auto groups = build_label_groups(w.queries, w.docs, w.qrels, &run, options, &report);
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(docids(groups[0]), (std::vector<std::string>{"d1", "d2"}));
  EXPECT_EQ(report.queries_in, 3u);
  EXPECT_EQ(report.groups_out, 1u);
  EXPECT_EQ(report.missing_query_text, 1u);  // q9
  EXPECT_EQ(report.missing_docs, 3u);        // nodoc, gone1, gone2
  EXPECT_EQ(report.no_candidates, 2u);       // q2 (not in the run) and q3 (all candidates gone)

  const auto lines = report.lines();
  const auto mentions = [&lines](const std::string& text) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& line) { return line.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(mentions("1 query groups built from 3 queries"));
  EXPECT_TRUE(mentions("1 queries dropped: qid not in the queries file"));
  EXPECT_TRUE(mentions("3 candidates dropped: docid not in the docs file"));
  EXPECT_TRUE(mentions("2 queries without candidates"));
  EXPECT_FALSE(mentions("teacher"));  // zero counts print nothing
}

TEST(LabelGroups, ReportLinesSayOnlyTheTotalsWhenNothingWasDropped) {
  GroupReport report;
  report.queries_in = 5;
  report.groups_out = 5;
  EXPECT_EQ(report.lines(), (std::vector<std::string>{"5 query groups built from 5 queries"}));
  report.no_positive = 1247;
  EXPECT_EQ(report.lines().at(1), "1247 queries without a positive label dropped");
}

// -----------------------------------------------------------------------------------------------------------
// Teacher groups

TEST(TeacherGroups, CarryTheTeacherScoresWithLabelsFromTheQrels) {
  World w;
  w.qrels.by_query["q1"] = {{"d1", 1}, {"d6", 1}};  // d6 was never scored by the teacher
  const disranker::Run teacher =
      make_run({{"q1", {{"d1", 4.5}, {"d2", -1.25}, {"d3", 0.5}}}, {"q2", {{"d4", 2.0}}}});
  GroupReport report;
  const auto groups =
      build_teacher_groups(w.queries, w.docs, teacher, &w.qrels, {.require_positive = false}, &report);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(docids(groups[0]), (std::vector<std::string>{"d1", "d3", "d2"}));
  EXPECT_DOUBLE_EQ(groups[0].docs[0].teacher, 4.5);
  EXPECT_DOUBLE_EQ(groups[0].docs[1].teacher, 0.5);
  EXPECT_DOUBLE_EQ(groups[0].docs[2].teacher, -1.25);
  EXPECT_EQ(groups[0].docs[0].label, 1);
  EXPECT_EQ(groups[0].docs[1].label, 0);
  EXPECT_EQ(report.missing_teacher, 1u);  // d6
  EXPECT_EQ(report.queries_in, 2u);
}

TEST(TeacherGroups, WithoutQrelsEveryLabelIsZeroAndRequiringAPositiveIsAnError) {
  World w;
  const disranker::Run teacher = make_run({{"q1", {{"d1", 1.0}, {"d2", 0.0}}}});
  const auto groups =
      build_teacher_groups(w.queries, w.docs, teacher, nullptr, {.require_positive = false}, nullptr);
  ASSERT_EQ(groups.size(), 1u);
  for (const auto& doc : groups[0].docs) {
    EXPECT_EQ(doc.label, 0);
    EXPECT_FALSE(doc.judged);
  }
  EXPECT_THROW(build_teacher_groups(w.queries, w.docs, teacher, nullptr, {.require_positive = true}, nullptr),
               Error);
}

TEST(TeacherGroups, MissingTextIsCountedAndMaxCandidatesApplies) {
  World w;
  const disranker::Run teacher =
      make_run({{"q1", {{"d1", 1.0}, {"nodoc", 3.0}, {"d2", 2.0}, {"d3", 0.0}}}, {"q7", {{"d1", 1.0}}}});
  GroupOptions options;
  options.require_positive = false;
  options.max_candidates = 3;  // nodoc, d2, d1: the missing one still takes its place in the top 3
  GroupReport report;
  const auto groups = build_teacher_groups(w.queries, w.docs, teacher, nullptr, options, &report);
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(docids(groups[0]), (std::vector<std::string>{"d2", "d1"}));
  EXPECT_EQ(report.missing_docs, 1u);
  EXPECT_EQ(report.missing_query_text, 1u);
}

TEST(TeacherGroups, ANonFiniteTeacherScoreIsAnErrorNamingTheRunTheQueryAndTheDocument) {
  World w;
  for (const double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                           -std::numeric_limits<double>::infinity()}) {
    const disranker::Run teacher = make_run({{"q2", {{"d1", 1.0}, {"d4", bad}}}}, "teacher-qwen");
    try {
      build_teacher_groups(w.queries, w.docs, teacher, nullptr, {.require_positive = false}, nullptr);
      ADD_FAILURE() << "no error for teacher score " << bad;
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("teacher-qwen"), std::string::npos) << message;
      EXPECT_NE(message.find("'q2'"), std::string::npos) << message;
      EXPECT_NE(message.find("'d4'"), std::string::npos) << message;
      EXPECT_NE(message.find("not finite"), std::string::npos) << message;
      EXPECT_EQ(e.field(), "score");
    }
  }
  // Even when the query would be dropped for lack of text: bad teacher output is never hidden.
  const disranker::Run unknown_query = make_run({{"q9", {{"d1", std::nan("")}}}});
  EXPECT_THROW(
      build_teacher_groups(w.queries, w.docs, unknown_query, nullptr, {.require_positive = false}, nullptr),
      Error);
}

// -----------------------------------------------------------------------------------------------------------
// Sampling

QueryGroup graded_group() {
  // Labels: two label-2 documents, two label-1, four label-0.
  QueryGroup group{"q", {}};
  const int labels[] = {0, 2, 0, 1, 0, 2, 1, 0};
  for (int i = 0; i < 8; ++i) group.docs.push_back({"d" + std::to_string(i), labels[i], true});
  return group;
}

TEST(SampleGroup, IsAFunctionOfGroupOptionsAndSeedOnly) {
  const QueryGroup group = graded_group();
  const SampleOptions options{.group_size = 4, .positive_first = true};
  const auto first = sample_group(group, options, 1234);
  EXPECT_EQ(sample_group(group, options, 1234), first);
  EXPECT_EQ(sample_group(group, options, 1234), first);
  // Different seeds give different samples (over many seeds, more than one distinct outcome).
  std::set<std::vector<std::size_t>> outcomes;
  for (std::uint64_t seed = 0; seed < 50; ++seed) outcomes.insert(sample_group(group, options, seed));
  EXPECT_GT(outcomes.size(), 5u);
}

TEST(SampleGroup, PositiveFirstThenDistinctNegativesWithALowerLabel) {
  const QueryGroup group = graded_group();
  const SampleOptions options{.group_size = 3, .positive_first = true};
  std::set<std::size_t> positives_seen;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    const auto chosen = sample_group(group, options, seed);
    ASSERT_FALSE(chosen.empty());
    const int positive_label = group.docs[chosen[0]].label;
    ASSERT_GE(positive_label, 1);
    positives_seen.insert(chosen[0]);
    const std::set<std::size_t> distinct(chosen.begin(), chosen.end());
    EXPECT_EQ(distinct.size(), chosen.size());
    for (std::size_t i = 1; i < chosen.size(); ++i) EXPECT_LT(group.docs[chosen[i]].label, positive_label);
    // A label-2 positive has 6 lower documents (enough for 2 negatives); a label-1 positive has 4.
    EXPECT_EQ(chosen.size(), 3u);
  }
  // Every positive (labels 2, 2, 1, 1 at indices 1, 5, 3, 6) gets chosen at some seed.
  EXPECT_EQ(positives_seen, (std::set<std::size_t>{1, 3, 5, 6}));
}

TEST(SampleGroup, AGroupSmallerThanAskedReturnsAllItCan) {
  QueryGroup group{"q", {{"a", 1, true}, {"b", 0, true}, {"c", 0, false}}};
  const auto chosen = sample_group(group, {.group_size = 8, .positive_first = true}, 7);
  ASSERT_EQ(chosen.size(), 3u);
  EXPECT_EQ(chosen[0], 0u);
  EXPECT_EQ(std::set<std::size_t>(chosen.begin() + 1, chosen.end()), (std::set<std::size_t>{1, 2}));

  // Two positives of equal label: the other positive is not a negative, so only 1 + 2 documents come back.
  QueryGroup two_positives{"q", {{"a", 1, true}, {"b", 1, true}, {"c", 0, true}, {"d", 0, true}}};
  EXPECT_EQ(sample_group(two_positives, {.group_size = 8, .positive_first = true}, 3).size(), 3u);

  const auto uniform = sample_group(group, {.group_size = 8, .positive_first = false}, 7);
  EXPECT_EQ(std::set<std::size_t>(uniform.begin(), uniform.end()), (std::set<std::size_t>{0, 1, 2}));
}

TEST(SampleGroup, GroupSizeZeroIsTheWholeGradedListInOrder) {
  const QueryGroup group = graded_group();
  const std::vector<std::size_t> all{0, 1, 2, 3, 4, 5, 6, 7};
  EXPECT_EQ(sample_group(group, {.group_size = 0, .positive_first = true}, 1), all);
  EXPECT_EQ(sample_group(group, {.group_size = 0, .positive_first = false}, 99), all);
}

TEST(SampleGroup, UniformSamplingDrawsDistinctDocumentsCoveringTheGroup) {
  const QueryGroup group = graded_group();
  std::vector<int> hits(group.docs.size(), 0);
  const int draws = 4000;
  for (int seed = 0; seed < draws; ++seed) {
    const auto chosen = sample_group(group, {.group_size = 2, .positive_first = false}, seed);
    ASSERT_EQ(chosen.size(), 2u);
    ASSERT_NE(chosen[0], chosen[1]);
    for (auto i : chosen) ++hits[i];
  }
  // Each document is in a sample with probability 2/8: 1000 expected, sd ≈ 27; allow 5 sd.
  for (int h : hits) EXPECT_NEAR(h, 1000, 140);
}

TEST(SampleGroup, WithoutAPositiveTheSampleIsUniform) {
  QueryGroup group{"q", {{"a", 0, true}, {"b", 0, true}, {"c", 0, true}}};
  const auto chosen = sample_group(group, {.group_size = 2, .positive_first = true}, 5);
  EXPECT_EQ(chosen.size(), 2u);
}

}  // namespace
}  // namespace disranker
