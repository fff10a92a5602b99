#include "train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <tuple>
#include <utility>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "dist/process_group.h"

namespace disranker {
namespace fs = std::filesystem;

nlohmann::json TrainSummary::to_json() const {
  return {{"steps", steps},     {"resumed_from_step", resumed_from_step}, {"final_loss", final_loss},
          {"seconds", seconds}, {"units_per_second", units_per_second},   {"epoch_metrics", epoch_metrics}};
}

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kCheckpointFormat = 1;
constexpr const char* kCheckpointDir = "checkpoint";
constexpr const char* kTmpPrefix = "checkpoint.tmp-";
constexpr const char* kOldPrefix = "checkpoint.old-";

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// What a metrics line averages: the micro-batches and steps since the previous line. It is part of the
// checkpoint, so that a resumed run logs the same figures as one that was never interrupted.
struct Window {
  double loss_sum = 0;
  std::int64_t micro_batches = 0;
  double grad_norm_sum = 0;
  std::int64_t steps = 0;
  std::vector<std::tuple<std::string, double, std::int64_t>> extra;  // name, sum, count; first-seen order

  void add_extra(const std::string& name, double value, std::int64_t times = 1) {
    for (auto& [known, sum, count] : extra) {
      if (known == name) {
        sum += value;
        count += times;
        return;
      }
    }
    extra.emplace_back(name, value, times);
  }
  double mean_loss() const { return micro_batches ? loss_sum / static_cast<double>(micro_batches) : 0.0; }

  nlohmann::json to_json() const {
    nlohmann::json extra_json = nlohmann::json::array();
    for (const auto& [name, sum, count] : extra) extra_json.push_back({name, sum, count});
    return {{"loss_sum", loss_sum},
            {"micro_batches", micro_batches},
            {"grad_norm_sum", grad_norm_sum},
            {"steps", steps},
            {"extra", extra_json}};
  }
  static Window from_json(const nlohmann::json& json) {
    Window window;
    window.loss_sum = json.at("loss_sum").get<double>();
    window.micro_batches = json.at("micro_batches").get<std::int64_t>();
    window.grad_norm_sum = json.at("grad_norm_sum").get<double>();
    window.steps = json.at("steps").get<std::int64_t>();
    for (const auto& item : json.at("extra")) {
      window.extra.emplace_back(item.at(0).get<std::string>(), item.at(1).get<double>(),
                                item.at(2).get<std::int64_t>());
    }
    return window;
  }
};

// Data parallelism: the loss, micro-batch and unit counts are summed over the ranks at every step, but a
// stage's extra figures are only gathered when they are logged or checkpointed. Afterwards rank 0 holds the
// sums of all ranks and the others start from zero again, so that the next gathering counts nothing twice.
void gather_extras(dist::Group& group, Window& window) {
  if (!group.distributed()) return;
  nlohmann::json mine = nlohmann::json::array();
  for (const auto& [name, sum, count] : window.extra) mine.push_back({name, sum, count});
  const auto gathered = group.all_gather(mine.dump());
  window.extra.clear();
  if (!group.is_root()) return;
  for (const auto& text : gathered) {
    for (const auto& item : nlohmann::json::parse(text)) {
      window.add_extra(item.at(0).get<std::string>(), item.at(1).get<double>(),
                       item.at(2).get<std::int64_t>());
    }
  }
}

// Where the run stands: the optimiser steps taken and the next micro-batch, plus what the logs and the
// summary carry across a resume.
struct Progress {
  std::int64_t step = 0;        // optimiser steps completed
  std::int64_t epoch = 0;       // epoch of the next micro-batch
  std::int64_t next_index = 0;  // index of the next micro-batch in that epoch
  Window window;
  double last_logged_loss = 0;
  double elapsed_before = 0;  // training seconds of the processes before this one
  std::vector<nlohmann::json> epoch_metrics;
};

nlohmann::json parameter_records(torch::nn::Module& model) {
  nlohmann::json records = nlohmann::json::array();
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    records.push_back({{"name", item.key()},
                       {"shape", item.value().sizes().vec()},
                       {"trainable", item.value().requires_grad()}});
  }
  return records;
}

