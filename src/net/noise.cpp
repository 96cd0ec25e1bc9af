// Noise core over libsodium: X25519 (crypto_scalarmult), ChaCha20-Poly1305 IETF with the Noise
// nonce layout (4 zero bytes + 64-bit little-endian counter), SHA-256 and HMAC-SHA256 for the
// Noise HKDF. Follows the processing rules of the Noise specification section 5 literally so the
// cacophony test vectors match byte for byte.
#include "net/noise.hpp"

#include <sodium.h>

#include <cassert>
#include <cstring>

#include <fmt/core.h>

namespace clusterpin::net::noise {
namespace {

// libsodium must be initialised once before randombytes; sodium_init is idempotent and safe.
void ensure_sodium() {
  [[maybe_unused]] static const int once = sodium_init();
  assert(once >= 0 && "libsodium failed to initialise");
}

std::array<std::uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> nonce_bytes(std::uint64_t n) {
  std::array<std::uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> nonce{};
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
  return nonce;
}

Key sha256(ByteView a, ByteView b) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, a.data(), a.size());
  crypto_hash_sha256_update(&st, b.data(), b.size());
  Key out{};
  crypto_hash_sha256_final(&st, out.data());
  return out;
}

Key hmac2(ByteView key, ByteView a, ByteView b) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key.data(), key.size());
  crypto_auth_hmacsha256_update(&st, a.data(), a.size());
  crypto_auth_hmacsha256_update(&st, b.data(), b.size());
  Key out{};
  crypto_auth_hmacsha256_final(&st, out.data());
  return out;
}

struct Hkdf3 {
  Key out1, out2, out3;
  ~Hkdf3() {
    wipe(out1);
    wipe(out2);
    wipe(out3);
  }
};

Hkdf3 hkdf3(const Key& chaining_key, ByteView ikm) {
  Key temp = hmac_sha256(chaining_key, ikm);
  const std::uint8_t one = 1, two = 2, three = 3;
  Hkdf3 r;
  r.out1 = hmac2(temp, ByteView(&one, 1), {});
  r.out2 = hmac2(temp, r.out1, ByteView(&two, 1));
  r.out3 = hmac2(temp, r.out2, ByteView(&three, 1));
  wipe(temp);
  return r;
}

}  // namespace

void wipe(Key& key) { sodium_memzero(key.data(), key.size()); }

Keypair generate_keypair() {
  ensure_sodium();
  Key secret{};
  randombytes_buf(secret.data(), secret.size());
  Keypair kp = keypair_from_secret(secret);
  wipe(secret);
  return kp;
}

Keypair keypair_from_secret(const Key& secret) {
  Keypair kp;
  kp.secret = secret;
  crypto_scalarmult_base(kp.public_key.data(), kp.secret.data());
  return kp;
}

Key hmac_sha256(ByteView key, ByteView data) {
  return hmac2(key, data, {});
}

std::pair<Key, Key> hkdf2(const Key& chaining_key, ByteView ikm) {
  Hkdf3 r = hkdf3(chaining_key, ikm);
  return {r.out1, r.out2};
}

// ---- CipherState ----

void CipherState::initialize_key(const Key& key) {
  k_ = key;
  has_key_ = true;
  n_ = 0;
}

Status CipherState::encrypt_with_ad(ByteView ad, ByteView plaintext, Bytes& out) {
  if (!has_key_) {
    out.insert(out.end(), plaintext.begin(), plaintext.end());
    return {};
  }
  // 2^64-1 is reserved for rekey; reaching it would mean nonce reuse after wrap.
  if (n_ == UINT64_MAX)
    return make_error("noise: nonce space exhausted; the link must rekey or close");
  const std::size_t at = out.size();
  out.resize(at + plaintext.size() + kTagSize);
  unsigned long long written = 0;
  const auto nonce = nonce_bytes(n_);
  crypto_aead_chacha20poly1305_ietf_encrypt(out.data() + at, &written, plaintext.data(),
                                            plaintext.size(), ad.data(), ad.size(), nullptr,
                                            nonce.data(), k_.data());
  assert(written == plaintext.size() + kTagSize);
  ++n_;
  return {};
}

Status CipherState::decrypt_with_ad(ByteView ad, ByteView ciphertext, Bytes& out) {
  if (!has_key_) {
    out.insert(out.end(), ciphertext.begin(), ciphertext.end());
    return {};
  }
  if (ciphertext.size() < kTagSize) return make_error("noise: ciphertext shorter than its tag");
  if (n_ == UINT64_MAX) return make_error("noise: nonce space exhausted");
  const std::size_t at = out.size();
  out.resize(at + ciphertext.size() - kTagSize);
  unsigned long long written = 0;
  const auto nonce = nonce_bytes(n_);
  if (crypto_aead_chacha20poly1305_ietf_decrypt(out.data() + at, &written, nullptr,
                                                ciphertext.data(), ciphertext.size(), ad.data(),
                                                ad.size(), nonce.data(), k_.data()) != 0) {
    out.resize(at);
    return make_error("noise: message failed authentication (wrong key, tampered or replayed)");
  }
  ++n_;
  return {};
}

