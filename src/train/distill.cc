// Distillation of the teacher's scores into the student. See distill.h.
#include "train/distill.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <ostream>

#include "core/error.h"
#include "core/files.h"
#include "data/qrels.h"
#include "data/run.h"
#include "model/runtime.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;

std::size_t total_documents(const std::vector<QueryGroup>& groups) {
  std::size_t n = 0;
  for (const auto& group : groups) n += group.docs.size();
  return n;
}

// Mean and population standard deviation, summed in a numerically careful order (Welford).
struct Moments {
  std::size_t n = 0;
  double mean = 0.0, m2 = 0.0;
  void add(double x) {
    ++n;
    const double delta = x - mean;
    mean += delta / static_cast<double>(n);
    m2 += delta * (x - mean);
  }
  double stddev() const { return n ? std::sqrt(m2 / static_cast<double>(n)) : 0.0; }
};

// A spread this small relative to the scores' magnitude is rounding noise, not a ranking.
bool degenerate(const Moments& moments) {
  const double sd = moments.stddev();
  return moments.n < 2 || !(sd > 1e-12 * std::max(1.0, std::abs(moments.mean)));
}

}  // namespace

TeacherNorm parse_teacher_norm(const std::string& name) {
  if (name == "none") return TeacherNorm::kNone;
  if (name == "query") return TeacherNorm::kQuery;
  if (name == "global") return TeacherNorm::kGlobal;
  throw Error("--teacher-norm: unknown normalisation '" + name + "' (expected none, query or global)");
}

std::string_view to_string(TeacherNorm norm) {
  switch (norm) {
    case TeacherNorm::kNone:
      return "none";
    case TeacherNorm::kQuery:
      return "query";
    case TeacherNorm::kGlobal:
      return "global";
  }
  return "none";
}

nlohmann::json TeacherNormReport::to_json() const {
  nlohmann::json out = {{"norm", std::string(to_string(norm))}};
  if (norm == TeacherNorm::kQuery) out["degenerate_queries"] = degenerate_queries;
  if (norm == TeacherNorm::kGlobal) {
    out["mean"] = mean;
    out["stddev"] = stddev;
  }
  return out;
}

TeacherNormReport normalize_teacher_scores(std::vector<QueryGroup>& groups, TeacherNorm norm) {
  TeacherNormReport report;
  report.norm = norm;
  for (const auto& group : groups) {
    for (const auto& doc : group.docs) {
      if (!std::isfinite(doc.teacher)) {
        throw Error("teacher normalisation: query '" + group.qid + "' document '" + doc.docid +
                    "' has no finite teacher score");
      }
    }
  }
  if (norm == TeacherNorm::kQuery) {
    for (auto& group : groups) {
      Moments moments;
      for (const auto& doc : group.docs) moments.add(doc.teacher);
      if (degenerate(moments)) {
        ++report.degenerate_queries;
        for (auto& doc : group.docs) doc.teacher = 0.0;
        continue;
      }
      const double sd = moments.stddev();
      for (auto& doc : group.docs) doc.teacher = (doc.teacher - moments.mean) / sd;
    }
  } else if (norm == TeacherNorm::kGlobal) {
    Moments moments;
    for (const auto& group : groups) {
      for (const auto& doc : group.docs) moments.add(doc.teacher);
    }
    if (degenerate(moments)) {
      throw Error("--teacher-norm global: the teacher gave " + std::to_string(moments.n) +
                  " documents (nearly) the same score: there is nothing to distil");
    }
    report.mean = moments.mean;
    report.stddev = moments.stddev();
    for (auto& group : groups) {
      for (auto& doc : group.docs) doc.teacher = (doc.teacher - report.mean) / report.stddev;
    }
  }
  return report;
}

