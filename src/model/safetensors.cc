#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <system_error>
#include <utility>

#include "core/error.h"
#include "core/files.h"
#include "core/utf8.h"
#include "model/strict_json.h"

namespace disranker {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

using nlohmann::json;

// The reference implementation's limit on the header length.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
// A real header is 3 levels deep (object, tensor entry, shape array).
constexpr std::size_t kMaxHeaderDepth = 8;

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  std::size_t size;
};

constexpr std::array<DTypeInfo, 17> kDTypes{{
    {DType::kBool, "BOOL", 1},
    {DType::kU8, "U8", 1},
    {DType::kI8, "I8", 1},
    {DType::kF8_E5M2, "F8_E5M2", 1},
    {DType::kF8_E4M3, "F8_E4M3", 1},
    {DType::kF8_E8M0, "F8_E8M0", 1},
    {DType::kI16, "I16", 2},
    {DType::kU16, "U16", 2},
    {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2},
    {DType::kI32, "I32", 4},
    {DType::kU32, "U32", 4},
    {DType::kF32, "F32", 4},
    {DType::kC64, "C64", 8},
    {DType::kF64, "F64", 8},
    {DType::kI64, "I64", 8},
    {DType::kU64, "U64", 8},
}};

const DTypeInfo& info_of(DType dtype) {
  const auto index = static_cast<std::size_t>(dtype);
  if (index >= kDTypes.size()) throw Error("invalid DType value " + std::to_string(index));
  return kDTypes[index];
}

std::string errno_text(int error) {
  return std::error_code(error, std::generic_category()).message();
}

// a * b, or nullopt on overflow.
std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) {
  std::uint64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}

// The element count of a shape (every dimension >= 0), or nullopt when it overflows u64. A zero dimension
// makes the count 0 whatever the others are.
std::optional<std::uint64_t> element_count(std::span<const std::int64_t> shape) {
  std::uint64_t count = 1;
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  for (const std::int64_t dim : shape) {
    const auto next = checked_mul(count, static_cast<std::uint64_t>(dim));
    if (!next) return std::nullopt;
    count = *next;
  }
  return count;
}

