// libFuzzer target: Llama2cTokenizer's heap-based merge loop against llama2.c's own O(n^2) loop
// (tests/llama2c_reference.h) on small vocabularies full of score ties, where the leftmost-pair rule matters.
// The input builds the vocabulary and the text: bytes before the first 0xFF are pairs (shape, score) that
// each add a token of 2 to 5 letters over {a, b, c, " "} with one of 8 scores (some at or below llama2.c's
// -1e10 floor, one NaN); the bytes after it are the text (each byte a letter, or U+00E9 to exercise byte
// fallback) and the BOS/EOS flags.
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "../tests/llama2c_reference.h"
#include "fuzz_common.h"
#include "text/llama2c_tokenizer.h"

namespace {

void put_u32(std::string& out, std::uint32_t v) {
  for (int k = 0; k < 4; ++k) out.push_back(static_cast<char>((v >> (8 * k)) & 0xFF));
}

void put_entry(std::string& out, float score, const std::string& piece) {
  put_u32(out, std::bit_cast<std::uint32_t>(score));
  put_u32(out, static_cast<std::uint32_t>(piece.size()));
  out += piece;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace disranker;
  static constexpr char kLetters[] = {'a', 'b', 'c', ' '};
  static const float kScores[] = {0.0f,  -1.0f,  -1.0f,  -2.0f,
                                  -3.0f, -1e10f, -2e10f, std::numeric_limits<float>::quiet_NaN()};
  std::string file;
  put_u32(file, 6);  // max_token_length: the longest token, "\n</s>\n"
  put_entry(file, 0.0f, "<unk>");
  put_entry(file, 0.0f, "\n<s>\n");
  put_entry(file, 0.0f, "\n</s>\n");
  for (int b = 0; b < 256; ++b) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    put_entry(file, 0.0f, std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">");
  }
  for (const char* single : {" ", "a", "b", "c"}) put_entry(file, -50.0f, single);
  std::size_t i = 0;
  for (; i + 1 < size && data[i] != 0xFF; i += 2) {
    const unsigned shape = data[i], extra = data[i + 1];
    const std::size_t length = 2 + (extra >> 3) % 4;
    std::string piece;
    unsigned bits = shape | (extra << 8);
    for (std::size_t k = 0; k < length; ++k, bits >>= 2) piece += kLetters[bits & 3];
    put_entry(file, kScores[extra & 7], piece);
  }
  const auto tokenizer = Llama2cTokenizer::parse(file, "merges.bin");
  std::string text;
  bool bos = false, eos = false;
  for (std::size_t k = i + 1; k < size; ++k) {
    if (k == i + 1) {
      bos = data[k] & 1;
      eos = data[k] & 2;
      continue;
    }
    text += data[k] % 16 == 15 ? std::string("\xc3\xa9") : std::string(1, kLetters[data[k] % 4]);
  }
  const disranker::testing::Llama2cReference reference(*tokenizer);
  if (tokenizer->encode(text, bos, eos) != reference.encode(text, bos, eos)) {
    fuzz::fail("the merge loop differs from llama2.c's",
               std::string_view(reinterpret_cast<const char*>(data), size));
  }
  fuzz::check(*tokenizer, text, /*round_trip=*/true);
  return 0;
}
