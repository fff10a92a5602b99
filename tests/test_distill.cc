// Specification of distillation (train/distill.h): teacher score normalisation (checked against hand-computed
// z-scores), the stage's option checks, and training a tiny BERT student on a synthetic teacher until it
// reproduces the teacher's ranking of the training documents (PNR against the teacher, before and after).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/groups.h"
#include "data/run.h"
#include "model/ranker.h"
#include "test_util.h"
#include "train/distill.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const torch::Device kCpu(torch::kCPU);

constexpr const char* kVocab =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]"
    "\nthe\na\nof\nis\nwhat\nwhere\nhow\ncat\ndog\nsat\non\nmat\nhouse\nbig\n"
    "small\nred\nblue\nruns\nfast\nslow\ncar\nwater\nfire\ntree\nlives\nin\n##s\nanimal\npet\n";
constexpr const char* kBertConfig =
    R"({"model_type": "bert", "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64,
        "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})";

QueryGroup group_with_teacher(const std::string& qid, const std::vector<double>& scores) {
  QueryGroup group{qid, {}};
  for (std::size_t i = 0; i < scores.size(); ++i) {
    GroupDoc doc;
    doc.docid = qid + "-d" + std::to_string(i);
    doc.teacher = scores[i];
    group.docs.push_back(doc);
  }
  return group;
}

std::vector<double> teacher_scores(const QueryGroup& group) {
  std::vector<double> out;
  for (const auto& doc : group.docs) out.push_back(doc.teacher);
  return out;
}

// -----------------------------------------------------------------------------------------------------------
// Teacher normalisation

TEST(TeacherNorm, QueryStandardisesEachQueryByHand) {
  std::vector<QueryGroup> groups = {group_with_teacher("q1", {1.0, 2.0, 3.0}),
                                    group_with_teacher("q2", {10.0, -6.0, 2.0, 2.0})};
  const auto report = normalize_teacher_scores(groups, TeacherNorm::kQuery);
  EXPECT_EQ(report.degenerate_queries, 0u);
  // q1: mean 2, population variance ((1)^2 + 0 + 1^2) / 3 = 2/3.
  const double sd1 = std::sqrt(2.0 / 3.0);
  const auto z1 = teacher_scores(groups[0]);
  EXPECT_NEAR(z1[0], -1.0 / sd1, 1e-12);  // -1.2247...
  EXPECT_NEAR(z1[1], 0.0, 1e-12);
  EXPECT_NEAR(z1[2], 1.0 / sd1, 1e-12);
  EXPECT_NEAR(z1[2], 1.224744871391589, 1e-12);
  // q2: mean 2, deviations 8, -8, 0, 0: variance 128 / 4 = 32, sd 4√2.
  const double sd2 = std::sqrt(32.0);
  const auto z2 = teacher_scores(groups[1]);
  EXPECT_NEAR(z2[0], 8.0 / sd2, 1e-12);
  EXPECT_NEAR(z2[1], -8.0 / sd2, 1e-12);
  EXPECT_NEAR(z2[2], 0.0, 1e-12);
  EXPECT_NEAR(z2[3], 0.0, 1e-12);
}

TEST(TeacherNorm, AQueryWithOneDocumentOrEqualScoresBecomesZeroAndIsCounted) {
  std::vector<QueryGroup> groups = {group_with_teacher("single", {4.2}),
                                    group_with_teacher("flat", {-3.0, -3.0, -3.0}),
                                    group_with_teacher("fine", {0.0, 1.0})};
  const auto report = normalize_teacher_scores(groups, TeacherNorm::kQuery);
  EXPECT_EQ(report.degenerate_queries, 2u);
  EXPECT_EQ(teacher_scores(groups[0]), (std::vector<double>{0.0}));
  EXPECT_EQ(teacher_scores(groups[1]), (std::vector<double>{0.0, 0.0, 0.0}));
  EXPECT_NEAR(teacher_scores(groups[2])[0], -1.0, 1e-12);  // mean 0.5, sd 0.5
  EXPECT_NEAR(teacher_scores(groups[2])[1], 1.0, 1e-12);
  EXPECT_EQ(report.to_json().at("degenerate_queries"), 2);
}

