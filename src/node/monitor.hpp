// Monitor: this peer's side of the metrics. It publishes a `ping` metric every
// monitor_ping_interval (valid for twice that) and the informer metrics (`freespace` or
// `reposize` from the IPFS daemon's repo/stat, `tag:<name>` for each informer.tags entry) every
// half of their metric_ttl, to itself and to every other member over the peer links. It keeps
// what the others publish, raises an alert once per outage when a member's metric expires
// (checked every monitor.pubsubmon.check_interval), and answers the questions the allocator and
// re-replication ask: who is live, who has been down past the grace period, and which peers are
// candidates for new allocations. Runs on the daemon's io_context thread.
#pragma once

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <asio.hpp>

#include "core/allocator.hpp"
#include "core/config.hpp"
#include "core/metrics.hpp"
#include "net/ipfs_connector.hpp"

namespace clusterpin::node {

class Monitor {
 public:
  struct Hooks {
    std::function<std::vector<std::string>()> members;  // every member, this peer included
    std::function<void(const std::string& peer, const std::string& bytes)> send;
    std::function<void(std::function<void(Result<net::RepoStat>)>)> repo_stat;
    std::function<std::string()> ping_value;
    std::function<void(const std::string&)> log;
  };

  Monitor(asio::io_context& io, const ServiceConfig& config, std::string self, Hooks hooks);
  ~Monitor();

  void start();
  void stop();
  // Before a clean stop: tells the other members this peer's ping expires now, so that they stop
  // allocating new pins to it at once instead of after its last ping expired (up to twice
  // monitor_ping_interval), and raise its alert. Nothing is published after it.
  void farewell();
  // Publishes every metric now (after a membership change, so a new peer learns them at once).
  void publish_now();
  // A link to `peer` came up: it gets this peer's latest metrics at once.
  void peer_connected(const std::string& peer);
  // Metrics another peer sent; a peer may only publish its own.
  void receive(const std::string& from, std::string_view bytes);

  const MetricStore& metrics() const { return store_; }
  std::vector<Alert> alerts() const { return alerts_.list(); }
  // Members with a valid, unexpired ping (this peer always).
  std::vector<std::string> live() const;
  // Members whose ping expired at least `grace` ago (or never arrived that long after start).
  std::set<std::string> down_past(std::chrono::nanoseconds grace) const;
  // Members that have a valid, unexpired metric for every allocate_by name, with those metrics.
  // Kept until a metric arrives, the members change or one of its metrics expires: the
  // allocation of every new pin asks for it (rebuilding it each time, peer ids parsed from
  // text, was 6.6% of the leader at 64 API clients with replication factor 1).
  const std::vector<CandidateMetrics>& candidates() const;
  UnixNanos now() const;

 private:
  void publish_tick();
  void check_tick();
  void publish(std::vector<Metric> metrics);
  void seed_missing_pings();
  void arm(asio::steady_timer& timer, std::chrono::nanoseconds every, void (Monitor::*what)());
  Metric make(std::string name, std::string value, std::chrono::nanoseconds ttl) const;

  asio::io_context& io_;
  const ServiceConfig& config_;
  std::string self_;
  Hooks hooks_;
  MetricStore store_;
  AlertLog alerts_;
  asio::steady_timer publish_timer_;
  bool farewell_ = false;  // farewell() sent: nothing more is published
  asio::steady_timer check_timer_;
  struct CandidateCache {
    std::uint64_t version = 0;         // of store_ when it was built
    std::vector<std::string> members;  // when it was built
    UnixNanos valid_until = 0;         // the first expiry among its metrics (0: never built)
    std::vector<CandidateMetrics> value;
  };
  mutable CandidateCache candidates_;
  UnixNanos next_disk_ = 0;
  UnixNanos next_tags_ = 0;
  bool running_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace clusterpin::node
