// `clusterpin status|sync|recover`: the local state of pins on every peer, and its repair.
#include <string>
#include <vector>

#include "cmd/applet.hpp"
#include "cmd/cli.hpp"
#include "core/cid.hpp"

namespace clusterpin::cmd {
namespace {

void declare_cids(cxxopts::Options& o) {
  o.add_options()("cids", "CIDs (default: all)", cxxopts::value<std::vector<std::string>>());
  o.parse_positional({"cids"});
  o.positional_help("[cid]...");
}

void declare_status(cxxopts::Options& o) {
  add_client_options(o);
  o.add_options()
      ("local", "Only this peer's status")
      ("filter", "Only these statuses (comma list, e.g. pin_error,queued)",
       cxxopts::value<std::string>(), "STATUSES");
  declare_cids(o);
}

void declare_sync(cxxopts::Options& o) {
  add_client_options(o);
  declare_cids(o);
}

void declare_recover(cxxopts::Options& o) {
  add_client_options(o);
  o.add_options()("local", "Only recover on this peer");
  declare_cids(o);
}

bool check_cids(std::string_view applet, const cxxopts::ParseResult& args) {
  if (args.count("cids") == 0) return true;
  for (const std::string& text : args["cids"].as<std::vector<std::string>>()) {
    auto cid = Cid::parse(text);
    if (!cid) {
      usage_error(applet, cid.error().message);
      return false;
    }
  }
  return true;
}

int status_main(const cxxopts::ParseResult& args) {
  if (!check_cids("status", args)) return kExitUsage;
  return not_implemented("status");
}
int sync_main(const cxxopts::ParseResult& args) {
  if (!check_cids("sync", args)) return kExitUsage;
  return not_implemented("sync");
}
int recover_main(const cxxopts::ParseResult& args) {
  if (!check_cids("recover", args)) return kExitUsage;
  return not_implemented("recover");
}

}  // namespace

int run_status(int argc, char** argv) {
  return run_simple("status", "Show the status of pins on every peer", declare_status,
                    status_main, argc, argv);
}
int run_sync(int argc, char** argv) {
  return run_simple("sync", "Compare the local state with IPFS and mark what drifted",
                    declare_sync, sync_main, argc, argv);
}
int run_recover(int argc, char** argv) {
  return run_simple("recover", "Retry pins and unpins that are in error", declare_recover,
                    recover_main, argc, argv);
}

}  // namespace clusterpin::cmd