TEST(TeacherNorm, GlobalIsOneAffineMapOfThePool) {
  std::vector<QueryGroup> groups = {group_with_teacher("q1", {1.0, 2.0, 3.0}),
                                    group_with_teacher("q2", {6.0})};
  const auto report = normalize_teacher_scores(groups, TeacherNorm::kGlobal);
  // Pool 1, 2, 3, 6: mean 3, deviations -2, -1, 0, 3: variance 14 / 4 = 3.5.
  EXPECT_DOUBLE_EQ(report.mean, 3.0);
  EXPECT_NEAR(report.stddev, std::sqrt(3.5), 1e-12);
  const double sd = std::sqrt(3.5);
  EXPECT_NEAR(groups[0].docs[0].teacher, -2.0 / sd, 1e-12);
  EXPECT_NEAR(groups[0].docs[2].teacher, 0.0, 1e-12);
  EXPECT_NEAR(groups[1].docs[0].teacher, 3.0 / sd, 1e-12);  // a one-document query keeps its offset
  // Differences within a query are all scaled by the same factor.
  EXPECT_NEAR(groups[0].docs[1].teacher - groups[0].docs[0].teacher, 1.0 / sd, 1e-12);
}

TEST(TeacherNorm, NoneLeavesTheScoresAndAFlatPoolIsAnErrorForGlobal) {
  std::vector<QueryGroup> groups = {group_with_teacher("q1", {1.5, -2.0})};
  normalize_teacher_scores(groups, TeacherNorm::kNone);
  EXPECT_EQ(teacher_scores(groups[0]), (std::vector<double>{1.5, -2.0}));
  std::vector<QueryGroup> flat = {group_with_teacher("q1", {2.0, 2.0}), group_with_teacher("q2", {2.0})};
  EXPECT_THROW(normalize_teacher_scores(flat, TeacherNorm::kGlobal), Error);
  std::vector<QueryGroup> missing = {group_with_teacher("q1", {1.0, std::nan("")})};
  EXPECT_THROW(normalize_teacher_scores(missing, TeacherNorm::kNone), Error);
}

TEST(TeacherNorm, NamesParseAndAnUnknownOneNamesTheFlag) {
  EXPECT_EQ(parse_teacher_norm("none"), TeacherNorm::kNone);
  EXPECT_EQ(parse_teacher_norm("query"), TeacherNorm::kQuery);
  EXPECT_EQ(parse_teacher_norm("global"), TeacherNorm::kGlobal);
  for (const auto norm : {TeacherNorm::kNone, TeacherNorm::kQuery, TeacherNorm::kGlobal}) {
    EXPECT_EQ(parse_teacher_norm(std::string(to_string(norm))), norm);
  }
  try {
    parse_teacher_norm("minmax");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--teacher-norm"), std::string::npos) << e.what();
  }
}

// -----------------------------------------------------------------------------------------------------------
// Options