std::string shape_text(std::span<const std::int64_t> shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// A JSON value that must be an integer in [0, 2^63): nlohmann parses non-negative integers that fit in u64 as
// unsigned, negative ones as signed, and anything else (fractions, exponents, overflow) as float.
std::optional<std::int64_t> as_dimension(const json& value) {
  if (!value.is_number_unsigned()) return std::nullopt;
  const auto v = value.get<std::uint64_t>();
  if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
  return static_cast<std::int64_t>(v);
}

std::string describe(const json& value) {
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

// One tensor entry of a header, before the coverage check.
struct Entry {
  std::string name;
  DType dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin;
  std::uint64_t end;
};

Entry parse_entry(const std::string& file, const std::string& name, const json& value,
                  std::uint64_t buffer_size) {
  auto fail = [&](const std::string& message) { throw Error(file, 0, name, message); };
  if (!value.is_object()) fail("tensor entry must be an object, got " + describe(value));

  const auto dtype_it = value.find("dtype");
  if (dtype_it == value.end()) fail("missing \"dtype\"");
  if (!dtype_it->is_string()) fail("\"dtype\" must be a string, got " + describe(*dtype_it));
  const auto& dtype_text = dtype_it->get_ref<const std::string&>();
  const auto dtype = parse_dtype(dtype_text);
  if (!dtype) {
    if (dtype_text == "F4" || dtype_text == "F6_E2M3" || dtype_text == "F6_E3M2") {
      fail("sub-byte dtype \"" + dtype_text + "\" is not supported");
    }
    fail("unknown dtype \"" + dtype_text + "\"");
  }

  const auto shape_it = value.find("shape");
  if (shape_it == value.end()) fail("missing \"shape\"");
  if (!shape_it->is_array()) fail("\"shape\" must be an array of integers, got " + describe(*shape_it));
  std::vector<std::int64_t> shape;
  shape.reserve(shape_it->size());
  for (std::size_t i = 0; i < shape_it->size(); ++i) {
    const json& dim = (*shape_it)[i];
    const auto parsed = as_dimension(dim);
    if (!parsed) {
      if (dim.is_number_integer() && !dim.is_number_unsigned()) {
        fail("\"shape\" dimension " + std::to_string(i) + " is negative: " + describe(dim));
      }
      fail("\"shape\" dimension " + std::to_string(i) + " must be an integer in [0, 2^63), got " +
           describe(dim));
    }
    shape.push_back(*parsed);
  }

  const auto offsets_it = value.find("data_offsets");
  if (offsets_it == value.end()) fail("missing \"data_offsets\"");
  if (!offsets_it->is_array() || offsets_it->size() != 2) {
    fail("\"data_offsets\" must be an array of 2 integers [begin, end], got " + describe(*offsets_it));
  }
  const json& begin_json = (*offsets_it)[0];
  const json& end_json = (*offsets_it)[1];
  if (!begin_json.is_number_unsigned() || !end_json.is_number_unsigned()) {
    fail("\"data_offsets\" must be 2 non-negative integers, got " + describe(*offsets_it));
  }
  const auto begin = begin_json.get<std::uint64_t>();
  const auto end = end_json.get<std::uint64_t>();
  if (begin > end) {
    fail("\"data_offsets\" begin " + std::to_string(begin) + " is after end " + std::to_string(end));
  }
  if (end > buffer_size) {
    fail("\"data_offsets\" end " + std::to_string(end) + " is beyond the data buffer (" +
         std::to_string(buffer_size) + " bytes)");
  }

  const auto count = element_count(shape);
  const auto bytes = count ? checked_mul(*count, dtype_size(*dtype)) : std::nullopt;
  if (!bytes) fail("shape " + shape_text(shape) + " overflows: its byte size does not fit in 64 bits");
  if (*bytes != end - begin) {
    fail("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] hold " +
         std::to_string(end - begin) + " bytes but shape " + shape_text(shape) + " of " + dtype_text +
         " needs " + std::to_string(*bytes));
  }
  return Entry{name, *dtype, std::move(shape), begin, end};
}

void check_name(const std::string& path, const std::string& name) {
  if (name.empty()) throw Error(path, 0, "", "tensor name is empty");
  if (!is_valid_utf8(name)) throw Error(path, 0, "", "tensor name is not valid UTF-8");
  if (name == "__metadata__")
    throw Error(path, 0, name, "\"__metadata__\" is reserved and cannot name a tensor");
}

// The reference library's float -> double -> float conversion for F64 without the undefined behaviour of an
// out-of-range static_cast: values beyond FLT_MAX round to FLT_MAX or to infinity as IEEE round-to-nearest
// does.
float double_to_float(double value) {
  constexpr double kMax = static_cast<double>(std::numeric_limits<float>::max());
  // Halfway between FLT_MAX and 2^128: the tie rounds to even, which is infinity (FLT_MAX's mantissa is odd).
  constexpr double kOverflow = kMax + std::ldexp(1.0, 127 - 24);
  if (std::isnan(value) || std::isinf(value)) return static_cast<float>(value);
  const double magnitude = std::fabs(value);
  if (magnitude > kMax) {
    const float result =
        magnitude >= kOverflow ? std::numeric_limits<float>::infinity() : std::numeric_limits<float>::max();
    return std::copysign(result, static_cast<float>(std::copysign(1.0, value)));
  }
  return static_cast<float>(value);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// dtypes and conversions

std::size_t dtype_size(DType dtype) {
  return info_of(dtype).size;
}
std::string_view dtype_name(DType dtype) {
  return info_of(dtype).name;
}

std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& info : kDTypes) {
    if (info.name == name) return info.dtype;
  }
  return std::nullopt;
}

bool is_float_dtype(DType dtype) {
  return dtype == DType::kF16 || dtype == DType::kBF16 || dtype == DType::kF32 || dtype == DType::kF64;
}

float bf16_to_float(std::uint16_t bits) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

float f16_to_float(std::uint16_t bits) {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  const std::uint32_t exponent = (bits >> 10) & 0x1fu;
  std::uint32_t mantissa = bits & 0x3ffu;
  std::uint32_t out = 0;
  if (exponent == 0x1f) {
    out = sign | 0x7f800000u | (mantissa << 13);  // infinity, or NaN with its payload
  } else if (exponent != 0) {
    out = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    out = sign;  // signed zero
  } else {
    // Subnormal: mantissa * 2^-24. Normalise so that the leading 1 sits at bit 10.
    std::int32_t e = 1 - 15;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    out = sign | (static_cast<std::uint32_t>(e + 127) << 23) | ((mantissa & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(out);
}

std::uint16_t float_to_bf16(float value) {
  const auto bits = std::bit_cast<std::uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<std::uint16_t>((bits >> 16) |
                                      0x0040u);  // NaN: keep sign and top payload, make it quiet
  }
  const std::uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

std::uint16_t float_to_f16(float value) {
  const auto bits = std::bit_cast<std::uint32_t>(value);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) {
    return static_cast<std::uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));  // quiet NaN
  }
  if (magnitude >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520: infinity
  std::uint32_t result = 0;
  std::uint32_t remainder = 0;
  std::uint32_t half = 0;
  if (magnitude < 0x38800000u) {
    // Below 2^-14, the smallest normal half: a subnormal half (or zero) counts units of 2^-24.
    const std::uint32_t exponent = magnitude >> 23;
    if (exponent < 102) return sign;  // below 2^-25: rounds to zero (2^-25 itself ties to the even zero)
    const std::uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126 - exponent;  // 14..24
    result = significand >> shift;
    remainder = significand & ((1u << shift) - 1);
    half = 1u << (shift - 1);
  } else {
    const std::uint32_t exponent = (magnitude >> 23) - 127 + 15;
    result = (exponent << 10) | ((magnitude & 0x7fffffu) >> 13);
    remainder = magnitude & 0x1fffu;
    half = 0x1000u;
  }
  if (remainder > half || (remainder == half && (result & 1u))) ++result;  // may carry into the exponent
  return static_cast<std::uint16_t>(sign | result);
}

void convert_to_float32(DType dtype, std::span<const std::byte> src, std::span<float> dst) {
  if (!is_float_dtype(dtype)) {
    throw Error("cannot convert " + std::string(dtype_name(dtype)) + " data to float32");
  }
  const std::size_t size = dtype_size(dtype);
  if (src.size() / size != dst.size() || src.size() % size != 0) {
    throw Error("cannot convert " + std::to_string(src.size()) + " bytes of " +
                std::string(dtype_name(dtype)) + " to " + std::to_string(dst.size()) + " floats");
  }
  const std::byte* in = src.data();
  switch (dtype) {
    case DType::kF32:
      if (!dst.empty()) std::memcpy(dst.data(), in, src.size());
      break;
    case DType::kBF16:
    case DType::kF16:
      for (std::size_t i = 0; i < dst.size(); ++i) {
        std::uint16_t bits = 0;
        std::memcpy(&bits, in + 2 * i, 2);
        dst[i] = dtype == DType::kBF16 ? bf16_to_float(bits) : f16_to_float(bits);
      }
      break;
    case DType::kF64:
      for (std::size_t i = 0; i < dst.size(); ++i) {
        double value = 0;
        std::memcpy(&value, in + 8 * i, 8);
        dst[i] = double_to_float(value);
      }
      break;
    default:
      break;
  }
}

std::int64_t TensorView::numel() const {
  std::int64_t count = 1;
  for (const std::int64_t dim : shape) count *= dim;  // validated on open: cannot overflow
  return count;
}

std::vector<float> TensorView::to_float32(const std::string& file) const {
  if (!is_float_dtype(dtype)) {
    throw Error(file, 0, name, "cannot convert " + std::string(dtype_name(dtype)) + " to float32");
  }
  std::vector<float> out(data.size() / dtype_size(dtype));
  convert_to_float32(dtype, data, out);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// SafetensorsFile

struct SafetensorsFile::Mapping {
  void* address = nullptr;
  std::size_t size = 0;
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (address != nullptr) ::munmap(address, size);
  }
};

SafetensorsFile::~SafetensorsFile() = default;
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;

SafetensorsFile::SafetensorsFile(const std::string& path)
    : path_(path), mapping_(std::make_unique<Mapping>()) {
  auto fail = [&](const std::string& field, const std::string& message) {
    throw Error(path, 0, field, message);
  };

  // Map the file read-only.
  errno = 0;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("", "cannot open file for reading: " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    fail("", "cannot stat file: " + errno_text(error));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail("", "is a directory, expected a safetensors file");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("", "is not a regular file");
  }
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    fail("", "file is " + std::to_string(file_size) +
                 " bytes, shorter than the 8-byte header length that starts a safetensors file");
  }
  void* address = ::mmap(nullptr, static_cast<std::size_t>(file_size), PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_error = errno;
  ::close(fd);
  if (address == MAP_FAILED) fail("", "cannot map file: " + errno_text(map_error));
  mapping_->address = address;
  mapping_->size = static_cast<std::size_t>(file_size);
  const auto* base = static_cast<const std::byte*>(address);

  // The header.
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, base, 8);
  if (header_size > kMaxHeaderBytes) {
    fail("", "header length " + std::to_string(header_size) + " exceeds the " +
                 std::to_string(kMaxHeaderBytes) + "-byte limit (not a safetensors file?)");
  }
  if (header_size > file_size - 8) {
    fail("", "header length " + std::to_string(header_size) + " runs past the end of the " +
                 std::to_string(file_size) + "-byte file (truncated?)");
  }
  const std::string_view header(reinterpret_cast<const char*>(base + 8),
                                static_cast<std::size_t>(header_size));
  const json root = detail::parse_strict_json(header, path, kMaxHeaderDepth, "header");
  if (!root.is_object()) fail("", "header must be a JSON object, got " + describe(root));

  const std::uint64_t buffer_size = file_size - 8 - header_size;
  std::vector<Entry> entries;
  entries.reserve(root.size());
  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      if (value.is_null()) continue;
      if (!value.is_object()) fail(key, "must be an object of strings, got " + describe(value));
      for (const auto& [meta_key, meta_value] : value.items()) {
        if (!meta_value.is_string()) {
          fail(key, "value of \"" + meta_key + "\" must be a string, got " + describe(meta_value));
        }
        metadata_.emplace(meta_key, meta_value.get<std::string>());
      }
      continue;
    }
    if (key.empty()) fail("", "a tensor has an empty name");
    entries.push_back(parse_entry(path, key, value, buffer_size));
  }

  // The tensors, in offset order, must tile the buffer: each starts where the previous one ended, and the
  // last ends where the file does.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  std::uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const auto& entry : entries) {
    if (entry.begin < covered) {
      fail(entry.name, "data_offsets [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) +
                           "] overlap tensor \"" + previous->name + "\" [" + std::to_string(previous->begin) +
                           ", " + std::to_string(previous->end) + "]");
    }
    if (entry.begin > covered) {
      fail(entry.name, "data_offsets [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) +
                           "] leave a gap: bytes [" + std::to_string(covered) + ", " +
                           std::to_string(entry.begin) + ") of the data buffer belong to no tensor");
    }
    covered = entry.end;
    previous = &entry;
  }
  if (covered != buffer_size) {
    fail(previous ? previous->name : "", "the data buffer is " + std::to_string(buffer_size) +
                                             " bytes but the tensors cover only " + std::to_string(covered) +
                                             ": the last " + std::to_string(buffer_size - covered) +
                                             " bytes belong to no tensor");
  }

  const std::byte* buffer = base + 8 + header_size;
  tensors_.reserve(entries.size());
  for (auto& entry : entries) {
    index_.emplace(entry.name, tensors_.size());
    tensors_.push_back(TensorView{std::move(entry.name), entry.dtype, std::move(entry.shape),
                                  std::span<const std::byte>(buffer + entry.begin, entry.end - entry.begin)});
  }
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& tensor : tensors_) out.push_back(tensor.name);
  return out;
}

