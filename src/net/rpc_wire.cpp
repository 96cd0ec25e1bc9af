// RPC message encoding and decoding; see rpc_wire.hpp for the layout. The decoder checks every
// length against the frame before reading, so any byte string is either a message or an error.
#include "net/rpc_wire.hpp"

#include <cassert>

#include <fmt/core.h>

namespace clusterpin::net {

void encode_rpc(RpcKind kind, std::uint64_t id, std::string_view method, ByteView payload,
                Bytes& out) {
  // Callers check method names (they are compile-time constants in practice).
  assert(method.size() <= kMaxMethodSize);
  out.reserve(out.size() + kRpcHeaderSize + method.size() + payload.size());
  out.push_back(static_cast<std::uint8_t>(kind));
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<std::uint8_t>(id >> shift));
  out.push_back(static_cast<std::uint8_t>(method.size()));
  const ByteView m = as_bytes(method);
  out.insert(out.end(), m.begin(), m.end());
  out.insert(out.end(), payload.begin(), payload.end());
}

Result<RpcMessageView> decode_rpc(ByteView frame) {
  if (frame.size() < kRpcHeaderSize) {
    return make_error(fmt::format("rpc: message of {} bytes is shorter than its {}-byte header",
                                  frame.size(), kRpcHeaderSize));
  }
  const std::uint8_t kind = frame[0];
  if (kind < 1 || kind > 4) return make_error(fmt::format("rpc: unknown message kind {}", kind));
  std::uint64_t id = 0;
  for (int i = 1; i <= 8; ++i) id = (id << 8) | frame[i];
  const std::size_t method_size = frame[9];
  if (frame.size() - kRpcHeaderSize < method_size) {
    return make_error(
        fmt::format("rpc: method name of {} bytes overruns the message", method_size));
  }
  RpcMessageView v;
  v.kind = static_cast<RpcKind>(kind);
  v.id = id;
  v.method =
      std::string_view(reinterpret_cast<const char*>(frame.data()) + kRpcHeaderSize, method_size);
  v.payload = frame.subspan(kRpcHeaderSize + method_size);
  return v;
}

}  // namespace clusterpin::net
