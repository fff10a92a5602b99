#include "online/simulation.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include "core/error.h"
#include "data/tsv.h"
#include "online/interleaving.h"
#include "online/statistics.h"

namespace disranker::online {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Calls body(i) for i in [0, n) on `threads` threads (0: all hardware threads), handing out indices in chunks
// of `chunk`. Each body writes only its own results, so the outcome does not depend on the thread count. The
// first exception thrown by a body is rethrown here.
template <class Body>
void parallel_for(std::size_t n, std::size_t threads, std::size_t chunk, Body&& body) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, (n + chunk - 1) / chunk);
  if (threads <= 1) {
    for (std::size_t i = 0; i < n; ++i) body(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&] {
    try {
      for (;;) {
        const std::size_t begin = next.fetch_add(chunk);
        if (begin >= n) return;
        for (std::size_t i = begin; i < std::min(n, begin + chunk); ++i) body(i);
      }
    } catch (...) {
      const std::lock_guard lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next = n;  // the others stop at their next chunk
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& thread : pool) thread.join();
  if (failure) std::rethrow_exception(failure);
}

// Calls on_query(query index) for each query a user issues over the experiment.
template <class OnQuery>
void user_traffic(const Experiment& experiment, const TrafficOptions& traffic, SplitMix64& rng,
                  OnQuery&& on_query) {
  double activity = traffic.queries_per_user_day;
  // Log-normal with mean queries_per_user_day: exp(sigma N - sigma^2 / 2) has mean 1.
  if (traffic.activity_sigma > 0) {
    activity *= std::exp(traffic.activity_sigma * standard_normal(rng) -
                         traffic.activity_sigma * traffic.activity_sigma / 2);
  }
  for (std::size_t day = 0; day < traffic.days; ++day) {
    const std::size_t count = poisson(activity, rng);
    for (std::size_t i = 0; i < count; ++i) on_query(experiment.sample_query(rng));
  }
}

bool any_click(std::span<const SimulatedClick> clicks) {
  return std::any_of(clicks.begin(), clicks.end(), [](const SimulatedClick& c) { return c.clicked; });
}

}  // namespace

std::size_t poisson(double mean, SplitMix64& rng) {
  std::size_t count = 0;
  while (mean > 0) {
    const double chunk = std::min(mean, 30.0);
    mean -= chunk;
    // Knuth: the number of uniforms whose running product stays above e^-chunk.
    const double limit = std::exp(-chunk);
    double product = rng.uniform();
    while (product > limit) {
      ++count;
      product *= rng.uniform();
    }
  }
  return count;
}

QueryWeights read_query_weights(const std::string& path) {
  QueryWeights weights;
  read_tsv(path, {"qid", "weight"}, [&](const TsvRow& row) {
    const std::string qid(row.fields[0]);
    check_id_field(qid, path, row.line, "qid");
    const double weight = parse_double_field(row.fields[1], path, row.line, "weight");
    if (weight < 0) throw Error(path, row.line, "weight", "must be >= 0, got " + std::string(row.fields[1]));
    if (!weights.emplace(qid, weight).second)
      throw Error(path, row.line, "qid", "query " + qid + " is listed twice");
  });
  return weights;
}

std::size_t Experiment::sample_query(SplitMix64& rng) const {
  if (cumulative_weights.empty()) return rng.below(queries.size());
  const double target = rng.uniform() * cumulative_weights.back();
  const auto it = std::upper_bound(cumulative_weights.begin(), cumulative_weights.end(), target);
  return std::min(static_cast<std::size_t>(it - cumulative_weights.begin()), queries.size() - 1);
}

