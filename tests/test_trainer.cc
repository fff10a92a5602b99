// The shared training loop (train/trainer.h) and its settings (train/train_options.h): the learning-rate
// schedule by hand, option validation, AdamW's weight-decay groups and update against the hand formula,
// clipping, gradient accumulation, the metrics log, checkpoints, and a run killed and resumed reaching
// exactly the parameters of one that was never interrupted.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/random.h"
#include "test_util.h"
#include "train/train_options.h"
#include "train/trainer.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::TempDir;

// -----------------------------------------------------------------------------------------------------------
// Schedule and options (no model).

OptimizerOptions schedule(const std::string& name, double lr, std::int64_t warmup_steps) {
  OptimizerOptions options;
  options.schedule = name;
  options.learning_rate = lr;
  options.warmup_steps = warmup_steps;
  return options;
}

TEST(Schedule, WarmupRisesLinearlyFromLrOverWarmupToLr) {
  const auto options = schedule("linear", 1e-3, 4);
  EXPECT_DOUBLE_EQ(learning_rate_at(options, 0, 10), 0.25e-3);
  EXPECT_DOUBLE_EQ(learning_rate_at(options, 1, 10), 0.50e-3);
  EXPECT_DOUBLE_EQ(learning_rate_at(options, 3, 10), 1.00e-3);
}

TEST(Schedule, LinearDecaysToZeroAtTotalSteps) {
  const auto options = schedule("linear", 1e-3, 4);
  // Decay over the 6 steps after the warm-up: 1 - (step - 4) / 6.
  EXPECT_DOUBLE_EQ(learning_rate_at(options, 4, 10), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate_at(options, 7, 10), 0.5e-3);
  EXPECT_DOUBLE_EQ(learning_rate_at(options, 9, 10), 1e-3 / 6);
  EXPECT_DOUBLE_EQ(learning_rate_at(options, 10, 10), 0.0);
}

TEST(Schedule, CosineIsHalfTheRateAtTheMidpointOfTheDecay) {
  const auto options = schedule("cosine", 1e-3, 4);
  EXPECT_DOUBLE_EQ(learning_rate_at(options, 4, 10), 1e-3);
  EXPECT_NEAR(learning_rate_at(options, 7, 10), 0.5e-3, 1e-15);
  // A sixth of the way: (1 + cos(pi / 6)) / 2 = 0.9330127...
  EXPECT_NEAR(learning_rate_at(options, 5, 10), 1e-3 * 0.5 * (1 + std::sqrt(3.0) / 2), 1e-15);
  EXPECT_NEAR(learning_rate_at(options, 10, 10), 0.0, 1e-18);
}

TEST(Schedule, ConstantKeepsThePeakAfterTheWarmup) {
  const auto options = schedule("constant", 2e-4, 2);
  EXPECT_DOUBLE_EQ(learning_rate_at(options, 0, 10), 1e-4);
  EXPECT_DOUBLE_EQ(learning_rate_at(options, 2, 10), 2e-4);
  EXPECT_DOUBLE_EQ(learning_rate_at(options, 9, 10), 2e-4);
}

TEST(Schedule, NoWarmupStartsAtThePeak) {
  EXPECT_DOUBLE_EQ(learning_rate_at(schedule("linear", 1e-3, 0), 0, 4), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate_at(schedule("linear", 1e-3, 0), 2, 4), 0.5e-3);
}

TEST(Schedule, WarmupStepsComeFromTheRatioWhenNotGiven) {
  OptimizerOptions options;
  options.warmup_steps = -1;
  options.warmup_ratio = 0.25;
  EXPECT_EQ(warmup_steps_for(options, 10), 3);  // round(2.5), half away from zero
  EXPECT_EQ(warmup_steps_for(options, 100), 25);
  options.warmup_steps = 7;
  EXPECT_EQ(warmup_steps_for(options, 100), 7);
}

TEST(Schedule, UnknownScheduleIsAnError) {
  EXPECT_ERROR(learning_rate_at(schedule("exponential", 1e-3, 0), 0, 10), "", "", "exponential");
}

