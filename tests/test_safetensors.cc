// Specification of the safetensors layer: dtypes and bit-exact float conversions, the memory-mapped reader
// and the malformed files it rejects, the writer (byte-identical to Hugging Face's reference library), and
// sharded checkpoints.
//
// The rule: a malformed file is a disranker::Error "file: tensor: what is wrong" (field = the tensor's name
// where one is at fault), never a crash or undefined behaviour; writers are atomic and refuse what the reader
// rejects.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/safetensors.h"
#include "test_util.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// -----------------------------------------------------------------------------------------------------------
// Helpers

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A file made of an 8-byte little-endian header length, `header` and `buffer`, as the format lays them out.
std::string raw_file(const std::string& header, const std::string& buffer = "") {
  std::string out(8, '\0');
  std::uint64_t size = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((size >> (8 * i)) & 0xff);
  return out + header + buffer;
}

template <typename T>
std::vector<std::byte> bytes_of(const std::vector<T>& values) {
  std::vector<std::byte> out(values.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::string to_string(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::uint32_t bits(float value) {
  return std::bit_cast<std::uint32_t>(value);
}

// The bytes write_safetensors puts in a stream.
std::string serialize(std::span<const TensorData> tensors,
                      const std::map<std::string, std::string>& metadata = {}) {
  std::ostringstream out;
  write_safetensors(out, "mem", tensors, metadata);
  return out.str();
}

const std::vector<DType> kAllDTypes = {
    DType::kBool, DType::kU8,  DType::kI8,  DType::kF8_E5M2, DType::kF8_E4M3, DType::kF8_E8M0,
    DType::kI16,  DType::kU16, DType::kF16, DType::kBF16,    DType::kI32,     DType::kU32,
    DType::kF32,  DType::kC64, DType::kF64, DType::kI64,     DType::kU64};

// A valid two-tensor file: "a" F32 [2] at [0, 8), "b" I8 [3] at [8, 11).
const std::string kValidHeader =
    R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I8","shape":[3],"data_offsets":[8,11]}})";
const std::string kValidBuffer = std::string("\x00\x00\x80\x3f\x00\x00\x20\xc0\x01\x02\x03", 11);

// -----------------------------------------------------------------------------------------------------------
// dtypes

TEST(SafetensorsDType, NamesSizesAndParsingAgreeForEveryType) {
  const std::map<std::string, std::size_t> expected = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
      {"F32", 4},  {"C64", 8}, {"F64", 8}, {"I64", 8},     {"U64", 8}};
  std::map<std::string, std::size_t> actual;
  for (const DType dtype : kAllDTypes) {
    actual[std::string(dtype_name(dtype))] = dtype_size(dtype);
    EXPECT_EQ(parse_dtype(dtype_name(dtype)), dtype);
  }
  EXPECT_EQ(actual, expected);
}

TEST(SafetensorsDType, UnknownAndSubByteNamesDoNotParse) {
  for (const char* name : {"f32", "FP32", "float32", "F4", "F6_E2M3", "", "F32 "}) {
    EXPECT_FALSE(parse_dtype(name).has_value()) << name;
  }
}

TEST(SafetensorsDType, OnlyTheFourFloatTypesConvertToFloat32) {
  for (const DType dtype : kAllDTypes) {
    const bool expected =
        dtype == DType::kF16 || dtype == DType::kBF16 || dtype == DType::kF32 || dtype == DType::kF64;
    EXPECT_EQ(is_float_dtype(dtype), expected) << dtype_name(dtype);
  }
}

// -----------------------------------------------------------------------------------------------------------
// Float conversions, against hand-derived bit patterns

TEST(SafetensorsFloatConversion, Bf16WidensByShiftingIntoTheHighHalf) {
  EXPECT_EQ(bf16_to_float(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_float(0xC020), -2.5f);  // sign 1, exponent 128, mantissa .01
  EXPECT_EQ(bf16_to_float(0x477F), 65280.0f);
  EXPECT_EQ(bits(bf16_to_float(0x8000)), 0x80000000u);  // -0
  EXPECT_EQ(bits(bf16_to_float(0x0001)), 0x00010000u);  // a float32 subnormal
  EXPECT_EQ(bf16_to_float(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(bf16_to_float(0xFF80), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bf16_to_float(0x7FC0)));
  EXPECT_EQ(bits(bf16_to_float(0xFFC1)), 0xFFC10000u);  // NaN keeps sign and payload
}

TEST(SafetensorsFloatConversion, F16WidensExactlyIncludingSubnormalsInfinitiesAndNaN) {
  EXPECT_EQ(f16_to_float(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_float(0xC100), -2.5f);                  // sign 1, exponent 16, mantissa .01
  EXPECT_EQ(f16_to_float(0x7BFF), 65504.0f);               // the largest half
  EXPECT_EQ(f16_to_float(0x0400), std::ldexp(1.0f, -14));  // the smallest normal
  EXPECT_EQ(f16_to_float(0x0001), std::ldexp(1.0f, -24));  // the smallest subnormal
  EXPECT_EQ(f16_to_float(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_float(0x03FF), std::ldexp(1023.0f, -24));  // the largest subnormal
  EXPECT_EQ(f16_to_float(0x0200), std::ldexp(1.0f, -15));
  EXPECT_EQ(bits(f16_to_float(0x8000)), 0x80000000u);
  EXPECT_EQ(f16_to_float(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_to_float(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16_to_float(0x7E00)));
  EXPECT_EQ(bits(f16_to_float(0x7C01)), 0x7F802000u);  // signalling NaN: payload moved, not lost
  EXPECT_EQ(bits(f16_to_float(0xFE00)), 0xFFC00000u);
}

TEST(SafetensorsFloatConversion, EveryHalfAndBfloatSurvivesARoundTripThroughFloat) {
  for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
    const auto half = static_cast<std::uint16_t>(h);
    const float f16 = f16_to_float(half);
    const float bf16 = bf16_to_float(half);
    if (std::isnan(f16)) {
      EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(f16)))) << h;
    } else {
      ASSERT_EQ(float_to_f16(f16), half) << h;
    }
    if (std::isnan(bf16)) {
      EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(bf16)))) << h;
      EXPECT_EQ(float_to_bf16(bf16) & 0x8000, half & 0x8000) << h;
    } else {
      ASSERT_EQ(float_to_bf16(bf16), half) << h;
    }
  }
}

