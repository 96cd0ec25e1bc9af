// CID parsing and printing following the multiformats CID spec: a 46-character "Qm" text is a
// CIDv0 (base58btc sha2-256 multihash, dag-pb); anything else is multibase text of a CIDv1.
// Errors say why a CID is refused (prefix, varint, version, codec, digest, trailing bytes).
#include "core/cid.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>

#include "core/varint.hpp"

namespace clusterpin {
namespace {

constexpr std::size_t kV0TextLength = 46;
// Far above any supported CID (a base16 sha2-512 CIDv1 is 137 characters); it bounds the
// quadratic base58/base36 decoding of text that arrives from the network.
constexpr std::size_t kMaxTextLength = 4096;

std::optional<Codec> codec_of(std::uint64_t code) {
  switch (code) {
    case 0x55: return Codec::raw;
    case 0x70: return Codec::dag_pb;
    case 0x71: return Codec::dag_cbor;
    case 0x72: return Codec::libp2p_key;
    case 0x0129: return Codec::dag_json;
    default: return std::nullopt;
  }
}

Result<Cid> parse_v1_bytes(ByteView bytes) {
  Result<Varint> version = read_varint(bytes);
  if (!version) return version.error();
  if (version->value != 1) {
    return make_error(fmt::format(
        "bad CID version {} (accepted: 1 in binary form, or a bare sha2-256 multihash for CIDv0)", version->value));
  }
  ByteView rest = bytes.subspan(version->length);
  Result<Varint> code = read_varint(rest);
  if (!code) return code.error();
  std::optional<Codec> codec = codec_of(code->value);
  if (!codec) {
    return make_error(fmt::format(
        "unsupported codec 0x{:02x} (accepted: 0x70 dag-pb, 0x55 raw, 0x71 dag-cbor, 0x0129 dag-json, "
        "0x72 libp2p-key)",
        code->value));
  }
  Result<Multihash> hash = Multihash::from_bytes(rest.subspan(code->length));
  if (!hash) return hash.error();
  return Cid::v1(*codec, *hash);
}

Result<Cid> decode_cid_bytes(ByteView bytes) {
  if (bytes.empty()) return make_error("no bytes (empty CID)");
  // A CIDv1 starts with the version varint 0x01; 0x12 (sha2-256) starts a CIDv0 multihash.
  if (bytes[0] == 0x12) {
    Result<Multihash> hash = Multihash::from_bytes(bytes);
    if (!hash) return make_error(fmt::format("CIDv0 multihash: {}", hash.error().message));
    return Cid::v0(*hash);
  }
  return parse_v1_bytes(bytes);
}

}  // namespace

std::string_view codec_name(Codec codec) {
  switch (codec) {
    case Codec::raw: return "raw";
    case Codec::dag_pb: return "dag-pb";
    case Codec::dag_cbor: return "dag-cbor";
    case Codec::libp2p_key: return "libp2p-key";
    case Codec::dag_json: return "dag-json";
  }
  return "unknown";
}

std::size_t hash_bytes(ByteView bytes) {
  // Eight bytes per multiply (a byte per multiply was a visible share of the pin tracker's
  // lookups), then a finalizer that spreads every input bit over the bucket bits.
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  std::uint64_t h = 14695981039346656037ull ^ (bytes.size() * kMul);
  std::size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, bytes.data() + i, 8);
    h = std::rotl((h ^ w) * kMul, 29);
  }
  std::uint64_t tail = 0;
  for (std::size_t k = 0; i + k < bytes.size(); ++k)
    tail |= static_cast<std::uint64_t>(bytes[i + k]) << (8 * k);
  h = (h ^ tail) * kMul;
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ull;
  h ^= h >> 32;
  return static_cast<std::size_t>(h);
}

Result<Cid> Cid::v0(const Multihash& hash) {
  if (hash.function() != HashFunction::sha2_256) {
    return make_error(fmt::format("CIDv0 multihash must be sha2-256, not {}",
                                  hash_function_name(hash.function())));
  }
  return Cid(0, Codec::dag_pb, {}, hash.bytes());
}

Cid Cid::v1(Codec codec, const Multihash& hash) {
  // <varint 1><varint codec>, on the stack rather than in a heap buffer.
  std::uint8_t head[2 * kMaxVarintBytes];
  std::uint8_t* end = write_varint(write_varint(head, 1), static_cast<std::uint64_t>(codec));
  return Cid(1, codec, ByteView(head, end), hash.bytes());
}

Cid::Cid(int version, Codec codec, ByteView head, ByteView hash)
    : size_(static_cast<std::uint32_t>(head.size() + hash.size())),
      version_(static_cast<std::uint8_t>(version)),
      hash_offset_(static_cast<std::uint8_t>(head.size())),
      codec_(codec) {
  std::uint8_t* p = inline_;
  if (on_heap()) {
    heap_ = new std::uint8_t[size_];
    p = heap_;
  } else {
    std::memset(inline_, 0, kInlineBytes);  // copies move the whole buffer
  }
  std::copy(head.begin(), head.end(), p);
  std::copy(hash.begin(), hash.end(), p + head.size());
}

