// Multibase codecs. base58btc and base36 are big-number conversions (base-x style: each leading
// zero byte becomes one leading zero digit); base32 is the RFC 4648 bit packing without padding.
#include "core/multibase.hpp"

#include <array>
#include <cassert>

#include <fmt/format.h>

#include "core/encoding.hpp"

namespace clusterpin {
namespace {

constexpr std::string_view kBase58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
constexpr std::string_view kBase36Alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
constexpr std::string_view kBase32Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

// Each byte's base32 value (either case), 0xFF for bytes outside the alphabet: one look-up per
// character instead of a search of the alphabet (CIDs of an IPFS listing of millions are
// decoded one after another).
constexpr auto kBase32Values = [] {
  std::array<std::uint8_t, 256> values{};
  values.fill(0xFF);
  for (std::size_t i = 0; i < kBase32Alphabet.size(); ++i) {
    const auto c = static_cast<unsigned char>(kBase32Alphabet[i]);
    values[c] = static_cast<std::uint8_t>(i);
    if (c >= 'a' && c <= 'z') values[c - 'a' + 'A'] = static_cast<std::uint8_t>(i);
  }
  return values;
}();

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Repeated division of the byte string by the radix, digits collected least significant first.
std::string radix_encode(ByteView data, std::string_view alphabet) {
  const unsigned radix = static_cast<unsigned>(alphabet.size());
  std::size_t zeros = 0;
  while (zeros < data.size() && data[zeros] == 0) ++zeros;
  std::vector<std::uint8_t> digits;  // little-endian digits of the number
  digits.reserve(data.size() * 138 / 100 + 1);
  for (std::size_t i = zeros; i < data.size(); ++i) {
    unsigned carry = data[i];
    for (std::uint8_t& digit : digits) {
      carry += static_cast<unsigned>(digit) << 8;
      digit = static_cast<std::uint8_t>(carry % radix);
      carry /= radix;
    }
    while (carry > 0) {
      digits.push_back(static_cast<std::uint8_t>(carry % radix));
      carry /= radix;
    }
  }
  std::string out(zeros, alphabet[0]);
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) out.push_back(alphabet[*it]);
  return out;
}

Result<Bytes> radix_decode(std::string_view text, std::string_view alphabet, std::string_view name,
                           bool case_insensitive) {
  const unsigned radix = static_cast<unsigned>(alphabet.size());
  std::size_t zeros = 0;
  while (zeros < text.size() && text[zeros] == alphabet[0]) ++zeros;
  Bytes bytes;  // little-endian bytes of the number
  for (std::size_t i = zeros; i < text.size(); ++i) {
    char c = case_insensitive ? lower(text[i]) : text[i];
    std::size_t value = alphabet.find(c);
    if (value == std::string_view::npos) {
      return make_error(fmt::format("bad {} character '{}' at position {} (not in the {} alphabet)", name, text[i], i,
                                    name));
    }
    unsigned carry = static_cast<unsigned>(value);
    for (std::uint8_t& byte : bytes) {
      carry += static_cast<unsigned>(byte) * radix;
      byte = static_cast<std::uint8_t>(carry & 0xff);
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push_back(static_cast<std::uint8_t>(carry & 0xff));
      carry >>= 8;
    }
  }
  Bytes out(zeros, 0);
  out.insert(out.end(), bytes.rbegin(), bytes.rend());
  return out;
}

}  // namespace

char multibase_prefix(Multibase base) {
  switch (base) {
    case Multibase::base58btc: return 'z';
    case Multibase::base32: return 'b';
    case Multibase::base36: return 'k';
    case Multibase::base16: return 'f';
  }
  assert(false && "every Multibase value is handled above");
  return '?';
}

std::string_view multibase_name(Multibase base) {
  switch (base) {
    case Multibase::base58btc: return "base58btc";
    case Multibase::base32: return "base32";
    case Multibase::base36: return "base36";
    case Multibase::base16: return "base16";
  }
  assert(false && "every Multibase value is handled above");
  return "?";
}

std::string base58btc_encode(ByteView data) { return radix_encode(data, kBase58Alphabet); }

Result<Bytes> base58btc_decode(std::string_view text) {
  return radix_decode(text, kBase58Alphabet, "base58btc", false);
}