TEST(SafetensorsFloatConversion, NarrowingRoundsToNearestWithTiesToEven) {
  // f16: 11 significant bits; ulp at 1.0 is 2^-10.
  EXPECT_EQ(float_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie -> even (1.0)
  EXPECT_EQ(float_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie -> even (1 + 2^-9)
  EXPECT_EQ(float_to_f16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3C01);  // above the tie
  EXPECT_EQ(float_to_f16(65519.0f), 0x7BFF);
  EXPECT_EQ(float_to_f16(65520.0f), 0x7C00);  // the tie above 65504 rounds to infinity
  EXPECT_EQ(float_to_f16(-1e10f), 0xFC00);
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -25)), 0x0000);            // half the smallest subnormal: tie -> 0
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -25) * 1.0001f), 0x0001);  // just above: 2^-24
  EXPECT_EQ(float_to_f16(std::ldexp(3.0f, -25)), 0x0002);            // 1.5 ulps: tie -> even (2)
  EXPECT_EQ(float_to_f16(std::ldexp(1023.5f, -24)), 0x0400);         // tie between subnormal and normal
  EXPECT_EQ(float_to_f16(-std::ldexp(1.0f, -30)), 0x8000);           // -0
  // bf16: 8 significant bits; ulp at 1.0 is 2^-7.
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  EXPECT_EQ(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds past the largest bf16
  EXPECT_EQ(float_to_bf16(-2.5f), 0xC020);
  EXPECT_EQ(float_to_f16(-2.5f), 0xC100);
  // NaN stays a NaN, with its sign.
  EXPECT_EQ(float_to_f16(std::numeric_limits<float>::quiet_NaN()) & 0x7E00, 0x7E00);
  EXPECT_EQ(float_to_bf16(-std::numeric_limits<float>::quiet_NaN()) & 0xFFC0, 0xFFC0);
  EXPECT_EQ(float_to_bf16(std::bit_cast<float>(0x7F800001u)) & 0x7FC0,
            0x7FC0);  // a low-payload NaN stays NaN
}

// The defining property of round-to-nearest-even, checked on random floats of every magnitude: no other
// representable value is closer, and at an exact tie the even one wins.
TEST(SafetensorsFloatConversion, NarrowingPicksTheNearestRepresentableValueOnRandomInputs) {
  std::mt19937 rng(12345);
  auto check = [](float x, std::uint16_t got, float (*widen)(std::uint16_t)) {
    const double target = x;
    const double chosen = widen(got);
    for (int delta : {-1, 1}) {
      const auto other_bits = static_cast<std::uint16_t>(got + delta);
      const float other = widen(other_bits);
      if (std::isnan(other) || (other_bits & 0x7FFF) == 0 || ((got ^ other_bits) & 0x8000)) continue;
      const double d_chosen = std::fabs(chosen - target);
      const double d_other = std::fabs(static_cast<double>(other) - target);
      if (std::isinf(chosen)) continue;  // overflow is covered by the hand-picked cases
      ASSERT_LE(d_chosen, d_other) << "x=" << x << " got=" << got;
      if (d_chosen == d_other) {
        ASSERT_EQ(got & 1, 0) << "tie not broken to even: x=" << x;
      }
    }
  };
  for (int i = 0; i < 300000; ++i) {
    float x = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
    if (std::isnan(x) || std::isinf(x)) continue;
    check(x, float_to_bf16(x), bf16_to_float);
    // Bring x into (and a little beyond) the f16 range.
    int exponent = 0;
    const float small = std::ldexp(std::frexp(x, &exponent), static_cast<int>(rng() % 44) - 27);
    if (std::fabs(small) < 65504.0f) check(small, float_to_f16(small), f16_to_float);
  }
}

TEST(SafetensorsFloatConversion, ConvertsEachFloatDTypeToFloat32) {
  const std::vector<std::uint16_t> halves = {0x3C00, 0xC100, 0x7BFF, 0x0001, 0x7C00};
  std::vector<float> out(5);
  convert_to_float32(DType::kF16, bytes_of(halves), out);
  EXPECT_EQ(out, (std::vector<float>{1.0f, -2.5f, 65504.0f, std::ldexp(1.0f, -24),
                                     std::numeric_limits<float>::infinity()}));
  const std::vector<std::uint16_t> bfloats = {0x3F80, 0xC020};
  out.resize(2);
  convert_to_float32(DType::kBF16, bytes_of(bfloats), out);
  EXPECT_EQ(out, (std::vector<float>{1.0f, -2.5f}));
  const std::vector<float> floats = {0.1f, -7.0f};
  convert_to_float32(DType::kF32, bytes_of(floats), out);
  EXPECT_EQ(out, floats);
}

