// `clusterpin peers ls|rm`: list the cluster's peers, or remove one (Raft membership change).
#include <string>
#include <vector>

#include "cmd/applet.hpp"
#include "cmd/api_client.hpp"
#include "cmd/cli.hpp"
#include "cmd/format.hpp"
#include "core/peer_id.hpp"

#include <fmt/core.h>

namespace clusterpin::cmd {
namespace {

void declare_ls(cxxopts::Options& o) { add_client_options(o); }

void declare_rm(cxxopts::Options& o) {
  add_client_options(o);
  o.add_options()("peer", "Peer id to remove", cxxopts::value<std::string>());
  o.parse_positional({"peer"});
  o.positional_help("<peer-id>");
}

int run_ls(const cxxopts::ParseResult& args) {
  auto client = ApiClient::from_args(args);
  if (!client) return usage_error("peers ls", client.error().message);
  auto response = client->call("GET", "/peers", {}, [&](std::string_view line) {
    std::string json(line);
    fmt::print("{}\n", client->json_output() ? pretty_json(json) : format_id(json));
    return true;
  });
  if (!response) return transport_error("peers ls", response.error());
  if (int code = check_response(*response, client->json_output()); code != kExitOk) return code;
  if (!response->stream_error().empty()) {
    fmt::print(stderr, "clusterpin peers ls: the listing was cut short: {}\n",
               response->stream_error());
    return kExitApiError;
  }
  return kExitOk;
}

int run_rm(const cxxopts::ParseResult& args) {
  if (args.count("peer") == 0) return usage_error("peers rm", "no peer id given");
  std::string peer = args["peer"].as<std::string>();
  if (auto id = PeerId::parse(peer); !id) return usage_error("peers rm", id.error().message);
  auto client = ApiClient::from_args(args);
  if (!client) return usage_error("peers rm", client.error().message);
  auto response = client->call("DELETE", "/peers/" + peer);
  if (!response) return transport_error("peers rm", response.error());
  if (int code = check_response(*response, client->json_output()); code != kExitOk) return code;
  // --enc json: what the API answered (nothing for its 204 No Content), as ipfs-cluster-ctl.
  if (client->json_output()) {
    if (!response->body.empty()) print_pretty_json(response->body);
    return kExitOk;
  }
  fmt::print("removed {}\n", peer);
  return kExitOk;
}

constexpr Subcommand kSubcommands[] = {
    {"ls", "List the cluster's peers", declare_ls, run_ls},
    {"rm", "Remove a peer from the cluster", declare_rm, run_rm},
};

}  // namespace

int run_peers(int argc, char** argv) { return run_subcommands("peers", kSubcommands, argc, argv); }

}  // namespace clusterpin::cmd
