// The HTTP side of `disranker serve` (cpp-httplib): POST /rerank, GET /health, GET /metrics (docs/serve.md).
//
// Request threads (httplib's pool of options.threads) parse and validate a request, submit one pair group per
// query to the Batcher and wait for its scores; every failure is answered with
// {"error": {"status": ..., "message": ...}}, unknown routes and wrong methods included.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "serve/metrics.h"
#include "serve/scorer.h"

namespace disranker::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (see Server::port())
  std::size_t max_documents = 1000;
  std::size_t max_query_bytes = 2048;
  std::size_t max_body_bytes = 8 << 20;
  std::size_t batch_tokens = 16384;
  std::size_t batch_pairs = 32;  // bench/serve_load.sh: 32 beat 64 and 256 (less padding, flat memory)
  int max_wait_ms = 2;
  int threads = 8;
};

class Server {
 public:
  Server(Scorer& scorer, ServeOptions options);
  ~Server();  // stop(); the thread in listen() must have returned
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and serves until stop(); then finishes the requests in flight (and the model work they wait for)
  // and returns. Throws std::runtime_error when the address cannot be bound. Call once.
  void listen();
  // True from the moment the socket accepts connections until listen() is done (after stop(), still true
  // while the requests in flight finish).
  bool listening() const;
  // The bound port: options.port, or the port the system chose when it was 0. Valid once listening().
  int port() const;
  // Stops accepting connections and makes listen() return once the requests in flight are answered. Does not
  // wait for that; callable from any thread (a signal-watching one), also before listen() (which then returns
  // at once) and more than once.
  void stop();

  const Metrics& metrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace disranker::serve