TEST(TrainerOptions, ValidationNamesTheFlag) {
  const auto expect_flag = [](auto change, const std::string& flag) {
    OptimizerOptions options;
    change(options);
    EXPECT_ERROR(validate(options), "", "", flag);
  };
  validate(OptimizerOptions{});  // the defaults are valid
  expect_flag([](OptimizerOptions& o) { o.learning_rate = 0; }, "--learning-rate");
  expect_flag([](OptimizerOptions& o) { o.learning_rate = NAN; }, "--learning-rate");
  expect_flag([](OptimizerOptions& o) { o.weight_decay = -0.1; }, "--weight-decay");
  expect_flag([](OptimizerOptions& o) { o.adam_beta1 = 1.0; }, "--adam-beta1");
  expect_flag([](OptimizerOptions& o) { o.adam_beta2 = -0.5; }, "--adam-beta2");
  expect_flag([](OptimizerOptions& o) { o.adam_eps = 0; }, "--adam-eps");
  expect_flag([](OptimizerOptions& o) { o.schedule = "step"; }, "--schedule");
  expect_flag([](OptimizerOptions& o) { o.warmup_ratio = 1.5; }, "--warmup-ratio");
  expect_flag([](OptimizerOptions& o) { o.grad_accumulation = 0; }, "--grad-accumulation");

  const auto expect_run_flag = [](auto change, const std::string& flag) {
    RunOptions options;
    options.out_dir = "out";
    change(options);
    EXPECT_ERROR(validate(options), "", "", flag);
  };
  RunOptions valid;
  valid.out_dir = "out";
  validate(valid);
  expect_run_flag([](RunOptions& o) { o.out_dir.clear(); }, "--out");
  expect_run_flag([](RunOptions& o) { o.epochs = 0; }, "--epochs");
  expect_run_flag([](RunOptions& o) { o.save_every = -1; }, "--save-every");
  expect_run_flag([](RunOptions& o) { o.log_every = -1; }, "--log-every");
  expect_run_flag([](RunOptions& o) { o.threads = -2; }, "--threads");
}

// -----------------------------------------------------------------------------------------------------------
// Training on tiny models.

RunOptions quiet_run(const fs::path& out_dir) {
  RunOptions run;
  run.out_dir = out_dir.string();
  run.quiet = true;
  run.seed = 42;
  return run;
}

// Plain AdamW at a constant rate: every step's update is the hand formula below.
OptimizerOptions constant_adamw(double lr, double weight_decay, double eps) {
  OptimizerOptions options;
  options.learning_rate = lr;
  options.weight_decay = weight_decay;
  options.adam_eps = eps;
  options.schedule = "constant";
  options.warmup_steps = 0;
  options.max_grad_norm = 0;
  return options;
}

// A micro-batch's result without extra figures.
MicroBatchResult result(torch::Tensor loss, double units) {
  MicroBatchResult micro_batch;
  micro_batch.loss = std::move(loss);
  micro_batch.units = units;
  return micro_batch;
}