// The first difference between the checkpoint's parameters and the model's, as an Error naming state.json.
void check_parameters(const nlohmann::json& saved, const nlohmann::json& current,
                      const std::string& state_path) {
  const std::size_t common = std::min(saved.size(), current.size());
  for (std::size_t i = 0; i < common; ++i) {
    const auto saved_name = saved[i].at("name").get<std::string>();
    const auto name = current[i].at("name").get<std::string>();
    if (saved_name != name) {
      throw Error(state_path, 0, "parameters",
                  "parameter " + std::to_string(i) + " is '" + saved_name + "' in the checkpoint but '" +
                      name + "' in the model: the checkpoint is of another model; choose another --out");
    }
    const auto saved_shape = saved[i].at("shape").get<std::vector<std::int64_t>>();
    const auto shape = current[i].at("shape").get<std::vector<std::int64_t>>();
    if (saved_shape != shape) {
      throw Error(
          state_path, 0, name,
          "shape " + shape_text(saved_shape) + " in the checkpoint but " + shape_text(shape) +
              " in the model: the checkpoint is of another model configuration; choose another --out");
    }
    if (saved[i].at("trainable") != current[i].at("trainable")) {
      throw Error(state_path, 0, name,
                  std::string(saved[i].at("trainable").get<bool>() ? "trained" : "frozen") +
                      " in the checkpoint but " +
                      (current[i].at("trainable").get<bool>() ? "trained" : "frozen") +
                      " in this run (another LoRA or freezing setting?)");
    }
  }
  if (saved.size() != current.size()) {
    const bool more_saved = saved.size() > current.size();
    const auto& extra = more_saved ? saved[common] : current[common];
    throw Error(state_path, 0, extra.at("name").get<std::string>(),
                std::string("only in the ") + (more_saved ? "checkpoint" : "model") +
                    " (the checkpoint has " + std::to_string(saved.size()) + " parameters, the model " +
                    std::to_string(current.size()) +
                    "): the checkpoint is of another model; choose another --out");
  }
}

// A save is interrupted only between its two renames (checkpoint → old, tmp → checkpoint) if the process
// dies there: then the newest complete copy becomes the checkpoint again. state.json is written last, so a
// directory holding it is complete. Leftovers of interrupted saves are removed.
void recover_checkpoint(const fs::path& out_dir) {
  const fs::path checkpoint = out_dir / kCheckpointDir;
  std::vector<fs::path> tmp_dirs, old_dirs;
  for (const auto& entry : fs::directory_iterator(out_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(kTmpPrefix)) tmp_dirs.push_back(entry.path());
    if (name.starts_with(kOldPrefix)) old_dirs.push_back(entry.path());
  }
  if (!fs::exists(checkpoint)) {
    std::optional<fs::path> best;
    for (const auto* candidates : {&tmp_dirs, &old_dirs}) {
      for (const auto& dir : *candidates) {
        if (!best && fs::exists(dir / "state.json")) best = dir;
      }
    }
    if (best) {
      fs::rename(*best, checkpoint);
      std::fprintf(stderr, "recovered the checkpoint of an interrupted save from %s\n",
                   best->string().c_str());
    }
  }
  std::error_code ignored;
  for (const auto* leftovers : {&tmp_dirs, &old_dirs}) {
    for (const auto& dir : *leftovers) fs::remove_all(dir, ignored);
  }
}