TEST(SafetensorsFloatConversion, F64RoundsToNearestAndOverflowsToInfinityWithoutUndefinedBehaviour) {
  const double flt_max = std::numeric_limits<float>::max();
  const std::vector<double> doubles = {1.0 / 3.0,
                                       -1e300,
                                       1e300,
                                       flt_max * (1 + 1e-9),
                                       -flt_max * (1 + 1e-9),
                                       std::numeric_limits<double>::infinity(),
                                       -0.0,
                                       std::ldexp(1.0, -149)};
  std::vector<float> out(doubles.size());
  convert_to_float32(DType::kF64, bytes_of(doubles), out);
  EXPECT_EQ(out[0], 1.0f / 3.0f);
  EXPECT_EQ(out[1], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(out[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(out[3], std::numeric_limits<float>::max());  // within half an ulp of FLT_MAX
  EXPECT_EQ(out[4], -std::numeric_limits<float>::max());
  EXPECT_EQ(out[5], std::numeric_limits<float>::infinity());
  EXPECT_EQ(bits(out[6]), 0x80000000u);
  EXPECT_EQ(bits(out[7]), 1u);  // the smallest float32 subnormal
}

TEST(SafetensorsFloatConversion, RejectsNonFloatTypesAndMismatchedSizes) {
  std::vector<float> out(2);
  const std::vector<std::byte> eight(8);
  EXPECT_THROW(convert_to_float32(DType::kI32, eight, out), Error);
  EXPECT_THROW(convert_to_float32(DType::kF16, eight, out), Error);  // 8 bytes of f16 are 4 values
  EXPECT_THROW(convert_to_float32(DType::kF32, std::vector<std::byte>(7), std::span<float>(out).first(1)),
               Error);
}

// -----------------------------------------------------------------------------------------------------------
// Writer: byte-compatibility with the reference library

// The byte arrays below are the expected outputs of the reference implementation's own unit tests
// (huggingface/safetensors, safetensors/src/tensor.rs: test_serialization,
// test_serialization_forced_alignement, test_empty): our writer must produce exactly what Hugging Face's
// serialize() produces.
TEST(SafetensorsWriter, ProducesTheReferenceLibrarysBytesForItsOwnTestCases) {
  const std::vector<float> values = {0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f};
  const auto data = bytes_of(values);
  const std::string data_bytes = to_string(data);
  {
    const std::vector<TensorData> tensors = {{"attn.0", DType::kF32, {1, 2, 3}, data}};
    const std::string header = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
    ASSERT_EQ(header.size(), 64u);  // no padding needed
    EXPECT_EQ(serialize(tensors), raw_file(header, data_bytes));
  }
  {
    const std::vector<TensorData> tensors = {{"attn0", DType::kF32, {1, 1, 2, 3}, data}};
    // 65 bytes of JSON, padded with 7 spaces to 72 so that the float data starts 8-aligned.
    const std::string header =
        R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" + std::string(7, ' ');
    ASSERT_EQ(header.size(), 72u);
    EXPECT_EQ(serialize(tensors), raw_file(header, data_bytes));
  }
  EXPECT_EQ(serialize({}), raw_file("{}      "));
  EXPECT_EQ(serialize({}, {{"framework", "pt"}}),
            raw_file(R"({"__metadata__":{"framework":"pt"}})" + std::string(5, ' ')));
}

TEST(SafetensorsWriter, LaysTensorsOutByDecreasingAlignmentThenNameSoThatEveryTensorIsAligned) {
  const std::vector<std::byte> one(1), two(2), four(4), eight(8);
  const std::vector<TensorData> tensors = {
      {"z.u8", DType::kU8, {1}, one},     {"y.f16", DType::kF16, {1}, two},
      {"b.f32", DType::kF32, {1}, four},  {"a.f32", DType::kF32, {1}, four},
      {"x.i64", DType::kI64, {1}, eight}, {"c.bf16", DType::kBF16, {1}, two}};
  TempDir dir;
  const auto path = (dir.path() / "m.safetensors").string();
  write_safetensors(path, tensors, {{"k", "v"}});
  const SafetensorsFile file(path);
  EXPECT_EQ(file.names(), (std::vector<std::string>{"x.i64", "a.f32", "b.f32", "c.bf16", "y.f16", "z.u8"}));
  const auto header_size = file.bytes().size() - 21;  // 8 + N + 21 data bytes
  EXPECT_EQ((header_size - 8) % 8, 0u) << "header is padded to a multiple of 8";
  for (const auto& tensor : file.tensors()) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(tensor.data.data()) % dtype_size(tensor.dtype), 0u)
        << tensor.name;
  }
  // Metadata first, then the tensors in data order; padded with spaces.
  const std::string bytes = to_string(file.bytes());
  EXPECT_EQ(bytes.substr(8, 33), R"({"__metadata__":{"k":"v"},"x.i64")");
}

TEST(SafetensorsWriter, RoundTripsEveryDTypeBitForBitWithMetadata) {
  std::mt19937 rng(7);
  std::vector<std::vector<std::byte>> buffers;
  std::vector<TensorData> tensors;
  const std::vector<std::vector<std::int64_t>> shapes = {{3, 5}, {}, {0, 4}, {2, 1, 3}};
  for (const DType dtype : kAllDTypes) {
    for (std::size_t s = 0; s < shapes.size(); ++s) {
      std::int64_t count = 1;
      for (const auto dim : shapes[s]) count *= dim;
      std::vector<std::byte> data(static_cast<std::size_t>(count) * dtype_size(dtype));
      for (auto& byte : data) byte = static_cast<std::byte>(rng());
      buffers.push_back(std::move(data));
      tensors.push_back(
          {std::string(dtype_name(dtype)) + "." + std::to_string(s), dtype, shapes[s], buffers.back()});
    }
  }
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"note", "quotes \" backslash \\ newline \n tab \t unicode é 中"}};
  TempDir dir;
  const auto path = (dir.path() / "all.safetensors").string();
  write_safetensors(path, tensors, metadata);
  const SafetensorsFile file(path);
  EXPECT_EQ(file.metadata(), metadata);
  ASSERT_EQ(file.tensors().size(), tensors.size());
  for (const auto& expected : tensors) {
    SCOPED_TRACE(expected.name);
    const TensorView& got = file.get(expected.name);
    EXPECT_EQ(got.name, expected.name);
    EXPECT_EQ(got.dtype, expected.dtype);
    EXPECT_EQ(got.shape, expected.shape);
    EXPECT_EQ(to_string(got.data), to_string(expected.data));
  }
  // Writing what was read gives the same bytes again.
  std::vector<TensorData> again;
  for (const auto& tensor : file.tensors())
    again.push_back({tensor.name, tensor.dtype, tensor.shape, tensor.data});
  EXPECT_EQ(serialize(again, metadata), read_bytes(path));
}