std::vector<json> read_metrics(const fs::path& out_dir) {
  std::vector<json> lines;
  std::ifstream in(out_dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  return lines;
}

// AdamW's first step from zero moments: m̂ = g and √v̂ = |g|, so (with decoupled decay)
// p' = p·(1 − lr·wd) − lr·g / (|g| + eps). A large eps makes the update depend on the gradient's size.
torch::Tensor first_adamw_step(const torch::Tensor& p, const torch::Tensor& g, double lr, double wd,
                               double eps) {
  return p * (1 - lr * wd) - lr * g / (g.abs() + eps);
}

TEST(Trainer, AdamWDecaysMatricesButNotBiasesOrNormWeights) {
  TempDir dir;
  torch::manual_seed(1);
  torch::nn::Sequential model(torch::nn::Linear(3, 2),
                              torch::nn::LayerNorm(torch::nn::LayerNormOptions({2})));
  const auto weight = model->named_parameters()["0.weight"].detach().clone();
  const auto bias = model->named_parameters()["0.bias"].detach().clone();
  const auto norm_weight = model->named_parameters()["1.weight"].detach().clone();

  RunOptions run = quiet_run(dir.path());
  run.max_steps = 1;
  Trainer trainer(*model, run, constant_adamw(0.1, 0.5, 1e-8), {"sft", "seq", 1});
  // A loss with a zero gradient everywhere: only the decay moves a parameter.
  trainer.run([&](std::int64_t, std::int64_t) {
    return result(model->forward(torch::ones({1, 3})).sum() * 0.0, 1);
  });
  const auto params = model->named_parameters();
  EXPECT_TRUE(torch::allclose(params["0.weight"], weight * (1 - 0.1 * 0.5), 0, 1e-7));
  EXPECT_TRUE(torch::equal(params["0.bias"], bias));
  EXPECT_TRUE(torch::equal(params["1.weight"], norm_weight));
}

TEST(Trainer, AdamWStepMatchesTheHandFormulaPerGroup) {
  TempDir dir;
  torch::manual_seed(2);
  torch::nn::Linear model(3, 1);
  const auto weight = model->weight.detach().clone();
  const auto bias = model->bias.detach().clone();
  const auto x = torch::tensor({{1.0f, -2.0f, 0.5f}, {0.3f, 0.1f, -1.0f}});
  const auto y = torch::tensor({{0.7f}, {-0.2f}});
  // The reference gradient, from autograd on a copy of the model.
  auto w = weight.clone().requires_grad_();
  auto b = bias.clone().requires_grad_();
  torch::mse_loss(torch::addmm(b, x, w.t()), y).backward();

  RunOptions run = quiet_run(dir.path());
  run.max_steps = 1;
  Trainer trainer(*model, run, constant_adamw(0.05, 0.2, 0.5), {"sft", "seq", 1});
  trainer.run([&](std::int64_t, std::int64_t) { return result(torch::mse_loss(model->forward(x), y), 2); });
  EXPECT_TRUE(torch::allclose(model->weight, first_adamw_step(weight, w.grad(), 0.05, 0.2, 0.5), 0, 1e-6));
  EXPECT_TRUE(torch::allclose(model->bias, first_adamw_step(bias, b.grad(), 0.05, 0.0, 0.5), 0, 1e-6));
}

TEST(Trainer, FrozenParametersAreNotTrained) {
  TempDir dir;
  torch::manual_seed(3);
  torch::nn::Sequential model(torch::nn::Linear(2, 2), torch::nn::Linear(2, 1));
  auto frozen = model->named_parameters()["0.weight"];
  frozen.set_requires_grad(false);
  const auto before = frozen.detach().clone();
  const auto trained_before = model->named_parameters()["1.weight"].detach().clone();
  RunOptions run = quiet_run(dir.path());
  run.max_steps = 3;
  Trainer trainer(*model, run, constant_adamw(0.1, 0.5, 1e-8), {"sft", "seq", 1});
  trainer.run([&](std::int64_t, std::int64_t) {
    return result(model->forward(torch::ones({1, 2})).square().sum(), 1);
  });
  EXPECT_TRUE(torch::equal(frozen, before));
  EXPECT_FALSE(torch::equal(model->named_parameters()["1.weight"], trained_before));
}

// loss = 3·(w1 + w2): gradient (3, 3), global norm 3√2 ≈ 4.243.
struct ClippingOutcome {
  torch::Tensor weight;
  double logged_grad_norm;
};
ClippingOutcome one_step_with_clipping(double max_grad_norm) {
  TempDir dir;
  torch::nn::Linear model(torch::nn::LinearOptions(2, 1).bias(false));
  {
    torch::NoGradGuard no_grad;
    model->weight.copy_(torch::tensor({{1.0f, 2.0f}}));
  }
  RunOptions run = quiet_run(dir.path());
  run.max_steps = 1;
  run.log_every = 1;
  auto optimizer = constant_adamw(0.1, 0.0, 1.0);
  optimizer.max_grad_norm = max_grad_norm;
  Trainer trainer(*model, run, optimizer, {"sft", "seq", 1});
  trainer.run([&](std::int64_t, std::int64_t) { return result(model->weight.sum() * 3.0, 1); });
  const auto lines = read_metrics(dir.path());
  return {model->weight.detach().clone(), lines.at(0).at("grad_norm").get<double>()};
}

TEST(Trainer, ClipsTheGlobalNormAndLogsTheNormBeforeClipping) {
  const double norm = 3 * std::sqrt(2.0);
  const auto clipped = one_step_with_clipping(1.0);
  EXPECT_NEAR(clipped.logged_grad_norm, norm, 1e-5);
  // The clipped gradient is 3 / (3√2 + 1e-6) ≈ 0.7071 per entry; with eps = 1 the step is lr·g / (g + 1).
  const double g = 3.0 / (norm + 1e-6);
  EXPECT_NEAR(clipped.weight[0][0].item<double>(), 1.0 - 0.1 * g / (g + 1), 1e-6);
  EXPECT_NEAR(clipped.weight[0][1].item<double>(), 2.0 - 0.1 * g / (g + 1), 1e-6);

  const auto unclipped = one_step_with_clipping(0.0);
  EXPECT_NEAR(unclipped.logged_grad_norm, norm, 1e-5);
  EXPECT_NEAR(unclipped.weight[0][0].item<double>(), 1.0 - 0.1 * 3.0 / 4.0, 1e-6);
}

// Three micro-batches of two rows each, for the accumulation test.
struct TinyRegression {
  torch::Tensor x = torch::tensor({{1.0f, 0.0f, 2.0f},
                                   {0.5f, -1.0f, 0.0f},
                                   {-1.0f, 1.0f, 1.0f},
                                   {2.0f, 0.5f, -0.5f},
                                   {0.0f, 0.3f, 0.9f},
                                   {-0.7f, -0.2f, 0.4f}});
  torch::Tensor y = torch::tensor({1.0f, -0.5f, 0.25f, 2.0f, 0.0f, -1.0f}).unsqueeze(1);
  torch::Tensor loss(torch::nn::Linear& model, std::int64_t part) const {
    return torch::mse_loss(model->forward(x.slice(0, 2 * part, 2 * part + 2)),
                           y.slice(0, 2 * part, 2 * part + 2));
  }
};

TEST(Trainer, AccumulatedMicroBatchesEqualOneStepOnTheirMeanLoss) {
  const TinyRegression data;
  const auto optimizer = constant_adamw(0.05, 0.1, 1.0);  // eps = 1: the step depends on the gradient's size
  // Accumulation 2 over 3 micro-batches: step 1 = micro-batches 0 and 1, step 2 = micro-batch 2 alone.
  TempDir accumulated_dir;
  torch::manual_seed(5);
  torch::nn::Linear accumulated(3, 1);
  auto accumulating = optimizer;
  accumulating.grad_accumulation = 2;
  Trainer trainer(*accumulated, quiet_run(accumulated_dir.path()), accumulating, {"sft", "seq", 3});
  EXPECT_EQ(trainer.steps_per_epoch(), 2);
  EXPECT_EQ(trainer.total_steps(), 2);
  std::vector<std::int64_t> seen;
  trainer.run([&](std::int64_t, std::int64_t index) {
    seen.push_back(index);
    return result(data.loss(accumulated, index), 2);
  });
  EXPECT_EQ(seen, (std::vector<std::int64_t>{0, 1, 2}));

  // The same two steps without accumulation: the mean loss of micro-batches 0 and 1, then micro-batch 2.
  TempDir reference_dir;
  torch::manual_seed(5);
  torch::nn::Linear reference(3, 1);
  Trainer reference_trainer(*reference, quiet_run(reference_dir.path()), optimizer, {"sft", "seq", 2});
  reference_trainer.run([&](std::int64_t, std::int64_t index) {
    auto loss =
        index == 0 ? (data.loss(reference, 0) + data.loss(reference, 1)) / 2 : data.loss(reference, 2);
    return result(loss, 2);
  });
  EXPECT_TRUE(torch::allclose(accumulated->weight, reference->weight, 0, 1e-6));
  EXPECT_TRUE(torch::allclose(accumulated->bias, reference->bias, 0, 1e-6));
}

TEST(Trainer, LossDecreasesOnAFixedBatchAndEveryStepIsLogged) {
  TempDir dir;
  const TinyRegression data;
  torch::manual_seed(6);
  torch::nn::Linear model(3, 1);
  RunOptions run = quiet_run(dir.path());
  run.epochs = 60;
  run.log_every = 1;
  OptimizerOptions optimizer;
  optimizer.learning_rate = 0.05;
  optimizer.warmup_steps = 5;
  Trainer trainer(*model, run, optimizer, {"sft", "pairs", 1});
  const auto summary = trainer.run([&](std::int64_t, std::int64_t) {
    auto prediction = model->forward(data.x);
    return MicroBatchResult{
        torch::mse_loss(prediction, data.y), 6, {{"mae", (prediction - data.y).abs().mean().item<double>()}}};
  });
  EXPECT_EQ(summary.steps, 60);
  EXPECT_EQ(summary.resumed_from_step, 0);
  EXPECT_GT(summary.units_per_second, 0);

  const auto lines = read_metrics(dir.path());
  ASSERT_EQ(lines.size(), 60u);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& line = lines[i];
    EXPECT_EQ(line.at("stage"), "sft");
    EXPECT_EQ(line.at("step"), i + 1);
    EXPECT_EQ(line.at("epoch"), i);  // one step per epoch
    EXPECT_DOUBLE_EQ(line.at("lr").get<double>(),
                     learning_rate_at(optimizer, static_cast<std::int64_t>(i), 60));
    for (const char* key : {"loss", "grad_norm", "units_per_s", "elapsed_s", "mae"}) {
      EXPECT_TRUE(line.at(key).is_number()) << key;
    }
  }
  EXPECT_EQ(summary.final_loss, lines.back().at("loss").get<double>());
  EXPECT_LT(summary.final_loss, 0.5 * lines.front().at("loss").get<double>());
  EXPECT_TRUE(fs::exists(dir.path() / "checkpoint" / "state.json"));  // written at the end

  const json summary_json = summary.to_json();
  EXPECT_EQ(summary_json.at("steps"), 60);
  EXPECT_EQ(summary_json.at("final_loss"), summary.final_loss);
  for (const char* key : {"resumed_from_step", "seconds", "units_per_second", "epoch_metrics"}) {
    EXPECT_TRUE(summary_json.contains(key)) << key;
  }
}

