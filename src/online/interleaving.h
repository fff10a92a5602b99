// Team-draft interleaving (Radlinski, Kurup and Joachims, "How does clickthrough data reflect retrieval
// quality?", CIKM 2008): one result page is merged from rankings A and B, and each click is credited to the
// ranking ("team") that contributed the clicked result. Whichever team gets more clicks wins the impression.
// Because both rankings are judged on the same page by the same user, the comparison is paired, which is why
// interleaving needs far fewer impressions than an A/B test to detect the same difference (Chapelle,
// Joachims, Radlinski and Yue, "Large-scale validation and analysis of interleaved search evaluation", TOIS
// 2012).
//
// The draft: like two captains picking players, the team with fewer picks so far picks next; when both have
// picked equally often a fair coin decides who picks first. A pick is the team's highest-ranked document not
// yet on the page. When one ranking has nothing left to add, the other fills the page.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/random.h"
#include "data/click_model.h"

namespace disranker::online {

enum class Team : std::uint8_t { kA, kB };

struct InterleavedPage {
  std::vector<std::uint32_t> docs;  // shown, top first
  std::vector<Team> teams;          // the team that contributed each shown document
};

// Interleaves rankings a and b (document ids, best first; each ranking lists a document at most once) into at
// most `depth` results. `a_picks_first()` is the coin, asked only when both teams have picked equally often;
// true means team A picks first in that round. `out` is overwritten (its storage is reused).
template <class Coin>
void team_draft(std::span<const std::uint32_t> a, std::span<const std::uint32_t> b, std::size_t depth,
                Coin&& a_picks_first, InterleavedPage& out) {
  out.docs.clear();
  out.teams.clear();
  std::size_t next_a = 0;
  std::size_t next_b = 0;
  std::size_t picks_a = 0;
  std::size_t picks_b = 0;
  auto shown = [&out](std::uint32_t doc) {
    for (const std::uint32_t d : out.docs)
      if (d == doc) return true;
    return false;
  };
  while (out.docs.size() < depth) {
    while (next_a < a.size() && shown(a[next_a])) ++next_a;
    while (next_b < b.size() && shown(b[next_b])) ++next_b;
    const bool a_left = next_a < a.size();
    const bool b_left = next_b < b.size();
    if (!a_left && !b_left) break;
    bool pick_a = picks_a < picks_b || (picks_a == picks_b && a_picks_first());
    if (pick_a && !a_left) pick_a = false;
    if (!pick_a && !b_left) pick_a = true;
    if (pick_a) {
      out.docs.push_back(a[next_a++]);
      out.teams.push_back(Team::kA);
      ++picks_a;
    } else {
      out.docs.push_back(b[next_b++]);
      out.teams.push_back(Team::kB);
      ++picks_b;
    }
  }
}

// The same with a fair coin drawn from rng (one draw per round).
void team_draft(std::span<const std::uint32_t> a, std::span<const std::uint32_t> b, std::size_t depth,
                SplitMix64& rng, InterleavedPage& out);

enum class Preference : std::uint8_t { kTie, kA, kB };

// The impression's verdict: the team with more clicks on its documents; equal counts (no click included) tie.
Preference credit(std::span<const Team> teams, std::span<const SimulatedClick> clicks);

}  // namespace disranker::online
