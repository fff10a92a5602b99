// Rank fine-tuning and the grouped batching it shares with distillation. See sft.h.
#include "train/sft.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <ostream>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "core/random.h"
#include "data/qrels.h"
#include "data/run.h"
#include "model/runtime.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;

// Padding is masked out, so any id of the vocabulary does; the tokenizer's pad when it has one.
TokenId padding_id(const Tokenizer& tokenizer) {
  const auto& special = tokenizer.special();
  if (special.pad >= 0) return special.pad;
  if (special.eos >= 0) return special.eos;
  return 0;
}

// Share of the batch's groups whose valid documents all have one label: a pairwise or listwise loss learns
// nothing from them (the losses return 0 for them; this figure, logged per step, says how often).
double single_label_share(const torch::Tensor& labels, const torch::Tensor& valid) {
  const auto cpu_labels = labels.to(torch::kCPU).contiguous();
  const auto cpu_valid = valid.to(torch::kCPU).contiguous();
  const auto rows = cpu_labels.size(0), cols = cpu_labels.size(1);
  const float* y = cpu_labels.data_ptr<float>();
  const bool* v = cpu_valid.data_ptr<bool>();
  std::int64_t single = 0;
  for (std::int64_t g = 0; g < rows; ++g) {
    std::set<float> seen;
    for (std::int64_t j = 0; j < cols; ++j) {
      if (v[g * cols + j]) seen.insert(y[g * cols + j]);
    }
    if (seen.size() < 2) ++single;
  }
  return rows ? static_cast<double>(single) / static_cast<double>(rows) : 0.0;
}

std::size_t total_documents(const std::vector<QueryGroup>& groups) {
  std::size_t n = 0;
  for (const auto& group : groups) n += group.docs.size();
  return n;
}

}  // namespace

// ---- Grouped batching
// -------------------------------------------------------------------------------------------

std::int64_t group_batches_per_epoch(std::size_t num_groups, std::size_t groups_per_batch) {
  if (groups_per_batch < 1) throw Error("--groups-per-batch must be >= 1");
  return static_cast<std::int64_t>((num_groups + groups_per_batch - 1) / groups_per_batch);
}

MicroBatchPlan plan_group_batch(const std::vector<QueryGroup>& groups, const GroupBatchOptions& options,
                                std::uint64_t seed, std::int64_t epoch, std::int64_t index) {
  const std::int64_t batches = group_batches_per_epoch(groups.size(), options.groups_per_batch);
  if (index < 0 || index >= batches) {
    throw Error("micro-batch " + std::to_string(index) + " out of range: an epoch has " +
                std::to_string(batches));
  }
  const auto order = epoch_order(groups.size(), seed, epoch);
  const std::size_t begin = static_cast<std::size_t>(index) * options.groups_per_batch;
  const std::size_t end = std::min(begin + options.groups_per_batch, groups.size());
  // One generator per micro-batch, seeded from (seed, epoch, index) only; each group draws its own sample
  // seed.
  SplitMix64 rng(batch_seed(seed, epoch, index));
  MicroBatchPlan plan;
  for (std::size_t k = begin; k < end; ++k) {
    plan.groups.push_back(order[k]);
    plan.documents.push_back(sample_group(groups[order[k]], options.sample, rng.next()));
  }
  return plan;
}

