#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace disranker {
namespace {

constexpr double kUndefined = std::numeric_limits<double>::quiet_NaN();

std::size_t parse_cutoff(const std::string& name, const std::string& suffix) {
  if (suffix.empty() || suffix.find_first_not_of("0123456789") != std::string::npos || suffix.size() > 6) {
    throw Error("metric '" + name + "': expected a positive integer cutoff after the dot");
  }
  const auto k = std::stoul(suffix);
  if (k == 0) throw Error("metric '" + name + "': the cutoff must be at least 1");
  return k;
}

double gain_of(int grade, GainMode mode) {
  if (grade <= 0) return 0;  // trec_eval gives no gain to grade 0 and negative grades
  return mode == GainMode::kLinear ? grade : std::exp2(grade) - 1.0;
}

// Discounted cumulative gain of a list of gains, at most `cutoff` of them (0 = all).
double dcg(const std::vector<double>& gains, std::size_t cutoff) {
  const std::size_t n = cutoff == 0 ? gains.size() : std::min(cutoff, gains.size());
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += gains[i] / std::log2(static_cast<double>(i) + 2.0);
  return sum;
}

// What one query contributes: its ranked grades (-1 marks an unjudged document) and scores, and its judgments.
struct RankedQuery {
  std::vector<int> grades;      // by rank; kUnjudged for documents without a judgment
  std::vector<double> scores;   // by rank
  std::vector<double> ideal_gains;  // every judged grade's gain, sorted descending
  std::size_t num_rel = 0;
};

constexpr int kUnjudged = std::numeric_limits<int>::min();

double ndcg(const RankedQuery& q, std::size_t cutoff, GainMode mode) {
  std::vector<double> gains;
  gains.reserve(q.grades.size());
  for (int g : q.grades) gains.push_back(g == kUnjudged ? 0.0 : gain_of(g, mode));
  const double ideal = dcg(q.ideal_gains, cutoff);
  return ideal > 0 ? dcg(gains, cutoff) / ideal : 0.0;
}

PnrCounts pnr_counts(const RankedQuery& q) {
  PnrCounts counts;
  for (std::size_t i = 0; i < q.grades.size(); ++i) {
    if (q.grades[i] == kUnjudged) continue;
    for (std::size_t j = i + 1; j < q.grades.size(); ++j) {
      if (q.grades[j] == kUnjudged || q.grades[j] == q.grades[i]) continue;
      ++counts.pairs;
      const bool i_better = q.grades[i] > q.grades[j];
      const double hi = i_better ? q.scores[i] : q.scores[j];
      const double lo = i_better ? q.scores[j] : q.scores[i];
      if (hi > lo) {
        counts.concordant += 1;
      } else if (hi < lo) {
        counts.discordant += 1;
      } else {
        counts.concordant += 0.5;
        counts.discordant += 0.5;
      }
    }
  }
  return counts;
}

double pnr_of(const PnrCounts& c) { return c.pairs == 0 ? kUndefined : c.concordant / std::max(c.discordant, 1.0); }

double value_of(const MetricSpec& m, const RankedQuery& q, const PnrCounts& pnr, const EvalOptions& options) {
  auto relevant = [&](int grade) { return grade != kUnjudged && grade >= options.rel_level; };
  const std::size_t n = q.grades.size();
  switch (m.kind) {
    case MetricSpec::Kind::kNdcg:
      return ndcg(q, 0, options.gain);
    case MetricSpec::Kind::kNdcgCut:
      return ndcg(q, m.cutoff, options.gain);
    case MetricSpec::Kind::kMap: {
      if (q.num_rel == 0) return 0;
      double sum = 0;
      std::size_t found = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (relevant(q.grades[i])) sum += static_cast<double>(++found) / static_cast<double>(i + 1);
      }
      return sum / static_cast<double>(q.num_rel);
    }
    case MetricSpec::Kind::kRecipRank:
    case MetricSpec::Kind::kMrrCut: {
      const std::size_t limit = m.kind == MetricSpec::Kind::kMrrCut ? std::min(n, m.cutoff) : n;
      for (std::size_t i = 0; i < limit; ++i) {
        if (relevant(q.grades[i])) return 1.0 / static_cast<double>(i + 1);
      }
      return 0;
    }
    case MetricSpec::Kind::kPrecision:
    case MetricSpec::Kind::kRecall: {
      std::size_t found = 0;
      for (std::size_t i = 0; i < std::min(n, m.cutoff); ++i) found += relevant(q.grades[i]) ? 1 : 0;
      if (m.kind == MetricSpec::Kind::kPrecision) return static_cast<double>(found) / static_cast<double>(m.cutoff);
      return q.num_rel == 0 ? 0.0 : static_cast<double>(found) / static_cast<double>(q.num_rel);
    }
    case MetricSpec::Kind::kPnr:
    case MetricSpec::Kind::kPnrMacro:
      return pnr_of(pnr);
  }
  return kUndefined;
}

}  // namespace