TEST(SafetensorsWriter, FileAndStreamGetTheSameBytes) {
  const std::vector<float> values = {1.5f, -2.0f};
  const auto data = bytes_of(values);
  const std::vector<TensorData> tensors = {{"w", DType::kF32, {2}, data}};
  TempDir dir;
  const auto path = (dir.path() / "w.safetensors").string();
  write_safetensors(path, tensors);
  EXPECT_EQ(read_bytes(path), serialize(tensors));
}

TEST(SafetensorsWriter, RejectsBadTensorsAndLeavesTheExistingFileIntact) {
  TempDir dir;
  const auto path = (dir.path() / "m.safetensors").string();
  const std::vector<std::byte> four(4), eight(8);
  write_safetensors(path, std::vector<TensorData>{{"ok", DType::kF32, {1}, four}});
  const std::string before = read_bytes(path);

  auto write = [&](std::vector<TensorData> tensors) { write_safetensors(path, tensors); };
  EXPECT_ERROR(write({{"a", DType::kF32, {1}, four}, {"a", DType::kF32, {1}, four}}), path, "a",
               "two tensors have this name");
  EXPECT_ERROR(write({{"", DType::kF32, {1}, four}}), path, "", "tensor name is empty");
  EXPECT_ERROR(write({{"__metadata__", DType::kF32, {1}, four}}), path, "__metadata__", "reserved");
  EXPECT_ERROR(write({{"neg", DType::kF32, {-1, -4}, four}}), path, "neg", "negative dimension");
  EXPECT_ERROR(write({{"short", DType::kF32, {3}, eight}}), path, "short",
               "data is 8 bytes but shape [3] of F32 needs 12");
  EXPECT_ERROR(write({{"huge", DType::kF64, {1 << 30, 1 << 30, 1 << 30}, eight}}), path, "huge",
               "more than 2^64");
  EXPECT_ERROR(write({{"bad\xff", DType::kF32, {1}, four}}), path, "", "not valid UTF-8");
  EXPECT_ERROR(write_safetensors(path, std::vector<TensorData>{}, {{"k", "\xc3"}}), path, "__metadata__",
               "not valid UTF-8");

  EXPECT_EQ(read_bytes(path), before);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1)
      << "temporary left";
}

// -----------------------------------------------------------------------------------------------------------
// Reader

TEST(SafetensorsFile, ViewsPointIntoTheMappingWithoutCopyingAndSurviveAMove) {
  TempDir dir;
  const auto path = dir.write("m.safetensors", raw_file(kValidHeader, kValidBuffer));
  SafetensorsFile file(path);
  const auto whole = file.bytes();
  const TensorView& a = file.get("a");
  const std::byte* data = a.data.data();
  EXPECT_EQ(data, whole.data() + whole.size() - kValidBuffer.size()) << "the view is the file's own bytes";
  EXPECT_EQ(a.data.size(), 8u);

  SafetensorsFile moved(std::move(file));
  EXPECT_EQ(moved.get("a").data.data(), data);
  EXPECT_EQ(moved.get("a").to_float32(), (std::vector<float>{1.0f, -2.5f}));
  EXPECT_EQ(to_string(moved.get("b").data), std::string("\x01\x02\x03"));
  EXPECT_EQ(moved.get("b").numel(), 3);
  EXPECT_EQ(moved.path(), path);
}