GroupScores score_group_batch(Ranker& ranker, const Queries& queries, const Docs& docs,
                              const std::vector<QueryGroup>& groups, const MicroBatchPlan& plan) {
  const auto num_groups = static_cast<std::int64_t>(plan.groups.size());
  std::size_t width = 1;
  for (const auto& chosen : plan.documents) width = std::max(width, chosen.size());
  const auto n = static_cast<std::int64_t>(width);

  std::vector<EncodedPair> pairs;
  std::vector<std::int64_t> slots;  // row-major position in [G, N] of each pair
  std::vector<float> labels(static_cast<std::size_t>(num_groups * n), 0.0f);
  std::vector<float> teacher(labels.size(), 0.0f);
  std::vector<std::uint8_t> valid(labels.size(), 0);
  for (std::int64_t g = 0; g < num_groups; ++g) {
    const QueryGroup& group = groups.at(plan.groups[static_cast<std::size_t>(g)]);
    const Query* query = queries.find(group.qid);
    if (!query) throw Error("query '" + group.qid + "' of a training group has no text in the queries file");
    const auto& chosen = plan.documents[static_cast<std::size_t>(g)];
    for (std::size_t j = 0; j < chosen.size(); ++j) {
      const GroupDoc& doc = group.docs.at(chosen[j]);
      const Doc* text = docs.find(doc.docid);
      if (!text) {
        throw Error("document '" + doc.docid + "' of query '" + group.qid + "' has no text in the docs file");
      }
      pairs.push_back(ranker.encode(query->text, text->title, text->text));
      const std::int64_t slot = g * n + static_cast<std::int64_t>(j);
      slots.push_back(slot);
      labels[static_cast<std::size_t>(slot)] = static_cast<float>(doc.label);
      teacher[static_cast<std::size_t>(slot)] =
          std::isfinite(doc.teacher) ? static_cast<float>(doc.teacher) : 0.0f;
      valid[static_cast<std::size_t>(slot)] = 1;
    }
  }

  const torch::Device device = ranker.device();
  const auto as_tensor = [&](const auto& values, torch::ScalarType type) {
    using Value = typename std::decay_t<decltype(values)>::value_type;
    return torch::from_blob(const_cast<Value*>(values.data()), {static_cast<std::int64_t>(values.size())},
                            type)
        .clone()
        .to(device);
  };
  GroupScores out;
  out.labels = as_tensor(labels, torch::kFloat32).view({num_groups, n});
  out.teacher = as_tensor(teacher, torch::kFloat32).view({num_groups, n});
  out.valid = as_tensor(valid, torch::kUInt8).view({num_groups, n}).to(torch::kBool);
  out.pairs = pairs.size();
  if (pairs.empty()) {
    // Nothing to score (cannot happen with built groups, which are never empty); keep a grad path anyway.
    out.scores = torch::zeros({num_groups, n}, torch::TensorOptions().device(device).requires_grad(true));
    return out;
  }
  const torch::Tensor flat = ranker.forward(make_batch(pairs, padding_id(ranker.tokenizer())));
  // index_copy out of place: the padded slots stay 0 and receive no gradient.
  out.scores = torch::zeros({num_groups * n}, flat.options())
                   .index_copy(0, as_tensor(slots, torch::kInt64), flat)
                   .view({num_groups, n});
  return out;
}

nlohmann::json group_report_json(const GroupReport& report) {
  return {{"queries_in", report.queries_in},
          {"groups_out", report.groups_out},
          {"no_positive", report.no_positive},
          {"no_candidates", report.no_candidates},
          {"missing_query_text", report.missing_query_text},
          {"missing_docs", report.missing_docs},
          {"missing_teacher", report.missing_teacher},
          {"nonfinite_teacher", report.nonfinite_teacher}};
}

void print_group_report(const std::string& stage, const GroupReport& report) {
  for (const auto& line : report.lines()) std::fprintf(stderr, "%s: %s\n", stage.c_str(), line.c_str());
}

nlohmann::json validation_json(Ranker& ranker, const ValidationSet& set, std::size_t batch_size) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, value] : validate(ranker, set, batch_size)) out[name] = value;
  return out;
}

// ---- Rank fine-tuning
// -------------------------------------------------------------------------------------------

std::vector<std::string> apply_rank_lora(Ranker& ranker, LoraConfig config) {
  DecoderImpl* decoder = ranker.decoder();
  if (!decoder) {
    throw Error(
        "--lora-r: LoRA adapts the decoder teacher's projections; this is a BERT model (train it fully)");
  }
  if (std::find(config.modules_to_save.begin(), config.modules_to_save.end(), "score") ==
      config.modules_to_save.end()) {
    config.modules_to_save.push_back("score");
  }
  return apply_lora(*decoder, config);
}

