// Pin encodings (see pin.hpp). The binary form starts with a version byte so fields can be
// added; decoders refuse anything malformed instead of guessing.
#include "core/pin.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/core.h>
#include <rapidjson/document.h>

#include "core/duration.hpp"
#include "core/json_text.hpp"
#include "core/multiaddr.hpp"
#include "core/wire.hpp"

namespace clusterpin {
namespace {

constexpr std::uint8_t kPinFormat = 1;
constexpr std::uint8_t kOpsFormat = 1;

std::string_view as_view(const Bytes& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

template <class T>
Result<T> decode_error(std::string_view what) {
  return make_error(fmt::format("corrupt pin record: {}", what));
}

void write_peers(WireWriter& w, const std::vector<PeerId>& peers) {
  w.u64(peers.size());
  for (const auto& p : peers) w.bytes(as_view(p.bytes()));
}

bool read_peers(WireReader& r, std::vector<PeerId>& out) {
  std::uint64_t n = r.u64();
  if (!r.ok() || n > 1'000'000) return false;
  for (std::uint64_t i = 0; i < n; ++i) {
    auto id = PeerId::from_bytes(as_bytes(r.bytes()));
    if (!r.ok() || !id) return false;
    out.push_back(std::move(id).value());
  }
  return true;
}

std::optional<Cid> read_optional_cid(WireReader& r, bool& ok) {
  std::string_view b = r.bytes();
  if (b.empty()) return std::nullopt;
  auto cid = Cid::from_bytes(as_bytes(b));
  if (!cid) {
    ok = false;
    return std::nullopt;
  }
  return std::move(cid).value();
}

void encode_pin_into(WireWriter& w, const Pin& pin) {
  w.u64(kPinFormat);
  w.bytes(as_view(pin.cid.bytes()));
  w.u64(static_cast<std::uint8_t>(pin.type));
  write_peers(w, pin.allocations);
  w.i64(pin.max_depth);
  w.bytes(pin.reference ? as_view(pin.reference->bytes()) : std::string_view());
  w.i64(pin.timestamp);
  const PinOptions& o = pin.options;
  w.i64(o.replication_factor_min);
  w.i64(o.replication_factor_max);
  w.bytes(o.name);
  w.u64(static_cast<std::uint8_t>(o.mode));
  w.u64(o.shard_size);
  write_peers(w, o.user_allocations);
  w.i64(o.expire_at);
  w.u64(o.metadata.size());
  for (const auto& [k, v] : o.metadata) {
    w.bytes(k);
    w.bytes(v);
  }
  w.bytes(o.pin_update ? as_view(o.pin_update->bytes()) : std::string_view());
  w.u64(o.origins.size());
  for (const auto& origin : o.origins) w.bytes(origin);
}

Result<Pin> decode_pin_from(WireReader& r) {
  if (r.u64() != kPinFormat || !r.ok()) return decode_error<Pin>("unknown format version");
  auto cid = Cid::from_bytes(as_bytes(r.bytes()));
  if (!cid) return decode_error<Pin>("bad cid");
  Pin pin(std::move(cid).value());
  std::uint64_t type = r.u64();
  if (type < 1 || type > 4) return decode_error<Pin>("bad type");
  pin.type = static_cast<PinType>(type);
  if (!read_peers(r, pin.allocations)) return decode_error<Pin>("bad allocations");
  pin.max_depth = r.i64();
  bool ok = true;
  pin.reference = read_optional_cid(r, ok);
  pin.timestamp = r.i64();
  PinOptions& o = pin.options;
  o.replication_factor_min = r.i64();
  o.replication_factor_max = r.i64();
  o.name = std::string(r.bytes());
  std::uint64_t mode = r.u64();
  if (mode > 1) return decode_error<Pin>("bad mode");
  o.mode = static_cast<PinMode>(mode);
  o.shard_size = r.u64();
  if (!read_peers(r, o.user_allocations)) return decode_error<Pin>("bad user allocations");
  o.expire_at = r.i64();
  std::uint64_t n = r.u64();
  for (std::uint64_t i = 0; r.ok() && i < n; ++i) {
    std::string k(r.bytes());
    o.metadata[k] = std::string(r.bytes());
  }
  o.pin_update = read_optional_cid(r, ok);
  n = r.u64();
  for (std::uint64_t i = 0; r.ok() && i < n; ++i) o.origins.emplace_back(r.bytes());
  if (!r.ok() || !ok) return decode_error<Pin>("truncated");
  return pin;
}

Result<std::int64_t> query_int(std::string_view key, std::string_view value) {
  std::int64_t out = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || ptr != value.data() + value.size()) {
    return make_error(fmt::format("{}: \"{}\" is not an integer", key, value));
  }
  return out;
}

std::vector<std::string> split_commas(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    if (!part.empty()) out.emplace_back(part);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
  }
  return out;
}

Result<std::vector<PeerId>> parse_peer_list(std::string_view key, std::string_view text) {
  std::vector<PeerId> out;
  for (const auto& item : split_commas(text)) {
    auto id = PeerId::parse(item);
    if (!id) return make_error(fmt::format("{}: \"{}\" is not a peer id ({})", key, item, id.error().message));
    out.push_back(std::move(id).value());
  }
  return out;
}

Status apply_query_param(PinOptions& o, const std::string& key, const std::string& value,
                         UnixNanos now, bool& expire_at_given) {
  if (key == "replication" || key == "replication-min" || key == "replication-max") {
    auto n = query_int(key, value);
    if (!n) return n.error();
    if (key != "replication-max") o.replication_factor_min = *n;
    if (key != "replication-min") o.replication_factor_max = *n;
  } else if (key == "name") {
    o.name = value;
  } else if (key == "mode") {
    if (value == "recursive") {
      o.mode = PinMode::recursive;
    } else if (value == "direct") {
      o.mode = PinMode::direct;
    } else {
      return make_error(fmt::format("mode: \"{}\" is not a pin mode; accepted: recursive, direct", value));
    }
  } else if (key == "shard-size") {
    auto n = query_int(key, value);
    if (!n || *n < 0) return make_error(fmt::format("shard-size: \"{}\" is not a size in bytes", value));
    o.shard_size = static_cast<std::uint64_t>(*n);
  } else if (key == "user-allocations") {
    auto peers = parse_peer_list(key, value);
    if (!peers) return peers.error();
    o.user_allocations = std::move(peers).value();
  } else if (key == "expire-at") {
    auto t = parse_rfc3339(value);
    if (!t) return make_error("expire-at: " + t.error().message);
    o.expire_at = *t;
    expire_at_given = true;
  } else if (key == "expire-in") {
    auto d = parse_go_duration(value);
    if (!d || d->count() <= 0) {
      return make_error(fmt::format(
          "expire-in: \"{}\" is not a positive Go duration (e.g. \"24h0m0s\", \"90s\")", value));
    }
    if (!expire_at_given) o.expire_at = now + d->count();
  } else if (key.rfind("meta-", 0) == 0) {
    o.metadata[key.substr(5)] = value;
  } else if (key == "pin-update") {
    auto cid = Cid::parse(value);
    if (!cid) return make_error("pin-update: " + cid.error().message);
    o.pin_update = std::move(cid).value();
  } else if (key == "origins") {
    for (const auto& origin : split_commas(value)) {
      auto m = Multiaddr::parse(origin);
      if (!m) return make_error("origins: " + m.error().message);
      if (!m->peer_id()) {
        return make_error(fmt::format("origins: \"{}\" has no /p2p/<peer id> component", origin));
      }
      o.origins.push_back(origin);
    }
  }
  return {};
}

}  // namespace