TEST(SafetensorsFile, FindsTensorsByNameAndNamesTheFileWhenOneIsMissing) {
  TempDir dir;
  const auto path = dir.write("m.safetensors", raw_file(kValidHeader, kValidBuffer));
  const SafetensorsFile file(path);
  EXPECT_EQ(file.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_NE(file.find("b"), nullptr);
  EXPECT_EQ(file.find("c"), nullptr);
  EXPECT_TRUE(file.metadata().empty());
  EXPECT_ERROR(file.get("c"), path, "c", "no such tensor");
  EXPECT_ERROR(file.get("b").to_float32(path), path, "b", "cannot convert I8");
}

TEST(SafetensorsFile, ReadsMetadataAndAcceptsNullMetadata) {
  TempDir dir;
  const auto path = dir.write("m.safetensors", raw_file(R"({"__metadata__":{"format":"pt","x":""}})"));
  EXPECT_EQ(SafetensorsFile(path).metadata(),
            (std::map<std::string, std::string>{{"format", "pt"}, {"x", ""}}));
  const auto null_path = dir.write("n.safetensors", raw_file(R"({"__metadata__":null})"));
  EXPECT_TRUE(SafetensorsFile(null_path).metadata().empty());
}

TEST(SafetensorsFile, AcceptsWhitespacePaddingAndTensorsListedInAnyOrder) {
  TempDir dir;
  const std::string header =
      "\n {\"b\" : {\"shape\": [3], \"data_offsets\": [8, 11], \"dtype\": \"I8\"},\n"
      "  \"a\": {\"data_offsets\": [0, 8], \"dtype\": \"F32\", \"shape\": [2], \"extra\": 1}}   \t\n   ";
  const auto path = dir.write("m.safetensors", raw_file(header, kValidBuffer));
  const SafetensorsFile file(path);
  EXPECT_EQ(file.names(), (std::vector<std::string>{"a", "b"}));  // data order
  EXPECT_EQ(file.get("a").to_float32(), (std::vector<float>{1.0f, -2.5f}));
}

TEST(SafetensorsFile, ReadsZeroSizedTensorsAnywhereAndAnEmptyFile) {
  TempDir dir;
  const std::string header =
      R"({"e1":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
      R"("e2":{"dtype":"F64","shape":[5,0],"data_offsets":[2,2]}})";
  const SafetensorsFile file(dir.write("m.safetensors", raw_file(header, "ab")));
  EXPECT_EQ(file.get("e1").numel(), 0);
  EXPECT_EQ(file.get("e2").shape, (std::vector<std::int64_t>{5, 0}));
  EXPECT_TRUE(file.get("e2").to_float32().empty());
  EXPECT_TRUE(SafetensorsFile(dir.write("empty.safetensors", raw_file("{}"))).tensors().empty());
}

// tests/safetensors_reference.py writes a file with Python's struct and json only, following the format's
// specification, with an indented header, unaligned data and an unsorted layout.
TEST(SafetensorsFile, ReadsAFileWrittenByAnIndependentPythonWriter) {
  if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "/usr/bin/python3 is not installed";
  TempDir dir;
  const auto path = (dir.path() / "reference.safetensors").string();
  const std::string command =
      std::string("/usr/bin/python3 ") + DISRANKER_SOURCE_DIR + "/tests/safetensors_reference.py " + path;
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const SafetensorsFile file(path);
  EXPECT_EQ(file.metadata(),
            (std::map<std::string, std::string>{{"format", "pt"}, {"source", "safetensors_reference.py"}}));
  EXPECT_EQ(file.names(), (std::vector<std::string>{"b.f16", "a.f32", "c.bf16", "d.f64", "e.i64", "f.i32",
                                                    "g.u8", "h.bool", "i.i8", "j.i16", "k.empty", "l.u64"}));
  EXPECT_EQ(file.get("b.f16").shape, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(file.get("b.f16").to_float32(),
            (std::vector<float>{1.0f, -2.5f, 65504.0f, std::ldexp(1.0f, -24)}));
  EXPECT_EQ(file.get("a.f32").to_float32(), (std::vector<float>{0.5f, -1.25f, 3.0e38f}));
  EXPECT_EQ(file.get("c.bf16").to_float32(), (std::vector<float>{1.0f, -2.5f}));
  EXPECT_EQ(file.get("d.f64").to_float32(),
            (std::vector<float>{static_cast<float>(1.0 / 3.0), -std::numeric_limits<float>::infinity()}));
  auto ints = [&](const std::string& name, auto type_tag) {
    using T = decltype(type_tag);
    const auto data = file.get(name).data;
    std::vector<T> out(data.size() / sizeof(T));
    if (!out.empty()) std::memcpy(out.data(), data.data(), data.size());
    return out;
  };
  EXPECT_EQ(ints("e.i64", std::int64_t{}), (std::vector<std::int64_t>{-(std::int64_t{1} << 62), 7}));
  EXPECT_EQ(file.get("f.i32").shape, std::vector<std::int64_t>{});
  EXPECT_EQ(ints("f.i32", std::int32_t{}), (std::vector<std::int32_t>{-5}));
  EXPECT_EQ(ints("g.u8", std::uint8_t{}), (std::vector<std::uint8_t>{0, 128, 255}));
  EXPECT_EQ(ints("h.bool", std::uint8_t{}), (std::vector<std::uint8_t>{1, 0}));
  EXPECT_EQ(ints("i.i8", std::int8_t{}), (std::vector<std::int8_t>{-128, 127}));
  EXPECT_EQ(ints("j.i16", std::int16_t{}), (std::vector<std::int16_t>{-32768, 32767}));
  EXPECT_EQ(file.get("k.empty").shape, (std::vector<std::int64_t>{0, 4}));
  EXPECT_EQ(ints("l.u64", std::uint64_t{}),
            (std::vector<std::uint64_t>{std::numeric_limits<std::uint64_t>::max()}));
  EXPECT_EQ(file.get("d.f64").dtype, DType::kF64);
  EXPECT_EQ(file.get("h.bool").dtype, DType::kBool);
}

// -----------------------------------------------------------------------------------------------------------
// Reader: malformed files, one test per rule

class SafetensorsValidation : public ::testing::Test {
 protected:
  // Writes the file and expects opening it to fail naming it and `field`.
  void expect_rejected(const std::string& content, const std::string& field, const std::string& what) {
    const auto path = dir_.write("bad.safetensors", content);
    EXPECT_ERROR(SafetensorsFile(path), path, field, what);
  }
  TempDir dir_;
};

TEST_F(SafetensorsValidation, RejectsAFileShorterThanTheHeaderLength) {
  expect_rejected("", "", "file is 0 bytes, shorter than the 8-byte header length");
  expect_rejected(std::string(7, '\0'), "", "file is 7 bytes");
}

TEST_F(SafetensorsValidation, RejectsAHeaderLengthPastTheEndOfTheFile) {
  std::string content = raw_file("{}");
  content[0] = 3;  // claims 3 bytes of header, has 2
  expect_rejected(content, "", "header length 3 runs past the end of the 10-byte file");
  std::string huge(8, '\xff');
  expect_rejected(huge + "{}", "", "header length 18446744073709551615 exceeds the 100000000-byte limit");
}

TEST_F(SafetensorsValidation, RejectsAnAbsurdHeaderLengthEvenWhenTheFileIsThatLong) {
  std::string content = raw_file("{}");
  const std::uint64_t size = 100'000'001;
  std::memcpy(content.data(), &size, 8);
  expect_rejected(content, "", "header length 100000001 exceeds the 100000000-byte limit");
}

TEST_F(SafetensorsValidation, RejectsAHeaderThatIsNotUtf8) {
  expect_rejected(raw_file("{\"caf\xe9\":{}}"), "", "header is not valid UTF-8 (byte 5)");
}

TEST_F(SafetensorsValidation, RejectsAHeaderThatIsNotJson) {
  expect_rejected(raw_file("{\"a\":"), "", "header is not valid JSON");
  expect_rejected(raw_file("{} trailing"), "", "header is not valid JSON");
  expect_rejected(raw_file(std::string("{}\0\0\0\0\0\0", 8)), "", "header is not valid JSON");  // NUL padding
}

TEST_F(SafetensorsValidation, RejectsAHeaderThatIsNotAnObject) {
  expect_rejected(raw_file("[1,2]"), "", "header must be a JSON object");
  expect_rejected(raw_file("\"a\""), "", "header must be a JSON object");
}

TEST_F(SafetensorsValidation, RejectsADeeplyNestedHeader) {
  expect_rejected(raw_file(R"({"__metadata__":{"a":[[[[[[[[[[1]]]]]]]]]]}})"), "__metadata__.a",
                  "nested more than 8");
}

TEST_F(SafetensorsValidation, RejectsATensorNameThatAppearsTwice) {
  expect_rejected(raw_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                           R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                           "xy"),
                  "a", "key appears twice");
}

TEST_F(SafetensorsValidation, RejectsAnEntryThatIsNotAnObjectOrLacksAField) {
  expect_rejected(raw_file(R"({"a":[1]})"), "a", "tensor entry must be an object");
  expect_rejected(raw_file(R"({"a":{"shape":[1],"data_offsets":[0,1]}})", "x"), "a", "missing \"dtype\"");
  expect_rejected(raw_file(R"({"a":{"dtype":"U8","data_offsets":[0,1]}})", "x"), "a", "missing \"shape\"");
  expect_rejected(raw_file(R"({"a":{"dtype":"U8","shape":[1]}})", "x"), "a", "missing \"data_offsets\"");
  expect_rejected(raw_file(R"({"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "x"), "", "empty name");
}

TEST_F(SafetensorsValidation, RejectsAnUnknownDType) {
  expect_rejected(
      raw_file(R"({"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})", std::string(16, 'x')), "w",
      "unknown dtype \"F128\"");
  expect_rejected(raw_file(R"({"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", "xxxx"), "w",
                  "unknown dtype \"f32\"");
  expect_rejected(raw_file(R"({"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})", "xxxx"), "w",
                  "\"dtype\" must be a string");
  expect_rejected(raw_file(R"({"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}})", "x"), "w",
                  "sub-byte dtype \"F4\" is not supported");
}

