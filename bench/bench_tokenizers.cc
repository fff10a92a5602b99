// Tokenizer throughput on a file of strings (one per line), with N threads each taking an interleaved share of the
// lines. Prints one JSON line: {"impl": "disranker", "threads", "strings", "bytes", "tokens", "seconds"} for the
// fastest of --repeat runs. bench/tokenizers.sh runs it beside Hugging Face's library on the same input.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "text/tokenizer.h"

int main(int argc, char** argv) {
  std::string tokenizer_path, input_path;
  std::size_t threads = 1, repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--tokenizer") tokenizer_path = argv[i + 1];
    else if (flag == "--input") input_path = argv[i + 1];
    else if (flag == "--threads") threads = std::stoul(argv[i + 1]);
    else if (flag == "--repeat") repeat = std::stoul(argv[i + 1]);
  }
  if (tokenizer_path.empty() || input_path.empty()) {
    std::cerr << "usage: bench_tokenizers --tokenizer PATH --input STRINGS.txt [--threads N] [--repeat R]\n";
    return 2;
  }
  try {
    const auto tokenizer = disranker::load_tokenizer(tokenizer_path);
    std::vector<std::string> lines;
    std::ifstream in(input_path);
    std::size_t bytes = 0;
    for (std::string line; std::getline(in, line);) bytes += line.size(), lines.push_back(std::move(line));

    double best = 1e300;
    std::size_t tokens = 0;
    for (std::size_t r = 0; r < repeat; ++r) {
      std::vector<std::size_t> counts(threads, 0);
      const auto start = std::chrono::steady_clock::now();
      std::vector<std::thread> workers;
      for (std::size_t t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
          std::size_t n = 0;
          for (std::size_t i = t; i < lines.size(); i += threads) n += tokenizer->encode(lines[i]).size();
          counts[t] = n;
        });
      }
      for (auto& w : workers) w.join();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      tokens = 0;
      for (auto c : counts) tokens += c;
    }
    std::printf("{\"impl\": \"disranker\", \"threads\": %zu, \"strings\": %zu, \"bytes\": %zu, \"tokens\": %zu, "
                "\"seconds\": %.6f}\n",
                threads, lines.size(), bytes, tokens, best);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
