// The pipeline's plumbing without libtorch: merging data sets, the step runner's skip/rerun/resume rules,
// stage flags from the config, and the evaluation entries of the report.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/docs.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"
#include "eval/metrics.h"
#include "pipeline/datasets.h"
#include "pipeline/evaluate.h"
#include "pipeline/plan.h"
#include "pipeline/step_runner.h"
#include "test_util.h"

namespace disranker::pipeline {
namespace {
namespace fs = std::filesystem;
using disranker::testing::TempDir;

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Two small sets in the shared layout: "a" with a BM25 run, "b" with judged candidates only.
struct TwoSets {
  TempDir dir;
  TwoSets() {
    fs::create_directories(dir.path() / "a");
    fs::create_directories(dir.path() / "b");
    dir.write("a/queries.tsv", "1\tfirst query\n2\tsecond query\n3\tno candidates\n");
    dir.write("a/docs.tsv",
              "d1\tT1\ttext one\nd2\t\ttext two\nd3\tT3\ttext three\nd9\tT9\tnever a candidate\n");
    dir.write("a/qrels.txt", "1 0 d1 2\n1 0 d2 0\n2 0 d3 1\n");
    dir.write("a/run.BM25.txt",
              "1 Q0 d2 1 9.0 bm25\n1 Q0 d1 2 8.0 bm25\n1 Q0 d3 3 7.0 bm25\n2 Q0 d3 1 5.0 bm25\n");
    dir.write("b/queries.tsv", "1\tquery of b\n");
    dir.write("b/docs.tsv", "x\tX\tdoc x\ny\tY\tdoc y\n");
    dir.write("b/qrels.txt", "1 0 x 1\n1 0 y 0\n");
  }
};

TEST(PipelineData, FindsASetAndSaysWhatIsMissing) {
  TwoSets sets;
  const auto a = find_dataset(sets.dir.path(), "a", true);
  EXPECT_EQ(a.run, (sets.dir.path() / "a" / "run.BM25.txt").string());
  EXPECT_EQ(find_dataset(sets.dir.path(), "b", true).run, "");
  try {
    find_dataset(sets.dir.path(), "nope", true);
    FAIL() << "a missing set must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("DISRANKER_DATA"), std::string::npos) << e.what();
  }
  fs::remove(sets.dir.path() / "b" / "qrels.txt");
  EXPECT_THROW(find_dataset(sets.dir.path(), "b", true), Error);
}

TEST(PipelineData, MergesSetsWithPrefixedIdsAndTopKCandidates) {
  TwoSets sets;
  const fs::path out = sets.dir.path() / "merged";
  const auto report =
      merge_datasets({find_dataset(sets.dir.path(), "a", true), find_dataset(sets.dir.path(), "b", true)},
                     /*max_candidates=*/2, /*prefix_ids=*/true, out.string());
  // a: query 1 keeps its BM25 top 2 (d2, d1), query 2 its one candidate, query 3 has none and is left out;
  // b: its judged documents.
  const disranker::Run candidates = read_run((out / "candidates.txt").string());
  ASSERT_EQ(candidates.by_query.size(), 3u);
  ASSERT_EQ(candidates.by_query.at("a:1").size(), 2u);
  EXPECT_EQ(candidates.by_query.at("a:1")[0].docid, "a:d2");
  EXPECT_EQ(candidates.by_query.at("a:1")[1].docid, "a:d1");
  EXPECT_EQ(candidates.by_query.at("b:1").size(), 2u);
  const Queries queries = read_queries((out / "queries.tsv").string());
  EXPECT_EQ(queries.size(), 3u);
  EXPECT_EQ(queries.find("b:1")->text, "query of b");
  EXPECT_EQ(queries.find("a:3"), nullptr);
  const Docs docs = read_docs((out / "docs.tsv").string(), true);
  EXPECT_EQ(docs.find("a:d9"), nullptr);  // neither candidate nor judged
  ASSERT_NE(docs.find("a:d3"), nullptr);  // judged, though cut from query 1's candidates
  EXPECT_EQ(docs.find("a:d2")->text, "text two");
  const Qrels qrels = read_qrels((out / "qrels.txt").string());
  EXPECT_EQ(*qrels.grade("a:1", "a:d1"), 2);
  EXPECT_EQ(*qrels.grade("b:1", "b:x"), 1);
  EXPECT_EQ(report.queries, 3u);
  EXPECT_EQ(report.candidates, 5u);
  EXPECT_EQ(strip_set_prefix("a:d1"), "d1");
  EXPECT_EQ(strip_set_prefix("d1"), "d1");
}

TEST(PipelineData, AnEvaluationSetKeepsItsOwnIds) {
  TwoSets sets;
  const fs::path out = sets.dir.path() / "eval";
  merge_datasets({find_dataset(sets.dir.path(), "b", true)}, 30, /*prefix_ids=*/false, out.string());
  EXPECT_EQ(slurp(out / "qrels.txt"), slurp(sets.dir.path() / "b" / "qrels.txt"));
}

TEST(PipelineSteps, AStepRunsOnceAndRerunsWhenAnInputChanges) {
  TempDir dir;
  const std::string input = dir.write("input.txt", "v1");
  int runs = 0;
  Step step = action_step("count", "counts its runs", [&] { ++runs; }, {input});
  StepRunner runner((dir.path() / "out").string(), "/bin/sh");
  EXPECT_EQ(runner.run(step, 1, 1).status, "ran");
  EXPECT_EQ(runner.run(step, 1, 1).status, "skipped");
  EXPECT_EQ(runs, 1);
  dir.write("input.txt", "version 2");  // another size: another fingerprint
  EXPECT_EQ(runner.run(step, 1, 1).status, "ran");
  EXPECT_EQ(runs, 2);
  step.inputs.push_back((dir.path() / "missing").string());  // a new input, even a missing one, reruns
  EXPECT_EQ(runner.run(step, 1, 1).status, "ran");
  EXPECT_EQ(runs, 3);
}

TEST(PipelineSteps, AFailingChildIsAnErrorThatNamesItsLog) {
  TempDir dir;
  StepRunner runner((dir.path() / "out").string(), "/bin/sh");
  Step step = command_step("fails", "exits with 3", {"-c", "echo something went wrong; exit 3"}, {});
  try {
    runner.run(step, 1, 1);
    FAIL() << "a failing step must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.file(), (dir.path() / "out" / "logs" / "fails.log").string());
    EXPECT_NE(std::string(e.what()).find("exit status 3"), std::string::npos) << e.what();
  }
  EXPECT_NE(slurp(dir.path() / "out" / "logs" / "fails.log").find("something went wrong"), std::string::npos);
  // Not done: the next run tries again.
  step.args = {"-c", "exit 0"};
  EXPECT_EQ(runner.run(step, 1, 1).status, "ran");
}

TEST(PipelineSteps, AKilledTrainingStepResumesAndAChangedOneStartsClean) {
  TempDir dir;
  const fs::path stage_dir = dir.path() / "stage";
  const std::string seen = (dir.path() / "args.txt").string();
  // The "training command" records its arguments and is killed (SIGKILL to itself) the first time.
  const std::string script = "echo \"$@\" > " + seen + "; mkdir -p " + stage_dir.string() + "; [ -f " +
                             (dir.path() / "once").string() + " ] || { touch " +
                             (dir.path() / "once").string() + "; kill -9 $$; }";
  Step step = training_step("train", "a resumable step", {"-c", script, "sh"}, {}, stage_dir.string());
  StepRunner runner((dir.path() / "out").string(), "/bin/sh");
  EXPECT_THROW(runner.run(step, 1, 1), Error);
  EXPECT_TRUE(fs::exists(stage_dir));
  EXPECT_EQ(runner.run(step, 1, 1).status, "resumed");
  EXPECT_EQ(slurp(seen), "--resume\n");
  EXPECT_EQ(runner.run(step, 1, 1).status, "skipped");

  // Killed again, but with other settings: no --resume, and the stale output is removed first.
  fs::remove(dir.path() / "once");
  step.args.push_back("--epochs=2");
  EXPECT_THROW(runner.run(step, 1, 1), Error);
  std::ofstream(stage_dir / "stale-checkpoint") << "old";
  step.args.back() = "--epochs=3";
  EXPECT_EQ(runner.run(step, 1, 1).status, "ran");
  EXPECT_EQ(slurp(seen), "--epochs=3\n");
  EXPECT_FALSE(fs::exists(stage_dir / "stale-checkpoint"));
}

TEST(PipelineConfig, StageSectionsBecomeFlags) {
  TempDir dir;
  const std::string config = dir.write("c.toml",
                                       "[pipeline]\ntrain-sets = [\"a\", \"b\"]\n"
                                       "[teacher-sft]\nepochs = 3\nloss = \"hinge\"\n"
                                       "[teacher-cpt]\nno-pack = true\nquiet = false\n");
  const auto flags = read_stage_flags(config);
  EXPECT_EQ(flags.at("teacher-sft"), (std::vector<std::string>{"--epochs", "3", "--loss", "hinge"}));
  EXPECT_EQ(flags.at("teacher-cpt"), (std::vector<std::string>{"--no-pack"}));
  EXPECT_EQ(flags.count("pipeline"), 0u);
  const std::string bad = dir.write("bad.toml", "[teacher-sfx]\nepochs = 3\n");
  EXPECT_THROW(read_stage_flags(bad), Error);
}

TEST(PipelineEvaluation, MetricsAndTestsOfEachSystem) {
  TempDir dir;
  // Two queries; BM25 ranks the relevant document second on both, the model first.
  const std::string qrels = dir.write("qrels.txt", "1 0 a 1\n1 0 b 0\n2 0 c 1\n2 0 d 0\n3 0 e 0\n");
  const std::string bm25 = dir.write("bm25.txt", "1 Q0 b 1 2 x\n1 Q0 a 2 1 x\n2 Q0 d 1 2 x\n2 Q0 c 2 1 x\n");
  const std::string model =
      dir.write("model.txt", "1 Q0 a 1 2 x\n1 Q0 b 2 1 x\n2 Q0 c 1 2 x\n2 Q0 d 2 1 x\n");
  EvalSet set{"toy", qrels, 1, /*require_relevant=*/true, "judged"};
  const auto result = evaluate_set(set, {{"BM25", bm25}, {"model", model}}, {"recip_rank", "pnr"}, {"BM25"});
  EXPECT_EQ(result["dataset"], "toy");
  EXPECT_EQ(result["note"], "judged; 2 queries evaluated");  // query 3 has no relevant document
  EXPECT_DOUBLE_EQ(result["systems"][0]["values"]["recip_rank"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(result["systems"][1]["values"]["recip_rank"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(result["systems"][0]["values"]["pnr"].get<double>(), 0.0);
  EXPECT_TRUE(result["systems"][0]["tests"].empty());  // not tested against itself
  ASSERT_EQ(result["systems"][1]["tests"].size(), 2u);
  const auto& test = result["systems"][1]["tests"][0];
  EXPECT_EQ(test["against"], "BM25");
  EXPECT_DOUBLE_EQ(test["delta"].get<double>(), 0.5);
  // Two queries: 4 sign assignments, 2 of them as extreme as the observed difference.
  EXPECT_DOUBLE_EQ(test["p_value"].get<double>(), 0.5);
}

TEST(PipelinePlan, SlugsAreFileNames) {
  EXPECT_EQ(system_slug("student (distilled, alpha 0.25)"), "student-distilled-alpha-0.25");
  EXPECT_EQ(system_slug("teacher, mean pooling"), "teacher-mean-pooling");
}

}  // namespace
}  // namespace disranker::pipeline
