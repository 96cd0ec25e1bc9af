// A small seeded pseudo-random generator (splitmix64). The Raft core and the simulation use it
// instead of any global randomness, so one seed reproduces one run exactly on every platform.
#pragma once

#include <cassert>
#include <cstdint>

namespace clusterpin::raft {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}

  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform-enough integer in [0, bound); bound must be positive.
  std::uint64_t below(std::uint64_t bound) {
    assert(bound > 0 && "an empty range has no member to draw");
    return next() % bound;
  }

  // True with probability per_mille / 1000.
  bool chance(std::uint64_t per_mille) { return below(1000) < per_mille; }

 private:
  std::uint64_t state_;
};

}  // namespace clusterpin::raft
