// Multiaddr text and binary codecs. Binary: for each component a varint protocol code, then the
// value (fixed size for ip4/ip6/tcp/udp, varint-length-prefixed for dns*/p2p/unix, nothing for
// quic). Text: "/name/value" pairs; /unix takes the whole rest of the text as its path.
// IPv4/IPv6 addresses are parsed and printed here (RFC 5952 form) so the domain needs no sockets.
#include "core/multiaddr.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <fmt/format.h>

#include "core/cid.hpp"
#include "core/encoding.hpp"
#include "core/varint.hpp"

namespace clusterpin {
namespace {

constexpr int kVariableSize = -1;

struct ProtocolSpec {
  Protocol protocol;
  std::string_view name;
  int size;   // value bytes: 0 none, >0 fixed, kVariableSize length-prefixed
  bool path;  // the value is the rest of the text
};

constexpr std::array<ProtocolSpec, 11> kProtocols{{
    {Protocol::ip4, "ip4", 4, false},
    {Protocol::tcp, "tcp", 2, false},
    {Protocol::ip6, "ip6", 16, false},
    {Protocol::dns, "dns", kVariableSize, false},
    {Protocol::dns4, "dns4", kVariableSize, false},
    {Protocol::dns6, "dns6", kVariableSize, false},
    {Protocol::udp, "udp", 2, false},
    {Protocol::unix_path, "unix", kVariableSize, true},
    {Protocol::p2p, "p2p", kVariableSize, false},
    {Protocol::quic, "quic", 0, false},
    {Protocol::quic_v1, "quic-v1", 0, false},
}};

constexpr std::string_view kAcceptedProtocols = "ip4, ip6, dns, dns4, dns6, tcp, udp, quic, quic-v1, unix, p2p, ipfs";

const ProtocolSpec* spec_by_name(std::string_view name) {
  if (name == "ipfs") name = "p2p";  // legacy name of the same code 421
  for (const ProtocolSpec& spec : kProtocols) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

const ProtocolSpec* spec_by_code(std::uint64_t code) {
  for (const ProtocolSpec& spec : kProtocols) {
    if (static_cast<std::uint64_t>(spec.protocol) == code) return &spec;
  }
  return nullptr;
}

const ProtocolSpec& spec_of(Protocol protocol) {
  const ProtocolSpec* spec = spec_by_code(static_cast<std::uint64_t>(protocol));
  // Every Protocol enumerator has a row in kProtocols.
  assert(spec != nullptr);
  return *spec;
}

// ---- IPv4 / IPv6 ----

std::optional<std::uint8_t> parse_ip4_octet(std::string_view part) {
  // Leading zeros are refused (as in Go) because some parsers read them as octal.
  if (part.empty() || part.size() > 3 || (part.size() > 1 && part[0] == '0')) return std::nullopt;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
  if (ec != std::errc() || end != part.data() + part.size() || value > 255) return std::nullopt;
  return static_cast<std::uint8_t>(value);
}

std::optional<std::array<std::uint8_t, 4>> parse_ip4(std::string_view text) {
  std::array<std::uint8_t, 4> out{};
  for (std::size_t i = 0; i < 4; ++i) {
    std::size_t dot = text.find('.');
    if ((i < 3) != (dot != std::string_view::npos)) return std::nullopt;
    std::optional<std::uint8_t> octet = parse_ip4_octet(text.substr(0, dot));
    if (!octet) return std::nullopt;
    out[i] = *octet;
    text = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  }
  return out;
}

std::string format_ip4(ByteView b) { return fmt::format("{}.{}.{}.{}", b[0], b[1], b[2], b[3]); }

// Appends the 16-bit groups of one side of "::" (which may end with a dotted IPv4 address).
bool parse_ip6_groups(std::string_view text, std::vector<std::uint8_t>& out, bool allow_ip4_tail) {
  if (text.empty()) return true;
  while (true) {
    std::size_t colon = text.find(':');
    std::string_view group = text.substr(0, colon);
    if (colon == std::string_view::npos && allow_ip4_tail && group.find('.') != std::string_view::npos) {
      std::optional<std::array<std::uint8_t, 4>> ip4 = parse_ip4(group);
      if (!ip4) return false;
      out.insert(out.end(), ip4->begin(), ip4->end());
      return true;
    }
    if (group.empty() || group.size() > 4) return false;
    unsigned value = 0;
    auto [end, ec] = std::from_chars(group.data(), group.data() + group.size(), value, 16);
    if (ec != std::errc() || end != group.data() + group.size()) return false;
    out.push_back(static_cast<std::uint8_t>(value >> 8));
    out.push_back(static_cast<std::uint8_t>(value & 0xff));
    if (colon == std::string_view::npos) return true;
    text.remove_prefix(colon + 1);
  }
}

std::optional<std::array<std::uint8_t, 16>> parse_ip6(std::string_view text) {
  std::size_t ellipsis = text.find("::");
  std::vector<std::uint8_t> head;
  std::vector<std::uint8_t> tail;
  if (ellipsis == std::string_view::npos) {
    if (!parse_ip6_groups(text, head, true) || head.size() != 16) return std::nullopt;
  } else {
    std::string_view after = text.substr(ellipsis + 2);
    if (after.find("::") != std::string_view::npos) return std::nullopt;
    if (!parse_ip6_groups(text.substr(0, ellipsis), head, false)) return std::nullopt;
    if (!parse_ip6_groups(after, tail, true)) return std::nullopt;
    // "::" stands for at least one zero group.
    if (head.size() + tail.size() > 14) return std::nullopt;
  }
  std::array<std::uint8_t, 16> out{};
  std::copy(head.begin(), head.end(), out.begin());
  std::copy(tail.begin(), tail.end(), out.end() - static_cast<std::ptrdiff_t>(tail.size()));
  return out;
}

bool is_ip4_mapped(ByteView b) {
  return std::all_of(b.begin(), b.begin() + 10, [](std::uint8_t x) { return x == 0; }) && b[10] == 0xff &&
         b[11] == 0xff;
}

// RFC 5952: lower-case hex, no leading zeros, the longest run (>= 2) of zero groups as "::".
std::string format_ip6(ByteView b) {
  if (is_ip4_mapped(b)) return "::ffff:" + format_ip4(b.subspan(12));
  std::array<unsigned, 8> groups{};
  for (std::size_t i = 0; i < 8; ++i) groups[i] = static_cast<unsigned>(b[2 * i] << 8 | b[2 * i + 1]);
  int best_start = -1;
  int best_length = 1;
  for (int i = 0; i < 8;) {
    int j = i;
    while (j < 8 && groups[static_cast<std::size_t>(j)] == 0) ++j;
    if (j - i > best_length) {
      best_start = i;
      best_length = j - i;
    }
    i = j == i ? i + 1 : j;
  }
  std::string out;
  for (int i = 0; i < 8; ++i) {
    if (i == best_start) {
      out += "::";
      i += best_length - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    out += fmt::format("{:x}", groups[static_cast<std::size_t>(i)]);
  }
  return out;
}

// ---- component values ----

Result<MultiaddrComponent> component_from_text(const ProtocolSpec& spec, std::string_view value) {
  MultiaddrComponent c{spec.protocol, std::string(value), {}};
  auto bad = [&](std::string_view what, std::string_view accepted) -> Error {
    return make_error(fmt::format("bad {} {} \"{}\"{}", spec.name, what, value, accepted));
  };
  switch (spec.protocol) {
    case Protocol::ip4: {
      auto ip = parse_ip4(value);
      if (!ip) return bad("address", " (expected four decimal numbers 0-255, e.g. 127.0.0.1)");
      c.raw.assign(ip->begin(), ip->end());
      c.value = format_ip4(c.raw);
      return c;
    }
    case Protocol::ip6: {
      auto ip = parse_ip6(value);
      if (!ip) return bad("address", " (expected an IPv6 address, e.g. ::1)");
      c.raw.assign(ip->begin(), ip->end());
      c.value = format_ip6(c.raw);
      return c;
    }
    case Protocol::tcp:
    case Protocol::udp: {
      unsigned port = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), port);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size() || port > 65535) {
        return bad("port", " (accepted: 0-65535)");
      }
      c.raw = {static_cast<std::uint8_t>(port >> 8), static_cast<std::uint8_t>(port & 0xff)};
      c.value = std::to_string(port);
      return c;
    }
    case Protocol::dns:
    case Protocol::dns4:
    case Protocol::dns6:
      c.raw = to_bytes(value);
      return c;
    case Protocol::p2p: {
      Result<PeerId> peer = PeerId::parse(value);
      if (!peer) return make_error(peer.error().message);
      c.raw = peer->bytes();
      c.value = peer->to_string();
      return c;
    }
    case Protocol::unix_path:
      c.raw = to_bytes(value);
      return c;
    case Protocol::quic:
    case Protocol::quic_v1:
      return c;
  }
  return bad("component", "");
}

Result<MultiaddrComponent> component_from_raw(const ProtocolSpec& spec, ByteView raw) {
  MultiaddrComponent c{spec.protocol, {}, Bytes(raw.begin(), raw.end())};
  std::string_view text(reinterpret_cast<const char*>(raw.data()), raw.size());
  switch (spec.protocol) {
    case Protocol::ip4: c.value = format_ip4(raw); return c;
    case Protocol::ip6: c.value = format_ip6(raw); return c;
    case Protocol::tcp:
    case Protocol::udp: c.value = std::to_string(raw[0] << 8 | raw[1]); return c;
    case Protocol::dns:
    case Protocol::dns4:
    case Protocol::dns6:
      if (raw.empty() || text.find('/') != std::string_view::npos) {
        return make_error(fmt::format("bad {} name \"{}\" (must be non-empty, without '/')", spec.name, text));
      }
      c.value = std::string(text);
      return c;
    case Protocol::unix_path:
      // The text form joins the path onto "/unix" and trailing slashes are trimmed from text, so
      // only absolute paths without a trailing '/' survive a round trip.
      if (text.size() < 2 || text.front() != '/' || text.back() == '/') {
        return make_error(fmt::format("bad unix path \"{}\" (must start with '/' and not end with '/')", text));
      }
      c.value = std::string(text);
      return c;
    case Protocol::p2p: {
      Result<PeerId> peer = PeerId::from_bytes(raw);
      if (!peer) return peer.error();
      c.value = peer->to_string();
      return c;
    }
    case Protocol::quic:
    case Protocol::quic_v1: return c;
  }
  return make_error(fmt::format("bad {} component", spec.name));
}

void append_component(Bytes& out, const MultiaddrComponent& c) {
  const ProtocolSpec& spec = spec_of(c.protocol);
  append_varint(out, static_cast<std::uint64_t>(c.protocol));
  if (spec.size == kVariableSize) append_varint(out, c.raw.size());
  out.insert(out.end(), c.raw.begin(), c.raw.end());
}

Result<std::vector<MultiaddrComponent>> components_from_text(std::string_view text) {
  if (text.empty()) return make_error("empty address (expected e.g. /ip4/127.0.0.1/tcp/9096)");
  if (text[0] != '/') return make_error("must begin with '/' (e.g. /ip4/127.0.0.1/tcp/9096)");
  while (text.size() > 1 && text.back() == '/') text.remove_suffix(1);  // Go trims trailing slashes too
  if (text == "/") return make_error("no components (expected e.g. /ip4/127.0.0.1/tcp/9096)");
  std::vector<MultiaddrComponent> out;
  std::string_view rest = text.substr(1);
  while (!rest.empty()) {
    std::size_t slash = rest.find('/');
    std::string_view name = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    const ProtocolSpec* spec = spec_by_name(name);
    if (spec == nullptr) {
      return make_error(fmt::format("unknown protocol \"{}\" (accepted: {})", name, kAcceptedProtocols));
    }
    std::string value;
    if (spec->size != 0) {
      if (rest.empty()) return make_error(fmt::format("missing value after /{}", name));
      std::size_t end = spec->path ? std::string_view::npos : rest.find('/');
      value = spec->path ? "/" + std::string(rest) : std::string(rest.substr(0, end));
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
      if (!spec->path && value.empty()) return make_error(fmt::format("empty value after /{}", name));
    }
    Result<MultiaddrComponent> component = component_from_text(*spec, value);
    if (!component) return component.error();
    out.push_back(std::move(component).value());
  }
  return out;
}

Result<std::vector<MultiaddrComponent>> components_from_bytes(ByteView bytes) {
  if (bytes.empty()) return make_error("no bytes");
  std::vector<MultiaddrComponent> out;
  while (!bytes.empty()) {
    Result<Varint> code = read_varint(bytes);
    if (!code) return code.error();
    const ProtocolSpec* spec = spec_by_code(code->value);
    if (spec == nullptr) {
      return make_error(fmt::format("unknown protocol code 0x{:x} (accepted: {})", code->value, kAcceptedProtocols));
    }
    bytes = bytes.subspan(code->length);
    std::size_t size = static_cast<std::size_t>(spec->size);
    if (spec->size == kVariableSize) {
      Result<Varint> length = read_varint(bytes);
      if (!length) return length.error();
      bytes = bytes.subspan(length->length);
      size = length->value;
    }
    if (size > bytes.size()) {
      return make_error(fmt::format("{} value needs {} bytes, only {} left", spec->name, size, bytes.size()));
    }
    Result<MultiaddrComponent> component = component_from_raw(*spec, bytes.subspan(0, size));
    if (!component) return component.error();
    out.push_back(std::move(component).value());
    bytes = bytes.subspan(size);
  }
  return out;
}

}  // namespace

