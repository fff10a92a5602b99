// Specification of rank fine-tuning (train/sft.h) and of the grouped batching it shares with distillation, on
// tiny models: a BERT on a hand-written WordPiece vocabulary and a Llama decoder on a byte-level BPE trained
// here.
//
// References are independent of the code under test: the batch layout against scoring each pair alone, the
// epoch coverage by counting, the effect of training against the loss of the untrained model on the full
// lists, LoRA against a snapshot of the weights, resume against an uninterrupted run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/groups.h"
#include "model/lora.h"
#include "model/ranker.h"
#include "test_util.h"
#include "text/bpe_trainer.h"
#include "train/sft.h"
#include "train/validation.h"

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
constexpr const char* kDecoderConfig =
    R"({"model_type": "llama", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
        "max_position_embeddings": 96})";

// Seven topics; each query asks about one, and its relevant document is the one about that topic.
const char* const kTopics[] = {"cat", "dog", "car", "house", "tree", "water", "fire"};

// A fixed small dataset: query qK "what is a <topic K>"; its relevant document dK is about topic K (grade 2
// for even K, 1 for odd K) and its three judged negatives are off-topic texts (nK, nK+1, nK+2 mod 7) that
// name no topic. A few steps can learn it, as a real ranker first learns "on topic beats off topic".
struct Dataset {
  Queries queries;
  Docs docs;
  Qrels qrels;
  std::vector<QueryGroup> groups;
  Dataset() {
    const char* const fillers[] = {"sat on the mat",    "is big and red", "runs fast", "lives in the house",
                                   "is small and blue", "of the tree",    "is slow"};
    const char* const off_topic[] = {"how slow is it", "where is the big one", "small and blue",
                                     "what runs fast", "of the red one",       "is it in",
                                     "how big is a"};
    for (int k = 0; k < 7; ++k) {
      const std::string id = std::to_string(k);
      queries.add({"q" + id, std::string("what is a ") + kTopics[k]});
      docs.add({"d" + id, kTopics[k], std::string("the ") + kTopics[k] + " " + fillers[k]});
      docs.add({"n" + id, "", off_topic[k]});
    }
    for (int k = 0; k < 7; ++k) {
      auto& judged = qrels.by_query["q" + std::to_string(k)];
      judged["d" + std::to_string(k)] = k % 2 == 0 ? 2 : 1;
      for (int other : {0, 1, 2}) judged["n" + std::to_string((k + other) % 7)] = 0;
    }
    groups = build_label_groups(queries, docs, qrels, nullptr, {}, nullptr);
  }
};

struct Models {
  TempDir tmp;
  std::string vocab = tmp.write("tiny-vocab.txt", kVocab);
  std::string bert_config = tmp.write("bert.json", kBertConfig);
  std::string decoder_config = tmp.write("decoder.json", kDecoderConfig);
  std::string bpe_json;

  Models() {
    BpeTrainerOptions options;
    options.vocab_size = 64;
    options.full_byte_alphabet = false;
    BpeTrainer trainer(options);
    for (const char* line : {"what is a cat dog car house tree water fire", "the cat sat on the mat",
                             "is big and red runs fast lives in the house",
                             "is small and blue of the tree is slow", "query: document: "}) {
      trainer.add_text(line);
    }
    bpe_json = (tmp.path() / "tokenizer.json").string();
    write_bpe_tokenizer_json(trainer.train(), bpe_json);
  }
  std::string path(const std::string& name) const { return (tmp.path() / name).string(); }
  std::unique_ptr<Ranker> bert(std::uint64_t seed = 7) const {
    return Ranker::create(bert_config, vocab, kCpu,
                          {.role = RankerRole::kStudent, .max_length = 48, .seed = seed});
  }
  std::unique_ptr<Ranker> decoder(std::uint64_t seed = 7) const {
    return Ranker::create(decoder_config, bpe_json, kCpu,
                          {.role = RankerRole::kTeacher, .max_length = 64, .lm_head = true, .seed = seed});
  }
};

