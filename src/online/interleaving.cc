#include "online/interleaving.h"

namespace disranker::online {

void team_draft(std::span<const std::uint32_t> a, std::span<const std::uint32_t> b, std::size_t depth,
                SplitMix64& rng, InterleavedPage& out) {
  team_draft(
      a, b, depth, [&rng] { return (rng.next() >> 63) != 0; }, out);
}

Preference credit(std::span<const Team> teams, std::span<const SimulatedClick> clicks) {
  std::size_t clicks_a = 0;
  std::size_t clicks_b = 0;
  for (std::size_t i = 0; i < teams.size() && i < clicks.size(); ++i) {
    if (!clicks[i].clicked) continue;
    if (teams[i] == Team::kA) {
      ++clicks_a;
    } else {
      ++clicks_b;
    }
  }
  if (clicks_a == clicks_b) return Preference::kTie;
  return clicks_a > clicks_b ? Preference::kA : Preference::kB;
}

}  // namespace disranker::online
