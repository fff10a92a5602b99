// Specification of the Hugging Face config.json layer (model_type "bert", "llama", "qwen2") and of
// DisRanker's disranker.json: real-world configs parse into the expected structs, what we write reads back
// equal and carries the fields transformers needs, and malformed configs are an Error naming the file and the
// field.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/hf_config.h"
#include "test_util.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::TempDir;

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// The config.json of bert-base-uncased on the Hugging Face hub.
const std::string kBertBaseUncased = R"({
  "architectures": ["BertForMaskedLM"],
  "attention_probs_dropout_prob": 0.1,
  "gradient_checkpointing": false,
  "hidden_act": "gelu",
  "hidden_dropout_prob": 0.1,
  "hidden_size": 768,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "layer_norm_eps": 1e-12,
  "max_position_embeddings": 512,
  "model_type": "bert",
  "num_attention_heads": 12,
  "num_hidden_layers": 12,
  "pad_token_id": 0,
  "position_embedding_type": "absolute",
  "transformers_version": "4.6.0.dev0",
  "type_vocab_size": 2,
  "use_cache": true,
  "vocab_size": 30522
})";

// cross-encoder/ms-marco-MiniLM-L-6-v2: a BERT ranker with one label.
const std::string kMiniLmCrossEncoder = R"({
  "_name_or_path": "nreimers/MiniLM-L6-H384-uncased",
  "architectures": ["BertForSequenceClassification"],
  "attention_probs_dropout_prob": 0.1,
  "gradient_checkpointing": false,
  "hidden_act": "gelu",
  "hidden_dropout_prob": 0.1,
  "hidden_size": 384,
  "id2label": {"0": "LABEL_0"},
  "initializer_range": 0.02,
  "intermediate_size": 1536,
  "label2id": {"LABEL_0": 0},
  "layer_norm_eps": 1e-12,
  "max_position_embeddings": 512,
  "model_type": "bert",
  "num_attention_heads": 12,
  "num_hidden_layers": 6,
  "pad_token_id": 0,
  "position_embedding_type": "absolute",
  "sbert_ce_default_activation_function": "torch.nn.modules.linear.Identity",
  "transformers_version": "4.10.0",
  "type_vocab_size": 2,
  "use_cache": true,
  "vocab_size": 30522
})";

// Qwen/Qwen2-0.5B.
const std::string kQwen2_0_5B = R"({
  "architectures": ["Qwen2ForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151643,
  "hidden_act": "silu",
  "hidden_size": 896,
  "initializer_range": 0.02,
  "intermediate_size": 4864,
  "max_position_embeddings": 131072,
  "max_window_layers": 24,
  "model_type": "qwen2",
  "num_attention_heads": 14,
  "num_hidden_layers": 24,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0,
  "sliding_window": 131072,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.40.1",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

// meta-llama/Llama-2-7b-hf.
const std::string kLlama2_7B = R"({
  "architectures": ["LlamaForCausalLM"],
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 11008,
  "max_position_embeddings": 4096,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 32,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "tie_word_embeddings": false,
  "torch_dtype": "float16",
  "transformers_version": "4.31.0.dev0",
  "use_cache": true,
  "vocab_size": 32000
})";

// TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T: grouped-query attention, 32 query heads on 4 KV heads.
const std::string kTinyLlama = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 5632,
  "max_position_embeddings": 2048,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 22,
  "num_key_value_heads": 4,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 10000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "float32",
  "transformers_version": "4.35.0",
  "use_cache": true,
  "vocab_size": 32000
})";

// kBertBaseUncased with `field` replaced by `value` (JSON text), or removed when value is empty.
std::string with_field(const std::string& config, const std::string& field, const std::string& value) {
  json j = json::parse(config);
  if (value.empty()) {
    j.erase(field);
  } else {
    j[field] = json::parse(value);
  }
  return j.dump();
}

// -----------------------------------------------------------------------------------------------------------
// BERT

