// `clusterpin pin add|rm|update|ls`: change and list the shared pinset through a peer's REST API.
// Every CID is checked locally first, so a typo fails before anything is contacted.
#include <string>
#include <vector>

#include <fmt/core.h>

#include "cmd/applet.hpp"
#include "cmd/cli.hpp"
#include "core/cid.hpp"

namespace clusterpin::cmd {
namespace {

void declare_wait(cxxopts::Options& o) {
  o.add_options()
      ("no-status", "Print the pin as committed instead of its status")
      ("w,wait", "Wait until the pin reaches its target status on its allocations")
      ("wait-timeout", "Stop waiting after this Go duration (e.g. 5m0s; 0s: no limit)",
       cxxopts::value<std::string>()->default_value("0s"), "DURATION");
}

void declare_add(cxxopts::Options& o) {
  add_client_options(o);
  declare_wait(o);
  o.add_options()
      ("r,replication", "Replication factor: sets both --rmin and --rmax (-1: every peer)",
       cxxopts::value<int>(), "N")
      ("rmin", "Minimum number of peers that must pin it", cxxopts::value<int>(), "N")
      ("rmax", "Maximum number of peers that may pin it", cxxopts::value<int>(), "N")
      ("n,name", "A name for the pin", cxxopts::value<std::string>(), "NAME")
      ("mode", "Pin mode: recursive or direct",
       cxxopts::value<std::string>()->default_value("recursive"), "recursive|direct")
      ("expire-in", "Unpin automatically after this Go duration (e.g. 24h0m0s)",
       cxxopts::value<std::string>(), "DURATION")
      ("metadata", "Metadata key=value (repeatable)", cxxopts::value<std::vector<std::string>>(),
       "KEY=VALUE")
      ("allocations", "Comma-separated peer ids to pin on", cxxopts::value<std::string>(), "IDS")
      ("cids", "CIDs to pin ('-' reads one per line from standard input)",
       cxxopts::value<std::vector<std::string>>());
  o.parse_positional({"cids"});
  o.positional_help("<cid>... | -");
}

void declare_rm(cxxopts::Options& o) {
  add_client_options(o);
  declare_wait(o);
  o.add_options()("cids", "CIDs to unpin", cxxopts::value<std::vector<std::string>>());
  o.parse_positional({"cids"});
  o.positional_help("<cid>...");
}

void declare_update(cxxopts::Options& o) {
  add_client_options(o);
  declare_wait(o);
  o.add_options()
      ("n,name", "A new name for the pin", cxxopts::value<std::string>(), "NAME")
      ("expire-in", "Unpin automatically after this Go duration", cxxopts::value<std::string>(),
       "DURATION")
      ("cids", "The existing CID and the new CID", cxxopts::value<std::vector<std::string>>());
  o.parse_positional({"cids"});
  o.positional_help("<existing-cid> <new-cid>");
}

void declare_ls(cxxopts::Options& o) {
  add_client_options(o);
  o.add_options()
      ("filter", "Pin types to list: all, pin, meta-pin, clusterdag-pin, shard-pin",
       cxxopts::value<std::string>()->default_value("pin"), "TYPES")
      ("cids", "Only these CIDs", cxxopts::value<std::vector<std::string>>());
  o.parse_positional({"cids"});
  o.positional_help("[cid]");
}

// Checks every CID given on the command line ("-" means standard input, checked later).
bool check_cids(std::string_view sub, const cxxopts::ParseResult& args, bool required) {
  if (args.count("cids") == 0) {
    if (required) usage_error(fmt::format("pin {}", sub), "no CID given (usage: see --help)");
    return !required;
  }
  for (const std::string& text : args["cids"].as<std::vector<std::string>>()) {
    if (text == "-") continue;
    auto cid = Cid::parse(text);
    if (!cid) {
      usage_error(fmt::format("pin {}", sub), cid.error().message);
      return false;
    }
  }
  return true;
}

int run_add(const cxxopts::ParseResult& args) {
  if (!check_cids("add", args, true)) return kExitUsage;
  return not_implemented("pin add");
}

int run_rm(const cxxopts::ParseResult& args) {
  if (!check_cids("rm", args, true)) return kExitUsage;
  return not_implemented("pin rm");
}

int run_update(const cxxopts::ParseResult& args) {
  if (!check_cids("update", args, true)) return kExitUsage;
  if (args["cids"].as<std::vector<std::string>>().size() != 2) {
    return usage_error("pin update", "expects exactly two CIDs: <existing-cid> <new-cid>");
  }
  return not_implemented("pin update");
}

int run_ls(const cxxopts::ParseResult& args) {
  if (!check_cids("ls", args, false)) return kExitUsage;
  return not_implemented("pin ls");
}

constexpr Subcommand kSubcommands[] = {
    {"add", "Pin CIDs in the cluster", declare_add, run_add},
    {"rm", "Unpin CIDs from the cluster", declare_rm, run_rm},
    {"update", "Pin a new CID with the options of an existing pin", declare_update, run_update},
    {"ls", "List the shared pinset (answered from the peer's local copy)", declare_ls, run_ls},
};

}  // namespace

int run_pin(int argc, char** argv) { return run_subcommands("pin", kSubcommands, argc, argv); }

}  // namespace clusterpin::cmd