TrainSummary train_sft(Ranker& ranker, const Queries& queries, const Docs& docs,
                       const std::vector<QueryGroup>& groups, SftTrainOptions options, const RunOptions& run,
                       const OptimizerOptions& optimizer, const ValidationSet* dev) {
  if (groups.empty()) throw Error("sft: no training groups (see the report of dropped queries above)");
  options.batching.sample.positive_first = true;
  if (options.loss.name == "bce" && options.loss.max_label == 1.0) {
    int max_label = 1;
    for (const auto& group : groups) max_label = std::max(max_label, group.max_label());
    options.loss.max_label = max_label;
  }
  validate(options.loss);
  if (options.eval_batch_size < 1) throw Error("--eval-batch-size must be >= 1");

  TrainerSpec spec;
  spec.stage = "sft";
  spec.unit = "pairs";
  spec.micro_batches_per_epoch = group_batches_per_epoch(groups.size(), options.batching.groups_per_batch);
  Trainer trainer(ranker.module(), run, optimizer, spec);

  auto micro_step = [&](std::int64_t epoch, std::int64_t index) {
    const MicroBatchPlan plan = plan_group_batch(groups, options.batching, run.seed, epoch, index);
    const GroupScores batch = score_group_batch(ranker, queries, docs, groups, plan);
    MicroBatchResult result;
    result.loss = rank_loss(options.loss, batch.scores, batch.labels, batch.valid);
    result.units = static_cast<double>(batch.pairs);
    result.extra.emplace_back("single_label_groups", single_label_share(batch.labels, batch.valid));
    return result;
  };
  Trainer::EpochEnd on_epoch_end;
  if (dev) {
    on_epoch_end = [&](std::int64_t) { return validation_json(ranker, *dev, options.eval_batch_size); };
  }
  return trainer.run(micro_step, on_epoch_end);
}

void validate(const SftOptions& options) {
  if (options.queries_path.empty()) throw Error("--queries is required");
  if (options.docs_path.empty()) throw Error("--docs is required");
  if (options.qrels_path.empty()) throw Error("--qrels is required");
  if (options.train.batching.groups_per_batch < 1) throw Error("--groups-per-batch must be >= 1");
  if (options.train.eval_batch_size < 1) throw Error("--eval-batch-size must be >= 1");
  if (options.lora_rank < 0) throw Error("--lora-r must be >= 0 (0: no LoRA)");
  if (options.lora_rank > 0 && !(options.lora.alpha > 0)) throw Error("--lora-alpha must be > 0");
  if (options.lora_rank > 0 && options.lora.target_modules.empty()) throw Error("--lora-targets is empty");
  if (options.max_length < 0) throw Error("--max-length must be >= 0 (0: the model's)");
  if (!options.dev_run.empty() && options.dev_dir.empty()) throw Error("--dev-run needs --dev");
  RankLossOptions loss = options.train.loss;
  if (loss.name == "bce") loss.max_label = std::max(loss.max_label, 1.0);
  validate(loss);
}

