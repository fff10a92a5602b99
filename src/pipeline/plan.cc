#include "pipeline/plan.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "pipeline/datasets.h"

namespace disranker::pipeline {
namespace fs = std::filesystem;

namespace {

const std::set<std::string> kStageSections = {"teacher-cpt", "teacher-sft",     "student-mlm",
                                              "student-sft", "student-distill", "score"};

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

std::string join(const fs::path& a, const std::string& b) {
  return (a / b).string();
}

std::string format_alpha(double alpha) {
  std::ostringstream out;
  out << alpha;
  return out.str();
}

// Appends the settings every training and scoring command shares, then the stage's own flags from the config.
void add_common(std::vector<std::string>& args, const PipelineSettings& settings, const std::string& section,
                bool training) {
  args.insert(args.end(), {"--device", settings.device, "--threads", std::to_string(settings.threads)});
  if (training) args.insert(args.end(), {"--seed", std::to_string(settings.seed)});
  const auto it = settings.stage_flags.find(section);
  if (it != settings.stage_flags.end()) args.insert(args.end(), it->second.begin(), it->second.end());
}

// Copies a model directory and switches its score pooling (the last-token vs mean ablation): the score head
// is untrained until SFT, so the copy is the same starting point with only the pooling changed.
void copy_with_pooling(const std::string& from, const std::string& to, const std::string& pooling) {
  const fs::path tmp = to + ".tmp";
  fs::remove_all(tmp);
  fs::create_directories(tmp.parent_path());
  fs::copy(from, tmp, fs::copy_options::recursive);
  const std::string manifest_path = (tmp / "disranker.json").string();
  std::ifstream in(manifest_path);
  if (!in) throw Error(manifest_path, 0, "", "cannot read the model's disranker.json");
  nlohmann::json manifest = nlohmann::json::parse(in);
  manifest["pooling"] = pooling;
  write_file_atomically(manifest_path, [&](std::ostream& out) { out << manifest.dump(2) << "\n"; });
  fs::remove_all(to);
  fs::rename(tmp, to);
}

void copy_directory_atomically(const std::string& from, const std::string& to) {
  const fs::path tmp = to + ".tmp";
  fs::remove_all(tmp);
  fs::copy(from, tmp, fs::copy_options::recursive);
  fs::remove_all(to);
  fs::rename(tmp, to);
}

void concatenate_files(const std::vector<std::string>& inputs, const std::string& output) {
  write_file_atomically(output, [&](std::ostream& out) {
    for (const auto& input : inputs) {
      std::ifstream in(input, std::ios::binary);
      if (!in) throw Error(input, 0, "", "cannot read");
      out << in.rdbuf();
    }
  });
}

}  // namespace

std::map<std::string, std::vector<std::string>> read_stage_flags(const std::string& config_path) {
  std::map<std::string, std::vector<std::string>> flags;
  if (config_path.empty()) return flags;
  std::ifstream in(config_path);
  if (!in) throw Error(config_path, 0, "", "cannot read the config file");
  for (const auto& item : CLI::ConfigTOML().from_config(in)) {
    if (item.name == "++" || item.name == "--" || item.parents.empty()) continue;
    const std::string& section = item.parents.front();
    if (section == "pipeline") {
      // [pipeline] is CLI11's, [pipeline.online] read_online_settings'; a misspelt subsection would
      // otherwise be dropped without a word.
      if (item.parents.size() == 1 || (item.parents.size() == 2 && item.parents[1] == "online")) continue;
      std::string name = section;
      for (std::size_t i = 1; i < item.parents.size(); ++i) name += "." + item.parents[i];
      throw Error(config_path, 0, "[" + name + "]",
                  "not a pipeline section; the only subsection is [pipeline.online]");
    }
    if (!kStageSections.count(section)) {
      throw Error(config_path, 0, "[" + section + "]",
                  "not a pipeline section; use [pipeline], [teacher-cpt], [teacher-sft], [student-mlm], "
                  "[student-sft], [student-distill] or [score]");
    }
    auto& args = flags[section];
    if (item.inputs.size() == 1 && item.inputs[0] == "true") {
      args.push_back("--" + item.name);  // a flag such as no-pack = true
    } else if (item.inputs.size() == 1 && item.inputs[0] == "false") {
      continue;
    } else {
      for (const auto& value : item.inputs) args.insert(args.end(), {"--" + item.name, value});
    }
  }
  return flags;
}

OnlineSettings read_online_settings(const std::string& config_path) {
  OnlineSettings settings;
  if (config_path.empty()) return settings;
  std::ifstream in(config_path);
  if (!in) throw Error(config_path, 0, "", "cannot read the config file");
  for (const auto& item : CLI::ConfigTOML().from_config(in)) {
    if (item.name == "++" || item.name == "--") continue;
    if (item.parents != std::vector<std::string>{"pipeline", "online"}) continue;
    const std::string key = "[pipeline.online] " + item.name;
    auto fail = [&](const std::string& message) { return Error(config_path, 0, key, message); };
    if (item.inputs.size() != 1)
      throw fail("expected one value, found " + std::to_string(item.inputs.size()));
    const std::string& value = item.inputs[0];
    // A whole number in [low, high]; TOML has no unsigned type, so "-1" must be caught here, not wrap.
    auto whole = [&](std::uint64_t low, std::uint64_t high) {
      std::uint64_t number = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size() || number < low ||
          number > high) {
        throw fail("expected a whole number in [" + std::to_string(low) + ", " + std::to_string(high) +
                   "], got '" + value + "'");
      }
      return number;
    };
    if (item.name == "enabled") {
      if (value != "true" && value != "false") throw fail("expected true or false, got '" + value + "'");
      settings.enabled = value == "true";
    } else if (item.name == "click-model") {
      if (value != "pbm" && value != "cascade" && value != "dbn")
        throw fail("unknown click model '" + value + "'; use pbm, cascade or dbn");
      settings.click_model = value;
    } else if (item.name == "users") {
      settings.users = whole(2, 100000000);  // at least one user per A/B bucket
    } else if (item.name == "days") {
      settings.days = whole(1, 10000);
    } else if (item.name == "depth") {
      settings.depth = whole(1, 1000);
    } else if (item.name == "seed") {
      settings.seed = whole(0, std::numeric_limits<std::uint64_t>::max());
    } else if (item.name == "bootstrap") {
      settings.bootstrap = whole(0, 1000000);
    } else if (item.name == "reference") {
      if (value.empty()) throw fail("is empty; name the system every other one is compared to (e.g. BM25)");
      settings.reference = value;
    } else {
      throw fail(
          "unknown key; [pipeline.online] takes enabled, click-model, users, days, depth, seed, "
          "bootstrap and reference");
    }
  }
  return settings;
}