// Keeps the lines of metrics.jsonl up to `last_step` (a resumed run rewrites what came after its checkpoint);
// a line that does not parse (cut short by the kill) is dropped and counted on stderr.
void truncate_metrics(const fs::path& path, std::int64_t last_step) {
  if (!fs::exists(path)) return;
  std::vector<std::string> kept;
  std::size_t dropped = 0, unreadable = 0;
  for_each_line(path.string(), [&](std::size_t, std::string_view line) {
    if (line.empty()) return;
    const auto json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object() || !json.contains("step") ||
        !json["step"].is_number_integer()) {
      ++unreadable;
    } else if (json["step"].get<std::int64_t>() > last_step) {
      ++dropped;
    } else {
      kept.emplace_back(line);
    }
  });
  if (dropped == 0 && unreadable == 0) return;
  write_file_atomically(path.string(), [&](std::ostream& out) {
    for (const auto& line : kept) out << line << '\n';
  });
  std::fprintf(stderr, "%s: dropped %zu line(s) after step %lld (logged after the checkpoint)",
               path.string().c_str(), dropped, static_cast<long long>(last_step));
  if (unreadable)
    std::fprintf(stderr, " and %zu unreadable line(s) (cut short by the interruption)", unreadable);
  std::fprintf(stderr, "\n");
}

// metrics.jsonl, one JSON object a line, flushed after each so that a kill loses nothing logged.
class MetricsLog {
 public:
  MetricsLog(fs::path path, bool fresh)
      : path_(std::move(path)), out_(path_, fresh ? std::ios::trunc : std::ios::app) {
    if (!out_) throw Error(path_.string(), 0, "", "cannot open the metrics log for writing");
  }
  void write(const nlohmann::json& line) {
    out_ << line.dump() << '\n';
    out_.flush();
    if (!out_) throw Error(path_.string(), 0, "", "cannot write the metrics log (disk full?)");
  }

 private:
  fs::path path_;
  std::ofstream out_;
};

torch::Device model_device(torch::nn::Module& model) {
  for (const auto& parameter : model.parameters()) return parameter.device();
  return torch::kCPU;
}

void save_checkpoint(const fs::path& out_dir, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                     const nlohmann::json& state) {
  const fs::path tmp = out_dir / (kTmpPrefix + std::to_string(::getpid()));
  const fs::path old = out_dir / (kOldPrefix + std::to_string(::getpid()));
  const fs::path checkpoint = out_dir / kCheckpointDir;
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    torch::serialize::OutputArchive weights;
    for (const auto& item : model.named_parameters(true)) weights.write(item.key(), item.value(), false);
    for (const auto& item : model.named_buffers(true)) weights.write(item.key(), item.value(), true);
    weights.save_to((tmp / "model.pt").string());
    torch::serialize::OutputArchive optimizer_archive;
    optimizer.save(optimizer_archive);
    optimizer_archive.save_to((tmp / "optimizer.pt").string());
  } catch (const c10::Error& e) {
    throw Error(tmp.string(), 0, "",
                std::string("cannot write the checkpoint: ") + e.what_without_backtrace());
  }
  // Last, so that a directory holding state.json is complete (recover_checkpoint relies on it).
  write_file_atomically((tmp / "state.json").string(),
                        [&](std::ostream& out) { out << state.dump(2) << '\n'; });
  // A directory cannot be renamed over a non-empty one: move the old one aside, swap the new one in, and only
  // then delete the old one, so that a complete checkpoint exists at every moment.
  if (fs::exists(checkpoint)) {
    fs::remove_all(old);
    fs::rename(checkpoint, old);
  }
  fs::rename(tmp, checkpoint);
  fs::remove_all(old);
}