TEST(BertConfig, ParsesBertBaseUncasedWithOneLabelByDefault) {
  const BertConfig c = parse_bert_config(kBertBaseUncased, "config.json");
  EXPECT_EQ(c.vocab_size, 30522);
  EXPECT_EQ(c.hidden_size, 768);
  EXPECT_EQ(c.num_hidden_layers, 12);
  EXPECT_EQ(c.num_attention_heads, 12);
  EXPECT_EQ(c.head_dim(), 64);
  EXPECT_EQ(c.intermediate_size, 3072);
  EXPECT_EQ(c.hidden_act, "gelu");
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_EQ(c.type_vocab_size, 2);
  EXPECT_EQ(c.layer_norm_eps, 1e-12);
  EXPECT_EQ(c.hidden_dropout_prob, 0.1);
  EXPECT_EQ(c.attention_probs_dropout_prob, 0.1);
  EXPECT_EQ(c.initializer_range, 0.02);
  EXPECT_EQ(c.num_labels, 1);  // no id2label: a ranker's single score
  EXPECT_EQ(c.pad_token_id, 0);
  EXPECT_EQ(c.torch_dtype, "float32");
}

TEST(BertConfig, TakesTheNumberOfLabelsFromId2labelOrNumLabels) {
  const BertConfig c = parse_bert_config(kMiniLmCrossEncoder, "config.json");
  EXPECT_EQ(c.num_labels, 1);
  EXPECT_EQ(c.hidden_size, 384);
  EXPECT_EQ(c.num_hidden_layers, 6);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.head_dim(), 32);
  EXPECT_EQ(
      parse_bert_config(with_field(kBertBaseUncased, "id2label", R"({"0":"neg","1":"pos","2":"x"})"), "c")
          .num_labels,
      3);
  EXPECT_EQ(parse_bert_config(with_field(kBertBaseUncased, "num_labels", "2"), "c").num_labels, 2);
}

TEST(BertConfig, FillsMissingOptionalFieldsWithTransformersDefaults) {
  const BertConfig c = parse_bert_config(
      R"({"model_type":"bert","vocab_size":100,"hidden_size":32,"num_hidden_layers":2,"num_attention_heads":4,)"
      R"("intermediate_size":64})",
      "c");
  BertConfig expected;
  expected.vocab_size = 100;
  expected.hidden_size = 32;
  expected.num_hidden_layers = 2;
  expected.num_attention_heads = 4;
  expected.intermediate_size = 64;
  EXPECT_EQ(c, expected);
}

TEST(BertConfig, WritesWhatTransformersNeedsAndReadsItBackEqual) {
  TempDir dir;
  const auto path = (dir.path() / "config.json").string();
  BertConfig c = parse_bert_config(kMiniLmCrossEncoder, "in");
  c.layer_norm_eps = 1e-7;
  c.hidden_dropout_prob = 0.0;
  c.pad_token_id = 3;
  c.torch_dtype = "bfloat16";
  write_bert_config(path, c);
  EXPECT_EQ(read_bert_config(path), c);
  EXPECT_EQ(read_model_type(path), "bert");

  const json written = read_json(path);
  EXPECT_EQ(written["architectures"], json({"BertForSequenceClassification"}));
  EXPECT_EQ(written["model_type"], "bert");
  EXPECT_EQ(written["torch_dtype"], "bfloat16");
  EXPECT_EQ(written["id2label"], json({{"0", "LABEL_0"}}));
  EXPECT_EQ(written["label2id"], json({{"LABEL_0", 0}}));
  EXPECT_EQ(written["layer_norm_eps"], 1e-7);
  EXPECT_EQ(written["position_embedding_type"], "absolute");
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  c.num_labels = 3;
  write_bert_config(path, c);
  EXPECT_EQ(read_json(path)["id2label"].size(), 3u);
  EXPECT_EQ(read_bert_config(path).num_labels, 3);
}

TEST(BertConfig, RejectsAMissingRequiredField) {
  for (const char* field : {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                            "intermediate_size", "model_type"}) {
    EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, field, ""), "cfg.json"), "cfg.json", field,
                 "missing (required)");
  }
}

TEST(BertConfig, RejectsFieldsOfTheWrongType) {
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "hidden_size", "\"768\""), "c"), "c",
               "hidden_size", "must be an integer, got \"768\"");
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "hidden_size", "768.5"), "c"), "c",
               "hidden_size", "must be an integer, got 768.5");
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "num_hidden_layers", "true"), "c"), "c",
               "num_hidden_layers", "must be an integer, got true");
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "layer_norm_eps", "\"1e-12\""), "c"), "c",
               "layer_norm_eps", "must be a number");
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "hidden_act", "1"), "c"), "c", "hidden_act",
               "must be a string");
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "id2label", "[\"a\"]"), "c"), "c", "id2label",
               "must be an object");
}