const TensorView* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorView& SafetensorsFile::get(std::string_view name) const {
  const TensorView* tensor = find(name);
  if (tensor == nullptr) throw Error(path_, 0, std::string(name), "no such tensor in the file");
  return *tensor;
}

std::span<const std::byte> SafetensorsFile::bytes() const {
  if (!mapping_) return {};
  return {static_cast<const std::byte*>(mapping_->address), mapping_->size};
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

void write_safetensors(std::ostream& out, const std::string& path, std::span<const TensorData> tensors,
                       const std::map<std::string, std::string>& metadata) {
  for (const auto& [key, value] : metadata) {
    if (!is_valid_utf8(key) || !is_valid_utf8(value)) {
      throw Error(path, 0, "__metadata__",
                  "key or value of \"" + replace_invalid_utf8(key) + "\" is not valid UTF-8");
    }
  }
  std::set<std::string_view> seen;
  for (const auto& tensor : tensors) {
    check_name(path, tensor.name);
    if (!seen.insert(tensor.name).second) throw Error(path, 0, tensor.name, "two tensors have this name");
    for (const std::int64_t dim : tensor.shape) {
      if (dim < 0)
        throw Error(path, 0, tensor.name, "shape " + shape_text(tensor.shape) + " has a negative dimension");
    }
    const auto count = element_count(tensor.shape);
    const auto bytes = count ? checked_mul(*count, dtype_size(tensor.dtype)) : std::nullopt;
    if (!bytes || *bytes != tensor.data.size()) {
      throw Error(path, 0, tensor.name,
                  "data is " + std::to_string(tensor.data.size()) + " bytes but shape " +
                      shape_text(tensor.shape) + " of " + std::string(dtype_name(tensor.dtype)) + " needs " +
                      (bytes ? std::to_string(*bytes) : std::string("more than 2^64")));
    }
  }

  // The reference library's order: decreasing dtype (largest alignment first), then name.
  std::vector<const TensorData*> order;
  order.reserve(tensors.size());
  for (const auto& tensor : tensors) order.push_back(&tensor);
  std::sort(order.begin(), order.end(), [](const TensorData* a, const TensorData* b) {
    if (a->dtype != b->dtype) return a->dtype > b->dtype;
    return a->name < b->name;
  });

  std::string header = "{";
  if (!metadata.empty()) header += "\"__metadata__\":" + json(metadata).dump();
  std::uint64_t offset = 0;
  for (const TensorData* tensor : order) {
    if (header.size() > 1) header += ",";
    header += json(tensor->name).dump();
    header += ":{\"dtype\":\"";
    header += dtype_name(tensor->dtype);
    header += "\",\"shape\":[";
    for (std::size_t i = 0; i < tensor->shape.size(); ++i) {
      if (i > 0) header += ",";
      header += std::to_string(tensor->shape[i]);
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + ",";
    offset += tensor->data.size();
    header += std::to_string(offset) + "]}";
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  if (header.size() > kMaxHeaderBytes) {
    throw Error(path, 0, "",
                "header would be " + std::to_string(header.size()) + " bytes, over the " +
                    std::to_string(kMaxHeaderBytes) + "-byte limit of the format");
  }

  const std::uint64_t header_size = header.size();
  char length[8];
  std::memcpy(length, &header_size, 8);
  out.write(length, 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const TensorData* tensor : order) {
    if (!tensor->data.empty()) {
      out.write(reinterpret_cast<const char*>(tensor->data.data()),
                static_cast<std::streamsize>(tensor->data.size()));
    }
  }
}

void write_safetensors(const std::string& path, std::span<const TensorData> tensors,
                       const std::map<std::string, std::string>& metadata) {
  write_file_atomically(path, [&](std::ostream& out) { write_safetensors(out, path, tensors, metadata); });
}

// ---------------------------------------------------------------------------------------------------------------
// Checkpoints

namespace {

std::string read_whole_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path, 0, "", "is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, 0, "", "cannot open file for reading: " + errno_text(errno));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path, 0, "", "read error");
  return text;
}

bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

}  // namespace

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  SafetensorsCheckpoint checkpoint;
  std::string index_path;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / kIndexFile, ec)) {
      index_path = (dir / kIndexFile).string();
    } else if (fs::exists(dir / kSingleFile, ec)) {
      checkpoint.path_ = (dir / kSingleFile).string();
    } else {
      throw Error(path, 0, "", "directory holds neither " + kSingleFile + " nor " + kIndexFile);
    }
  } else if (path.ends_with(".json")) {
    index_path = path;
  } else {
    checkpoint.path_ = path;
  }

  if (index_path.empty()) {
    checkpoint.files_.emplace_back(checkpoint.path_);
  } else {
    checkpoint.path_ = index_path;
    const json index = detail::parse_strict_json(read_whole_file(index_path), index_path, 16, "index");
    if (!index.is_object()) throw Error(index_path, 0, "", "index must be a JSON object");
    if (const auto it = index.find("metadata"); it != index.end() && !it->is_null()) {
      if (!it->is_object()) throw Error(index_path, 0, "metadata", "must be an object, got " + describe(*it));
      checkpoint.index_metadata_ = *it;
    }
    const auto map_it = index.find("weight_map");
    if (map_it == index.end()) throw Error(index_path, 0, "weight_map", "missing");
    if (!map_it->is_object())
      throw Error(index_path, 0, "weight_map", "must be an object, got " + describe(*map_it));

    // shard file name -> the first tensor mapped to it (to name in errors)
    std::map<std::string, std::string> shards;
    for (const auto& [name, shard] : map_it->items()) {
      if (!shard.is_string())
        throw Error(index_path, 0, name, "shard must be a file name, got " + describe(shard));
      const auto& file = shard.get_ref<const std::string&>();
      if (!is_plain_file_name(file)) {
        throw Error(index_path, 0, name,
                    "shard \"" + file + "\" must be a file name beside the index, without '/'");
      }
      shards.emplace(file, name);
    }
    const fs::path dir = fs::path(index_path).parent_path();
    std::map<std::string, std::size_t> shard_index;
    checkpoint.files_.reserve(shards.size());
    for (const auto& [file, first_tensor] : shards) {
      const fs::path shard_path = dir / file;
      if (!fs::exists(shard_path, ec)) {
        throw Error(index_path, 0, first_tensor, "shard file " + shard_path.string() + " does not exist");
      }
      shard_index.emplace(file, checkpoint.files_.size());
      checkpoint.files_.emplace_back(shard_path.string());
    }
    // Every mapped tensor is in its shard...
    for (const auto& [name, shard] : map_it->items()) {
      const auto& file = checkpoint.files_[shard_index.at(shard.get<std::string>())];
      if (file.find(name) == nullptr) {
        throw Error(index_path, 0, name, "the index maps it to " + file.path() + ", which does not hold it");
      }
    }
    // ... and every tensor of a shard is mapped to that shard.
    for (const auto& file : checkpoint.files_) {
      for (const auto& tensor : file.tensors()) {
        const auto it = map_it->find(tensor.name);
        if (it == map_it->end()) {
          throw Error(index_path, 0, tensor.name,
                      "shard " + file.path() + " holds it but the index does not list it");
        }
        if (dir / it->get<std::string>() != fs::path(file.path())) {
          throw Error(
              index_path, 0, tensor.name,
              "shard " + file.path() + " holds it but the index maps it to " + it->get<std::string>());
        }
      }
    }
  }

  for (const auto& file : checkpoint.files_) {
    for (const auto& tensor : file.tensors()) {
      if (!checkpoint.tensors_.emplace(tensor.name, &tensor).second) {
        throw Error(checkpoint.path_, 0, tensor.name, "two shards hold this tensor");
      }
    }
  }
  return checkpoint;
}