Experiment prepare_experiment(const Qrels& qrels, const Queries& queries, const Run& a, const Run& b,
                              std::size_t depth, const QueryWeights* weights) {
  if (depth == 0) throw Error("online: the page depth must be at least 1");
  Experiment experiment;
  experiment.depth = depth;
  experiment.qrels_queries = qrels.by_query.size();
  double total_weight = 0;
  std::set<std::string> kept;
  for (const auto& [qid, judged_docs] : qrels.by_query) {
    const auto& judged = judged_docs;  // a plain reference: the page builder below captures it
    if (queries.find(qid) == nullptr) {
      ++experiment.no_query_text;
      continue;
    }
    const auto in_a = a.by_query.find(qid);
    const auto in_b = b.by_query.find(qid);
    const bool ranked_by_a = in_a != a.by_query.end() && !in_a->second.empty();
    const bool ranked_by_b = in_b != b.by_query.end() && !in_b->second.empty();
    if (!ranked_by_a && !ranked_by_b) {
      ++experiment.not_in_runs;
      continue;
    }
    double weight = 1;
    if (weights != nullptr) {
      const auto it = weights->find(qid);
      weight = it == weights->end() ? 0 : it->second;
      if (!(weight > 0)) {
        ++experiment.zero_weight;
        continue;
      }
    }
    if (!ranked_by_a) ++experiment.only_in_b;
    if (!ranked_by_b) ++experiment.only_in_a;

    QueryPages page;
    page.qid = qid;
    std::unordered_map<std::string, std::uint32_t> local_ids;
    auto add = [&](const std::vector<RunEntry>& entries, std::vector<std::uint32_t>& docs,
                   std::vector<int>& grades) {
      for (std::size_t i = 0; i < entries.size() && i < depth; ++i) {
        const auto [it, added] =
            local_ids.emplace(entries[i].docid, static_cast<std::uint32_t>(local_ids.size()));
        if (added) {
          const auto grade = judged.find(entries[i].docid);
          page.grade_of.push_back(grade == judged.end() ? 0 : grade->second);
        }
        docs.push_back(it->second);
        grades.push_back(page.grade_of[it->second]);
      }
    };
    if (ranked_by_a) add(in_a->second, page.docs_a, page.grades_a);
    if (ranked_by_b) add(in_b->second, page.docs_b, page.grades_b);
    experiment.queries.push_back(std::move(page));
    kept.insert(qid);
    if (weights != nullptr) {
      total_weight += weight;
      experiment.cumulative_weights.push_back(total_weight);
    }
  }
  if (weights != nullptr) {
    for (const auto& [qid, weight] : *weights) experiment.unknown_weights += kept.count(qid) == 0 ? 1 : 0;
  }
  if (experiment.queries.empty()) {
    throw Error(
        "online: no query is eligible: none has qrels, query text, a positive weight (with query weights) "
        "and "
        "results in at least one of the runs (check that --qrels, --queries and --run belong to the same "
        "set)");
  }
  return experiment;
}

void check_traffic_options(const TrafficOptions& options) {
  if (options.users < 2) throw Error("online: at least 2 users are needed (one per bucket)");
  if (options.days == 0) throw Error("online: the experiment must last at least 1 day");
  if (!(options.queries_per_user_day > 0) || !std::isfinite(options.queries_per_user_day))
    throw Error("online: queries per user and day must be > 0");
  if (!(options.activity_sigma >= 0) || options.activity_sigma > 5)
    throw Error("online: the activity spread (sigma) must be in [0, 5]");
  if (!(options.satisfied_dwell_ms >= 0)) throw Error("online: the satisfied dwell must be >= 0 ms");
}

// ---- A/B test ----

std::string metric_name(Metric metric) {
  switch (metric) {
    case Metric::kPageCtr:
      return "page CTR";
    case Metric::kUserCtr:
      return "user CTR";
    case Metric::kClicksPerPage:
      return "clicks per page";
    case Metric::kDwellPerClick:
      return "dwell per click (s)";
    case Metric::kAbandonment:
      return "abandonment rate";
    case Metric::kSatisfiedCtr:
      return "satisfied CTR";
  }
  return "?";
}

std::string metric_key(Metric metric) {
  switch (metric) {
    case Metric::kPageCtr:
      return "page_ctr";
    case Metric::kUserCtr:
      return "user_ctr";
    case Metric::kClicksPerPage:
      return "clicks_per_page";
    case Metric::kDwellPerClick:
      return "dwell_per_click_s";
    case Metric::kAbandonment:
      return "abandonment_rate";
    case Metric::kSatisfiedCtr:
      return "satisfied_ctr";
  }
  return "?";
}

void ArmTotals::add(const UserOutcome& user) {
  ++users;
  if (user.pages == 0) return;
  ++active_users;
  pages += user.pages;
  clicked_pages += user.clicked_pages;
  clicks += user.clicks;
  satisfied_pages += user.satisfied_pages;
  dwell_ms += user.dwell_ms;
  user_ctr_sum += static_cast<double>(user.clicked_pages) / user.pages;
}

