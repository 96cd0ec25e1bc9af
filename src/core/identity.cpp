// Ed25519 identities with libsodium: key generation, the libp2p PrivateKey protobuf, signing.
// The legacy 96-byte private key (seed || public || public) is accepted when both copies agree,
// as the libp2p peer-ids spec asks.
#include "core/identity.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <sodium.h>

#include "core/encoding.hpp"
#include "core/sodium_init.hpp"

namespace clusterpin {
namespace {

constexpr std::array<std::uint8_t, 4> kPrivateKeyHeader{0x08, 0x01, 0x12, 0x40};  // Type=1, Data len 64
constexpr std::array<std::uint8_t, 4> kLegacyPrivateKeyHeader{0x08, 0x01, 0x12, 0x60};  // Data len 96

bool starts_with(ByteView bytes, const std::array<std::uint8_t, 4>& header) {
  return bytes.size() >= header.size() && std::equal(header.begin(), header.end(), bytes.begin());
}

}  // namespace

Identity Identity::generate() {
  initialize_sodium();
  Ed25519Seed seed;
  randombytes_buf(seed.data(), seed.size());
  Identity identity = from_seed(seed);
  sodium_memzero(seed.data(), seed.size());
  return identity;
}

Identity Identity::from_seed(const Ed25519Seed& seed) {
  initialize_sodium();
  Identity identity;
  crypto_sign_seed_keypair(identity.public_key_.data(), identity.secret_key_.data(), seed.data());
  return identity;
}

Result<Identity> Identity::from_private_key_protobuf(ByteView bytes) {
  std::size_t data_length = 0;
  if (starts_with(bytes, kPrivateKeyHeader)) {
    data_length = 64;
  } else if (starts_with(bytes, kLegacyPrivateKeyHeader)) {
    data_length = 96;
  } else {
    return make_error(fmt::format(
        "bad private key: expected a libp2p Ed25519 PrivateKey protobuf starting 08 01 12 40, got {} ({} bytes)",
        hex_encode(bytes.subspan(0, std::min<std::size_t>(bytes.size(), 4))), bytes.size()));
  }
  ByteView data = bytes.subspan(4);
  if (data.size() != data_length) {
    return make_error(fmt::format("bad private key: Ed25519 key data must be {} bytes, got {}", data_length,
                                  data.size()));
  }
  if (data_length == 96 && !std::equal(data.begin() + 32, data.begin() + 64, data.begin() + 64)) {
    return make_error("bad private key: the two public key copies of the legacy 96-byte form differ");
  }
  Ed25519Seed seed;
  std::copy(data.begin(), data.begin() + 32, seed.begin());
  Identity identity = from_seed(seed);
  sodium_memzero(seed.data(), seed.size());
  if (!std::equal(identity.public_key_.begin(), identity.public_key_.end(), data.begin() + 32)) {
    return make_error("bad private key: its public half does not belong to its seed (corrupted key?)");
  }
  return identity;
}

Result<Identity> Identity::from_private_key_base64(std::string_view text) {
  Result<Bytes> bytes = base64_decode(text);
  if (!bytes) return make_error(fmt::format("bad private key: {}", bytes.error().message));
  Result<Identity> identity = from_private_key_protobuf(*bytes);
  sodium_memzero(bytes->data(), bytes->size());
  return identity;
}

Bytes Identity::private_key_protobuf() const {
  // Sized up front: growing a vector built from the 4-byte header trips a GCC 12 -Warray-bounds bug.
  Bytes out(kPrivateKeyHeader.size() + secret_key_.size());
  std::copy(kPrivateKeyHeader.begin(), kPrivateKeyHeader.end(), out.begin());
  std::copy(secret_key_.begin(), secret_key_.end(), out.begin() + kPrivateKeyHeader.size());
  return out;
}

std::string Identity::private_key_base64() const {
  Bytes bytes = private_key_protobuf();
  std::string text = base64_encode(bytes);
  sodium_memzero(bytes.data(), bytes.size());
  return text;
}

Ed25519Signature Identity::sign(ByteView message) const {
  Ed25519Signature signature;
  crypto_sign_detached(signature.data(), nullptr, message.data(), message.size(), secret_key_.data());
  return signature;
}

bool verify_signature(const Ed25519PublicKey& key, ByteView message, const Ed25519Signature& signature) {
  initialize_sodium();
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(), key.data()) == 0;
}

}  // namespace clusterpin