MetricSpec parse_metric(const std::string& name) {
  MetricSpec m;
  m.name = name;
  const auto dot = name.find('.');
  const std::string base = name.substr(0, dot);
  const std::string suffix = dot == std::string::npos ? "" : name.substr(dot + 1);
  using Kind = MetricSpec::Kind;
  struct Known {
    const char* base;
    Kind kind;
    bool has_cutoff;
  };
  static const Known known[] = {
      {"ndcg", Kind::kNdcg, false},       {"ndcg_cut", Kind::kNdcgCut, true}, {"map", Kind::kMap, false},
      {"recip_rank", Kind::kRecipRank, false}, {"mrr_cut", Kind::kMrrCut, true}, {"P", Kind::kPrecision, true},
      {"recall", Kind::kRecall, true},    {"pnr", Kind::kPnr, false},         {"pnr_macro", Kind::kPnrMacro, false},
  };
  for (const auto& k : known) {
    if (base != k.base) continue;
    if (k.has_cutoff != (dot != std::string::npos)) {
      throw Error("metric '" + name + "': " + (k.has_cutoff ? "needs a cutoff, e.g. " + base + ".10" : "takes no cutoff"));
    }
    m.kind = k.kind;
    if (k.has_cutoff) m.cutoff = parse_cutoff(name, suffix);
    return m;
  }
  throw Error("unknown metric '" + name +
              "' (known: ndcg, ndcg_cut.K, map, recip_rank, mrr_cut.K, P.K, recall.K, pnr, pnr_macro)");
}

std::vector<MetricSpec> default_metrics() {
  std::vector<MetricSpec> metrics;
  for (const char* name : {"ndcg_cut.5", "ndcg_cut.10", "mrr_cut.10", "map", "P.10", "recall.100", "pnr"}) {
    metrics.push_back(parse_metric(name));
  }
  return metrics;
}

Evaluation evaluate(const Qrels& qrels, const Run& run, const std::vector<MetricSpec>& metrics,
                    const EvalOptions& options) {
  Evaluation evaluation;
  evaluation.metrics = metrics;
  static const std::vector<RunEntry> kEmpty;
  for (const auto& [qid, judgments] : qrels.by_query) {
    const auto found = run.by_query.find(qid);
    if (found == run.by_query.end() && !options.missing_as_zero) continue;
    const auto& entries = found == run.by_query.end() ? kEmpty : found->second;

    // trec_eval orders by score then docid, whatever order the run arrived in.
    std::vector<const RunEntry*> ordered;
    ordered.reserve(entries.size());
    for (const auto& e : entries) ordered.push_back(&e);
    std::sort(ordered.begin(), ordered.end(), [](const RunEntry* a, const RunEntry* b) { return ranks_before(*a, *b); });
    if (options.max_depth > 0 && ordered.size() > options.max_depth) ordered.resize(options.max_depth);

    RankedQuery q;
    for (const auto* e : ordered) {
      const auto g = judgments.find(e->docid);
      q.grades.push_back(g == judgments.end() ? kUnjudged : g->second);
      q.scores.push_back(e->score);
    }
    for (const auto& [docid, grade] : judgments) {
      q.ideal_gains.push_back(gain_of(grade, options.gain));
      if (grade >= options.rel_level) ++q.num_rel;
    }
    std::sort(q.ideal_gains.rbegin(), q.ideal_gains.rend());

    QueryEvaluation result;
    result.qid = qid;
    result.in_run = found != run.by_query.end();
    result.pnr = pnr_counts(q);
    for (const auto& m : metrics) result.values.push_back(value_of(m, q, result.pnr, options));
    evaluation.queries.push_back(std::move(result));
  }

  std::vector<const QueryEvaluation*> all;
  for (const auto& q : evaluation.queries) all.push_back(&q);
  for (std::size_t i = 0; i < metrics.size(); ++i) evaluation.summary.push_back(aggregate(metrics[i], i, all));
  return evaluation;
}

double aggregate(const MetricSpec& metric, std::size_t metric_index, const std::vector<const QueryEvaluation*>& queries) {
  if (metric.kind == MetricSpec::Kind::kPnr) {
    PnrCounts total;
    for (const auto* q : queries) {
      total.concordant += q->pnr.concordant;
      total.discordant += q->pnr.discordant;
      total.pairs += q->pnr.pairs;
    }
    return total.pairs == 0 ? kUndefined : total.concordant / std::max(total.discordant, 1.0);
  }
  double sum = 0;
  std::size_t count = 0;
  for (const auto* q : queries) {
    const double v = q->values[metric_index];
    if (std::isnan(v)) continue;
    sum += v;
    ++count;
  }
  return count == 0 ? (metric.kind == MetricSpec::Kind::kPnrMacro ? kUndefined : 0.0) : sum / static_cast<double>(count);
}

}  // namespace disranker
