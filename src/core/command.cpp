// Entry payload formats (see command.hpp). Format 1 is encode_ops() of pin.hpp; format 2 is a
// peer's address announcement; format 3 is a request id (session, seq, done_below) followed by
// a format 1 entry.
#include "core/command.hpp"

#include "core/wire.hpp"

namespace clusterpin {
namespace {
constexpr std::uint64_t kPeerAddressesFormat = 2;
constexpr std::uint64_t kOpsFormat = 1;
constexpr std::uint64_t kRequestFormat = 3;
}  // namespace

std::string with_request_id(const RequestId& id, std::string_view command) {
  WireWriter w;
  w.u64(kRequestFormat);
  w.u64(id.session);
  w.u64(id.seq);
  w.u64(id.done_below);
  w.str().append(command);
  return w.take();
}

Result<SplitRequest> split_request(std::string_view bytes) {
  WireReader r(bytes);
  if (r.u64() != kRequestFormat || !r.ok()) return SplitRequest{std::nullopt, bytes};
  RequestId id;
  id.session = r.u64();
  id.seq = r.u64();
  id.done_below = r.u64();
  if (!r.ok()) return make_error("corrupt entry: bad request id");
  std::string_view rest = bytes.substr(r.position());
  if (WireReader inner(rest); inner.u64() != kOpsFormat || !inner.ok())
    return make_error("corrupt entry: a request id must be followed by pinset changes");
  return SplitRequest{id, rest};
}

std::string encode_peer_addresses(const PeerAddresses& peer) {
  WireWriter w;
  w.u64(kPeerAddressesFormat);
  w.bytes(peer.peer);
  w.u64(peer.addrs.size());
  for (const auto& a : peer.addrs) w.bytes(a);
  w.bytes(peer.peername);
  return w.take();
}

Result<Command> decode_command(std::string_view whole) {
  auto split = split_request(whole);
  if (!split) return split.error();
  std::string_view bytes = split->command;
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
