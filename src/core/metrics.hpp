// Metrics and alerts, as IPFS Cluster's monitor keeps them. Every peer publishes a `ping` metric
// (valid for twice monitor_ping_interval) and informer metrics (`freespace` or `reposize` from
// its IPFS daemon, one `tag:<name>` per configured tag) to every other peer. A MetricStore keeps
// the latest metric per (name, peer); its check() raises one Alert per outage when a member's
// latest metric has expired. No clocks here: callers pass the time in.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/pin.hpp"
#include "core/result.hpp"

namespace clusterpin {

struct Metric {
  std::string name;
  std::string peer;   // peer id text
  std::string value;  // free text (a number for freespace)
  UnixNanos expire = 0;
  bool valid = false;
  std::int64_t weight = 0;     // ordering key: higher first (freespace bytes)
  bool partitionable = false;  // tags: peers with equal values form a group
  UnixNanos received_at = 0;

  bool expired(UnixNanos now) const { return expire <= now; }
  friend bool operator==(const Metric&, const Metric&) = default;
};

struct Alert {
  Metric metric;
  UnixNanos triggered_at = 0;
};

// The REST shapes (keys as IPFS Cluster v1 writes them; times in unix nanoseconds).
std::string metric_to_json(const Metric& metric);
std::string alert_to_json(const Alert& alert);
Result<Metric> metric_from_json(std::string_view json);

// Binary form for the peer links: a list of metrics.
std::string encode_metrics(const std::vector<Metric>& metrics);
Result<std::vector<Metric>> decode_metrics(std::string_view bytes);

class MetricStore {
 public:
  // Keeps `m` as the latest of its (name, peer) unless a valid newer one (later expiry) is held
  // and `m` is not a withdrawal (already expired at m.received_at).
  void add(Metric m);
  // Every metric name seen, sorted.
  std::vector<std::string> names() const;
  // The latest metric of each peer for `name`, sorted by peer.
  std::vector<Metric> latest(std::string_view name) const;
  std::optional<Metric> latest(std::string_view name, std::string_view peer) const;
  // Latest valid, unexpired metric of `peer` for `name`.
  std::optional<Metric> current(std::string_view name, std::string_view peer, UnixNanos now) const;
  // Drops every metric of peers not in `members`.
  void retain(const std::set<std::string>& members);
  // Changes whenever add or retain may have changed what is held (for caches of derived views).
  std::uint64_t version() const { return version_; }

  // Alerts for members whose latest metric (of any name) expired since the last check that saw
  // it valid: one per outage. Returned newest first.
  std::vector<Alert> check(UnixNanos now, const std::set<std::string>& members);

 private:
  std::map<std::string, std::map<std::string, Metric, std::less<>>, std::less<>> by_name_;
  std::set<std::pair<std::string, std::string>> alerted_;  // (name, peer) in an outage
  std::uint64_t version_ = 0;
};

// A bounded list of alerts, newest first (the oldest go past `capacity`).
class AlertLog {
 public:
  explicit AlertLog(std::size_t capacity = 1000) : capacity_(capacity) {}
  void add(const std::vector<Alert>& alerts);
  std::vector<Alert> list() const { return {alerts_.begin(), alerts_.end()}; }

 private:
  std::size_t capacity_;
  std::deque<Alert> alerts_;
};

}  // namespace clusterpin
