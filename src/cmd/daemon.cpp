// `clusterpin daemon`: run a cluster peer (secure links, Raft, SQLite, REST API, IPFS connector).
#include <string>

#include "cmd/applet.hpp"
#include "cmd/cli.hpp"

namespace clusterpin::cmd {
namespace {

void declare_daemon(cxxopts::Options& o) {
  add_config_option(o);
  o.add_options()
      ("j,bootstrap", "Join a running cluster through these peers (comma-separated multiaddrs)",
       cxxopts::value<std::string>(), "MULTIADDRS")
      ("x,leave", "Leave the cluster on clean shutdown (as cluster.leave_on_shutdown)")
      ("insecure-empty-secret", "Accept an empty cluster secret (anyone can join: insecure)");
}

int daemon_main(const cxxopts::ParseResult&) { return not_implemented("daemon"); }

}  // namespace

int run_daemon(int argc, char** argv) {
  return run_simple("daemon", "Run a cluster peer", declare_daemon, daemon_main, argc, argv);
}

}  // namespace clusterpin::cmd
