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

// Big-number conversion between bytes and the digits of `Radix`, done in 32-bit limbs: a limb
// of the digit side holds `kDigits` digits (Radix^kDigits < 2^32), a limb of the byte side four
// bytes, so one 64-bit step moves a whole limb where a byte-by-digit loop moved one digit. The
// radix is a constant, so the divisions compile to multiplications. Leading zero bytes map to
// leading zero digits one for one (base-x style), the rest is the number.
template <unsigned Radix>
struct RadixLimbs {
  static constexpr unsigned kDigits = [] {
    unsigned n = 0;
    std::uint64_t power = 1;
    while (power * Radix < (std::uint64_t{1} << 32)) power *= Radix, ++n;
    return n;
  }();
  static constexpr std::uint64_t power(unsigned n) {
    std::uint64_t p = 1;
    for (unsigned i = 0; i < n; ++i) p *= Radix;
    return p;
  }
  static constexpr std::uint64_t kBase = power(kDigits);
};

template <unsigned Radix>
std::string radix_encode(ByteView data, std::string_view alphabet) {
  using L = RadixLimbs<Radix>;
  std::size_t zeros = 0;
  while (zeros < data.size() && data[zeros] == 0) ++zeros;
  std::vector<std::uint32_t> limbs;  // little-endian limbs of kBase
  limbs.reserve((data.size() - zeros) * 138 / 100 / L::kDigits + 2);
  std::size_t i = zeros;
  while (i < data.size()) {
    // The first chunk takes what is left over after whole 4-byte chunks.
    const std::size_t take = (data.size() - i) % 4 == 0 ? 4 : (data.size() - i) % 4;
    std::uint64_t carry = 0;
    for (std::size_t k = 0; k < take; ++k) carry = carry << 8 | data[i + k];
    i += take;
    const unsigned shift = static_cast<unsigned>(take * 8);
    for (std::uint32_t& limb : limbs) {
      const std::uint64_t x = static_cast<std::uint64_t>(limb) << shift | carry;
      limb = static_cast<std::uint32_t>(x % L::kBase);
      carry = x / L::kBase;
    }
    while (carry > 0) {
      limbs.push_back(static_cast<std::uint32_t>(carry % L::kBase));
      carry /= L::kBase;
    }
  }
  std::string out(zeros, alphabet[0]);
  out.reserve(zeros + limbs.size() * L::kDigits);
  char digits[L::kDigits];
  for (std::size_t n = limbs.size(); n-- > 0;) {
    std::uint32_t limb = limbs[n];
    for (unsigned d = L::kDigits; d-- > 0;) {
      digits[d] = alphabet[limb % Radix];
      limb /= Radix;
    }
    unsigned first = 0;
    if (n + 1 == limbs.size()) {  // the top limb without its leading zero digits
      while (first + 1 < L::kDigits && digits[first] == alphabet[0]) ++first;
    }
    out.append(digits + first, L::kDigits - first);
  }
  return out;
}

// Each byte's digit value in `alphabet` (upper case too when `fold_case`), 0xFF outside it.
constexpr std::array<std::uint8_t, 256> digit_values(std::string_view alphabet, bool fold_case) {
  std::array<std::uint8_t, 256> values{};
  values.fill(0xFF);
  for (std::size_t i = 0; i < alphabet.size(); ++i) {
    const auto c = static_cast<unsigned char>(alphabet[i]);
    values[c] = static_cast<std::uint8_t>(i);
    if (fold_case && c >= 'a' && c <= 'z') values[c - 'a' + 'A'] = static_cast<std::uint8_t>(i);
  }
  return values;
}

template <unsigned Radix>
Result<Bytes> radix_decode(std::string_view text, std::string_view alphabet,
                           const std::array<std::uint8_t, 256>& values, std::string_view name) {
  using L = RadixLimbs<Radix>;
  std::size_t zeros = 0;
  while (zeros < text.size() && text[zeros] == alphabet[0]) ++zeros;
  std::vector<std::uint32_t> limbs;  // little-endian 32-bit limbs of the number
  limbs.reserve((text.size() - zeros) * 6 / 32 + 2);
  std::size_t i = zeros;
  while (i < text.size()) {
    // The first group takes what is left over after whole groups of kDigits.
    const std::size_t rest = (text.size() - i) % L::kDigits;
    const std::size_t take = rest == 0 ? L::kDigits : rest;
    std::uint64_t carry = 0;
    for (std::size_t k = i; k < i + take; ++k) {
      const std::uint8_t value = values[static_cast<unsigned char>(text[k])];
      if (value == 0xFF) {
        return make_error(fmt::format("bad {} character '{}' at position {} (not in the {} alphabet)", name,
                                      text[k], k, name));
      }
      carry = carry * Radix + value;
    }
    i += take;
    const std::uint64_t multiplier = L::power(static_cast<unsigned>(take));
    for (std::uint32_t& limb : limbs) {
      const std::uint64_t x = limb * multiplier + carry;
      limb = static_cast<std::uint32_t>(x);
      carry = x >> 32;
    }
    if (carry > 0) limbs.push_back(static_cast<std::uint32_t>(carry));
  }
  Bytes out(zeros, 0);
  out.reserve(zeros + limbs.size() * 4);
  for (std::size_t n = limbs.size(); n-- > 0;) {
    const std::uint32_t limb = limbs[n];
    unsigned first = 0;
    if (n + 1 == limbs.size()) {  // the top limb without its leading zero bytes
      while (first < 3 && (limb >> (8 * (3 - first))) == 0) ++first;
    }
    for (unsigned b = first; b < 4; ++b) out.push_back(static_cast<std::uint8_t>(limb >> (8 * (3 - b))));
  }
  return out;
}

// Looked up once per character (CIDs of an IPFS listing of millions are decoded one after
// another).
constexpr auto kBase58Values = digit_values(kBase58Alphabet, false);
constexpr auto kBase36Values = digit_values(kBase36Alphabet, true);
constexpr auto kBase32Values = digit_values(kBase32Alphabet, true);

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

std::string base58btc_encode(ByteView data) { return radix_encode<58>(data, kBase58Alphabet); }

Result<Bytes> base58btc_decode(std::string_view text) {
  return radix_decode<58>(text, kBase58Alphabet, kBase58Values, "base58btc");
}

std::string base36_encode(ByteView data) { return radix_encode<36>(data, kBase36Alphabet); }

Result<Bytes> base36_decode(std::string_view text) {
  return radix_decode<36>(text, kBase36Alphabet, kBase36Values, "base36");
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
