// Transport frames after the handshake: [4-byte big-endian ciphertext length][ChaChaPoly
// ciphertext]. Guarantees: a frame larger than the agreed maximum is refused from its length prefix
// alone (nothing is buffered for it); nonces are the per-direction frame counter, so a replayed,
// reordered, dropped or altered frame fails authentication; both directions rekey after a fixed
// number of frames; after the first error a FrameOpener only returns that error again.
#pragma once

#include <cstdint>
#include <optional>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "net/noise.hpp"

namespace clusterpin::net {

inline constexpr std::size_t kFrameHeaderSize = 4;

struct FrameLimits {
  std::size_t max_plaintext = 1u << 20;     // bytes of one frame's payload
  std::uint64_t rekey_interval = 1u << 16;  // frames per key in each direction
};

// Seals plaintexts into frames for one direction of a link.
class FrameSealer {
 public:
  FrameSealer(noise::CipherState cipher, FrameLimits limits);
  // Appends one frame to out; fails if plaintext exceeds the maximum.
  Status seal(ByteView plaintext, Bytes& out);
  std::uint64_t frames_sealed() const { return cipher_.nonce(); }

 private:
  noise::CipherState cipher_;
  FrameLimits limits_;
};

// Incremental decoder for the other direction: feed bytes as they arrive, take frames out.
class FrameOpener {
 public:
  FrameOpener(noise::CipherState cipher, FrameLimits limits);
  // Buffers received bytes (the caller reads from the socket into its own buffer).
  void feed(ByteView data);
  // Ok(true) with the next payload in plaintext, Ok(false) when more bytes are needed, or the
  // error that ends the link.
  Result<bool> next(Bytes& plaintext);
  // How many more bytes would complete the frame being read (at least 1): a read-size hint.
  std::size_t bytes_wanted() const;
  bool failed() const { return error_.has_value(); }

 private:
  noise::CipherState cipher_;
  FrameLimits limits_;
  Bytes buffer_;
  std::size_t start_ = 0;  // first unconsumed byte of buffer_
  std::optional<Error> error_;
};

}  // namespace clusterpin::net