std::string system_slug(const std::string& name) {
  std::string slug;
  for (char c : name) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '.';
    if (keep) {
      slug += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!slug.empty() && slug.back() != '-') {
      slug += '-';
    }
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return slug;
}

std::string eval_candidates_path(const PipelineSettings& settings, const std::string& set) {
  if (contains(settings.ood_sets, set)) return join(fs::path(settings.out_dir) / "runs", set + ".bm25.txt");
  return join(fs::path(settings.out_dir) / "data" / "eval" / set, "candidates.txt");
}

std::string system_run_path(const PipelineSettings& settings, const std::string& set, const System& system) {
  if (system.model_dir.empty()) {
    // BM25: the set's own BM25 run (TREC DL), its BM25 reranking (judged candidates) or BM25 over the
    // collection.
    const auto files = find_dataset(settings.data_dir, set, true);
    if (!files.run.empty() && !contains(settings.ood_sets, set)) return eval_candidates_path(settings, set);
    return join(fs::path(settings.out_dir) / "runs", set + ".bm25.txt");
  }
  return join(fs::path(settings.out_dir) / "runs", set + "." + system_slug(system.name) + ".txt");
}

Plan build_plan(const PipelineSettings& s) {
  Plan plan;
  const fs::path out(s.out_dir);
  const fs::path data = out / "data";
  const fs::path train_dir = data / "train";
  const fs::path pool_dir = data / "pool";
  const std::string train_queries = join(train_dir, "queries.tsv"), train_docs = join(train_dir, "docs.tsv"),
                    train_qrels = join(train_dir, "qrels.txt"),
                    train_candidates = join(train_dir, "candidates.txt");
  const std::string pool_queries = join(pool_dir, "queries.tsv"), pool_docs = join(pool_dir, "docs.tsv"),
                    pool_candidates = join(pool_dir, "candidates.txt");
  for (const char* dir :
       {"vocab/teacher", "vocab/student", "clicks", "models", "train", "scores", "runs", "index"}) {
    fs::create_directories(out / dir);
  }
  auto& steps = plan.steps;

  // --- Data: every set is located up front, so a typo fails before any training.
  std::vector<DatasetFiles> train_sets, pool_sets;
  for (const auto& name : s.train_sets) train_sets.push_back(find_dataset(s.data_dir, name, true));
  for (const auto& name : s.pool_sets) pool_sets.push_back(find_dataset(s.data_dir, name, false));
  std::vector<std::string> eval_sets = s.dev_sets;
  eval_sets.insert(eval_sets.end(), s.ood_sets.begin(), s.ood_sets.end());
  std::map<std::string, DatasetFiles> eval_files;
  for (const auto& name : eval_sets) eval_files[name] = find_dataset(s.data_dir, name, true);
  for (const auto& name : s.dev_sets) {
    if (contains(s.train_sets, name) || contains(s.pool_sets, name)) {
      throw Error("[pipeline] dev-sets: '" + name +
                  "' is also a training or pool set: its labels would leak");
    }
  }
  auto set_inputs = [](const std::vector<DatasetFiles>& sets) {
    std::vector<std::string> inputs;
    for (const auto& set : sets) inputs.push_back(fs::path(set.queries).parent_path().string());
    return inputs;
  };
  const std::size_t k = s.candidates;
  steps.push_back(action_step(
      "prepare-train",
      "merge the labelled training sets (" + std::to_string(s.train_sets.size()) + ") with their top-" +
          std::to_string(k) + " candidates",
      [=] { merge_datasets(train_sets, k, true, train_dir.string()); }, set_inputs(train_sets)));
  std::vector<DatasetFiles> pool_all = train_sets;
  pool_all.insert(pool_all.end(), pool_sets.begin(), pool_sets.end());
  steps.push_back(action_step(
      "prepare-pool", "distillation pool: the training candidates plus the unlabelled pool sets",
      [=] { merge_datasets(pool_all, k, true, pool_dir.string()); }, set_inputs(pool_all)));
  for (const auto& name : s.ood_sets) {
    const auto files = eval_files[name];
    const std::string dir = (data / "eval" / name).string();
    steps.push_back(action_step(
        "prepare-" + name, "the " + name + " collection", [=] { prepare_collection(files, dir); },
        set_inputs({files})));
  }
  for (const auto& name : s.dev_sets) {
    const auto files = eval_files[name];
    const std::string dir = (data / "eval" / name).string();
    steps.push_back(action_step(
        "prepare-" + name, "candidates of " + name, [=] { merge_datasets({files}, k, false, dir); },
        set_inputs({files})));
  }

  // --- BM25: the first-stage reference of every evaluation set (and the candidates of the collections).
  for (const auto& name : eval_sets) {
    const auto& files = eval_files[name];
    const bool ood = contains(s.ood_sets, name);
    if (!files.run.empty() && !ood) continue;  // the set's own BM25 run is the reference
    const std::string docs = join(data / "eval" / name, "docs.tsv");
    const std::string index = (out / "index" / name).string();
    steps.push_back(command_step("index-" + name, "BM25 index of " + name,
                                 {"index", "--docs", docs, "--out", index, "--force"}, {docs}));
    std::vector<std::string> args = {"retrieve",
                                     "--index",
                                     index,
                                     "--queries",
                                     files.queries,
                                     "--out",
                                     join(out / "runs", name + ".bm25.txt")};
    if (ood) {
      args.insert(args.end(), {"--k", std::to_string(s.ood_candidates)});
    } else {
      args.insert(args.end(), {"--candidates", eval_candidates_path(s, name)});
    }
    steps.push_back(
        command_step("bm25-" + name,
                     ood ? "BM25 top " + std::to_string(s.ood_candidates) + " of the " + name + " collection"
                         : "BM25 reranking of the " + name + " candidates",
                     args, {index, files.queries, eval_candidates_path(s, name)}));
    if (ood) steps.back().inputs.pop_back();
  }

  // --- Vocabularies.
  const std::string teacher_tokenizer = join(out / "vocab" / "teacher", "tokenizer.json");
  steps.push_back(command_step(
      "teacher-vocab", "byte-level BPE of the teacher (" + std::to_string(s.teacher_vocab_size) + ")",
      {"train-tokenizer", "--kind", "bpe", "--vocab-size", std::to_string(s.teacher_vocab_size), "--docs",
       train_docs, "--queries", train_queries, "--out", teacher_tokenizer},
      {train_docs, train_queries}));
  std::string student_vocab = s.student_vocab;
  if (student_vocab.empty()) {
    student_vocab = join(out / "vocab" / "student", "vocab.txt");
    steps.push_back(command_step("student-vocab",
                                 "WordPiece of the student (" + std::to_string(s.student_vocab_size) + ")",
                                 {"train-tokenizer", "--kind", "wordpiece", "--lowercase", "--vocab-size",
                                  std::to_string(s.student_vocab_size), "--docs", pool_docs, "--queries",
                                  pool_queries, "--out", student_vocab},
                                 {pool_docs, pool_queries}));
  }

  // --- CPT pairs: WikiQA's question → clicked page, and clicks simulated over the other training sets'
  // candidates (training queries only: a simulated click on an evaluated query would leak its label).
  std::vector<std::string> pair_files;
  std::vector<DatasetFiles> qrels_sets, click_sets;
  for (const auto& set : train_sets)
    (contains(s.cpt_qrels_sets, set.name) ? qrels_sets : click_sets).push_back(set);
  if (!qrels_sets.empty()) {
    const fs::path dir = data / "cpt-qrels";
    steps.push_back(action_step(
        "prepare-cpt-qrels", "the click-derived sets (question → clicked page)",
        [=] { merge_datasets(qrels_sets, 0, true, dir.string()); }, set_inputs(qrels_sets)));
    pair_files.push_back(join(out / "clicks", "pairs-qrels.tsv"));
    steps.push_back(command_step("cpt-pairs-qrels", "CPT pairs: question → clicked page title + summary",
                                 {"clicks", "cpt-pairs", "--from-qrels", "--queries",
                                  join(dir, "queries.tsv"), "--docs", join(dir, "docs.tsv"), "--qrels",
                                  join(dir, "qrels.txt"), "--target", "page", "--out", pair_files.back()},
                                 {dir.string()}));
  }
  if (!click_sets.empty() && s.click_sessions > 0) {
    const fs::path dir = data / "clicks";
    const std::string log = join(out / "clicks", "clicks.jsonl");
    steps.push_back(action_step(
        "prepare-clicks", "the training sets whose clicks are simulated",
        [=] { merge_datasets(click_sets, k, true, dir.string()); }, set_inputs(click_sets)));
    steps.push_back(command_step(
        "clicks-simulate",
        std::to_string(s.click_sessions) + " simulated sessions (PBM) over the training candidates",
        {"clicks", "simulate", "--qrels", join(dir, "qrels.txt"), "--queries", join(dir, "queries.tsv"),
         "--docs", join(dir, "docs.tsv"), "--run", join(dir, "candidates.txt"), "--model", "pbm",
         "--sessions", std::to_string(s.click_sessions), "--seed", std::to_string(s.seed), "--out", log},
        {dir.string()}));
    pair_files.push_back(join(out / "clicks", "pairs-clicks.tsv"));
    steps.push_back(command_step("cpt-pairs-clicks", "CPT pairs from the satisfied clicks",
                                 {"clicks", "cpt-pairs", "--clicks", log, "--out", pair_files.back()},
                                 {log}));
  }
  if (pair_files.empty()) throw Error("[pipeline]: no CPT pairs: set cpt-qrels-sets or click-sessions");
  const std::string cpt_pairs = join(out / "clicks", "cpt-pairs.tsv");
  steps.push_back(action_step(
      "cpt-pairs", "all CPT pairs in one file", [=] { concatenate_files(pair_files, cpt_pairs); },
      pair_files));

  // --- Teacher: init → CPT → rank SFT (+ the ablations: no CPT, mean pooling).
  const std::string teacher_init = (out / "models" / "teacher-init").string();
  steps.push_back(command_step("teacher-init", "decoder teacher from " + s.teacher_config,
                               {"init", "--config", s.teacher_config, "--tokenizer", teacher_tokenizer,
                                "--role", "teacher", "--max-length", std::to_string(s.teacher_max_length),
                                "--seed", std::to_string(s.seed), "--out", teacher_init},
                               {s.teacher_config, teacher_tokenizer}));
  const std::string cpt_dir = (out / "train" / "teacher-cpt").string();
  {
    std::vector<std::string> args = {"cpt",    "--model",  teacher_init, "--pairs", cpt_pairs,
                                     "--text", train_docs, "--out",      cpt_dir};
    add_common(args, s, "teacher-cpt", true);
    steps.push_back(training_step("teacher-cpt", "continued pre-training: query → clicked title + summary",
                                  args, {teacher_init, cpt_pairs, train_docs}, cpt_dir));
  }
  const std::string first_dev = s.dev_sets.empty() ? "" : s.dev_sets.front();
  auto rank_args = [&](const std::string& command, const std::string& model, const std::string& dir,
                       const std::string& section) {
    std::vector<std::string> args = {command, "--model", model, "--out", dir};
    if (command == "sft") {
      args.insert(args.end(), {"--queries", train_queries, "--docs", train_docs, "--qrels", train_qrels,
                               "--run", train_candidates});
    }
    if (!first_dev.empty()) {
      args.insert(args.end(), {"--dev", (data / "eval" / first_dev).string(), "--dev-run",
                               eval_candidates_path(s, first_dev)});
      if (contains(s.require_relevant, first_dev)) args.push_back("--dev-require-relevant");
    }
    add_common(args, s, section, true);
    return args;
  };
  std::vector<std::string> train_inputs = {train_dir.string()};
  if (!first_dev.empty()) train_inputs.push_back((data / "eval" / first_dev).string());
  auto add_rank_step = [&](const std::string& name, const std::string& description,
                           const std::string& command, const std::string& model, const std::string& section,
                           std::vector<std::string> extra_args = {},
                           std::vector<std::string> extra_inputs = {}) {
    const std::string dir = (out / "train" / name).string();
    auto args = rank_args(command, model, dir, section);
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    auto inputs = train_inputs;
    inputs.push_back(model);
    inputs.insert(inputs.end(), extra_inputs.begin(), extra_inputs.end());
    steps.push_back(training_step(name, description, args, inputs, dir));
    return dir + "/model";
  };
  const std::string teacher = add_rank_step("teacher-sft", "teacher rank SFT (score on the final </s>)",
                                            "sft", cpt_dir + "/model", "teacher-sft");
  plan.systems.push_back({"BM25", "", true});
  plan.systems.push_back({"teacher", teacher, true});
  if (s.ablate_cpt) {
    plan.systems.push_back(
        {"teacher without CPT", add_rank_step("teacher-nocpt-sft", "ablation: teacher rank SFT without CPT",
                                              "sft", teacher_init, "teacher-sft")});
  }
  if (s.ablate_pooling) {
    const std::string mean_init = (out / "models" / "teacher-mean-init").string();
    const std::string cpt_model = cpt_dir + "/model";
    steps.push_back(action_step("teacher-mean-init",
                                "ablation: the CPT teacher with mean pooling instead of the last token",
                                [=] { copy_with_pooling(cpt_model, mean_init, "mean"); }, {cpt_model}));
    plan.systems.push_back({"teacher, mean pooling",
                            add_rank_step("teacher-mean-sft", "ablation: teacher rank SFT with mean pooling",
                                          "sft", mean_init, "teacher-sft")});
  }

  // --- Teacher scores of the distillation pool.
  const std::string teacher_pool_run = join(out / "scores", "pool.teacher.txt");
  {
    std::vector<std::string> args = {"score",          "--model", teacher,  "--queries",     pool_queries,
                                     "--docs",         pool_docs, "--run",  pool_candidates, "--out",
                                     teacher_pool_run, "--tag",   "teacher"};
    add_common(args, s, "score", false);
    steps.push_back(scoring_step("teacher-score-pool", "teacher scores of the distillation pool", args,
                                 {teacher, pool_dir.string()}));
  }

  // --- Student: init → MLM → labels-only baseline and distillation for each alpha.
  const std::string student_init = (out / "models" / "student-init").string();
  steps.push_back(command_step("student-init", "BERT student from " + s.student_config,
                               {"init", "--config", s.student_config, "--tokenizer", student_vocab, "--role",
                                "student", "--mlm-head", "--max-length", std::to_string(s.student_max_length),
                                "--seed", std::to_string(s.seed), "--out", student_init},
                               {s.student_config, student_vocab}));
  const std::string mlm_dir = (out / "train" / "student-mlm").string();
  {
    std::vector<std::string> args = {"mlm",    "--model",    student_init, "--text", pool_docs,
                                     "--text", pool_queries, "--out",      mlm_dir};
    add_common(args, s, "student-mlm", true);
    steps.push_back(training_step("student-mlm", "masked-LM pre-training of the student from scratch", args,
                                  {student_init, pool_dir.string()}, mlm_dir));
  }
  const std::string student_start = mlm_dir + "/model";
  plan.systems.push_back(
      {"student (labels only)",
       add_rank_step("student-labels", "student trained on the labels alone (the baseline)", "sft",
                     student_start, "student-sft"),
       true});
  std::vector<double> alphas = s.alphas;
  if (std::find(alphas.begin(), alphas.end(), s.alpha) == alphas.end()) alphas.push_back(s.alpha);
  for (double alpha : alphas) {
    const std::string a = format_alpha(alpha);
    const bool main = alpha == s.alpha;
    std::vector<std::string> extra = {"--teacher-run", teacher_pool_run, "--queries", pool_queries,
                                      "--docs",        pool_docs,        "--alpha",   a};
    const std::string model = add_rank_step(
        "student-distill-a" + a, "student distilled with the hybrid loss, alpha " + a, "distill",
        student_start, "student-distill", extra, {teacher_pool_run, pool_dir.string()});
    plan.systems.push_back(
        {main ? "student (distilled)" : "student (distilled, alpha " + a + ")", model, main});
    if (main) plan.student_dir = model;
  }

  // --- Scores of every system on every evaluation set.
  for (const auto& set : eval_sets) {
    const bool ood = contains(s.ood_sets, set);
    const std::string queries = join(data / "eval" / set, "queries.tsv");
    const std::string docs = join(data / "eval" / set, "docs.tsv");
    for (const auto& system : plan.systems) {
      if (system.model_dir.empty() || (ood && !system.on_ood)) continue;
      std::vector<std::string> args = {"score",
                                       "--model",
                                       system.model_dir,
                                       "--queries",
                                       queries,
                                       "--docs",
                                       docs,
                                       "--run",
                                       eval_candidates_path(s, set),
                                       "--out",
                                       system_run_path(s, set, system),
                                       "--tag",
                                       system_slug(system.name)};
      add_common(args, s, "score", false);
      steps.push_back(scoring_step("score-" + set + "-" + system_slug(system.name),
                                   system.name + " on " + set, args,
                                   {system.model_dir, queries, docs, eval_candidates_path(s, set)}));
    }
  }

  // --- The deployable student.
  const std::string deploy = (out / "student").string();
  const std::string chosen = plan.student_dir;
  steps.push_back(action_step("export-student", "the distilled student as a deployable model directory",
                              [=] { copy_directory_atomically(chosen, deploy); }, {chosen}));
  plan.student_dir = deploy;

  // Checked now, not when the report is written after hours of training.
  if (s.online.enabled && std::none_of(plan.systems.begin(), plan.systems.end(), [&](const System& system) {
        return system.name == s.online.reference;
      })) {
    std::string names;
    for (const auto& system : plan.systems) names += (names.empty() ? "" : ", ") + system.name;
    throw Error("[pipeline.online] reference: '" + s.online.reference +
                "' is not a system of this pipeline (" + names + ")");
  }
  return plan;
}

std::vector<System> online_systems(const PipelineSettings& settings, const Plan& plan) {
  std::vector<System> systems;
  for (const auto& system : plan.systems) {
    const bool simulated = system.name.rfind("student", 0) == 0 || system.name == "teacher";
    if (simulated && system.name != settings.online.reference) systems.push_back(system);
  }
  return systems;
}

}  // namespace disranker::pipeline
