// Hexadecimal and standard base64 (RFC 4648, with padding) text forms of bytes.
// Encoders always succeed; decoders reject anything not in the alphabet and say where.
// Hex decoding accepts both cases; base64 decoding requires the canonical padded form.
#pragma once

#include <string>
#include <string_view>

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace clusterpin {

// Lower-case hex, two digits per byte.
std::string hex_encode(ByteView data);
Result<Bytes> hex_decode(std::string_view text);

// Standard alphabet (A-Z a-z 0-9 + /) with '=' padding to a multiple of 4 characters.
std::string base64_encode(ByteView data);
Result<Bytes> base64_decode(std::string_view text);

}  // namespace clusterpin
