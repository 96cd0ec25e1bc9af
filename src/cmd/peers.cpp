// `clusterpin peers ls|rm`: list the cluster's peers, or remove one (Raft membership change).
#include <string>
#include <vector>

#include "cmd/applet.hpp"
#include "cmd/cli.hpp"

namespace clusterpin::cmd {
namespace {

void declare_ls(cxxopts::Options& o) { add_client_options(o); }

void declare_rm(cxxopts::Options& o) {
  add_client_options(o);
  o.add_options()("peer", "Peer id to remove", cxxopts::value<std::string>());
  o.parse_positional({"peer"});
  o.positional_help("<peer-id>");
}

int run_ls(const cxxopts::ParseResult&) { return not_implemented("peers ls"); }

int run_rm(const cxxopts::ParseResult& args) {
  if (args.count("peer") == 0) return usage_error("peers rm", "no peer id given");
  return not_implemented("peers rm");
}

constexpr Subcommand kSubcommands[] = {
    {"ls", "List the cluster's peers", declare_ls, run_ls},
    {"rm", "Remove a peer from the cluster", declare_rm, run_rm},
};

}  // namespace

int run_peers(int argc, char** argv) { return run_subcommands("peers", kSubcommands, argc, argv); }

}  // namespace clusterpin::cmd