TEST(Trainer, LogLinesAverageTheirWindow) {
  TempDir dir;
  torch::nn::Linear model(1, 1);
  RunOptions run = quiet_run(dir.path());
  run.max_steps = 5;
  run.log_every = 2;
  Trainer trainer(*model, run, constant_adamw(1e-3, 0, 1e-8), {"sft", "seq", 5});
  // The loss value is 10·(index + 1) whatever the weights: a window's mean is known exactly.
  trainer.run([&](std::int64_t, std::int64_t index) {
    auto zero = model->weight.sum() * 0.0;
    return result(zero + 10.0 * static_cast<double>(index + 1), 1);
  });
  const auto lines = read_metrics(dir.path());
  ASSERT_EQ(lines.size(), 3u);  // steps 2, 4 and the last one, 5
  EXPECT_EQ(lines[0].at("step"), 2);
  EXPECT_NEAR(lines[0].at("loss").get<double>(), 15.0, 1e-9);
  EXPECT_EQ(lines[1].at("step"), 4);
  EXPECT_NEAR(lines[1].at("loss").get<double>(), 35.0, 1e-9);
  EXPECT_EQ(lines[2].at("step"), 5);
  EXPECT_NEAR(lines[2].at("loss").get<double>(), 50.0, 1e-9);
}

