// serve_load: a closed-loop load generator for `disranker serve` (bench/serve_load.sh drives it).
//
// Each of N clients keeps one keep-alive connection and sends the next request as soon as the previous answer
// arrives, so at most N requests are in flight: the load is bounded by construction and the latency it sees
// is the server's queueing + batching + model time. Every answer is checked (HTTP 200, one result per
// document); anything else counts as an error and is reported, never dropped. With --server-pid the server's
// resident memory (VmRSS) is sampled every 100 ms, and its peak (VmHWM) read at the end of each level.
//
// Input: a file of request bodies, one JSON object per line ({"query", "documents"}). Output: a Markdown
// table on stdout and, with --out, the same figures as JSON.
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Request {
  std::string body;
  std::size_t documents = 0;
};

std::vector<Request> read_requests(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::vector<Request> requests;
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    const auto json = nlohmann::json::parse(line, nullptr, false);
    if (json.is_discarded() || !json.is_object() || !json.contains("documents") ||
        !json["documents"].is_array())
      throw std::runtime_error(path + ":" + std::to_string(number) +
                               ": not a JSON object with a documents array");
    requests.push_back({line, json["documents"].size()});
  }
  if (requests.empty()) throw std::runtime_error(path + ": no requests");
  return requests;
}

// kB of a /proc/<pid>/status field (VmRSS, VmHWM); -1 when unreadable.
long proc_status_kb(int pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

double mb(long kb) {
  return static_cast<double>(kb) / 1024.0;
}

// Nearest-rank percentile of sorted values.
double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return std::nan("");
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

struct Answer {
  Clock::time_point at;  // when the answer (or the failure) came
  double latency_ms = 0;
  std::size_t documents = 0;
  std::string error;  // empty: HTTP 200 with one result per document
};

struct LevelResult {
  int clients = 0;
  double seconds = 0;
  std::size_t requests = 0, documents = 0, errors = 0;
  std::string first_error;
  double p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
  long rss_max_kb = -1, rss_end_kb = -1, hwm_kb = -1;
};

// One client: the requests of the file in turn, from its own offset, until `stop`.
void run_client(httplib::Client& client, const std::vector<Request>& requests, std::size_t offset,
                const std::atomic<bool>& stop, std::vector<Answer>& answers) {
  for (std::size_t i = offset; !stop.load(); ++i) {
    const Request& request = requests[i % requests.size()];
    const auto start = Clock::now();
    const auto response = client.Post("/rerank", request.body, "application/json");
    Answer answer;
    answer.at = Clock::now();
    answer.latency_ms = std::chrono::duration<double, std::milli>(answer.at - start).count();
    answer.documents = request.documents;
    if (!response) {
      answer.error = "connection: " + httplib::to_string(response.error());
    } else if (response->status != 200) {
      answer.error = "HTTP " + std::to_string(response->status) + ": " + response->body.substr(0, 200);
    } else {
      const auto json = nlohmann::json::parse(response->body, nullptr, false);
      if (json.is_discarded() || !json.contains("results") || json["results"].size() != request.documents)
        answer.error = "answer without one result per document";
    }
    answers.push_back(std::move(answer));
  }
}

// A closed loop of `clients` for warm-up + duration seconds. What counts is the answers that arrive inside
// the measured window (a standard closed-loop measurement: a slow server gets fewer answers, never a shorter
// window); requests still in flight when it ends are cancelled and not counted.
LevelResult run_level(const std::string& host, int port, const std::vector<Request>& requests, int clients,
                      double warmup_s, double duration_s, int server_pid) {
  const auto seconds = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  std::atomic<bool> stop{false};
  const auto n = static_cast<std::size_t>(clients);
  std::vector<std::unique_ptr<httplib::Client>> connections;
  std::vector<std::vector<Answer>> answers(n);
  for (std::size_t c = 0; c < n; ++c) {
    connections.push_back(std::make_unique<httplib::Client>(host, port));
    connections.back()->set_keep_alive(true);
    connections.back()->set_read_timeout(600, 0);
  }
  const auto measure_from = Clock::now() + seconds(warmup_s);
  const auto end = measure_from + seconds(duration_s);
  std::vector<std::thread> threads;
  for (std::size_t c = 0; c < n; ++c) {
    threads.emplace_back(run_client, std::ref(*connections[c]), std::cref(requests), c * requests.size() / n,
                         std::cref(stop), std::ref(answers[c]));
  }
  LevelResult level;
  level.clients = clients;
  while (Clock::now() < end) {
    if (server_pid > 0 && Clock::now() >= measure_from)
      level.rss_max_kb = std::max(level.rss_max_kb, proc_status_kb(server_pid, "VmRSS"));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop = true;
  for (auto& connection : connections) connection->stop();
  for (auto& t : threads) t.join();
  level.seconds = duration_s;
  std::vector<double> latencies;
  double sum = 0;
  for (const auto& client_answers : answers) {
    for (const Answer& a : client_answers) {
      if (a.at < measure_from || a.at > end) continue;
      if (!a.error.empty()) {
        if (level.errors++ == 0) level.first_error = a.error;
        continue;
      }
      latencies.push_back(a.latency_ms);
      level.documents += a.documents;
      sum += a.latency_ms;
    }
  }
  std::sort(latencies.begin(), latencies.end());
  level.requests = latencies.size();
  level.p50 = percentile(latencies, 50), level.p90 = percentile(latencies, 90);
  level.p99 = percentile(latencies, 99);
  level.max = latencies.empty() ? std::nan("") : latencies.back();
  level.mean = latencies.empty() ? std::nan("") : sum / static_cast<double>(latencies.size());
  if (server_pid > 0) {
    level.rss_end_kb = proc_status_kb(server_pid, "VmRSS");
    level.hwm_kb = proc_status_kb(server_pid, "VmHWM");
  }
  return level;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Closed-loop load test of `disranker serve`: N clients, each with one request in flight."};
  std::string host = "127.0.0.1", requests_path, out_path;
  int port = 8080, server_pid = 0;
  std::vector<int> levels{1, 4, 16};
  double warmup_s = 2, duration_s = 15;
  app.add_option("--host", host, "server address")->capture_default_str();
  app.add_option("--port", port, "server port")->capture_default_str();
  app.add_option("--requests", requests_path, "request bodies, one JSON object per line")->required();
  app.add_option("--clients", levels, "concurrency levels, run in turn")
      ->capture_default_str()
      ->delimiter(',');
  app.add_option("--warmup", warmup_s, "seconds per level before measuring")->capture_default_str();
  app.add_option("--duration", duration_s, "measured seconds per level")->capture_default_str();
  app.add_option("--server-pid", server_pid, "sample this process's memory (VmRSS, VmHWM)");
  app.add_option("--out", out_path, "also write the results as JSON");
  CLI11_PARSE(app, argc, argv);

  try {
    const auto requests = read_requests(requests_path);
    std::size_t documents = 0;
    for (const auto& r : requests) documents += r.documents;
    std::fprintf(stderr, "serve_load: %zu requests (%.1f documents each) against %s:%d\n", requests.size(),
                 static_cast<double>(documents) / static_cast<double>(requests.size()), host.c_str(), port);
    nlohmann::json json = nlohmann::json::array();
    std::printf(
        "| clients | requests | errors | queries/s | docs/s | p50 ms | p90 ms | p99 ms | max ms | server RSS "
        "MB (max / end / peak) |\n");
    std::printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    std::size_t total_errors = 0;
    for (int clients : levels) {
      std::fprintf(stderr, "serve_load: %d client(s): %.0f s warm-up, %.0f s measured\n", clients, warmup_s,
                   duration_s);
      const auto l = run_level(host, port, requests, clients, warmup_s, duration_s, server_pid);
      total_errors += l.errors;
      const double qps = static_cast<double>(l.requests) / l.seconds;
      const double dps = static_cast<double>(l.documents) / l.seconds;
      std::printf("| %d | %zu | %zu | %.1f | %.0f | %.1f | %.1f | %.1f | %.1f | %.0f / %.0f / %.0f |\n",
                  clients, l.requests, l.errors, qps, dps, l.p50, l.p90, l.p99, l.max, mb(l.rss_max_kb),
                  mb(l.rss_end_kb), mb(l.hwm_kb));
      std::fflush(stdout);
      if (l.errors > 0) std::fprintf(stderr, "serve_load: first error: %s\n", l.first_error.c_str());
      if (l.requests < 10)
        std::fprintf(stderr, "serve_load: only %zu answers in the window: lengthen --duration\n", l.requests);
      json.push_back({{"clients", clients},
                      {"seconds", l.seconds},
                      {"requests", l.requests},
                      {"documents", l.documents},
                      {"errors", l.errors},
                      {"first_error", l.first_error},
                      {"queries_per_s", qps},
                      {"documents_per_s", dps},
                      {"p50_ms", l.p50},
                      {"p90_ms", l.p90},
                      {"p99_ms", l.p99},
                      {"max_ms", l.max},
                      {"mean_ms", l.mean},
                      {"rss_max_kb", l.rss_max_kb},
                      {"rss_end_kb", l.rss_end_kb},
                      {"rss_peak_kb", l.hwm_kb}});
    }
    if (!out_path.empty()) {
      const std::string tmp = out_path + ".tmp";
      std::ofstream(tmp) << json.dump(2) << "\n";
      std::rename(tmp.c_str(), out_path.c_str());
    }
    return total_errors == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "serve_load: %s\n", e.what());
    return 2;
  }
}