TEST(BertConfig, RejectsHeadsThatDoNotDivideTheHiddenSize) {
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "num_attention_heads", "10"), "c"), "c",
               "num_attention_heads", "10 heads do not divide hidden_size 768");
}

TEST(BertConfig, RejectsValuesOutOfRange) {
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "num_hidden_layers", "0"), "c"), "c",
               "num_hidden_layers", "must be positive, got 0");
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "num_attention_heads", "-12"), "c"), "c",
               "num_attention_heads", "must be positive");
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "layer_norm_eps", "0"), "c"), "c",
               "layer_norm_eps", "positive");
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "hidden_dropout_prob", "1.5"), "c"), "c",
               "hidden_dropout_prob", "must be in [0, 1)");
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "pad_token_id", "30522"), "c"), "c",
               "pad_token_id", "outside the vocabulary [0, 30522)");
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "vocab_size", "9223372036854775808"), "c"), "c",
               "vocab_size", "too large");
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "id2label", "{}"), "c"), "c", "num_labels",
               "must be positive");
}

TEST(BertConfig, RejectsWhatTheModelDoesNotImplement) {
  EXPECT_ERROR(
      parse_bert_config(with_field(kBertBaseUncased, "position_embedding_type", "\"relative_key\""), "c"),
      "c", "position_embedding_type", "not supported");
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "hidden_act", "\"mish\""), "c"), "c",
               "hidden_act", "not supported");
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "torch_dtype", "\"int8\""), "c"), "c",
               "torch_dtype", "must be \"float32\", \"float16\" or \"bfloat16\"");
}

TEST(BertConfig, RejectsInconsistentLabelCounts) {
  const std::string config = with_field(kMiniLmCrossEncoder, "num_labels", "2");
  EXPECT_ERROR(parse_bert_config(config, "c"), "c", "num_labels",
               "2 disagrees with the 1 labels of id2label");
}

TEST(BertConfig, RejectsAnotherModelType) {
  EXPECT_ERROR(parse_bert_config(kQwen2_0_5B, "c"), "c", "model_type", "is \"qwen2\", expected \"bert\"");
  EXPECT_ERROR(parse_bert_config(with_field(kBertBaseUncased, "model_type", "\"roberta\""), "c"), "c",
               "model_type", "\"roberta\" is not supported");
}

TEST(BertConfig, WriterRefusesWhatTheReaderWouldReject) {
  TempDir dir;
  const auto path = (dir.path() / "config.json").string();
  BertConfig c;
  c.num_attention_heads = 7;
  EXPECT_ERROR(write_bert_config(path, c), path, "num_attention_heads", "do not divide");
  EXPECT_FALSE(fs::exists(path));
}

// -----------------------------------------------------------------------------------------------------------
// Decoders

TEST(DecoderConfig, ParsesQwen2_0_5B) {
  const DecoderConfig c = parse_decoder_config(kQwen2_0_5B, "config.json");
  EXPECT_EQ(c.model_type, "qwen2");
  EXPECT_EQ(c.vocab_size, 151936);
  EXPECT_EQ(c.hidden_size, 896);
  EXPECT_EQ(c.intermediate_size, 4864);
  EXPECT_EQ(c.num_hidden_layers, 24);
  EXPECT_EQ(c.num_attention_heads, 14);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim(), 64);
  EXPECT_EQ(c.kv_groups(), 7);
  EXPECT_EQ(c.hidden_act, "silu");
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.rope_theta, 1000000.0);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.attention_bias);  // q, k, v
  EXPECT_FALSE(c.attention_output_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_EQ(c.bos_token_id, 151643);
  EXPECT_EQ(c.eos_token_ids, std::vector<std::int64_t>{151643});
  EXPECT_EQ(c.pad_token_id, std::nullopt);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
}

