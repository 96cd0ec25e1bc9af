// The version of a stored pin: a 64-bit FNV-1a hash of its encoded bytes. A pinset op decided
// from a pin read earlier (a re-allocation, an expired pin's unpin) carries the version it read
// and applies only if the pinset still holds exactly that pin, so it cannot undo a change that
// was committed in between (an unpin, a new name or expiry, new allocations). Header-only: the
// state machine (src/store) and the proposers (src/node) compute it alike.
#pragma once

#include <cstdint>
#include <string_view>

namespace clusterpin {

inline std::uint64_t pin_version(std::string_view encoded_pin) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : encoded_pin) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace clusterpin