std::string base36_encode(ByteView data) { return radix_encode(data, kBase36Alphabet); }

Result<Bytes> base36_decode(std::string_view text) {
  return radix_decode(text, kBase36Alphabet, "base36", true);
}

void append_base32(std::string& out, ByteView data) {
  // Sized once and written in place.
  std::size_t at = out.size();
  out.resize(at + (data.size() * 8 + 4) / 5);
  write_base32(out.data() + at, data);
}

char* write_base32(char* p, ByteView data) {
  // Whole groups of 5 bytes are 8 characters: one 40-bit number each, no carry between groups.
  std::size_t i = 0;
  for (; i + 5 <= data.size(); i += 5) {
    std::uint64_t group = 0;
    for (std::size_t k = 0; k < 5; ++k) group = group << 8 | data[i + k];
    for (int shift = 35; shift >= 0; shift -= 5) *p++ = kBase32Alphabet[(group >> shift) & 31];
  }
  std::uint32_t bits = 0;
  int bit_count = 0;
  for (std::uint8_t byte : data.subspan(i)) {
    bits = bits << 8 | byte;
    bit_count += 8;
    while (bit_count >= 5) {
      bit_count -= 5;
      *p++ = kBase32Alphabet[(bits >> bit_count) & 31];
    }
    bits &= (1u << bit_count) - 1;
  }
  if (bit_count > 0) *p++ = kBase32Alphabet[(bits << (5 - bit_count)) & 31];
  return p;
}

std::string base32_encode(ByteView data) {
  std::string out;
  append_base32(out, data);
  return out;
}

Result<Bytes> base32_decode(std::string_view text) {
  // 1, 3 or 6 leftover characters cannot come from whole bytes.
  std::size_t tail = text.size() % 8;
  if (tail == 1 || tail == 3 || tail == 6) {
    return make_error(fmt::format("bad base32 length {}: it cannot encode whole bytes", text.size()));
  }
  Bytes out(text.size() * 5 / 8);
  std::size_t n = 0;
  std::uint32_t bits = 0;
  int bit_count = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::uint8_t value = kBase32Values[static_cast<unsigned char>(text[i])];
    if (value == 0xFF) {
      return make_error(fmt::format("bad base32 character '{}' at position {} (accepted: a-z 2-7)", text[i], i));
    }
    bits = bits << 5 | value;
    bit_count += 5;
    if (bit_count >= 8) {
      bit_count -= 8;
      out[n++] = static_cast<std::uint8_t>(bits >> bit_count);
      bits &= (1u << bit_count) - 1;
    }
  }
  assert(n == out.size());
  return out;
}

std::string multibase_encode(Multibase base, ByteView data) {
  std::string out;
  append_multibase(out, base, data);
  return out;
}

void append_multibase(std::string& out, Multibase base, ByteView data) {
  out += multibase_prefix(base);
  switch (base) {
    case Multibase::base58btc: out += base58btc_encode(data); break;
    case Multibase::base32: append_base32(out, data); break;
    case Multibase::base36: out += base36_encode(data); break;
    case Multibase::base16: out += hex_encode(data); break;
  }
}

Result<MultibaseDecoded> multibase_decode(std::string_view text) {
  if (text.empty()) return make_error("bad multibase text: empty string");
  std::string_view body = text.substr(1);
  Multibase base;
  switch (text[0]) {
    case 'z': base = Multibase::base58btc; break;
    case 'b': case 'B': base = Multibase::base32; break;
    case 'k': case 'K': base = Multibase::base36; break;
    case 'f': case 'F': base = Multibase::base16; break;
    default:
      return make_error(fmt::format(
          "unknown multibase prefix '{}' (accepted: z base58btc, b base32, k base36, f base16)", text[0]));
  }
  Result<Bytes> data = base == Multibase::base58btc ? base58btc_decode(body)
                       : base == Multibase::base32  ? base32_decode(body)
                       : base == Multibase::base36  ? base36_decode(body)
                                                    : hex_decode(body);
  if (!data) return data.error();
  return MultibaseDecoded{base, std::move(data).value()};
}

}  // namespace clusterpin