TEST(Trainer, NonFiniteLossNamesStageEpochAndMicroBatch) {
  TempDir dir;
  torch::nn::Linear model(1, 1);
  RunOptions run = quiet_run(dir.path());
  run.epochs = 2;
  Trainer trainer(*model, run, constant_adamw(1e-3, 0, 1e-8), {"distill", "pairs", 3});
  const auto step = [&](std::int64_t epoch, std::int64_t index) {
    auto loss = model->forward(torch::ones({1, 1})).sum();
    if (epoch == 1 && index == 2) loss = loss * std::numeric_limits<double>::quiet_NaN();
    return result(loss, 1);
  };
  EXPECT_ERROR(trainer.run(step), "", "", "distill: epoch 1, micro-batch 2: the loss is NaN");
}

TEST(Trainer, EpochEndRunsInEvalModeWithoutGradientsOncePerEpoch) {
  TempDir dir;
  torch::nn::Sequential model(torch::nn::Linear(2, 1), torch::nn::Dropout(0.5));
  RunOptions run = quiet_run(dir.path());
  run.epochs = 3;
  Trainer trainer(*model, run, constant_adamw(1e-3, 0, 1e-8), {"sft", "seq", 2});
  std::vector<bool> training_during_steps;
  const auto summary = trainer.run(
      [&](std::int64_t, std::int64_t) {
        training_during_steps.push_back(model->is_training());
        return result(model->forward(torch::ones({1, 2})).sum(), 1);
      },
      [&](std::int64_t epoch) {
        return json{{"epoch_seen", epoch},
                    {"training", model->is_training()},
                    {"grad_mode", torch::GradMode::is_enabled()}};
      });
  EXPECT_EQ(training_during_steps, std::vector<bool>(6, true));  // back in train mode after each epoch end
  ASSERT_EQ(summary.epoch_metrics.size(), 3u);
  for (std::int64_t e = 0; e < 3; ++e) {
    EXPECT_EQ(summary.epoch_metrics[e], (json{{"epoch_seen", e}, {"training", false}, {"grad_mode", false}}));
  }
  std::vector<json> validation_lines;
  for (const auto& line : read_metrics(dir.path())) {
    if (line.contains("validation")) validation_lines.push_back(line);
  }
  ASSERT_EQ(validation_lines.size(), 3u);
  EXPECT_EQ(validation_lines[1].at("step"), 4);
  EXPECT_EQ(validation_lines[1].at("epoch"), 1);
  EXPECT_EQ(validation_lines[1].at("validation").at("epoch_seen"), 1);
}

