// Monitor (see monitor.hpp).
#include "node/monitor.hpp"

#include <algorithm>
#include <limits>

#include <fmt/core.h>

namespace clusterpin::node {
namespace {

using namespace std::chrono;

std::set<std::string> as_set(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

}  // namespace

Monitor::Monitor(asio::io_context& io, const ServiceConfig& config, std::string self, Hooks hooks)
    : io_(io), config_(config), self_(std::move(self)), hooks_(std::move(hooks)),
      publish_timer_(io), check_timer_(io) {}

Monitor::~Monitor() {
  *alive_ = false;
  stop();
}

UnixNanos Monitor::now() const {
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

void Monitor::start() {
  running_ = true;
  seed_missing_pings();
  publish_now();
  nanoseconds every = config_.cluster.monitor_ping_interval;
  for (auto ttl : {config_.informer.disk_metric_ttl, config_.informer.tags_metric_ttl}) {
    if (ttl.count() > 0) every = std::min(every, ttl / 2);
  }
  arm(publish_timer_, every, &Monitor::publish_tick);
  arm(check_timer_, config_.monitor.check_interval, &Monitor::check_tick);
}

void Monitor::stop() {
  running_ = false;
  publish_timer_.cancel();
  check_timer_.cancel();
}

void Monitor::farewell() {
  if (!running_ || farewell_) return;
  // Nothing valid may follow it: a ping published after it would replace it.
  farewell_ = true;
  publish_timer_.cancel();
  publish({make("ping", hooks_.ping_value ? hooks_.ping_value() : std::string(), nanoseconds(0))});
}

void Monitor::arm(asio::steady_timer& timer, nanoseconds every, void (Monitor::*what)()) {
  if (!running_ || every.count() <= 0) return;
  timer.expires_after(every);
  timer.async_wait([this, &timer, every, what, alive = alive_](const std::error_code& ec) {
    if (ec || !*alive || !running_) return;
    (this->*what)();
    arm(timer, every, what);
  });
}

Metric Monitor::make(std::string name, std::string value, nanoseconds ttl) const {
  Metric m;
  m.name = std::move(name);
  m.peer = self_;
  m.value = std::move(value);
  m.valid = true;
  m.received_at = now();
  m.expire = m.received_at + ttl.count();
  return m;
}

void Monitor::publish_now() {
  next_disk_ = 0;
  next_tags_ = 0;
  publish_tick();
}

void Monitor::publish_tick() {
  if (farewell_) return;
  UnixNanos t = now();
  std::vector<Metric> out;
  out.push_back(make("ping", hooks_.ping_value ? hooks_.ping_value() : std::string(),
                     2 * config_.cluster.monitor_ping_interval));
  const InformerConfig& inf = config_.informer;
  if (t >= next_tags_) {
    next_tags_ = t + (inf.tags_metric_ttl / 2).count();
    for (const auto& [tag, value] : inf.tags) {
      Metric m = make("tag:" + tag, value, inf.tags_metric_ttl);
      m.partitionable = true;
      out.push_back(std::move(m));
    }
  }
  publish(std::move(out));
  if (t < next_disk_ || !hooks_.repo_stat) return;
  next_disk_ = t + (inf.disk_metric_ttl / 2).count();
  hooks_.repo_stat([this, alive = alive_](Result<net::RepoStat> stat) {
    if (!*alive || !running_ || farewell_) return;
    const InformerConfig& informer = config_.informer;
    bool reposize = informer.disk_metric_type == "reposize";
    Metric m = make(informer.disk_metric_type, "", informer.disk_metric_ttl);
    if (!stat) {
      // Not a candidate while IPFS cannot say how much room it has; try again sooner.
      m.valid = false;
      m.value = stat.error().message;
      next_disk_ = now() + (informer.disk_metric_ttl / 4).count();
    } else {
      std::uint64_t free = stat->storage_max > stat->repo_size ? stat->storage_max - stat->repo_size : 0;
      std::uint64_t v = reposize ? stat->repo_size : free;
      m.value = std::to_string(v);
      auto clamped = static_cast<std::int64_t>(std::min<std::uint64_t>(v, INT64_MAX));
      m.weight = reposize ? -clamped : clamped;  // most free space, or smallest repo, first
    }
    publish({std::move(m)});
  });
}

void Monitor::publish(std::vector<Metric> metrics) {
  for (const Metric& m : metrics) store_.add(m);
  std::string bytes = encode_metrics(metrics);
  for (const auto& peer : hooks_.members()) {
    if (peer != self_) hooks_.send(peer, bytes);
  }
}

void Monitor::peer_connected(const std::string& peer) {
  if (!running_ || farewell_ || peer == self_) return;
  std::vector<Metric> mine;
  for (const auto& name : store_.names()) {
    if (auto m = store_.latest(name, self_)) mine.push_back(std::move(*m));
  }
  if (!mine.empty()) hooks_.send(peer, encode_metrics(mine));
}

void Monitor::receive(const std::string& from, std::string_view bytes) {
  auto metrics = decode_metrics(bytes);
  if (!metrics) {
    hooks_.log(fmt::format("dropped malformed metrics from {}: {}", from, metrics.error().message));
    return;
  }
  auto members = hooks_.members();
  if (std::find(members.begin(), members.end(), from) == members.end()) return;
  UnixNanos t = now();
  for (Metric& m : *metrics) {
    if (m.peer != from) continue;  // a peer speaks only for itself
    m.received_at = t;
    store_.add(std::move(m));
  }
}

void Monitor::seed_missing_pings() {
  // A member that never pinged counts from now: it is down once a ping would have expired.
  UnixNanos expire = now() + (2 * config_.cluster.monitor_ping_interval).count();
  for (const auto& peer : hooks_.members()) {
    if (peer == self_ || store_.latest("ping", peer)) continue;
    Metric m;
    m.name = "ping";
    m.peer = peer;
    m.expire = expire;
    m.received_at = now();
    m.valid = false;  // not a real ping: never makes the peer live or a candidate
    store_.add(std::move(m));
  }
}

void Monitor::check_tick() {
  auto members = as_set(hooks_.members());
  store_.retain(members);
  seed_missing_pings();
  auto raised = store_.check(now(), members);
  for (const Alert& a : raised) {
    hooks_.log(fmt::format("alert: metric {} of peer {} expired", a.metric.name, a.metric.peer));
  }
  alerts_.add(raised);
}

std::vector<std::string> Monitor::live() const {
  std::vector<std::string> out;
  UnixNanos t = now();
  for (const auto& peer : hooks_.members()) {
    if (peer == self_ || store_.current("ping", peer, t)) out.push_back(peer);
  }
  return out;
}

std::set<std::string> Monitor::down_past(nanoseconds grace) const {
  std::set<std::string> out;
  UnixNanos t = now();
  for (const auto& peer : hooks_.members()) {
    if (peer == self_) continue;
    auto ping = store_.latest("ping", peer);
    if (ping && ping->expire + grace.count() <= t) out.insert(peer);
  }
  return out;
}

const std::vector<CandidateMetrics>& Monitor::candidates() const {
  UnixNanos t = now();
  std::vector<std::string> members = hooks_.members();
  CandidateCache& cache = candidates_;
  if (t < cache.valid_until && cache.version == store_.version() && cache.members == members) {
    return cache.value;
  }
  // A peer left out (no current ping or metric) comes in only with a new metric: a new version.
  cache.value.clear();
  cache.valid_until = std::numeric_limits<UnixNanos>::max();
  for (const auto& peer : members) {
    auto id = PeerId::parse(peer);
    if (!id) continue;
    auto ping = store_.current("ping", peer, t);  // this peer's own ping is stored too
    if (!ping) continue;
    CandidateMetrics c{*id, {}};
    UnixNanos until = ping->expire;
    bool complete = true;
    for (const auto& name : config_.allocator.allocate_by) {
      auto m = store_.current(name, peer, t);
      if (!m) {
        complete = false;
        break;
      }
      until = std::min(until, m->expire);
      c.metrics.push_back(std::move(*m));
    }
    if (!complete) continue;
    cache.valid_until = std::min(cache.valid_until, until);
    cache.value.push_back(std::move(c));
  }
  cache.version = store_.version();
  cache.members = std::move(members);
  return cache.value;
}

}  // namespace clusterpin::node