RunOptions quiet_run(const std::string& out_dir, std::int64_t max_steps) {
  RunOptions run;
  run.out_dir = out_dir;
  run.quiet = true;
  run.seed = 11;
  run.epochs = 1000;
  run.max_steps = max_steps;
  run.save_every = 0;
  run.log_every = 1;
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

// The loss of the model on every group's full candidate list in one batch (eval mode, no grad).
double full_list_loss(Ranker& ranker, const Dataset& data, const RankLossOptions& loss) {
  torch::NoGradGuard no_grad;
  ranker.module().eval();
  const GroupBatchOptions all{.sample = {.group_size = 0, .positive_first = true},
                              .groups_per_batch = data.groups.size()};
  const auto plan = plan_group_batch(data.groups, all, 1, 0, 0);
  const auto batch = score_group_batch(ranker, data.queries, data.docs, data.groups, plan);
  return rank_loss(loss, batch.scores, batch.labels, batch.valid).item<double>();
}

std::map<std::string, torch::Tensor> snapshot(torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : module.named_parameters(true)) out[item.key()] = item.value().detach().clone();
  return out;
}

// -----------------------------------------------------------------------------------------------------------
// Grouped batching

TEST(GroupBatching, AnEpochVisitsEveryGroupOnceAndTheLastBatchTakesTheRest) {
  const Dataset data;  // 7 groups
  const GroupBatchOptions options{.sample = {.group_size = 3, .positive_first = true}, .groups_per_batch = 3};
  ASSERT_EQ(group_batches_per_epoch(data.groups.size(), 3), 3);
  for (std::int64_t epoch = 0; epoch < 3; ++epoch) {
    std::multiset<std::size_t> seen;
    std::vector<std::size_t> sizes;
    for (std::int64_t index = 0; index < 3; ++index) {
      const auto plan = plan_group_batch(data.groups, options, 5, epoch, index);
      ASSERT_EQ(plan.groups.size(), plan.documents.size());
      sizes.push_back(plan.groups.size());
      seen.insert(plan.groups.begin(), plan.groups.end());
    }
    EXPECT_EQ(sizes, (std::vector<std::size_t>{3, 3, 1}));
    EXPECT_EQ(seen, (std::multiset<std::size_t>{0, 1, 2, 3, 4, 5, 6}));
  }
  EXPECT_THROW(plan_group_batch(data.groups, options, 5, 0, 3), Error);
}

TEST(GroupBatching, APlanIsAPureFunctionOfSeedEpochAndIndex) {
  const Dataset data;
  const GroupBatchOptions options{.sample = {.group_size = 3, .positive_first = true}, .groups_per_batch = 2};
  const auto a = plan_group_batch(data.groups, options, 5, 1, 2);
  // Planning other batches in between changes nothing: there is no running generator.
  plan_group_batch(data.groups, options, 5, 0, 0);
  plan_group_batch(data.groups, options, 9, 1, 2);
  const auto b = plan_group_batch(data.groups, options, 5, 1, 2);
  EXPECT_EQ(a.groups, b.groups);
  EXPECT_EQ(a.documents, b.documents);
  // Epochs are shuffled differently.
  std::set<std::vector<std::size_t>> firsts;
  for (std::int64_t epoch = 0; epoch < 10; ++epoch)
    firsts.insert(plan_group_batch(data.groups, options, 5, epoch, 0).groups);
  EXPECT_GT(firsts.size(), 3u);
  // Each group's sample is positive-first: the first document is the query's relevant one.
  for (std::size_t g = 0; g < a.groups.size(); ++g) {
    EXPECT_GE(data.groups[a.groups[g]].docs[a.documents[g][0]].label, 1);
  }
}

