#include "pipeline/datasets.h"

#include <algorithm>
#include <iostream>
#include <unordered_set>

#include "core/error.h"
#include "data/docs.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"

namespace disranker::pipeline {
namespace fs = std::filesystem;

DatasetFiles find_dataset(const fs::path& data_dir, const std::string& name, bool needs_qrels) {
  const fs::path dir = data_dir / name;
  if (!fs::is_directory(dir)) {
    throw Error(dir.string(), 0, "",
                "dataset '" + name + "' not found: set DISRANKER_DATA to the shared data directory (now " +
                    data_dir.string() + ") or fix the set's name in the config");
  }
  DatasetFiles files;
  files.name = name;
  for (const auto& [path, required] :
       {std::pair{dir / "queries.tsv", true}, std::pair{dir / "docs.tsv", true},
        std::pair{dir / "qrels.txt", needs_qrels}}) {
    if (required && !fs::is_regular_file(path)) {
      throw Error(path.string(), 0, "", "missing: dataset '" + name + "' needs this file");
    }
  }
  files.queries = (dir / "queries.tsv").string();
  files.docs = (dir / "docs.tsv").string();
  if (fs::is_regular_file(dir / "qrels.txt")) files.qrels = (dir / "qrels.txt").string();
  if (fs::is_regular_file(dir / "run.BM25.txt")) files.run = (dir / "run.BM25.txt").string();
  if (files.qrels.empty() && files.run.empty()) {
    throw Error(dir.string(), 0, "",
                "dataset '" + name + "' has neither qrels.txt nor run.BM25.txt: no candidates");
  }
  return files;
}

std::string strip_set_prefix(const std::string& id) {
  const auto colon = id.find(':');
  return colon == std::string::npos ? id : id.substr(colon + 1);
}

std::size_t prepare_collection(const DatasetFiles& set, const std::string& out_dir) {
  fs::create_directories(out_dir);
  const Docs all = read_docs(set.docs, /*allow_empty=*/true);
  Docs kept;
  for (const auto& doc : all.items()) {
    if (!doc.title.empty() || !doc.text.empty()) kept.add(doc);
  }
  const std::size_t dropped = all.size() - kept.size();
  if (dropped > 0) {
    std::cerr << "prepare: " << set.name << ": " << dropped << " empty documents left out of " << all.size()
              << "\n";
  }
  write_docs((fs::path(out_dir) / "docs.tsv").string(), kept);
  write_queries((fs::path(out_dir) / "queries.tsv").string(), read_queries(set.queries));
  return dropped;
}

namespace {

// The candidates of one set: its BM25 run's top k, or its judged documents.
Run set_candidates(const DatasetFiles& set, std::size_t max_candidates) {
  if (set.run.empty()) return judged_candidates(read_qrels(set.qrels));
  Run run = read_run(set.run);
  run.sort_by_score();
  if (max_candidates > 0) {
    for (auto& [qid, entries] : run.by_query) {
      if (entries.size() > max_candidates) entries.resize(max_candidates);
    }
  }
  return run;
}

}  // namespace

MergeReport merge_datasets(const std::vector<DatasetFiles>& sets, std::size_t max_candidates, bool prefix_ids,
                           const std::string& out_dir) {
  fs::create_directories(out_dir);
  Queries queries;
  Docs docs;
  Qrels qrels;
  Run candidates;
  candidates.tag = "candidates";
  const bool labelled = std::all_of(sets.begin(), sets.end(), [](const auto& s) { return !s.qrels.empty(); });
  for (const auto& set : sets) {
    const std::string prefix = prefix_ids ? set.name + ":" : "";
    const Queries set_queries = read_queries(set.queries);
    const Docs set_docs = read_docs(set.docs, /*allow_empty=*/true);
    const Run set_run = set_candidates(set, max_candidates);
    std::unordered_set<std::string> wanted_docs;
    std::size_t without_text = 0;
    std::size_t missing_docs = 0;
    for (const auto& [qid, entries] : set_run.by_query) {
      if (!set_queries.find(qid)) {
        ++without_text;
        continue;
      }
      auto& out = candidates.by_query[prefix + qid];
      for (const auto& entry : entries) {
        const Doc* doc = set_docs.find(entry.docid);
        if (!doc || (doc->title.empty() && doc->text.empty())) {
          ++missing_docs;
          continue;
        }
        out.push_back({prefix + entry.docid, entry.score});
        wanted_docs.insert(entry.docid);
      }
      if (out.empty()) candidates.by_query.erase(prefix + qid);
    }
    if (without_text > 0 || missing_docs > 0) {
      std::cerr << "merge: " << set.name << ": left out " << without_text << " queries without text and "
                << missing_docs << " candidates without a (non-empty) document\n";
    }
    for (const auto& query : set_queries.items()) {
      if (candidates.by_query.count(prefix + query.id)) queries.add({prefix + query.id, query.text});
    }
    if (labelled) {
      for (const auto& [qid, judged] : read_qrels(set.qrels).by_query) {
        if (!candidates.by_query.count(prefix + qid)) continue;
        for (const auto& [docid, grade] : judged) {
          qrels.by_query[prefix + qid][prefix + docid] = grade;
          const Doc* doc = set_docs.find(docid);
          if (doc && !(doc->title.empty() && doc->text.empty())) wanted_docs.insert(docid);
        }
      }
    }
    for (const auto& doc : set_docs.items()) {
      if (wanted_docs.count(doc.id)) docs.add({prefix + doc.id, doc.title, doc.text});
    }
  }
  const fs::path dir(out_dir);
  write_queries((dir / "queries.tsv").string(), queries);
  write_docs((dir / "docs.tsv").string(), docs);
  write_run((dir / "candidates.txt").string(), candidates);
  if (labelled) write_qrels((dir / "qrels.txt").string(), qrels);
  return {queries.size(), docs.size(), qrels.num_judgments(), candidates.num_entries()};
}

}  // namespace disranker::pipeline
