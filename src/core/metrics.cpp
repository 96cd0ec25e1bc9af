// Metrics (see metrics.hpp).
#include "core/metrics.hpp"

#include <algorithm>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/time_format.hpp"
#include "core/wire.hpp"

namespace clusterpin {
namespace {

using JsonOut = rapidjson::Writer<rapidjson::StringBuffer>;

void put(JsonOut& w, const char* key, std::string_view s) {
  w.Key(key);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void write_metric_fields(JsonOut& w, const Metric& m) {
  put(w, "name", m.name);
  put(w, "peer", m.peer);
  put(w, "value", m.value);
  w.Key("expire"); w.Int64(m.expire);
  w.Key("valid"); w.Bool(m.valid);
  w.Key("weight"); w.Int64(m.weight);
  w.Key("partitionable"); w.Bool(m.partitionable);
  w.Key("received_at"); w.Int64(m.received_at);
}

}  // namespace

std::string metric_to_json(const Metric& m) {
  rapidjson::StringBuffer buffer;
  JsonOut w(buffer);
  w.StartObject();
  write_metric_fields(w, m);
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

std::string alert_to_json(const Alert& a) {
  rapidjson::StringBuffer buffer;
  JsonOut w(buffer);
  w.StartObject();
  write_metric_fields(w, a.metric);
  // A time, as IPFS Cluster's Alert.TriggeredAt (time.Time) is written: RFC 3339 (its
  // clients decode no number there); the metric's own "expire" stays Unix nanoseconds.
  w.Key("triggered_at");
  const std::string triggered = format_rfc3339(a.triggered_at);
  w.String(triggered.c_str(), static_cast<rapidjson::SizeType>(triggered.size()));
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

Result<Metric> metric_from_json(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return make_error("a metric must be a JSON object");
  Metric m;
  auto text = [&](const char* key, std::string& out) {
    if (doc.HasMember(key) && doc[key].IsString()) out = doc[key].GetString();
  };
  auto number = [&](const char* key, std::int64_t& out) {
    if (doc.HasMember(key) && doc[key].IsInt64()) out = doc[key].GetInt64();
  };
  auto flag = [&](const char* key, bool& out) {
    if (doc.HasMember(key) && doc[key].IsBool()) out = doc[key].GetBool();
  };
  text("name", m.name);
  text("peer", m.peer);
  text("value", m.value);
  number("expire", m.expire);
  flag("valid", m.valid);
  number("weight", m.weight);
  flag("partitionable", m.partitionable);
  number("received_at", m.received_at);
  if (m.name.empty()) return make_error("a metric needs a \"name\"");
  return m;
}

std::string encode_metrics(const std::vector<Metric>& metrics) {
  WireWriter w;
  w.u64(1);  // format
  w.u64(metrics.size());
  for (const Metric& m : metrics) {
    w.bytes(m.name);
    w.bytes(m.peer);
    w.bytes(m.value);
    w.i64(m.expire);
    w.u64((m.valid ? 1U : 0U) | (m.partitionable ? 2U : 0U));
    w.i64(m.weight);
  }
  return w.take();
}

Result<std::vector<Metric>> decode_metrics(std::string_view bytes) {
  WireReader r(bytes);
  if (r.u64() != 1 || !r.ok()) return make_error("metrics: unknown format");
  std::uint64_t n = r.u64();
  if (n > bytes.size()) return make_error("metrics: bad count");
  std::vector<Metric> out;
  for (std::uint64_t i = 0; i < n && r.ok(); ++i) {
    Metric m;
    m.name = r.bytes();
    m.peer = r.bytes();
    m.value = r.bytes();
    m.expire = r.i64();
    std::uint64_t flags = r.u64();
    m.valid = (flags & 1U) != 0;
    m.partitionable = (flags & 2U) != 0;
    m.weight = r.i64();
    out.push_back(std::move(m));
  }
  if (!r.ok()) return make_error("metrics: truncated");
  return out;
}

void MetricStore::add(Metric m) {
  auto& peers = by_name_[m.name];
  auto it = peers.find(m.peer);
  // An older one that arrived late does not replace a valid newer one; a withdrawal does: a
  // metric already expired when it arrives, which a peer that stops cleanly sends
  // (Monitor::farewell).
  bool withdrawal = m.expired(m.received_at);
  if (!withdrawal && it != peers.end() && it->second.valid && it->second.expire > m.expire) return;
  if (!m.expired(m.received_at)) alerted_.erase({m.name, m.peer});
  std::string peer = m.peer;
  peers.insert_or_assign(std::move(peer), std::move(m));
  ++version_;
}

std::vector<std::string> MetricStore::names() const {
  std::vector<std::string> out;
  for (const auto& [name, peers] : by_name_) out.push_back(name);
  return out;
}

std::vector<Metric> MetricStore::latest(std::string_view name) const {
  std::vector<Metric> out;
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return out;
  for (const auto& [peer, m] : it->second) out.push_back(m);
  return out;
}

std::optional<Metric> MetricStore::latest(std::string_view name, std::string_view peer) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return std::nullopt;
  auto m = it->second.find(peer);
  if (m == it->second.end()) return std::nullopt;
  return m->second;
}

std::optional<Metric> MetricStore::current(std::string_view name, std::string_view peer,
                                           UnixNanos now) const {
  auto m = latest(name, peer);
  if (!m || !m->valid || m->expired(now)) return std::nullopt;
  return m;
}

void MetricStore::retain(const std::set<std::string>& members) {
  ++version_;
  for (auto& [name, peers] : by_name_) {
    std::erase_if(peers, [&](const auto& kv) { return members.count(kv.first) == 0; });
  }
  std::erase_if(alerted_, [&](const auto& key) { return members.count(key.second) == 0; });
}

std::vector<Alert> MetricStore::check(UnixNanos now, const std::set<std::string>& members) {
  std::vector<Alert> out;
  for (const auto& [name, peers] : by_name_) {
    for (const auto& [peer, m] : peers) {
      if (members.count(peer) == 0) continue;
      std::pair<std::string, std::string> key{name, peer};
      if (!m.expired(now)) {
        alerted_.erase(key);
        continue;
      }
      if (alerted_.insert(key).second) out.push_back(Alert{m, now});
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

void AlertLog::add(const std::vector<Alert>& alerts) {
  for (auto it = alerts.rbegin(); it != alerts.rend(); ++it) alerts_.push_front(*it);
  while (alerts_.size() > capacity_) alerts_.pop_back();
}

}  // namespace clusterpin
