// libFuzzer target for the transport frame decoder and the RPC message decoder. Mode 0 feeds
// arbitrary bytes (split at fuzzer-chosen points) to a FrameOpener: it must refuse or wait, never
// crash or over-read. Mode 1 seals fuzzer-chosen payloads and opens them again: every payload must
// come back unchanged, across rekeys, and the RPC decoder must accept or refuse each safely.
#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "net/frame.hpp"
#include "net/rpc_wire.hpp"

using namespace clusterpin;
using namespace clusterpin::net;

namespace {

noise::CipherState fixed_cipher() {
  noise::Key k{};
  k[0] = 1;
  noise::CipherState c;
  c.initialize_key(k);
  return c;
}

void check(bool condition) {
  if (!condition) std::abort();  // a broken property must be a crash the fuzzer reports
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const FrameLimits limits{.max_plaintext = 4096, .rekey_interval = 3};
  const std::uint8_t mode = data[0] & 1;
  const std::size_t step = 1 + data[1] % 64;
  const ByteView input(data + 2, size - 2);
  if (mode == 0) {
    FrameOpener opener(fixed_cipher(), limits);
    Bytes plaintext;
    for (std::size_t at = 0; at < input.size(); at += step) {
      opener.feed(input.subspan(at, std::min(step, input.size() - at)));
      for (;;) {
        Result<bool> r = opener.next(plaintext);
        if (!r || !*r) break;
        (void)decode_rpc(plaintext);
      }
      check(opener.bytes_wanted() >= 1);
    }
    return 0;
  }
  FrameSealer sealer(fixed_cipher(), limits);
  FrameOpener opener(fixed_cipher(), limits);
  Bytes wire;
  std::size_t sealed = 0;
  for (std::size_t at = 0; at < input.size(); at += step) {
    const ByteView chunk = input.subspan(at, std::min(step, input.size() - at));
    check(sealer.seal(chunk, wire).ok());
    ++sealed;
  }
  opener.feed(wire);
  Bytes plaintext;
  std::size_t opened = 0, at = 0;
  for (;;) {
    Result<bool> r = opener.next(plaintext);
    check(r.ok());
    if (!*r) break;
    const ByteView expected = input.subspan(at, std::min(step, input.size() - at));
    check(plaintext.size() == expected.size() &&
          std::equal(plaintext.begin(), plaintext.end(), expected.begin()));
    (void)decode_rpc(plaintext);
    at += step;
    ++opened;
  }
  check(opened == sealed);
  return 0;
}
