#include "data/click_derive.h"

#include <utf8proc.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "data/tsv.h"

namespace disranker {
namespace {

// Remembers the (normalised) pairs seen so far.
class PairDeduplicator {
 public:
  // True when the pair has not been seen before (and remembers it).
  bool insert(const CptPair& pair) {
    // The fields cannot hold a tab (they are flattened), so tab-joined keys are unambiguous.
    return seen_
        .insert(normalize_for_dedup(pair.query) + '\t' + normalize_for_dedup(pair.title) + '\t' +
                normalize_for_dedup(pair.summary))
        .second;
  }

 private:
  std::unordered_set<std::string> seen_;
};

bool is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string collapse_whitespace(std::string_view text) {
  std::string out;
  bool pending_space = false;
  for (const char c : text) {
    if (is_space(static_cast<unsigned char>(c))) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

}  // namespace

std::string normalize_for_dedup(std::string_view text) {
  utf8proc_uint8_t* mapped = nullptr;
  const auto length = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                   static_cast<utf8proc_ssize_t>(text.size()), &mapped,
                                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE |
                                                                  UTF8PROC_COMPAT | UTF8PROC_CASEFOLD));
  // Only invalid UTF-8 (or memory exhaustion) makes utf8proc fail; the readers reject invalid UTF-8 before
  // any text gets here, so the raw text is a safe fallback.
  std::string folded =
      length < 0 ? std::string(text)
                 : std::string(reinterpret_cast<const char*>(mapped), static_cast<std::size_t>(length));
  std::free(mapped);
  return collapse_whitespace(folded);
}

std::string flatten_tsv_field(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

// ---- CPT pairs from a click log ----

std::vector<CptPair> cpt_pairs_from_clicks(const std::vector<Impression>& log,
                                           const ClickPairOptions& options, ClickPairReport* report) {
  ClickPairReport local;
  ClickPairReport& r = report != nullptr ? *report : local;
  r = ClickPairReport{};
  PairDeduplicator dedup;
  std::vector<CptPair> pairs;
  for (const auto& impression : log) {
    ++r.impressions;
    for (const auto& result : impression.results) {
      if (!result.clicked) continue;
      ++r.clicks;
      if (result.dwell_ms < options.min_dwell_ms) {
        ++r.short_dwell;
        continue;
      }
      CptPair pair{flatten_tsv_field(impression.query), flatten_tsv_field(result.title),
                   flatten_tsv_field(result.summary)};
      if (is_blank(pair.title) && is_blank(pair.summary)) {
        ++r.no_text;
        continue;
      }
      if (options.dedup && !dedup.insert(pair)) {
        ++r.duplicates;
        continue;
      }
      pairs.push_back(std::move(pair));
    }
  }
  r.kept = pairs.size();
  return pairs;
}

// ---- CPT pairs from WikiQA's qrels ----

QrelsPairTarget parse_qrels_pair_target(const std::string& name) {
  if (name == "page") return QrelsPairTarget::kPage;
  if (name == "positive") return QrelsPairTarget::kPositive;
  throw Error("unknown pair target '" + name + "' (expected page or positive)");
}

std::vector<OrderedJudgments> read_qrels_in_file_order(const std::string& path) {
  // read_qrels checks every line (grades, duplicates) and reports errors; the second pass only keeps order.
  const Qrels qrels = read_qrels(path);
  std::vector<OrderedJudgments> ordered;
  std::unordered_map<std::string, std::size_t> index;
  read_whitespace_columns(path, {"qid", "iteration", "docid", "grade"}, [&](const TsvRow& row) {
    const std::string qid(row.fields[0]);
    const std::string docid(row.fields[2]);
    const auto [it, inserted] = index.emplace(qid, ordered.size());
    if (inserted) ordered.push_back(OrderedJudgments{qid, {}});
    ordered[it->second].docs.emplace_back(docid, *qrels.grade(qid, docid));
  });
  return ordered;
}

std::vector<CptPair> cpt_pairs_from_qrels(const Queries& queries, const Docs& docs,
                                          const std::vector<OrderedJudgments>& judgments,
                                          const QrelsPairOptions& options, QrelsPairReport* report) {
  QrelsPairReport local;
  QrelsPairReport& r = report != nullptr ? *report : local;
  r = QrelsPairReport{};
  std::unordered_map<std::string, const OrderedJudgments*> by_qid;
  for (const auto& judged : judgments) {
    by_qid.emplace(judged.qid, &judged);
    if (queries.find(judged.qid) == nullptr) ++r.unknown_qids;
  }
  PairDeduplicator dedup;
  std::vector<CptPair> pairs;
  auto emit = [&](CptPair pair) {
    if (options.dedup && !dedup.insert(pair)) {
      ++r.duplicates;
      return;
    }
    pairs.push_back(std::move(pair));
  };
  for (const auto& query : queries.items()) {
    ++r.questions;
    const auto it = by_qid.find(query.id);
    std::vector<std::pair<const Doc*, int>> sentences;
    if (it != by_qid.end()) {
      for (const auto& [docid, grade] : it->second->docs) {
        const Doc* doc = docs.find(docid);
        if (doc == nullptr) {
          ++r.missing_docs;
          continue;
        }
        sentences.emplace_back(doc, grade);
      }
    }
    if (sentences.empty()) {
      ++r.without_candidates;
      continue;
    }
    const bool has_positive =
        std::any_of(sentences.begin(), sentences.end(), [](const auto& s) { return s.second >= 1; });
    if (!has_positive) ++r.without_positive;
    const std::string question = flatten_tsv_field(query.text);
    if (options.target == QrelsPairTarget::kPositive) {
      for (const auto& [doc, grade] : sentences) {
        if (grade < 1) continue;
        CptPair pair{question, flatten_tsv_field(doc->title), flatten_tsv_field(doc->text)};
        if (!is_blank(pair.title) || !is_blank(pair.summary)) emit(std::move(pair));
      }
      continue;
    }
    CptPair pair{question, flatten_tsv_field(sentences.front().first->title), ""};
    bool mixed = false;
    for (const auto& [doc, grade] : sentences) {
      mixed = mixed || doc->title != sentences.front().first->title;
      if (is_blank(doc->text)) continue;
      if (!pair.summary.empty()) pair.summary += ' ';
      pair.summary += flatten_tsv_field(doc->text);
    }
    if (mixed) ++r.mixed_titles;
    // Documents hold a title or a text (read_docs), so the pair has a document side.
    emit(std::move(pair));
  }
  r.kept = pairs.size();
  return pairs;
}

// ---- Graded labels from clicks ----

ClickLabelMethod parse_click_label_method(const std::string& name) {
  if (name == "ctr") return ClickLabelMethod::kCtr;
  if (name == "ipw") return ClickLabelMethod::kIpw;
  throw Error("unknown label method '" + name + "' (expected ipw or ctr)");
}

std::vector<ClickRate> click_rates(const std::vector<Impression>& log, double eta, double max_weight,
                                   std::size_t* clipped) {
  struct Sums {
    std::size_t impressions = 0;
    std::size_t clicks = 0;
    double weighted_clicks = 0;
  };
  std::map<std::pair<std::string, std::string>, Sums> sums;
  std::size_t clipped_clicks = 0;
  for (const auto& impression : log) {
    for (const auto& result : impression.results) {
      Sums& s = sums[{impression.qid, result.docid}];
      ++s.impressions;
      if (!result.clicked) continue;
      ++s.clicks;
      // 1 / propensity = 1 / (1/k)^eta = k^eta.
      const double weight = std::pow(static_cast<double>(result.position), eta);
      if (weight > max_weight) ++clipped_clicks;
      s.weighted_clicks += std::min(weight, max_weight);
    }
  }
  std::vector<ClickRate> rates;
  rates.reserve(sums.size());
  for (const auto& [key, s] : sums) {
    const auto n = static_cast<double>(s.impressions);
    rates.push_back(ClickRate{key.first, key.second, s.impressions, s.clicks,
                              static_cast<double>(s.clicks) / n, s.weighted_clicks / n});
  }
  if (clipped != nullptr) *clipped = clipped_clicks;
  return rates;
}

int grade_from_thresholds(double estimate, const std::vector<double>& thresholds) {
  int grade = 0;
  for (const double t : thresholds) grade += estimate >= t ? 1 : 0;
  return grade;
}

Qrels click_labels(const std::vector<Impression>& log, const ClickLabelOptions& options,
                   ClickLabelReport* report) {
  if (options.thresholds.empty()) throw Error("click labels: at least one threshold is needed");
  for (std::size_t i = 0; i < options.thresholds.size(); ++i) {
    const double t = options.thresholds[i];
    if (!std::isfinite(t) || t < 0) {
      throw Error("click labels: thresholds must be finite and >= 0, got " + std::to_string(t));
    }
    if (i > 0 && !(t > options.thresholds[i - 1])) {
      throw Error(
          "click labels: thresholds must be strictly ascending (grade g needs the g-th threshold), "
          "got " +
          std::to_string(options.thresholds[i - 1]) + " then " + std::to_string(t));
    }
  }
  if (!(options.eta >= 0) || !std::isfinite(options.eta))
    throw Error("click labels: eta must be >= 0, got " + std::to_string(options.eta));
  if (!(options.max_weight >= 1))
    throw Error("click labels: the maximum IPW weight must be >= 1, got " +
                std::to_string(options.max_weight));

  ClickLabelReport local;
  ClickLabelReport& r = report != nullptr ? *report : local;
  r = ClickLabelReport{};
  r.impressions = log.size();
  r.grade_counts.assign(options.thresholds.size() + 1, 0);
  const auto rates = click_rates(log, options.eta, options.max_weight, &r.clipped_weights);
  r.pairs = rates.size();
  Qrels qrels;
  for (const auto& rate : rates) {
    if (rate.impressions < options.min_impressions) {
      ++r.too_few_impressions;
      continue;
    }
    const double estimate = options.method == ClickLabelMethod::kIpw ? rate.ipw : rate.ctr;
    const int grade = grade_from_thresholds(estimate, options.thresholds);
    qrels.by_query[rate.qid][rate.docid] = grade;
    ++r.grade_counts[static_cast<std::size_t>(grade)];
    ++r.labelled;
  }
  return qrels;
}

}  // namespace disranker
