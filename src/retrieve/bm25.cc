#include "retrieve/bm25.h"

#include <fcntl.h>  // AT_FDCWD
#include <unistd.h>
#include <xapian.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>  // renameat2
#include <cstring>
#include <filesystem>
#include <sstream>
#include <unordered_map>

#include "core/error.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLanguageKey = "disranker:language";
constexpr const char* kTitlePrefix = "S";
constexpr const char* kDocidPrefix = "Q";
// The prefix Xapian's STEM_SOME puts before stemmed terms (ahead of any field prefix: "ZS..." for titles).
constexpr const char* kStemPrefix = "Z";

Xapian::Stem make_stemmer(const std::string& language) {
  try {
    return Xapian::Stem(language);  // "none" is Xapian's name for no stemming
  } catch (const Xapian::InvalidArgumentError&) {
    throw Error("unknown stemming language '" + language +
                "' (none, or one of: " + Xapian::Stem::get_available_languages() + ")");
  }
}

// The one place that decides how text becomes terms: documents and queries must be analysed identically.
// Callers use index_text_without_positions: BM25 needs no positions, so the index does not pay for them.
// CJK n-grams are always on because without them a run of Chinese characters is indexed as one "word" that
// no query can match, while text without CJK characters is unaffected.
Xapian::TermGenerator make_term_generator(const Xapian::Stem& stemmer) {
  Xapian::TermGenerator generator;
  generator.set_stemmer(stemmer);
  generator.set_stemming_strategy(Xapian::TermGenerator::STEM_SOME);
  generator.set_flags(Xapian::TermGenerator::FLAG_CJK_NGRAM);
  return generator;
}

bool has_term(const Xapian::Document& doc, const std::string& term) {
  auto it = doc.termlist_begin();
  it.skip_to(term);
  return it != doc.termlist_end() && *it == term;
}

// A bag-of-words OR query of the terms the indexer would generate for `text` in the field `prefix`, one form
// per word: the Z-stem where the indexer made one, the plain term otherwise (numbers; every word when
// stemming is off). A term that occurs n times has its weight scaled by n, as Anserini's bag-of-words query
// does (BM25's k3 would saturate it instead: with k3 = 1 a word said three times counts 1.5 times, which
// measurably hurts long queries such as CISI's). Xapian::QueryParser is not used, even in its plain-text
// mode: it ANDs the n-grams of a CJK run together, turns hyphenated or dotted words ("e-mail", "u.s.") into
// phrase searches and leaves words before quotes or brackets unstemmed, all of which lose matches that BM25
// should score.
Xapian::Query bag_of_words_query(const std::string& text, const std::string& prefix,
                                 Xapian::TermGenerator& generator, const Xapian::Stem& stemmer) {
  Xapian::Document scratch;
  generator.set_document(scratch);
  generator.index_text_without_positions(text, 1, prefix);
  std::vector<Xapian::Query> terms;
  for (auto it = scratch.termlist_begin(); it != scratch.termlist_end(); ++it) {
    const std::string term = *it;
    const bool stemmed = term.starts_with(kStemPrefix);
    if (stemmed || !has_term(scratch, kStemPrefix + prefix + stemmer(term.substr(prefix.size())))) {
      terms.emplace_back(Xapian::Query::OP_SCALE_WEIGHT, Xapian::Query(term), it.get_wdf());
    }
  }
  return Xapian::Query(Xapian::Query::OP_OR, terms.begin(), terms.end());
}

void write_index(const Docs& docs, const std::string& path, const IndexOptions& options,
                 const Xapian::Stem& stemmer) {
  Xapian::WritableDatabase db(path, Xapian::DB_CREATE);
  db.set_metadata(kLanguageKey, options.language);
  Xapian::TermGenerator generator = make_term_generator(stemmer);
  std::size_t done = 0;
  for (const auto& doc : docs.items()) {
    Xapian::Document document;
    generator.set_document(document);
    generator.index_text_without_positions(doc.title, 1, kTitlePrefix);
    generator.index_text_without_positions(doc.title);
    generator.index_text_without_positions(doc.text);
    document.set_data(doc.id);
    document.add_boolean_term(kDocidPrefix + doc.id);
    db.add_document(document);
    if (options.on_progress) options.on_progress(++done, docs.size());
  }
  db.commit();
}

bool is_xapian_database(const std::string& dir) {
  if (!fs::is_directory(dir)) return false;
  try {
    Xapian::Database db(dir);
    return true;
  } catch (const Xapian::Error&) {  // not a database, or one this Xapian cannot read: leave it alone
    return false;
  }
}

// Moves the finished index at `temp` to `dir` in one atomic step. RENAME_NOREPLACE fails instead of merging
// into a directory that appeared since the caller looked; RENAME_EXCHANGE swaps an existing index out so that
// a reader opening `dir` sees the old index or the new one, never neither. The old index ends up at `temp`.
void move_into_place(const std::string& temp, const std::string& dir, bool replacing) {
  const unsigned flags = replacing ? RENAME_EXCHANGE : RENAME_NOREPLACE;
  if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, dir.c_str(), flags) != 0) {
    throw Error(dir + ": cannot move the new index into place from " + temp + ": " + std::strerror(errno));
  }
}

std::string shortest(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

void check_options(const RetrieveOptions& options) {
  if (options.k == 0) throw Error("k must be at least 1");
  // Xapian silently clamps out-of-range parameters; a typo should not quietly become another model.
  if (!std::isfinite(options.k1) || options.k1 < 0)
    throw Error("BM25 k1 must be >= 0, got " + shortest(options.k1));
  if (!(options.b >= 0 && options.b <= 1))
    throw Error("BM25 b must be in [0, 1], got " + shortest(options.b));
}

}  // namespace