TEST(DistillStage, OptionsAreValidatedNamingTheFlag) {
  DistillOptions options;
  options.teacher_run_path = "teacher.run";
  options.queries_path = "q";
  options.docs_path = "d";
  EXPECT_NO_THROW(validate(options));
  const auto message_of = [](const DistillOptions& bad) {
    try {
      validate(bad);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  auto bad = options;
  bad.train.loss.pairs = PairSelection::kPositiveNegative;
  EXPECT_NE(message_of(bad).find("--qrels"), std::string::npos) << message_of(bad);
  bad.qrels_path = "qrels.txt";
  EXPECT_NO_THROW(validate(bad));
  bad = options;
  bad.train.loss.alpha = 1.5;
  EXPECT_NE(message_of(bad).find("alpha"), std::string::npos) << message_of(bad);
  bad = options;
  bad.train.loss.name = "hybird";
  EXPECT_THROW(validate(bad), Error);
  bad = options;
  bad.teacher_run_path.clear();
  EXPECT_NE(message_of(bad).find("--teacher-run"), std::string::npos);
  // The defaults are the paper's: hybrid, alpha 0.5, all pairs, uniform groups of 8, 8 queries per batch.
  EXPECT_EQ(options.train.loss.name, "hybrid");
  EXPECT_EQ(options.train.loss.alpha, 0.5);
  EXPECT_EQ(options.train.batching.sample.group_size, 8u);
  EXPECT_FALSE(options.train.batching.sample.positive_first);
  EXPECT_EQ(options.train.batching.groups_per_batch, 8u);
}

// -----------------------------------------------------------------------------------------------------------
// Training on a synthetic teacher

// Six queries over the same seven documents; the synthetic teacher grades each document by its topic (cat
// highest ... fire lowest) plus a small query-dependent offset, so its ranking is the same for every query
// and learnable from the document alone.
struct TeacherWorld {
  Queries queries;
  Docs docs;
  Run teacher;
  std::map<std::string, double> grade;
  TeacherWorld() {
    const char* const topics[] = {"cat", "dog", "car", "house", "tree", "water", "fire"};
    const char* const fillers[] = {"sat on the mat",    "is big and red", "runs fast", "lives in the house",
                                   "is small and blue", "of the tree",    "is slow"};
    for (int k = 0; k < 7; ++k) {
      const std::string id = "d" + std::to_string(k);
      docs.add({id, topics[k], std::string("the ") + topics[k] + " " + fillers[(k + 3) % 7]});
      grade[id] = 3.0 - 0.9 * k;
    }
    const char* const texts[] = {"what is a pet", "where is the animal", "how big is a house",
                                 "what is red",   "how fast is a car",   "where is the water"};
    teacher.tag = "synthetic-teacher";
    for (int q = 0; q < 6; ++q) {
      const std::string qid = "q" + std::to_string(q);
      queries.add({qid, texts[q]});
      for (int k = 0; k < 7; ++k) {
        const std::string id = "d" + std::to_string(k);
        teacher.by_query[qid].push_back({id, grade[id] + 0.1 * q});
      }
    }
    teacher.sort_by_score();
  }
};

// Share of the teacher's discordant pairs (t_i > t_j) that the student orders the same way (s_i > s_j).
double pnr_against_teacher(Ranker& student, const TeacherWorld& world) {
  std::size_t agree = 0, pairs = 0;
  for (const auto& [qid, entries] : world.teacher.by_query) {
    std::vector<EncodedPair> encoded;
    for (const auto& entry : entries) {
      const Doc* doc = world.docs.find(entry.docid);
      encoded.push_back(student.encode(world.queries.find(qid)->text, doc->title, doc->text));
    }
    const auto scores = student.score(encoded);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      for (std::size_t j = 0; j < entries.size(); ++j) {
        if (entries[i].score > entries[j].score) {
          ++pairs;
          agree += scores[i] > scores[j] ? 1 : 0;
        }
      }
    }
  }
  return static_cast<double>(agree) / static_cast<double>(pairs);
}

struct Student {
  TempDir tmp;
  std::string vocab = tmp.write("tiny-vocab.txt", kVocab);
  std::string config = tmp.write("bert.json", kBertConfig);
  std::unique_ptr<Ranker> create(std::uint64_t seed = 3) const {
    return Ranker::create(config, vocab, kCpu,
                          {.role = RankerRole::kStudent, .max_length = 48, .seed = seed});
  }
  std::string path(const std::string& name) const { return (tmp.path() / name).string(); }
};

RunOptions quiet_run(const std::string& out_dir, std::int64_t max_steps) {
  RunOptions run;
  run.out_dir = out_dir;
  run.quiet = true;
  run.seed = 5;
  run.epochs = 1000;
  run.max_steps = max_steps;
  run.save_every = 0;
  run.log_every = 5;
  return run;
}

OptimizerOptions constant_adamw(double learning_rate) {
  OptimizerOptions optimizer;
  optimizer.learning_rate = learning_rate;
  optimizer.schedule = "constant";
  optimizer.warmup_steps = 0;
  optimizer.weight_decay = 0.0;
  return optimizer;
}

TEST(Distill, ATinyStudentLearnsTheSyntheticTeachersRanking) {
  const TeacherWorld world;
  const Student student_files;
  auto student = student_files.create();
  auto groups = build_teacher_groups(world.queries, world.docs, world.teacher, nullptr,
                                     {.require_positive = false}, nullptr);
  ASSERT_EQ(groups.size(), 6u);
  normalize_teacher_scores(groups, TeacherNorm::kQuery);

  const double before = pnr_against_teacher(*student, world);
  DistillTrainOptions options;  // hybrid, alpha 0.5, all pairs
  options.batching = {.sample = {.group_size = 4, .positive_first = false}, .groups_per_batch = 3};
  const auto summary = train_distill(*student, world.queries, world.docs, groups, options,
                                     quiet_run(student_files.path("run"), 60), constant_adamw(5e-3));
  const double after = pnr_against_teacher(*student, world);
  EXPECT_EQ(summary.steps, 60);
  RecordProperty("pnr_before", std::to_string(before));
  RecordProperty("pnr_after", std::to_string(after));
  EXPECT_GT(after, before);
  EXPECT_GE(after, 0.9) << "PNR against the teacher: before " << before << ", after " << after;
}

TEST(Distill, EveryLossReducesItsOwnValue) {
  const TeacherWorld world;
  const Student student_files;
  auto groups = build_teacher_groups(world.queries, world.docs, world.teacher, nullptr,
                                     {.require_positive = false}, nullptr);
  normalize_teacher_scores(groups, TeacherNorm::kQuery);
  for (const char* name : {"margin-mse", "point-mse", "kl"}) {
    auto student = student_files.create();
    DistillTrainOptions options;
    options.loss.name = name;
    options.batching.sample.group_size = 0;  // the full lists: the logged loss is the loss on all the data
    options.batching.groups_per_batch = 6;
    RunOptions run = quiet_run(student_files.path(std::string("run-") + name), 25);
    run.log_every = 1;
    const auto first =
        train_distill(*student, world.queries, world.docs, groups, options,
                      quiet_run(student_files.path(std::string("first-") + name), 1), constant_adamw(5e-3));
    auto fresh = student_files.create();
    const auto trained =
        train_distill(*fresh, world.queries, world.docs, groups, options, run, constant_adamw(5e-3));
    EXPECT_LT(trained.final_loss, 0.5 * first.final_loss) << name;
  }
}

TEST(Distill, PositiveNegativePairsNeedJudgedDocuments) {
  const TeacherWorld world;
  const Student student_files;
  auto student = student_files.create();
  const auto groups = build_teacher_groups(world.queries, world.docs, world.teacher, nullptr,
                                           {.require_positive = false}, nullptr);
  DistillTrainOptions options;
  options.loss.pairs = PairSelection::kPositiveNegative;
  EXPECT_THROW(train_distill(*student, world.queries, world.docs, groups, options,
                             quiet_run(student_files.path("run"), 1), constant_adamw(1e-3)),
               Error);
}

// -----------------------------------------------------------------------------------------------------------
// The stage from files

TEST(DistillStage, WritesTheModelAndTheSummaryWithTheNormalisation) {
  const TeacherWorld world;
  const Student student_files;
  const fs::path data = student_files.tmp.path() / "data";
  fs::create_directories(data);
  write_queries((data / "queries.tsv").string(), world.queries);
  write_docs((data / "docs.tsv").string(), world.docs);
  Qrels qrels;
  for (const auto& query : world.queries.items()) qrels.by_query[query.id] = {{"d0", 1}, {"d6", 0}};
  write_qrels((data / "qrels.txt").string(), qrels);
  disranker::Run teacher = world.teacher;
  teacher.by_query["q0"].push_back({"ghost", 1.0});  // a document without text: dropped and counted
  write_run((data / "teacher.run").string(), teacher);

  const std::string model_dir = student_files.path("student");
  {
    auto fresh = student_files.create();
    fresh->manifest().provenance = {{"stage", "mlm"}};  // what the student came with: kept as its base
    fresh->save(model_dir);
  }
  auto student = Ranker::load(model_dir, kCpu);
  DistillOptions options;
  options.teacher_run_path = (data / "teacher.run").string();
  options.queries_path = (data / "queries.tsv").string();
  options.docs_path = (data / "docs.tsv").string();
  options.qrels_path = (data / "qrels.txt").string();
  options.train.loss.pairs = PairSelection::kPositiveNegative;
  options.norm = TeacherNorm::kGlobal;
  options.dev_dir = data.string();
  const auto summary = run_distill(*student, model_dir, options, quiet_run(student_files.path("out"), 3),
                                   constant_adamw(1e-3));
  EXPECT_EQ(summary.at("steps"), 3);
  EXPECT_EQ(summary.at("groups").at("groups_out"), 6);
  EXPECT_EQ(summary.at("groups").at("missing_docs"), 1);
  EXPECT_EQ(summary.at("teacher_norm").at("norm"), "global");
  EXPECT_GT(summary.at("teacher_norm").at("stddev").get<double>(), 0.0);
  EXPECT_EQ(summary.at("loss").at("pairs"), "pos-neg");
  ASSERT_TRUE(summary.contains("validation"));
  EXPECT_TRUE(summary.at("validation").contains("pnr"));

  const fs::path out = student_files.path("out");
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(out / "summary.json")), summary);
  auto saved = Ranker::load((out / "model").string(), kCpu);
  const auto& provenance = saved->manifest().provenance;
  EXPECT_EQ(provenance.at("stage"), "distill");
  EXPECT_EQ(provenance.at("loss").at("name"), "hybrid");
  EXPECT_EQ(provenance.at("loss").at("alpha"), 0.5);
  EXPECT_EQ(provenance.at("data").at("teacher_run"), options.teacher_run_path);
  EXPECT_EQ(provenance.at("teacher_norm").at("norm"), "global");
  EXPECT_EQ(provenance.at("base_provenance"), nlohmann::json({{"stage", "mlm"}}));
}

TEST(DistillStage, ANonFiniteTeacherScoreNamesTheFile) {
  const TeacherWorld world;
  const Student student_files;
  const std::string queries = student_files.path("queries.tsv");
  const std::string docs = student_files.path("docs.tsv");
  write_queries(queries, world.queries);
  write_docs(docs, world.docs);
  const std::string run = student_files.tmp.write("teacher.run", "q0 Q0 d0 1 2.5 t\nq0 Q0 d1 2 nan t\n");
  auto student = student_files.create();
  DistillOptions options;
  options.teacher_run_path = run;
  options.queries_path = queries;
  options.docs_path = docs;
  EXPECT_ERROR(run_distill(*student, "student", options, quiet_run(student_files.path("out"), 1),
                           constant_adamw(1e-3)),
               run, "score", "not a finite number");
}

}  // namespace
}  // namespace disranker