const TensorView* SafetensorsCheckpoint::find(std::string_view name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second;
}

const TensorView& SafetensorsCheckpoint::get(std::string_view name) const {
  const TensorView* tensor = find(name);
  if (tensor == nullptr) throw Error(path_, 0, std::string(name), "no such tensor in the checkpoint");
  return *tensor;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, entry] : tensors_) out.push_back(name);
  return out;
}

void write_safetensors_checkpoint(const std::string& directory, std::span<const TensorData> tensors,
                                  const std::map<std::string, std::string>& metadata,
                                  std::uint64_t max_shard_bytes) {
  namespace fs = std::filesystem;
  const fs::path dir(directory);
  const std::string single_path = (dir / SafetensorsCheckpoint::kSingleFile).string();
  const std::string index_path = (dir / SafetensorsCheckpoint::kIndexFile).string();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(directory, 0, "", "checkpoint directory does not exist");
  if (max_shard_bytes == 0) throw Error(directory, 0, "", "max_shard_bytes must be positive");

  std::vector<const TensorData*> order;
  order.reserve(tensors.size());
  std::uint64_t total = 0;
  for (const auto& tensor : tensors) {
    order.push_back(&tensor);
    total += tensor.data.size();
  }
  std::sort(order.begin(), order.end(),
            [](const TensorData* a, const TensorData* b) { return a->name < b->name; });
  for (std::size_t i = 1; i < order.size(); ++i) {
    if (order[i]->name == order[i - 1]->name)
      throw Error(single_path, 0, order[i]->name, "two tensors have this name");
  }

  if (total <= max_shard_bytes) {
    write_safetensors(single_path, tensors, metadata);
    fs::remove(index_path, ec);  // a stale index would take precedence over the new file
    return;
  }

  // Greedy, in name order: a new shard starts when the next tensor would push the current one over the limit.
  std::vector<std::vector<TensorData>> shards(1);
  std::uint64_t shard_bytes = 0;
  for (const TensorData* tensor : order) {
    if (!shards.back().empty() && shard_bytes + tensor->data.size() > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(*tensor);
    shard_bytes += tensor->data.size();
  }
  auto shard_name = [&](std::size_t i) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    return std::string(name);
  };
  json weight_map = json::object();
  for (std::size_t i = 0; i < shards.size(); ++i) {
    const std::string name = shard_name(i);
    write_safetensors((dir / name).string(), shards[i], metadata);
    for (const auto& tensor : shards[i]) weight_map[tensor.name] = name;
  }
  const json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_file_atomically(index_path, [&](std::ostream& out) { out << index.dump(2) << "\n"; });
  fs::remove(single_path, ec);  // the index takes precedence, but leave no stale copy behind
}

}  // namespace disranker
