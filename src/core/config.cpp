// service.json writing, reading and checking. visit_fields() is the single list of every key;
// JsonWriter walks it to write, JsonReader walks it to read and check, and the keys it saw are
// what the unknown-key warning compares against.
#include "core/config.hpp"

#include <limits>
#include <map>
#include <optional>
#include <set>

#include <fmt/core.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "core/duration.hpp"
#include "core/encoding.hpp"
#include "core/multiaddr.hpp"

namespace clusterpin {
namespace {

// Marks string fields whose values must parse as multiaddrs.
struct MultiaddrText {
  std::string& text;
};
struct MultiaddrList {
  std::vector<std::string>& list;
};

template <class V>
void visit_fields(ServiceConfig& c, V& v) {
  auto& cl = c.cluster;
  v.field("cluster", "id", cl.id);
  v.field("cluster", "private_key", cl.private_key);
  v.field("cluster", "secret", cl.secret);
  v.field("cluster", "peername", cl.peername);
  v.field("cluster", "peers", MultiaddrList{cl.peers});
  v.field("cluster", "bootstrap", MultiaddrList{cl.bootstrap});
  v.field("cluster", "leave_on_shutdown", cl.leave_on_shutdown);
  v.field("cluster", "listen_multiaddress", MultiaddrList{cl.listen_multiaddress});
  v.field("cluster", "announce_multiaddress", MultiaddrList{cl.announce_multiaddress});
  v.field("cluster", "state_sync_interval", cl.state_sync_interval);
  v.field("cluster", "ipfs_sync_interval", cl.ipfs_sync_interval);
  v.field("cluster", "pin_recover_interval", cl.pin_recover_interval);
  v.field("cluster", "replication_factor_min", cl.replication_factor_min);
  v.field("cluster", "replication_factor_max", cl.replication_factor_max);
  v.field("cluster", "monitor_ping_interval", cl.monitor_ping_interval);
  v.field("cluster", "peer_watch_interval", cl.peer_watch_interval);
  v.field("cluster", "disable_repinning", cl.disable_repinning);
  v.field("cluster", "repin_grace_period", cl.repin_grace_period);

  auto& r = c.raft;
  const char* raft = "consensus.raft";
  v.field(raft, "wait_for_leader_timeout", r.wait_for_leader_timeout);
  v.field(raft, "network_timeout", r.network_timeout);
  v.field(raft, "commit_retries", r.commit_retries);
  v.field(raft, "commit_retry_delay", r.commit_retry_delay);
  v.field(raft, "backups_rotate", r.backups_rotate);
  v.field(raft, "data_folder", r.data_folder);
  v.field(raft, "heartbeat_timeout", r.heartbeat_timeout);
  v.field(raft, "election_timeout", r.election_timeout);
  v.field(raft, "commit_timeout", r.commit_timeout);
  v.field(raft, "max_append_entries", r.max_append_entries);
  v.field(raft, "trailing_logs", r.trailing_logs);
  v.field(raft, "snapshot_interval", r.snapshot_interval);
  v.field(raft, "snapshot_threshold", r.snapshot_threshold);
  v.field(raft, "leader_lease_timeout", r.leader_lease_timeout);

  auto& a = c.restapi;
  const char* api = "api.restapi";
  v.field(api, "http_listen_multiaddress", MultiaddrText{a.http_listen_multiaddress});
  v.field(api, "read_timeout", a.read_timeout);
  v.field(api, "read_header_timeout", a.read_header_timeout);
  v.field(api, "write_timeout", a.write_timeout);
  v.field(api, "idle_timeout", a.idle_timeout);
  v.field(api, "max_header_bytes", a.max_header_bytes);
  v.field(api, "basic_auth_credentials", a.basic_auth_credentials);
  v.field(api, "headers", a.headers);
  v.field(api, "cors_allowed_origins", a.cors_allowed_origins);
  v.field(api, "cors_allowed_methods", a.cors_allowed_methods);
  v.field(api, "cors_allowed_headers", a.cors_allowed_headers);
  v.field(api, "cors_exposed_headers", a.cors_exposed_headers);
  v.field(api, "cors_allow_credentials", a.cors_allow_credentials);
  v.field(api, "cors_max_age", a.cors_max_age);

  auto& i = c.ipfshttp;
  const char* ipfs = "ipfs_connector.ipfshttp";
  v.field(ipfs, "node_multiaddress", MultiaddrText{i.node_multiaddress});
  v.field(ipfs, "connect_swarms_delay", i.connect_swarms_delay);
  v.field(ipfs, "ipfs_request_timeout", i.ipfs_request_timeout);
  v.field(ipfs, "pin_timeout", i.pin_timeout);
  v.field(ipfs, "unpin_timeout", i.unpin_timeout);
  v.field(ipfs, "repogc_timeout", i.repogc_timeout);
  v.field(ipfs, "unpin_disable", i.unpin_disable);

  auto& t = c.tracker;
  const char* tracker = "pin_tracker.stateless";
  v.field(tracker, "max_pin_queue_size", t.max_pin_queue_size);
  v.field(tracker, "concurrent_pins", t.concurrent_pins);
  v.field(tracker, "priority_pin_max_age", t.priority_pin_max_age);
  v.field(tracker, "priority_pin_max_retries", t.priority_pin_max_retries);

  v.field("monitor.pubsubmon", "check_interval", c.monitor.check_interval);
  v.field("allocator.balanced", "allocate_by", c.allocator.allocate_by);
  v.field("informer.disk", "metric_ttl", c.informer.disk_metric_ttl);
  v.field("informer.disk", "metric_type", c.informer.disk_metric_type);
  v.field("informer.tags", "metric_ttl", c.informer.tags_metric_ttl);
  v.field("informer.tags", "tags", c.informer.tags);
}

// Keys IPFS Cluster writes that have no meaning here (libp2p, CRDT, TLS, tracing...). A config
// copied from IPFS Cluster still loads; each such key gets a warning saying it has no effect.
const std::set<std::string>& keys_without_effect() {
  static const std::set<std::string> keys{
      "cluster.connection_manager", "cluster.resource_manager", "cluster.pubsub",
      "cluster.dial_peer_timeout", "cluster.mdns_interval", "cluster.enable_relay_hop",
      "cluster.no_announce_multiaddress", "cluster.pin_only_on_trusted_peers",
      "cluster.pin_only_on_untrusted_peers", "cluster.follower_mode", "cluster.peerstore_file",
      "cluster.peer_addresses", "consensus.raft.init_peerset", "consensus.raft.datastore_namespace",
      "api.restapi.ssl_cert_file", "api.restapi.ssl_key_file",
      "api.restapi.libp2p_listen_multiaddress", "api.restapi.id", "api.restapi.private_key",
      "api.restapi.http_log_file", "source", "observations", "datastore",
      "api.pinsvcapi", "api.ipfsproxy", "informer.pinqueue", "informer.numpin", "consensus.crdt"};
  return keys;
}

// ---------------------------------------------------------------------------------------------
// Writing.

class JsonWriter {
 public:
  JsonWriter() { doc_.SetObject(); }

