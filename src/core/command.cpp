// Entry payload formats (see command.hpp). Format 1 is encode_ops() of pin.hpp; format 2 is a
// peer's address announcement.
#include "core/command.hpp"

#include "core/wire.hpp"

namespace clusterpin {
namespace {
constexpr std::uint64_t kPeerAddressesFormat = 2;
constexpr std::uint64_t kOpsFormat = 1;
}  // namespace

std::string encode_peer_addresses(const PeerAddresses& peer) {
  WireWriter w;
  w.u64(kPeerAddressesFormat);
  w.bytes(peer.peer);
  w.u64(peer.addrs.size());
  for (const auto& a : peer.addrs) w.bytes(a);
  w.bytes(peer.peername);
  return w.take();
}

Result<Command> decode_command(std::string_view bytes) {
  WireReader peek(bytes);
  std::uint64_t format = peek.u64();
  if (format == kOpsFormat) {
    auto ops = decode_ops(bytes);
    if (!ops) return ops.error();
    return Command(std::move(ops).value());
  }
  if (format != kPeerAddressesFormat) return make_error("corrupt entry: unknown command format");
  PeerAddresses peer;
  peer.peer = std::string(peek.bytes());
  std::uint64_t n = peek.u64();
  for (std::uint64_t i = 0; peek.ok() && i < n && i < 64; ++i) peer.addrs.emplace_back(peek.bytes());
  peer.peername = std::string(peek.bytes());
  if (!peek.ok() || !peek.at_end()) return make_error("corrupt entry: bad peer addresses");
  return Command(std::move(peer));
}

std::string peer_record_text(const PeerAddresses& peer) {
  std::string text;
  for (const auto& a : peer.addrs) text += a + " ";
  return text + "name=" + peer.peername;
}

PeerAddresses parse_peer_record(std::string_view id, std::string_view text) {
  PeerAddresses peer;
  peer.peer = std::string(id);
  while (!text.empty()) {
    auto space = text.find(' ');
    std::string_view word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    if (word.rfind("name=", 0) == 0) {
      // The name is last and may hold spaces: it is the rest of the text.
      peer.peername = std::string(word.substr(5));
      if (!text.empty()) peer.peername += " " + std::string(text);
      break;
    }
    if (!word.empty()) peer.addrs.emplace_back(word);
  }
  return peer;
}

}  // namespace clusterpin
