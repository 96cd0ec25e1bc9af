// Frame codec. The length prefix is also the AEAD's associated data, so a frame cut or spliced at
// a different length fails authentication even if the ciphertext bytes were reused.
#include "net/frame.hpp"

#include <cassert>
#include <cstring>

#include <fmt/core.h>

namespace clusterpin::net {
namespace {

std::uint32_t read_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

}  // namespace

FrameSealer::FrameSealer(noise::CipherState cipher, FrameLimits limits)
    : cipher_(std::move(cipher)), limits_(limits) {
  assert(cipher_.has_key() && limits_.rekey_interval > 0);
}

Status FrameSealer::seal(ByteView plaintext, Bytes& out) {
  if (plaintext.size() > limits_.max_plaintext) {
    return make_error(fmt::format("frame: payload of {} bytes exceeds the maximum of {} bytes",
                                  plaintext.size(), limits_.max_plaintext));
  }
  const auto len = static_cast<std::uint32_t>(plaintext.size() + noise::kTagSize);
  const std::uint8_t header[kFrameHeaderSize] = {
      static_cast<std::uint8_t>(len >> 24), static_cast<std::uint8_t>(len >> 16),
      static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len)};
  out.insert(out.end(), header, header + kFrameHeaderSize);
  if (Status st = cipher_.encrypt_with_ad(ByteView(header, kFrameHeaderSize), plaintext, out);
      !st) {
    return st;
  }
  if (cipher_.nonce() % limits_.rekey_interval == 0) cipher_.rekey();
  return {};
}

FrameOpener::FrameOpener(noise::CipherState cipher, FrameLimits limits)
    : cipher_(std::move(cipher)), limits_(limits) {
  assert(cipher_.has_key() && limits_.rekey_interval > 0);
}

void FrameOpener::feed(ByteView data) {
  if (error_) return;
  // Compact lazily: move the unread tail to the front once most of the buffer is consumed.
  if (start_ > 0 && start_ * 2 >= buffer_.size()) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), data.begin(), data.end());
}

std::size_t FrameOpener::bytes_wanted() const {
  const std::size_t have = buffer_.size() - start_;
  if (have < kFrameHeaderSize) return kFrameHeaderSize - have;
  const std::size_t len = read_be32(buffer_.data() + start_);
  const std::size_t total = kFrameHeaderSize + len;
  return total > have ? total - have : 1;
}

Result<bool> FrameOpener::next(Bytes& plaintext) {
  if (error_) return *error_;
  const std::size_t have = buffer_.size() - start_;
  if (have < kFrameHeaderSize) return false;
  const std::uint8_t* header = buffer_.data() + start_;
  const std::size_t len = read_be32(header);
  if (len < noise::kTagSize || len > limits_.max_plaintext + noise::kTagSize) {
    error_ = make_error(fmt::format(
        "frame: length {} is outside 16..{} bytes (garbage, or a peer with other limits)", len,
        limits_.max_plaintext + noise::kTagSize));
    return *error_;
  }
  if (have < kFrameHeaderSize + len) return false;
  plaintext.clear();
  if (Status st = cipher_.decrypt_with_ad(ByteView(header, kFrameHeaderSize),
                                          ByteView(header + kFrameHeaderSize, len), plaintext);
      !st) {
    error_ = make_error("frame: authentication failed (tampered, replayed or out-of-order frame)");
    return *error_;
  }
  start_ += kFrameHeaderSize + len;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  if (cipher_.nonce() % limits_.rekey_interval == 0) cipher_.rekey();
  return true;
}

}  // namespace clusterpin::net
