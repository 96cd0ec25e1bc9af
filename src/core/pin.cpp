// Pin encodings (see pin.hpp). The binary form starts with a version byte so fields can be
// added; decoders refuse anything malformed instead of guessing.
#include "core/pin.hpp"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cstring>
#include <limits>
#include <vector>

#include <fmt/core.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/duration.hpp"
#include "core/json_text.hpp"
#include "core/multiaddr.hpp"
#include "core/multibase.hpp"
#include "core/time_format.hpp"
#include "core/wire.hpp"

namespace clusterpin {
namespace {

constexpr std::uint8_t kPinFormat = 1;
constexpr std::uint8_t kOpsFormat = 1;

template <class T>
Result<T> decode_error(std::string_view what) {
  return make_error(fmt::format("corrupt pin record: {}", what));
}

void write_peers(WireWriter& w, const std::vector<PeerId>& peers) {
  w.u64(peers.size());
  for (const auto& p : peers) w.bytes(as_chars(p.bytes()));
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
  w.bytes(as_chars(pin.cid.bytes()));
  w.u64(static_cast<std::uint8_t>(pin.type));
  write_peers(w, pin.allocations);
  w.i64(pin.max_depth);
  w.bytes(pin.reference ? as_chars(pin.reference->bytes()) : std::string_view());
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
  w.bytes(o.pin_update ? as_chars(o.pin_update->bytes()) : std::string_view());
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
    auto at = expiry_after(now, value);
    if (!at) return at.error();
    if (!expire_at_given) o.expire_at = *at;
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

Result<PinIpfsForm> stored_pin_ipfs_form(std::string_view bytes) {
  WireReader r(bytes);
  if (r.u64() != kPinFormat || !r.ok()) return decode_error<PinIpfsForm>("unknown format version");
  if (r.bytes().empty()) return decode_error<PinIpfsForm>("bad cid");
  std::uint64_t type = r.u64();
  if (type < 1 || type > 4) return decode_error<PinIpfsForm>("bad type");
  std::uint64_t peers = r.u64();
  for (std::uint64_t i = 0; r.ok() && i < peers; ++i) r.bytes();
  PinIpfsForm form;
  form.max_depth = r.i64();
  r.bytes();  // reference
  r.i64();    // timestamp
  r.i64();    // replication_factor_min
  r.i64();    // replication_factor_max
  r.bytes();  // name
  std::uint64_t mode = r.u64();
  if (!r.ok()) return decode_error<PinIpfsForm>("truncated");
  if (mode > 1) return decode_error<PinIpfsForm>("bad mode");
  form.mode = static_cast<PinMode>(mode);
  return form;
}

namespace {

// A list of peer IDs as a record stores it: how many, and their length-prefixed bytes.
struct StoredPeers {
  std::uint64_t count = 0;
  std::string_view wire;
};

bool read_stored_peers(WireReader& r, StoredPeers& out) {
  out.count = r.u64();
  if (!r.ok() || out.count > 1'000'000) return false;
  const std::size_t from = r.position();
  for (std::uint64_t i = 0; i < out.count; ++i) {
    if (r.bytes().empty()) return false;  // (no peer ID is empty; a failed read is empty too)
  }
  out.wire = r.since(from);
  return r.ok();
}

// A peer ID's text (base58btc costs time quadratic in its length): a listing names the same
// few peers in pin after pin, so the texts of the last ones written are kept.
std::string_view peer_text(std::string_view bytes) {
  thread_local std::vector<std::pair<std::string, std::string>> known;  // bytes, text
  for (const auto& [b, text] : known) {
    if (b == bytes) return text;
  }
  if (known.size() == 64) known.erase(known.begin());
  known.emplace_back(bytes, base58btc_encode(as_bytes(bytes)));
  return known.back().second;
}

// Upper bound of the JSON of a stored pin: the keys, numbers and times, plus six bytes of text
// for every stored byte (the worst case, an escaped control character, takes six; every string,
// CID or peer ID is stored after a length byte, which pays for its quotes and separator).
constexpr std::size_t kPinJsonFixed = 640;
// Indented, each of the ~20 values outside the lists, and each item of a list or the metadata
// (every one stored after at least one length byte), starts a line: a newline, up to two
// levels of indent, and after a key ": " instead of ":".
constexpr std::size_t kPinJsonLines = 24;
std::size_t pin_json_bound(std::size_t stored_bytes, std::size_t width) {
  const std::size_t per_line = width == 0 ? 0 : 2 + 2 * width;
  return kPinJsonFixed + 6 * stored_bytes + per_line * (kPinJsonLines + stored_bytes);
}

// Writes JSON at a cursor into space reserved before (see pin_json_bound), compact or with
// each value on its own line indented by `width` spaces a level, as Go's json.MarshalIndent
// and ipfs-cluster-ctl write it (empty lists and objects stay "[]" and "{}"). The layout
// steps are forced inline: called as functions they were 7% of a peer serving a listing.
struct JsonAt {
  char* p;
  std::size_t width = 0;
  std::size_t depth = 0;

  template <std::size_t N>
  void literal(const char (&text)[N]) {
    std::memcpy(p, text, N - 1);
    p += N - 1;
  }
  void put(char c) { *p++ = c; }
  [[gnu::always_inline]] void newline() {
    if (width == 0) return;
    *p++ = '\n';
    // At most two levels of at most 8 spaces: one fixed-size copy (pin_json_bound's fixed part
    // leaves room for the bytes after the indent), not a memset call per line.
    assert(depth * width <= 16);
    std::memcpy(p, "                ", 16);
    p += depth * width;
  }
  // An object or list, opened; `close` ends it. `empty` says whether the innermost open one
  // has no item yet (its first item needs no comma, and an empty one closes as {} or []).
  bool empty = true;
  [[gnu::always_inline]] void open(char c) {
    put(c);
    ++depth;
    empty = true;
  }
  [[gnu::always_inline]] void close(char c) {
    --depth;
    if (!empty) newline();
    put(c);
    empty = false;  // the list or object just closed is an item of the one around it
  }
  // Before an item of a list or object: its separator and line.
  [[gnu::always_inline]] void item() {
    if (!empty) put(',');
    empty = false;
    newline();
  }
  // A member's key and the separator before its value.
  template <std::size_t N>
  [[gnu::always_inline]] void key(const char (&name)[N]) {
    item();
    put('"');
    literal(name);
    put('"');
    colon();
  }
  [[gnu::always_inline]] void colon() {
    put(':');
    if (width != 0) put(' ');
  }
  void string(std::string_view text) { p = write_json_string(p, text); }
  void number(std::int64_t v) { p = std::to_chars(p, p + 24, v).ptr; }
  void time(UnixNanos t) {
    put('"');
    p = write_rfc3339(p, t);
    put('"');
  }
  void cid(std::string_view bytes) {
    put('"');
    p = write_cid_text(p, as_bytes(bytes));
    put('"');
  }
  void peers(const StoredPeers& list) {
    open('[');
    WireReader r(list.wire);
    for (std::uint64_t i = 0; i < list.count; ++i) {
      item();
      const std::string_view text = peer_text(r.bytes());
      put('"');
      p = std::copy(text.begin(), text.end(), p);
      put('"');
    }
    close(']');
  }
};

// The JSON of a stored record written at `at` (room for pin_json_bound bytes); nullptr when
// the record's layout is refused (the caller then asks decode_pin why).
char* write_stored_pin_json(char* at, std::string_view bytes, std::size_t width) {
  WireReader r(bytes);
  if (r.u64() != kPinFormat || !r.ok()) return nullptr;
  // The record holds the pin's own fields first, the object writes its options first: the
  // former are kept as views while the options are written as they are read.
  const std::string_view cid = r.bytes();
  const std::uint64_t type = r.u64();
  StoredPeers allocations;
  if (cid.empty() || type < 1 || type > 4 || !read_stored_peers(r, allocations)) return nullptr;
  const std::int64_t max_depth = r.i64();
  const std::string_view reference = r.bytes();
  const UnixNanos timestamp = r.i64();

  JsonAt w{at, width};
  w.open('{');
  w.key("replication_factor_min"); w.number(r.i64());
  w.key("replication_factor_max"); w.number(r.i64());
  w.key("name"); w.string(r.bytes());
  const std::uint64_t mode = r.u64();
  if (mode > 1) return nullptr;
  w.key("mode"); w.string(pin_mode_name(static_cast<PinMode>(mode)));
  w.key("shard_size");
  w.p = std::to_chars(w.p, w.p + 24, r.u64()).ptr;
  StoredPeers user_allocations;
  if (!read_stored_peers(r, user_allocations)) return nullptr;
  w.key("user_allocations"); w.peers(user_allocations);
  w.key("expire_at"); w.time(r.i64());
  w.key("metadata");
  w.open('{');
  const std::uint64_t entries = r.u64();
  for (std::uint64_t i = 0; r.ok() && i < entries; ++i) {
    w.item();
    w.string(r.bytes());
    w.colon();
    w.string(r.bytes());
  }
  w.close('}');
  // Always present, null when unset: IPFS Cluster's pin_update is a struct, which Go's
  // omitempty never omits, and its JSON of an undefined CID is null.
  w.key("pin_update");
  if (const std::string_view update = r.bytes(); update.empty()) {
    w.literal("null");
  } else {
    w.cid(update);
  }
  w.key("origins");
  w.open('[');
  const std::uint64_t origins = r.u64();
  for (std::uint64_t i = 0; r.ok() && i < origins; ++i) {
    w.item();
    w.string(r.bytes());
  }
  w.close(']');
  if (!r.ok() || !r.at_end()) return nullptr;
  w.key("cid"); w.cid(cid);
  w.key("type"); w.string(pin_type_name(static_cast<PinType>(type)));
  w.key("allocations"); w.peers(allocations);
  w.key("max_depth"); w.number(max_depth);
  w.key("reference");
  if (reference.empty()) {
    w.literal("null");
  } else {
    w.cid(reference);
  }
  w.key("timestamp"); w.time(timestamp);
  w.close('}');
  assert(w.p <= at + pin_json_bound(bytes.size(), width) && "pin_json_bound bounds the text");
  return w.p;
}

Status refused_pin_record(std::string_view bytes) {
  auto pin = decode_pin(bytes);
  return pin ? make_error("corrupt pin record") : pin.error();
}

// The indent of a level, 0 (compact) to kMaxPinJsonIndent.
std::size_t indent_width(int indent) {
  return static_cast<std::size_t>(std::clamp(indent, 0, kMaxPinJsonIndent));
}

}  // namespace

Status append_stored_pin_json(std::string& out, std::string_view bytes, int indent) {
  const std::size_t at = out.size();
  const std::size_t width = indent_width(indent);
  out.resize(at + pin_json_bound(bytes.size(), width));
  const char* end = write_stored_pin_json(out.data() + at, bytes, width);
  out.resize(end != nullptr ? static_cast<std::size_t>(end - out.data()) : at);
  return end != nullptr ? Status{} : refused_pin_record(bytes);
}

Status append_stored_pin_json(TextBuffer& out, std::string_view bytes, int indent) {
  const std::size_t width = indent_width(indent);
  const char* end = write_stored_pin_json(out.room(pin_json_bound(bytes.size(), width)), bytes, width);
  if (end == nullptr) return refused_pin_record(bytes);
  out.written(end);
  return {};
}

std::string pin_to_json(const Pin& pin) {
  std::string out;
  (void)append_stored_pin_json(out, encode_pin(pin));  // an encoded Pin always reads back
  return out;
}

namespace {

// The fields of one Pin object, read strictly: a field that is present (and not null) must have
// its type and an accepted value, so a file never loads as something else than it says. Fields
// this reader does not know are skipped (a newer IPFS Cluster may add some).
class PinJsonReader {
 public:
  explicit PinJsonReader(const rapidjson::Value& doc) : doc_(doc) {}

  const rapidjson::Value* field(const char* key) const {
    auto it = doc_.FindMember(key);
    return it == doc_.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
  }
  Result<std::optional<std::string_view>> string(const char* key) const {
    const rapidjson::Value* v = field(key);
    if (v == nullptr) return std::optional<std::string_view>();
    if (!v->IsString()) return wrong(key, "a string");
    return std::optional<std::string_view>(std::string_view(v->GetString(), v->GetStringLength()));
  }
  Result<std::optional<std::int64_t>> integer(const char* key, std::int64_t min, std::string_view accepted) const {
    const rapidjson::Value* v = field(key);
    if (v == nullptr) return std::optional<std::int64_t>();
    if (!v->IsInt64() || v->GetInt64() < min) {
      return make_error(fmt::format("pin: {}: {} is not accepted; accepted: {}", key, text_of(*v), accepted));
    }
    return std::optional<std::int64_t>(v->GetInt64());
  }
  Result<std::optional<Cid>> cid(const char* key) const {
    auto text = string(key);
    if (!text) return text.error();
    if (!*text || (*text)->empty()) return std::optional<Cid>();
    auto c = Cid::parse(**text);
    if (!c) return make_error(fmt::format("pin: {}: {}", key, c.error().message));
    return std::optional<Cid>(std::move(c).value());
  }
  Result<std::optional<UnixNanos>> time(const char* key) const {
    auto text = string(key);
    if (!text) return text.error();
    if (!*text || (*text)->empty()) return std::optional<UnixNanos>();
    auto t = parse_rfc3339(**text);
    if (!t) return make_error(fmt::format("pin: {}: {}", key, t.error().message));
    return std::optional<UnixNanos>(*t);
  }
  Status peers(const char* key, std::vector<PeerId>& out) const {
    const rapidjson::Value* v = field(key);
    if (v == nullptr) return {};
    if (!v->IsArray()) return wrong(key, "an array of peer ids");
    for (const auto& item : v->GetArray()) {
      if (!item.IsString()) return wrong(key, "an array of peer ids");
      auto id = PeerId::parse(item.GetString());
      if (!id) return make_error(fmt::format("pin: {}: {}", key, id.error().message));
      out.push_back(std::move(id).value());
    }
    return {};
  }
  Status strings(const char* key, std::vector<std::string>& out) const {
    const rapidjson::Value* v = field(key);
    if (v == nullptr) return {};
    if (!v->IsArray()) return wrong(key, "an array of strings");
    for (const auto& item : v->GetArray()) {
      if (!item.IsString()) return wrong(key, "an array of strings");
      out.emplace_back(item.GetString(), item.GetStringLength());
    }
    return {};
  }
  Status string_map(const char* key, std::map<std::string, std::string>& out) const {
    const rapidjson::Value* v = field(key);
    if (v == nullptr) return {};
    if (!v->IsObject()) return wrong(key, "an object of string values");
    for (const auto& m : v->GetObject()) {
      if (!m.value.IsString()) {
        return make_error(fmt::format("pin: {}: the value of \"{}\" is {}; accepted: strings", key,
                                      m.name.GetString(), text_of(m.value)));
      }
      out[m.name.GetString()] = m.value.GetString();
    }
    return {};
  }

 private:
  static std::string text_of(const rapidjson::Value& v) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    v.Accept(w);
    std::string text(buffer.GetString(), buffer.GetSize());
    return text.size() > 40 ? text.substr(0, 40) + "..." : text;
  }
  Error wrong(const char* key, std::string_view accepted) const {
    return make_error(fmt::format("pin: {}: {} is not accepted; accepted: {}", key, text_of(*field(key)),
                                  accepted));
  }
  const rapidjson::Value& doc_;
};

}  // namespace

Result<Pin> pin_from_json(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return make_error("pin: not a JSON object");
  const PinJsonReader in(doc);
  auto cid = in.cid("cid");
  if (!cid) return cid.error();
  if (!*cid) return make_error("pin: cid: missing; accepted: the CID to pin");
  Pin pin(std::move(**cid));
  auto type = in.string("type");
  if (!type) return type.error();
  if (*type) {
    bool known = false;
    for (auto t : {PinType::data, PinType::meta, PinType::cluster_dag, PinType::shard}) {
      if (**type != pin_type_name(t)) continue;
      pin.type = t;
      known = true;
    }
    if (!known) {
      return make_error(fmt::format("pin: type: \"{}\" is not a pin type; accepted: pin, meta-pin, "
                                    "clusterdag-pin, shard-pin", **type));
    }
  }
  if (auto s = in.peers("allocations", pin.allocations); !s) return s.error();
  auto depth = in.integer("max_depth", -1, "-1 (recursive), 0 (direct) or a depth");
  if (!depth) return depth.error();
  pin.max_depth = depth->value_or(-1);
  auto reference = in.cid("reference");
  if (!reference) return reference.error();
  pin.reference = std::move(*reference);
  auto timestamp = in.time("timestamp");
  if (!timestamp) return timestamp.error();
  if (*timestamp) pin.timestamp = **timestamp;
  PinOptions& o = pin.options;
  constexpr std::string_view kFactor = "an integer: -1 (every peer), 0 (the default) or more";
  auto rmin = in.integer("replication_factor_min", -1, kFactor);
  if (!rmin) return rmin.error();
  auto rmax = in.integer("replication_factor_max", -1, kFactor);
  if (!rmax) return rmax.error();
  o.replication_factor_min = rmin->value_or(0);
  o.replication_factor_max = rmax->value_or(0);
  auto name = in.string("name");
  if (!name) return name.error();
  o.name = std::string(name->value_or(""));
  auto mode = in.string("mode");
  if (!mode) return mode.error();
  if (*mode && !(*mode)->empty() && **mode != "recursive" && **mode != "direct") {
    return make_error(fmt::format("pin: mode: \"{}\" is not a pin mode; accepted: recursive, direct",
                                  **mode));
  }
  o.mode = (*mode && **mode == "direct") || pin.max_depth == 0 ? PinMode::direct : PinMode::recursive;
  auto shard = in.integer("shard_size", 0, "a size in bytes, 0 or more");
  if (!shard) return shard.error();
  o.shard_size = static_cast<std::uint64_t>(shard->value_or(0));
  if (auto s = in.peers("user_allocations", o.user_allocations); !s) return s.error();
  auto expire = in.time("expire_at");
  if (!expire) return expire.error();
  if (*expire) o.expire_at = **expire;
  if (auto s = in.string_map("metadata", o.metadata); !s) return s.error();
  auto update = in.cid("pin_update");
  if (!update) return update.error();
  o.pin_update = std::move(*update);
  if (auto s = in.strings("origins", o.origins); !s) return s.error();
  return pin;
}

Result<UnixNanos> expiry_after(UnixNanos now, std::string_view text) {
  auto d = parse_go_duration(text);
  if (!d || d->count() <= 0) {
    return make_error(fmt::format(
        "expire-in: \"{}\" is not a positive Go duration (e.g. \"24h0m0s\", \"90s\")", text));
  }
  if (now < 0 || d->count() > std::numeric_limits<UnixNanos>::max() - now) {
    return make_error(fmt::format("expire-in: \"{}\" ends after {}, the latest expiry a pin can "
                                  "hold; accepted: a positive Go duration ending before then",
                                  text, format_rfc3339(std::numeric_limits<UnixNanos>::max())));
  }
  return now + d->count();
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

// On the wire a conditional op is a kind of its own, followed by the version it expects.
constexpr std::uint64_t kPinIfVersion = 3;
constexpr std::uint64_t kUnpinIfVersion = 4;

void encode_op_into(WireWriter& w, const PinsetOp& op) {
  if (op.if_version) {
    w.u64(op.kind == PinsetOp::Kind::pin ? kPinIfVersion : kUnpinIfVersion);
    w.u64(*op.if_version);
  } else {
    w.u64(static_cast<std::uint8_t>(op.kind));
  }
  if (op.kind == PinsetOp::Kind::pin) {
    encode_pin_into(w, op.pin);
  } else {
    w.bytes(as_chars(op.pin.cid.bytes()));
  }
}

std::string encode_ops_entry(std::size_t count, std::string_view encoded_ops) {
  WireWriter w;
  w.u64(kOpsFormat);
  w.u64(count);
  w.str().append(encoded_ops);
  return w.take();
}

std::string encode_ops(std::span<const PinsetOp> ops) {
  WireWriter body;
  for (const auto& op : ops) encode_op_into(body, op);
  return encode_ops_entry(ops.size(), body.str());
}

Result<std::vector<PinsetOp>> decode_ops(std::string_view bytes) {
  WireReader r(bytes);
  if (r.u64() != kOpsFormat || !r.ok()) return make_error("corrupt pinset entry: unknown format");
  std::uint64_t n = r.u64();
  if (!r.ok() || n > bytes.size()) return make_error("corrupt pinset entry: bad count");
  std::vector<PinsetOp> ops;
  ops.reserve(std::min<std::uint64_t>(n, 4096));  // n is only claimed: grow as ops decode
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint64_t kind = r.u64();
    std::optional<std::uint64_t> if_version;
    if (kind == kPinIfVersion || kind == kUnpinIfVersion) {
      if_version = r.u64();
      kind = kind == kPinIfVersion ? static_cast<std::uint8_t>(PinsetOp::Kind::pin)
                                   : static_cast<std::uint8_t>(PinsetOp::Kind::unpin);
    }
    if (kind == static_cast<std::uint8_t>(PinsetOp::Kind::pin)) {
      auto pin = decode_pin_from(r);
      if (!pin) return pin.error();
      ops.push_back({PinsetOp::Kind::pin, std::move(pin).value(), if_version});
    } else if (kind == static_cast<std::uint8_t>(PinsetOp::Kind::unpin)) {
      auto cid = Cid::from_bytes(as_bytes(r.bytes()));
      if (!cid) return make_error("corrupt pinset entry: bad cid");
      ops.push_back({PinsetOp::Kind::unpin, Pin(std::move(cid).value()), if_version});
    } else {
      return make_error("corrupt pinset entry: unknown operation");
    }
  }
  if (!r.ok() || !r.at_end()) return make_error("corrupt pinset entry: truncated or trailing bytes");
  return ops;
}

}  // namespace clusterpin
