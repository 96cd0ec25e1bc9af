// Multibase codecs against the multiformats/multibase test vectors ("yes mani !" with zero, one
// and two leading zero bytes, and the case-insensitivity vectors), plus error messages.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/multibase.hpp"

using namespace clusterpin;

namespace {

struct Vector {
  std::string plain;
  const char* base58btc;
  const char* base32;
  const char* base36;
  const char* base16;
};

const Vector kVectors[] = {
    {"yes mani !", "z7paNL19xttacUY", "bpfsxgidnmfxgsibb", "k2lcpzo5yikidynfl", "f796573206d616e692021"},
    {std::string("\0yes mani !", 11), "z17paNL19xttacUY", "bab4wk4zanvqw42jaee", "k02lcpzo5yikidynfl",
     "f00796573206d616e692021"},
    {std::string("\0\0yes mani !", 12), "z117paNL19xttacUY", "baaahszltebwwc3tjeaqq", "k002lcpzo5yikidynfl",
     "f0000796573206d616e692021"},
};

}  // namespace

TEST_CASE("multibase encoding matches the published test vectors") {
  for (const Vector& v : kVectors) {
    CAPTURE(v.base58btc);
    Bytes data = to_bytes(v.plain);
    CHECK(multibase_encode(Multibase::base58btc, data) == v.base58btc);
    CHECK(multibase_encode(Multibase::base32, data) == v.base32);
    CHECK(multibase_encode(Multibase::base36, data) == v.base36);
    CHECK(multibase_encode(Multibase::base16, data) == v.base16);
  }
}

TEST_CASE("multibase decoding of the published vectors gives the bytes and the base") {
  for (const Vector& v : kVectors) {
    for (auto [text, base] : {std::pair{v.base58btc, Multibase::base58btc}, std::pair{v.base32, Multibase::base32},
                              std::pair{v.base36, Multibase::base36}, std::pair{v.base16, Multibase::base16}}) {
      CAPTURE(std::string(text));
      Result<MultibaseDecoded> decoded = multibase_decode(text);
      REQUIRE(decoded.ok());
      CHECK(decoded->base == base);
      CHECK(decoded->data == to_bytes(v.plain));
    }
  }
}

TEST_CASE("multibase decoding accepts upper-case prefixes and mixed case where the base allows it") {
  for (const char* text : {"BPFSXGIDNMFXGSIBB", "K2LCPZO5YIKIDYNFL", "F796573206D616E692021"}) {
    CAPTURE(std::string(text));
    Result<MultibaseDecoded> decoded = multibase_decode(text);
    REQUIRE(decoded.ok());
    CHECK(decoded->data == to_bytes("yes mani !"));
  }
  // The multibase case-insensitivity vectors all decode to "hello world".
  for (const char* text : {"f68656c6c6f20776F726C64", "F68656c6c6f20776F726C64", "bnbswy3dpeB3W64TMMQ",
                           "Bnbswy3dpeB3W64TMMQ", "kfUvrsIvVnfRbjWaJo", "KfUVrSIVVnFRbJWAJo"}) {
    CAPTURE(std::string(text));
    Result<MultibaseDecoded> decoded = multibase_decode(text);
    REQUIRE(decoded.ok());
    CHECK(decoded->data == to_bytes("hello world"));
  }
}

TEST_CASE("base58btc matches the IETF draft examples") {
  CHECK(base58btc_encode(to_bytes("Hello World!")) == "2NEpo7TZRRrLZSi2U");
  CHECK(base58btc_encode(to_bytes("The quick brown fox jumps over the lazy dog.")) ==
        "USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z");
  CHECK(base58btc_encode(Bytes{0x00, 0x00, 0x28, 0x7f, 0xb4, 0xcd}) == "11233QC4");
  Result<Bytes> back = base58btc_decode("11233QC4");
  REQUIRE(back.ok());
  CHECK(*back == Bytes{0x00, 0x00, 0x28, 0x7f, 0xb4, 0xcd});
  CHECK(base58btc_encode(Bytes{}) == "");
}

TEST_CASE("multibase round-trips arbitrary bytes in every supported base") {
  Bytes data;
  for (int i = 0; i < 70; ++i) {
    for (Multibase base : {Multibase::base58btc, Multibase::base32, Multibase::base36, Multibase::base16}) {
      Result<MultibaseDecoded> back = multibase_decode(multibase_encode(base, data));
      REQUIRE(back.ok());
      CHECK(back->data == data);
    }
    data.push_back(static_cast<std::uint8_t>(i * 97 + 13));
  }
}

