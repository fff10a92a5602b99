// Hugging Face safetensors: reading (memory-mapped, zero-copy, validated), writing (atomic, byte-compatible
// with the reference `safetensors` library) and sharded checkpoints (`model.safetensors.index.json`). No
// libtorch.
//
// The format: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON header
//   {"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
//   ...}
// (it may be padded with trailing spaces), then the data buffer. Offsets are relative to the start of the
// buffer, row-major, little-endian. The reader enforces what the reference implementation enforces: N <= 100
// 000 000, the header is valid UTF-8 and JSON, every tensor's byte size is product(shape) * element size, and
// the tensors, taken in offset order, cover the buffer exactly: no overlap, no gap, no trailing byte. It is
// stricter in two places: a key that appears twice in one JSON object is an error (the reference keeps the
// last silently), and so is a header nested more than 8 deep.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace disranker {

// The element types of the format, in the reference library's order (increasing alignment), which the writer
// uses to lay tensors out. The sub-byte types F4, F6_E2M3 and F6_E3M2 are not supported (the reader rejects
// them by name).
enum class DType : std::uint8_t {
  kBool,
  kU8,
  kI8,
  kF8_E5M2,
  kF8_E4M3,
  kF8_E8M0,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kC64,
  kF64,
  kI64,
  kU64,
};

// Bytes per element: 1, 2, 4 or 8.
std::size_t dtype_size(DType dtype);
// The format's name: "BOOL", "U8", ..., "F32", "BF16", "C64".
std::string_view dtype_name(DType dtype);
// The dtype with that exact (case-sensitive) name, or nullopt.
std::optional<DType> parse_dtype(std::string_view name);
// F16, BF16, F32 and F64: the types convert_to_float32 accepts.
bool is_float_dtype(DType dtype);

// Bit-exact scalar conversions. Widening (to float) is exact for every input, including subnormals,
// infinities and NaN (a NaN keeps its sign and payload bits). Narrowing (from float) rounds to nearest, ties
// to even; overflow gives infinity; a NaN stays a quiet NaN with its sign.
float bf16_to_float(std::uint16_t bits);
float f16_to_float(std::uint16_t bits);
std::uint16_t float_to_bf16(float value);
std::uint16_t float_to_f16(float value);

// Converts little-endian F16/BF16/F32/F64 data to float32 (F64 rounds to nearest). `src` need not be aligned.
// Throws Error when the dtype is not a float type or src.size() != dst.size() * dtype_size(dtype).
void convert_to_float32(DType dtype, std::span<const std::byte> src, std::span<float> dst);

// One tensor of an open file: its data points into the file's mapping (valid while the file is open). The
// data is aligned to the element size when the writer aligned it (this library and the reference library do),
// which the reader does not require.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;
  std::span<const std::byte> data;

  std::int64_t numel() const;
  // The data as float32 (F16, BF16, F32, F64; Error otherwise). `file` names the source in the error message.
  std::vector<float> to_float32(const std::string& file = "") const;
};

// A safetensors file, memory-mapped read-only and validated when opened. Move-only; views stay valid (and at
// the same addresses) when the object is moved, until it is destroyed.
class SafetensorsFile {
 public:
  // Opens and validates `path`. Throws Error(path, 0, tensor name or "", what is wrong) for any malformed
  // file.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // The tensors in data order (increasing offset).
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // Their names, in the same order.
  std::vector<std::string> names() const;
  // The tensor with that name, or nullptr.
  const TensorView* find(std::string_view name) const;
  // The tensor with that name; Error(path, 0, name, "no such tensor") when absent.
  const TensorView& get(std::string_view name) const;
  // The "__metadata__" map (empty when absent or null).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The whole mapped file (for tests and checksums).
  std::span<const std::byte> bytes() const;

 private:
  struct Mapping;
  std::string path_;
  std::unique_ptr<Mapping> mapping_;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// A tensor to write: its bytes are little-endian, row-major, dtype_size(dtype) * product(shape) long.
struct TensorData {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;
  std::span<const std::byte> data;
};

// Writes a safetensors file atomically (a temporary file renamed into place). The layout is the reference
// library's, byte for byte: tensors sorted by decreasing dtype order (so that each tensor's data is aligned
// to its element size) then by name; header JSON compact, "__metadata__" first (keys sorted), then the
// tensors in data order, each {"dtype","shape","data_offsets"}; header padded with spaces to a multiple of 8
// bytes. Throws Error(path, 0, tensor name, ...) for an empty or duplicate name, the reserved name
// "__metadata__", a negative dimension, a data size that does not match the shape, or invalid UTF-8 in a name
// or metadata.
void write_safetensors(const std::string& path, std::span<const TensorData> tensors,
                       const std::map<std::string, std::string>& metadata = {});
// The same bytes to a stream; `path` only names the destination in error messages.
void write_safetensors(std::ostream& out, const std::string& path, std::span<const TensorData> tensors,
                       const std::map<std::string, std::string>& metadata = {});

// A checkpoint of one or more safetensors files. A sharded checkpoint is described by an index JSON
// {"metadata": {...}, "weight_map": {tensor name: shard file name}}; shard files are resolved beside the
// index and must be plain file names (no directories, no "..").
class SafetensorsCheckpoint {
 public:
  inline static const std::string kSingleFile = "model.safetensors";
  inline static const std::string kIndexFile = "model.safetensors.index.json";

  // `path` is a directory (holding model.safetensors.index.json or else model.safetensors), an index .json
  // file, or a single .safetensors file. Every shard is opened and validated. Errors name the index file and
  // the tensor: a shard that is missing, a tensor the index maps to a shard that lacks it, and a tensor a
  // shard holds that the index does not map to it (which covers a tensor held by two shards).
  static SafetensorsCheckpoint open(const std::string& path);

  // The tensor with that name in whichever shard holds it, or nullptr / Error naming the checkpoint.
  const TensorView* find(std::string_view name) const;
  const TensorView& get(std::string_view name) const;
  // All tensor names, sorted.
  std::vector<std::string> names() const;
  // The shards in the order of their file names.
  const std::vector<SafetensorsFile>& files() const { return files_; }
  // The index's "metadata" object (e.g. {"total_size": 123}); an empty object for a single file.
  const nlohmann::json& index_metadata() const { return index_metadata_; }
  // The index file, or the single file.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, const TensorView*, std::less<>> tensors_;
  nlohmann::json index_metadata_ = nlohmann::json::object();
};

// Writes `tensors` into `directory` as model.safetensors when they fit in one shard of `max_shard_bytes`
// (tensor data bytes), and otherwise as model-00001-of-0000N.safetensors ... plus
// model.safetensors.index.json with {"metadata": {"total_size": bytes}, "weight_map": {...}}, as Hugging
// Face's save_pretrained does. Tensors are assigned to shards in name order; a tensor larger than the limit
// gets a shard of its own. Each file is written atomically, the index last. `metadata` goes into every
// shard's "__metadata__".
void write_safetensors_checkpoint(const std::string& directory, std::span<const TensorData> tensors,
                                  const std::map<std::string, std::string>& metadata = {},
                                  std::uint64_t max_shard_bytes = std::uint64_t{5} << 30);

}  // namespace disranker