TEST(Trainer, MaxStepsOverridesEpochs) {
  TempDir dir;
  torch::nn::Linear model(1, 1);
  RunOptions run = quiet_run(dir.path());
  run.epochs = 1;
  run.max_steps = 5;
  Trainer trainer(*model, run, constant_adamw(1e-3, 0, 1e-8), {"sft", "seq", 2});
  EXPECT_EQ(trainer.total_steps(), 5);
  std::vector<std::pair<std::int64_t, std::int64_t>> seen;
  std::vector<std::int64_t> epoch_ends;
  trainer.run(
      [&](std::int64_t epoch, std::int64_t index) {
        seen.emplace_back(epoch, index);
        return result(model->forward(torch::ones({1, 1})).sum(), 1);
      },
      [&](std::int64_t epoch) {
        epoch_ends.push_back(epoch);
        return json::object();
      });
  EXPECT_EQ(seen,
            (std::vector<std::pair<std::int64_t, std::int64_t>>{{0, 0}, {0, 1}, {1, 0}, {1, 1}, {2, 0}}));
  EXPECT_EQ(epoch_ends, (std::vector<std::int64_t>{0, 1, 2}));  // the run's end closes the cut-short epoch
}

// -----------------------------------------------------------------------------------------------------------
// Checkpoints and resume.

// A regression net with dropout (so that resuming must restore the random stream too) and a LayerNorm (1-D
// weights in the undecayed group).
struct RegressionNetImpl : torch::nn::Module {
  explicit RegressionNetImpl(std::int64_t hidden_size = 8)
      : hidden(register_module("hidden", torch::nn::Linear(4, hidden_size))),
        norm(register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden_size})))),
        dropout(register_module("dropout", torch::nn::Dropout(0.3))),
        out(register_module("out", torch::nn::Linear(hidden_size, 1))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    return out->forward(dropout->forward(torch::tanh(norm->forward(hidden->forward(x))))).squeeze(-1);
  }
  torch::nn::Linear hidden;
  torch::nn::LayerNorm norm;
  torch::nn::Dropout dropout;
  torch::nn::Linear out;
};
TORCH_MODULE(RegressionNet);

struct ResumeOutcome {
  TrainSummary summary;
  std::vector<torch::Tensor> parameters;
};

constexpr std::int64_t kRows = 40;
constexpr std::int64_t kBatch =
    8;  // 5 micro-batches an epoch; with accumulation 2: 3 steps, the last one short