TEST_F(SafetensorsValidation, RejectsNegativeOrNonIntegerDimensions) {
  auto file = [](const std::string& shape) {
    return raw_file(R"({"w":{"dtype":"U8","shape":)" + shape + R"(,"data_offsets":[0,4]}})", "xxxx");
  };
  expect_rejected(file("[-2,-2]"), "w", "\"shape\" dimension 0 is negative: -2");
  expect_rejected(file("[2,2.0]"), "w", "\"shape\" dimension 1 must be an integer in [0, 2^63), got 2.0");
  expect_rejected(file("[\"4\"]"), "w", "dimension 0 must be an integer");
  expect_rejected(file("[true]"), "w", "dimension 0 must be an integer");
  expect_rejected(file("[4e0]"), "w", "dimension 0 must be an integer");
  expect_rejected(file("[0,9223372036854775808]"), "w", "dimension 1 must be an integer in [0, 2^63)");
  expect_rejected(file("[0,18446744073709551616]"), "w", "dimension 1 must be an integer in [0, 2^63)");
  expect_rejected(file("4"), "w", "\"shape\" must be an array of integers");
}

TEST_F(SafetensorsValidation, RejectsDataOffsetsThatAreNotTwoNonNegativeIntegers) {
  auto file = [](const std::string& offsets) {
    return raw_file(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":)" + offsets + "}}", "xxxx");
  };
  expect_rejected(file("[0]"), "w", "\"data_offsets\" must be an array of 2 integers");
  expect_rejected(file("[0,4,4]"), "w", "must be an array of 2 integers");
  expect_rejected(file("{\"begin\":0}"), "w", "must be an array of 2 integers");
  expect_rejected(file("[-4,0]"), "w", "\"data_offsets\" must be 2 non-negative integers");
  expect_rejected(file("[0,4.0]"), "w", "must be 2 non-negative integers");
  expect_rejected(file("[0,null]"), "w", "must be 2 non-negative integers");
}

TEST_F(SafetensorsValidation, RejectsDataOffsetsWhoseBeginIsAfterTheEnd) {
  expect_rejected(raw_file(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[4,0]}})", "xxxx"), "w",
                  "\"data_offsets\" begin 4 is after end 0");
}

TEST_F(SafetensorsValidation, RejectsDataOffsetsBeyondTheBuffer) {
  expect_rejected(raw_file(R"({"w":{"dtype":"U8","shape":[5],"data_offsets":[0,5]}})", "xxxx"), "w",
                  "\"data_offsets\" end 5 is beyond the data buffer (4 bytes)");
  expect_rejected(
      raw_file(
          R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[18446744073709551615,18446744073709551615]}})"),
      "w", "beyond the data buffer (0 bytes)");
}

TEST_F(SafetensorsValidation, RejectsAByteSizeThatDoesNotMatchTheShapeAndDType) {
  expect_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "xxxxxxxx"), "w",
                  "data_offsets [0, 8] hold 8 bytes but shape [3] of F32 needs 12");
  expect_rejected(raw_file(R"({"w":{"dtype":"BF16","shape":[],"data_offsets":[0,4]}})", "xxxx"), "w",
                  "shape [] of BF16 needs 2");
}

TEST_F(SafetensorsValidation, RejectsAShapeWhoseByteSizeOverflowsWithoutWrappingAround) {
  // 2^32 * 2^32 elements wrap to 0 in 64-bit arithmetic, which would "match" an empty range.
  expect_rejected(raw_file(R"({"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"),
                  "w", "overflows");
  // 2^62 elements of 4 bytes wrap to 0 as well.
  expect_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})"),
                  "w", "overflows");
}

TEST_F(SafetensorsValidation, RejectsOverlappingTensors) {
  expect_rejected(raw_file(R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},)"
                           R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                           "xxxx"),
                  "b", "data_offsets [2, 4] overlap tensor \"a\" [0, 3]");
  // Two tensors sharing the same bytes.
  expect_rejected(raw_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                           R"("b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})",
                           "xx"),
                  "b", "overlap tensor \"a\"");
}

