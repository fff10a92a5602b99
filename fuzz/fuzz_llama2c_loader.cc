// libFuzzer target: the llama2.c tokenizer .bin parser on arbitrary bytes, and the merge loop on the
// vocabularies it accepts. A file either loads or is rejected with disranker::Error. One that loads must
// encode and decode without failing, ids in range, and its heap-based merge loop must give exactly the ids of
// llama2.c's own O(n^2) loop (tests/llama2c_reference.h) on texts made of the vocabulary's pieces, whatever
// the scores (ties, NaN, the -1e10 floor), duplicates or empty tokens. (No round trip here: with a vocabulary
// built to do so, llama2.c's rules are lossy, e.g. tokens "<0x4" + "1>" merge into the byte token <0x41>,
// which decodes as "A".)
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "../tests/llama2c_reference.h"
#include "core/error.h"
#include "fuzz_common.h"
#include "text/llama2c_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace disranker;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<Llama2cTokenizer> tokenizer;
  try {
    tokenizer = Llama2cTokenizer::parse(bytes, "fuzz.bin");
  } catch (const Error&) {
    return 0;
  }
  const Llama2cTokenizer& t = *tokenizer;
  // Texts: a fixed one; the file's tail; the pieces after the byte tokens, back to back (so that merges
  // happen).
  std::string pieces;
  for (std::size_t id = 259; id < t.vocab_size() && pieces.size() < 256; ++id) {
    pieces += t.id_to_token(static_cast<TokenId>(id));
  }
  const std::string texts[] = {"Once upon a time, \xe4\xb8\xad <0x41> \xff!",
                               std::string(bytes.substr(bytes.size() > 64 ? bytes.size() - 64 : 0)),
                               pieces.substr(0, 256),
                               " " + pieces.substr(0, 128) + " " + pieces.substr(0, 128)};
  const testing::Llama2cReference reference(t);
  for (const auto& text : texts) {
    fuzz::check(t, text, /*round_trip=*/false);
    for (const bool bos : {false, true}) {
      const bool eos = !bos;
      if (t.encode(text, bos, eos) != reference.encode(text, bos, eos)) {
        fuzz::fail("the merge loop differs from llama2.c's", bytes);
      }
    }
  }
  return 0;
}
