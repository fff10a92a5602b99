// disranker serve: a model directory (the distilled student) as an HTTP reranking service (docs/serve.md).
// The server, request parsing and batching live in src/serve without libtorch; this file binds a Ranker to
// their Scorer interface and handles SIGTERM / SIGINT (finish the requests in flight, then exit).
#include <pthread.h>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/command.h"
#include "core/error.h"
#include "model/ranker.h"
#include "model/runtime.h"
#include "serve/scorer.h"
#include "serve/server.h"

namespace disranker::cli {
namespace {

// Scores with a Ranker. Ranker::score applies the model's score transform; the server applies it itself
// (TEI's raw_scores asks for raw ones), so the ranker is switched to raw scores and the transform kept here.
class RankerScorer : public serve::Scorer {
 public:
  RankerScorer(std::unique_ptr<Ranker> ranker, std::string name)
      : ranker_(std::move(ranker)), name_(std::move(name)) {
    transform_ = ranker_->manifest().score;
    ranker_->manifest().score = ScoreTransform{};
    model_max_length_ = ranker_->manifest().max_length;
  }

  std::vector<double> score(const serve::PairBatch& batch, std::size_t& tokens) override {
    set_budget(batch.max_tokens_per_doc);
    std::vector<EncodedPair> pairs;
    pairs.reserve(batch.docs.size());
    tokens = 0;
    for (std::size_t i = 0; i < batch.docs.size(); ++i) {
      pairs.push_back(ranker_->encode(batch.queries[i], batch.docs[i].title, batch.docs[i].text));
      tokens += pairs.back().ids.size();
    }
    return ranker_->score(pairs, pairs.size());
  }

  std::size_t count_tokens(const std::string& query, const serve::ScoreRequestDoc& doc) override {
    set_budget(0);
    return ranker_->encode(query, doc.title, doc.text).ids.size();
  }

  double transform(double raw) const override { return transform_.apply(raw); }
  std::string model_name() const override { return name_; }

 private:
  // max_tokens_per_doc caps the pair budget for one batch (the query is kept, the summary truncated first).
  void set_budget(std::size_t max_tokens_per_doc) {
    std::int64_t budget = model_max_length_;
    if (max_tokens_per_doc > 0)
      budget = std::min<std::int64_t>(budget, static_cast<std::int64_t>(max_tokens_per_doc));
    ranker_->manifest().max_length = budget;
  }

  std::unique_ptr<Ranker> ranker_;
  std::string name_;
  ScoreTransform transform_;
  std::int64_t model_max_length_ = 0;
};

struct ServeCommand {
  std::string model_dir;
  std::string device = "cpu";
  int torch_threads = 0;
  serve::ServeOptions options;

  void execute() {
    for (const char* file : {"config.json", "model.safetensors"}) {
      if (!std::filesystem::exists(std::filesystem::path(model_dir) / file)) {
        throw Error((std::filesystem::path(model_dir) / file).string(), 0, "",
                    "missing: --model must be a model directory (config.json, model.safetensors, tokenizer)");
      }
    }
    set_torch_threads(torch_threads);
    auto ranker = Ranker::load(model_dir, parse_device(device));
    RankerScorer scorer(std::move(ranker), std::filesystem::path(model_dir).lexically_normal().string());

    // SIGTERM / SIGINT are taken by a thread that stops the server; listen() returns after the requests in
    // flight are answered. Blocked before the server's threads start, so that they inherit the mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    serve::Server server(scorer, options);
    std::thread waiter([&] {
      int signal_number = 0;
      sigwait(&signals, &signal_number);
      std::fprintf(stderr, "serve: signal %d: finishing the requests in flight\n", signal_number);
      server.stop();
    });
    std::fprintf(stderr, "serve: %s on http://%s:%d (POST /rerank, GET /health, GET /metrics)\n",
                 model_dir.c_str(), options.host.c_str(), options.port);
    try {
      server.listen();
    } catch (...) {
      pthread_kill(waiter.native_handle(), SIGTERM);  // wake the waiter so that it can be joined
      waiter.join();
      throw;
    }
    // listen() also returns when stop() came from elsewhere: wake the waiter if it is still waiting.
    pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
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
  sub->add_option("--threads", command->torch_threads, "libtorch threads (0: one per core)")
      ->capture_default_str();
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
