// Unsigned varints as multiformats uses them (LEB128, 7 bits per byte, low group first).
// Decoding enforces the multiformats rules: at most 9 bytes (values below 2^63) and minimal
// encoding, so each value has exactly one binary form and binary equality means value equality.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace clusterpin {

// The largest value the 9-byte limit allows.
inline constexpr std::uint64_t kMaxVarint = (std::uint64_t{1} << 63) - 1;
inline constexpr std::size_t kMaxVarintBytes = 9;  // 63 bits, 7 per byte

struct Varint {
  std::uint64_t value = 0;
  std::size_t length = 0;  // bytes consumed
};

// Writes the minimal encoding of value (which must be <= kMaxVarint) at `p` (at most
// kMaxVarintBytes); returns the end.
std::uint8_t* write_varint(std::uint8_t* p, std::uint64_t value);
// The same, appended to out.
void append_varint(Bytes& out, std::uint64_t value);
Bytes encode_varint(std::uint64_t value);

// Reads one varint from the start of input; errors begin with "bad varint: ".
Result<Varint> read_varint(ByteView input);

}  // namespace clusterpin
