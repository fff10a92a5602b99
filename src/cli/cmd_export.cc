// disranker export: writes a BERT cross-encoder model directory in a format other runtimes serve. Today one
// format: ONNX (ONNX Runtime, Vespa, TEI), fp32 or ONNX Runtime's dynamic int8 form (src/export/onnx_bert.h).
// Needs no libtorch, so it is in every build.
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "cli/command.h"
#include "core/error.h"
#include "export/onnx_bert.h"

namespace disranker::cli {
namespace {

namespace fs = std::filesystem;

struct ExportCommand {
  std::string format = "onnx";
  std::string model_dir;
  std::string out;
  OnnxExportOptions options;
  bool per_tensor = false;
  bool no_check = false;

  void run() {
    if (format != "onnx") throw Error("--format " + format + " is not supported (onnx)");
    options.per_channel = !per_tensor;
    options.check = !no_check;
    if (per_tensor && !options.int8) throw Error("--per-tensor only applies with --int8");
    if (options.reduce_range && !options.int8) throw Error("--reduce-range only applies with --int8");
    const std::string path = fs::is_directory(out) ? (fs::path(out) / "model.onnx").string() : out;
    const OnnxExportSummary s = export_bert_onnx(model_dir, path, options);

    std::ostringstream line;
    line << "wrote " << path << ": ONNX opset " << options.opset << ", "
         << (options.int8 ? std::string(options.per_channel ? "int8 (per-column weight scales"
                                                            : "int8 (per-tensor scales") +
                                (options.reduce_range ? ", weights in [-64, 64])" : ")")
                          : std::string("fp32"))
         << ", " << s.config.num_hidden_layers << " layers, hidden " << s.config.hidden_size << ", "
         << s.parameters << " parameters, " << s.nodes << " nodes, " << std::fixed << std::setprecision(1)
         << static_cast<double>(s.bytes) / (1024.0 * 1024.0) << " MiB";
    std::cout << line.str() << '\n';
    if (!s.unused.empty()) {
      std::cerr << "note: " << s.unused.size() << " tensor(s) of " << s.weights_path
                << " are not part of the ranker and were left out (first: " << s.unused.front() << ")\n";
    }
  }
};

}  // namespace

void register_export(CLI::App& app) {
  auto command = std::make_shared<ExportCommand>();
  CLI::App* sub = app.add_subcommand(
      "export", "Export a BERT cross-encoder model directory as ONNX (ONNX Runtime, Vespa, TEI)");
  sub->footer(
      "Example: disranker export --format onnx --model runs/quickstart/student --out student.onnx\n"
      "The graph is transformers' BertForSequenceClassification (eval mode, one label): inputs input_ids, "
      "attention_mask, token_type_ids (int64 [batch, sequence], dynamic), output logits (float32 "
      "[batch, 1]), the raw score before disranker.json's score transform. The model directory needs "
      "config.json (model_type bert, num_labels 1) and model.safetensors (or a sharded index; F32, F16 or "
      "BF16); tensor names with or without the bert. prefix. Opsets 14-16 decompose LayerNorm (ONNX Runtime "
      "fuses it back); 17 uses LayerNormalization. --int8 writes ONNX Runtime's dynamic-quantization form of "
      "every weight MatMul (DynamicQuantizeLinear + MatMulInteger); on CPUs without VNNI add --reduce-range "
      "(ONNX Runtime's int16 pair sums saturate on full-range weights there). The file is written "
      "atomically. Tokenize with the model's vocab.txt (disranker tokenize --pair): [CLS] query [SEP] title "
      "[SEP] text [SEP], token types 0 through the first [SEP], then 1. See docs/export.md.");
  sub->add_option("--format", command->format, "Output format")
      ->check(CLI::IsMember({"onnx"}))
      ->capture_default_str();
  sub->add_option("--model", command->model_dir, "Model directory (config.json + model.safetensors)")
      ->type_name("DIR")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->add_option("--out", command->out, "Output .onnx file (a directory: DIR/model.onnx)")
      ->type_name("FILE")
      ->required();
  sub->add_option("--opset", command->options.opset, "ONNX opset (17: LayerNormalization; 14-16: decomposed)")
      ->check(CLI::Range(kOnnxMinOpset, kOnnxMaxOpset))
      ->capture_default_str();
  sub->add_flag("--int8", command->options.int8,
                "Dynamic int8 quantization of the weight MatMuls (ONNX Runtime's quantize_dynamic form)");
  sub->add_flag("--per-tensor", command->per_tensor,
                "With --int8: one scale per weight matrix instead of one per output column");
  sub->add_flag("--reduce-range", command->options.reduce_range,
                "With --int8: weights in [-64, 64] (ONNX Runtime's reduce_range), for CPUs without VNNI");
  sub->add_flag("--no-check", command->no_check, "Skip onnx::checker::check_model before writing");
  sub->callback([command] { command->run(); });
}

}  // namespace disranker::cli
