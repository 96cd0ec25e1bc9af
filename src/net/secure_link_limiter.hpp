// Per-source-address counting of failed incoming handshakes, so that a misconfigured or hostile
// source cannot fill the log: the listener logs a source's failures while allowed() holds.
// (It used to refuse such a source's connections, which let anyone sharing a peer's address,
// on one host or behind one NAT, lock that peer out with a few failed connects. A failure costs
// the responder one BLAKE2b, no DH: see noise_handshake.hpp.) Pure: time is passed in. Memory
// is bounded: at most max_tracked addresses are remembered.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <unordered_map>

namespace clusterpin::net {

class AddressFailureLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  struct Limits {
    unsigned max_failures = 5;                 // failures tolerated per window
    std::chrono::milliseconds window{60'000};  // how long failures are remembered
    std::size_t max_tracked = 4096;            // addresses remembered at most
  };

  AddressFailureLimiter() : AddressFailureLimiter(Limits{}) {}
  explicit AddressFailureLimiter(Limits limits) : limits_(limits) {}

  // False while the address has used up its failures (logged ones) in the current window.
  bool allowed(const std::string& address, Clock::time_point now);
  // Returns true when this failure is the one that makes the address limited (log it once).
  bool record_failure(const std::string& address, Clock::time_point now);
  void record_success(const std::string& address) { entries_.erase(address); }
  std::size_t tracked() const { return entries_.size(); }

 private:
  struct Entry {
    unsigned failures = 0;
    Clock::time_point window_start;
  };
  void forget_expired(Clock::time_point now);

  Limits limits_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace clusterpin::net