double ArmTotals::value(Metric metric) const {
  const auto ratio = [](double part, std::size_t whole) {
    return whole == 0 ? kNaN : part / static_cast<double>(whole);
  };
  switch (metric) {
    case Metric::kPageCtr:
      return ratio(static_cast<double>(clicked_pages), pages);
    case Metric::kUserCtr:
      return ratio(user_ctr_sum, active_users);
    case Metric::kClicksPerPage:
      return ratio(static_cast<double>(clicks), pages);
    case Metric::kDwellPerClick:
      return ratio(dwell_ms / 1000, clicks);
    case Metric::kAbandonment:
      return ratio(static_cast<double>(pages - clicked_pages), pages);
    case Metric::kSatisfiedCtr:
      return ratio(static_cast<double>(satisfied_pages), pages);
  }
  return kNaN;
}

std::vector<UserOutcome> simulate_ab_users(const Experiment& experiment, const ClickModel& model,
                                           const TrafficOptions& traffic) {
  check_traffic_options(traffic);
  std::vector<UserOutcome> users(traffic.users);
  parallel_for(traffic.users, traffic.threads, 256, [&](std::size_t u) {
    thread_local std::vector<SimulatedClick> clicks;
    clicks.resize(experiment.depth);
    UserOutcome& user = users[u];
    user.in_b = (batch_seed(traffic.seed, 2, static_cast<std::int64_t>(u)) >> 63) != 0;
    SplitMix64 rng(batch_seed(traffic.seed, 0, static_cast<std::int64_t>(u)));
    user_traffic(experiment, traffic, rng, [&](std::size_t q) {
      const auto& grades = user.in_b ? experiment.queries[q].grades_b : experiment.queries[q].grades_a;
      const std::span<SimulatedClick> page(clicks.data(), grades.size());
      model.simulate_into(grades, rng, page);
      ++user.pages;
      bool clicked = false;
      bool satisfied = false;
      for (const auto& click : page) {
        if (!click.clicked) continue;
        clicked = true;
        ++user.clicks;
        user.dwell_ms += click.dwell_ms;
        satisfied = satisfied || click.dwell_ms >= traffic.satisfied_dwell_ms;
      }
      user.clicked_pages += clicked ? 1 : 0;
      user.satisfied_pages += satisfied ? 1 : 0;
    });
  });
  return users;
}

bool MetricDelta::significant() const {
  return std::isfinite(ci_low) && std::isfinite(ci_high) && (ci_low > 0 || ci_high < 0);
}

AbResult analyse_ab(const std::vector<UserOutcome>& users, const AbOptions& options, std::uint64_t seed,
                    std::size_t threads) {
  if (!(options.confidence > 0 && options.confidence < 1))
    throw Error("online: the confidence level must be in (0, 1)");
  AbResult result;
  result.bootstrap = options.bootstrap;
  std::vector<std::size_t> bucket_a;
  std::vector<std::size_t> bucket_b;
  for (std::size_t u = 0; u < users.size(); ++u) {
    (users[u].in_b ? result.b : result.a).add(users[u]);
    (users[u].in_b ? bucket_b : bucket_a).push_back(u);
  }
  for (std::size_t m = 0; m < kMetricCount; ++m) {
    auto& delta = result.deltas[m];
    delta.a = result.a.value(static_cast<Metric>(m));
    delta.b = result.b.value(static_cast<Metric>(m));
    delta.relative = delta.a != 0 ? delta.b / delta.a - 1 : kNaN;
    delta.ci_low = delta.ci_high = kNaN;
  }
  if (options.bootstrap == 0 || bucket_a.empty() || bucket_b.empty()) return result;

  // Resample r draws |A| users of bucket A and |B| of bucket B with replacement: the stratified bootstrap of
  // a user-randomised experiment.
  std::vector<std::array<double, kMetricCount>> resampled(options.bootstrap);
  parallel_for(options.bootstrap, threads, 1, [&](std::size_t r) {
    SplitMix64 rng(batch_seed(seed, 3, static_cast<std::int64_t>(r)));
    ArmTotals a;
    ArmTotals b;
    for (std::size_t i = 0; i < bucket_a.size(); ++i) a.add(users[bucket_a[rng.below(bucket_a.size())]]);
    for (std::size_t i = 0; i < bucket_b.size(); ++i) b.add(users[bucket_b[rng.below(bucket_b.size())]]);
    for (std::size_t m = 0; m < kMetricCount; ++m) {
      const double va = a.value(static_cast<Metric>(m));
      resampled[r][m] = va != 0 ? b.value(static_cast<Metric>(m)) / va - 1 : kNaN;
    }
  });
  const double tail = (1 - options.confidence) / 2;
  for (std::size_t m = 0; m < kMetricCount; ++m) {
    std::vector<double> values;
    for (const auto& sample : resampled)
      if (std::isfinite(sample[m])) values.push_back(sample[m]);
    std::sort(values.begin(), values.end());
    result.deltas[m].ci_low = quantile_of_sorted(values, tail);
    result.deltas[m].ci_high = quantile_of_sorted(values, 1 - tail);
  }
  return result;
}