TEST(GroupBatching, ScoresAreLaidOutOneQueryPerRowWithPaddingMasked) {
  const Dataset data;
  const Models models;
  auto ranker = models.bert();
  ranker->module().eval();
  // Group sizes 4 and 2: the second row is padded.
  MicroBatchPlan plan;
  plan.groups = {3, 0};
  plan.documents = {{0, 1, 2, 3}, {2, 0}};
  const auto batch = score_group_batch(*ranker, data.queries, data.docs, data.groups, plan);
  ASSERT_EQ(batch.scores.sizes(), (std::vector<std::int64_t>{2, 4}));
  EXPECT_EQ(batch.pairs, 6u);
  const auto valid = batch.valid.to(torch::kInt64);
  EXPECT_TRUE(torch::equal(valid, torch::tensor({{1, 1, 1, 1}, {1, 1, 0, 0}}, torch::kInt64)));

  // Each slot holds the score of its pair scored alone, and its label.
  for (std::size_t g = 0; g < 2; ++g) {
    const QueryGroup& group = data.groups[plan.groups[g]];
    for (std::size_t j = 0; j < plan.documents[g].size(); ++j) {
      const GroupDoc& doc = group.docs[plan.documents[g][j]];
      const Doc* text = data.docs.find(doc.docid);
      const EncodedPair pair = ranker->encode(data.queries.find(group.qid)->text, text->title, text->text);
      const double alone = ranker->score(std::span<const EncodedPair>(&pair, 1))[0];
      EXPECT_NEAR(batch.scores[g][j].item<double>(), alone, 1e-5) << group.qid << " " << doc.docid;
      EXPECT_EQ(batch.labels[g][j].item<float>(), static_cast<float>(doc.label));
    }
  }
  EXPECT_EQ(batch.scores[1][2].item<float>(), 0.0f);
  EXPECT_EQ(batch.scores[1][3].item<float>(), 0.0f);

  // Gradients reach the model through the valid slots only.
  ranker->module().train();  // the config has no dropout: the same scores, now with autograd
  const auto trained = score_group_batch(*ranker, data.queries, data.docs, data.groups, plan);
  ASSERT_TRUE(trained.scores.requires_grad());
  std::vector<torch::Tensor> parameters;
  for (const auto& parameter : ranker->module().parameters()) parameters.push_back(parameter);
  const auto padded = trained.scores.masked_select(trained.valid.logical_not()).sum();
  for (const auto& grad : torch::autograd::grad({padded}, parameters, {}, /*retain_graph=*/true,
                                                /*create_graph=*/false, /*allow_unused=*/true)) {
    if (grad.defined()) {
      EXPECT_EQ(grad.abs().max().item<double>(), 0.0);
    }
  }
  const auto real = trained.scores.masked_select(trained.valid).sum();
  double total = 0;
  for (const auto& grad : torch::autograd::grad({real}, parameters, {}, false, false, true)) {
    if (grad.defined()) total += grad.abs().sum().item<double>();
  }
  EXPECT_GT(total, 0.0);
}

TEST(GroupBatching, AMissingDocumentTextIsAnError) {
  const Dataset data;
  const Models models;
  auto ranker = models.bert();
  std::vector<QueryGroup> groups = data.groups;
  groups[0].docs[0].docid = "no-such-doc";
  MicroBatchPlan plan{{0}, {{0}}};
  EXPECT_THROW(score_group_batch(*ranker, data.queries, data.docs, groups, plan), Error);
}

// -----------------------------------------------------------------------------------------------------------
// Training

TEST(Sft, AFewStepsOnATinyBertReduceTheLoss) {
  const Dataset data;
  const Models models;
  auto ranker = models.bert();
  SftTrainOptions options;
  options.loss.name = "softmax";
  options.batching = {.sample = {.group_size = 3, .positive_first = true}, .groups_per_batch = 4};
  const double before = full_list_loss(*ranker, data, options.loss);
  const auto summary = train_sft(*ranker, data.queries, data.docs, data.groups, options,
                                 quiet_run(models.path("bert-run"), 40), constant_adamw(3e-3));
  const double after = full_list_loss(*ranker, data, options.loss);
  EXPECT_EQ(summary.steps, 40);
  EXPECT_GT(summary.units_per_second, 0.0);
  RecordProperty("loss_before", std::to_string(before));
  RecordProperty("loss_after", std::to_string(after));
  EXPECT_LT(after, 0.5 * before) << "before " << before << ", after " << after;
}

TEST(Sft, AFewStepsOnATinyDecoderReduceTheLoss) {
  const Dataset data;
  const Models models;
  auto ranker = models.decoder();
  SftTrainOptions options;
  options.loss.name = "ranknet";
  options.batching = {.sample = {.group_size = 4, .positive_first = true}, .groups_per_batch = 4};
  const double before = full_list_loss(*ranker, data, options.loss);
  train_sft(*ranker, data.queries, data.docs, data.groups, options, quiet_run(models.path("decoder-run"), 40),
            constant_adamw(3e-3));
  const double after = full_list_loss(*ranker, data, options.loss);
  RecordProperty("loss_before", std::to_string(before));
  RecordProperty("loss_after", std::to_string(after));
  EXPECT_LT(after, 0.5 * before) << "before " << before << ", after " << after;
}

