// Multiaddrs: self-describing network addresses ("/ip4/127.0.0.1/tcp/9096/p2p/12D3KooW...").
// Text and binary forms of /ip4 /ip6 /dns /dns4 /dns6 /tcp /udp /quic /quic-v1 /unix /p2p (the
// legacy name /ipfs parses to /p2p, which is how it prints). A Multiaddr is always valid and
// non-empty; equality is by binary form. Errors name the address and the bad component.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.hpp"
#include "core/peer_id.hpp"
#include "core/result.hpp"

namespace clusterpin {

enum class Protocol : std::uint32_t {
  ip4 = 4,
  tcp = 6,
  ip6 = 41,
  dns = 53,
  dns4 = 54,
  dns6 = 55,
  udp = 273,
  unix_path = 400,
  p2p = 421,
  quic = 460,
  quic_v1 = 461,
};

std::string_view protocol_name(Protocol protocol);

struct MultiaddrComponent {
  Protocol protocol;
  std::string value;  // text form; empty for /quic and /quic-v1; /unix paths start with '/'
  Bytes raw;          // binary value without the length prefix

  friend bool operator==(const MultiaddrComponent&, const MultiaddrComponent&) = default;
};

class Multiaddr {
 public:
  static Result<Multiaddr> parse(std::string_view text);
  static Result<Multiaddr> from_bytes(ByteView bytes);

  std::string to_string() const;
  const Bytes& bytes() const { return bytes_; }
  const std::vector<MultiaddrComponent>& components() const { return components_; }

  // The first /ip4, /ip6, /dns, /dns4 or /dns6 component.
  std::optional<MultiaddrComponent> host() const;
  // The first /tcp or /udp component's protocol and port.
  std::optional<Protocol> transport() const;
  std::optional<std::uint16_t> port() const;
  // The last /p2p component.
  std::optional<PeerId> peer_id() const;

  // Replaces a trailing /p2p component or appends one.
  Multiaddr with_peer(const PeerId& peer) const;
  // Drops a trailing /p2p component (the address to dial).
  Multiaddr without_peer() const;

  friend bool operator==(const Multiaddr& a, const Multiaddr& b) { return a.bytes_ == b.bytes_; }
  friend std::strong_ordering operator<=>(const Multiaddr& a, const Multiaddr& b) { return a.bytes_ <=> b.bytes_; }

 private:
  explicit Multiaddr(std::vector<MultiaddrComponent> components);
  std::vector<MultiaddrComponent> components_;
  Bytes bytes_;
};

}  // namespace clusterpin

template <>
struct std::hash<clusterpin::Multiaddr> {
  std::size_t operator()(const clusterpin::Multiaddr& address) const noexcept;
};
