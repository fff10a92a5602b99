// `--engine auto|fast|torch` of `score` and `serve`: which code runs a model directory.
//   fast   the libtorch-free CPU engine for BERT students (infer/bert_engine.h): packed, fused, oneDNN GEMMs;
//   torch  the libtorch Ranker (any architecture, any device);
//   auto   fast for a BERT model with a trained ranking head on the CPU, torch otherwise (saying why).
#pragma once

#include <memory>
#include <string>

#include "infer/bert_engine.h"

namespace disranker::cli {

inline constexpr const char* kEngineHelp =
    "auto, fast or torch: fast is the libtorch-free CPU engine for BERT students (packed, fused, oneDNN); "
    "auto uses it for a BERT model with a trained ranking head on the CPU, libtorch otherwise";

inline constexpr const char* kPrecisionHelp =
    "fp32 or int8 (fast engine only): int8 quantizes the encoder's dense layers (weights per output column "
    "at load, activations per token), 1.5-2.2x the fp32 speed here; `disranker quantize` reports its "
    "NDCG/PNR cost";

// "fp32" or "int8"; Error otherwise.
Precision parse_precision(const std::string& name);

// The fast engine when `engine` asks for it (or auto finds it usable), else nullptr (use libtorch). Throws
// Error for an unknown engine name, for `fast` when the model or device cannot take it, and for int8
// precision when the engine would be libtorch.
std::unique_ptr<BertEngine> open_fast_engine(const std::string& engine, const std::string& model_dir,
                                             const std::string& device, const std::string& command,
                                             BertEngineOptions options = {});

}  // namespace disranker::cli