TEST(DecoderConfig, ParsesLlama2AndTinyLlama) {
  const DecoderConfig llama2 = parse_decoder_config(kLlama2_7B, "config.json");
  EXPECT_EQ(llama2.model_type, "llama");
  EXPECT_EQ(llama2.vocab_size, 32000);
  EXPECT_EQ(llama2.hidden_size, 4096);
  EXPECT_EQ(llama2.intermediate_size, 11008);
  EXPECT_EQ(llama2.num_hidden_layers, 32);
  EXPECT_EQ(llama2.num_key_value_heads, 32);
  EXPECT_EQ(llama2.head_dim(), 128);
  EXPECT_EQ(llama2.max_position_embeddings, 4096);
  EXPECT_EQ(llama2.rms_norm_eps, 1e-5);
  EXPECT_EQ(llama2.rope_theta, 10000.0);  // absent: the default
  EXPECT_FALSE(llama2.tie_word_embeddings);
  EXPECT_FALSE(llama2.attention_bias);
  EXPECT_FALSE(llama2.attention_output_bias);
  EXPECT_EQ(llama2.bos_token_id, 1);
  EXPECT_EQ(llama2.eos_token_ids, std::vector<std::int64_t>{2});
  EXPECT_EQ(llama2.torch_dtype, "float16");

  const DecoderConfig tiny = parse_decoder_config(kTinyLlama, "config.json");
  EXPECT_EQ(tiny.hidden_size, 2048);
  EXPECT_EQ(tiny.num_hidden_layers, 22);
  EXPECT_EQ(tiny.num_attention_heads, 32);
  EXPECT_EQ(tiny.num_key_value_heads, 4);
  EXPECT_EQ(tiny.kv_groups(), 8);
  EXPECT_EQ(tiny.head_dim(), 64);
}

TEST(DecoderConfig, DefaultsFollowTheModelType) {
  const std::string minimal =
      R"("vocab_size":100,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4)";
  const DecoderConfig llama = parse_decoder_config("{\"model_type\":\"llama\"," + minimal + "}", "c");
  EXPECT_EQ(llama.num_key_value_heads, 4);  // = num_attention_heads
  EXPECT_EQ(llama.max_position_embeddings, 2048);
  EXPECT_EQ(llama.rms_norm_eps, 1e-6);
  EXPECT_EQ(llama.rope_theta, 10000.0);
  EXPECT_EQ(llama.bos_token_id, 1);
  EXPECT_EQ(llama.eos_token_ids, std::vector<std::int64_t>{2});
  EXPECT_FALSE(llama.attention_bias);
  EXPECT_EQ(llama.torch_dtype, "float32");

  const DecoderConfig qwen2 = parse_decoder_config("{\"model_type\":\"qwen2\"," + minimal + "}", "c");
  EXPECT_EQ(qwen2.max_position_embeddings, 32768);
  EXPECT_EQ(qwen2.bos_token_id, std::nullopt);
  EXPECT_TRUE(qwen2.eos_token_ids.empty());
  EXPECT_TRUE(qwen2.attention_bias);

  // An explicit null is "no token", not the default.
  const DecoderConfig no_bos =
      parse_decoder_config("{\"model_type\":\"llama\",\"bos_token_id\":null," + minimal + "}", "c");
  EXPECT_EQ(no_bos.bos_token_id, std::nullopt);
}

TEST(DecoderConfig, ReadsAListOfEosIdsAndDtypeUnderItsNewName) {
  const std::string config =
      with_field(with_field(kTinyLlama, "eos_token_id", "[2, 31999]"), "dtype", "\"float32\"");
  const DecoderConfig c = parse_decoder_config(config, "c");
  EXPECT_EQ(c.eos_token_ids, (std::vector<std::int64_t>{2, 31999}));
  EXPECT_ERROR(parse_decoder_config(with_field(kTinyLlama, "dtype", "\"bfloat16\""), "c"), "c", "dtype",
               "disagrees with torch_dtype");
}

TEST(DecoderConfig, LlamaAttentionBiasCoversAllFourProjections) {
  const DecoderConfig c = parse_decoder_config(with_field(kTinyLlama, "attention_bias", "true"), "c");
  EXPECT_TRUE(c.attention_bias);
  EXPECT_TRUE(c.attention_output_bias);
}