TEST(Sft, EveryLossNameTrainsAndAnUnknownOneIsAnError) {
  const Dataset data;
  const Models models;
  for (const char* name : {"hinge", "mse", "bce"}) {
    auto ranker = models.bert();
    SftTrainOptions options;
    options.loss.name = name;
    const double before = full_list_loss(*ranker, data, options.loss);
    train_sft(*ranker, data.queries, data.docs, data.groups, options,
              quiet_run(models.path(std::string("run-") + name), 15), constant_adamw(3e-3));
    // bce divides the grades by the data's maximum (2 here): the full-list loss must use the same.
    RankLossOptions measured = options.loss;
    if (measured.name == "bce") measured.max_label = 2;
    EXPECT_LT(full_list_loss(*ranker, data, measured), before) << name;
  }
  auto ranker = models.bert();
  SftTrainOptions unknown;
  unknown.loss.name = "listmle";
  EXPECT_THROW(train_sft(*ranker, data.queries, data.docs, data.groups, unknown,
                         quiet_run(models.path("run-unknown"), 1), constant_adamw(1e-3)),
               Error);
}

TEST(Sft, LoraTrainsOnlyTheAdaptersAndTheScoreHeadAndTheSavedModelIsMerged) {
  const Dataset data;
  const Models models;
  auto ranker = models.decoder();
  LoraConfig lora;
  lora.r = 2;
  lora.alpha = 4.0;
  lora.target_modules = {"q_proj", "v_proj"};
  const auto adapted = apply_rank_lora(*ranker, lora);
  EXPECT_EQ(adapted.size(), 2u);  // one layer, two projections
  const auto before = snapshot(ranker->module());
  std::int64_t expected_trainable = 0;
  for (const auto& [name, tensor] : before) {
    if (name.find("lora_") != std::string::npos || name.starts_with("score."))
      expected_trainable += tensor.numel();
  }
  EXPECT_EQ(count_trainable_parameters(ranker->module()), expected_trainable);

  SftTrainOptions options;
  train_sft(*ranker, data.queries, data.docs, data.groups, options, quiet_run(models.path("lora-run"), 5),
            constant_adamw(1e-2));
  std::size_t changed = 0;
  for (const auto& item : ranker->module().named_parameters(true)) {
    const std::string& name = item.key();
    const bool trainable = name.find("lora_") != std::string::npos || name.starts_with("score.");
    EXPECT_EQ(item.value().requires_grad(), trainable) << name;
    const bool same = torch::equal(item.value(), before.at(name));
    if (trainable) {
      EXPECT_FALSE(same) << name << " did not train";
    } else {
      EXPECT_TRUE(same) << name << " changed but is frozen";
    }
    changed += same ? 0 : 1;
  }
  EXPECT_EQ(changed, 2u * 2u + 1u);  // lora_A and lora_B of two projections, and score.weight

  // The saved model is a plain decoder with the adapters folded in: it scores as the adapted one does.
  const std::string saved = models.path("lora-model");
  ranker->save(saved);
  auto loaded = Ranker::load(saved, kCpu);
  std::vector<EncodedPair> pairs;
  for (int k = 0; k < 7; ++k) {
    const Doc* doc = data.docs.find("d" + std::to_string(k));
    pairs.push_back(ranker->encode("what is a cat", doc->title, doc->text));
  }
  const auto live = ranker->score(pairs);
  const auto merged = loaded->score(pairs);
  for (std::size_t i = 0; i < pairs.size(); ++i) EXPECT_NEAR(merged[i], live[i], 1e-5);
}

TEST(Sft, LoraOnBertIsAnError) {
  const Models models;
  auto ranker = models.bert();
  EXPECT_THROW(apply_rank_lora(*ranker, LoraConfig{}), Error);
}

TEST(Sft, ResumedTrainingEqualsAnUninterruptedRun) {
  const Dataset data;
  const Models models;
  SftTrainOptions options;
  options.batching = {.sample = {.group_size = 3, .positive_first = true}, .groups_per_batch = 3};
  const auto optimizer = constant_adamw(3e-3);

  auto whole = models.bert();
  const auto uninterrupted = train_sft(*whole, data.queries, data.docs, data.groups, options,
                                       quiet_run(models.path("whole"), 6), optimizer);

  // The same run stopped after 2 steps (checkpoint at its last step), then resumed in a fresh model to 6
  // steps.
  auto first = models.bert();
  train_sft(*first, data.queries, data.docs, data.groups, options, quiet_run(models.path("split"), 2),
            optimizer);
  auto second = models.bert(/*seed=*/999);  // other initial weights: the checkpoint must replace them
  RunOptions resume = quiet_run(models.path("split"), 6);
  resume.resume = true;
  const auto resumed = train_sft(*second, data.queries, data.docs, data.groups, options, resume, optimizer);
  EXPECT_EQ(resumed.resumed_from_step, 2);
  EXPECT_EQ(resumed.steps, 6);
  EXPECT_DOUBLE_EQ(resumed.final_loss, uninterrupted.final_loss);
  const auto a = snapshot(whole->module());
  const auto b = snapshot(second->module());
  for (const auto& [name, tensor] : a) EXPECT_TRUE(torch::allclose(tensor, b.at(name), 0, 1e-6)) << name;
}

