// A peer's Ed25519 identity (libsodium) and the Ed25519 signature helpers built on it.
// The private key's stored form is the libp2p protobuf PrivateKey{Type=Ed25519, Data=seed||public}
// (bytes 08 01 12 40 ...), base64-encoded as in identity.json; loading checks that the public half
// matches the seed, so a corrupted file is refused rather than yielding a wrong peer id.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/bytes.hpp"
#include "core/peer_id.hpp"
#include "core/result.hpp"

namespace clusterpin {

using Ed25519Seed = std::array<std::uint8_t, 32>;
using Ed25519Signature = std::array<std::uint8_t, 64>;

class Identity {
 public:
  // A fresh random key.
  static Identity generate();
  // Deterministic key from a 32-byte seed (RFC 8032 private key), for tests and key import.
  static Identity from_seed(const Ed25519Seed& seed);
  static Result<Identity> from_private_key_protobuf(ByteView bytes);
  static Result<Identity> from_private_key_base64(std::string_view text);

  Bytes private_key_protobuf() const;
  std::string private_key_base64() const;
  const Ed25519PublicKey& public_key() const { return public_key_; }
  PeerId peer_id() const { return PeerId::from_ed25519_public_key(public_key_); }

  Ed25519Signature sign(ByteView message) const;

 private:
  Identity() = default;
  std::array<std::uint8_t, 64> secret_key_{};  // libsodium layout: seed || public key
  Ed25519PublicKey public_key_{};
};

bool verify_signature(const Ed25519PublicKey& key, ByteView message, const Ed25519Signature& signature);

}  // namespace clusterpin
