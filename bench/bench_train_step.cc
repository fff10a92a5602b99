// The floor of training throughput: one optimiser step of each quickstart model on a fixed random batch, in
// plain libtorch (forward, loss, backward, AdamW), with no data loading, sampling, logging or checkpointing.
// The stage commands (cpt, sft, mlm, distill) are compared with it by bench/train_throughput.sh: their
// throughput divided by this one is the share of time spent in the model itself (1.0 = the pipeline costs
// nothing).
//
// Shapes follow the quickstart (see bench/train_throughput.sh): decoder-mini teacher, bert-mini student.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <string>

#include "model/bert.h"
#include "model/hf_config.h"
#include "model/llama.h"
#include "model/runtime.h"

namespace disranker {
namespace {

std::string preset(const std::string& name) {
  return std::string(DISRANKER_SOURCE_DIR) + "/configs/models/" + name + ".json";
}

void set_threads(benchmark::State& state) {
  set_torch_threads(static_cast<int>(state.range(2)));
}

// Decoder, causal LM loss on every position (CPT's cost: its loss mask does not change the FLOPs).
void BM_DecoderLmStep(benchmark::State& state) {
  set_threads(state);
  const std::int64_t batch = state.range(0), length = state.range(1);
  torch::manual_seed(1);
  Decoder model(read_decoder_config(preset("decoder-mini")));
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-4));
  const auto vocab = model->config().vocab_size;
  const auto ids = torch::randint(vocab, {batch, length}, torch::kLong);
  for (auto _ : state) {
    const auto hidden = model->forward(ids);
    const auto logits = model->lm_logits(hidden.slice(1, 0, length - 1));
    const auto loss =
        torch::nn::functional::cross_entropy(logits.reshape({-1, vocab}), ids.slice(1, 1).reshape({-1}));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(batch * length), benchmark::Counter::kIsIterationInvariantRate);
}

// Decoder with the score head on the last token (SFT's cost per pair; the rank loss is negligible).
void BM_DecoderScoreStep(benchmark::State& state) {
  set_threads(state);
  const std::int64_t batch = state.range(0), length = state.range(1);
  torch::manual_seed(1);
  Decoder model(read_decoder_config(preset("decoder-mini")), DecoderOptions{.lm_head = false});
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-4));
  const auto ids = torch::randint(model->config().vocab_size, {batch, length}, torch::kLong);
  for (auto _ : state) {
    const auto scores = model->score(model->forward(ids));
    const auto loss =
        torch::nn::functional::cross_entropy(scores.view({-1, 8}), torch::zeros({batch / 8}, torch::kLong));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  state.counters["pairs/s"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(batch * length), benchmark::Counter::kIsIterationInvariantRate);
}

// BERT cross-encoder, score + MSE (distillation's cost per pair).
void BM_BertScoreStep(benchmark::State& state) {
  set_threads(state);
  const std::int64_t batch = state.range(0), length = state.range(1);
  torch::manual_seed(1);
  BertRanker model(read_bert_config(preset("bert-mini")));
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-4));
  const auto ids = torch::randint(model->config().vocab_size, {batch, length}, torch::kLong);
  const auto target = torch::randn({batch});
  for (auto _ : state) {
    const auto loss = torch::mse_loss(model->forward(ids), target);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  state.counters["pairs/s"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(batch * length), benchmark::Counter::kIsIterationInvariantRate);
}

// BERT MLM: the head on 15% of the positions only (MLM's cost).
void BM_BertMlmStep(benchmark::State& state) {
  set_threads(state);
  const std::int64_t batch = state.range(0), length = state.range(1);
  torch::manual_seed(1);
  BertRanker model(read_bert_config(preset("bert-mini")), BertHeads{.ranking = false, .mlm = true});
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-4));
  const auto vocab = model->config().vocab_size;
  const auto ids = torch::randint(vocab, {batch, length}, torch::kLong);
  const auto chosen = torch::rand({batch, length}) < 0.15;
  const auto targets = ids.masked_select(chosen);
  for (auto _ : state) {
    const auto hidden = model->encode(ids);
    const auto picked = hidden.index({chosen});
    const auto loss = torch::nn::functional::cross_entropy(model->mlm_logits(picked), targets);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(batch * length), benchmark::Counter::kIsIterationInvariantRate);
}

// Args: batch, sequence length, threads.
BENCHMARK(BM_DecoderLmStep)
    ->Args({16, 128, 2})
    ->Args({16, 128, 1})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(5);
BENCHMARK(BM_DecoderScoreStep)
    ->Args({32, 64, 2})
    ->Args({32, 64, 1})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(5);
BENCHMARK(BM_BertScoreStep)->Args({32, 64, 2})->Args({32, 64, 1})->Unit(benchmark::kMillisecond)->MinTime(5);
BENCHMARK(BM_BertMlmStep)->Args({32, 128, 2})->Args({32, 128, 1})->Unit(benchmark::kMillisecond)->MinTime(5);

}  // namespace
}  // namespace disranker

BENCHMARK_MAIN();