// -----------------------------------------------------------------------------------------------------------
// The stage from files

void write_dataset(const Dataset& data, const fs::path& dir) {
  fs::create_directories(dir);
  write_queries((dir / "queries.tsv").string(), data.queries);
  write_docs((dir / "docs.tsv").string(), data.docs);
  write_qrels((dir / "qrels.txt").string(), data.qrels);
}

TEST(SftStage, WritesTheModelTheSummaryAndValidatesOnTheDevSet) {
  Dataset data;
  // A query without a positive and a judged document without text: both dropped and counted.
  data.queries.add({"q-none", "what is a mat"});
  data.qrels.by_query["q-none"] = {{"d1", 0}, {"d2", 0}};
  data.qrels.by_query["q0"]["ghost"] = 0;
  const Models models;
  const fs::path train_dir = models.tmp.path() / "train";
  write_dataset(data, train_dir);
  const fs::path dev_dir = models.tmp.path() / "dev";
  write_dataset(Dataset(), dev_dir);

  const std::string model_dir = models.path("init");
  models.bert()->save(model_dir);
  auto ranker = Ranker::load(model_dir, kCpu);
  SftOptions options;
  options.queries_path = (train_dir / "queries.tsv").string();
  options.docs_path = (train_dir / "docs.tsv").string();
  options.qrels_path = (train_dir / "qrels.txt").string();
  options.dev_dir = dev_dir.string();
  options.dev_require_relevant = true;
  options.max_length = 40;
  RunOptions run = quiet_run(models.path("out"), 4);
  const auto summary = run_sft(*ranker, model_dir, options, run, constant_adamw(1e-3));

  EXPECT_EQ(summary.at("steps"), 4);
  EXPECT_EQ(summary.at("groups").at("queries_in"), 8);
  EXPECT_EQ(summary.at("groups").at("groups_out"), 7);
  EXPECT_EQ(summary.at("groups").at("no_positive"), 1);
  EXPECT_EQ(summary.at("groups").at("missing_docs"), 1);
  ASSERT_TRUE(summary.contains("validation"));
  for (const char* metric : {"ndcg_cut.10", "pnr", "recip_rank"}) {
    ASSERT_TRUE(summary.at("validation").contains(metric)) << summary.at("validation").dump();
    const double value = summary.at("validation").at(metric).get<double>();
    EXPECT_GE(value, 0.0);
    if (std::string(metric) != "pnr") {
      EXPECT_LE(value, 1.0);  // PNR is a ratio of pair counts, unbounded
    }
  }

  const fs::path out = models.path("out");
  const auto on_disk = nlohmann::json::parse(std::ifstream(out / "summary.json"));
  EXPECT_EQ(on_disk, summary);
  auto saved = Ranker::load((out / "model").string(), kCpu);
  const auto& provenance = saved->manifest().provenance;
  EXPECT_EQ(provenance.at("stage"), "sft");
  EXPECT_EQ(provenance.at("loss").at("name"), "softmax");
  EXPECT_EQ(provenance.at("data").at("qrels"), options.qrels_path);
  EXPECT_EQ(provenance.at("steps"), 4);
  EXPECT_EQ(provenance.at("dev").at("metrics"), summary.at("validation"));
  EXPECT_EQ(saved->manifest().max_length, 40);
}

TEST(SftStage, OptionsAreValidatedNamingTheFlag) {
  SftOptions options;
  options.queries_path = "q";
  options.docs_path = "d";
  options.qrels_path = "r";
  EXPECT_NO_THROW(validate(options));
  auto bad = options;
  bad.train.batching.groups_per_batch = 0;
  EXPECT_THROW(validate(bad), Error);
  bad = options;
  bad.train.loss.name = "nope";
  EXPECT_THROW(validate(bad), Error);
  bad = options;
  bad.lora_rank = -1;
  EXPECT_THROW(validate(bad), Error);
  bad = options;
  bad.dev_run = "run.txt";
  EXPECT_THROW(validate(bad), Error);
  bad = options;
  bad.qrels_path.clear();
  EXPECT_THROW(validate(bad), Error);
}

}  // namespace
}  // namespace disranker