// Restores the weights and the optimiser state of `checkpoint` and returns its state.json, after checking
// that it belongs to this stage and this model.
nlohmann::json load_checkpoint(const fs::path& checkpoint, const std::string& stage, torch::nn::Module& model,
                               torch::optim::Optimizer& optimizer) {
  const std::string state_path = (checkpoint / "state.json").string();
  nlohmann::json state;
  {
    std::ifstream in(state_path);
    if (!in) throw Error(state_path, 0, "", "cannot open the checkpoint state");
    state = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (state.is_discarded() || !state.is_object()) throw Error(state_path, 0, "", "not valid JSON");
  }
  try {
    if (state.at("format").get<int>() != kCheckpointFormat) {
      throw Error(state_path, 0, "format",
                  "checkpoint format " + state["format"].dump() + ", this version reads " +
                      std::to_string(kCheckpointFormat));
    }
    const auto saved_stage = state.at("stage").get<std::string>();
    if (saved_stage != stage) {
      throw Error(state_path, 0, "stage",
                  "the checkpoint is of stage '" + saved_stage + "', this run is '" + stage +
                      "': choose another --out");
    }
    check_parameters(state.at("parameters"), parameter_records(model), state_path);
  } catch (const nlohmann::json::exception& e) {
    throw Error(state_path, 0, "", std::string("malformed checkpoint state: ") + e.what());
  }

  const torch::Device device = model_device(model);
  const std::string weights_path = (checkpoint / "model.pt").string();
  try {
    torch::serialize::InputArchive weights;
    weights.load_from(weights_path, device);
    torch::NoGradGuard no_grad;
    auto restore = [&](const std::string& name, torch::Tensor& target, bool is_buffer) {
      torch::Tensor saved;
      if (!weights.try_read(name, saved, is_buffer)) {
        throw Error(weights_path, 0, name, std::string("missing ") + (is_buffer ? "buffer" : "parameter"));
      }
      if (saved.sizes() != target.sizes()) {
        throw Error(weights_path, 0, name,
                    "shape " + shape_text(saved.sizes().vec()) + " in the checkpoint but " +
                        shape_text(target.sizes().vec()) + " in the model");
      }
      // copy_ keeps the model's tensors (which the optimiser refers to) and their dtype and device.
      target.copy_(saved);
    };
    for (auto& item : model.named_parameters(true)) restore(item.key(), item.value(), false);
    for (auto& item : model.named_buffers(true)) restore(item.key(), item.value(), true);
  } catch (const c10::Error& e) {
    throw Error(weights_path, 0, "",
                std::string("cannot read the checkpoint weights: ") + e.what_without_backtrace());
  }
  const std::string optimizer_path = (checkpoint / "optimizer.pt").string();
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(optimizer_path, device);
    optimizer.load(archive);
  } catch (const c10::Error& e) {
    throw Error(optimizer_path, 0, "",
                std::string("cannot read the optimiser state: ") + e.what_without_backtrace());
  }
  return state;
}

// The global L2 norm of the gradients, computed as clip_grad_norm_ does (for the log when clipping is off).
double global_grad_norm(const std::vector<torch::Tensor>& parameters) {
  std::vector<torch::Tensor> norms;
  for (const auto& parameter : parameters) {
    if (parameter.grad().defined()) norms.push_back(parameter.grad().detach().norm(2));
  }
  if (norms.empty()) return 0.0;
  return (norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2)).item<double>();
}

std::string progress_text(double loss, double lr, double units_per_second, const std::string& unit) {
  char buffer[128];
  std::snprintf(buffer, sizeof(buffer), "loss %.4f lr %.1e %.0f %s/s", loss, lr, units_per_second,
                unit.c_str());
  return buffer;
}

}  // namespace

Trainer::Trainer(torch::nn::Module& model, RunOptions run, OptimizerOptions optimizer, TrainerSpec spec)
    : model_(model), run_(std::move(run)), optimizer_options_(std::move(optimizer)), spec_(std::move(spec)) {
  validate(run_);
  validate(optimizer_options_);
  if (spec_.stage.empty()) throw Error("Trainer: the stage name is empty");
  if (spec_.micro_batches_per_epoch < 1) {
    throw Error(spec_.stage + ": no training micro-batches (the training data is empty?)");
  }
  const std::int64_t accumulation = optimizer_options_.grad_accumulation;
  steps_per_epoch_ = (spec_.micro_batches_per_epoch + accumulation - 1) / accumulation;
  total_steps_ = run_.max_steps >= 0 ? run_.max_steps : run_.epochs * steps_per_epoch_;
  std::error_code error;
  fs::create_directories(run_.out_dir, error);
  if (error) throw Error(run_.out_dir, 0, "", "cannot create the output directory: " + error.message());
}

