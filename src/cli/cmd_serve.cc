// disranker serve: a model directory (the distilled student) as an HTTP reranking service (docs/serve.md).
// The server, request parsing and batching live in src/serve without libtorch; this file binds a Ranker to
// their Scorer interface and handles SIGTERM / SIGINT (finish the requests in flight, then exit).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/command.h"
#include "cli/engine_option.h"
#include "core/error.h"
#include "infer/score_pool.h"
#include "model/ranker.h"
#include "model/runtime.h"
#include "serve/scorer.h"
#include "serve/server.h"

namespace disranker::cli {
namespace {

// The write end of the pipe the signal handler reports SIGTERM / SIGINT on (see ServeCommand::execute).
int stop_pipe[2] = {-1, -1};
extern "C" void on_stop_signal(int signal_number) {
  const char byte = static_cast<char>(signal_number);
  (void)!write(stop_pipe[1], &byte, 1);  // async-signal-safe
}

// Binds a model to the server's Scorer: the fast engine (BERT students on the CPU) or a libtorch Ranker. The
// server applies the score transform itself (TEI's raw_scores asks for raw ones), so the model is asked for
// raw scores and the transform kept here.
class ModelScorer : public serve::Scorer {
 public:
  ModelScorer(std::unique_ptr<BertEngine> engine, std::string name)
      : engine_(std::move(engine)), name_(std::move(name)) {
    transform_ = engine_->manifest().score;
    encoder_ = engine_.get();
    raw_score_ = [this](std::span<const EncodedPair> pairs) { return engine_->score_raw(pairs); };
  }
  ModelScorer(std::unique_ptr<Ranker> ranker, std::string name)
      : ranker_(std::move(ranker)), name_(std::move(name)) {
    transform_ = ranker_->manifest().score;
    ranker_->manifest().score = ScoreTransform{};
    ranker_scorer_ = std::make_unique<RankerPairScorer>(*ranker_);
    encoder_ = ranker_scorer_.get();
    raw_score_ = [this](std::span<const EncodedPair> pairs) { return ranker_->score(pairs, pairs.size()); };
  }

  EncodedPair encode(const std::string& query, const serve::ScoreRequestDoc& doc,
                     std::size_t max_tokens_per_doc) override {
    return encoder_->encode(query, doc.title, doc.text, max_tokens_per_doc);
  }

  std::vector<double> score(std::span<const EncodedPair> pairs) override { return raw_score_(pairs); }

  double transform(double raw) const override { return transform_.apply(raw); }
  std::string model_name() const override { return name_; }

 private:
  std::unique_ptr<BertEngine> engine_;
  std::unique_ptr<Ranker> ranker_;
  std::unique_ptr<PairScorer> ranker_scorer_;
  const PairScorer* encoder_ = nullptr;
  std::function<std::vector<double>(std::span<const EncodedPair>)> raw_score_;
  std::string name_;
  ScoreTransform transform_;
};

struct ServeCommand {
  std::string model_dir;
  std::string device = "cpu";
  int torch_threads = 0;
  std::string engine = "auto";
  std::string precision = "fp32";
  serve::ServeOptions options;

