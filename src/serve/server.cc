#include "serve/server.h"

#include <httplib.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "serve/api.h"
#include "serve/batcher.h"

namespace disranker::serve {
namespace {

using Clock = std::chrono::steady_clock;

// When the request on this thread arrived: httplib runs the pre-routing handler, the route's handler and the
// logger of one request on the same pool thread, and offers no other place to keep it.
thread_local std::optional<Clock::time_point> request_start;

struct Route {
  const char* path;
  const char* method;
};
constexpr Route kRoutes[] = {{"/rerank", "POST"}, {"/health", "GET"}, {"/metrics", "GET"}};

// A metrics label from a fixed set, so that clients probing random paths cannot grow the series without
// bound.
std::string route_label(const std::string& path) {
  for (const Route& route : kRoutes)
    if (path == route.path) return path;
  return "other";
}

const char* allowed_method(const std::string& path) {
  for (const Route& route : kRoutes)
    if (path == route.path) return route.method;
  return nullptr;
}

const char* status_text(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 404:
      return "not found";
    case 405:
      return "method not allowed";
    case 408:
      return "request timeout";
    case 413:
      return "request body too large";
    case 414:
      return "request URI too long";
    case 416:
      return "range not satisfiable";
    case 422:
      return "unprocessable request";
    case 500:
      return "internal server error";
    case 503:
      return "service unavailable";
    default:
      return "error";
  }
}

// httplib 0.11 listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, fixed when Debian built the library):
// when more clients connect at once, the kernel drops their handshakes and they retry a second later (seen on
// loopback with 16 clients: 1 s stalls, and now and then a failed read). listen() again on the bound socket
// raises it.
class HttpServer : public httplib::Server {
 public:
  void raise_listen_backlog() { ::listen(svr_sock_.load(), SOMAXCONN); }
};

void reply_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(to_json_text(error_body(status, message)), "application/json");
}

ServeOptions validated(ServeOptions options) {
  const auto require = [](bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(std::string("serve options: ") + what);
  };
  require(options.port >= 0 && options.port <= 65535, "port must be in 0..65535");
  require(options.max_documents >= 1, "max_documents must be at least 1");
  require(options.max_query_bytes >= 1, "max_query_bytes must be at least 1");
  require(options.max_body_bytes >= 1, "max_body_bytes must be at least 1");
  require(options.batch_tokens >= 1, "batch_tokens must be at least 1");
  require(options.batch_pairs >= 1, "batch_pairs must be at least 1");
  require(options.max_wait_ms >= 0, "max_wait_ms must not be negative");
  require(options.threads >= 1, "threads must be at least 1");
  return options;
}

BatcherOptions batcher_options(const ServeOptions& options) {
  BatcherOptions batcher;
  batcher.max_tokens = options.batch_tokens;
  batcher.max_pairs = options.batch_pairs;
  batcher.max_wait = std::chrono::milliseconds(options.max_wait_ms);
  return batcher;
}

}  // namespace

struct Server::Impl {
  Impl(Scorer& scorer_in, ServeOptions options_in)
      : scorer(scorer_in),
        options(validated(std::move(options_in))),
        model(scorer.model_name()),
        batcher(scorer, batcher_options(options), &metrics) {
    limits.max_documents = options.max_documents;
    limits.max_query_bytes = options.max_query_bytes;
    limits.max_body_bytes = options.max_body_bytes;
    set_up_http();
  }

  void set_up_http();
  void handle_rerank(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& read);
  void handle_error(const httplib::Request& req, httplib::Response& res) const;

  Scorer& scorer;
  const ServeOptions options;
  const std::string model;
  RequestLimits limits;
  Metrics metrics;
  Batcher batcher;  // after metrics, which it records into
  HttpServer http;  // last: its handlers use everything above

