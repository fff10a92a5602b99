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
  if (name == "dbn") return ClickModelKind::kDbn;
  throw Error("unknown click model '" + name + "' (expected pbm, cascade or dbn)");
}

std::string click_model_kind_name(ClickModelKind kind) {
  switch (kind) {
    case ClickModelKind::kPbm:
      return "pbm";
    case ClickModelKind::kCascade:
      return "cascade";
    case ClickModelKind::kDbn:
      return "dbn";
  }
  return "?";
}

namespace {

// An explicit per-grade mapping must cover every grade 0..max_grade with a probability.
void check_mapping(const std::vector<double>& mapping, int max_grade, const std::string& what) {
  if (mapping.empty()) return;
  if (mapping.size() != static_cast<std::size_t>(max_grade) + 1) {
    throw Error("click model: the " + what + " mapping needs one probability per grade 0.." +
                std::to_string(max_grade) + " (" + std::to_string(max_grade + 1) + " values), got " +
                std::to_string(mapping.size()));
  }
  for (std::size_t g = 0; g < mapping.size(); ++g) {
    if (!(mapping[g] >= 0 && mapping[g] <= 1)) {
      throw Error("click model: the " + what + " of grade " + std::to_string(g) + " must be in [0, 1], got " +
                  std::to_string(mapping[g]));
    }
  }
}

}  // namespace

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
  if (!(o.gamma >= 0 && o.gamma <= 1))
    throw Error("click model: gamma (DBN continuation) must be in [0, 1], got " + std::to_string(o.gamma));
  check_mapping(o.attractiveness_by_grade, o.max_grade, "attractiveness");
  check_mapping(o.satisfaction_by_grade, o.max_grade, "satisfaction");

  for (int g = 0; g <= o.max_grade; ++g) {
    const double gain = (std::exp2(g) - 1) / (std::exp2(o.max_grade) - 1);
    attractiveness_.push_back(o.attractiveness_by_grade.empty()
                                  ? o.epsilon + (1 - o.epsilon) * gain
                                  : o.attractiveness_by_grade[static_cast<std::size_t>(g)]);
    const double fraction = static_cast<double>(g) / o.max_grade;
    dwell_median_ms_.push_back(o.dwell_min_ms * std::pow(o.dwell_max_ms / o.dwell_min_ms, fraction));
  }
  satisfaction_ = o.satisfaction_by_grade.empty() ? attractiveness_ : o.satisfaction_by_grade;
  for (int rank = 1; rank <= kCachedRanks; ++rank) examination_.push_back(std::pow(1.0 / rank, o.eta));
}

double ClickModel::examination(int rank) const {
  if (rank >= 1 && rank <= kCachedRanks) return examination_[static_cast<std::size_t>(rank - 1)];
  return std::pow(1.0 / rank, options_.eta);
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
  simulate_into(grades, rng, out);
  return out;
}

void ClickModel::simulate_into(std::span<const int> grades, SplitMix64& rng,
                               std::span<SimulatedClick> out) const {
  std::fill(out.begin(), out.end(), SimulatedClick{});
  const bool pbm = options_.kind == ClickModelKind::kPbm;
  const double gamma = patience();
  for (std::size_t i = 0; i < grades.size(); ++i) {
    const int grade = grades[i];
    const double click_probability =
        pbm ? examination(static_cast<int>(i) + 1) * attractiveness(grade) : attractiveness(grade);
    out[i].clicked = rng.uniform() < click_probability;
    if (out[i].clicked) out[i].dwell_ms = sample_dwell_ms(grade, rng);
    if (pbm) continue;
    if (out[i].clicked && rng.uniform() < satisfaction(grade)) break;
    // Not satisfied: the DBN user gives up with probability 1 - gamma. The cascade (gamma 1) draws nothing
    // here, so that its sessions are the ones it drew before the DBN existed.
    if (gamma < 1 && !(rng.uniform() < gamma)) break;
  }
}

std::vector<double> ClickModel::click_probabilities(std::span<const int> grades) const {
  std::vector<double> probabilities(grades.size());
  double examined = 1;  // cascade and DBN: P(the user reaches this rank)
  for (std::size_t i = 0; i < grades.size(); ++i) {
    const double a = attractiveness(grades[i]);
    if (options_.kind == ClickModelKind::kPbm) {
      probabilities[i] = examination(static_cast<int>(i) + 1) * a;
      continue;
    }
    probabilities[i] = examined * a;
    examined *= patience() * (1 - a * satisfaction(grades[i]));
  }
  return probabilities;
}

double ClickModel::page_click_probability(std::span<const int> grades) const {
  double no_click = 1;
  if (options_.kind == ClickModelKind::kPbm) {
    for (const double p : click_probabilities(grades)) no_click *= 1 - p;
    return 1 - no_click;
  }
  // Backwards: P(no click from rank k on | rank k examined) = (1 - a_k) * (gamma * P(no click from k+1 on |
  // examined) + (1 - gamma)): an unclicked result leads to the next one with probability gamma, and the page
  // is abandoned otherwise; below the last result nothing can be clicked.
  const double gamma = patience();
  for (std::size_t i = grades.size(); i > 0; --i) {
    no_click = (1 - attractiveness(grades[i - 1])) * (gamma * no_click + (1 - gamma));
  }
  return 1 - no_click;
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
