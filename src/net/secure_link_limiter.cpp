// AddressFailureLimiter: a fixed window per address, started by its first failure; entries are
// dropped when their window ends or when the table is full.
#include "net/secure_link_limiter.hpp"

namespace clusterpin::net {

bool AddressFailureLimiter::allowed(const std::string& address, Clock::time_point now) {
  auto it = entries_.find(address);
  if (it == entries_.end()) return true;
  if (now - it->second.window_start >= limits_.window) {
    entries_.erase(it);
    return true;
  }
  return it->second.failures < limits_.max_failures;
}

bool AddressFailureLimiter::record_failure(const std::string& address, Clock::time_point now) {
  auto it = entries_.find(address);
  if (it != entries_.end() && now - it->second.window_start >= limits_.window) {
    entries_.erase(it);
    it = entries_.end();
  }
  if (it == entries_.end()) {
    if (entries_.size() >= limits_.max_tracked) forget_expired(now);
    // Still full: forget an arbitrary address rather than grow; a flood from many addresses is
    // bounded by the listener's cap on concurrent handshakes instead.
    if (entries_.size() >= limits_.max_tracked) entries_.erase(entries_.begin());
    it = entries_.emplace(address, Entry{0, now}).first;
  }
  ++it->second.failures;
  return it->second.failures == limits_.max_failures;
}

void AddressFailureLimiter::forget_expired(Clock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (now - it->second.window_start >= limits_.window) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace clusterpin::net