std::string_view pin_type_name(PinType type) {
  switch (type) {
    case PinType::data: return "pin";
    case PinType::meta: return "meta-pin";
    case PinType::cluster_dag: return "clusterdag-pin";
    case PinType::shard: return "shard-pin";
  }
  return "pin";
}

std::string_view pin_mode_name(PinMode mode) {
  return mode == PinMode::direct ? "direct" : "recursive";
}

bool Pin::allocated_to(const PeerId& peer) const {
  return everywhere() || std::find(allocations.begin(), allocations.end(), peer) != allocations.end();
}

Result<std::optional<Pin>> decode_stored_pin(const Result<std::optional<std::string>>& stored) {
  if (!stored) return stored.error();
  if (!*stored) return std::optional<Pin>();
  auto pin = decode_pin(**stored);
  if (!pin) return pin.error();
  return std::optional<Pin>(std::move(pin).value());
}

std::string encode_pin(const Pin& pin) {
  WireWriter w;
  encode_pin_into(w, pin);
  return w.take();
}

Result<Pin> decode_pin(std::string_view bytes) {
  WireReader r(bytes);
  auto pin = decode_pin_from(r);
  if (pin && !r.at_end()) return decode_error<Pin>("trailing bytes");
  return pin;
}

void append_pin_json(std::string& out, const Pin& pin) {
  // Keys are written with their quotes, colon and the comma before them as one literal; CIDs
  // and times straight into `out` between quotes (none of their characters needs escaping): a
  // listing writes this for every pin.
  const PinOptions& o = pin.options;
  auto number = [&](auto v) {
    char buf[24];
    out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  };
  // Writes items between `open` and `close`, comma-separated, each with `one`.
  auto list = [&](char open, const auto& items, auto&& one, char close) {
    out += open;
    bool first = true;
    for (const auto& item : items) {
      if (!first) out += ',';
      first = false;
      one(item);
    }
    out += close;
  };
  auto peers = [&](const std::vector<PeerId>& ids) {
    list('[', ids, [&](const PeerId& id) { append_json_string(out, id.to_string()); }, ']');
  };
  auto cid = [&](const Cid& c) {
    out += '"';
    c.append_text(out);
    out += '"';
  };
  auto time = [&](UnixNanos t) {
    out += '"';
    append_rfc3339(out, t);
    out += '"';
  };
  out += "{\"replication_factor_min\":"; number(o.replication_factor_min);
  out += ",\"replication_factor_max\":"; number(o.replication_factor_max);
  out += ",\"name\":"; append_json_string(out, o.name);
  out += ",\"mode\":"; append_json_string(out, pin_mode_name(o.mode));
  out += ",\"shard_size\":"; number(o.shard_size);
  out += ",\"user_allocations\":"; peers(o.user_allocations);
  out += ",\"expire_at\":"; time(o.expire_at);
  out += ",\"metadata\":";
  list('{', o.metadata, [&](const auto& kv) {
    append_json_string(out, kv.first);
    out += ':';
    append_json_string(out, kv.second);
  }, '}');
  if (o.pin_update) {
    out += ",\"pin_update\":"; cid(*o.pin_update);
  }
  out += ",\"origins\":";
  list('[', o.origins, [&](const std::string& origin) { append_json_string(out, origin); }, ']');
  out += ",\"cid\":"; cid(pin.cid);
  out += ",\"type\":"; append_json_string(out, pin_type_name(pin.type));
  out += ",\"allocations\":"; peers(pin.allocations);
  out += ",\"max_depth\":"; number(pin.max_depth);
  out += ",\"reference\":";
  if (pin.reference) {
    cid(*pin.reference);
  } else {
    out += "null";
  }
  out += ",\"timestamp\":"; time(pin.timestamp);
  out += '}';
}