// 3 epochs × 3 steps = 9 steps; checkpoints every 3 steps, log lines every 2 (so that checkpoints fall inside
// a logging window), validation at each epoch end. Everything but the kill is the same in every call.
ResumeOutcome train_regression(const fs::path& out_dir, const std::string& stage, bool resume,
                               std::int64_t exit_after_step, std::int64_t hidden_size = 8) {
  torch::manual_seed(1234);
  const auto x = torch::randn({kRows, 4});
  const auto y = x.matmul(torch::tensor({0.5f, -1.0f, 2.0f, 0.25f})) + 0.3;
  torch::manual_seed(99);  // the initial weights (a resumed run replaces them with the checkpoint's)
  RegressionNet model(hidden_size);

  RunOptions run = quiet_run(out_dir);
  run.epochs = 3;
  run.save_every = 3;
  run.log_every = 2;
  run.resume = resume;
  run.exit_after_step = exit_after_step;
  OptimizerOptions optimizer;
  optimizer.learning_rate = 0.02;
  optimizer.warmup_steps = 2;
  optimizer.grad_accumulation = 2;
  Trainer trainer(*model, run, optimizer, {stage, "rows", kRows / kBatch});
  EXPECT_EQ(trainer.total_steps(), 9);
  ResumeOutcome outcome;
  outcome.summary = trainer.run(
      [&](std::int64_t epoch, std::int64_t index) {
        const auto order = epoch_order(kRows, run.seed, epoch);
        std::vector<std::int64_t> rows(order.begin() + index * kBatch, order.begin() + (index + 1) * kBatch);
        const auto selected = torch::tensor(rows);
        auto prediction = model->forward(x.index_select(0, selected));
        const auto target = y.index_select(0, selected);
        return MicroBatchResult{torch::mse_loss(prediction, target),
                                static_cast<double>(kBatch),
                                {{"mae", (prediction - target).abs().mean().item<double>()}}};
      },
      [&](std::int64_t) {
        return json{{"mse", torch::mse_loss(model->forward(x), y).item<double>()}};
      });
  for (const auto& parameter : model->parameters()) outcome.parameters.push_back(parameter.detach().clone());
  return outcome;
}

// The metrics lines without the wall-clock figures, which differ from run to run.
std::vector<json> deterministic_metrics(const fs::path& out_dir) {
  auto lines = read_metrics(out_dir);
  for (auto& line : lines) {
    line.erase("units_per_s");
    line.erase("elapsed_s");
  }
  return lines;
}

// In "threadsafe" style a death test's child re-runs the test from its start in a new process; it must find
// the parent's directory rather than make its own, so the parent hands it over through the environment.
class DeathTestDir {
 public:
  explicit DeathTestDir(const char* variable) : variable_(variable) {
    if (const char* inherited = std::getenv(variable)) {
      path_ = inherited;
      return;
    }
    owned_.emplace();
    path_ = owned_->path();
    ::setenv(variable, path_.c_str(), 1);
  }
  ~DeathTestDir() {
    if (owned_) ::unsetenv(variable_);
  }
  const fs::path& path() const { return path_; }

 private:
  const char* variable_;
  std::optional<TempDir> owned_;
  fs::path path_;
};

TEST(Trainer, RunKilledAndResumedEqualsUninterruptedRun) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const DeathTestDir dir("DISRANKER_TRAINER_RESUME_TEST_DIR");
  const fs::path killed = dir.path() / "killed";
  const fs::path whole = dir.path() / "whole";

  // Killed after step 5 (the last checkpoint is step 3's, inside an epoch and a logging window: step 4's log
  // line comes after it), then after step 6 (a checkpoint at an epoch's end), then run to the end.
  EXPECT_EXIT(train_regression(killed, "sft", false, 5), ::testing::ExitedWithCode(137), "");
  ASSERT_TRUE(fs::exists(killed / "checkpoint" / "state.json"));
  EXPECT_EQ(json::parse(std::ifstream(killed / "checkpoint" / "state.json")).at("step"), 3);
  EXPECT_EXIT(train_regression(killed, "sft", true, 6), ::testing::ExitedWithCode(137), "");
  const auto resumed = train_regression(killed, "sft", true, -1);
  EXPECT_EQ(resumed.summary.resumed_from_step, 6);
  EXPECT_EQ(resumed.summary.steps, 9);

  const auto uninterrupted = train_regression(whole, "sft", false, -1);
  EXPECT_EQ(uninterrupted.summary.steps, 9);
  EXPECT_EQ(resumed.summary.final_loss, uninterrupted.summary.final_loss);
  ASSERT_EQ(resumed.parameters.size(), uninterrupted.parameters.size());
  for (std::size_t i = 0; i < resumed.parameters.size(); ++i) {
    EXPECT_TRUE(torch::equal(resumed.parameters[i], uninterrupted.parameters[i])) << "parameter " << i;
  }
  // Validation of all three epochs, those before the kills included.
  ASSERT_EQ(resumed.summary.epoch_metrics.size(), 3u);
  EXPECT_EQ(resumed.summary.epoch_metrics, uninterrupted.summary.epoch_metrics);

  // The log reads as if the run had never stopped: the same lines, no step twice.
  const auto killed_lines = deterministic_metrics(killed);
  EXPECT_EQ(killed_lines, deterministic_metrics(whole));
  std::set<std::int64_t> steps;
  for (const auto& line : killed_lines) {
    if (!line.contains("validation")) {
      EXPECT_TRUE(steps.insert(line.at("step").get<std::int64_t>()).second) << line;
    }
  }
  EXPECT_EQ(steps, (std::set<std::int64_t>{2, 4, 6, 8, 9}));
  // No leftovers of the checkpoint swaps.
  for (const auto& entry : fs::directory_iterator(killed)) {
    EXPECT_FALSE(entry.path().filename().string().starts_with("checkpoint.")) << entry.path();
  }
}

