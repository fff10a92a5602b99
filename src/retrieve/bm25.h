// First-stage retrieval: a Xapian index of a documents TSV and BM25 ranking over it.
//
// Index layout (docs/retrieval.md has the reasoning):
//   - title words as S-prefixed terms (a title-only field), and title + text words as unprefixed terms (the
//   field
//     that ordinary queries search), both with Xapian's STEM_SOME scheme: each word gives its lower-cased
//     form and, when it starts with a letter, a "Z"-prefixed stem;
//   - CJK runs as character unigrams and bigrams (Xapian's CJK n-gram mode, always on);
//   - the docid as the document data and as the unique boolean term "Q<docid>";
//   - the stemming language as the metadata key "disranker:language", so that queries are analysed the same
//   way.
// Xapian is kept out of this header: callers need neither its headers nor its types.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/docs.h"
#include "data/queries.h"
#include "data/run.h"

namespace disranker {

struct IndexOptions {
  // A Xapian stemmer name ("english", "french", ...) or "none" for no stemming.
  std::string language = "english";
  // Replace an existing index at the target directory. Without it an existing directory is an error.
  bool force = false;
  // Called after each indexed document with (documents done, total); may be empty.
  std::function<void(std::size_t, std::size_t)> on_progress;
};

// Builds an index of `docs` at `dir`. The index is written to "<dir>.tmp-<pid>" and moved to `dir` only when
// complete, so `dir` never holds a partial index: on any failure the temporary directory is removed and `dir`
// keeps what it had. With `force`, an existing index at `dir` is swapped out atomically; a directory that is
// not a Xapian index is never replaced. Throws Error for an empty document list, an unknown language or a
// Xapian failure.
void build_bm25_index(const Docs& docs, const std::string& dir, const IndexOptions& options);

struct RetrieveOptions {
  std::size_t k = 100;  // documents per query
  // BM25 parameters; the defaults are Anserini's for MS MARCO passages.
  double k1 = 0.9;
  double b = 0.4;
  // Search only the title field (the S-prefixed terms) instead of title + text.
  bool title_only = false;
  std::string tag = "BM25";  // run tag written by write_run
};

// An open index. Xapian's database objects are not thread-safe, so a Bm25Index must not be searched from two
// threads at once: open one per thread.
class Bm25Index {
 public:
  // Throws Error naming `dir` when it does not exist or is not an index built by build_bm25_index.
  explicit Bm25Index(const std::string& dir);
  ~Bm25Index();
  Bm25Index(Bm25Index&&) noexcept;
  Bm25Index& operator=(Bm25Index&&) noexcept;

  // The top options.k documents for a plain-text query, best first. Any text is accepted: punctuation and
  // words such as AND, OR or NOT are not operators. A query with no indexable words, or that matches nothing,
  // gives an empty list.
  std::vector<RunEntry> search(const std::string& query, const RetrieveOptions& options) const;

  std::size_t num_docs() const;
  // Whether a document with this docid is indexed.
  bool has_doc(const std::string& docid) const;
  const std::string& language() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs every query against the index at `index_dir`. Queries that match nothing are absent from the run.
Run retrieve_bm25(const std::string& index_dir, const Queries& queries, const RetrieveOptions& options);

// BM25 as a reranker: each query's candidates (e.g. WikiQA's judged sentences, or another system's top 100)
// scored by BM25 over the whole index, exactly: the query is searched with k = the index size, and a
// candidate that shares no term with the query scores 0 (BM25's value for it). options.k is ignored. A
// candidate docid that is not in the index, or a qid that is not in `queries`, is an Error naming
// `candidates_source`.
Run rerank_bm25(const std::string& index_dir, const Queries& queries, const Run& candidates,
                const RetrieveOptions& options, const std::string& candidates_source = "candidates");

}  // namespace disranker