// ---- interleaving ----

double InterleavingResult::b_win_share() const {
  const std::size_t decided = wins_a + wins_b;
  return decided == 0 ? 0.5 : static_cast<double>(wins_b) / static_cast<double>(decided);
}

double InterleavingResult::delta() const {
  if (impressions == 0) return 0;
  return (static_cast<double>(wins_b) + static_cast<double>(ties) / 2) / static_cast<double>(impressions) -
         0.5;
}

namespace {

// One interleaved impression of query q: the merged page, its clicks and the verdict.
struct InterleavingScratch {
  InterleavedPage page;
  std::vector<int> grades;
  std::vector<SimulatedClick> clicks;
};

Preference interleaved_impression(const QueryPages& query, std::size_t depth, const ClickModel& model,
                                  SplitMix64& rng, InterleavingScratch& scratch, std::size_t* clicks) {
  team_draft(query.docs_a, query.docs_b, depth, rng, scratch.page);
  scratch.grades.clear();
  for (const std::uint32_t doc : scratch.page.docs) scratch.grades.push_back(query.grade_of[doc]);
  scratch.clicks.resize(scratch.grades.size());
  model.simulate_into(scratch.grades, rng, scratch.clicks);
  if (clicks != nullptr) {
    for (const auto& click : scratch.clicks) *clicks += click.clicked ? 1 : 0;
  }
  return credit(scratch.page.teams, scratch.clicks);
}

}  // namespace

InterleavingResult simulate_interleaving(const Experiment& experiment, const ClickModel& model,
                                         const TrafficOptions& traffic) {
  check_traffic_options(traffic);
  std::vector<InterleavingResult> per_user(traffic.users);
  parallel_for(traffic.users, traffic.threads, 256, [&](std::size_t u) {
    thread_local InterleavingScratch scratch;
    InterleavingResult& user = per_user[u];
    SplitMix64 rng(batch_seed(traffic.seed, 4, static_cast<std::int64_t>(u)));
    user_traffic(experiment, traffic, rng, [&](std::size_t q) {
      ++user.impressions;
      switch (interleaved_impression(experiment.queries[q], experiment.depth, model, rng, scratch,
                                     &user.clicks)) {
        case Preference::kA:
          ++user.wins_a;
          break;
        case Preference::kB:
          ++user.wins_b;
          break;
        case Preference::kTie:
          ++user.ties;
          break;
      }
    });
  });
  InterleavingResult total;
  for (const auto& user : per_user) {
    total.impressions += user.impressions;
    total.wins_a += user.wins_a;
    total.wins_b += user.wins_b;
    total.ties += user.ties;
    total.clicks += user.clicks;
  }
  total.p_value = sign_test_p_value(total.wins_b, total.wins_a);
  return total;
}

// ---- sensitivity ----