std::string pin_to_json(const Pin& pin) {
  std::string out;
  append_pin_json(out, pin);
  return out;
}

Result<Pin> pin_from_json(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return make_error("pin: not a JSON object");
  auto str = [&](const char* key) -> std::string_view {
    auto it = doc.FindMember(key);
    if (it == doc.MemberEnd() || !it->value.IsString()) return {};
    return {it->value.GetString(), it->value.GetStringLength()};
  };
  auto num = [&](const char* key, std::int64_t fallback) -> std::int64_t {
    auto it = doc.FindMember(key);
    return it != doc.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : fallback;
  };
  auto peers = [&](const char* key, std::vector<PeerId>& out) -> Status {
    auto it = doc.FindMember(key);
    if (it == doc.MemberEnd() || !it->value.IsArray()) return {};
    for (const auto& v : it->value.GetArray()) {
      if (!v.IsString()) return make_error(fmt::format("pin: {} holds a non-string", key));
      auto id = PeerId::parse(v.GetString());
      if (!id) return make_error(fmt::format("pin: {}: {}", key, id.error().message));
      out.push_back(std::move(id).value());
    }
    return {};
  };
  auto cid = Cid::parse(str("cid"));
  if (!cid) return make_error("pin: cid: " + cid.error().message);
  Pin pin(std::move(cid).value());
  std::string_view type = str("type");
  for (auto t : {PinType::data, PinType::meta, PinType::cluster_dag, PinType::shard}) {
    if (type == pin_type_name(t)) pin.type = t;
  }
  if (auto s = peers("allocations", pin.allocations); !s) return s.error();
  pin.max_depth = num("max_depth", -1);
  if (auto ref = str("reference"); !ref.empty()) {
    auto c = Cid::parse(ref);
    if (!c) return make_error("pin: reference: " + c.error().message);
    pin.reference = std::move(c).value();
  }
  if (auto ts = str("timestamp"); !ts.empty()) {
    auto t = parse_rfc3339(ts);
    if (!t) return make_error("pin: timestamp: " + t.error().message);
    pin.timestamp = *t;
  }
  PinOptions& o = pin.options;
  o.replication_factor_min = num("replication_factor_min", 0);
  o.replication_factor_max = num("replication_factor_max", 0);
  o.name = std::string(str("name"));
  o.mode = str("mode") == "direct" || pin.max_depth == 0 ? PinMode::direct : PinMode::recursive;
  o.shard_size = static_cast<std::uint64_t>(std::max<std::int64_t>(0, num("shard_size", 0)));
  if (auto s = peers("user_allocations", o.user_allocations); !s) return s.error();
  if (auto e = str("expire_at"); !e.empty()) {
    auto t = parse_rfc3339(e);
    if (!t) return make_error("pin: expire_at: " + t.error().message);
    o.expire_at = *t;
  }
  if (auto it = doc.FindMember("metadata"); it != doc.MemberEnd() && it->value.IsObject()) {
    for (const auto& m : it->value.GetObject()) {
      if (m.value.IsString()) o.metadata[m.name.GetString()] = m.value.GetString();
    }
  }
  if (auto u = str("pin_update"); !u.empty()) {
    auto c = Cid::parse(u);
    if (!c) return make_error("pin: pin_update: " + c.error().message);
    o.pin_update = std::move(c).value();
  }
  if (auto it = doc.FindMember("origins"); it != doc.MemberEnd() && it->value.IsArray()) {
    for (const auto& v : it->value.GetArray()) {
      if (v.IsString()) o.origins.emplace_back(v.GetString());
    }
  }
  return pin;
}

