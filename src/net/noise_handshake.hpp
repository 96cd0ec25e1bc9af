// The clusterpin peer handshake: Noise_XXpsk3_25519_ChaChaPoly_SHA256 as a pure state machine
// (bytes in, bytes out; no sockets, no clocks). psk, mac1 and mac2 keys come from the cluster
// secret with domain separation; mac1 on message 1 (checked by the responder) and mac2 on message
// 2 (checked by the initiator) are verified before any Diffie-Hellman, so a peer without the secret
// costs one keyed hash. Messages 2 and 3 carry the sender's Ed25519 identity key and its signature
// over the Noise static key, so each side learns the other's identity with proof.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_set>

#include "core/bytes.hpp"
#include "core/identity.hpp"
#include "core/result.hpp"
#include "net/noise.hpp"

namespace clusterpin::net {

inline constexpr std::string_view kNoiseProtocol = "Noise_XXpsk3_25519_ChaChaPoly_SHA256";
// The prologue binds both sides to the same wire protocol version; bump the suffix on any change.
inline constexpr std::string_view kLinkPrologue =
    "Noise_XXpsk3_25519_ChaChaPoly_SHA256 clusterpin-link/1";

inline constexpr std::size_t kMacSize = 16;
inline constexpr std::size_t kIdentityPayloadSize = 32 + 64;  // Ed25519 public key + signature
// Exact sizes: anything else is refused before any cryptography.
inline constexpr std::size_t kMessage1Size = 32 + noise::kTagSize + kMacSize;
inline constexpr std::size_t kMessage2Size =
    32 + (32 + noise::kTagSize) + (kIdentityPayloadSize + noise::kTagSize) + kMacSize;
inline constexpr std::size_t kMessage3Size =
    (32 + noise::kTagSize) + (kIdentityPayloadSize + noise::kTagSize);
inline constexpr std::size_t kMaxHandshakeMessage = kMessage2Size;

using ClusterSecret = std::array<std::uint8_t, 32>;
using IdentityKey = Ed25519PublicKey;

// Keys derived from the cluster secret, each under its own label (HKDF-SHA256 extract+expand).
struct ClusterKeys {
  noise::Key psk{};
  noise::Key mac1{};
  noise::Key mac2{};
  static ClusterKeys derive(const ClusterSecret& secret);
  ~ClusterKeys() {
    noise::wipe(psk);
    noise::wipe(mac1);
    noise::wipe(mac2);
  }
};

// This peer's long-term Ed25519 identity and its Noise static key, with the signature binding them
// computed once (signing per handshake would be wasted work).
struct LocalIdentity {
  IdentityKey ed25519_public{};
  noise::Keypair noise_static;
  Ed25519Signature static_signature{};

  // A random identity (tests and benchmarks).
  static LocalIdentity generate();
  // The peer's long-term identity with a fresh Noise static key for this process.
  static LocalIdentity from_identity(const Identity& identity);
};

// Why a handshake failed, so the link can log the plain reason and count failures per address.
enum class HandshakeFailure {
  none,
  malformed,         // wrong size or out-of-turn message
  not_cluster_peer,  // mac or psk check failed: no shared secret, or not clusterpin at all
  bad_identity,      // identity payload or signature invalid
};

// The keys and the proven remote identity after a successful handshake.
struct LinkSession {
  noise::CipherState send;
  noise::CipherState receive;
  IdentityKey remote_identity{};
  // The remote's Noise static key: drawn anew by every run of a peer (LocalIdentity), so two
  // links from one peer id with different ones come from different runs of that peer.
  noise::Key remote_static{};
  noise::Key handshake_hash{};
};

class PeerHandshake {
 public:
  static PeerHandshake initiator(const ClusterKeys& keys, const LocalIdentity& self);
  static PeerHandshake responder(const ClusterKeys& keys, const LocalIdentity& self);

  // True when the next step is write(); false when it is read() (or when done/failed).
  bool wants_write() const;
  bool done() const;
  bool failed() const { return failure_ != HandshakeFailure::none; }
  HandshakeFailure failure() const { return failure_; }

  // The next message to send. The initiator calls this for messages 1 and 3, the responder for 2.
  Result<Bytes> write();
  // Consumes one whole message from the remote.
  Status read(ByteView message);

  // Known after message 2 (initiator) or 3 (responder); the caller checks it against the peer
  // it meant to reach before writing message 3.
  const std::optional<IdentityKey>& remote_identity() const { return remote_identity_; }
  // Only after done(): moves the transport keys out.
  LinkSession finish();

  // The ephemeral key inside a message 1 (for replay filtering), or nullopt if the size is wrong.
  static std::optional<noise::Key> message1_ephemeral(ByteView message);

 private:
  PeerHandshake(const ClusterKeys& keys, const LocalIdentity& self, bool initiator);
  Status fail(HandshakeFailure why, std::string message);
  Bytes identity_payload() const;
  Status accept_identity_payload(ByteView payload);
  Status read_step(ByteView message, Bytes& payload);

  ClusterKeys keys_;
  const LocalIdentity* self_;
  bool initiator_;
  noise::HandshakeState noise_;
  std::array<std::uint8_t, kMacSize> mac1_{};  // message 1's mac, bound into mac2
  std::optional<IdentityKey> remote_identity_;
  HandshakeFailure failure_ = HandshakeFailure::none;
  int step_ = 0;  // index of the next message of the three
};

// Remembers the ephemeral keys of recent message 1s so a captured one cannot be replayed to make
// the responder do Diffie-Hellman work. Bounded: the oldest entries are forgotten first.
class Message1ReplayFilter {
 public:
  explicit Message1ReplayFilter(std::size_t capacity = 8192) : capacity_(capacity) {}
  // True the first time an ephemeral key is seen.
  bool first_sight(const noise::Key& ephemeral);

 private:
  struct KeyHash {
    std::size_t operator()(const noise::Key& k) const;
  };
  std::size_t capacity_;
  std::deque<noise::Key> order_;
  std::unordered_set<noise::Key, KeyHash> seen_;
};

// A short keyed MAC (BLAKE2b-128), used for mac1 and mac2.
std::array<std::uint8_t, kMacSize> keyed_mac(const noise::Key& key, ByteView a, ByteView b);

}  // namespace clusterpin::net
