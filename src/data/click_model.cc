#include "data/click_model.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>

#include "core/error.h"

namespace disranker {

ClickModelKind parse_click_model_kind(const std::string& name) {
  if (name == "pbm") return ClickModelKind::kPbm;
  if (name == "cascade") return ClickModelKind::kCascade;
  throw Error("unknown click model '" + name + "' (expected pbm or cascade)");
}

std::string click_model_kind_name(ClickModelKind kind) {
  return kind == ClickModelKind::kPbm ? "pbm" : "cascade";
}

ClickModel::ClickModel(const ClickModelOptions& options) : options_(options) {
  const auto& o = options_;
  if (!(o.eta >= 0) || !std::isfinite(o.eta))
    throw Error("click model: eta must be >= 0, got " + std::to_string(o.eta));
  if (!(o.epsilon >= 0 && o.epsilon <= 1))
    throw Error("click model: epsilon must be in [0, 1], got " + std::to_string(o.epsilon));
  if (o.max_grade < 1 || o.max_grade > 30)
    throw Error("click model: the maximum grade must be in [1, 30], got " + std::to_string(o.max_grade));
  if (!(o.dwell_min_ms > 0) || !(o.dwell_max_ms >= o.dwell_min_ms) || !std::isfinite(o.dwell_max_ms)) {
    throw Error("click model: dwell medians must satisfy 0 < min <= max, got min " +
                std::to_string(o.dwell_min_ms) + " ms, max " + std::to_string(o.dwell_max_ms) + " ms");
  }
  if (!(o.dwell_sigma >= 0) || !std::isfinite(o.dwell_sigma))
    throw Error("click model: dwell sigma must be >= 0, got " + std::to_string(o.dwell_sigma));
}

double ClickModel::attractiveness(int grade) const {
  const int g = std::clamp(grade, 0, options_.max_grade);
  const double gain = (std::exp2(g) - 1) / (std::exp2(options_.max_grade) - 1);
  return options_.epsilon + (1 - options_.epsilon) * gain;
}

double ClickModel::examination(int rank) const {
  return std::pow(1.0 / rank, options_.eta);
}

double ClickModel::dwell_median_ms(int grade) const {
  const double fraction = static_cast<double>(std::clamp(grade, 0, options_.max_grade)) / options_.max_grade;
  return options_.dwell_min_ms * std::pow(options_.dwell_max_ms / options_.dwell_min_ms, fraction);
}

double standard_normal(SplitMix64& rng) {
  // 1 - uniform() is in (0, 1], so the logarithm is finite.
  const double radius = std::sqrt(-2 * std::log(1 - rng.uniform()));
  return radius * std::cos(2 * std::numbers::pi * rng.uniform());
}

double ClickModel::sample_dwell_ms(int grade, SplitMix64& rng) const {
  const double dwell = dwell_median_ms(grade) * std::exp(options_.dwell_sigma * standard_normal(rng));
  return std::max(1.0, std::round(dwell));
}

std::vector<SimulatedClick> ClickModel::simulate(std::span<const int> grades, SplitMix64& rng) const {
  std::vector<SimulatedClick> out(grades.size());
  for (std::size_t i = 0; i < grades.size(); ++i) {
    const int grade = grades[i];
    if (options_.kind == ClickModelKind::kPbm) {
      out[i].clicked = rng.uniform() < examination(static_cast<int>(i) + 1) * attractiveness(grade);
    } else {
      out[i].clicked = rng.uniform() < attractiveness(grade);
    }
    if (!out[i].clicked) continue;
    out[i].dwell_ms = sample_dwell_ms(grade, rng);
    if (options_.kind == ClickModelKind::kCascade && rng.uniform() < satisfaction(grade)) break;
  }
  return out;
}

int max_grade_in(const Qrels& qrels) {
  int best = 0;
  for (const auto& [qid, docs] : qrels.by_query) {
    for (const auto& [docid, grade] : docs) best = std::max(best, grade);
  }
  return best;
}

std::uint64_t fnv1a64(const std::string& text) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::vector<std::string> judged_page_order(const Qrels& qrels, const std::string& qid, std::uint64_t seed) {
  std::vector<std::string> order;
  const auto it = qrels.by_query.find(qid);
  if (it == qrels.by_query.end()) return order;
  for (const auto& [docid, grade] : it->second) order.push_back(docid);
  std::sort(order.begin(), order.end());
  SplitMix64 rng(batch_seed(seed, 1, static_cast<std::int64_t>(fnv1a64(qid))));
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  return order;
}

namespace {

// One eligible query: its text and its page (documents and grades, top first, at most depth long).
struct PageTemplate {
  const Query* query = nullptr;
  std::vector<const Doc*> docs;
  std::vector<int> grades;
};

}  // namespace

std::vector<Impression> simulate_click_log(const Queries& queries, const Docs& docs, const Qrels& qrels,
                                           const Run* run, const ClickSimulationOptions& options,
                                           ClickSimulationReport* report) {
  if (options.depth == 0) throw Error("click simulation: the page depth must be at least 1");
  const ClickModel model(options.model);
  ClickSimulationReport local;
  ClickSimulationReport& r = report != nullptr ? *report : local;
  r = ClickSimulationReport{};
  r.qrels_queries = qrels.by_query.size();

  std::vector<PageTemplate> pages;
  for (const auto& [qid, judged] : qrels.by_query) {
    const Query* query = queries.find(qid);
    if (query == nullptr) {
      ++r.no_query_text;
      continue;
    }
    std::vector<std::string> candidates;
    if (run != nullptr) {
      const auto it = run->by_query.find(qid);
      if (it != run->by_query.end()) {
        for (const auto& entry : it->second) candidates.push_back(entry.docid);
      }
    } else {
      candidates = judged_page_order(qrels, qid, options.seed);
    }
    PageTemplate page{query, {}, {}};
    for (const auto& docid : candidates) {
      if (page.docs.size() == options.depth) break;
      const Doc* doc = docs.find(docid);
      if (doc == nullptr) {
        ++r.missing_docs;
        continue;
      }
      const auto grade = judged.find(docid);
      page.docs.push_back(doc);
      page.grades.push_back(grade == judged.end() ? 0 : grade->second);
    }
    if (page.docs.empty()) {
      ++r.no_candidates;
      continue;
    }
    pages.push_back(std::move(page));
  }
  r.eligible_queries = pages.size();
  if (pages.empty()) {
    throw Error(
        "click simulation: no query has qrels, query text and a candidate document in the docs file "
        "(check that --qrels, --queries, --docs and --run belong to the same set)");
  }

  r.impressions_at.assign(options.depth, 0);
  r.clicks_at.assign(options.depth, 0);
  std::vector<Impression> log;
  log.reserve(options.sessions);
  for (std::size_t session = 0; session < options.sessions; ++session) {
    SplitMix64 rng(batch_seed(options.seed, 0, static_cast<std::int64_t>(session)));
    const PageTemplate& page = pages[rng.below(pages.size())];
    const auto clicks = model.simulate(page.grades, rng);
    Impression impression;
    impression.qid = page.query->id;
    impression.query = page.query->text;
    impression.session = "s" + std::to_string(session + 1);
    bool any_click = false;
    for (std::size_t i = 0; i < page.docs.size(); ++i) {
      const Doc& doc = *page.docs[i];
      impression.results.push_back(ClickResult{doc.id, doc.title, doc.text, static_cast<int>(i) + 1,
                                               clicks[i].clicked, clicks[i].dwell_ms});
      ++r.impressions_at[i];
      if (clicks[i].clicked) {
        ++r.clicks_at[i];
        ++r.clicks;
        any_click = true;
      }
    }
    if (!any_click) ++r.sessions_without_click;
    log.push_back(std::move(impression));
  }
  r.sessions = log.size();
  return log;
}

}  // namespace disranker