void build_bm25_index(const Docs& docs, const std::string& dir, const IndexOptions& options) {
  if (docs.size() == 0) throw Error(dir + ": no documents to index");
  const Xapian::Stem stemmer = make_stemmer(options.language);
  // "out/" must name the directory "out", not put the temporary directory inside it.
  std::string target = dir;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  const bool replacing = fs::exists(target);
  if (replacing && !options.force) throw Error(target + ": already exists (use --force to replace it)");
  if (replacing && !is_xapian_database(target)) {
    throw Error(target + ": exists and is not a Xapian index; refusing to replace it");
  }
  std::error_code ec;
  const fs::path parent = fs::path(target).parent_path();
  if (!parent.empty() && !fs::create_directories(parent, ec) && ec) {
    throw Error(parent.string() + ": cannot create directory: " + ec.message());
  }

  const std::string temp = target + ".tmp-" + std::to_string(::getpid());
  std::error_code ignored;
  try {
    write_index(docs, temp, options, stemmer);
    move_into_place(temp, target, replacing);
  } catch (const Xapian::Error& e) {
    fs::remove_all(temp, ignored);
    throw Error(target + ": cannot build the index: " + e.get_description());
  } catch (...) {
    fs::remove_all(temp, ignored);
    throw;
  }
  fs::remove_all(temp, ignored);  // the replaced index, if any
}

struct Bm25Index::Impl {
  Xapian::Database db;
  std::string language;
  Xapian::Stem stemmer;
  Xapian::TermGenerator generator;
};

Bm25Index::Bm25Index(const std::string& dir) {
  if (!fs::is_directory(dir)) throw Error(dir + ": no BM25 index here (build one with `disranker index`)");
  try {
    Xapian::Database db(dir);
    std::string language = db.get_metadata(kLanguageKey);
    if (language.empty()) {
      throw Error(dir + ": not an index built by `disranker index` (no " + kLanguageKey + " metadata)");
    }
    Xapian::Stem stemmer = make_stemmer(language);
    Xapian::TermGenerator generator = make_term_generator(stemmer);
    impl_ = std::make_unique<Impl>(Impl{std::move(db), std::move(language), stemmer, generator});
  } catch (const Xapian::Error& e) {
    throw Error(dir + ": cannot open the BM25 index: " + e.get_description());
  }
}

Bm25Index::~Bm25Index() = default;
Bm25Index::Bm25Index(Bm25Index&&) noexcept = default;
Bm25Index& Bm25Index::operator=(Bm25Index&&) noexcept = default;

std::vector<RunEntry> Bm25Index::search(const std::string& query, const RetrieveOptions& options) const {
  check_options(options);
  std::vector<RunEntry> hits;
  try {
    Xapian::Enquire enquire(impl_->db);
    // k2 = 0 drops Xapian's query-length term, as standard BM25 does. k3 = 1 is Xapian's default and has no
    // effect here: every query term has wqf 1 (repetition is a weight scale, see bag_of_words_query).
    // min_normlen 0.5 is Xapian's floor on the normalised document length.
    enquire.set_weighting_scheme(Xapian::BM25Weight(options.k1, 0, 1, options.b, 0.5));
    enquire.set_query(
        bag_of_words_query(query, options.title_only ? kTitlePrefix : "", impl_->generator, impl_->stemmer));
    const auto k = std::min<std::size_t>(options.k, impl_->db.get_doccount());
    const Xapian::MSet mset = enquire.get_mset(0, static_cast<Xapian::doccount>(k));
    hits.reserve(mset.size());
    for (auto it = mset.begin(); it != mset.end(); ++it)
      hits.push_back({it.get_document().get_data(), it.get_weight()});
  } catch (const Xapian::Error& e) {
    throw Error("BM25 search for '" + query + "' failed: " + e.get_description());
  }
  return hits;
}

std::size_t Bm25Index::num_docs() const {
  return impl_->db.get_doccount();
}

bool Bm25Index::has_doc(const std::string& docid) const {
  return impl_->db.term_exists("Q" + docid);
}

const std::string& Bm25Index::language() const {
  return impl_->language;
}

Run retrieve_bm25(const std::string& index_dir, const Queries& queries, const RetrieveOptions& options) {
  check_options(options);
  const Bm25Index index(index_dir);
  Run run;
  run.tag = options.tag;
  for (const auto& query : queries.items()) {
    auto hits = index.search(query.text, options);
    if (!hits.empty()) run.by_query[query.id] = std::move(hits);
  }
  return run;
}

Run rerank_bm25(const std::string& index_dir, const Queries& queries, const Run& candidates,
                const RetrieveOptions& options, const std::string& candidates_source) {
  check_options(options);
  const Bm25Index index(index_dir);
  RetrieveOptions all = options;
  all.k = index.num_docs();
  Run run;
  run.tag = options.tag;
  for (const auto& [qid, entries] : candidates.by_query) {
    const Query* query = queries.find(qid);
    if (query == nullptr)
      throw Error(candidates_source, 0, "qid", "query " + qid + " is not in the queries file");
    std::unordered_map<std::string, double> bm25;
    for (auto& hit : index.search(query->text, all)) bm25.emplace(std::move(hit.docid), hit.score);
    auto& out = run.by_query[qid];
    for (const auto& entry : entries) {
      const auto found = bm25.find(entry.docid);
      if (found == bm25.end() && !index.has_doc(entry.docid)) {
        throw Error(candidates_source, 0, "docid",
                    "document " + entry.docid + " of query " + qid + " is not in the index " + index_dir);
      }
      out.push_back({entry.docid, found == bm25.end() ? 0.0 : found->second});
    }
  }
  run.sort_by_score();
  return run;
}

}  // namespace disranker