void CipherState::rekey() {
  assert(has_key_ && "rekey needs a key");
  const std::array<std::uint8_t, kKeySize> zeros{};
  std::array<std::uint8_t, kKeySize + kTagSize> out{};
  unsigned long long written = 0;
  const auto nonce = nonce_bytes(UINT64_MAX);
  crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &written, zeros.data(), zeros.size(),
                                            nullptr, 0, nullptr, nonce.data(), k_.data());
  std::memcpy(k_.data(), out.data(), kKeySize);
  sodium_memzero(out.data(), out.size());
}

// ---- SymmetricState ----

SymmetricState::SymmetricState(std::string_view protocol_name) {
  if (protocol_name.size() <= kKeySize) {
    std::memcpy(h_.data(), protocol_name.data(), protocol_name.size());
  } else {
    h_ = sha256(as_bytes(protocol_name), {});
  }
  ck_ = h_;
}

void SymmetricState::mix_key(ByteView ikm) {
  auto [ck, temp_k] = hkdf2(ck_, ikm);
  ck_ = ck;
  cipher_.initialize_key(temp_k);
  wipe(ck);
  wipe(temp_k);
}

void SymmetricState::mix_hash(ByteView data) {
  h_ = sha256(h_, data);
}

void SymmetricState::mix_key_and_hash(ByteView ikm) {
  Hkdf3 r = hkdf3(ck_, ikm);
  ck_ = r.out1;
  mix_hash(r.out2);
  cipher_.initialize_key(r.out3);
}

Status SymmetricState::encrypt_and_hash(ByteView plaintext, Bytes& out) {
  const std::size_t at = out.size();
  if (Status st = cipher_.encrypt_with_ad(h_, plaintext, out); !st) return st;
  mix_hash(ByteView(out.data() + at, out.size() - at));
  return {};
}

Status SymmetricState::decrypt_and_hash(ByteView ciphertext, Bytes& out) {
  if (Status st = cipher_.decrypt_with_ad(h_, ciphertext, out); !st) return st;
  mix_hash(ciphertext);
  return {};
}

std::pair<CipherState, CipherState> SymmetricState::split() const {
  auto [k1, k2] = hkdf2(ck_, {});
  CipherState c1, c2;
  c1.initialize_key(k1);
  c2.initialize_key(k2);
  wipe(k1);
  wipe(k2);
  return {c1, c2};
}

// ---- patterns ----

Result<Pattern> pattern_for(std::string_view protocol_name) {
  using T = Token;
  constexpr std::string_view prefix = "Noise_";
  constexpr std::string_view suffix = "_25519_ChaChaPoly_SHA256";
  if (!protocol_name.starts_with(prefix) || !protocol_name.ends_with(suffix)) {
    return make_error(fmt::format(
        "noise: protocol \"{}\" is not supported (accepted: Noise_<XX|NN|NNpsk0|XXpsk3>{})",
        protocol_name, suffix));
  }
  const std::string_view name =
      protocol_name.substr(prefix.size(), protocol_name.size() - prefix.size() - suffix.size());
  Pattern p;
  if (name == "XX") {
    p.messages = {{T::e}, {T::e, T::ee, T::s, T::es}, {T::s, T::se}};
  } else if (name == "XXpsk3") {
    p.messages = {{T::e}, {T::e, T::ee, T::s, T::es}, {T::s, T::se, T::psk}};
    p.psk_mode = true;
  } else if (name == "NN") {
    p.messages = {{T::e}, {T::e, T::ee}};
  } else if (name == "NNpsk0") {
    p.messages = {{T::psk, T::e}, {T::e, T::ee}};
    p.psk_mode = true;
  } else {
    return make_error(fmt::format(
        "noise: handshake pattern \"{}\" is not supported (accepted: XX, NN, NNpsk0, XXpsk3)",
        name));
  }
  return p;
}

// ---- HandshakeState ----

HandshakeState::HandshakeState(Pattern pattern, SymmetricState symmetric, bool initiator)
    : pattern_(std::move(pattern)), symmetric_(std::move(symmetric)), initiator_(initiator) {}

Result<HandshakeState> HandshakeState::create(HandshakeConfig config) {
  Result<Pattern> pattern = pattern_for(config.protocol_name);
  if (!pattern) return pattern.error();
  std::size_t psk_tokens = 0;
  bool needs_static = false;
  for (const auto& msg : pattern->messages) {
    for (Token t : msg) {
      psk_tokens += t == Token::psk;
      needs_static |= t == Token::s;
    }
  }
  if (config.psks.size() != psk_tokens) {
    return make_error(fmt::format("noise: {} needs {} psk(s), {} given", config.protocol_name,
                                  psk_tokens, config.psks.size()));
  }
  if (needs_static && !config.static_keypair) {
    return make_error(fmt::format("noise: {} needs a static keypair", config.protocol_name));
  }
  SymmetricState symmetric(config.protocol_name);
  symmetric.mix_hash(config.prologue);
  HandshakeState hs(std::move(*pattern), std::move(symmetric), config.initiator);
  hs.s_ = config.static_keypair;
  hs.e_ = config.fixed_ephemeral;
  hs.psks_ = std::move(config.psks);
  return hs;
}