  void execute() {
    for (const char* file : {"config.json", "model.safetensors"}) {
      if (!std::filesystem::exists(std::filesystem::path(model_dir) / file)) {
        throw Error((std::filesystem::path(model_dir) / file).string(), 0, "",
                    "missing: --model must be a model directory (config.json, model.safetensors, tokenizer)");
      }
    }
    set_torch_threads(torch_threads);
    const std::string name = std::filesystem::path(model_dir).lexically_normal().string();
    BertEngineOptions engine_options;
    engine_options.threads = torch_threads;  // the batching thread scores: it needs its own setting
    engine_options.precision = parse_precision(precision);
    auto fast = open_fast_engine(engine, model_dir, device, "serve", engine_options);
    std::unique_ptr<ModelScorer> scorer_ptr =
        fast ? std::make_unique<ModelScorer>(std::move(fast), name)
             : std::make_unique<ModelScorer>(Ranker::load(model_dir, parse_device(device)), name);
    ModelScorer& scorer = *scorer_ptr;

    // SIGTERM / SIGINT stop the server; listen() returns after the requests in flight are answered. A handler
    // (not a blocked mask and sigwait) because threads that libraries start themselves (OpenMP's team for the
    // fast engine) do not keep our mask: whichever thread takes the signal, the handler writes its number to
    // a pipe, and a waiter thread reads it and stops the server. Byte 0 wakes the waiter without a signal.
    if (pipe(stop_pipe) != 0) throw Error("serve: cannot create a pipe for signal handling");
    struct sigaction action = {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGINT, &action, nullptr);
    serve::Server server(scorer, options);
    std::thread waiter([&] {
      char signal_number = 0;
      while (read(stop_pipe[0], &signal_number, 1) < 0 && errno == EINTR) {
      }
      if (signal_number != 0)
        std::fprintf(stderr, "serve: signal %d: finishing the requests in flight\n", signal_number);
      server.stop();
    });
    const auto wake_waiter = [&waiter] {
      const char none = 0;
      (void)!write(stop_pipe[1], &none, 1);
      waiter.join();
    };
    std::fprintf(stderr, "serve: %s on http://%s:%d (POST /rerank, GET /health, GET /metrics)\n",
                 model_dir.c_str(), options.host.c_str(), options.port);
    try {
      server.listen();
    } catch (...) {
      wake_waiter();
      throw;
    }
    // listen() also returns when stop() came from elsewhere: wake the waiter if it is still waiting.
    wake_waiter();
    std::fprintf(stderr, "serve: stopped\n");
  }
};

}  // namespace

void register_serve(CLI::App& app) {
  auto command = std::make_shared<ServeCommand>();
  auto& o = command->options;
  CLI::App* sub = app.add_subcommand(
      "serve",
      "Serve a model directory (the distilled student) over HTTP: POST /rerank (Cohere/Jina shape, TEI's "
      "{query, texts}, or {queries: [...]}), GET /health, GET /metrics (Prometheus). Requests are batched "
      "across clients by a token budget. SIGTERM or Ctrl-C finishes the requests in flight and exits.\n"
      "Example: disranker serve --model runs/quickstart/student --port 8080 & curl -s localhost:8080/rerank "
      "-d "
      "'{\"query\": \"what is a tissue\", \"documents\": [\"Tissue is a cellular level\", \"A cat\"]}'");
  sub->add_option("--model", command->model_dir,
                  "Model directory (config.json, model.safetensors, tokenizer)")
      ->required();
  sub->add_option("--host", o.host, "Address to listen on")->capture_default_str();
  sub->add_option("--port", o.port, "Port (0: any free port)")->capture_default_str();
  sub->add_option("--device", command->device, "cpu, cuda or cuda:N")->capture_default_str();
  sub->add_option("--threads", command->torch_threads,
                  "Model threads, libtorch or the fast engine (0: one per core)")
      ->capture_default_str();
  sub->add_option("--engine", command->engine, kEngineHelp)->capture_default_str();
  sub->add_option("--precision", command->precision, kPrecisionHelp)->capture_default_str();
  sub->add_option("--http-threads", o.threads, "HTTP worker threads")->capture_default_str();
  sub->add_option("--max-documents", o.max_documents, "Most documents per query (more: 422)")
      ->capture_default_str();
  sub->add_option("--max-query-bytes", o.max_query_bytes, "Longest query in bytes (longer: 422)")
      ->capture_default_str();
  sub->add_option("--max-body-bytes", o.max_body_bytes, "Largest request body (larger: 413)")
      ->capture_default_str();
  sub->add_option("--batch-tokens", o.batch_tokens, "Token budget of one model call")->capture_default_str();
  sub->add_option("--batch-pairs", o.batch_pairs, "Most pairs in one model call")->capture_default_str();
  sub->add_option("--max-wait-ms", o.max_wait_ms, "How long a batch waits for more requests")
      ->capture_default_str();
  sub->callback([command]() { command->execute(); });
}

}  // namespace disranker::cli
