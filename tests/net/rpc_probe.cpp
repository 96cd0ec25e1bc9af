// rpc_probe: makes one RPC call to a running peer over a secure peer link, as a peer of another
// version (or a faulty one) holding the cluster secret could, for the process tests.
//   rpc_probe SECRET_HEX PEER_MULTIADDR METHOD PAYLOAD_HEX
// Prints {"ok":true,"reply_hex":"..."} or {"error":"..."}; exits 0 on an answer, 1 on an error,
// 2 on bad usage. It uses a fresh identity.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include <asio.hpp>
#include <fmt/format.h>

#include "core/config.hpp"
#include "core/encoding.hpp"
#include "core/identity.hpp"
#include "core/json_text.hpp"
#include "core/multiaddr.hpp"
#include "core/sodium_init.hpp"
#include "net/rpc.hpp"

using namespace clusterpin;

namespace {

int fail(const std::string& message, int code) {
  std::string out;
  append_json_string(out, message);
  fmt::print("{{\"error\":{}}}\n", out);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fputs("usage: rpc_probe SECRET_HEX PEER_MULTIADDR METHOD PAYLOAD_HEX\n", stderr);
    return 2;
  }
  initialize_sodium();
  auto secret = decode_secret(argv[1]);
  auto peer = Multiaddr::parse(argv[2]);
  auto payload = hex_decode(argv[4]);
  if (!secret || secret->size() != 32) return fail("bad secret", 2);
  if (!peer || !peer->peer_id()) return fail("bad peer multiaddr (it needs /p2p/<peer id>)", 2);
  if (!payload) return fail("bad payload hex", 2);

  asio::io_context io;
  net::RpcOptions options;
  std::copy(secret->begin(), secret->end(), options.secret.begin());
  options.network_timeout = std::chrono::seconds(10);
  options.log = [](const std::string&) {};
  net::RpcEndpoint rpc(io, Identity::generate(), options);
  if (auto s = rpc.add_peer(*peer); !s) return fail(s.error().message, 1);
  int code = 1;
  rpc.call(*peer->peer_id(), argv[3], ByteView(payload->data(), payload->size()),
           [&](Result<Bytes> r) {
             if (r) {
               fmt::print("{{\"ok\":true,\"reply_hex\":\"{}\"}}\n",
                          hex_encode(ByteView(r->data(), r->size())));
               code = 0;
             } else {
               code = fail(r.error().message, 1);
             }
             rpc.close();
             io.stop();
           });
  io.run();
  return code;
}
