// What a Normal Raft entry carries: a batch of pinset changes, or a peer announcing the
// addresses others reach it at (so every peer learns every member's address through the log).
// decode_command() looks at the leading format number to tell them apart.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/pin.hpp"
#include "core/result.hpp"

namespace clusterpin {

struct PeerAddresses {
  std::string peer;                // peer id text
  std::vector<std::string> addrs;  // multiaddrs ending in /p2p/<peer>
  std::string peername;
};

using Command = std::variant<std::vector<PinsetOp>, PeerAddresses>;

std::string encode_peer_addresses(const PeerAddresses& peer);
Result<Command> decode_command(std::string_view bytes);

// The peers table stores addresses as one text: multiaddrs separated by spaces, then the name.
std::string peer_record_text(const PeerAddresses& peer);
PeerAddresses parse_peer_record(std::string_view id, std::string_view text);

}  // namespace clusterpin
