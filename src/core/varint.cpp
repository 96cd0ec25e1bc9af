// Unsigned varint codec with the multiformats restrictions (9 bytes max, minimal form).
#include "core/varint.hpp"

#include <cassert>
#include <fmt/format.h>

namespace clusterpin {

std::uint8_t* write_varint(std::uint8_t* p, std::uint64_t value) {
  // Larger values would need a tenth byte, which multiformats forbids.
  assert(value <= kMaxVarint && "multiformats varints hold at most 63 bits");
  while (value >= 0x80) {
    *p++ = static_cast<std::uint8_t>(value | 0x80);
    value >>= 7;
  }
  *p++ = static_cast<std::uint8_t>(value);
  return p;
}

void append_varint(Bytes& out, std::uint64_t value) {
  std::uint8_t buffer[kMaxVarintBytes];
  out.insert(out.end(), buffer, write_varint(buffer, value));
}

Bytes encode_varint(std::uint64_t value) {
  Bytes out;
  append_varint(out, value);
  return out;
}

Result<Varint> read_varint(ByteView input) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < input.size(); ++i) {
    if (i == kMaxVarintBytes) {
      return make_error("bad varint: longer than 9 bytes (multiformats varints hold at most 63 bits)");
    }
    std::uint8_t byte = input[i];
    value |= static_cast<std::uint64_t>(byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) {
      // A final zero group after the first byte could have been left out: not minimal.
      if (byte == 0 && i > 0) {
        return make_error(fmt::format("bad varint: not minimally encoded ({} bytes for value {})", i + 1,
                                      value));
      }
      return Varint{value, i + 1};
    }
  }
  return make_error(input.empty() ? "bad varint: no bytes left to read"
                                  : "bad varint: input ends inside a varint (last byte has the continuation bit)");
}

}  // namespace clusterpin
