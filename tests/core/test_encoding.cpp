// Hex, base64 and varint codecs: RFC 4648 vectors, round trips, and the errors for bad input.
#include <doctest/doctest.h>

#include <initializer_list>
#include <string>

#include "core/encoding.hpp"
#include "core/varint.hpp"

using namespace clusterpin;

TEST_CASE("hex encodes lower-case and decodes either case") {
  CHECK(hex_encode(to_bytes("yes mani !")) == "796573206d616e692021");
  Result<Bytes> upper = hex_decode("796573206D616E692021");
  REQUIRE(upper.ok());
  CHECK(*upper == to_bytes("yes mani !"));
  CHECK(hex_encode(Bytes{}) == "");
}

TEST_CASE("hex decoding names the odd length or the bad character") {
  Result<Bytes> odd = hex_decode("abc");
  REQUIRE_FALSE(odd.ok());
  CHECK(odd.error().message.find("odd length 3") != std::string::npos);
  Result<Bytes> bad = hex_decode("0g");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("'g' at position 1") != std::string::npos);
}

TEST_CASE("base64 matches the RFC 4648 test vectors both ways") {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (auto [plain, encoded] : vectors) {
    CAPTURE(std::string(plain));
    CHECK(base64_encode(to_bytes(plain)) == encoded);
    Result<Bytes> decoded = base64_decode(encoded);
    REQUIRE(decoded.ok());
    CHECK(*decoded == to_bytes(plain));
  }
}

TEST_CASE("base64 round-trips every byte value") {
  Bytes all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<std::uint8_t>(i));
  for (std::size_t n = 0; n < all.size(); n += 37) {
    Bytes part(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
    Result<Bytes> back = base64_decode(base64_encode(part));
    REQUIRE(back.ok());
    CHECK(*back == part);
  }
}

TEST_CASE("base64 decoding refuses missing padding, bad characters and non-canonical bits") {
  CHECK_FALSE(base64_decode("Zg").ok());
  Result<Bytes> bad = base64_decode("Zm9*");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("'*' at position 3") != std::string::npos);
  CHECK_FALSE(base64_decode("Zh==").ok());  // 'h' leaves non-zero bits after "f"
  CHECK_FALSE(base64_decode("Zg=a").ok());
}

TEST_CASE("decoding errors never echo the input, which may be a secret") {
  const char* secret = "c2VjcmV0LXRleHQ*";
  Result<Bytes> b64 = base64_decode(secret);
  REQUIRE_FALSE(b64.ok());
  CHECK(b64.error().message.find("c2VjcmV0") == std::string::npos);
  Result<Bytes> hex = hex_decode("73656372657g");
  REQUIRE_FALSE(hex.ok());
  CHECK(hex.error().message.find("736563") == std::string::npos);
}

TEST_CASE("varints encode in minimal LEB128 form") {
  CHECK(encode_varint(0) == Bytes{0x00});
  CHECK(encode_varint(1) == Bytes{0x01});
  CHECK(encode_varint(127) == Bytes{0x7f});
  CHECK(encode_varint(128) == Bytes{0x80, 0x01});
  CHECK(encode_varint(255) == Bytes{0xff, 0x01});
  CHECK(encode_varint(300) == Bytes{0xac, 0x02});
  CHECK(encode_varint(16384) == Bytes{0x80, 0x80, 0x01});
  CHECK(encode_varint(0xb220) == Bytes{0xa0, 0xe4, 0x02});
  CHECK(encode_varint(kMaxVarint).size() == 9);
}

TEST_CASE("varints round-trip and report the bytes consumed") {
  for (std::uint64_t value : std::initializer_list<std::uint64_t>{0, 1, 127, 128, 300, 0x0129, 1ull << 35, kMaxVarint}) {
    CAPTURE(value);
    Bytes bytes = encode_varint(value);
    bytes.push_back(0xee);  // a following byte must be left alone
    Result<Varint> read = read_varint(bytes);
    REQUIRE(read.ok());
    CHECK(read->value == value);
    CHECK(read->length == bytes.size() - 1);
  }
}

TEST_CASE("varint decoding refuses truncated, overlong and non-minimal input") {
  Result<Varint> empty = read_varint(Bytes{});
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().message.starts_with("bad varint: "));
  Result<Varint> truncated = read_varint(Bytes{0x80});
  REQUIRE_FALSE(truncated.ok());
  CHECK(truncated.error().message.find("ends inside") != std::string::npos);
  Result<Varint> ten = read_varint(Bytes{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01});
  REQUIRE_FALSE(ten.ok());
  CHECK(ten.error().message.find("9 bytes") != std::string::npos);
  Result<Varint> padded = read_varint(Bytes{0x81, 0x00});
  REQUIRE_FALSE(padded.ok());
  CHECK(padded.error().message.find("not minimally encoded") != std::string::npos);
  CHECK(read_varint(Bytes{0x00}).ok());
}