nlohmann::json run_sft(Ranker& ranker, const std::string& model_dir, const SftOptions& options,
                       const RunOptions& run, const OptimizerOptions& optimizer) {
  validate(options);
  if (options.max_length > 0) ranker.manifest().max_length = options.max_length;

  const Queries queries = read_queries(options.queries_path);
  const Docs docs = read_docs(options.docs_path, /*allow_empty=*/true);
  if (!docs.empty_ids().empty()) {
    std::fprintf(stderr, "sft: %zu documents have neither title nor text (trained on as empty)\n",
                 docs.empty_ids().size());
  }
  const Qrels qrels = read_qrels(options.qrels_path);
  Run candidates;
  if (!options.run_path.empty()) candidates = read_run(options.run_path);
  GroupReport report;
  const std::vector<QueryGroup> groups = build_label_groups(
      queries, docs, qrels, options.run_path.empty() ? nullptr : &candidates, options.groups, &report);
  print_group_report("sft", report);
  if (groups.empty()) {
    throw Error(options.qrels_path, 0, "",
                "no training groups: every query was dropped (see the counts above)");
  }

  std::optional<ValidationSet> dev;
  if (!options.dev_dir.empty())
    dev = load_validation_set(options.dev_dir, options.dev_run, options.dev_require_relevant);

  std::vector<std::string> adapted;
  if (options.lora_rank > 0) {
    LoraConfig lora = options.lora;
    lora.r = options.lora_rank;
    adapted = apply_rank_lora(ranker, lora);
  }
  const std::int64_t trainable = count_trainable_parameters(ranker.module());
  const std::int64_t parameters = count_parameters(ranker.module());
  std::fprintf(
      stderr,
      "sft: %zu groups, %zu candidates; loss %s, %zu groups of %zu documents per micro-batch, %lld "
      "micro-batches per epoch; %lld of %lld parameters trained%s; %s\n",
      groups.size(), total_documents(groups), options.train.loss.name.c_str(),
      options.train.batching.groups_per_batch, options.train.batching.sample.group_size,
      static_cast<long long>(group_batches_per_epoch(groups.size(), options.train.batching.groups_per_batch)),
      static_cast<long long>(trainable), static_cast<long long>(parameters),
      adapted.empty() ? ""
                      : (" (LoRA r=" + std::to_string(options.lora_rank) + " on " +
                         std::to_string(adapted.size()) + " projections + score head)")
                            .c_str(),
      runtime_summary(ranker.device()).c_str());

  const TrainSummary trained =
      train_sft(ranker, queries, docs, groups, options.train, run, optimizer, dev ? &*dev : nullptr);

  nlohmann::json dev_metrics;
  if (dev) {
    // The trainer validates at each epoch's end and at the run's end; a run resumed after its last step has
    // none of its own, so validate here then.
    dev_metrics = trained.epoch_metrics.empty() ? validation_json(ranker, *dev, options.train.eval_batch_size)
                                                : trained.epoch_metrics.back();
  }
  const nlohmann::json data = {{"queries", options.queries_path}, {"docs", options.docs_path},
                               {"qrels", options.qrels_path},     {"run", options.run_path},
                               {"groups", groups.size()},         {"candidates", total_documents(groups)}};
  nlohmann::json loss = {{"name", options.train.loss.name},
                         {"group_size", options.train.batching.sample.group_size},
                         {"groups_per_batch", options.train.batching.groups_per_batch}};
  if (options.train.loss.name == "hinge") loss["margin"] = options.train.loss.margin;

  nlohmann::json summary = trained.to_json();
  summary["stage"] = "sft";
  summary["pairs_per_second"] = trained.units_per_second;
  summary["loss"] = loss;
  summary["data"] = data;
  summary["groups"] = group_report_json(report);
  summary["group_report"] = report.lines();
  summary["trainable_parameters"] = trainable;
  summary["parameters"] = parameters;
  if (options.lora_rank > 0) {
    summary["lora"] = {{"r", options.lora_rank},
                       {"alpha", options.lora.alpha},
                       {"targets", options.lora.target_modules},
                       {"adapted", adapted.size()}};
  }
  if (dev) {
    summary["dev"] = {{"set", dev->name}, {"dir", options.dev_dir}, {"run", options.dev_run}};
    summary["validation"] = dev_metrics;
  }

  nlohmann::json provenance = {{"stage", "sft"},         {"base_model", model_dir},
                               {"loss", loss},           {"data", data},
                               {"steps", trained.steps}, {"final_loss", trained.final_loss}};
  if (summary.contains("lora")) provenance["lora"] = summary["lora"];
  if (dev) provenance["dev"] = {{"set", dev->name}, {"metrics", dev_metrics}};
  save_trained_model(ranker, run.out_dir, provenance, summary);
  return summary;
}

}  // namespace disranker