namespace {

// The textbook conversion, one byte into every digit at a time: what the limb-wise codecs
// must agree with.
std::string reference_encode(const Bytes& data, std::string_view alphabet) {
  const unsigned radix = static_cast<unsigned>(alphabet.size());
  std::size_t zeros = 0;
  while (zeros < data.size() && data[zeros] == 0) ++zeros;
  std::vector<unsigned> digits;
  for (std::size_t i = zeros; i < data.size(); ++i) {
    unsigned carry = data[i];
    for (unsigned& digit : digits) {
      carry += digit << 8;
      digit = carry % radix;
      carry /= radix;
    }
    for (; carry > 0; carry /= radix) digits.push_back(carry % radix);
  }
  std::string out(zeros, alphabet[0]);
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) out.push_back(alphabet[*it]);
  return out;
}

Bytes reference_decode(std::string_view text, std::string_view alphabet) {
  const unsigned radix = static_cast<unsigned>(alphabet.size());
  std::size_t zeros = 0;
  while (zeros < text.size() && text[zeros] == alphabet[0]) ++zeros;
  std::vector<unsigned> bytes;
  for (std::size_t i = zeros; i < text.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z' && alphabet.find(c) == std::string_view::npos) c = static_cast<char>(c - 'A' + 'a');
    unsigned carry = static_cast<unsigned>(alphabet.find(c));
    for (unsigned& byte : bytes) {
      carry += byte * radix;
      byte = carry & 0xff;
      carry >>= 8;
    }
    for (; carry > 0; carry >>= 8) bytes.push_back(carry & 0xff);
  }
  Bytes out(zeros, 0);
  for (auto it = bytes.rbegin(); it != bytes.rend(); ++it) out.push_back(static_cast<std::uint8_t>(*it));
  return out;
}

}  // namespace

TEST_CASE("base58btc and base36 agree with the digit-by-digit conversion for random bytes and text") {
  constexpr std::string_view b58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  constexpr std::string_view b36 = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::mt19937_64 rng(58);
  for (int round = 0; round < 3000; ++round) {
    // Lengths across every remainder of the 4-byte and 5/6-digit limbs, with and without
    // leading zero bytes, and some all-zero or all-0xFF inputs.
    Bytes data(rng() % 4, 0);
    const std::size_t n = rng() % 90;
    const int fill = static_cast<int>(rng() % 8);
    for (std::size_t i = 0; i < n; ++i) {
      data.push_back(fill == 0 ? 0 : fill == 1 ? 0xFF : static_cast<std::uint8_t>(rng()));
    }
    CAPTURE(data.size());
    const std::string t58 = base58btc_encode(data);
    CHECK(t58 == reference_encode(data, b58));
    CHECK(base58btc_decode(t58).value() == data);
    const std::string t36 = base36_encode(data);
    CHECK(t36 == reference_encode(data, b36));
    CHECK(base36_decode(t36).value() == data);

    // Text that no encoder wrote: any digits, leading zero digits, base36 in either case.
    std::string text58(rng() % 3, '1');
    std::string text36(rng() % 3, '0');
    const std::size_t digits = rng() % 120;
    for (std::size_t i = 0; i < digits; ++i) {
      text58.push_back(b58[rng() % b58.size()]);
      char c = b36[rng() % b36.size()];
      if (rng() % 2 && c >= 'a') c = static_cast<char>(c - 'a' + 'A');
      text36.push_back(c);
    }
    CAPTURE(text58);
    CAPTURE(text36);
    CHECK(base58btc_decode(text58).value() == reference_decode(text58, b58));
    CHECK(base36_decode(text36).value() == reference_decode(text36, b36));
  }
}

TEST_CASE("base58btc is case-sensitive and names the first character outside its alphabet") {
  for (std::string_view bad : {"0", "O", "I", "l", "+", " "}) {
    const std::string text = "2NEpo" + std::string(bad) + "7TZR";
    Result<Bytes> decoded = base58btc_decode(text);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().message ==
          fmt::format("bad base58btc character '{}' at position 5 (not in the base58btc alphabet)", bad));
  }
  Result<Bytes> b36 = base36_decode("abc_");
  REQUIRE_FALSE(b36.ok());
  CHECK(b36.error().message == "bad base36 character '_' at position 3 (not in the base36 alphabet)");
}