TEST(DecoderConfig, RoundTripsLlamaAndQwen2WithTheirArchitectures) {
  TempDir dir;
  const auto path = (dir.path() / "config.json").string();
  for (const std::string* source : {&kQwen2_0_5B, &kLlama2_7B, &kTinyLlama}) {
    DecoderConfig c = parse_decoder_config(*source, "in");
    c.pad_token_id = 0;
    write_decoder_config(path, c);
    EXPECT_EQ(read_decoder_config(path), c);
    EXPECT_EQ(read_model_type(path), c.model_type);
    const json written = read_json(path);
    EXPECT_EQ(written["model_type"], c.model_type);
    EXPECT_EQ(written["architectures"],
              json({c.model_type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}));
    EXPECT_EQ(written["num_key_value_heads"], c.num_key_value_heads);
    EXPECT_EQ(written["rope_theta"], c.rope_theta);
    EXPECT_EQ(written["tie_word_embeddings"], c.tie_word_embeddings);
  }
  // No bos/eos, several eos: written as null and as a list, read back the same.
  DecoderConfig c = parse_decoder_config(kTinyLlama, "in");
  c.bos_token_id.reset();
  c.eos_token_ids = {1, 2, 3};
  write_decoder_config(path, c);
  EXPECT_EQ(read_json(path)["bos_token_id"], nullptr);
  EXPECT_EQ(read_json(path)["eos_token_id"], json({1, 2, 3}));
  EXPECT_EQ(read_decoder_config(path), c);
}

TEST(DecoderConfig, RejectsKeyValueHeadsThatDoNotDivideTheHeads) {
  EXPECT_ERROR(parse_decoder_config(with_field(kQwen2_0_5B, "num_key_value_heads", "4"), "c"), "c",
               "num_key_value_heads", "4 key/value heads do not divide num_attention_heads 14");
  EXPECT_ERROR(parse_decoder_config(with_field(kQwen2_0_5B, "num_attention_heads", "15"), "c"), "c",
               "num_attention_heads", "15 heads do not divide hidden_size 896");
}

TEST(DecoderConfig, RejectsMissingFieldsAndWrongTypes) {
  EXPECT_ERROR(parse_decoder_config(with_field(kQwen2_0_5B, "intermediate_size", ""), "c"), "c",
               "intermediate_size", "missing (required)");
  EXPECT_ERROR(parse_decoder_config(with_field(kQwen2_0_5B, "tie_word_embeddings", "\"true\""), "c"), "c",
               "tie_word_embeddings", "must be true or false");
  EXPECT_ERROR(parse_decoder_config(with_field(kQwen2_0_5B, "rope_theta", "\"1e6\""), "c"), "c", "rope_theta",
               "must be a number");
  EXPECT_ERROR(parse_decoder_config(with_field(kQwen2_0_5B, "eos_token_id", "[\"a\"]"), "c"), "c",
               "eos_token_id", "must be an integer");
  EXPECT_ERROR(parse_decoder_config(with_field(kQwen2_0_5B, "eos_token_id", "151936"), "c"), "c",
               "eos_token_id", "outside the vocabulary");
  EXPECT_ERROR(parse_decoder_config(with_field(kQwen2_0_5B, "rms_norm_eps", "-1e-6"), "c"), "c",
               "rms_norm_eps", "positive");
}

TEST(DecoderConfig, RejectsWhatTheModelsDoNotImplement) {
  EXPECT_ERROR(
      parse_decoder_config(with_field(kTinyLlama, "rope_scaling", R"({"type":"linear","factor":2.0})"), "c"),
      "c", "rope_scaling", "not supported");
  EXPECT_ERROR(parse_decoder_config(with_field(kQwen2_0_5B, "use_sliding_window", "true"), "c"), "c",
               "use_sliding_window", "not supported");
  EXPECT_ERROR(parse_decoder_config(with_field(kTinyLlama, "hidden_act", "\"gelu\""), "c"), "c", "hidden_act",
               "not supported");
  EXPECT_ERROR(parse_decoder_config(with_field(kTinyLlama, "head_dim", "128"), "c"), "c", "head_dim",
               "not hidden_size / num_attention_heads");
  EXPECT_EQ(parse_decoder_config(with_field(kTinyLlama, "head_dim", "64"), "c").head_dim(), 64);
  EXPECT_EQ(parse_decoder_config(with_field(kTinyLlama, "hidden_act", "\"swish\""), "c").hidden_act, "silu");
}

TEST(DecoderConfig, RejectsABertConfig) {
  EXPECT_ERROR(parse_decoder_config(kBertBaseUncased, "c"), "c", "model_type", "expected a decoder");
}