TrainSummary Trainer::run(const MicroStep& micro_step, const EpochEnd& on_epoch_end) {
  if (!micro_step) throw Error(spec_.stage + ": Trainer::run needs a micro-step function");
  const fs::path out_dir = run_.out_dir;
  const fs::path checkpoint = out_dir / kCheckpointDir;
  const fs::path metrics_path = out_dir / "metrics.jsonl";
  dist::Group& group = dist::world();
  // Rank 0 owns the output directory: it alone repairs, writes and logs; every rank reads the checkpoint,
  // which therefore has to be on storage they all see.
  if (group.is_root()) recover_checkpoint(out_dir);
  group.barrier();
  const bool have_checkpoint = fs::exists(checkpoint / "state.json");
  if (group.distributed()) {
    torch::Tensor seen = torch::tensor({have_checkpoint ? 1.0 : 0.0}, torch::kFloat64);
    group.all_reduce_sum(seen);
    const double ranks_seeing = seen.item<double>();
    if (ranks_seeing != 0 && ranks_seeing != group.size()) {
      throw Error(checkpoint.string(), 0, "",
                  "only " + std::to_string(static_cast<int>(ranks_seeing)) + " of " +
                      std::to_string(group.size()) +
                      " ranks see this checkpoint: --out must be on storage every rank sees (NFS, Lustre, "
                      "a shared volume)");
    }
  }
  if (have_checkpoint && !run_.resume) {
    throw Error(
        checkpoint.string(), 0, "",
        "holds the checkpoint of an earlier run; pass --resume to continue it, or choose another --out "
        "(it is never overwritten silently)");
  }

  // Hugging Face's grouping: weight decay on matrices (and embeddings), none on biases and norm weights.
  std::vector<torch::Tensor> decayed, not_decayed, trainable;
  for (const auto& parameter : model_.parameters(/*recurse=*/true)) {
    if (!parameter.requires_grad()) continue;
    (parameter.dim() >= 2 ? decayed : not_decayed).push_back(parameter);
    trainable.push_back(parameter);
  }
  if (trainable.empty()) throw Error(spec_.stage + ": the model has no trainable parameter");
  const auto& o = optimizer_options_;
  auto group_options = [&](double weight_decay) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(o.learning_rate)
            .betas(std::make_tuple(o.adam_beta1, o.adam_beta2))
            .eps(o.adam_eps)
            .weight_decay(weight_decay)
            .amsgrad(false));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!decayed.empty()) groups.emplace_back(decayed, group_options(o.weight_decay));
  if (!not_decayed.empty()) groups.emplace_back(not_decayed, group_options(0.0));
  torch::optim::AdamW optimizer(std::move(groups));

  Progress progress;
  std::int64_t resumed_from_step = 0;
  if (have_checkpoint) {
    const nlohmann::json state = load_checkpoint(checkpoint, spec_.stage, model_, optimizer);
    const std::string state_path = (checkpoint / "state.json").string();
    try {
      // The mapping of steps to micro-batches depends on these two: another value would replay other data.
      for (const auto& [field, value] :
           {std::pair<const char*, std::int64_t>{"micro_batches_per_epoch", spec_.micro_batches_per_epoch},
            {"grad_accumulation", o.grad_accumulation}}) {
        if (state.at(field).get<std::int64_t>() != value) {
          throw Error(state_path, 0, field,
                      std::to_string(state.at(field).get<std::int64_t>()) + " in the checkpoint but " +
                          std::to_string(value) + " in this run: resuming would replay other data; " +
                          "use the same data and --grad-accumulation, or choose another --out");
        }
      }
      progress.step = state.at("step").get<std::int64_t>();
      progress.epoch = state.at("epoch").get<std::int64_t>();
      progress.next_index = state.at("next_index").get<std::int64_t>();
      progress.window = Window::from_json(state.at("window"));
      if (!group.is_root()) progress.window.extra.clear();  // rank 0 holds the job's extras (gather_extras)
      progress.last_logged_loss = state.at("last_logged_loss").get<double>();
      progress.elapsed_before = state.at("elapsed_s").get<double>();
      for (const auto& metrics : state.at("epoch_metrics")) progress.epoch_metrics.push_back(metrics);
      if (state.at("seed").get<std::uint64_t>() != run_.seed) {
        std::fprintf(stderr, "%s: warning: the checkpoint was made with --seed %llu, this run has %llu\n",
                     state_path.c_str(), static_cast<unsigned long long>(state["seed"].get<std::uint64_t>()),
                     static_cast<unsigned long long>(run_.seed));
      }
      if (state.at("total_steps").get<std::int64_t>() != total_steps_) {
        std::fprintf(stderr,
                     "%s: warning: the checkpoint's run had %lld steps, this one has %lld: the learning-rate "
                     "schedule changes from here\n",
                     state_path.c_str(), static_cast<long long>(state["total_steps"].get<std::int64_t>()),
                     static_cast<long long>(total_steps_));
      }
    } catch (const nlohmann::json::exception& e) {
      throw Error(state_path, 0, "", std::string("malformed checkpoint state: ") + e.what());
    }
    resumed_from_step = progress.step;
    if (group.is_root()) truncate_metrics(metrics_path, progress.step);
    std::fprintf(stderr, "%s: resuming from %s at step %lld of %lld (epoch %lld, micro-batch %lld)\n",
                 spec_.stage.c_str(), checkpoint.string().c_str(), static_cast<long long>(progress.step),
                 static_cast<long long>(total_steps_), static_cast<long long>(progress.epoch),
                 static_cast<long long>(progress.next_index));
  } else if (run_.resume) {
    std::fprintf(stderr, "%s: --resume: no checkpoint in %s, starting fresh\n", spec_.stage.c_str(),
                 out_dir.string().c_str());
  }
  // Every rank starts from rank 0's weights, as DistributedDataParallel does: whatever each rank initialised
  // or loaded, the replicas are identical from the first step, and identical gradients keep them so.
  {
    std::vector<torch::Tensor> state;
    for (const auto& item : model_.named_parameters(true)) state.push_back(item.value());
    for (const auto& item : model_.named_buffers(true)) state.push_back(item.value());
    group.broadcast_from_root(state);
  }
  std::optional<MetricsLog> metrics;
  if (group.is_root()) metrics.emplace(metrics_path, /*fresh=*/!have_checkpoint);
  const bool quiet = run_.quiet || !group.is_root();

  if (group.distributed() && group.is_root()) {
    std::fprintf(
        stderr,
        "%s: data parallel over %d ranks: each optimiser step's %lld micro-batches are dealt round-robin "
        "to the ranks and their gradients summed, so the step equals the single-process step\n",
        spec_.stage.c_str(), group.size(), static_cast<long long>(o.grad_accumulation));
    if (o.grad_accumulation % group.size() != 0) {
      std::fprintf(
          stderr,
          "%s: warning: --grad-accumulation %lld is not a multiple of the %d ranks: some ranks idle in "
          "every step (use a multiple for full speed)\n",
          spec_.stage.c_str(), static_cast<long long>(o.grad_accumulation), group.size());
    }
  }
  if (!quiet && !have_checkpoint) {
    std::fprintf(
        stderr, "%s: %lld optimiser steps (%lld per epoch of %lld micro-batches, %lld per step)\n",
        spec_.stage.c_str(), static_cast<long long>(total_steps_), static_cast<long long>(steps_per_epoch_),
        static_cast<long long>(spec_.micro_batches_per_epoch), static_cast<long long>(o.grad_accumulation));
  }

  const Clock::time_point start = Clock::now();
  Clock::time_point window_start = start;
  double units = 0;         // this process (all ranks when data-parallel)
  double window_units = 0;  // the same, since the last log line
  double last_grad_norm = 0;
  double last_lr = learning_rate_at(o, std::min(progress.step, std::max<std::int64_t>(total_steps_ - 1, 0)),
                                    std::max<std::int64_t>(total_steps_, 1));
  ProgressBar bar(spec_.stage, static_cast<std::size_t>(std::max<std::int64_t>(total_steps_, 0)), "steps",
                  quiet);
  bar.set_start(static_cast<std::size_t>(progress.step));

  auto state_json = [&] {
    return nlohmann::json{{"format", kCheckpointFormat},
                          {"stage", spec_.stage},
                          {"step", progress.step},
                          {"epoch", progress.epoch},
                          {"next_index", progress.next_index},
                          {"seed", run_.seed},
                          {"total_steps", total_steps_},
                          {"micro_batches_per_epoch", spec_.micro_batches_per_epoch},
                          {"grad_accumulation", o.grad_accumulation},
                          {"window", progress.window.to_json()},
                          {"last_logged_loss", progress.last_logged_loss},
                          {"elapsed_s", progress.elapsed_before + seconds_since(start)},
                          {"epoch_metrics", progress.epoch_metrics},
                          {"parameters", parameter_records(model_)}};
  };

  model_.train();
  while (progress.step < total_steps_) {
    const std::int64_t epoch = progress.epoch;
    // An epoch's last step takes the micro-batches that are left, fewer when they do not divide evenly.
    const std::int64_t count =
        std::min(o.grad_accumulation, spec_.micro_batches_per_epoch - progress.next_index);
    double step_loss_sum = 0, step_micro_batches = 0, step_units = 0;  // this rank's share of the step
    for (std::int64_t i = group.rank(); i < count; i += group.size()) {
      const std::int64_t index = progress.next_index + i;
      torch::manual_seed(batch_seed(run_.seed, epoch, index));
      MicroBatchResult result = micro_step(epoch, index);
      if (!result.loss.defined() || result.loss.numel() != 1) {
        throw Error(spec_.stage + ": epoch " + std::to_string(epoch) + ", micro-batch " +
                    std::to_string(index) + ": the loss is not a scalar tensor");
      }
      const double loss = result.loss.item<double>();
      if (!std::isfinite(loss)) {
        throw Error(spec_.stage + ": epoch " + std::to_string(epoch) + ", micro-batch " +
                    std::to_string(index) + ": the loss is " + (std::isnan(loss) ? "NaN" : "infinite") +
                    "; try a lower --learning-rate or check this batch's data");
      }
      // Dividing by the micro-batches of this step makes the gradient that of their mean loss.
      (result.loss / static_cast<double>(count)).backward();
      step_loss_sum += loss;
      step_micro_batches += 1;
      step_units += result.units;
      for (const auto& [name, value] : result.extra) progress.window.add_extra(name, value);
    }
    if (group.distributed()) {
      // The sum of the ranks' gradients is the gradient of the step's mean loss, as in one process.
      group.all_reduce_gradients(trainable);
      torch::Tensor sums = torch::tensor({step_loss_sum, step_micro_batches, step_units}, torch::kFloat64);
      group.all_reduce_sum(sums);
      step_loss_sum = sums[0].item<double>();
      step_micro_batches = sums[1].item<double>();
      step_units = sums[2].item<double>();
    }
    progress.window.loss_sum += step_loss_sum;
    progress.window.micro_batches += static_cast<std::int64_t>(step_micro_batches);
    units += step_units;
    window_units += step_units;
    last_grad_norm = o.max_grad_norm > 0 ? torch::nn::utils::clip_grad_norm_(trainable, o.max_grad_norm)
                                         : global_grad_norm(trainable);
    last_lr = learning_rate_at(o, progress.step, total_steps_);
    for (auto& param_group : optimizer.param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(param_group.options()).lr(last_lr);
    }
    optimizer.step();
    optimizer.zero_grad();

    ++progress.step;
    progress.next_index += count;
    progress.window.grad_norm_sum += last_grad_norm;
    ++progress.window.steps;
    const bool epoch_done = progress.next_index >= spec_.micro_batches_per_epoch;
    const bool last_step = progress.step == total_steps_;
    const double elapsed = progress.elapsed_before + seconds_since(start);

    if (last_step || (run_.log_every > 0 && progress.step % run_.log_every == 0)) {
      gather_extras(group, progress.window);
      const double window_seconds = seconds_since(window_start);
      nlohmann::json line = {
          {"stage", spec_.stage},
          {"step", progress.step},
          {"epoch", epoch},
          {"loss", progress.window.mean_loss()},
          {"lr", last_lr},
          {"grad_norm", progress.window.grad_norm_sum / static_cast<double>(progress.window.steps)},
          {"units_per_s", window_seconds > 0 ? window_units / window_seconds : 0.0},
          {"elapsed_s", elapsed}};
      for (const auto& [name, sum, count_seen] : progress.window.extra) {
        // A stage's figure never replaces one of the trainer's own fields.
        line[line.contains(name) ? "extra_" + name : name] = sum / static_cast<double>(count_seen);
      }
      if (metrics) metrics->write(line);
      progress.last_logged_loss = progress.window.mean_loss();
      progress.window = Window{};
      window_units = 0;
      window_start = Clock::now();
    }
    // The end of an epoch, or of the run when --max-steps stops it within one.
    if ((epoch_done || last_step) && on_epoch_end) {
      nlohmann::json validation;
      {
        model_.eval();
        torch::NoGradGuard no_grad;
        validation = on_epoch_end(epoch);
      }
      model_.train();
      if (metrics)
        metrics->write(
            {{"stage", spec_.stage}, {"step", progress.step}, {"epoch", epoch}, {"validation", validation}});
      progress.epoch_metrics.push_back(validation);
    }
    if (epoch_done) {
      ++progress.epoch;
      progress.next_index = 0;
    }
    if (last_step || (run_.save_every > 0 && progress.step % run_.save_every == 0)) {
      gather_extras(group, progress.window);
      if (group.is_root()) save_checkpoint(out_dir, model_, optimizer, state_json());
    }
    const double seconds = seconds_since(start);
    bar.update(
        static_cast<std::size_t>(progress.step),
        progress_text(progress.window.micro_batches ? progress.window.mean_loss() : progress.last_logged_loss,
                      last_lr, seconds > 0 ? units / seconds : 0.0, spec_.unit));
    if (run_.exit_after_step == progress.step) {
      std::fflush(stderr);
      std::_Exit(137);  // as a kill would: no destructors, nothing flushed beyond what is on disk already
    }
  }
  const double seconds = seconds_since(start);
  bar.finish(
      progress_text(progress.last_logged_loss, last_lr, seconds > 0 ? units / seconds : 0.0, spec_.unit));

  TrainSummary summary;
  summary.steps = progress.step;
  summary.resumed_from_step = resumed_from_step;
  summary.final_loss = progress.last_logged_loss;
  summary.seconds = seconds;
  summary.units_per_second = seconds > 0 ? units / seconds : 0.0;
  summary.epoch_metrics = progress.epoch_metrics;
  return summary;
}

void save_trained_model(Ranker& ranker, const std::string& out_dir, nlohmann::json provenance,
                        nlohmann::json& summary) {
  if (!ranker.manifest().provenance.empty()) provenance["base_provenance"] = ranker.manifest().provenance;
  const std::string model_out = (fs::path(out_dir) / "model").string();
  summary["model"] = model_out;
  dist::Group& group = dist::world();
  if (group.is_root()) {
    ranker.save(model_out, provenance);
    write_file_atomically((fs::path(out_dir) / "summary.json").string(),
                          [&](std::ostream& out) { out << summary.dump(2) << "\n"; });
  }
  group.barrier();
}

}  // namespace disranker