Result<PinOptions> pin_options_from_query(const QueryParams& query, UnixNanos now) {
  PinOptions o;
  // expire-at wins over expire-in whatever their order.
  bool expire_at_given = std::any_of(query.begin(), query.end(),
                                     [](const auto& kv) { return kv.first == "expire-at"; });
  for (const auto& [key, value] : query) {
    if (auto s = apply_query_param(o, key, value, now, expire_at_given); !s) return s.error();
  }
  return o;
}

std::string encode_ops(std::span<const PinsetOp> ops) {
  WireWriter w;
  w.u64(kOpsFormat);
  w.u64(ops.size());
  for (const auto& op : ops) {
    w.u64(static_cast<std::uint8_t>(op.kind));
    if (op.kind == PinsetOp::Kind::pin) {
      encode_pin_into(w, op.pin);
    } else {
      w.bytes(as_view(op.pin.cid.bytes()));
    }
  }
  return w.take();
}

Result<std::vector<PinsetOp>> decode_ops(std::string_view bytes) {
  WireReader r(bytes);
  if (r.u64() != kOpsFormat || !r.ok()) return make_error("corrupt pinset entry: unknown format");
  std::uint64_t n = r.u64();
  if (!r.ok() || n > bytes.size()) return make_error("corrupt pinset entry: bad count");
  std::vector<PinsetOp> ops;
  ops.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint64_t kind = r.u64();
    if (kind == static_cast<std::uint8_t>(PinsetOp::Kind::pin)) {
      auto pin = decode_pin_from(r);
      if (!pin) return pin.error();
      ops.push_back({PinsetOp::Kind::pin, std::move(pin).value()});
    } else if (kind == static_cast<std::uint8_t>(PinsetOp::Kind::unpin)) {
      auto cid = Cid::from_bytes(as_bytes(r.bytes()));
      if (!cid) return make_error("corrupt pinset entry: bad cid");
      ops.push_back({PinsetOp::Kind::unpin, Pin(std::move(cid).value())});
    } else {
      return make_error("corrupt pinset entry: unknown operation");
    }
  }
  if (!r.ok() || !r.at_end()) return make_error("corrupt pinset entry: truncated or trailing bytes");
  return ops;
}

}  // namespace clusterpin