TrainSummary train_distill(Ranker& student, const Queries& queries, const Docs& docs,
                           const std::vector<QueryGroup>& groups, DistillTrainOptions options,
                           const RunOptions& run, const OptimizerOptions& optimizer,
                           const ValidationSet* dev) {
  if (groups.empty()) throw Error("distill: no training groups (see the report of dropped queries above)");
  validate(options.loss);
  if (options.eval_batch_size < 1) throw Error("--eval-batch-size must be >= 1");
  options.batching.sample.positive_first = false;
  const bool labelled_pairs = options.loss.pairs == PairSelection::kPositiveNegative;
  if (labelled_pairs) {
    bool any_judged = false;
    for (const auto& group : groups) {
      for (const auto& doc : group.docs) any_judged = any_judged || doc.judged;
    }
    if (!any_judged)
      throw Error("--pairs pos-neg needs labels, and no training document is judged (--qrels?)");
  }

  TrainerSpec spec;
  spec.stage = "distill";
  spec.unit = "pairs";
  spec.micro_batches_per_epoch = group_batches_per_epoch(groups.size(), options.batching.groups_per_batch);
  Trainer trainer(student.module(), run, optimizer, spec);

  auto micro_step = [&](std::int64_t epoch, std::int64_t index) {
    const MicroBatchPlan plan = plan_group_batch(groups, options.batching, run.seed, epoch, index);
    const GroupScores batch = score_group_batch(student, queries, docs, groups, plan);
    MicroBatchResult result;
    result.loss = distill_loss(options.loss, batch.scores, batch.teacher, batch.valid,
                               labelled_pairs ? batch.labels : torch::Tensor());
    result.units = static_cast<double>(batch.pairs);
    if (options.loss.name == "hybrid") {
      // The two parts of the hybrid loss, logged apart so that their balance (α) can be judged.
      torch::NoGradGuard no_grad;
      const auto scores = batch.scores.detach();
      result.extra.emplace_back("point_mse",
                                point_mse_loss(scores, batch.teacher, batch.valid).item<double>());
      result.extra.emplace_back("margin_mse",
                                margin_mse_loss(scores, batch.teacher, batch.valid, options.loss.pairs,
                                                labelled_pairs ? batch.labels : torch::Tensor())
                                    .item<double>());
    }
    return result;
  };
  Trainer::EpochEnd on_epoch_end;
  if (dev) {
    on_epoch_end = [&](std::int64_t) { return validation_json(student, *dev, options.eval_batch_size); };
  }
  return trainer.run(micro_step, on_epoch_end);
}

void validate(const DistillOptions& options) {
  if (options.teacher_run_path.empty()) throw Error("--teacher-run is required");
  if (options.queries_path.empty()) throw Error("--queries is required");
  if (options.docs_path.empty()) throw Error("--docs is required");
  validate(options.train.loss);
  if (options.train.loss.pairs == PairSelection::kPositiveNegative && options.qrels_path.empty()) {
    throw Error("--pairs pos-neg needs --qrels (the labels that say which document is the positive)");
  }
  if (options.groups.require_positive && options.qrels_path.empty()) {
    throw Error("--require-positive needs --qrels");
  }
  if (options.train.batching.groups_per_batch < 1) throw Error("--groups-per-batch must be >= 1");
  if (options.train.eval_batch_size < 1) throw Error("--eval-batch-size must be >= 1");
  if (options.max_length < 0) throw Error("--max-length must be >= 0 (0: the model's)");
  if (!options.dev_run.empty() && options.dev_dir.empty()) throw Error("--dev-run needs --dev");
}

