// disranker generate: text from a decoder LLM, as llama2.c's `run` does it: the prompt encoded with BOS, then
// one token at a time (greedy, or llama2.c's temperature / top-p sampler with its xorshift seed), stopping at
// BOS, EOS or the token budget; the text goes to stdout, piece by piece as llama2.c prints it, then a
// newline.
//
// Models: a llama2.c .bin (legacy or version-1 float32 export), or a Hugging Face model directory
// (config.json with model_type llama or qwen2, and safetensors weights). --max-new-tokens counts the tokens
// after the prompt; with no prompt it equals llama2.c's -n (steps), whose default is also 256.
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/command.h"
#include "core/error.h"
#include "model/hf_config.h"
#include "model/llama.h"
#include "model/llama2c_checkpoint.h"
#include "model/runtime.h"
#include "model/torch_tensors.h"
#include "text/llama2c_tokenizer.h"
#include "text/tokenizer.h"

namespace disranker::cli {
namespace {

namespace fs = std::filesystem;

// llama2.c's safe_printf: a piece that is one byte, neither printable nor white space, prints nothing.
void print_piece(const std::string& piece) {
  if (piece.empty()) return;
  if (piece.size() == 1) {
    const auto c = static_cast<unsigned char>(piece[0]);
    if (!(std::isprint(c) || std::isspace(c))) return;
  }
  std::fwrite(piece.data(), 1, piece.size(), stdout);
  std::fflush(stdout);
}

std::string format_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", value);
  return buffer;
}

struct GenerateCommand {
  std::string model_path;
  std::string tokenizer_path;
  std::string prompt;
  bool greedy = false;
  float temperature = 1.0f;
  float top_p = 0.9f;
  std::uint64_t seed = 0;
  std::int64_t max_new_tokens = 256;
  std::string device_name = "cpu";
  int threads = 0;