SensitivityResult simulate_sensitivity(const Experiment& experiment, const ClickModel& model,
                                       const SensitivityOptions& options, std::uint64_t seed,
                                       std::size_t threads) {
  if (!(options.alpha > 0 && options.alpha < 1)) throw Error("online: alpha must be in (0, 1)");
  for (const std::size_t budget : options.budgets)
    if (budget == 0) throw Error("online: an impression budget must be at least 1");
  SensitivityResult result;
  result.repetitions = options.repetitions;
  const std::size_t budgets = options.budgets.size();
  const std::size_t reps = options.repetitions;
  // One task per (budget, repetition, kind); the largest budgets first, so that no thread is left with a big
  // task at the end.
  std::vector<std::size_t> budget_order(budgets);
  for (std::size_t i = 0; i < budgets; ++i) budget_order[i] = i;
  std::stable_sort(budget_order.begin(), budget_order.end(),
                   [&](std::size_t x, std::size_t y) { return options.budgets[x] > options.budgets[y]; });
  struct Outcome {
    bool significant = false;
    bool b_better = false;
  };
  std::vector<Outcome> outcomes(budgets * reps * 2);
  parallel_for(outcomes.size(), threads, 1, [&](std::size_t task) {
    const std::size_t i = budget_order[task / (2 * reps)];
    const std::size_t r = (task / 2) % reps;
    const bool interleaving = task % 2 == 1;
    const std::size_t n = options.budgets[i];
    SplitMix64 rng(batch_seed(seed, 100 + static_cast<std::int64_t>(i),
                              static_cast<std::int64_t>(2 * r + (interleaving ? 1 : 0))));
    Outcome& outcome = outcomes[(i * reps + r) * 2 + (interleaving ? 1 : 0)];
    if (interleaving) {
      thread_local InterleavingScratch scratch;
      std::size_t wins[3] = {0, 0, 0};
      for (std::size_t k = 0; k < n; ++k) {
        const auto& query = experiment.queries[experiment.sample_query(rng)];
        ++wins[static_cast<std::size_t>(
            interleaved_impression(query, experiment.depth, model, rng, scratch, nullptr))];
      }
      const std::size_t wins_a = wins[static_cast<std::size_t>(Preference::kA)];
      const std::size_t wins_b = wins[static_cast<std::size_t>(Preference::kB)];
      outcome.significant = sign_test_p_value(wins_b, wins_a) < options.alpha;
      outcome.b_better = wins_b > wins_a;
      return;
    }
    thread_local std::vector<SimulatedClick> clicks;
    clicks.resize(experiment.depth);
    std::size_t pages[2] = {0, 0};
    std::size_t clicked[2] = {0, 0};
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t bucket = rng.next() >> 63;  // a fresh user, assigned by a fair coin
      const auto& query = experiment.queries[experiment.sample_query(rng)];
      const auto& grades = bucket == 1 ? query.grades_b : query.grades_a;
      const std::span<SimulatedClick> page(clicks.data(), grades.size());
      model.simulate_into(grades, rng, page);
      ++pages[bucket];
      clicked[bucket] += any_click(page) ? 1 : 0;
    }
    outcome.significant = two_proportion_p_value(clicked[0], pages[0], clicked[1], pages[1]) < options.alpha;
    outcome.b_better = static_cast<double>(clicked[1]) * static_cast<double>(pages[0]) >
                       static_cast<double>(clicked[0]) * static_cast<double>(pages[1]);
  });

  for (std::size_t i = 0; i < budgets; ++i) {
    SensitivityPoint point;
    point.impressions = options.budgets[i];
    std::size_t significant[2] = {0, 0};
    std::size_t b_better[2] = {0, 0};
    for (std::size_t r = 0; r < reps; ++r) {
      for (std::size_t kind = 0; kind < 2; ++kind) {
        const Outcome& outcome = outcomes[(i * reps + r) * 2 + kind];
        significant[kind] += outcome.significant ? 1 : 0;
        b_better[kind] += outcome.significant && outcome.b_better ? 1 : 0;
      }
    }
    const auto share = [](std::size_t part, std::size_t whole) {
      return whole == 0 ? kNaN : static_cast<double>(part) / static_cast<double>(whole);
    };
    point.ab_power = share(significant[0], reps);
    point.interleaving_power = share(significant[1], reps);
    point.ab_b_better = share(b_better[0], significant[0]);
    point.interleaving_b_better = share(b_better[1], significant[1]);
    result.points.push_back(point);
    result.impressions += 2 * reps * point.impressions;
  }
  // "Needed": the smallest budget whose power reaches the target.
  for (const auto& point : result.points) {
    if (reps == 0) break;
    if (point.ab_power >= options.power && (result.ab_needed == 0 || point.impressions < result.ab_needed))
      result.ab_needed = point.impressions;
    if (point.interleaving_power >= options.power &&
        (result.interleaving_needed == 0 || point.impressions < result.interleaving_needed))
      result.interleaving_needed = point.impressions;
  }
  return result;
}

}  // namespace disranker::online