nlohmann::json run_distill(Ranker& student, const std::string& model_dir, const DistillOptions& options,
                           const RunOptions& run, const OptimizerOptions& optimizer) {
  validate(options);
  if (options.max_length > 0) student.manifest().max_length = options.max_length;

  const Queries queries = read_queries(options.queries_path);
  const Docs docs = read_docs(options.docs_path, /*allow_empty=*/true);
  if (!docs.empty_ids().empty()) {
    std::fprintf(stderr, "distill: %zu documents have neither title nor text (trained on as empty)\n",
                 docs.empty_ids().size());
  }
  // read_run already rejects a non-finite score with its file and line.
  const Run teacher = read_run(options.teacher_run_path);
  std::optional<Qrels> qrels;
  if (!options.qrels_path.empty()) qrels = read_qrels(options.qrels_path);
  GroupReport report;
  std::vector<QueryGroup> groups;
  try {
    groups = build_teacher_groups(queries, docs, teacher, qrels ? &*qrels : nullptr, options.groups, &report);
  } catch (const Error& e) {
    // The groups know the run only by its tag: name the file instead.
    std::string message = e.what();
    const std::string prefix = e.file() + ": " + (e.field().empty() ? "" : e.field() + ": ");
    if (!e.file().empty() && message.starts_with(prefix)) message = message.substr(prefix.size());
    throw Error(options.teacher_run_path, 0, e.field(), message);
  }
  print_group_report("distill", report);
  if (groups.empty()) {
    throw Error(options.teacher_run_path, 0, "",
                "no training groups: every query was dropped (see the counts above)");
  }
  const TeacherNormReport norm = normalize_teacher_scores(groups, options.norm);
  if (norm.degenerate_queries > 0) {
    std::fprintf(stderr,
                 "distill: %zu queries with one document or equal teacher scores: their targets are all 0 "
                 "(--teacher-norm query)\n",
                 norm.degenerate_queries);
  }
  if (norm.norm == TeacherNorm::kGlobal) {
    std::fprintf(stderr, "distill: teacher scores mapped to (t - %.6g) / %.6g (--teacher-norm global)\n",
                 norm.mean, norm.stddev);
  }

  std::optional<ValidationSet> dev;
  if (!options.dev_dir.empty())
    dev = load_validation_set(options.dev_dir, options.dev_run, options.dev_require_relevant);

  const auto& train = options.train;
  std::fprintf(
      stderr,
      "distill: %zu groups, %zu teacher-scored candidates; loss %s (alpha %g, pairs %s), %zu groups of %zu "
      "documents per micro-batch, %lld micro-batches per epoch; %s\n",
      groups.size(), total_documents(groups), train.loss.name.c_str(), train.loss.alpha,
      train.loss.pairs == PairSelection::kAll ? "all" : "pos-neg", train.batching.groups_per_batch,
      train.batching.sample.group_size,
      static_cast<long long>(group_batches_per_epoch(groups.size(), train.batching.groups_per_batch)),
      runtime_summary(student.device()).c_str());

  const TrainSummary trained =
      train_distill(student, queries, docs, groups, train, run, optimizer, dev ? &*dev : nullptr);

  nlohmann::json dev_metrics;
  if (dev) {
    dev_metrics = trained.epoch_metrics.empty() ? validation_json(student, *dev, train.eval_batch_size)
                                                : trained.epoch_metrics.back();
  }
  const nlohmann::json data = {{"teacher_run", options.teacher_run_path},
                               {"queries", options.queries_path},
                               {"docs", options.docs_path},
                               {"qrels", options.qrels_path},
                               {"groups", groups.size()},
                               {"candidates", total_documents(groups)}};
  nlohmann::json loss = {{"name", train.loss.name},
                         {"pairs", train.loss.pairs == PairSelection::kAll ? "all" : "pos-neg"},
                         {"group_size", train.batching.sample.group_size},
                         {"groups_per_batch", train.batching.groups_per_batch}};
  if (train.loss.name == "hybrid") loss["alpha"] = train.loss.alpha;
  if (train.loss.name == "kl") loss["temperature"] = train.loss.temperature;

  nlohmann::json summary = trained.to_json();
  summary["stage"] = "distill";
  summary["pairs_per_second"] = trained.units_per_second;
  summary["loss"] = loss;
  summary["teacher_norm"] = norm.to_json();
  summary["data"] = data;
  summary["groups"] = group_report_json(report);
  summary["group_report"] = report.lines();
  if (dev) {
    summary["dev"] = {{"set", dev->name}, {"dir", options.dev_dir}, {"run", options.dev_run}};
    summary["validation"] = dev_metrics;
  }

  nlohmann::json provenance = {{"stage", "distill"},
                               {"base_model", model_dir},
                               {"loss", loss},
                               {"teacher_norm", norm.to_json()},
                               {"data", data},
                               {"steps", trained.steps},
                               {"final_loss", trained.final_loss}};
  if (dev) provenance["dev"] = {{"set", dev->name}, {"metrics", dev_metrics}};
  save_trained_model(student, run.out_dir, provenance, summary);
  return summary;
}

}  // namespace disranker
