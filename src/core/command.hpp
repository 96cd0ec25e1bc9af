// What a Normal Raft entry carries: a batch of pinset changes, or a peer announcing the
// addresses others reach it at (so every peer learns every member's address through the log).
// decode_command() looks at the leading format number to tell them apart. A batch of pinset
// changes may come with the request id of the peer that proposed it (format 3, see RequestId).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/pin.hpp"
#include "core/request_id.hpp"
#include "core/result.hpp"

namespace clusterpin {

struct PeerAddresses {
  std::string peer;                // peer id text
  std::vector<std::string> addrs;  // multiaddrs ending in /p2p/<peer>
  std::string peername;
};

using Command = std::variant<std::vector<PinsetOp>, PeerAddresses>;

std::string encode_peer_addresses(const PeerAddresses& peer);
// Decodes format 1, 2, and 3 (the request id is skipped: see split_request).
Result<Command> decode_command(std::string_view bytes);

// `command` (format 1) with `id` in front, as format 3.
std::string with_request_id(const RequestId& id, std::string_view command);
// An entry's request id (nullopt for formats 1 and 2) and the command bytes behind it.
struct SplitRequest {
  std::optional<RequestId> id;
  std::string_view command;
};
Result<SplitRequest> split_request(std::string_view bytes);

// The peers table stores addresses as one text: multiaddrs separated by spaces, then the name.
std::string peer_record_text(const PeerAddresses& peer);
PeerAddresses parse_peer_record(std::string_view id, std::string_view text);

}  // namespace clusterpin