HandshakeState::~HandshakeState() {
  for (Key& psk : psks_) wipe(psk);
}

bool HandshakeState::my_turn_to_write() const {
  // Even-numbered messages go initiator -> responder.
  return (next_message_ % 2 == 0) == initiator_;
}

Status HandshakeState::dh_into(const Keypair& local, const std::optional<Key>& remote) {
  // Both keys are known here because the pattern's tokens are processed in order.
  assert(remote.has_value() && "pattern orders tokens so the remote key is known before DH");
  Key shared{};
  if (crypto_scalarmult(shared.data(), local.secret.data(), remote->data()) != 0) {
    return make_error("noise: remote key is a low-order point");
  }
  symmetric_.mix_key(shared);
  sodium_memzero(shared.data(), shared.size());
  return {};
}

// The tokens that read and write alike: Diffie-Hellman results and the pre-shared key.
Status HandshakeState::mix_token(Token t) {
  switch (t) {
    case Token::ee:
      return dh_into(*e_, re_);
    case Token::es:
      return initiator_ ? dh_into(*e_, rs_) : dh_into(*s_, re_);
    case Token::se:
      return initiator_ ? dh_into(*s_, re_) : dh_into(*e_, rs_);
    case Token::ss:
      return dh_into(*s_, rs_);
    case Token::psk:
      symmetric_.mix_key_and_hash(psks_[next_psk_++]);
      return {};
    case Token::e:
    case Token::s:
      break;
  }
  return make_error("noise: token e or s has no common handling");
}

Status HandshakeState::write_message(ByteView payload, Bytes& out) {
  if (failed_ || finished() || !my_turn_to_write()) {
    failed_ = true;
    return make_error("noise: handshake message written out of turn");
  }
  for (Token t : pattern_.messages[next_message_]) {
    Status st;
    switch (t) {
      case Token::e:
        if (!e_) e_ = generate_keypair();
        out.insert(out.end(), e_->public_key.begin(), e_->public_key.end());
        symmetric_.mix_hash(e_->public_key);
        if (pattern_.psk_mode) symmetric_.mix_key(e_->public_key);
        break;
      case Token::s:
        st = symmetric_.encrypt_and_hash(s_->public_key, out);
        break;
      default:
        st = mix_token(t);
        break;
    }
    if (!st) {
      failed_ = true;
      return st;
    }
  }
  if (Status st = symmetric_.encrypt_and_hash(payload, out); !st) {
    failed_ = true;
    return st;
  }
  ++next_message_;
  return {};
}

Status HandshakeState::read_message(ByteView message, Bytes& payload_out) {
  if (failed_ || finished() || my_turn_to_write()) {
    failed_ = true;
    return make_error("noise: handshake message read out of turn");
  }
  auto fail = [this](std::string why) -> Status {
    failed_ = true;
    return make_error(std::move(why));
  };
  std::size_t pos = 0;
  for (Token t : pattern_.messages[next_message_]) {
    Status st;
    switch (t) {
      case Token::e: {
        if (message.size() - pos < kDhSize) return fail("noise: handshake message truncated");
        Key re{};
        std::memcpy(re.data(), message.data() + pos, kDhSize);
        pos += kDhSize;
        re_ = re;
        symmetric_.mix_hash(re);
        if (pattern_.psk_mode) symmetric_.mix_key(re);
        break;
      }
      case Token::s: {
        const std::size_t len = kDhSize + (symmetric_.has_key() ? kTagSize : 0);
        if (message.size() - pos < len) return fail("noise: handshake message truncated");
        Bytes plain;
        st = symmetric_.decrypt_and_hash(message.subspan(pos, len), plain);
        if (st) {
          assert(plain.size() == kDhSize);
          Key rs{};
          std::memcpy(rs.data(), plain.data(), kDhSize);
          rs_ = rs;
        }
        pos += len;
        break;
      }
      default:
        st = mix_token(t);
        break;
    }
    if (!st) {
      failed_ = true;
      return st;
    }
  }
  if (symmetric_.has_key() && message.size() - pos < kTagSize) {
    return fail("noise: handshake message truncated");
  }
  if (Status st = symmetric_.decrypt_and_hash(message.subspan(pos), payload_out); !st) {
    failed_ = true;
    return st;
  }
  ++next_message_;
  return {};
}

std::pair<CipherState, CipherState> HandshakeState::split() const {
  assert(finished() && !failed_ && "split only after a completed handshake");
  return symmetric_.split();
}

}  // namespace clusterpin::net::noise
