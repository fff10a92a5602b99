// The pipeline's view of the data: named sets in the shared layout (queries.tsv, docs.tsv, qrels.txt,
// run.BM25.txt), their candidate lists, and the merge of several sets into one training set or distillation
// pool. No libtorch.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace disranker::pipeline {

struct DatasetFiles {
  std::string name;     // "wikiqa-train"
  std::string queries;  // DIR/queries.tsv
  std::string docs;     // DIR/docs.tsv
  std::string qrels;    // DIR/qrels.txt, empty when the set has none
  std::string run;      // DIR/run.BM25.txt, empty when the set has none (its candidates are the judged docs)
};

// Locates a set under the data directory. Throws Error naming the missing file and DISRANKER_DATA.
// needs_qrels: the set is used for training or evaluation, so its labels must exist.
DatasetFiles find_dataset(const std::filesystem::path& data_dir, const std::string& name, bool needs_qrels);

struct MergeReport {
  std::size_t queries = 0;
  std::size_t docs = 0;
  std::size_t judgments = 0;
  std::size_t candidates = 0;
};

// Writes OUT_DIR/queries.tsv, docs.tsv, candidates.txt (a TREC run) and, when every set has labels,
// qrels.txt: the union of the sets, with every id prefixed by "<set>:" when prefix_ids (so that ids of
// different sets cannot collide; an evaluation set keeps its own ids). A set's candidates are the top
// `max_candidates` of its run.BM25.txt (0: all), or its judged documents when it has no run. Only documents
// that are candidates (or judged) are written. Queries without a candidate are left out and counted on
// stderr.
MergeReport merge_datasets(const std::vector<DatasetFiles>& sets, std::size_t max_candidates, bool prefix_ids,
                           const std::string& out_dir);

// A whole collection for out-of-domain evaluation: OUT_DIR/queries.tsv and docs.tsv, without the documents
// that have neither title nor text (they cannot be scored; their number is printed on stderr). Returns how
// many documents were left out.
std::size_t prepare_collection(const DatasetFiles& set, const std::string& out_dir);

// "wikiqa-train:Q1" → "Q1" (ids of a merged set back to the set's own).
std::string strip_set_prefix(const std::string& id);

}  // namespace disranker::pipeline
