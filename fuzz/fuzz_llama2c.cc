// libFuzzer target: the llama2.c tokenizer (stories260K's tok512.bin) through load_tokenizer. With the dummy
// prefix and byte fallback it is lossless: decode must give the input back.
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace disranker;
  const Tokenizer& tokenizer = fuzz::load_once(fuzz::data_file("weights/stories260K/tok512.bin"));
  fuzz::check(tokenizer, std::string_view(reinterpret_cast<const char*>(data), size), /*round_trip=*/true);
  return 0;
}
