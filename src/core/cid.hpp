// Content identifiers (CIDv0 and CIDv1). A Cid holds the binary form, which is the canonical key
// everywhere (database rows, Raft entries, maps): two Cids are equal iff their bytes are equal,
// so the base58btc and base32 texts of one CIDv1 compare equal. Every Cid is valid: a supported
// codec and a well-formed multihash of a supported function.
#pragma once

#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "core/bytes.hpp"
#include "core/multibase.hpp"
#include "core/multihash.hpp"
#include "core/result.hpp"

namespace clusterpin {

enum class Codec : std::uint64_t {
  raw = 0x55,
  dag_pb = 0x70,
  dag_cbor = 0x71,
  libp2p_key = 0x72,
  dag_json = 0x0129,
};

std::string_view codec_name(Codec codec);

class Cid {
 public:
  // Text: "Qm..." (46 characters, CIDv0) or a multibase CIDv1 ("bafy...", "zdj7...", "k...", "f01...").
  static Result<Cid> parse(std::string_view text);
  // Binary: a bare sha2-256 multihash (CIDv0) or <varint 1><varint codec><multihash>.
  static Result<Cid> from_bytes(ByteView bytes);
  // CIDv0 needs a sha2-256 multihash (its codec is always dag-pb).
  static Result<Cid> v0(const Multihash& hash);
  static Cid v1(Codec codec, const Multihash& hash);
  // CIDv1 of content hashed with sha2-256 (e.g. raw blocks in tests).
  static Cid from_content(Codec codec, ByteView content);

  int version() const { return version_; }
  Codec codec() const { return codec_; }
  Multihash multihash() const;  // read from the bytes
  ByteView bytes() const { return {data(), size_}; }

  // CIDv0: base58btc without prefix; CIDv1: base32 lower-case like Kubo.
  std::string to_string() const;
  void append_text(std::string& out) const;  // to_string(), appended to out
  // A CIDv0 has only its base58btc form: any other base is an error (convert with to_v1()).
  Result<std::string> to_string(Multibase base) const;
  // The CIDv1 with the same codec and multihash (a CIDv1 returns itself).
  Cid to_v1() const;

  // Byte order (memcmp, then length), as SQLite orders BLOB keys.
  friend bool operator==(const Cid& a, const Cid& b) {
    return a.size_ == b.size_ && std::memcmp(a.data(), b.data(), a.size_) == 0;
  }
  friend std::strong_ordering operator<=>(const Cid& a, const Cid& b) {
    const int c = std::memcmp(a.data(), b.data(), std::min(a.size_, b.size_));
    return c != 0 ? c <=> 0 : a.size_ <=> b.size_;
  }

  Cid(const Cid& other);
  Cid(Cid&& other) noexcept;
  Cid& operator=(const Cid& other);
  Cid& operator=(Cid&& other) noexcept;
  ~Cid();

 private:
  // The binary form is kept inline up to kInlineBytes (every CID of a sha2-256 or blake2b-256
  // hash), on the heap beyond: copies of CIDs (queues, maps, pins) cost no allocation.
  static constexpr std::size_t kInlineBytes = 40;

  Cid(int version, Codec codec, ByteView head, ByteView hash);
  bool on_heap() const { return size_ > kInlineBytes; }
  const std::uint8_t* data() const { return on_heap() ? heap_ : inline_; }
  void release() noexcept;

  std::uint32_t size_ = 0;
  std::uint8_t version_ = 0;
  std::uint8_t hash_offset_ = 0;  // where the multihash starts in the bytes
  Codec codec_ = Codec::dag_pb;
  union {
    std::uint8_t inline_[kInlineBytes];
    std::uint8_t* heap_;
  };
};

// A fast 64-bit hash of bytes for hash tables (not keyed: not for untrusted collision resistance).
std::size_t hash_bytes(ByteView bytes);

// Cid::to_string of a CID's binary form, written at `p` (at most 2 * size + 2 bytes); returns
// the end. For bytes from Cid::bytes(): a listing writes stored CIDs without building a Cid.
char* write_cid_text(char* p, ByteView bytes);

}  // namespace clusterpin

template <>
struct std::hash<clusterpin::Cid> {
  std::size_t operator()(const clusterpin::Cid& cid) const noexcept { return clusterpin::hash_bytes(cid.bytes()); }
};