TEST_F(SafetensorsValidation, RejectsAGapBetweenTensorsOrBeforeTheFirst) {
  expect_rejected(raw_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                           R"("b":{"dtype":"U8","shape":[1],"data_offsets":[3,4]}})",
                           "xxxx"),
                  "b", "leave a gap: bytes [1, 3) of the data buffer belong to no tensor");
  expect_rejected(raw_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", "xx"), "a",
                  "bytes [0, 1) of the data buffer belong to no tensor");
}

TEST_F(SafetensorsValidation, RejectsTrailingBytesAfterTheLastTensor) {
  expect_rejected(
      raw_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "xyz"), "a",
      "the data buffer is 3 bytes but the tensors cover only 1: the last 2 bytes belong to no tensor");
  expect_rejected(raw_file("{}", "x"), "", "the last 1 bytes belong to no tensor");
}

TEST_F(SafetensorsValidation, RejectsMetadataThatIsNotAnObjectOfStrings) {
  expect_rejected(raw_file(R"({"__metadata__":{"total":1}})"), "__metadata__",
                  "value of \"total\" must be a string, got 1");
  expect_rejected(raw_file(R"({"__metadata__":["pt"]})"), "__metadata__", "must be an object of strings");
}

TEST_F(SafetensorsValidation, RejectsAMissingFileOrADirectory) {
  const auto missing = (dir_.path() / "absent.safetensors").string();
  EXPECT_ERROR(SafetensorsFile(missing), missing, "", "cannot open file for reading");
  EXPECT_ERROR(SafetensorsFile(dir_.path().string()), dir_.path().string(), "", "is a directory");
}

// Every truncation and 1500 random corruptions of a valid file either open or throw disranker::Error:
// never a crash, an out-of-bounds read or another exception (the sanitizer build checks the "never UB" half).
TEST_F(SafetensorsValidation, NeverFailsOtherThanWithAnErrorOnTruncatedOrCorruptedFiles) {
  const std::vector<float> f32 = {1, 2, 3, 4};
  const std::vector<std::uint16_t> f16 = {1, 2};
  const auto f32_bytes = bytes_of(f32);
  const auto f16_bytes = bytes_of(f16);
  const std::vector<TensorData> tensors = {{"a.weight", DType::kF32, {2, 2}, f32_bytes},
                                           {"b", DType::kF16, {2}, f16_bytes}};
  const std::string valid = serialize(tensors, {{"format", "pt"}});
  auto try_open = [&](const std::string& content) {
    const auto path = dir_.write("fuzz.safetensors", content);
    try {
      const SafetensorsFile file(path);
      for (const auto& tensor : file.tensors()) {
        EXPECT_LE(tensor.data.data() + tensor.data.size(), file.bytes().data() + file.bytes().size());
        if (is_float_dtype(tensor.dtype)) (void)tensor.to_float32();
      }
    } catch (const Error&) {
    }
  };
  for (std::size_t length = 0; length < valid.size(); ++length) try_open(valid.substr(0, length));
  std::mt19937 rng(99);
  for (int i = 0; i < 1500; ++i) {
    std::string content = valid;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % content.size();
      switch (rng() % 3) {
        case 0:
          content[at] = static_cast<char>(rng());
          break;
        case 1:
          content[at] = "0123456789[]{},:\"-.e "[rng() % 21];
          break;
        default:
          content.erase(at, 1);
          break;
      }
    }
    try_open(content);
  }
}

// -----------------------------------------------------------------------------------------------------------
// Checkpoints: a single file or sharded with model.safetensors.index.json

class SafetensorsCheckpointTest : public ::testing::Test {
 protected:
  SafetensorsCheckpointTest() {
    for (int i = 0; i < 5; ++i) {
      buffers_.push_back(std::vector<float>(static_cast<std::size_t>(10 + i), static_cast<float>(i)));
    }
    for (int i = 0; i < 5; ++i) {
      bytes_.push_back(bytes_of(buffers_[static_cast<std::size_t>(i)]));
      tensors_.push_back({"layer." + std::to_string(i), DType::kF32, {10 + i}, bytes_.back()});
    }
  }
  void write_index(const std::string& weight_map) const {
    dir_.write("model.safetensors.index.json",
               R"({"metadata": {"total_size": 1}, "weight_map": )" + weight_map + "}");
  }
  std::string index_path() const { return (dir_.path() / "model.safetensors.index.json").string(); }

  TempDir dir_;
  std::vector<std::vector<float>> buffers_;
  std::vector<std::vector<std::byte>> bytes_;
  std::vector<TensorData> tensors_;
};

TEST_F(SafetensorsCheckpointTest, WritesOneFileWhenItFitsAndOpensItFromTheDirectory) {
  write_safetensors_checkpoint(dir_.path().string(), tensors_, {{"format", "pt"}});
  EXPECT_TRUE(fs::exists(dir_.path() / "model.safetensors"));
  EXPECT_FALSE(fs::exists(dir_.path() / "model.safetensors.index.json"));
  const auto checkpoint = SafetensorsCheckpoint::open(dir_.path().string());
  EXPECT_EQ(checkpoint.files().size(), 1u);
  EXPECT_EQ(checkpoint.names().size(), 5u);
  EXPECT_EQ(checkpoint.get("layer.3").to_float32(), buffers_[3]);
  EXPECT_EQ(checkpoint.files()[0].metadata().at("format"), "pt");
}