TEST(DecoderConfig, WriterRefusesBiasesTheArchitectureCannotExpress) {
  TempDir dir;
  const auto path = (dir.path() / "config.json").string();
  DecoderConfig llama = parse_decoder_config(kTinyLlama, "in");
  llama.attention_bias = true;  // q/k/v bias without an output bias: that is qwen2, not llama
  EXPECT_ERROR(write_decoder_config(path, llama), path, "attention_bias", "llama has one attention_bias");
  DecoderConfig qwen2 = parse_decoder_config(kQwen2_0_5B, "in");
  qwen2.attention_bias = false;
  EXPECT_ERROR(write_decoder_config(path, qwen2), path, "attention_bias", "qwen2 always has q/k/v biases");
  qwen2 = parse_decoder_config(kQwen2_0_5B, "in");
  qwen2.model_type = "mistral";
  EXPECT_ERROR(write_decoder_config(path, qwen2), path, "model_type", "not a decoder type");
  EXPECT_FALSE(fs::exists(path));
}

// -----------------------------------------------------------------------------------------------------------
// Files and JSON

TEST(ConfigFiles, ReadsTheModelTypeAndNamesTheFileOfEveryProblem) {
  TempDir dir;
  EXPECT_EQ(read_model_type(dir.write("q.json", kQwen2_0_5B)), "qwen2");
  EXPECT_EQ(read_model_type(dir.write("l.json", kLlama2_7B)), "llama");
  const auto missing = (dir.path() / "absent.json").string();
  EXPECT_ERROR(read_bert_config(missing), missing, "", "cannot open file for reading");
  EXPECT_ERROR(read_decoder_config(dir.path().string()), dir.path().string(), "", "is a directory");
  const auto not_json = dir.write("bad.json", "{\"model_type\": \"bert\",");
  EXPECT_ERROR(read_bert_config(not_json), not_json, "", "is not valid JSON");
  const auto array = dir.write("array.json", "[1]");
  EXPECT_ERROR(read_bert_config(array), array, "", "must be a JSON object");
  const auto twice = dir.write("twice.json", R"({"model_type": "bert", "hidden_size": 1, "hidden_size": 2})");
  EXPECT_ERROR(read_bert_config(twice), twice, "hidden_size", "key appears twice");
  const auto latin1 = dir.write("latin1.json", "{\"model_type\": \"b\xe9rt\"}");
  EXPECT_ERROR(read_model_type(latin1), latin1, "", "not valid UTF-8");
  const auto gpt2 = dir.write("gpt2.json", R"({"model_type": "gpt2"})");
  EXPECT_ERROR(read_model_type(gpt2), gpt2, "model_type", "\"gpt2\" is not supported");
}

// -----------------------------------------------------------------------------------------------------------
// disranker.json

TEST(ConfigRankerManifest, RoundTripsATeacherAndAStudentWithProvenance) {
  TempDir dir;
  const auto path = (dir.path() / "disranker.json").string();
  RankerManifest teacher;
  teacher.role = RankerRole::kTeacher;
  teacher.pooling = Pooling::kLastToken;
  teacher.score = {ScoreType::kAffine, 0.5, -1.25};
  teacher.max_length = 256;
  teacher.provenance = {{"stage", "rank-finetune"},
                        {"base", "Qwen/Qwen2-0.5B"},
                        {"steps", 1200},
                        {"data", {{"train", "clicks.jsonl"}, {"sha256", "ab12"}}}};
  write_ranker_manifest(path, teacher);
  EXPECT_EQ(read_ranker_manifest(path), teacher);
  const json written = read_json(path);
  EXPECT_EQ(written["role"], "teacher");
  EXPECT_EQ(written["pooling"], "last_token");
  EXPECT_EQ(written["score"], json({{"type", "affine"}, {"scale", 0.5}, {"bias", -1.25}}));
  EXPECT_EQ(written["version"], 1);

  RankerManifest student;
  student.role = RankerRole::kStudent;
  student.pooling = Pooling::kMean;
  student.score = {ScoreType::kSigmoid, 2.0, 0.0};
  write_ranker_manifest(path, student);
  EXPECT_EQ(read_ranker_manifest(path), student);

  RankerManifest raw;  // defaults: student, cls, raw score
  write_ranker_manifest(path, raw);
  EXPECT_EQ(read_json(path)["score"], json({{"type", "raw"}}));
  EXPECT_EQ(read_ranker_manifest(path), raw);
}

TEST(ConfigRankerManifest, DefaultsTheScoreAndProvenance) {
  const RankerManifest m =
      parse_ranker_manifest(R"({"role":"student","pooling":"cls","max_length":128})", "d");
  EXPECT_EQ(m.score, ScoreTransform{});
  EXPECT_EQ(m.provenance, json::object());
  EXPECT_EQ(m.max_length, 128);
}

