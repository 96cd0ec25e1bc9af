// Text output of the client applets, in ipfs-cluster-ctl's formats (reference §1.1): one line
// per pin, an ID block per peer. Inputs are the API's JSON objects.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace clusterpin::cmd {

// "<cid> | <name> | PIN | Repl. Factor: 2--3 | Allocations: [a b] | Recursive | Metadata: no |
//  Exp: ∞ | Added: 2026-11-24 01:29:54", as ipfs-cluster-ctl prints a pin.
std::string format_pin(std::string_view pin_json);
// "<cid> | <name>:" then one line per peer: "    > <peername> : PINNED | <time> | Attempts: 0 | Priority: false"
std::string format_global_info(std::string_view json);
// The members of a GlobalPinInfo whose entry is cluster_error, as "peername: error".
std::vector<std::string> cluster_errors_of(std::string_view json);
// "<id> | <peername> | Sees N other peers" and its address lines.
std::string format_id(std::string_view id_json);

}  // namespace clusterpin::cmd