  void field(const char* section, const char* key, const std::string& value) {
    put(section, key, rapidjson::Value(value.c_str(), alloc()));
  }
  void field(const char* section, const char* key, const MultiaddrText& value) {
    field(section, key, value.text);
  }
  void field(const char* section, const char* key, bool value) {
    put(section, key, rapidjson::Value(value));
  }
  void field(const char* section, const char* key, std::int64_t value) {
    put(section, key, rapidjson::Value(value));
  }
  void field(const char* section, const char* key, nanoseconds value) {
    field(section, key, format_go_duration(value));
  }
  void field(const char* section, const char* key, const std::vector<std::string>& list) {
    rapidjson::Value array(rapidjson::kArrayType);
    for (const auto& s : list) array.PushBack(rapidjson::Value(s.c_str(), alloc()), alloc());
    put(section, key, std::move(array));
  }
  void field(const char* section, const char* key, const MultiaddrList& value) {
    field(section, key, value.list);
  }
  void field(const char* section, const char* key, const std::map<std::string, std::string>& m) {
    rapidjson::Value object(rapidjson::kObjectType);
    for (const auto& [k, val] : m) {
      object.AddMember(rapidjson::Value(k.c_str(), alloc()), rapidjson::Value(val.c_str(), alloc()),
                       alloc());
    }
    put(section, key, std::move(object));
  }
  void field(const char* section, const char* key,
             const std::optional<std::map<std::string, std::string>>& m) {
    if (m) {
      field(section, key, *m);
    } else {
      put(section, key, rapidjson::Value(rapidjson::kNullType));
    }
  }