TEST_F(SafetensorsCheckpointTest, ShardsLikeSavePretrainedAndFindsEveryTensorAcrossShards) {
  // 40, 44, 48, 52, 56 bytes with a 100-byte limit, greedy in name order: {0, 1}, {2, 3}, {4}.
  write_safetensors_checkpoint(dir_.path().string(), tensors_, {{"format", "pt"}}, 100);
  EXPECT_TRUE(fs::exists(dir_.path() / "model-00001-of-00003.safetensors"));
  EXPECT_TRUE(fs::exists(dir_.path() / "model-00003-of-00003.safetensors"));
  EXPECT_FALSE(fs::exists(dir_.path() / "model.safetensors"));
  const auto checkpoint = SafetensorsCheckpoint::open(dir_.path().string());
  EXPECT_EQ(checkpoint.files().size(), 3u);
  EXPECT_EQ(checkpoint.files()[1].names(), (std::vector<std::string>{"layer.2", "layer.3"}));
  EXPECT_EQ(checkpoint.index_metadata(), nlohmann::json({{"total_size", 40 + 44 + 48 + 52 + 56}}));
  EXPECT_EQ(checkpoint.names(),
            (std::vector<std::string>{"layer.0", "layer.1", "layer.2", "layer.3", "layer.4"}));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(checkpoint.get("layer." + std::to_string(i)).to_float32(),
              buffers_[static_cast<std::size_t>(i)]);
  }
  EXPECT_EQ(checkpoint.find("absent"), nullptr);
  EXPECT_ERROR(checkpoint.get("absent"), index_path(), "absent", "no such tensor in the checkpoint");
  // The index file itself opens too.
  EXPECT_EQ(SafetensorsCheckpoint::open(index_path()).names().size(), 5u);
  // Rewriting as one file removes the now stale index.
  write_safetensors_checkpoint(dir_.path().string(), tensors_);
  EXPECT_FALSE(fs::exists(index_path()));
  EXPECT_EQ(SafetensorsCheckpoint::open(dir_.path().string()).files().size(), 1u);
}

TEST_F(SafetensorsCheckpointTest, OpensAHandWrittenIndexAndASingleFilePath) {
  write_safetensors((dir_.path() / "s1.safetensors").string(), std::span(tensors_).first(2));
  write_safetensors((dir_.path() / "s2.safetensors").string(), std::span(tensors_).subspan(2));
  write_index(R"({"layer.0": "s1.safetensors", "layer.1": "s1.safetensors", "layer.2": "s2.safetensors",
                 "layer.3": "s2.safetensors", "layer.4": "s2.safetensors"})");
  const auto checkpoint = SafetensorsCheckpoint::open(dir_.path().string());
  EXPECT_EQ(checkpoint.get("layer.4").to_float32(), buffers_[4]);
  EXPECT_EQ(checkpoint.path(), index_path());
  const auto single = SafetensorsCheckpoint::open((dir_.path() / "s1.safetensors").string());
  EXPECT_EQ(single.names(), (std::vector<std::string>{"layer.0", "layer.1"}));
}

TEST_F(SafetensorsCheckpointTest, RejectsAShardThatIsMissing) {
  write_safetensors((dir_.path() / "s1.safetensors").string(), std::span(tensors_).first(1));
  write_index(R"({"layer.0": "s1.safetensors", "layer.1": "s2.safetensors"})");
  EXPECT_ERROR(SafetensorsCheckpoint::open(dir_.path().string()), index_path(), "layer.1",
               "s2.safetensors does not exist");
}

TEST_F(SafetensorsCheckpointTest, RejectsATensorThatItsShardDoesNotHold) {
  write_safetensors((dir_.path() / "s1.safetensors").string(), std::span(tensors_).first(1));
  write_index(R"({"layer.0": "s1.safetensors", "layer.9": "s1.safetensors"})");
  EXPECT_ERROR(SafetensorsCheckpoint::open(dir_.path().string()), index_path(), "layer.9",
               "which does not hold it");
}

TEST_F(SafetensorsCheckpointTest, RejectsATensorTheIndexDoesNotMapToTheShardHoldingIt) {
  write_safetensors((dir_.path() / "s1.safetensors").string(), std::span(tensors_).first(2));
  write_safetensors((dir_.path() / "s2.safetensors").string(), std::span(tensors_).subspan(1, 1));
  write_index(R"({"layer.0": "s1.safetensors"})");
  EXPECT_ERROR(SafetensorsCheckpoint::open(dir_.path().string()), index_path(), "layer.1",
               "holds it but the index does not list it");
  write_index(R"({"layer.0": "s1.safetensors", "layer.1": "s2.safetensors"})");  // s1 holds layer.1 too
  EXPECT_ERROR(SafetensorsCheckpoint::open(dir_.path().string()), index_path(), "layer.1",
               "holds it but the index maps it to s2.safetensors");
}

TEST_F(SafetensorsCheckpointTest, RejectsAMalformedIndex) {
  write_index(R"({"layer.0": "../outside.safetensors"})");
  EXPECT_ERROR(SafetensorsCheckpoint::open(dir_.path().string()), index_path(), "layer.0", "without '/'");
  write_index(R"({"layer.0": 3})");
  EXPECT_ERROR(SafetensorsCheckpoint::open(dir_.path().string()), index_path(), "layer.0",
               "must be a file name");
  write_index(R"([])");
  EXPECT_ERROR(SafetensorsCheckpoint::open(dir_.path().string()), index_path(), "weight_map",
               "must be an object");
  dir_.write("model.safetensors.index.json", R"({"metadata": {}})");
  EXPECT_ERROR(SafetensorsCheckpoint::open(dir_.path().string()), index_path(), "weight_map", "missing");
  dir_.write("model.safetensors.index.json", R"({"weight_map": {"a": "x", "a": "y"}})");
  EXPECT_ERROR(SafetensorsCheckpoint::open(dir_.path().string()), index_path(), "weight_map.a",
               "key appears twice");
}

TEST_F(SafetensorsCheckpointTest, RejectsADirectoryWithoutACheckpoint) {
  EXPECT_ERROR(SafetensorsCheckpoint::open(dir_.path().string()), dir_.path().string(), "",
               "holds neither model.safetensors nor model.safetensors.index.json");
}

}  // namespace
}  // namespace disranker
