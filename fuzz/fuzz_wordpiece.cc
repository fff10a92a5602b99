// libFuzzer target: BERT WordPiece (bert-base-uncased vocab.txt) through load_tokenizer. WordPiece is lossy
// (lower-casing, accent stripping, [UNK]), so decode is only required not to fail.
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace disranker;
  const Tokenizer& tokenizer = fuzz::load_once(fuzz::data_file("weights/vocab/bert-base-uncased-vocab.txt"));
  fuzz::check(tokenizer, std::string_view(reinterpret_cast<const char*>(data), size), /*round_trip=*/false);
  return 0;
}