  std::string text() const {
    rapidjson::StringBuffer buffer;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
    writer.SetIndent(' ', 2);
    doc_.Accept(writer);
    return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
  }

 private:
  rapidjson::Document::AllocatorType& alloc() { return doc_.GetAllocator(); }

  // Finds or creates the object at a dotted section path ("consensus.raft").
  rapidjson::Value& section_object(std::string_view section) {
    rapidjson::Value* node = &doc_;
    while (!section.empty()) {
      auto dot = section.find('.');
      std::string part(section.substr(0, dot));
      section = dot == std::string_view::npos ? std::string_view() : section.substr(dot + 1);
      auto it = node->FindMember(part.c_str());
      if (it == node->MemberEnd()) {
        node->AddMember(rapidjson::Value(part.c_str(), alloc()),
                        rapidjson::Value(rapidjson::kObjectType), alloc());
        it = node->FindMember(part.c_str());
      }
      node = &it->value;
    }
    return *node;
  }

  void put(const char* section, const char* key, rapidjson::Value value) {
    section_object(section).AddMember(rapidjson::Value(key, alloc()), std::move(value), alloc());
  }

  rapidjson::Document doc_;
};

// ---------------------------------------------------------------------------------------------
// Reading.

std::string show(const rapidjson::Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  v.Accept(writer);
  std::string text(buffer.GetString(), buffer.GetSize());
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

class JsonReader {
 public:
  JsonReader(const rapidjson::Document& doc, std::string_view origin) : doc_(doc), origin_(origin) {}

  void field(const char* section, const char* key, std::string& out) {
    if (const auto* v = find(section, key)) {
      if (v->IsString()) {
        out.assign(v->GetString(), v->GetStringLength());
      } else {
        bad(section, key, *v, "is not a string");
      }
    }
  }
  void field(const char* section, const char* key, const MultiaddrText& out) {
    const auto* v = find(section, key);
    if (v == nullptr) return;
    if (!v->IsString()) return bad(section, key, *v, "is not a string (a multiaddr such as \"/ip4/127.0.0.1/tcp/9094\")");
    check_multiaddr(section, key, *v);
    out.text.assign(v->GetString(), v->GetStringLength());
  }
  void field(const char* section, const char* key, bool& out) {
    if (const auto* v = find(section, key)) {
      if (v->IsBool()) {
        out = v->GetBool();
      } else {
        bad(section, key, *v, "is not a boolean; accepted: true or false");
      }
    }
  }
  void field(const char* section, const char* key, std::int64_t& out) {
    if (const auto* v = find(section, key)) {
      if (v->IsInt64()) {
        out = v->GetInt64();
      } else {
        // Said by the range check of the key, which knows what is accepted (finish_integers
        // says the others).
        bad_integers_[std::string(section) + "." + key] = show(*v);
      }
    }
  }
  void field(const char* section, const char* key, nanoseconds& out) {
    const auto* v = find(section, key);
    if (v == nullptr) return;
    if (!v->IsString()) return bad(section, key, *v, "is not a duration (e.g. \"1s\", \"1m0s\", \"200ms\")");
    auto d = parse_go_duration(std::string_view(v->GetString(), v->GetStringLength()));
    if (!d) {
      return bad(section, key, *v, "is not a duration: " + d.error().message);
    }
    if (d->count() < 0) return bad(section, key, *v, "is negative; accepted: a duration >= 0s");
    // Timers and timeouts count milliseconds: a shorter one would become 0 (no timer, or none).
    if (d->count() > 0 && *d < std::chrono::milliseconds(1)) {
      return bad(section, key, *v, "is shorter than 1ms, the smallest duration clusterpin keeps; "
                                   "accepted: 0s or a duration >= 1ms");
    }
    out = *d;
  }
  void field(const char* section, const char* key, std::vector<std::string>& out) {
    const auto* v = find(section, key);
    if (v == nullptr) return;
    if (!v->IsArray()) return bad(section, key, *v, "is not a list of strings");
    std::vector<std::string> list;
    for (const auto& item : v->GetArray()) {
      if (!item.IsString()) return bad(section, key, *v, "is not a list of strings");
      list.emplace_back(item.GetString(), item.GetStringLength());
    }
    out = std::move(list);
  }
  void field(const char* section, const char* key, const MultiaddrList& out) {
    const auto* v = find(section, key);
    if (v == nullptr) return;
    // IPFS Cluster accepts a single string for listen_multiaddress too.
    if (v->IsString()) {
      check_multiaddr(section, key, *v);
      out.list = {std::string(v->GetString(), v->GetStringLength())};
      return;
    }
    if (!v->IsArray()) return bad(section, key, *v, "is not a list of multiaddrs");
    std::vector<std::string> list;
    for (const auto& item : v->GetArray()) {
      if (!item.IsString()) return bad(section, key, *v, "is not a list of multiaddrs");
      check_multiaddr(section, key, item);
      list.emplace_back(item.GetString(), item.GetStringLength());
    }
    out.list = std::move(list);
  }
  void field(const char* section, const char* key, std::map<std::string, std::string>& out) {
    const auto* v = find(section, key);
    if (v == nullptr) return;
    if (v->IsNull()) {  // as Go reads null into a map: none
      out.clear();
      return;
    }
    if (!v->IsObject()) return bad(section, key, *v, "is not an object of strings");
    std::map<std::string, std::string> m;
    for (const auto& member : v->GetObject()) {
      if (!member.value.IsString()) return bad(section, key, *v, "is not an object of strings");
      m[member.name.GetString()] = member.value.GetString();
    }
    out = std::move(m);
  }
  void field(const char* section, const char* key,
             std::optional<std::map<std::string, std::string>>& out) {
    const auto* v = find(section, key);
    if (v == nullptr || v->IsNull()) return;
    std::map<std::string, std::string> m;
    field(section, key, m);
    out = std::move(m);
  }

  // Keys present in the file that no field claimed.
  void collect_unknown(std::vector<std::string>& warnings) const {
    walk(doc_, "", warnings);
  }

  void error(std::string message) { errors_.push_back(std::move(message)); }
  const std::vector<std::string>& errors() const { return errors_; }
  // The value at `path` when it was not an integer (it was left at its default), once.
  std::optional<std::string> take_bad_integer(const std::string& path) {
    auto it = bad_integers_.find(path);
    if (it == bad_integers_.end()) return std::nullopt;
    std::string shown = std::move(it->second);
    bad_integers_.erase(it);
    return shown;
  }
  // Reports the values that were not integers and that no range check took.
  void finish_integers() {
    for (const auto& [path, shown] : bad_integers_)
      error(fmt::format("{}: {}: {} is not an integer; accepted: a whole number", origin_, path, shown));
    bad_integers_.clear();
  }
  std::string_view origin() const { return origin_; }

 private:
  const rapidjson::Value* find(const char* section, const char* key) {
    std::string path = std::string(section) + "." + key;
    seen_.insert(path);
    const rapidjson::Value* node = &doc_;
    std::string_view rest(path);
    std::string at;  // the path of `node`
    while (!rest.empty()) {
      auto dot = rest.find('.');
      std::string part(rest.substr(0, dot));
      rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
      if (!node->IsObject()) {
        // A section that is not an object (null, a string...): said once, not as unknown keys.
        if (bad_sections_.insert(at).second) {
          error(fmt::format("{}: {}: {} is not an object; accepted: an object of the section's keys",
                            origin_, at, show(*node)));
        }
        return nullptr;
      }
      auto it = node->FindMember(part.c_str());
      if (it == node->MemberEnd()) return nullptr;
      node = &it->value;
      at += (at.empty() ? "" : ".") + part;
    }
    return node;
  }

  void check_multiaddr(const char* section, const char* key, const rapidjson::Value& v) {
    auto parsed = Multiaddr::parse(std::string_view(v.GetString(), v.GetStringLength()));
    if (!parsed) {
      error(fmt::format("{}: {}.{}: {} is not a multiaddr ({})", origin_, section, key, show(v),
                        parsed.error().message));
    }
  }

  void bad(const char* section, const char* key, const rapidjson::Value& v, std::string_view why) {
    error(fmt::format("{}: {}.{}: {} {}", origin_, section, key, show(v), why));
  }

  bool is_known_prefix(const std::string& path) const {
    auto it = seen_.lower_bound(path + ".");
    return it != seen_.end() && it->compare(0, path.size() + 1, path + ".") == 0;
  }

  void walk(const rapidjson::Value& node, const std::string& prefix,
            std::vector<std::string>& warnings) const {
    for (const auto& member : node.GetObject()) {
      std::string path = prefix.empty() ? member.name.GetString()
                                        : prefix + "." + member.name.GetString();
      if (seen_.count(path) != 0) continue;
      if (keys_without_effect().count(path) != 0) {
        warnings.push_back(fmt::format("{}: {}: has no effect in clusterpin (ignored)", origin_, path));
      } else if (is_known_prefix(path)) {
        if (member.value.IsObject()) walk(member.value, path, warnings);  // else refused by find
      } else {
        warnings.push_back(fmt::format("{}: {}: unknown key (ignored)", origin_, path));
      }
    }
  }

  const rapidjson::Document& doc_;
  std::string origin_;
  std::set<std::string> seen_;
  std::set<std::string> bad_sections_;
  std::map<std::string, std::string> bad_integers_;  // path -> the value as shown
  std::vector<std::string> errors_;
};

// A key written twice in one object: RapidJSON keeps both and lookups find the first, where Go
// (IPFS Cluster) takes the last; neither is what a reader of the file can tell, so it is refused.
void check_duplicate_keys(const rapidjson::Value& node, const std::string& prefix, std::string_view origin,
                          std::vector<std::string>& errors) {
  if (!node.IsObject()) return;
  std::set<std::string_view> names;
  for (const auto& member : node.GetObject()) {
    std::string_view name(member.name.GetString(), member.name.GetStringLength());
    std::string path = prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
    if (!names.insert(name).second) {
      errors.push_back(fmt::format("{}: {}: the key appears more than once; accepted: each key once",
                                   origin, path));
    }
    check_duplicate_keys(member.value, path, origin, errors);
  }
}

// Line and column (1-based) of a byte offset, for JSON syntax errors.
std::pair<std::size_t, std::size_t> line_column(std::string_view text, std::size_t offset) {
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

void check_replication(const ClusterConfig& c, JsonReader& reader) {
  auto min = c.replication_factor_min, max = c.replication_factor_max;
  auto origin = reader.origin();
  bool not_integers = false;
  for (const char* path : {"cluster.replication_factor_min", "cluster.replication_factor_max"}) {
    if (auto shown = reader.take_bad_integer(path)) {
      reader.error(fmt::format("{}: {}: {} is not an integer; accepted: -1 (every peer) or an "
                               "integer >= 1",
                               origin, path, *shown));
      not_integers = true;
    }
  }
  if (not_integers) return;
  if (min == 0 || max == 0 || min < -1 || max < -1) {
    reader.error(fmt::format(
        "{}: cluster.replication_factor_min/max: {}/{} is not valid; accepted: -1 (every peer) "
        "for both, or 1 <= min <= max",
        origin, min, max));
  } else if ((min == -1) != (max == -1)) {
    reader.error(fmt::format(
        "{}: cluster.replication_factor_min/max: {}/{} mixes -1 with a number; accepted: -1 for "
        "both (every peer), or 1 <= min <= max",
        origin, min, max));
  } else if (min > max) {
    reader.error(fmt::format(
        "{}: cluster.replication_factor_min/max: min {} is greater than max {}; accepted: "
        "1 <= min <= max",
        origin, min, max));
  }
}

void check_secret(const ClusterConfig& c, const ConfigLoadOptions& options, JsonReader& reader) {
  if (c.secret.empty()) {
    if (!options.allow_empty_secret) {
      reader.error(fmt::format(
          "{}: cluster.secret: \"\" is empty: anyone could join this cluster; accepted: 64 hex "
          "characters (32 bytes), or pass --insecure-empty-secret to run without one",
          reader.origin()));
    }
    return;
  }
  if (auto s = decode_secret(c.secret); !s) {
    reader.error(fmt::format("{}: cluster.secret: {}", reader.origin(), s.error().message));
  }
}

void check_range(JsonReader& reader, const char* path, std::int64_t value, std::int64_t min,
                 std::int64_t max) {
  if (auto shown = reader.take_bad_integer(path)) {
    reader.error(fmt::format("{}: {}: {} is not an integer; accepted: an integer from {} to {}",
                             reader.origin(), path, *shown, min, max));
    return;
  }
  if (value < min || value > max) {
    reader.error(fmt::format("{}: {}: {} is out of range; accepted: an integer from {} to {}",
                             reader.origin(), path, value, min, max));
  }
}

void check_positive(JsonReader& reader, const char* path, std::int64_t value) {
  check_range(reader, path, value, 1, std::numeric_limits<std::int64_t>::max());
}

// A duration that drives a timer or bounds a wait: 0s would turn it off or spin it.
void check_at_least(JsonReader& reader, const char* path, nanoseconds value, nanoseconds min,
                    std::string_view why) {
  if (value < min) {
    reader.error(fmt::format("{}: {}: \"{}\" is too short ({}); accepted: {} or more", reader.origin(),
                             path, format_go_duration(value), why, format_go_duration(min)));
  }
}

// An HTTP header name is a token (RFC 9110): no spaces, colons or controls; a value has no
// line break.
bool is_header_token(std::string_view name) {
  if (name.empty()) return false;
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 32 || c >= 127 || std::string_view("\"(),/:;<=>?@[\\]{}").find(ch) != std::string_view::npos) {
      return false;
    }
  }
  return true;
}

void check_values(const ServiceConfig& c, const ConfigLoadOptions& options, JsonReader& reader) {
  check_secret(c.cluster, options, reader);
  check_replication(c.cluster, reader);
  check_positive(reader, "consensus.raft.max_append_entries", c.raft.max_append_entries);
  check_positive(reader, "consensus.raft.snapshot_threshold", c.raft.snapshot_threshold);
  check_positive(reader, "pin_tracker.stateless.concurrent_pins", c.tracker.concurrent_pins);
  check_positive(reader, "pin_tracker.stateless.max_pin_queue_size", c.tracker.max_pin_queue_size);
  check_range(reader, "consensus.raft.commit_retries", c.raft.commit_retries, 0, 1000);
  check_range(reader, "consensus.raft.trailing_logs", c.raft.trailing_logs, 0,
              std::numeric_limits<std::int64_t>::max());
  check_positive(reader, "consensus.raft.backups_rotate", c.raft.backups_rotate);
  check_range(reader, "pin_tracker.stateless.priority_pin_max_retries",
              c.tracker.priority_pin_max_retries, 0, std::numeric_limits<std::int64_t>::max());
  check_range(reader, "api.restapi.max_header_bytes", c.restapi.max_header_bytes, 1024, 64 << 20);
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  const auto raft_tick = milliseconds(100);
  check_at_least(reader, "consensus.raft.heartbeat_timeout", c.raft.heartbeat_timeout, raft_tick,
                 "Raft counts time in ticks of 100ms");
  check_at_least(reader, "consensus.raft.election_timeout", c.raft.election_timeout, raft_tick,
                 "Raft counts time in ticks of 100ms");
  if (c.raft.election_timeout < c.raft.heartbeat_timeout) {
    reader.error(fmt::format(
        "{}: consensus.raft.election_timeout: \"{}\" is shorter than heartbeat_timeout \"{}\": "
        "followers would start elections between the leader's heartbeats; accepted: "
        "election_timeout >= heartbeat_timeout",
        reader.origin(), format_go_duration(c.raft.election_timeout),
        format_go_duration(c.raft.heartbeat_timeout)));
  }
  check_at_least(reader, "consensus.raft.wait_for_leader_timeout", c.raft.wait_for_leader_timeout,
                 milliseconds(100), "a start waits this long for a leader");
  check_at_least(reader, "consensus.raft.network_timeout", c.raft.network_timeout, milliseconds(100),
                 "a commit waits this long for a majority");
  check_at_least(reader, "consensus.raft.snapshot_interval", c.raft.snapshot_interval, seconds(1),
                 "snapshots would be checked for without pause");
  // Periodic work: 0s would turn it off without a word, a few ms spin a core.
  const auto period = milliseconds(100);
  const char* periodic = "it runs this often";
  check_at_least(reader, "cluster.state_sync_interval", c.cluster.state_sync_interval, period, periodic);
  check_at_least(reader, "cluster.ipfs_sync_interval", c.cluster.ipfs_sync_interval, period, periodic);
  check_at_least(reader, "cluster.pin_recover_interval", c.cluster.pin_recover_interval, period, periodic);
  check_at_least(reader, "cluster.monitor_ping_interval", c.cluster.monitor_ping_interval, period, periodic);
  check_at_least(reader, "monitor.pubsubmon.check_interval", c.monitor.check_interval, period, periodic);
  const char* ttl = "metrics are published every half of it and expire after it";
  check_at_least(reader, "informer.disk.metric_ttl", c.informer.disk_metric_ttl, period, ttl);
  check_at_least(reader, "informer.tags.metric_ttl", c.informer.tags_metric_ttl, period, ttl);
  if (c.cluster.listen_multiaddress.empty()) {
    reader.error(fmt::format("{}: cluster.listen_multiaddress: [] names no address; accepted: a TCP "
                             "multiaddr such as \"/ip4/0.0.0.0/tcp/9096\"",
                             reader.origin()));
  }
  if (c.restapi.basic_auth_credentials) {
    for (const auto& [user, password] : *c.restapi.basic_auth_credentials) {
      if (user.empty() || password.empty()) {
        reader.error(fmt::format("{}: api.restapi.basic_auth_credentials: an empty {} would let anyone "
                                 "in; accepted: non-empty user names and passwords (or null for none)",
                                 reader.origin(), user.empty() ? "user name" : "password"));
      }
    }
  }
  for (const auto& [name, value] : c.restapi.headers) {
    if (!is_header_token(name) || value.find_first_of("\r\n") != std::string::npos) {
      reader.error(fmt::format("{}: api.restapi.headers: \"{}\" {}; accepted: header names of letters, "
                               "digits and !#$%&'*+-.^_`|~, values on one line",
                               reader.origin(), name,
                               is_header_token(name) ? "has a value with a line break" : "is not a header name"));
    }
  }
  const std::string& type = c.informer.disk_metric_type;
  if (type != "freespace" && type != "reposize") {
    reader.error(fmt::format("{}: informer.disk.metric_type: \"{}\" is not valid; accepted: "
                             "\"freespace\" or \"reposize\"",
                             reader.origin(), type));
  }
  // Peers publish the disk metric of informer.disk.metric_type and tag:<name> for each tag; an
  // allocation by another metric would find no candidate at all.
  for (const auto& name : c.allocator.allocate_by) {
    if (name == type || (name.rfind("tag:", 0) == 0 && name.size() > 4)) continue;
    reader.error(fmt::format(
        "{}: allocator.balanced.allocate_by: \"{}\" is not a metric clusterpin publishes; accepted: "
        "\"{}\" (informer.disk.metric_type) and \"tag:<name>\" for the tags of informer.tags.tags",
        reader.origin(), name, type));
  }
}

}  // namespace

Result<Bytes> decode_secret(std::string_view hex) {
  if (hex.size() != 64) {
    return make_error(fmt::format(
        "\"{}\" is {} characters long; accepted: 64 hex characters (32 bytes)", hex, hex.size()));
  }
  auto bytes = hex_decode(hex);
  if (!bytes) {
    return make_error(
        fmt::format("\"{}\" is not hex; accepted: 64 hex characters (0-9, a-f)", hex));
  }
  return std::move(bytes).value();
}

std::string config_to_json(const ServiceConfig& config) {
  JsonWriter writer;
  // The writer only reads; visit_fields takes a mutable config so one list serves both ways.
  visit_fields(const_cast<ServiceConfig&>(config), writer);
  return writer.text();
}

namespace {

// Keys that `init` writes in IPFS Cluster's shape but that tune machinery clusterpin does not
// have: a value other than the default is warned about, naming what governs that here.
void warn_compatibility_only(const ServiceConfig& c, std::string_view origin,
                             std::vector<std::string>& warnings) {
  const ServiceConfig d;
  auto warn = [&](bool differs, const char* path, const char* instead) {
    if (differs) warnings.push_back(fmt::format("{}: {}: has no effect in clusterpin (ignored): {}", origin, path, instead));
  };
  warn(c.cluster.peer_watch_interval != d.cluster.peer_watch_interval, "cluster.peer_watch_interval",
       "a peer learns of its removal when it applies it, or from the members when it starts");
  warn(c.raft.commit_timeout != d.raft.commit_timeout, "consensus.raft.commit_timeout",
       "the leader sends new entries at once and heartbeats every heartbeat_timeout / 4");
  warn(c.raft.leader_lease_timeout != d.raft.leader_lease_timeout, "consensus.raft.leader_lease_timeout",
       "the leader's lease is election_timeout");
  warn(c.restapi.write_timeout != d.restapi.write_timeout, "api.restapi.write_timeout",
       "an answer is cut when the client takes none of it for 60s, however long it streams");
}

}  // namespace

Result<LoadedConfig> parse_config(std::string_view json, std::string_view origin,
                                  const ConfigLoadOptions& options) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) {
    auto [line, column] = line_column(json, doc.GetErrorOffset());
    return make_error(fmt::format("{}: malformed JSON at line {}, column {}: {}", origin, line,
                                  column, rapidjson::GetParseError_En(doc.GetParseError())));
  }
  if (!doc.IsObject()) {
    return make_error(fmt::format("{}: the top level is not a JSON object", origin));
  }
  LoadedConfig loaded;
  JsonReader reader(doc, origin);
  visit_fields(loaded.config, reader);
  reader.collect_unknown(loaded.warnings);
  std::vector<std::string> duplicates;
  check_duplicate_keys(doc, "", origin, duplicates);
  for (auto& e : duplicates) reader.error(std::move(e));
  if (loaded.config.cluster.listen_multiaddress.size() > 1) {
    loaded.warnings.push_back(fmt::format("{}: cluster.listen_multiaddress: only the first address ({}) "
                                          "is listened on; the other {} are ignored",
                                          origin, loaded.config.cluster.listen_multiaddress.front(),
                                          loaded.config.cluster.listen_multiaddress.size() - 1));
  }
  warn_compatibility_only(loaded.config, origin, loaded.warnings);
  check_values(loaded.config, options, reader);
  reader.finish_integers();
  if (!reader.errors().empty()) {
    std::string message;
    for (const auto& e : reader.errors()) message += (message.empty() ? "" : "\n") + e;
    return make_error(std::move(message));
  }
  return loaded;
}

std::filesystem::path data_folder_path(std::string_view data_folder, const std::filesystem::path& config_dir) {
  if (data_folder.empty()) return config_dir / "clusterpin-data";
  std::filesystem::path folder(data_folder);
  return folder.is_absolute() ? folder : config_dir / folder;
}

}  // namespace clusterpin