Cid::Cid(const Cid& other)
    : size_(other.size_), version_(other.version_), hash_offset_(other.hash_offset_), codec_(other.codec_) {
  if (on_heap()) {
    heap_ = new std::uint8_t[size_];
    std::memcpy(heap_, other.heap_, size_);
  } else {
    std::memcpy(inline_, other.inline_, kInlineBytes);
  }
}

Cid::Cid(Cid&& other) noexcept
    : size_(other.size_), version_(other.version_), hash_offset_(other.hash_offset_), codec_(other.codec_) {
  std::memcpy(inline_, other.inline_, kInlineBytes);  // the inline bytes, or the heap pointer
  other.size_ = 0;                                      // the moved-from Cid owns nothing
}

Cid& Cid::operator=(const Cid& other) {
  if (this != &other) *this = Cid(other);
  return *this;
}

Cid& Cid::operator=(Cid&& other) noexcept {
  if (this != &other) {
    release();
    size_ = other.size_;
    version_ = other.version_;
    hash_offset_ = other.hash_offset_;
    codec_ = other.codec_;
    std::memcpy(inline_, other.inline_, kInlineBytes);
    other.size_ = 0;
  }
  return *this;
}

Cid::~Cid() { release(); }

void Cid::release() noexcept {
  if (on_heap()) delete[] heap_;
  size_ = 0;
}

Multihash Cid::multihash() const {
  // Checked when the Cid was made, so it parses.
  return Multihash::from_bytes(bytes().subspan(hash_offset_)).value();
}

Cid Cid::from_content(Codec codec, ByteView content) {
  return v1(codec, Multihash::compute(HashFunction::sha2_256, content));
}

Result<Cid> Cid::from_bytes(ByteView bytes) {
  Result<Cid> cid = decode_cid_bytes(bytes);
  if (!cid) return make_error(fmt::format("bad CID: {}", cid.error().message));
  return cid;
}

Result<Cid> Cid::parse(std::string_view text) {
  if (text.empty()) return make_error("bad CID \"\": empty string");
  if (text.size() > kMaxTextLength) {
    return make_error(fmt::format("bad CID \"{}...\": {} characters is too long (at most {})", text.substr(0, 16),
                                  text.size(), kMaxTextLength));
  }
  Result<Bytes> decoded = Bytes{};
  if (text.size() == kV0TextLength && text.substr(0, 2) == "Qm") {
    decoded = base58btc_decode(text);
  } else if (text.substr(0, 2) == "Qm") {
    // 'Q' is no multibase prefix: this can only be a mistyped CIDv0.
    return make_error(fmt::format("bad CID \"{}\": a CIDv0 (\"Qm...\") is {} characters, this is {}", text,
                                  kV0TextLength, text.size()));
  } else {
    // Like Go's cid.Decode, a multibase-wrapped CIDv0 multihash is accepted too (from_bytes sees 0x12).
    Result<MultibaseDecoded> multibase = multibase_decode(text);
    if (multibase) {
      decoded = std::move(multibase->data);
    } else {
      decoded = multibase.error();
    }
  }
  if (!decoded) return make_error(fmt::format("bad CID \"{}\": {}", text, decoded.error().message));
  Result<Cid> cid = decode_cid_bytes(*decoded);
  if (!cid) return make_error(fmt::format("bad CID \"{}\": {}", text, cid.error().message));
  return cid;
}

std::string Cid::to_string() const {
  std::string out;
  append_text(out);
  return out;
}

void Cid::append_text(std::string& out) const {
  const std::size_t at = out.size();
  out.resize(at + 2 * size_ + 2);
  out.resize(static_cast<std::size_t>(write_cid_text(out.data() + at, bytes()) - out.data()));
}

char* write_cid_text(char* p, ByteView bytes) {
  if (!bytes.empty() && bytes[0] == 0x12) {  // a CIDv0: a bare sha2-256 multihash
    const std::string text = base58btc_encode(bytes);
    return std::copy(text.begin(), text.end(), p);
  }
  *p++ = multibase_prefix(Multibase::base32);  // a CIDv1: base32 lower-case, as Kubo writes it
  return write_base32(p, bytes);
}

Result<std::string> Cid::to_string(Multibase base) const {
  if (version_ == 0) {
    if (base == Multibase::base58btc) return base58btc_encode(bytes());
    return make_error(fmt::format("CIDv0 {} has only the base58btc text form, not {} (convert it to CIDv1 first)",
                                  to_string(), multibase_name(base)));
  }
  return multibase_encode(base, bytes());
}

Cid Cid::to_v1() const { return version_ == 1 ? *this : v1(codec_, multihash()); }

}  // namespace clusterpin
