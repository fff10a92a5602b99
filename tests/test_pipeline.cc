// The pipeline's plumbing without libtorch: merging data sets, the step runner's skip/rerun/resume rules,
// stage flags and [pipeline.online] from the config, and the evaluation and simulated online entries of the
// report.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/docs.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"
#include "eval/metrics.h"
#include "pipeline/datasets.h"
#include "pipeline/evaluate.h"
#include "pipeline/plan.h"
#include "pipeline/report_data.h"
#include "pipeline/step_runner.h"
#include "report/report.h"
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

// With ranks, a training or scoring step runs as a c10d job on this machine: every rank gets the job's
// variables (one rendezvous port for all), rank 0 logs to the step's log, the others to their own; other
// steps still run once, without them.
TEST(PipelineSteps, ADataParallelStepRunsAsRanksOfOneJob) {
  TempDir dir;
  const std::string record =
      "echo \"$RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR $MASTER_PORT\" > " +
      (dir.path() / "rank").string() + "${RANK:-none}; echo hello from ${RANK:-none}";
  StepRunner runner((dir.path() / "out").string(), "/bin/sh");
  runner.set_ranks(3);
  EXPECT_EQ(runner.run(training_step("train", "as ranks", {"-c", record}, {}, ""), 1, 3).status, "ran");
  std::string port;
  for (const int rank : {0, 1, 2}) {
    std::istringstream line(slurp(dir.path() / ("rank" + std::to_string(rank))));
    std::string r, world, local, local_world, address, this_port;
    line >> r >> world >> local >> local_world >> address >> this_port;
    EXPECT_EQ(r, std::to_string(rank));
    EXPECT_EQ(local, std::to_string(rank));
    EXPECT_EQ(world, "3");
    EXPECT_EQ(local_world, "3");
    EXPECT_EQ(address, "127.0.0.1");
    EXPECT_GT(std::stoi(this_port), 0);
    if (rank == 0) port = this_port;
    EXPECT_EQ(this_port, port) << "every rank meets at one rendezvous";
  }
  const fs::path logs = dir.path() / "out" / "logs";
  EXPECT_NE(slurp(logs / "train.log").find("hello from 0"), std::string::npos);
  EXPECT_NE(slurp(logs / "train.rank2.log").find("hello from 2"), std::string::npos);
  EXPECT_EQ(slurp(logs / "train.log").find("hello from 1"), std::string::npos);

  EXPECT_EQ(runner.run(scoring_step("score", "as ranks too", {"-c", record}, {}), 2, 3).status, "ran");
  EXPECT_NE(slurp(logs / "score.rank1.log").find("hello from 1"), std::string::npos);
  EXPECT_EQ(runner.run(command_step("plain", "once", {"-c", record}, {}), 3, 3).status, "ran");
  EXPECT_EQ(slurp(dir.path() / "ranknone"), "     \n");
  EXPECT_THROW(runner.set_ranks(0), Error);
}

