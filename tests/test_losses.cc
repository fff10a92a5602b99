// The losses of src/train/losses.h, checked against independent references: values worked out by hand in the
// comments, hand-derived gradients, central finite differences (double precision) on random batches,
// libtorch's own cross entropy and BCE-with-logits on equivalent inputs, and the invariants of the formulas
// (masking, empty batches, α mixing, temperature scaling, RankNet's symmetry).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "test_util.h"
#include "train/losses.h"

namespace disranker {
namespace {

using Loss = std::function<torch::Tensor(const torch::Tensor& scores)>;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

double sigmoid(double x) {
  return 1 / (1 + std::exp(-x));
}

// [G, N] double tensor from rows.
torch::Tensor doubles(const std::vector<std::vector<double>>& rows) {
  std::vector<double> flat;
  for (const auto& row : rows) flat.insert(flat.end(), row.begin(), row.end());
  return torch::tensor(flat, torch::kDouble).view({static_cast<std::int64_t>(rows.size()), -1});
}

// [G, N] bool mask from rows of 0 / 1.
torch::Tensor mask(const std::vector<std::vector<int>>& rows) {
  std::vector<std::int64_t> flat;
  for (const auto& row : rows) flat.insert(flat.end(), row.begin(), row.end());
  return torch::tensor(flat, torch::kLong)
      .view({static_cast<std::int64_t>(rows.size()), -1})
      .to(torch::kBool);
}

torch::Tensor all_valid(const torch::Tensor& scores) {
  return torch::ones(scores.sizes(), torch::kBool);
}

double value(const torch::Tensor& loss) {
  return loss.item<double>();
}

// The gradient autograd gives for loss(scores).
torch::Tensor autograd_gradient(const Loss& loss, const torch::Tensor& scores) {
  auto leaf = scores.detach().clone().requires_grad_(true);
  loss(leaf).backward();
  return leaf.grad();
}

// Central finite differences of loss at scores (double), one entry at a time.
torch::Tensor numerical_gradient(const Loss& loss, const torch::Tensor& scores, double step = 1e-6) {
  auto point = scores.detach().clone();
  auto gradient = torch::zeros_like(point);
  auto flat_point = point.view(-1);
  auto flat_gradient = gradient.view(-1);
  for (std::int64_t k = 0; k < flat_point.numel(); ++k) {
    const double original = flat_point[k].item<double>();
    flat_point[k] = original + step;
    const double up = value(loss(point));
    flat_point[k] = original - step;
    const double down = value(loss(point));
    flat_point[k] = original;
    flat_gradient[k] = (up - down) / (2 * step);
  }
  return gradient;
}

void expect_tensor_near(const torch::Tensor& actual, const torch::Tensor& expected, double tolerance) {
  ASSERT_EQ(actual.sizes(), expected.sizes());
  const auto a = actual.to(torch::kDouble).contiguous().view(-1);
  const auto e = expected.to(torch::kDouble).contiguous().view(-1);
  for (std::int64_t k = 0; k < a.numel(); ++k) {
    EXPECT_NEAR(a[k].item<double>(), e[k].item<double>(), tolerance) << "entry " << k;
  }
}

// A random double batch: 3 groups of 5 documents, labels in {0, 1, 2}, about a quarter of the documents
// padded (the first two of each group always real), padded entries holding ordinary random numbers.
struct RandomBatch {
  torch::Tensor scores, teacher, labels, valid;
};

RandomBatch random_batch(std::uint64_t seed) {
  torch::manual_seed(seed);
  RandomBatch batch;
  batch.scores = torch::randn({3, 5}, torch::kDouble);
  batch.teacher = torch::randn({3, 5}, torch::kDouble) * 2;
  batch.labels = torch::randint(0, 3, {3, 5}, torch::kLong).to(torch::kDouble);
  batch.valid = torch::rand({3, 5}, torch::kDouble) > 0.25;
  batch.valid.narrow(1, 0, 2).fill_(true);
  return batch;
}

// Every loss of the header as a function of the (student) scores, for the checks that hold for all of them.
std::vector<std::pair<std::string, std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&,
                                                               const torch::Tensor&, const torch::Tensor&)>>>
every_loss() {
  using T = const torch::Tensor&;
  return {
      {"hinge", [](T s, T, T y, T v) { return pairwise_hinge_loss(s, y, v, 1.0); }},
      {"ranknet", [](T s, T, T y, T v) { return ranknet_loss(s, y, v); }},
      {"softmax", [](T s, T, T y, T v) { return listwise_softmax_loss(s, y, v); }},
      {"mse", [](T s, T, T y, T v) { return point_mse_loss(s, y, v); }},
      {"bce", [](T s, T, T y, T v) { return point_bce_loss(s, y, v, 2.0); }},
      {"margin-mse all", [](T s, T t, T, T v) { return margin_mse_loss(s, t, v, PairSelection::kAll); }},
      {"margin-mse pos-neg",
       [](T s, T t, T y, T v) { return margin_mse_loss(s, t, v, PairSelection::kPositiveNegative, y); }},
      {"hybrid", [](T s, T t, T, T v) { return hybrid_distill_loss(s, t, v, 0.3); }},
      {"kl", [](T s, T t, T, T v) { return listwise_kl_loss(s, t, v, 1.0); }},
      {"kl tau 3", [](T s, T t, T, T v) { return listwise_kl_loss(s, t, v, 3.0); }},
  };
}

// The distillation losses of every_loss(), whose gradient with respect to the teacher is checked as well.
bool uses_teacher(const std::string& name) {
  return name != "hinge" && name != "ranknet" && name != "softmax" && name != "mse" && name != "bce";
}

// ---- Pairwise hinge
// ------------------------------------------------------------------------------------------

TEST(Losses, HingeHandValueAndGradient) {
  // s = [2.5, 0.5, 1.0], y = [2, 0, 1], margin 1. Pairs with y_i > y_j: (0,1) d = 2.0, (0,2) d = 1.5,
  // (2,1) d = 0.5. Terms max(0, 1 - d): 0, 0, 0.5; mean over 3 pairs = 1/6.
  // Only (2,1) is active: ∂/∂s2 = -1/3, ∂/∂s1 = +1/3, ∂/∂s0 = 0.
  const auto scores = doubles({{2.5, 0.5, 1.0}});
  const auto labels = doubles({{2, 0, 1}});
  const Loss loss = [&](const torch::Tensor& s) { return pairwise_hinge_loss(s, labels, all_valid(s), 1.0); };
  EXPECT_NEAR(value(loss(scores)), 1.0 / 6, 1e-12);
  expect_tensor_near(autograd_gradient(loss, scores), doubles({{0, 1.0 / 3, -1.0 / 3}}), 1e-12);
}

TEST(Losses, HingeIsZeroOnlyWhenEveryPairClearsTheMargin) {
  const auto scores = doubles({{2.5, 0.5, 1.0}});
  const auto labels = doubles({{2, 0, 1}});
  const auto valid = all_valid(scores);
  // Margin 0: every pair is ordered correctly, so nothing is left, and no gradient either.
  const Loss margin_zero = [&](const torch::Tensor& s) { return pairwise_hinge_loss(s, labels, valid, 0.0); };
  EXPECT_EQ(value(margin_zero(scores)), 0.0);
  expect_tensor_near(autograd_gradient(margin_zero, scores), torch::zeros({1, 3}, torch::kDouble), 0);
  // Margin 0 with the top document pushed below the bottom one: d(0,1) = -0.5, d(0,2) = -1.0, d(2,1) = 0.5 →
  // terms 0.5, 1.0, 0 → mean 0.5.
  EXPECT_NEAR(value(pairwise_hinge_loss(doubles({{0.0, 0.5, 1.0}}), labels, valid, 0.0)), 0.5, 1e-12);
  // Margin 2: d = 2.0, 1.5, 0.5 → terms 0, 0.5, 1.5 → mean 2/3.
  EXPECT_NEAR(value(pairwise_hinge_loss(scores, labels, valid, 2.0)), 2.0 / 3, 1e-12);
}

TEST(Losses, PairLossesAverageOverThePairsOfTheWholeBatchNotOverGroups) {
  // Group 0: s = [0, 0], y = [1, 0]: one pair, term max(0, 1 - 0) = 1.
  // Group 1: s = [4, 2, 0], y = [2, 1, 0]: three pairs with d = 2, 4, 2, all terms 0.
  // Mean over the 4 pairs = 1/4 (a mean of group means would say 1/2).
  const auto scores = doubles({{0, 0, 0}, {4, 2, 0}});
  const auto labels = doubles({{1, 0, 0}, {2, 1, 0}});
  const auto valid = mask({{1, 1, 0}, {1, 1, 1}});
  EXPECT_NEAR(value(pairwise_hinge_loss(scores, labels, valid, 1.0)), 0.25, 1e-12);
}

// ---- RankNet
// -------------------------------------------------------------------------------------------------

TEST(Losses, RankNetHandValueAndGradient) {
  // s = [1, 0, 2], y = [1, 0, 0]: pairs (0,1) d = 1 and (0,2) d = -1.
  // L = [log(1 + e^-1) + log(1 + e^1)] / 2.
  // ∂/∂s0 = -[σ(-1) + σ(1)] / 2 = -1/2, ∂/∂s1 = σ(-1) / 2, ∂/∂s2 = σ(1) / 2.
  const auto scores = doubles({{1, 0, 2}});
  const auto labels = doubles({{1, 0, 0}});
  const Loss loss = [&](const torch::Tensor& s) { return ranknet_loss(s, labels, all_valid(s)); };
  EXPECT_NEAR(value(loss(scores)), (std::log(1 + std::exp(-1.0)) + std::log(1 + std::exp(1.0))) / 2, 1e-12);
  expect_tensor_near(autograd_gradient(loss, scores), doubles({{-0.5, sigmoid(-1) / 2, sigmoid(1) / 2}}),
                     1e-12);
}

TEST(Losses, RankNetIsLogTwoAtATieAndSymmetricUnderReversal) {
  const auto valid = mask({{1, 1}});
  EXPECT_NEAR(value(ranknet_loss(doubles({{0.7, 0.7}}), doubles({{1, 0}}), valid)), std::log(2.0), 1e-12);

  // log(1 + e^-d) - log(1 + e^d) = -d for every pair: reversing the labels (y → 2 - y reverses every pair
  // with different labels) changes the mean loss by exactly the mean score difference of the original pairs.
  const auto batch = random_batch(11);
  const auto reversed = 2 - batch.labels;
  const auto forward = value(ranknet_loss(batch.scores, batch.labels, batch.valid));
  const auto backward = value(ranknet_loss(batch.scores, reversed, batch.valid));
  double difference_sum = 0;
  int pairs = 0;
  for (std::int64_t g = 0; g < 3; ++g) {
    for (std::int64_t i = 0; i < 5; ++i) {
      for (std::int64_t j = 0; j < 5; ++j) {
        if (!batch.valid[g][i].item<bool>() || !batch.valid[g][j].item<bool>()) continue;
        if (batch.labels[g][i].item<double>() <= batch.labels[g][j].item<double>()) continue;
        difference_sum += batch.scores[g][i].item<double>() - batch.scores[g][j].item<double>();
        ++pairs;
      }
    }
  }
  ASSERT_GT(pairs, 0);
  EXPECT_NEAR(backward - forward, difference_sum / pairs, 1e-12);
  // Negating the scores as well gives back the original loss.
  EXPECT_NEAR(value(ranknet_loss(-batch.scores, reversed, batch.valid)), forward, 1e-12);
}

// ---- Listwise softmax
// ----------------------------------------------------------------------------------------

TEST(Losses, ListwiseSoftmaxHandValuesAndGradient) {
  // One positive: s = [1, 2, 3], y = [0, 0, 1]: L = -log(e^3 / (e + e^2 + e^3)) = log(1 + e^-1 + e^-2);
  // ∂L/∂s = softmax(s) - [0, 0, 1].
  const auto scores = doubles({{1, 2, 3}});
  const auto labels = doubles({{0, 0, 1}});
  const Loss loss = [&](const torch::Tensor& s) { return listwise_softmax_loss(s, labels, all_valid(s)); };
  EXPECT_NEAR(value(loss(scores)), std::log(1 + std::exp(-1.0) + std::exp(-2.0)), 1e-12);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  expect_tensor_near(autograd_gradient(loss, scores),
                     doubles({{std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z - 1}}), 1e-12);

  // Graded: s = [0, log 2, 0] → softmax = [1/4, 1/2, 1/4]; y = [2, 1, 0] → p = [2/3, 1/3, 0];
  // L = -(2/3 log 1/4 + 1/3 log 1/2) = 5/3 log 2.
  EXPECT_NEAR(
      value(listwise_softmax_loss(doubles({{0, std::log(2.0), 0}}), doubles({{2, 1, 0}}), mask({{1, 1, 1}}))),
      5.0 / 3 * std::log(2.0), 1e-12);
}

TEST(Losses, ListwiseSoftmaxWithOnePositiveIsCrossEntropyOnThePositive) {
  torch::manual_seed(3);
  const auto scores = torch::randn({4, 6}, torch::kDouble);
  const auto positive = torch::randint(0, 6, {4}, torch::kLong);
  const auto labels = torch::nn::functional::one_hot(positive, 6).to(torch::kDouble);
  const auto expected = torch::nn::functional::cross_entropy(scores, positive);
  EXPECT_NEAR(value(listwise_softmax_loss(scores, labels, all_valid(scores))), value(expected), 1e-12);
}

TEST(Losses, ListwiseSoftmaxSkipsGroupsWithoutAPositive) {
  // Group 1 has no positive: the batch mean is group 0's loss alone, log(1 + e^-1 + e^-2) as above.
  const auto scores = doubles({{1, 2, 3}, {5, -1, 0}});
  const auto labels = doubles({{0, 0, 1}, {0, 0, 0}});
  EXPECT_NEAR(value(listwise_softmax_loss(scores, labels, all_valid(scores))),
              std::log(1 + std::exp(-1.0) + std::exp(-2.0)), 1e-12);
}

// ---- Point-wise
// ----------------------------------------------------------------------------------------------

TEST(Losses, PointMseHandValueAndGradient) {
  // Real documents s = [1, 2], y = [0, 2] (the third is padding): L = ((1-0)² + (2-2)²) / 2 = 0.5;
  // ∂L/∂s = 2 (s - y) / 2 = [1, 0, 0].
  const auto scores = doubles({{1, 2, kNaN}});
  const auto targets = doubles({{0, 2, 5}});
  const auto valid = mask({{1, 1, 0}});
  const Loss loss = [&](const torch::Tensor& s) { return point_mse_loss(s, targets, valid); };
  EXPECT_NEAR(value(loss(scores)), 0.5, 1e-12);
  expect_tensor_near(autograd_gradient(loss, scores), doubles({{1, 0, 0}}), 1e-12);
}

TEST(Losses, PointBceHandValueAndGradient) {
  // s = [0, log 3], y = [1, 0] (max label 1): -log σ(0) = log 2, -log(1 - σ(log 3)) = -log(1/4) = 2 log 2;
  // L = 3/2 log 2; ∂L/∂s = (σ(s) - y) / 2 = [(1/2 - 1) / 2, (3/4 - 0) / 2] = [-1/4, 3/8].
  const auto scores = doubles({{0, std::log(3.0)}});
  const auto labels = doubles({{1, 0}});
  const Loss loss = [&](const torch::Tensor& s) { return point_bce_loss(s, labels, all_valid(s), 1.0); };
  EXPECT_NEAR(value(loss(scores)), 1.5 * std::log(2.0), 1e-12);
  expect_tensor_near(autograd_gradient(loss, scores), doubles({{-0.25, 0.375}}), 1e-12);
}

TEST(Losses, PointBceMatchesTorchBinaryCrossEntropyWithLogits) {
  // Graded labels 0..3 divided by max_label 3, padded entries dropped before torch's loss; large scores too.
  const auto batch = random_batch(5);
  const auto scores = batch.scores * 8;
  const auto labels = torch::randint(0, 4, {3, 5}, torch::kLong).to(torch::kDouble);
  const auto expected = torch::binary_cross_entropy_with_logits(scores.masked_select(batch.valid),
                                                                labels.masked_select(batch.valid) / 3.0);
  EXPECT_NEAR(value(point_bce_loss(scores, labels, batch.valid, 3.0)), value(expected), 1e-12);
}

// ---- Distillation
// --------------------------------------------------------------------------------------------

TEST(Losses, MarginMseHandValuesAndGradient) {
  // s = [1, 0, 2], t = [0.5, 0, 1]. All pairs i < j:
  //   (0,1): (1 - 0) - (0.5 - 0) = 0.5 → 0.25;  (0,2): (1 - 2) - (0.5 - 1) = -0.5 → 0.25;
  //   (1,2): (0 - 2) - (0 - 1) = -1 → 1.      Mean = 1.5 / 3 = 0.5.
  // With e = s - t = [0.5, 0, 1], L = 1/3 Σ_{i<j} (e_i - e_j)², ∂L/∂s_k = 2/3 Σ_{j≠k} (e_k - e_j):
  //   k=0: 2/3 (0.5 - 0.5) = 0;  k=1: 2/3 (-0.5 - 1) = -1;  k=2: 2/3 (0.5 + 1) = 1.
  const auto student = doubles({{1, 0, 2}});
  const auto teacher = doubles({{0.5, 0, 1}});
  const Loss loss = [&](const torch::Tensor& s) { return margin_mse_loss(s, teacher, all_valid(s)); };
  EXPECT_NEAR(value(loss(student)), 0.5, 1e-12);
  expect_tensor_near(autograd_gradient(loss, student), doubles({{0, -1, 1}}), 1e-12);

  // pos-neg with y = [1, 0, 0]: pairs (0,1), (0,2) → (0.25 + 0.25) / 2 = 0.25.
  EXPECT_NEAR(value(margin_mse_loss(student, teacher, all_valid(student), PairSelection::kPositiveNegative,
                                    doubles({{1, 0, 0}}))),
              0.25, 1e-12);
  // pos-neg with y = [1, 0, 1]: pairs (0,1) → 0.25 and (2,1): (2 - 0) - (1 - 0) = 1 → 1; the equal-label pair
  // (0,2) is left out: (0.25 + 1) / 2 = 0.625.
  EXPECT_NEAR(value(margin_mse_loss(student, teacher, all_valid(student), PairSelection::kPositiveNegative,
                                    doubles({{1, 0, 1}}))),
              0.625, 1e-12);
}

TEST(Losses, PosNegPairSelectionIgnoresPairsWithEqualLabels) {
  // The reference lists the pairs one by one: every pair i < j of real documents whose labels differ.
  const auto batch = random_batch(17);
  const auto loss = value(margin_mse_loss(batch.scores, batch.teacher, batch.valid,
                                          PairSelection::kPositiveNegative, batch.labels));
  double sum = 0;
  int pairs = 0;
  for (std::int64_t g = 0; g < 3; ++g) {
    for (std::int64_t i = 0; i < 5; ++i) {
      for (std::int64_t j = i + 1; j < 5; ++j) {
        if (!batch.valid[g][i].item<bool>() || !batch.valid[g][j].item<bool>()) continue;
        if (batch.labels[g][i].item<double>() == batch.labels[g][j].item<double>()) continue;
        const double gap = (batch.scores[g][i].item<double>() - batch.scores[g][j].item<double>()) -
                           (batch.teacher[g][i].item<double>() - batch.teacher[g][j].item<double>());
        sum += gap * gap;
        ++pairs;
      }
    }
  }
  ASSERT_GT(pairs, 0);
  EXPECT_NEAR(loss, sum / pairs, 1e-12);
}

TEST(Losses, HybridIsAlphaPointPlusOneMinusAlphaMargin) {
  // With s, t from MarginMseHandValuesAndGradient: point MSE = (0.25 + 0 + 1) / 3 = 5/12, margin-MSE = 1/2;
  // α = 0.25: 0.25 · 5/12 + 0.75 · 1/2 = 23/48.
  const auto student = doubles({{1, 0, 2}});
  const auto teacher = doubles({{0.5, 0, 1}});
  const auto valid = all_valid(student);
  EXPECT_NEAR(value(hybrid_distill_loss(student, teacher, valid, 0.25)), 23.0 / 48, 1e-12);

  const auto batch = random_batch(23);
  for (const auto pairs : {PairSelection::kAll, PairSelection::kPositiveNegative}) {
    const double point = value(point_mse_loss(batch.scores, batch.teacher, batch.valid));
    const double margin =
        value(margin_mse_loss(batch.scores, batch.teacher, batch.valid, pairs, batch.labels));
    for (const double alpha : {0.0, 0.3, 0.5, 1.0}) {
      EXPECT_DOUBLE_EQ(
          value(hybrid_distill_loss(batch.scores, batch.teacher, batch.valid, alpha, pairs, batch.labels)),
          alpha * point + (1 - alpha) * margin)
          << "alpha " << alpha;
    }
    EXPECT_EQ(value(hybrid_distill_loss(batch.scores, batch.teacher, batch.valid, 1.0, pairs, batch.labels)),
              point);
    EXPECT_EQ(value(hybrid_distill_loss(batch.scores, batch.teacher, batch.valid, 0.0, pairs, batch.labels)),
              margin);
  }
}

TEST(Losses, ListwiseKlHandValuesAndGradient) {
  // s = [0, 0], t = [log 3, 0], τ = 1: q = softmax(t) = [3/4, 1/4], p = softmax(s) = [1/2, 1/2];
  // KL(q‖p) = 3/4 log(3/2) + 1/4 log(1/2); ∂/∂s = p - q = [-1/4, 1/4].
  const auto student = doubles({{0, 0}});
  const auto teacher = doubles({{std::log(3.0), 0}});
  const auto valid = all_valid(student);
  const Loss tau_one = [&](const torch::Tensor& s) { return listwise_kl_loss(s, teacher, valid, 1.0); };
  EXPECT_NEAR(value(tau_one(student)), 0.75 * std::log(1.5) + 0.25 * std::log(0.5), 1e-12);
  expect_tensor_near(autograd_gradient(tau_one, student), doubles({{-0.25, 0.25}}), 1e-12);

  // τ = 2: q = softmax([log 3 / 2, 0]) = [√3, 1] / (1 + √3); L = 4 · KL(q‖[1/2, 1/2]); ∂/∂s = τ (p - q).
  const double r = std::sqrt(3.0);
  const double q0 = r / (1 + r), q1 = 1 / (1 + r);
  const Loss tau_two = [&](const torch::Tensor& s) { return listwise_kl_loss(s, teacher, valid, 2.0); };
  EXPECT_NEAR(value(tau_two(student)), 4 * (q0 * std::log(2 * q0) + q1 * std::log(2 * q1)), 1e-12);
  expect_tensor_near(autograd_gradient(tau_two, student), doubles({{2 * (0.5 - q0), 2 * (0.5 - q1)}}), 1e-12);
}

TEST(Losses, ListwiseKlIsZeroForAStudentEqualToTheTeacherAndScalesWithTemperature) {
  const auto batch = random_batch(29);
  const Loss same = [&](const torch::Tensor& s) {
    return listwise_kl_loss(s, batch.teacher, batch.valid, 2.0);
  };
  EXPECT_NEAR(value(same(batch.teacher)), 0.0, 1e-12);
  expect_tensor_near(autograd_gradient(same, batch.teacher), torch::zeros({3, 5}, torch::kDouble), 1e-12);
  // KL is shift invariant per group: a student that differs by a constant per group is still perfect.
  EXPECT_NEAR(value(same(batch.teacher + torch::tensor({1.0, -2.0, 5.0}, torch::kDouble).unsqueeze(1))), 0.0,
              1e-12);

  // KL_τ(s, t) = τ² · KL_1(s / τ, t / τ).
  for (const double tau : {0.5, 2.0, 4.0}) {
    EXPECT_NEAR(
        value(listwise_kl_loss(batch.scores, batch.teacher, batch.valid, tau)),
        tau * tau * value(listwise_kl_loss(batch.scores / tau, batch.teacher / tau, batch.valid, 1.0)), 1e-12)
        << "tau " << tau;
  }
}

// ---- Properties every loss shares
// ----------------------------------------------------------------------------

TEST(Losses, GradientsMatchCentralFiniteDifferences) {
  for (const std::uint64_t seed : {1, 2}) {
    const auto batch = random_batch(seed);
    for (const auto& [name, loss] : every_loss()) {
      SCOPED_TRACE(name + ", seed " + std::to_string(seed));
      const Loss of_scores = [&](const torch::Tensor& s) {
        return loss(s, batch.teacher, batch.labels, batch.valid);
      };
      expect_tensor_near(autograd_gradient(of_scores, batch.scores),
                         numerical_gradient(of_scores, batch.scores), 1e-7);
      if (!uses_teacher(name)) continue;
      const Loss of_teacher = [&](const torch::Tensor& t) {
        return loss(batch.scores, t, batch.labels, batch.valid);
      };
      expect_tensor_near(autograd_gradient(of_teacher, batch.teacher),
                         numerical_gradient(of_teacher, batch.teacher), 1e-7);
    }
  }
}

TEST(Losses, PaddedEntriesChangeNeitherValuesNorGradients) {
  // One group of 3 real documents, interleaved with 2 padded ones holding NaN / inf scores and labels, plus a
  // second group that is all padding: the same value and the same gradients as the compact [1, 3] group, and
  // an exact 0 gradient on every padded entry.
  const auto scores = doubles({{0.3, -1.2, 0.9}});
  const auto teacher = doubles({{1.0, 0.2, -0.4}});
  const auto labels = doubles({{1, 0, 2}});
  const auto padded_scores = doubles({{0.3, kNaN, -1.2, kInf, 0.9}, {kInf, -kInf, kNaN, 1, 2}});
  const auto padded_teacher = doubles({{1.0, kInf, 0.2, kNaN, -0.4}, {kNaN, 3, 4, 5, 6}});
  const auto padded_labels = doubles({{1, kNaN, 0, 7, 2}, {1, 2, kNaN, 0, 1}});
  const auto padded_valid = mask({{1, 0, 1, 0, 1}, {0, 0, 0, 0, 0}});
  const auto real = torch::tensor({0, 2, 4}, torch::kLong);
  for (const auto& [name, loss] : every_loss()) {
    SCOPED_TRACE(name);
    const Loss compact = [&](const torch::Tensor& s) { return loss(s, teacher, labels, all_valid(s)); };
    const Loss padded = [&](const torch::Tensor& s) {
      return loss(s, padded_teacher, padded_labels, padded_valid);
    };
    EXPECT_NEAR(value(padded(padded_scores)), value(compact(scores)), 1e-12);
    const auto gradient = autograd_gradient(padded, padded_scores);
    expect_tensor_near(gradient[0].index_select(0, real).unsqueeze(0), autograd_gradient(compact, scores),
                       1e-12);
    EXPECT_EQ(gradient.masked_select(padded_valid.logical_not()).abs().sum().item<double>(), 0.0);
    if (!uses_teacher(name)) continue;
    // The same for the teacher's gradient (it is a leaf of the graph when the teacher is trained jointly).
    const Loss compact_of_teacher = [&](const torch::Tensor& t) {
      return loss(scores, t, labels, all_valid(t));
    };
    const Loss padded_of_teacher = [&](const torch::Tensor& t) {
      return loss(padded_scores, t, padded_labels, padded_valid);
    };
    const auto teacher_gradient = autograd_gradient(padded_of_teacher, padded_teacher);
    expect_tensor_near(teacher_gradient[0].index_select(0, real).unsqueeze(0),
                       autograd_gradient(compact_of_teacher, teacher), 1e-12);
    EXPECT_EQ(teacher_gradient.masked_select(padded_valid.logical_not()).abs().sum().item<double>(), 0.0);
  }
}

TEST(Losses, NothingToAverageGivesZeroAndBackwardStillWorks) {
  // All labels equal: no pair with different labels, no group with a positive; only one real document per
  // group: no pair at all; nothing real: no group for KL.
  const auto scores = doubles({{0.5, -1.0, 2.0}, {1.5, 0.0, 3.0}});
  const auto same_labels = doubles({{0, 0, 0}, {0, 0, 0}});
  const auto one_real = mask({{1, 0, 0}, {0, 1, 0}});
  const auto none_real = mask({{0, 0, 0}, {0, 0, 0}});
  const auto valid = all_valid(scores);
  const auto teacher = scores * 2;
  const std::vector<std::pair<std::string, Loss>> empty_cases = {
      {"hinge", [&](const torch::Tensor& s) { return pairwise_hinge_loss(s, same_labels, valid, 1.0); }},
      {"ranknet", [&](const torch::Tensor& s) { return ranknet_loss(s, same_labels, valid); }},
      {"softmax", [&](const torch::Tensor& s) { return listwise_softmax_loss(s, same_labels, valid); }},
      {"margin-mse pos-neg",
       [&](const torch::Tensor& s) {
         return margin_mse_loss(s, teacher, valid, PairSelection::kPositiveNegative, same_labels);
       }},
      {"margin-mse all, one real document",
       [&](const torch::Tensor& s) { return margin_mse_loss(s, teacher, one_real); }},
      {"mse, nothing real", [&](const torch::Tensor& s) { return point_mse_loss(s, teacher, none_real); }},
      {"bce, nothing real",
       [&](const torch::Tensor& s) { return point_bce_loss(s, teacher, none_real, 1.0); }},
      {"kl, nothing real",
       [&](const torch::Tensor& s) { return listwise_kl_loss(s, teacher, none_real, 1.0); }},
  };
  for (const auto& [name, loss] : empty_cases) {
    SCOPED_TRACE(name);
    EXPECT_EQ(value(loss(scores)), 0.0);
    const auto gradient = autograd_gradient(loss, scores);  // backward() must not throw
    ASSERT_TRUE(gradient.defined());
    EXPECT_EQ(gradient.abs().sum().item<double>(), 0.0);
  }
  // Hybrid without pairs is α · point MSE.
  const double point = value(point_mse_loss(scores, teacher, one_real));
  EXPECT_GT(point, 0);
  EXPECT_DOUBLE_EQ(value(hybrid_distill_loss(scores, teacher, one_real, 0.4)), 0.4 * point);
}

TEST(Losses, Float32ScoresGiveTheDoubleResult) {
  const auto batch = random_batch(31);
  for (const auto& [name, loss] : every_loss()) {
    SCOPED_TRACE(name);
    const auto single = loss(batch.scores.to(torch::kFloat), batch.teacher.to(torch::kFloat),
                             batch.labels.to(torch::kFloat), batch.valid);
    EXPECT_EQ(single.scalar_type(), torch::kFloat);
    EXPECT_NEAR(value(single), value(loss(batch.scores, batch.teacher, batch.labels, batch.valid)), 1e-5);
  }
}

// ---- Dispatch by name, option checks
// -------------------------------------------------------------------------

TEST(Losses, RankLossDispatchesByName) {
  const auto batch = random_batch(37);
  const auto& [s, t, y, v] = batch;
  RankLossOptions options;
  options.margin = 0.7;
  options.max_label = 2.0;
  const std::vector<std::pair<std::string, torch::Tensor>> expected = {
      {"hinge", pairwise_hinge_loss(s, y, v, 0.7)}, {"ranknet", ranknet_loss(s, y, v)},
      {"softmax", listwise_softmax_loss(s, y, v)},  {"mse", point_mse_loss(s, y, v)},
      {"bce", point_bce_loss(s, y, v, 2.0)},
  };
  for (const auto& [name, reference] : expected) {
    options.name = name;
    EXPECT_EQ(value(rank_loss(options, s, y, v)), value(reference)) << name;
  }
  EXPECT_EQ(RankLossOptions().name, "softmax");
  (void)t;
}

TEST(Losses, DistillLossDispatchesByName) {
  const auto batch = random_batch(41);
  const auto& [s, t, y, v] = batch;
  DistillLossOptions options;
  options.alpha = 0.2;
  options.temperature = 1.5;
  options.pairs = PairSelection::kPositiveNegative;
  const std::vector<std::pair<std::string, torch::Tensor>> expected = {
      {"hybrid", hybrid_distill_loss(s, t, v, 0.2, PairSelection::kPositiveNegative, y)},
      {"margin-mse", margin_mse_loss(s, t, v, PairSelection::kPositiveNegative, y)},
      {"point-mse", point_mse_loss(s, t, v)},
      {"kl", listwise_kl_loss(s, t, v, 1.5)},
  };
  for (const auto& [name, reference] : expected) {
    options.name = name;
    EXPECT_EQ(value(distill_loss(options, s, t, v, y)), value(reference)) << name;
  }
  // Labels are needed only for pos-neg pairs.
  options.name = "hybrid";
  options.pairs = PairSelection::kAll;
  EXPECT_EQ(value(distill_loss(options, s, t, v)), value(hybrid_distill_loss(s, t, v, 0.2)));
  options.pairs = PairSelection::kPositiveNegative;
  EXPECT_ERROR(distill_loss(options, s, t, v), "", "", "need labels");
  EXPECT_EQ(DistillLossOptions().name, "hybrid");
}

TEST(Losses, ValidateNamesTheFlag) {
  RankLossOptions rank;
  for (const auto* name : {"hinge", "ranknet", "softmax", "mse", "bce"}) {
    rank.name = name;
    EXPECT_NO_THROW(validate(rank)) << name;
  }
  rank.name = "listnet";
  EXPECT_ERROR(validate(rank), "", "", "--loss must be one of hinge, ranknet, softmax, mse, bce");
  EXPECT_ERROR(validate(rank), "", "", "'listnet'");
  rank.name = "hinge";
  rank.margin = -0.1;
  EXPECT_ERROR(validate(rank), "", "", "--margin must be");
  rank.margin = 0;
  EXPECT_NO_THROW(validate(rank));
  rank.max_label = 0;
  EXPECT_ERROR(validate(rank), "", "", "--max-label must be");
  rank.max_label = kNaN;
  EXPECT_ERROR(validate(rank), "", "", "--max-label must be");
  rank.max_label = 4;
  rank.name = "kl";  // a distillation loss is not a rank loss
  EXPECT_ERROR(rank_loss(rank, doubles({{1}}), doubles({{1}}), mask({{1}})), "", "", "--loss must be one of");

  DistillLossOptions distill;
  for (const auto* name : {"hybrid", "margin-mse", "point-mse", "kl"}) {
    distill.name = name;
    EXPECT_NO_THROW(validate(distill)) << name;
  }
  distill.name = "mse";
  EXPECT_ERROR(validate(distill), "", "", "--loss must be one of hybrid, margin-mse, point-mse, kl");
  distill.name = "hybrid";
  for (const double alpha : {-0.01, 1.01, kNaN}) {
    distill.alpha = alpha;
    EXPECT_ERROR(validate(distill), "", "", "--alpha must be in [0, 1]");
  }
  for (const double alpha : {0.0, 1.0}) {
    distill.alpha = alpha;
    EXPECT_NO_THROW(validate(distill));
  }
  for (const double temperature : {0.0, -1.0, kInf}) {
    distill.temperature = temperature;
    EXPECT_ERROR(validate(distill), "", "", "--temperature must be");
  }
}

TEST(Losses, ParsePairSelection) {
  EXPECT_EQ(parse_pair_selection("all"), PairSelection::kAll);
  EXPECT_EQ(parse_pair_selection("pos-neg"), PairSelection::kPositiveNegative);
  EXPECT_ERROR(parse_pair_selection("positive"), "", "", "--pairs must be one of all, pos-neg");
}

TEST(Losses, MismatchedShapesAreErrors) {
  const auto scores = doubles({{1, 2, 3}});
  EXPECT_ERROR(ranknet_loss(scores, doubles({{1, 0}}), all_valid(scores)), "", "", "labels must have");
  EXPECT_ERROR(margin_mse_loss(scores, scores, mask({{1, 1}})), "", "", "valid mask must have");
  EXPECT_ERROR(point_mse_loss(scores.view(-1), scores.view(-1), all_valid(scores).view(-1)), "", "",
               "scores must be [groups, documents]");
}

}  // namespace
}  // namespace disranker