TEST(Trainer, ResumeTestModelReallyDropsOut) {
  // The control for the test above: its model's dropout draws random masks in training mode, so reaching the
  // same parameters after a restart needs the trainer's reseeding.
  torch::manual_seed(99);
  RegressionNet model;
  model->train();
  const auto x = torch::randn({kRows, 4});
  EXPECT_FALSE(torch::equal(model->forward(x), model->forward(x)));
}

TEST(Trainer, ExistingCheckpointWithoutResumeIsAnError) {
  TempDir dir;
  train_regression(dir.path(), "sft", false, -1);
  const auto state_path = dir.path() / "checkpoint" / "state.json";
  const auto before = fs::last_write_time(state_path);
  EXPECT_ERROR(train_regression(dir.path(), "sft", false, -1), (dir.path() / "checkpoint").string(), "",
               "pass --resume");
  EXPECT_EQ(fs::last_write_time(state_path), before);  // untouched
}

TEST(Trainer, ResumeWithoutCheckpointStartsFresh) {
  TempDir dir;
  const auto outcome = train_regression(dir.path(), "sft", true, -1);
  EXPECT_EQ(outcome.summary.resumed_from_step, 0);
  EXPECT_EQ(outcome.summary.steps, 9);
}

TEST(Trainer, ResumingACompletedRunTakesNoStep) {
  TempDir dir;
  const auto first = train_regression(dir.path(), "sft", false, -1);
  const auto again = train_regression(dir.path(), "sft", true, -1);
  EXPECT_EQ(again.summary.resumed_from_step, 9);
  EXPECT_EQ(again.summary.steps, 9);
  EXPECT_EQ(again.summary.final_loss, first.summary.final_loss);
  for (std::size_t i = 0; i < first.parameters.size(); ++i) {
    EXPECT_TRUE(torch::equal(again.parameters[i], first.parameters[i]));
  }
}

TEST(Trainer, IncompatibleCheckpointNamesTheFileAndTheMismatch) {
  TempDir dir;
  train_regression(dir.path(), "sft", false, -1);
  const std::string state_path = (dir.path() / "checkpoint" / "state.json").string();
  EXPECT_ERROR(train_regression(dir.path(), "mlm", true, -1), state_path, "stage", "'sft'");
  EXPECT_ERROR(train_regression(dir.path(), "sft", true, -1, /*hidden_size=*/6), state_path, "hidden.weight",
               "shape [8, 4] in the checkpoint but [6, 4] in the model");
}

TEST(Trainer, InterruptedCheckpointSwapIsRecovered) {
  TempDir dir;
  const auto first = train_regression(dir.path(), "sft", false, -1);
  // As if killed between the save's two renames: the complete checkpoint sits under its temporary name.
  fs::rename(dir.path() / "checkpoint", dir.path() / "checkpoint.old-12345");
  const auto again = train_regression(dir.path(), "sft", true, -1);
  EXPECT_EQ(again.summary.resumed_from_step, 9);
  EXPECT_TRUE(fs::exists(dir.path() / "checkpoint" / "state.json"));
  EXPECT_FALSE(fs::exists(dir.path() / "checkpoint.old-12345"));
}

}  // namespace
}  // namespace disranker