TEST(ConfigRankerManifest, AppliesTheScoreTransform) {
  EXPECT_EQ((ScoreTransform{ScoreType::kRaw, 1.0, 0.0}).apply(3.5), 3.5);
  EXPECT_EQ((ScoreTransform{ScoreType::kAffine, 2.0, 1.0}).apply(3.5), 8.0);
  EXPECT_DOUBLE_EQ((ScoreTransform{ScoreType::kSigmoid, 1.0, 0.0}).apply(0.0), 0.5);
  EXPECT_DOUBLE_EQ((ScoreTransform{ScoreType::kSigmoid, 2.0, -1.0}).apply(1.0), 1.0 / (1.0 + std::exp(-1.0)));
  EXPECT_EQ((ScoreTransform{ScoreType::kSigmoid, 1.0, 0.0}).apply(-1000.0), 0.0);  // no overflow, no NaN
  EXPECT_EQ((ScoreTransform{ScoreType::kSigmoid, 1.0, 0.0}).apply(1000.0), 1.0);
  EXPECT_GT((ScoreTransform{ScoreType::kSigmoid, 1.0, 0.0}).apply(-700.0), 0.0);  // the tail is kept
}

TEST(ConfigRankerManifest, RejectsMalformedManifests) {
  const std::string file = "disranker.json";
  auto parse = [&](const std::string& text) { return parse_ranker_manifest(text, file); };
  EXPECT_ERROR(parse(R"({"pooling":"cls","max_length":1})"), file, "role", "missing (required)");
  EXPECT_ERROR(parse(R"({"role":"judge","pooling":"cls","max_length":1})"), file, "role",
               "\"judge\" is not one of \"teacher\", \"student\"");
  EXPECT_ERROR(parse(R"({"role":"student","pooling":"max","max_length":1})"), file, "pooling",
               "\"max\" is not one of \"last_token\", \"mean\", \"cls\"");
  EXPECT_ERROR(parse(R"({"role":"student","pooling":"cls"})"), file, "max_length", "missing (required)");
  EXPECT_ERROR(parse(R"({"role":"student","pooling":"cls","max_length":0})"), file, "max_length",
               "must be positive");
  EXPECT_ERROR(parse(R"({"role":"student","pooling":"cls","max_length":8,"polling":"cls"})"), file, "polling",
               "unknown field");
  EXPECT_ERROR(parse(R"({"role":"student","pooling":"cls","max_length":8,"score":{"type":"tanh"}})"), file,
               "score.type", "\"tanh\" is not one of \"raw\", \"sigmoid\", \"affine\"");
  EXPECT_ERROR(
      parse(R"({"role":"student","pooling":"cls","max_length":8,"score":{"type":"affine","scale":"2"}})"),
      file, "score.scale", "must be a number");
  EXPECT_ERROR(parse(R"({"role":"student","pooling":"cls","max_length":8,"score":{"type":"raw","scale":2}})"),
               file, "score", "a raw score takes no scale or bias");
  EXPECT_ERROR(
      parse(R"({"role":"student","pooling":"cls","max_length":8,"score":{"type":"raw","offset":2}})"), file,
      "score.offset", "unknown field");
  EXPECT_ERROR(parse(R"({"role":"student","pooling":"cls","max_length":8,"provenance":[1]})"), file,
               "provenance", "must be an object");
  EXPECT_ERROR(parse(R"({"version":2,"role":"student","pooling":"cls","max_length":8})"), file, "version",
               "version 2 is not supported");
}

TEST(ConfigRankerManifest, WriterRefusesWhatTheReaderWouldReject) {
  TempDir dir;
  const auto path = (dir.path() / "disranker.json").string();
  RankerManifest m;
  m.max_length = -1;
  EXPECT_ERROR(write_ranker_manifest(path, m), path, "max_length", "must be positive");
  m.max_length = 8;
  m.score = {ScoreType::kAffine, std::nan(""), 0.0};
  EXPECT_ERROR(write_ranker_manifest(path, m), path, "score.scale", "finite");
  m.score = {};
  m.provenance = json::array();
  EXPECT_ERROR(write_ranker_manifest(path, m), path, "provenance", "must be an object");
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace disranker
