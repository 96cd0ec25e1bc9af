// Peer id parsing per the libp2p peer-ids spec: text starting with '1' or 'Q' is a base58btc
// multihash; any other text must be a multibase CIDv1 with the libp2p-key codec. The multihash
// must be identity (at most 42 bytes, the spec's inlining limit) or sha2-256.
#include "core/peer_id.hpp"

#include <algorithm>
#include <fmt/format.h>

#include "core/cid.hpp"
#include "core/multibase.hpp"
#include "core/multihash.hpp"

namespace clusterpin {
namespace {

constexpr std::size_t kMaxInlineKeyBytes = 42;
// Every valid peer id text is shorter (the longest, base16 CIDv1 of an inlined key, is ~100).
constexpr std::size_t kMaxTextLength = 256;
constexpr std::array<std::uint8_t, 4> kEd25519PublicKeyHeader{0x08, 0x01, 0x12, 0x20};

Status check_peer_multihash(const Multihash& hash) {
  if (hash.function() == HashFunction::sha2_256) return {};
  if (hash.function() == HashFunction::identity) {
    if (hash.digest().size() > kMaxInlineKeyBytes) {
      return make_error(fmt::format("identity multihash of {} bytes (inlined keys are at most {} bytes)",
                                    hash.digest().size(), kMaxInlineKeyBytes));
    }
    return {};
  }
  return make_error(fmt::format("multihash function {} (accepted: identity, sha2-256)",
                                hash_function_name(hash.function())));
}

Result<PeerId> from_multihash_text(std::string_view text) {
  Result<Bytes> bytes = base58btc_decode(text);
  if (!bytes) return bytes.error();
  return PeerId::from_bytes(*bytes);
}

Result<PeerId> from_cid_text(std::string_view text) {
  Result<Cid> cid = Cid::parse(text);
  if (!cid) return cid.error();
  if (cid->version() != 1 || cid->codec() != Codec::libp2p_key) {
    return make_error(fmt::format("CID {} is not a CIDv1 with the libp2p-key codec (it is v{} {})", text,
                                  cid->version(), codec_name(cid->codec())));
  }
  return PeerId::from_bytes(cid->multihash().bytes());
}

}  // namespace

Bytes encode_ed25519_public_key_protobuf(const Ed25519PublicKey& key) {
  // Sized up front: growing a vector built from the 4-byte header trips a GCC 12 -Warray-bounds bug.
  Bytes out(kEd25519PublicKeyHeader.size() + key.size());
  std::copy(kEd25519PublicKeyHeader.begin(), kEd25519PublicKeyHeader.end(), out.begin());
  std::copy(key.begin(), key.end(), out.begin() + kEd25519PublicKeyHeader.size());
  return out;
}

Result<PeerId> PeerId::from_bytes(ByteView bytes) {
  Result<Multihash> hash = Multihash::from_bytes(bytes);
  if (!hash) return make_error(fmt::format("bad peer id: {}", hash.error().message));
  Status valid = check_peer_multihash(*hash);
  if (!valid) return make_error(fmt::format("bad peer id: {}", valid.error().message));
  return PeerId(hash->bytes());
}

PeerId PeerId::from_ed25519_public_key(const Ed25519PublicKey& key) {
  // 36 bytes <= 42, so the spec inlines the key with the identity multihash.
  Result<Multihash> hash = Multihash::from_digest(HashFunction::identity, encode_ed25519_public_key_protobuf(key));
  return PeerId(hash->bytes());
}

Result<PeerId> PeerId::parse(std::string_view text) {
  if (text.empty()) return make_error("bad peer id \"\": empty string (expected e.g. \"12D3KooW...\")");
  if (text.size() > kMaxTextLength) {
    return make_error(fmt::format("bad peer id \"{}...\": {} characters is too long (at most {})", text.substr(0, 16),
                                  text.size(), kMaxTextLength));
  }
  bool legacy = text[0] == '1' || text[0] == 'Q';
  Result<PeerId> id = legacy ? from_multihash_text(text) : from_cid_text(text);
  if (!id) {
    std::string_view why = id.error().message;
    if (why.starts_with("bad peer id: ")) why.remove_prefix(std::string_view("bad peer id: ").size());
    return make_error(fmt::format("bad peer id \"{}\": {} (expected \"12D3KooW...\", \"Qm...\" or a libp2p-key CID)",
                                  text, why));
  }
  return id;
}

std::string PeerId::to_string() const { return base58btc_encode(bytes_); }

std::string PeerId::to_cid_string() const {
  Result<Multihash> hash = Multihash::from_bytes(bytes_);
  // bytes_ was validated as a multihash on construction.
  return Cid::v1(Codec::libp2p_key, *hash).to_string();
}

std::optional<Ed25519PublicKey> PeerId::ed25519_public_key() const {
  // identity code 0x00, length 36, then the protobuf PublicKey.
  constexpr std::size_t kPrefix = 2;
  if (bytes_.size() != kPrefix + 36 || bytes_[0] != 0x00 || bytes_[1] != 36) return std::nullopt;
  if (!std::equal(kEd25519PublicKeyHeader.begin(), kEd25519PublicKeyHeader.end(), bytes_.begin() + kPrefix)) {
    return std::nullopt;
  }
  Ed25519PublicKey key;
  std::copy(bytes_.begin() + kPrefix + 4, bytes_.end(), key.begin());
  return key;
}

}  // namespace clusterpin

std::size_t std::hash<clusterpin::PeerId>::operator()(const clusterpin::PeerId& id) const noexcept {
  return clusterpin::hash_bytes(id.bytes());
}