std::string_view protocol_name(Protocol protocol) { return spec_of(protocol).name; }

Multiaddr::Multiaddr(std::vector<MultiaddrComponent> components) : components_(std::move(components)) {
  // parse and from_bytes refuse empty input, and with_peer/without_peer keep a component.
  assert(!components_.empty());
  for (const MultiaddrComponent& c : components_) append_component(bytes_, c);
}

Result<Multiaddr> Multiaddr::parse(std::string_view text) {
  Result<std::vector<MultiaddrComponent>> components = components_from_text(text);
  if (!components) return make_error(fmt::format("multiaddr \"{}\": {}", text, components.error().message));
  return Multiaddr(std::move(components).value());
}

Result<Multiaddr> Multiaddr::from_bytes(ByteView bytes) {
  Result<std::vector<MultiaddrComponent>> components = components_from_bytes(bytes);
  if (!components) {
    return make_error(fmt::format("multiaddr bytes {}: {}", hex_encode(bytes), components.error().message));
  }
  return Multiaddr(std::move(components).value());
}

std::string Multiaddr::to_string() const {
  std::string out;
  for (const MultiaddrComponent& c : components_) {
    out += '/';
    out += protocol_name(c.protocol);
    if (c.value.empty()) continue;
    if (!(spec_of(c.protocol).path && c.value[0] == '/')) out += '/';
    out += c.value;
  }
  return out;
}

