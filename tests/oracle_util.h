// Runs the Hugging Face tokenizers library (tests/oracle/hf_encode.js under Node) as the reference that
// DisRanker's tokenizers must match id for id, and gathers the shared data's strings to compare on.
#pragma once

#include <string>
#include <vector>

namespace disranker::testing {

struct OracleEncoding {
  std::vector<int> ids;
  std::vector<std::string> tokens;
  std::string decoded;  // only with decode = true
};

// Encodes every input (raw bytes; invalid UTF-8 allowed) with the reference tokenizer loaded from
// `tokenizer_path` (a tokenizer.json, or a BERT vocab.txt; extra_args e.g. "--cased"). Fails the calling test
// (ADD_FAILURE) and returns an empty vector when Node or the npm package is missing: `./test.sh` installs them.
std::vector<OracleEncoding> hf_encode(const std::string& tokenizer_path, const std::vector<std::string>& inputs,
                                      bool decode = false, const std::string& extra_args = "");

// The shared data directory (DISRANKER_DATA, else DISRANKER_SOURCE_DIR/../shared/data), or "" when absent.
std::string shared_data_dir();

// Every query text and every document title and text of the named shared sets ("trec-dl19", "qbqtc-dev", ...),
// in file order, empty strings left out.
std::vector<std::string> shared_strings(const std::vector<std::string>& sets);

// Hand-written hard cases: control characters, combining accents, emoji, CJK, very long words, whitespace of every
// kind, invalid UTF-8, the empty string.
std::vector<std::string> adversarial_strings();

}  // namespace disranker::testing