TEST_CASE("append_base32 and append_multibase add the encoding after what the string holds") {
  std::mt19937_64 rng(5);
  for (std::size_t n = 0; n < 40; ++n) {
    Bytes data(n);
    for (auto& b : data) b = static_cast<std::uint8_t>(rng());
    std::string out = "x";
    append_base32(out, data);
    CHECK(out == "x" + base32_encode(data));
    for (Multibase base : {Multibase::base58btc, Multibase::base32, Multibase::base36, Multibase::base16}) {
      std::string m = "y";
      append_multibase(m, base, data);
      CHECK(m == "y" + multibase_encode(base, data));
    }
  }
}

TEST_CASE("an unknown multibase prefix is named with the accepted ones") {
  Result<MultibaseDecoded> decoded = multibase_decode("xabc");
  REQUIRE_FALSE(decoded.ok());
  CHECK(decoded.error().message ==
        "unknown multibase prefix 'x' (accepted: z base58btc, b base32, k base36, f base16)");
  CHECK_FALSE(multibase_decode("").ok());
}

TEST_CASE("characters outside the alphabet are reported with their position") {
  Result<MultibaseDecoded> b58 = multibase_decode("z7paNL0");  // '0' is not base58btc
  REQUIRE_FALSE(b58.ok());
  CHECK(b58.error().message.find("'0' at position 5") != std::string::npos);
  Result<MultibaseDecoded> b32 = multibase_decode("bpfsx1");  // '1' is not base32
  REQUIRE_FALSE(b32.ok());
  CHECK(b32.error().message.find("'1'") != std::string::npos);
  CHECK_FALSE(multibase_decode("bp").ok());    // 1 leftover character cannot be whole bytes
  CHECK_FALSE(multibase_decode("bpfs").ok());  // 3 leftover characters cannot be whole bytes
}

TEST_CASE("base32 decoding accepts exactly the alphabet in either case, for every byte value") {
  const std::string_view alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    const bool letter = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
    const bool accepted = letter || (ch >= '2' && ch <= '7');
    CAPTURE(c);
    // Two characters make one byte: 'a' (0) then this one's 5 bits, of which the top 3 count.
    Result<MultibaseDecoded> decoded = multibase_decode(std::string("ba") + ch);
    CHECK(decoded.ok() == accepted);
    if (!accepted) continue;
    const auto value = alphabet.find(letter ? static_cast<char>(ch | 0x20) : ch);
    REQUIRE(decoded->data.size() == 1);
    CHECK(decoded->data[0] == static_cast<std::uint8_t>(value >> 2));
  }
}

TEST_CASE("base32 encoding gives RFC 4648's vectors (lower case, unpadded) for every tail length") {
  // RFC 4648 section 10: "", "f", "fo", "foo", "foob", "fooba", "foobar".
  const std::pair<const char*, const char*> kRfc[] = {
      {"", ""},           {"f", "my"},           {"fo", "mzxq"},         {"foo", "mzxw6"},
      {"foob", "mzxw6yq"}, {"fooba", "mzxw6ytb"}, {"foobar", "mzxw6ytboi"},
  };
  for (const auto& [plain, encoded] : kRfc) {
    CAPTURE(plain);
    CHECK(base32_encode(to_bytes(plain)) == encoded);
  }
  // Against a bit-at-a-time reference, lengths 0-45 (groups of 5 bytes and every tail).
  std::mt19937 random(7);
  for (std::size_t n = 0; n <= 45; ++n) {
    Bytes data(n);
    for (auto& b : data) b = static_cast<std::uint8_t>(random());
    std::string expected;
    for (std::size_t bit = 0; bit < n * 8; bit += 5) {
      unsigned value = 0;
      for (std::size_t k = bit; k < bit + 5; ++k) {
        unsigned b = k < n * 8 ? (data[k / 8] >> (7 - k % 8)) & 1u : 0u;
        value = value << 1 | b;
      }
      expected += "abcdefghijklmnopqrstuvwxyz234567"[value];
    }
    CAPTURE(n);
    CHECK(base32_encode(data) == expected);
  }
}