std::optional<MultiaddrComponent> Multiaddr::host() const {
  for (const MultiaddrComponent& c : components_) {
    switch (c.protocol) {
      case Protocol::ip4:
      case Protocol::ip6:
      case Protocol::dns:
      case Protocol::dns4:
      case Protocol::dns6: return c;
      default: break;
    }
  }
  return std::nullopt;
}

std::optional<Protocol> Multiaddr::transport() const {
  for (const MultiaddrComponent& c : components_) {
    if (c.protocol == Protocol::tcp || c.protocol == Protocol::udp) return c.protocol;
  }
  return std::nullopt;
}

std::optional<std::uint16_t> Multiaddr::port() const {
  for (const MultiaddrComponent& c : components_) {
    if (c.protocol == Protocol::tcp || c.protocol == Protocol::udp) {
      return static_cast<std::uint16_t>(c.raw[0] << 8 | c.raw[1]);
    }
  }
  return std::nullopt;
}

std::optional<PeerId> Multiaddr::peer_id() const {
  for (auto it = components_.rbegin(); it != components_.rend(); ++it) {
    if (it->protocol == Protocol::p2p) {
      Result<PeerId> peer = PeerId::from_bytes(it->raw);
      // Components are validated when the Multiaddr is built.
      assert(peer.ok());
      return *peer;
    }
  }
  return std::nullopt;
}

Multiaddr Multiaddr::with_peer(const PeerId& peer) const {
  std::vector<MultiaddrComponent> components = components_;
  if (components.back().protocol == Protocol::p2p) components.pop_back();
  components.push_back(MultiaddrComponent{Protocol::p2p, peer.to_string(), peer.bytes()});
  return Multiaddr(std::move(components));
}

Multiaddr Multiaddr::without_peer() const {
  // A bare "/p2p/<id>" has nothing left to dial: it stays as it is.
  if (components_.size() < 2 || components_.back().protocol != Protocol::p2p) return *this;
  std::vector<MultiaddrComponent> components(components_.begin(), components_.end() - 1);
  return Multiaddr(std::move(components));
}

}  // namespace clusterpin

std::size_t std::hash<clusterpin::Multiaddr>::operator()(const clusterpin::Multiaddr& address) const noexcept {
  return clusterpin::hash_bytes(address.bytes());
}
