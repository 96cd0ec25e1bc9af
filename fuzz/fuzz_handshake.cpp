// libFuzzer target for the handshake reader: fuzzer bytes arrive as message 1 at a responder, as
// message 2 at an initiator (raw, or with a valid mac2 so the Noise decryption and identity checks
// are reached), or as message 3 after a real exchange. Each must be refused cleanly: never a crash,
// never an accepted handshake, never a remote identity learned from unauthenticated bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "net/noise_handshake.hpp"

using namespace clusterpin;
using namespace clusterpin::net;

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

struct World {
  ClusterKeys keys;
  LocalIdentity alice = LocalIdentity::generate();
  LocalIdentity bob = LocalIdentity::generate();
  World() {
    ClusterSecret secret{};
    secret.fill(7);
    keys = ClusterKeys::derive(secret);
  }
};

const World& world() {
  static const World w;
  return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const World& w = world();
  const ByteView input(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {  // message 1 at a responder
      auto r = PeerHandshake::responder(w.keys, w.bob);
      if (r.read(input).ok()) {
        // Only a correctly mac'd 64-byte message gets here, which the fuzzer cannot forge.
        check(input.size() == kMessage1Size);
      }
      check(!r.remote_identity().has_value());
      break;
    }
    case 1:    // message 2 at an initiator, raw
    case 2: {  // message 2 with a valid mac2 over the fuzzer's body
      auto i = PeerHandshake::initiator(w.keys, w.alice);
      auto m1 = i.write();
      check(m1.ok());
      Bytes m2(input.begin(), input.end());
      if (data[0] % 4 == 2) {
        const auto mac1 = ByteView(*m1).last(kMacSize);
        const auto mac2 = keyed_mac(w.keys.mac2, mac1, m2);
        m2.insert(m2.end(), mac2.begin(), mac2.end());
      }
      check(!i.read(m2).ok());
      check(!i.remote_identity().has_value());
      check(!i.wants_write());
      break;
    }
    case 3: {  // message 3 at a responder after a real exchange
      auto i = PeerHandshake::initiator(w.keys, w.alice);
      auto r = PeerHandshake::responder(w.keys, w.bob);
      auto m1 = i.write();
      check(m1.ok() && r.read(*m1).ok());
      auto m2 = r.write();
      check(m2.ok());
      check(!r.read(input).ok());
      check(!r.done());
      break;
    }
  }
  return 0;
}