  std::atomic<int> port{0};
  std::mutex state_mutex;
  bool listen_called = false;          // guarded by state_mutex
  bool stop_requested = false;         // guarded by state_mutex
  std::atomic<bool> in_listen{false};  // from the start of listen() to its end
  std::atomic<bool> bound{false};      // the socket is bound and listening (until listen() ends)
  std::mutex stop_mutex;               // one stop() at a time
  bool http_stopped = false;           // guarded by stop_mutex
};

void Server::Impl::set_up_http() {
  const auto threads = static_cast<std::size_t>(options.threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // httplib's default also sets SO_REUSEPORT, with which a second server on a busy port binds without an
  // error and takes half its connections. SO_REUSEADDR alone still allows a quick restart.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  // httplib writes a response's head and body separately: without TCP_NODELAY, Nagle's algorithm holds the
  // body back until the client's delayed ACK (40 ms on Linux) for every response.
  http.set_tcp_nodelay(true);
  // httplib answers a body whose Content-Length is over the limit with 413 before reading it; handle_rerank
  // stops a chunked one at the limit.
  http.set_payload_max_length(options.max_body_bytes);

  http.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    request_start = Clock::now();
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    // A request that failed before routing (a bad request line) has no start time: count it with no duration.
    const double seconds =
        request_start ? std::chrono::duration<double>(Clock::now() - *request_start).count() : 0.0;
    request_start.reset();
    metrics.record_request(route_label(req.path), res.status, seconds);
  });

  http.Post("/rerank", [this](const httplib::Request& req, httplib::Response& res,
                              const httplib::ContentReader& read) { handle_rerank(req, res, read); });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(to_json_text({{"status", "ok"}, {"model", model}}), "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.exposition(), "text/plain; version=0.0.4; charset=utf-8");
  });

  http.set_error_handler(
      httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
        handle_error(req, res);
        return httplib::Server::HandlerResponse::Handled;
      }));
  // A safety net: handle_rerank catches what it expects; anything else is still a JSON 500, never a crash.
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      message += std::string(": ") + e.what();
    } catch (...) {
    }
    reply_error(res, 500, message);
  });
}

// Every response with a status >= 400 passes here. Ours already have a JSON body; httplib's own (no route, a
// body over the limit, a malformed request line) get one.
void Server::Impl::handle_error(const httplib::Request& req, httplib::Response& res) const {
  if (!res.body.empty()) return;
  // httplib routes by method first, so a known path with the wrong method arrives as 404.
  if (const char* allowed = allowed_method(req.path); res.status == 404 && allowed != nullptr) {
    res.set_header("Allow", allowed);
    reply_error(res, 405, req.method + " " + req.path + ": method not allowed; use " + allowed);
    return;
  }
  std::string message = status_text(res.status);
  if (res.status == 404)
    message =
        "no route " + req.method + " " + req.path + " (routes: POST /rerank, GET /health, GET /metrics)";
  if (res.status == 413)
    message = "request body: over the limit max_body_bytes=" + std::to_string(options.max_body_bytes);
  reply_error(res, res.status, message);
}

