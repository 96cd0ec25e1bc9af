// ipfs_probe: drives one IpfsConnector call against a real IPFS daemon, for the process tests.
//   ipfs_probe [--pin-timeout MS] [--timeout MS] NODE_MULTIADDR COMMAND [ARGS...]
//   commands: id | pin-add CID [--direct] | pin-update FROM TO | pin-rm CID | pin-ls [TYPE]
//             | pin-ls-one CID | repo-stat | swarm-connect MADDR | swarm-peers | repo-gc
//             | resolve PATH
// Prints JSON lines (CIDs as the connector parses them, CIDv1 in base32), the last one
// {"ok":true,...} or {"error":"..."}; exits 0 on success, 1 on an error, 2 on bad usage.
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/cid.hpp"
#include "net/http_message.hpp"
#include "net/ipfs_connector.hpp"

using namespace clusterpin;
using namespace clusterpin::net;

namespace {

int usage() {
  std::fputs(
      "usage: ipfs_probe [--pin-timeout MS] [--timeout MS] NODE_MULTIADDR COMMAND [ARGS...]\n"
      "commands: id | pin-add CID [--direct] | pin-add-many CID... | pin-update FROM TO | pin-rm CID | pin-ls [TYPE]\n"
      "          | pin-ls-one CID | repo-stat | swarm-connect MADDR | swarm-peers | repo-gc\n"
      "          | resolve PATH\n",
      stderr);
  return 2;
}

std::string quoted(std::string_view text) {
  return "\"" + json_escape(text) + "\"";
}

int report(const Status& status, std::string extra = {}) {
  if (!status) {
    fmt::print("{{\"error\":{}}}\n", quoted(status.error().message));
    return 1;
  }
  fmt::print("{{\"ok\":true{}}}\n", extra);
  return 0;
}

std::optional<Cid> cid_arg(const std::string& text) {
  auto cid = Cid::parse(text);
  if (!cid) {
    fmt::print(stderr, "ipfs_probe: {}\n", cid.error().message);
    return std::nullopt;
  }
  return *cid;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  IpfsConnectorOptions options;
  options.request_timeout = std::chrono::seconds(30);
  options.pin_timeout = std::chrono::seconds(30);
  options.unpin_timeout = std::chrono::seconds(30);
  while (args.size() >= 2 && (args[0] == "--pin-timeout" || args[0] == "--timeout")) {
    std::chrono::milliseconds ms(std::stoll(args[1]));
    if (args[0] == "--pin-timeout") {
      options.pin_timeout = ms;
    } else {
      options.request_timeout = options.unpin_timeout = ms;
    }
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.size() < 2) return usage();
  options.node_multiaddress = args[0];
  const std::string command = args[1];
  std::vector<std::string> rest(args.begin() + 2, args.end());

  asio::io_context io;
  IpfsConnector connector(io, options);
  int code = 2;
  size_t count = 0;  // pins listed by pin-ls (outlives the branch: the callbacks run in run())
  auto run = [&] { io.run(); };

  if (command == "id" && rest.empty()) {
    connector.id([&](Result<IpfsId> id) {
      if (!id) {
        code = report(id.error());
        return;
      }
      std::string addresses;
      for (const auto& a : id->addresses) addresses += (addresses.empty() ? "" : ",") + quoted(a);
      code = report({}, fmt::format(",\"id\":{},\"addresses\":[{}]", quoted(id->id), addresses));
    });
  } else if (command == "pin-add" &&
             (rest.size() == 1 || (rest.size() == 2 && rest[1] == "--direct"))) {
    auto cid = cid_arg(rest[0]);
    if (!cid) return 2;
    PinMode mode = rest.size() == 2 ? PinMode::direct : PinMode::recursive;
    connector.pin_add(*cid, mode, [&](Status s) { code = report(s); });
  } else if (command == "pin-add-many" && !rest.empty()) {
    std::vector<Cid> cids;
    for (const auto& text : rest) {
      auto cid = cid_arg(text);
      if (!cid) return 2;
      cids.push_back(*cid);
    }
    connector.pin_add_many(std::move(cids), [&](Status s) { code = report(s); });
  } else if (command == "pin-update" && rest.size() == 2) {
    auto from = cid_arg(rest[0]);
    auto to = cid_arg(rest[1]);
    if (!from || !to) return 2;
    connector.pin_update(*from, *to, [&](Status s) { code = report(s); });
  } else if (command == "pin-rm" && rest.size() == 1) {
    auto cid = cid_arg(rest[0]);
    if (!cid) return 2;
    connector.pin_rm(*cid, [&](Status s) { code = report(s); });
  } else if (command == "pin-ls" && rest.size() <= 1) {
    std::string type = rest.empty() ? "all" : rest[0];
    connector.pin_ls(
        type,
        [&](const Cid& cid, std::string_view pin_type) {
          fmt::print("{{\"cid\":{},\"type\":{}}}\n", quoted(cid.to_string()), quoted(pin_type));
          ++count;
          return true;
        },
        [&](Status s) { code = report(s, fmt::format(",\"count\":{}", count)); });
  } else if (command == "pin-ls-one" && rest.size() == 1) {
    auto cid = cid_arg(rest[0]);
    if (!cid) return 2;
    connector.pin_ls_one(*cid, [&](Result<bool> pinned) {
      if (!pinned) {
        code = report(pinned.error());
        return;
      }
      code = report({}, fmt::format(",\"pinned\":{}", *pinned ? "true" : "false"));
    });
  } else if (command == "repo-stat" && rest.empty()) {
    connector.repo_stat([&](Result<RepoStat> stat) {
      if (!stat) {
        code = report(stat.error());
        return;
      }
      code = report({}, fmt::format(",\"repo_size\":{},\"storage_max\":{}", stat->repo_size,
                                    stat->storage_max));
    });
  } else if (command == "swarm-connect" && rest.size() == 1) {
    connector.swarm_connect(rest[0], [&](Status s) { code = report(s); });
  } else if (command == "swarm-peers" && rest.empty()) {
    connector.swarm_peers([&](Result<std::vector<std::string>> peers) {
      if (!peers) {
        code = report(peers.error());
        return;
      }
      std::string list;
      for (const auto& id : *peers) list += (list.empty() ? "" : ",") + quoted(id);
      code = report({}, fmt::format(",\"peers\":[{}]", list));
    });
  } else if (command == "resolve" && rest.size() == 1) {
    connector.resolve(rest[0], [&](Result<Cid> cid) {
      if (!cid) {
        code = report(cid.error());
        return;
      }
      code = report({}, fmt::format(",\"cid\":{}", quoted(cid->to_string())));
    });
  } else if (command == "repo-gc" && rest.empty()) {
    connector.repo_gc([&](Result<std::vector<Cid>> removed) {
      if (!removed) {
        code = report(removed.error());
        return;
      }
      std::string list;
      for (const auto& cid : *removed) list += (list.empty() ? "" : ",") + quoted(cid.to_string());
      code = report({}, fmt::format(",\"removed\":[{}]", list));
    });
  } else {
    return usage();
  }
  run();
  std::fflush(stdout);
  return code;
}
