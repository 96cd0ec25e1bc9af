// Peer ids in the libp2p form: the multihash of a peer's protobuf-encoded public key (identity
// multihash for an Ed25519 key, "12D3KooW..."; sha2-256 for larger keys, "Qm..."). A PeerId
// holds those multihash bytes; equality is by bytes. Text in is legacy base58btc or a CIDv1
// with the libp2p-key codec ("bafz...", "k51..."); text out is base58btc.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace clusterpin {

using Ed25519PublicKey = std::array<std::uint8_t, 32>;

class PeerId {
 public:
  static Result<PeerId> parse(std::string_view text);
  // The binary multihash (as carried in a /p2p multiaddr component).
  static Result<PeerId> from_bytes(ByteView bytes);
  static PeerId from_ed25519_public_key(const Ed25519PublicKey& key);

  const Bytes& bytes() const { return bytes_; }
  std::string to_string() const;      // base58btc, "12D3KooW..."
  std::string to_cid_string() const;  // CIDv1 libp2p-key in base32, "bafz..."
  // The key inlined in an identity-multihash id of an Ed25519 key; nullopt for hashed ids.
  std::optional<Ed25519PublicKey> ed25519_public_key() const;

  friend bool operator==(const PeerId& a, const PeerId& b) { return a.bytes_ == b.bytes_; }
  friend std::strong_ordering operator<=>(const PeerId& a, const PeerId& b) { return a.bytes_ <=> b.bytes_; }

 private:
  explicit PeerId(Bytes bytes) : bytes_(std::move(bytes)) {}
  Bytes bytes_;
};

// The protobuf PublicKey{Type=Ed25519, Data=key}: 08 01 12 20 || key (36 bytes).
Bytes encode_ed25519_public_key_protobuf(const Ed25519PublicKey& key);

}  // namespace clusterpin

template <>
struct std::hash<clusterpin::PeerId> {
  std::size_t operator()(const clusterpin::PeerId& id) const noexcept;
};
