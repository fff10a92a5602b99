// libFuzzer target: byte-level BPE (GPT-2 style) through load_tokenizer, on fuzz/tiny_bpe_tokenizer.json: the
// 256 byte tokens, 14 merges and the added special token <|endoftext|>. Byte-level BPE is lossless: decode
// must give the input back.
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace disranker;
  const Tokenizer& tokenizer = fuzz::load_once(fuzz::fuzz_file("tiny_bpe_tokenizer.json"));
  fuzz::check(tokenizer, std::string_view(reinterpret_cast<const char*>(data), size), /*round_trip=*/true);
  return 0;
}