  void run() {
    const auto device = parse_device(device_name);
    set_torch_threads(threads);
    if (max_new_tokens < 1) throw Error("--max-new-tokens must be >= 1");
    if (!greedy && !(temperature >= 0)) throw Error("--temperature must be >= 0");
    if (!(top_p >= 0 && top_p <= 1)) throw Error("--top-p must be in [0, 1]");

    Decoder model{nullptr};
    const bool hf_dir = fs::is_directory(model_path);
    if (hf_dir) {
      const auto dir = load_hf_model_dir(model_path);
      const auto config =
          parse_decoder_config(dir.config.dump(), (fs::path(model_path) / "config.json").string());
      model = Decoder(config);  // with a score head, so that a ranking checkpoint's score.weight is accepted
      const auto report = model->load_hf_tensors(dir.tensors(), /*strict=*/true, model_path);
      for (const auto& name : report.missing) {
        if (name == "lm_head.weight") {
          throw Error(model_path, 0, "lm_head.weight",
                      "the checkpoint has no LM head (a ranking checkpoint?): it cannot generate text");
        }
      }
      if (tokenizer_path.empty()) tokenizer_path = model_path;
    } else {
      DecoderOptions options;
      options.score_head = false;
      model = load_llama2c_decoder(model_path, options);
    }
    if (tokenizer_path.empty()) throw Error("--tokenizer is required for a llama2.c .bin model");
    const auto tokenizer = load_tokenizer(tokenizer_path);
    const auto* llama2c = dynamic_cast<const Llama2cTokenizer*>(tokenizer.get());
    const auto& config = model->config();
    if (static_cast<std::int64_t>(tokenizer->vocab_size()) > config.vocab_size) {
      throw Error(tokenizer_path, 0, "",
                  "the tokenizer has " + std::to_string(tokenizer->vocab_size()) +
                      " tokens, the model only " + std::to_string(config.vocab_size));
    }
    model->to(device);
    model->eval();

    // The prompt, with BOS when the model has one (llama2.c: encode(prompt, bos=1, eos=0)).
    std::vector<std::int64_t> ids;
    if (llama2c != nullptr) {
      for (const auto id : llama2c->encode(prompt, /*bos=*/true, /*eos=*/false)) ids.push_back(id);
    } else {
      const auto bos = config.bos_token_id ? *config.bos_token_id : tokenizer->special().bos;
      if (bos >= 0) ids.push_back(bos);
      for (const auto id : tokenizer->encode(prompt)) ids.push_back(id);
    }
    if (ids.empty()) throw Error("--prompt is required: this model has no BOS token to start from");

    GenerateOptions options;
    options.max_new_tokens = max_new_tokens;
    options.sampling.temperature = greedy ? 0.0f : temperature;
    options.sampling.top_p = top_p;
    if (options.sampling.temperature > 0 && seed == 0) seed = static_cast<std::uint64_t>(std::time(nullptr));
    options.sampling.seed = seed;
    const auto add_stop = [&](std::int64_t id) {
      if (id >= 0) options.stop_tokens.push_back(id);
    };
    if (config.bos_token_id) add_stop(*config.bos_token_id);
    for (const auto id : config.eos_token_ids) add_stop(id);
    add_stop(tokenizer->special().bos);
    add_stop(tokenizer->special().eos);

    std::fprintf(stderr, "generate: %s (%lld layers, hidden %lld, vocab %lld), %s; %s%s\n",
                 model_path.c_str(), static_cast<long long>(config.num_hidden_layers),
                 static_cast<long long>(config.hidden_size), static_cast<long long>(config.vocab_size),
                 runtime_summary(device).c_str(), options.sampling.temperature == 0 ? "greedy" : "sampling",
                 options.sampling.temperature == 0
                     ? ""
                     : (", temperature " + format_number(options.sampling.temperature) + ", top-p " +
                        format_number(options.sampling.top_p) + ", seed " + std::to_string(seed))
                           .c_str());

    const auto start = std::chrono::steady_clock::now();
    std::vector<std::int64_t> generated;
    if (llama2c != nullptr) {
      // The prompt's own pieces first, then each new one as it comes, as llama2.c prints them.
      for (std::size_t i = 1; i < ids.size(); ++i) {
        print_piece(llama2c->decode_piece(static_cast<TokenId>(ids[i - 1]), static_cast<TokenId>(ids[i])));
      }
      std::int64_t prev = ids.back();
      generated = generate(*model, ids, options, [&](std::int64_t id) {
        print_piece(llama2c->decode_piece(static_cast<TokenId>(prev), static_cast<TokenId>(id)));
        prev = id;
        return true;
      });
    } else {
      generated = generate(*model, ids, options);
      std::vector<TokenId> all;
      for (std::size_t i = 0; i < ids.size(); ++i) all.push_back(static_cast<TokenId>(ids[i]));
      for (const auto id : generated) all.push_back(static_cast<TokenId>(id));
      print_piece(tokenizer->decode(all, /*skip_special=*/true));
    }
    std::fputs("\n", stdout);
    std::fflush(stdout);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "generated %zu tokens in %.2fs (%.1f tokens/s)\n", generated.size(), seconds,
                 seconds > 0 ? static_cast<double>(generated.size()) / seconds : 0.0);
  }
};

}  // namespace

void register_generate(CLI::App& app) {
  auto command = std::make_shared<GenerateCommand>();
  CLI::App* sub =
      app.add_subcommand("generate", "Generate text with a decoder LLM (llama2.c .bin or HF directory)");
  sub->add_option("--model", command->model_path,
                  "llama2.c .bin checkpoint, or a Hugging Face model directory (llama / qwen2)")
      ->required();
  sub->add_option(
      "--tokenizer", command->tokenizer_path,
      "Tokenizer (llama2.c tokenizer .bin, tokenizer.json, or a directory); default: the model directory");
  sub->add_option("--prompt", command->prompt, "Text to continue (encoded after BOS)");
  auto* greedy = sub->add_flag("--greedy", command->greedy, "Greedy argmax decoding (llama2.c's -t 0)");
  sub->add_option("--temperature", command->temperature, "Sampling temperature; 0 is greedy")
      ->capture_default_str()
      ->excludes(greedy);
  sub->add_option("--top-p", command->top_p, "Nucleus sampling threshold; 0 or 1 samples from everything")
      ->capture_default_str();
  sub->add_option("--seed", command->seed, "Sampler seed (llama2.c's xorshift); 0: from the clock, logged")
      ->capture_default_str();
  sub->add_option("--max-new-tokens", command->max_new_tokens, "Tokens to generate after the prompt")
      ->capture_default_str();
  sub->add_option("--device", command->device_name, "cpu, cuda or cuda:N")->capture_default_str();
  sub->add_option("--threads", command->threads, "Intra-op threads; 0: one per core")->capture_default_str();
  sub->callback([command] { command->run(); });
}

}  // namespace disranker::cli
