// The clusterpin handshake state machine over the Noise core. Order of checks on every message:
// exact size, then the cheap keyed mac (before any Diffie-Hellman), then Noise authentication,
// then the identity signature. The first failure ends the handshake for good.
#include "net/noise_handshake.hpp"

#include <sodium.h>

#include <cassert>
#include <cstring>

#include <fmt/core.h>

namespace clusterpin::net {
namespace {

constexpr std::string_view kSecretSalt = "clusterpin cluster secret v1";
constexpr std::string_view kSignaturePrefix = "clusterpin-noise-static-key:";

// HKDF-SHA256 (RFC 5869) with a one-block expand: labels keep each derived key independent.
noise::Key hkdf_expand_label(const noise::Key& prk, std::string_view label) {
  Bytes info = to_bytes(label);
  info.push_back(1);
  return noise::hmac_sha256(prk, info);
}

constexpr std::string_view kNotClusterPeer =
    "the remote does not share this cluster's secret or is not a clusterpin peer";

}  // namespace

std::array<std::uint8_t, kMacSize> keyed_mac(const noise::Key& key, ByteView a, ByteView b) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, key.data(), key.size(), kMacSize);
  crypto_generichash_update(&st, a.data(), a.size());
  crypto_generichash_update(&st, b.data(), b.size());
  std::array<std::uint8_t, kMacSize> out{};
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

ClusterKeys ClusterKeys::derive(const ClusterSecret& secret) {
  noise::Key prk = noise::hmac_sha256(as_bytes(kSecretSalt), secret);
  ClusterKeys k;
  k.psk = hkdf_expand_label(prk, "clusterpin noise psk");
  k.mac1 = hkdf_expand_label(prk, "clusterpin handshake mac1");
  k.mac2 = hkdf_expand_label(prk, "clusterpin handshake mac2");
  noise::wipe(prk);
  return k;
}

LocalIdentity LocalIdentity::generate() {
  return from_identity(Identity::generate());
}

LocalIdentity LocalIdentity::from_identity(const Identity& identity) {
  LocalIdentity id;
  id.ed25519_public = identity.public_key();
  id.noise_static = noise::generate_keypair();
  Bytes signed_text = to_bytes(kSignaturePrefix);
  signed_text.insert(signed_text.end(), id.noise_static.public_key.begin(),
                     id.noise_static.public_key.end());
  id.static_signature = identity.sign(signed_text);
  return id;
}

PeerHandshake::PeerHandshake(const ClusterKeys& keys, const LocalIdentity& self, bool initiator)
    : keys_(keys), self_(&self), initiator_(initiator), noise_([&] {
        noise::HandshakeConfig c;
        c.protocol_name = std::string(kNoiseProtocol);
        c.initiator = initiator;
        c.prologue = to_bytes(kLinkPrologue);
        c.static_keypair = self.noise_static;
        c.psks = {keys.psk};
        auto hs = noise::HandshakeState::create(std::move(c));
        // The configuration is fixed above and always valid for XXpsk3.
        assert(hs.ok());
        return std::move(hs).value();
      }()) {}

PeerHandshake PeerHandshake::initiator(const ClusterKeys& keys, const LocalIdentity& self) {
  return PeerHandshake(keys, self, true);
}

PeerHandshake PeerHandshake::responder(const ClusterKeys& keys, const LocalIdentity& self) {
  return PeerHandshake(keys, self, false);
}

bool PeerHandshake::wants_write() const {
  return !failed() && !noise_.finished() && noise_.my_turn_to_write();
}

bool PeerHandshake::done() const {
  return !failed() && noise_.finished();
}

Status PeerHandshake::fail(HandshakeFailure why, std::string message) {
  if (failure_ == HandshakeFailure::none) failure_ = why;
  return make_error(std::move(message));
}

Bytes PeerHandshake::identity_payload() const {
  Bytes p(self_->ed25519_public.begin(), self_->ed25519_public.end());
  p.insert(p.end(), self_->static_signature.begin(), self_->static_signature.end());
  return p;
}

Status PeerHandshake::accept_identity_payload(ByteView payload) {
  if (payload.size() != kIdentityPayloadSize) {
    return fail(HandshakeFailure::bad_identity, "handshake: identity payload has the wrong size");
  }
  // Noise has authenticated rs by now (it was encrypted under keys from ee/es).
  const auto& rs = noise_.remote_static();
  assert(rs.has_value());
  Bytes signed_text = to_bytes(kSignaturePrefix);
  signed_text.insert(signed_text.end(), rs->begin(), rs->end());
  if (crypto_sign_verify_detached(payload.data() + 32, signed_text.data(), signed_text.size(),
                                  payload.data()) != 0) {
    return fail(HandshakeFailure::bad_identity,
                "handshake: the remote's identity signature over its static key is invalid");
  }
  IdentityKey id{};
  std::memcpy(id.data(), payload.data(), id.size());
  remote_identity_ = id;
  return {};
}

