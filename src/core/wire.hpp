// A compact binary codec for values stored in SQLite and carried in Raft entries: unsigned
// varints, zigzag signed varints and length-prefixed byte strings. A WireReader never reads
// past its input: a short or malformed input makes ok() false and every later read a no-op.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/bytes.hpp"

namespace clusterpin {

class WireWriter {
 public:
  void u64(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void i64(std::int64_t v) {
    u64((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  void bytes(std::string_view s) {
    u64(s.size());
    out_.append(s);
  }
  void bytes(ByteView b) { bytes(std::string_view(reinterpret_cast<const char*>(b.data()), b.size())); }
  std::string& str() { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class WireReader {
 public:
  explicit WireReader(std::string_view in) : in_(in) {}

  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return fail();
      auto byte = static_cast<std::uint8_t>(in_[pos_++]);
      v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    return fail();
  }
  std::int64_t i64() {
    std::uint64_t z = u64();
    return static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1));
  }
  std::string_view bytes() {
    std::uint64_t n = u64();
    if (!ok_ || n > in_.size() - pos_) {
      fail();
      return {};
    }
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == in_.size(); }
  std::size_t position() const { return pos_; }
  // The bytes read since `from` (a position()).
  std::string_view since(std::size_t from) const { return in_.substr(from, pos_ - from); }

 private:
  std::uint64_t fail() {
    ok_ = false;
    pos_ = in_.size();
    return 0;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace clusterpin
