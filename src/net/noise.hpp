// The Noise Protocol Framework core (revision 34) for 25519 + ChaChaPoly + SHA256, built from
// libsodium primitives: CipherState, SymmetricState and HandshakeState for the patterns XX, NN
// and their psk variants (NNpsk0, XXpsk3). Pure: no sockets, no clocks; randomness only for
// ephemeral keys, which tests can fix. Any authentication failure is returned as an Error and
// leaves the state unusable, as the spec requires.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace clusterpin::net::noise {

inline constexpr std::size_t kKeySize = 32;  // X25519 keys, ChaChaPoly keys, SHA-256 outputs
inline constexpr std::size_t kTagSize = 16;  // Poly1305 tag
inline constexpr std::size_t kDhSize = 32;

using Key = std::array<std::uint8_t, kKeySize>;

// Overwrites key material in a way the compiler does not remove (sodium_memzero). Every type
// here that holds a secret wipes it when it goes, so that no key of a closed link or a finished
// handshake stays behind in freed memory (a core dump, a later read of reused memory).
void wipe(Key& key);

struct Keypair {
  Key secret{};
  Key public_key{};
  ~Keypair() { wipe(secret); }
};

// A fresh X25519 keypair from the OS random source.
Keypair generate_keypair();
// The keypair whose secret is given (public = secret * basepoint).
Keypair keypair_from_secret(const Key& secret);

// HMAC-SHA256 and the Noise HKDF (two or three 32-byte outputs), also used to derive cluster keys.
Key hmac_sha256(ByteView key, ByteView data);
std::pair<Key, Key> hkdf2(const Key& chaining_key, ByteView input_key_material);

// CipherState: a key plus a 64-bit counter nonce. Each successful encrypt/decrypt uses the next
// nonce; a nonce is never reused because the counter only moves forward.
class CipherState {
 public:
  CipherState() = default;
  CipherState(const CipherState&) = default;
  CipherState& operator=(const CipherState&) = default;
  ~CipherState() { wipe(k_); }

  void initialize_key(const Key& key);
  bool has_key() const { return has_key_; }
  std::uint64_t nonce() const { return n_; }
  void set_nonce(std::uint64_t n) { n_ = n; }

  // Appends ciphertext (plaintext + tag) to out; without a key, appends the plaintext.
  Status encrypt_with_ad(ByteView ad, ByteView plaintext, Bytes& out);
  // Appends plaintext to out, or fails (nonce not advanced) when the tag does not verify.
  Status decrypt_with_ad(ByteView ad, ByteView ciphertext, Bytes& out);
  // Noise Rekey(): k = first 32 bytes of ENCRYPT(k, 2^64-1, "", zeros).
  void rekey();

 private:
  Key k_{};
  bool has_key_ = false;
  std::uint64_t n_ = 0;
};

// SymmetricState: the chaining key ck, the transcript hash h and the handshake CipherState.
class SymmetricState {
 public:
  explicit SymmetricState(std::string_view protocol_name);
  SymmetricState(const SymmetricState&) = default;
  SymmetricState& operator=(const SymmetricState&) = default;
  ~SymmetricState() { wipe(ck_); }
  void mix_key(ByteView input_key_material);
  void mix_hash(ByteView data);
  void mix_key_and_hash(ByteView input_key_material);
  Status encrypt_and_hash(ByteView plaintext, Bytes& out);
  Status decrypt_and_hash(ByteView ciphertext, Bytes& out);
  std::pair<CipherState, CipherState> split() const;
  const Key& handshake_hash() const { return h_; }
  bool has_key() const { return cipher_.has_key(); }

 private:
  Key ck_{};
  Key h_{};
  CipherState cipher_;
};

enum class Token : std::uint8_t { e, s, ee, es, se, ss, psk };

// A handshake pattern without pre-messages (the interactive patterns clusterpin needs).
struct Pattern {
  std::vector<std::vector<Token>> messages;
  bool psk_mode = false;  // any psk token: "e" then also runs MixKey(e.public)
};

// Parses "Noise_<pattern>_25519_ChaChaPoly_SHA256" for pattern XX, NN, NNpsk0 or XXpsk3.
Result<Pattern> pattern_for(std::string_view protocol_name);

struct HandshakeConfig {
  std::string protocol_name;
  bool initiator = false;
  Bytes prologue;
  std::optional<Keypair> static_keypair;   // required by patterns with "s"
  std::optional<Keypair> fixed_ephemeral;  // tests only: otherwise a fresh one is generated
  std::vector<Key> psks;                   // one per psk token, in order
};

// HandshakeState: runs the message patterns in order. write_message/read_message alternate as
// the pattern dictates; calling the wrong one, or any failure, is an Error and ends the handshake.
class HandshakeState {
 public:
  static Result<HandshakeState> create(HandshakeConfig config);
  HandshakeState(HandshakeState&&) = default;
  HandshakeState& operator=(HandshakeState&&) = default;
  ~HandshakeState();

  // Appends the next handshake message carrying payload to out.
  Status write_message(ByteView payload, Bytes& out);
  // Consumes the next handshake message and appends its payload to out.
  Status read_message(ByteView message, Bytes& payload_out);

  bool my_turn_to_write() const;
  bool finished() const { return next_message_ >= pattern_.messages.size(); }
  bool failed() const { return failed_; }
  // After finished(): (initiator-to-responder, responder-to-initiator) cipher states.
  std::pair<CipherState, CipherState> split() const;
  const Key& handshake_hash() const { return symmetric_.handshake_hash(); }
  const std::optional<Key>& remote_static() const { return rs_; }
  const Keypair& local_static() const { return *s_; }

 private:
  HandshakeState(Pattern pattern, SymmetricState symmetric, bool initiator);
  Status dh_into(const Keypair& local, const std::optional<Key>& remote);
  Status mix_token(Token t);

  Pattern pattern_;
  SymmetricState symmetric_;
  bool initiator_;
  std::optional<Keypair> s_;
  std::optional<Keypair> e_;
  std::optional<Key> rs_;
  std::optional<Key> re_;
  std::vector<Key> psks_;
  std::size_t next_psk_ = 0;
  std::size_t next_message_ = 0;
  bool failed_ = false;
};

}  // namespace clusterpin::net::noise
