// The RPC message inside one link frame: kind (1 byte), id (8 bytes big-endian), method length
// (1 byte), method, payload. Decoding never reads past the frame and rejects unknown kinds, so a
// buggy peer's message is an error on that link rather than undefined behaviour.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace clusterpin::net {

enum class RpcKind : std::uint8_t {
  request = 1,   // expects a response or failure with the same id
  response = 2,  // payload is the answer
  failure = 3,   // payload is a UTF-8 error message from the remote handler
  one_way = 4,   // no answer; id is 0
};

inline constexpr std::size_t kRpcHeaderSize = 1 + 8 + 1;
inline constexpr std::size_t kMaxMethodSize = 255;

// A decoded message; method and payload point into the frame it was decoded from.
struct RpcMessageView {
  RpcKind kind;
  std::uint64_t id;
  std::string_view method;
  ByteView payload;
};

// Appends the encoded message to out. method must be at most kMaxMethodSize bytes.
void encode_rpc(RpcKind kind, std::uint64_t id, std::string_view method, ByteView payload,
                Bytes& out);
Result<RpcMessageView> decode_rpc(ByteView frame);

}  // namespace clusterpin::net
