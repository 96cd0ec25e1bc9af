// Multibase: self-describing text forms of bytes, a one-character prefix naming the base.
// Supported: z base58btc, b/B base32 (RFC 4648, no padding), k/K base36, f/F base16.
// Encoders write the lower-case form; decoders accept either case where the base allows it and
// say which prefix or character is wrong.
#pragma once

#include <string>
#include <string_view>

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace clusterpin {

enum class Multibase { base58btc, base32, base36, base16 };

char multibase_prefix(Multibase base);
std::string_view multibase_name(Multibase base);

// The bare alphabets, without a prefix (a CIDv0 or a peer id is bare base58btc).
std::string base58btc_encode(ByteView data);
Result<Bytes> base58btc_decode(std::string_view text);
std::string base32_encode(ByteView data);
void append_base32(std::string& out, ByteView data);  // base32_encode, appended to out
// base32_encode written at `p` ((8 * size + 4) / 5 bytes); returns the end.
char* write_base32(char* p, ByteView data);
Result<Bytes> base32_decode(std::string_view text);
std::string base36_encode(ByteView data);
Result<Bytes> base36_decode(std::string_view text);

// With the prefix character.
std::string multibase_encode(Multibase base, ByteView data);
void append_multibase(std::string& out, Multibase base, ByteView data);

struct MultibaseDecoded {
  Multibase base;
  Bytes data;
};
Result<MultibaseDecoded> multibase_decode(std::string_view text);

}  // namespace clusterpin