// /rerank reads its body itself: httplib 0.11 enforces payload_max_length only on bodies with a
// Content-Length and would hold a chunked body of any size in memory; it would also parse a form-encoded body
// (curl -d) as a form.
void Server::Impl::handle_rerank(const httplib::Request& req, httplib::Response& res,
                                 const httplib::ContentReader& read) {
  if (req.is_multipart_form_data()) {
    reply_error(res, 415, "request body: multipart/form-data is not supported; send JSON");
    return;
  }
  std::string body;
  bool over_limit = false;
  const bool complete = read([&](const char* data, std::size_t length) {
    over_limit = body.size() + length > options.max_body_bytes;
    if (!over_limit) body.append(data, length);
    return !over_limit;
  });
  if (over_limit || res.status == 413) {  // httplib sets 413 itself for a Content-Length over the limit
    reply_error(res, 413,
                "request body: over the limit max_body_bytes=" + std::to_string(options.max_body_bytes));
    return;
  }
  if (!complete) {
    reply_error(res, 400, "request body: could not be read");
    return;
  }

  RerankRequest request;
  try {
    request = parse_rerank_request(body, limits);
  } catch (const ApiError& e) {
    reply_error(res, e.status(), e.what());
    return;
  }

  // Submit every query before waiting on any, so that the queries of a batch request share model calls.
  std::vector<std::future<GroupScores>> futures;
  futures.reserve(request.queries.size());
  for (const QueryRequest& query : request.queries) {
    PairGroup group;
    group.query = query.query;
    group.max_tokens_per_doc = query.max_tokens_per_doc;
    group.docs.reserve(query.documents.size());
    for (const RequestDocument& document : query.documents)
      group.docs.push_back({document.title.value_or(""), document.text});
    futures.push_back(batcher.submit(std::move(group)));
  }

  std::vector<QueryScores> scores;
  std::optional<ApiError> failure;
  for (std::future<GroupScores>& future : futures) {
    try {
      GroupScores group = future.get();
      scores.push_back({std::move(group.raw), group.tokens});
    } catch (const BatcherStopped& e) {
      if (!failure) failure.emplace(503, e.what());
    } catch (const std::exception& e) {
      if (!failure) failure.emplace(500, std::string("scoring failed: ") + e.what());
    } catch (...) {
      if (!failure) failure.emplace(500, "scoring failed: unknown error");
    }
  }
  if (failure) {
    reply_error(res, failure->status(), failure->what());
    return;
  }
  const auto transform = [this](double raw) { return scorer.transform(raw); };
  res.set_content(to_json_text(render_rerank_response(request, scores, transform, model)),
                  "application/json");
}

Server::Server(Scorer& scorer, ServeOptions options)
    : impl_(std::make_unique<Impl>(scorer, std::move(options))) {}

Server::~Server() {
  stop();
}

void Server::listen() {
  Impl& s = *impl_;
  {
    const std::lock_guard lock(s.state_mutex);
    if (s.listen_called) throw std::logic_error("Server::listen called twice");
    s.listen_called = true;
    if (s.stop_requested) {
      s.batcher.stop();
      return;
    }
    s.in_listen = true;
  }
  errno = 0;  // for the reason of a failed bind
  const int port = s.options.port == 0 ? s.http.bind_to_any_port(s.options.host)
                   : s.http.bind_to_port(s.options.host, s.options.port) ? s.options.port
                                                                         : -1;
  if (port < 0) {
    const std::string reason = errno != 0 ? std::strerror(errno) : "cannot bind";
    s.in_listen = false;
    s.batcher.stop();
    throw std::runtime_error("cannot listen on " + s.options.host + ":" + std::to_string(s.options.port) +
                             ": " + reason);
  }
  s.port = port;
  s.http.raise_listen_backlog();
  s.bound = true;
  // Returns after stop(), once httplib's pool has answered every request it accepted.
  s.http.listen_after_bind();
  s.bound = false;
  s.in_listen = false;
  s.batcher.stop();
}

bool Server::listening() const {
  return impl_->bound && impl_->http.is_running();
}

int Server::port() const {
  return impl_->port;
}

void Server::stop() {
  Impl& s = *impl_;
  const std::lock_guard stop_lock(s.stop_mutex);
  {
    const std::lock_guard lock(s.state_mutex);
    s.stop_requested = true;
  }
  if (s.http_stopped) return;
  // httplib's stop() does nothing until its accept loop runs: wait out the moment between bind and that loop
  // (or a bind that fails). A listen() that has not begun yet sees stop_requested instead.
  const auto serving = [&s] { return s.bound && s.http.is_running(); };
  while (s.in_listen && !serving()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (serving()) {
    s.http.stop();
    s.http_stopped = true;
  }
}

const Metrics& Server::metrics() const {
  return impl_->metrics;
}

}  // namespace disranker::serve