Result<Bytes> PeerHandshake::write() {
  if (!wants_write())
    return fail(HandshakeFailure::malformed, "handshake: write out of turn").error();
  Bytes out;
  if (step_ == 0) {
    // Message 1: e (+ empty encrypted payload), then mac1 over it.
    if (Status st = noise_.write_message({}, out); !st) return st.error();
    mac1_ = keyed_mac(keys_.mac1, out, {});
    out.insert(out.end(), mac1_.begin(), mac1_.end());
    assert(out.size() == kMessage1Size);
    ++step_;
    return out;
  }
  const Bytes payload = identity_payload();
  if (Status st = noise_.write_message(payload, out); !st) return st.error();
  if (!initiator_) {
    // Message 2: mac2 binds it to message 1 and proves knowledge of the secret before any DH.
    const auto mac2 = keyed_mac(keys_.mac2, mac1_, out);
    out.insert(out.end(), mac2.begin(), mac2.end());
    assert(out.size() == kMessage2Size);
  } else {
    assert(out.size() == kMessage3Size);
  }
  ++step_;
  return out;
}

std::optional<noise::Key> PeerHandshake::message1_ephemeral(ByteView message) {
  if (message.size() != kMessage1Size) return std::nullopt;
  noise::Key e{};
  std::memcpy(e.data(), message.data(), e.size());
  return e;
}

Status PeerHandshake::read(ByteView message) {
  if (failed() || noise_.finished() || noise_.my_turn_to_write()) {
    return fail(HandshakeFailure::malformed, "handshake: message received out of turn");
  }
  Bytes payload;
  Status st = read_step(message, payload);
  if (st) ++step_;
  return st;
}

Status PeerHandshake::read_step(ByteView message, Bytes& payload) {
  if (step_ == 0) {
    // Message 1.
    if (message.size() != kMessage1Size) {
      return fail(HandshakeFailure::malformed,
                  fmt::format("handshake: first message is {} bytes, expected {}; {}",
                              message.size(), kMessage1Size, kNotClusterPeer));
    }
    const ByteView body = message.first(kMessage1Size - kMacSize);
    const auto mac = keyed_mac(keys_.mac1, body, {});
    if (sodium_memcmp(mac.data(), message.data() + body.size(), kMacSize) != 0) {
      return fail(HandshakeFailure::not_cluster_peer,
                  fmt::format("handshake: {}", kNotClusterPeer));
    }
    if (Status st = noise_.read_message(body, payload); !st) {
      return fail(HandshakeFailure::not_cluster_peer,
                  fmt::format("handshake: {}", kNotClusterPeer));
    }
    std::memcpy(mac1_.data(), mac.data(), kMacSize);
    if (!payload.empty())
      return fail(HandshakeFailure::malformed, "handshake: message 1 has a payload");
    return {};
  }
  if (step_ == 1) {
    // Message 2.
    if (message.size() != kMessage2Size) {
      return fail(HandshakeFailure::malformed,
                  fmt::format("handshake: second message is {} bytes, expected {}; {}",
                              message.size(), kMessage2Size, kNotClusterPeer));
    }
    const ByteView body = message.first(kMessage2Size - kMacSize);
    const auto mac = keyed_mac(keys_.mac2, mac1_, body);
    if (sodium_memcmp(mac.data(), message.data() + body.size(), kMacSize) != 0) {
      return fail(HandshakeFailure::not_cluster_peer,
                  fmt::format("handshake: {}", kNotClusterPeer));
    }
    if (Status st = noise_.read_message(body, payload); !st) {
      return fail(HandshakeFailure::not_cluster_peer,
                  fmt::format("handshake: {}", kNotClusterPeer));
    }
    return accept_identity_payload(payload);
  }
  // Message 3 (responder): the psk enters here, so a wrong secret fails authentication.
  if (message.size() != kMessage3Size) {
    return fail(HandshakeFailure::malformed,
                fmt::format("handshake: third message is {} bytes, expected {}", message.size(),
                            kMessage3Size));
  }
  if (Status st = noise_.read_message(message, payload); !st) {
    return fail(HandshakeFailure::not_cluster_peer, fmt::format("handshake: {}", kNotClusterPeer));
  }
  return accept_identity_payload(payload);
}

LinkSession PeerHandshake::finish() {
  assert(done() && remote_identity_ && "finish only after a completed handshake");
  auto [i2r, r2i] = noise_.split();
  LinkSession s;
  s.send = initiator_ ? i2r : r2i;
  s.receive = initiator_ ? r2i : i2r;
  s.remote_identity = *remote_identity_;
  if (noise_.remote_static()) s.remote_static = *noise_.remote_static();
  s.handshake_hash = noise_.handshake_hash();
  return s;
}

std::size_t Message1ReplayFilter::KeyHash::operator()(const noise::Key& k) const {
  // Ephemeral keys are uniformly random, so their first bytes are already a good hash.
  std::size_t h = 0;
  std::memcpy(&h, k.data(), sizeof h);
  return h;
}

bool Message1ReplayFilter::first_sight(const noise::Key& ephemeral) {
  if (!seen_.insert(ephemeral).second) return false;
  order_.push_back(ephemeral);
  if (order_.size() > capacity_) {
    seen_.erase(order_.front());
    order_.pop_front();
  }
  return true;
}

}  // namespace clusterpin::net