TEST(PipelineSteps, AFailingRankIsAnErrorThatNamesItsLog) {
  TempDir dir;
  StepRunner runner((dir.path() / "out").string(), "/bin/sh");
  runner.set_ranks(2);
  const Step step = training_step("train", "rank 1 fails",
                                  {"-c", "[ \"$RANK\" = 1 ] && { echo broken; exit 3; }; exit 0"}, {}, "");
  try {
    runner.run(step, 1, 1);
    FAIL() << "a failing rank must fail the step";
  } catch (const Error& e) {
    EXPECT_EQ(e.file(), (dir.path() / "out" / "logs" / "train.rank1.log").string());
    EXPECT_NE(std::string(e.what()).find("rank 1 of 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("exit status 3"), std::string::npos) << e.what();
  }
  EXPECT_NE(slurp(dir.path() / "out" / "logs" / "train.rank1.log").find("broken"), std::string::npos);
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
  EvalSet set{"toy", qrels, 1, /*require_relevant=*/true, "judged", /*queries=*/""};
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

TEST(PipelineConfig, OnlineSectionHasDefaultsAndErrorsNameTheKey) {
  TempDir dir;
  const OnlineSettings defaults = read_online_settings("");
  EXPECT_TRUE(defaults.enabled);
  EXPECT_EQ(defaults.click_model, "dbn");
  EXPECT_EQ(defaults.users, 20000u);
  EXPECT_EQ(defaults.days, 14u);
  EXPECT_EQ(defaults.depth, 10u);
  EXPECT_EQ(defaults.reference, "BM25");
  const std::string config = dir.write("c.toml",
                                       "[pipeline]\nseed = 42\n"
                                       "[pipeline.online]\nenabled = false\nclick-model = \"pbm\"\n"
                                       "users = 500 # small\ndays = 3\ndepth = 5\nseed = 9\nbootstrap = 0\n"
                                       "reference = \"teacher\"\n"
                                       "[score]\nbatch-size = 8\n");
  const OnlineSettings online = read_online_settings(config);
  EXPECT_FALSE(online.enabled);
  EXPECT_EQ(online.click_model, "pbm");
  EXPECT_EQ(online.users, 500u);
  EXPECT_EQ(online.days, 3u);
  EXPECT_EQ(online.depth, 5u);
  EXPECT_EQ(online.seed, 9u);
  EXPECT_EQ(online.bootstrap, 0u);
  EXPECT_EQ(online.reference, "teacher");
  // The stage sections are read as before; [pipeline.online] is not a stage.
  const auto flags = read_stage_flags(config);
  EXPECT_EQ(flags.size(), 1u);
  EXPECT_EQ(flags.at("score"), (std::vector<std::string>{"--batch-size", "8"}));

  auto bad = [&](const std::string& line) {
    return dir.write("bad.toml", "[pipeline.online]\n" + line + "\n");
  };
  const std::string path = (dir.path() / "bad.toml").string();
  EXPECT_ERROR(read_online_settings(bad("click-model = \"dbm\"")), path, "[pipeline.online] click-model",
               "unknown click model 'dbm'; use pbm, cascade or dbn");
  EXPECT_ERROR(read_online_settings(bad("users = 0")), path, "[pipeline.online] users",
               "expected a whole number in [2, 100000000], got '0'");
  EXPECT_ERROR(read_online_settings(bad("users = -5")), path, "[pipeline.online] users", "got '-5'");
  EXPECT_ERROR(read_online_settings(bad("days = 0")), path, "[pipeline.online] days", "got '0'");
  EXPECT_ERROR(read_online_settings(bad("depth = 1.5")), path, "[pipeline.online] depth", "got '1.5'");
  EXPECT_ERROR(read_online_settings(bad("enabled = \"yes\"")), path, "[pipeline.online] enabled",
               "expected true or false");
  EXPECT_ERROR(read_online_settings(bad("user = 5")), path, "[pipeline.online] user", "unknown key");
  // A misspelt subsection would otherwise be ignored.
  const std::string typo = dir.write("typo.toml", "[pipeline.onlin]\nusers = 5\n");
  EXPECT_ERROR(read_stage_flags(typo), typo, "[pipeline.onlin]", "not a pipeline section");
}

TEST(PipelineOnline, SimulatesEveryStudentAndTheTeacherAgainstTheReference) {
  Plan plan;
  for (const char* name : {"BM25", "teacher", "teacher without CPT", "student (labels only)",
                           "student (distilled)", "student (distilled, alpha 0)"}) {
    plan.systems.push_back({name, "", false});
  }
  PipelineSettings settings;
  auto names = [&] {
    std::vector<std::string> out;
    for (const auto& system : online_systems(settings, plan)) out.push_back(system.name);
    return out;
  };
  EXPECT_EQ(names(), (std::vector<std::string>{"teacher", "student (labels only)", "student (distilled)",
                                               "student (distilled, alpha 0)"}));
  settings.online.reference = "teacher";
  EXPECT_EQ(names(), (std::vector<std::string>{"student (labels only)", "student (distilled)",
                                               "student (distilled, alpha 0)"}));
}

// Eight queries of ten documents each, graded 3, 2, 1, 1 and six 0s; run "worst" ranks them from the lowest
// grade up, run "ideal" from the highest down.
struct OnlineSet {
  TempDir dir;
  EvalSet set;
  std::string worst;
  std::string ideal;
  OnlineSet() {
    std::string qrels, queries, worst_run, ideal_run;
    const int grades[10] = {3, 2, 1, 1, 0, 0, 0, 0, 0, 0};
    for (int q = 1; q <= 8; ++q) {
      const std::string qid = "q" + std::to_string(q);
      queries += qid + "\tquery " + std::to_string(q) + "\n";
      for (int d = 0; d < 10; ++d) {
        const std::string doc = qid + "d" + std::to_string(d);
        qrels += qid + " 0 " + doc + " " + std::to_string(grades[d]) + "\n";
        ideal_run += qid + " Q0 " + doc + " " + std::to_string(d + 1) + " " + std::to_string(10 - d) + " x\n";
        const std::string reversed = qid + "d" + std::to_string(9 - d);
        worst_run +=
            qid + " Q0 " + reversed + " " + std::to_string(d + 1) + " " + std::to_string(10 - d) + " x\n";
      }
    }
    set =
        EvalSet{"toy", dir.write("qrels.txt", qrels), 1, false, "judged", dir.write("queries.tsv", queries)};
    worst = dir.write("worst.txt", worst_run);
    ideal = dir.write("ideal.txt", ideal_run);
  }
};

OnlineSettings small_online() {
  OnlineSettings settings;
  settings.users = 2000;
  settings.days = 5;
  settings.seed = 3;
  settings.bootstrap = 200;
  return settings;
}

TEST(PipelineOnline, TheIdealRankingWinsTheSimulatedExperiment) {
  OnlineSet data;
  const nlohmann::json online =
      simulate_online(data.set, {"worst", data.worst}, {{"ideal", data.ideal}}, small_online(), 2);
  EXPECT_EQ(online["click_model"], "dbn");
  EXPECT_EQ(online["reference"], "worst");
  EXPECT_EQ(online["users"], 2000);
  ASSERT_EQ(online["systems"].size(), 1u);
  const auto& ideal = online["systems"][0];
  EXPECT_EQ(ideal["name"], "ideal");
  EXPECT_EQ(ideal["queries"], 8);
  const auto& page_ctr = ideal["ab_test"]["metrics"]["page_ctr"];
  EXPECT_GT(page_ctr["b"].get<double>(), page_ctr["a"].get<double>());
  EXPECT_GT(page_ctr["relative"].get<double>(), 0);
  EXPECT_GT(page_ctr["ci_low"].get<double>(), 0) << page_ctr;  // the interval excludes 0
  EXPECT_TRUE(page_ctr["significant"].get<bool>());
  EXPECT_LT(ideal["ab_test"]["metrics"]["abandonment_rate"]["relative"].get<double>(), 0);
  const auto& interleaving = ideal["interleaving"];
  EXPECT_GT(interleaving["wins_b"].get<std::size_t>(), interleaving["wins_a"].get<std::size_t>());
  EXPECT_LT(interleaving["p_value"].get<double>(), 0.05);
  EXPECT_GT(ideal["offline"]["ndcg_cut.10"]["diff"].get<double>(), 0);

  // A function of the seed, not of the thread count; another seed is another draw.
  EXPECT_EQ(
      simulate_online(data.set, {"worst", data.worst}, {{"ideal", data.ideal}}, small_online(), 1).dump(),
      online.dump());
  OnlineSettings reseeded = small_online();
  reseeded.seed = 4;
  EXPECT_NE(simulate_online(data.set, {"worst", data.worst}, {{"ideal", data.ideal}}, reseeded, 2).dump(),
            online.dump());
}

TEST(PipelineOnline, TheReferenceAgainstItselfDiffersByNoiseOnly) {
  OnlineSet data;
  const nlohmann::json online = simulate_online(
      data.set, {"worst", data.worst}, {{"same", data.worst}, {"ideal", data.ideal}}, small_online(), 2);
  ASSERT_EQ(online["systems"].size(), 2u);
  const auto& same = online["systems"][0];
  // Offline, the same run is exactly as good.
  EXPECT_EQ(same["offline"]["ndcg_cut.10"]["diff"].get<double>(), 0.0);
  // Online, the two A/B buckets are different simulated users and team draft credits a shared document to
  // whichever team picked it, so A = B is noise around 0, never a significant difference for this seed.
  const auto& page_ctr = same["ab_test"]["metrics"]["page_ctr"];
  EXPECT_LE(page_ctr["ci_low"].get<double>(), 0) << page_ctr;
  EXPECT_GE(page_ctr["ci_high"].get<double>(), 0) << page_ctr;
  EXPECT_FALSE(page_ctr["significant"].get<bool>());
  EXPECT_LT(std::abs(page_ctr["relative"].get<double>()), 0.05);
  EXPECT_GE(same["interleaving"]["p_value"].get<double>(), 0.05);
  // Every system meets the same simulated control traffic: bucket A is identical in both experiments.
  EXPECT_EQ(same["ab_test"]["a"], online["systems"][1]["ab_test"]["a"]);
  EXPECT_EQ(same["ab_test"]["metrics"]["page_ctr"]["a"],
            online["systems"][1]["ab_test"]["metrics"]["page_ctr"]["a"]);
}

TEST(PipelineOnline, ASetWithoutPositiveGradesIsNotSimulated) {
  OnlineSet data;
  data.set.qrels = data.dir.write("zeros.txt", "q1 0 q1d0 0\nq1 0 q1d1 0\n");
  EXPECT_TRUE(
      simulate_online(data.set, {"worst", data.worst}, {{"ideal", data.ideal}}, small_online(), 1).is_null());
  OnlineSettings unknown = small_online();
  unknown.click_model = "dbm";
  data.set.qrels = (data.dir.path() / "qrels.txt").string();
  EXPECT_THROW(simulate_online(data.set, {"worst", data.worst}, {{"ideal", data.ideal}}, unknown, 1), Error);
}

TEST(PipelineOnline, TheSummaryPrintsTheOnlineTableOfTheReport) {
  OnlineSet data;
  nlohmann::json evaluation =
      evaluate_set(data.set, {{"worst", data.worst}, {"ideal", data.ideal}}, {"ndcg_cut.10"}, {"worst"}, 100);
  evaluation["online"] =
      simulate_online(data.set, {"worst", data.worst}, {{"ideal", data.ideal}}, small_online(), 2);
  const nlohmann::json report = {{"title", "t"}, {"evaluations", {evaluation}}};
  // What the pipeline writes is what the report reader accepts.
  const ReportData read = report_from_json(report, "report.json");
  ASSERT_TRUE(read.evaluations[0].online.has_value());
  EXPECT_EQ(read.evaluations[0].online->systems[0].wins,
            evaluation["online"]["systems"][0]["interleaving"]["wins_b"].get<std::size_t>());
  const std::string text = summary_tables(report);
  EXPECT_NE(text.find("\nOnline (simulated): toy\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nideal "), std::string::npos) << text;
  EXPECT_NE(
      text.find("Simulated, not measured: clicks follow the DBN click model driven by the qrels grades"),
      std::string::npos)
      << text;
}

TEST(PipelinePlan, SlugsAreFileNames) {
  EXPECT_EQ(system_slug("student (distilled, alpha 0.25)"), "student-distilled-alpha-0.25");
  EXPECT_EQ(system_slug("teacher, mean pooling"), "teacher-mean-pooling");
}

}  // namespace
}  // namespace disranker::pipeline
