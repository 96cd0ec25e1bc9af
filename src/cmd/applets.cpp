// The table of applets. Adding an applet means one line here, one file in src/cmd/ and one
// man page in man/ (tests/cmd checks that every applet has a page).
#include <array>

#include "cmd/applet.hpp"
#include "cmd/help.hpp"

namespace clusterpin::cmd {

int run_init(int argc, char** argv);
int run_daemon(int argc, char** argv);
int run_id(int argc, char** argv);
int run_peers(int argc, char** argv);
int run_pin(int argc, char** argv);
int run_status(int argc, char** argv);
int run_sync(int argc, char** argv);
int run_recover(int argc, char** argv);
int run_health(int argc, char** argv);
int run_ipfs(int argc, char** argv);
int run_state(int argc, char** argv);
int run_version(int argc, char** argv);

namespace {

constexpr std::array kApplets{
    Applet{"init", "Write a new configuration and identity (service.json)", run_init},
    Applet{"daemon", "Run a cluster peer", run_daemon},
    Applet{"id", "Show the identity and addresses of a peer", run_id},
    Applet{"peers", "List or remove cluster peers", run_peers},
    Applet{"pin", "Add, remove, update and list pins", run_pin},
    Applet{"status", "Show the pin status of CIDs on every peer", run_status},
    Applet{"sync", "Compare the local state with IPFS and mark drift", run_sync},
    Applet{"recover", "Retry pins and unpins that are in error", run_recover},
    Applet{"health", "Cluster health: graph, metrics, alerts", run_health},
    Applet{"ipfs", "Operations on the peers' IPFS daemons: gc", run_ipfs},
    Applet{"state", "Export, import or clean up a peer's state (offline)", run_state},
    Applet{"version", "Print the version", run_version},
    Applet{"help", "Show help for clusterpin or one applet", run_help},
};

}  // namespace

std::span<const Applet> applets() { return kApplets; }

const Applet* find_applet(std::string_view name) {
  for (const Applet& a : kApplets) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string applet_names() {
  std::string out;
  for (const Applet& a : kApplets) {
    if (!out.empty()) out += ", ";
    out += a.name;
  }
  return out;
}

}  // namespace clusterpin::cmd
