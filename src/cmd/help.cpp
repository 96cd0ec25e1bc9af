// `clusterpin help [applet]`: the applet list, or one applet's --help.
#include "cmd/help.hpp"

#include <string>

#include <fmt/core.h>

#include "cmd/applet.hpp"
#include "core/version.hpp"

namespace clusterpin::cmd {

void print_general_help(std::FILE* out) {
  fmt::print(out,
             "clusterpin {} - a pinning cluster for IPFS (Raft consensus, one binary)\n\n"
             "Usage: clusterpin [client options] <applet> [options] [args]\n"
             "       clusterpin-<applet> [options] [args]   (through a symlink)\n"
             "       clusterpin --version\n\n"
             "Applets:\n",
             version());
  for (const Applet& a : applets()) fmt::print(out, "  {:<10} {}\n", a.name, a.summary);
  fmt::print(out, "\nClient options (-l/--host, --enc, -t/--timeout, --basic-auth, -d/--debug, "
                  "--force-http,\n--no-check-certificate) go after the applet name or before it, "
                  "as ipfs-cluster-ctl takes them;\nsee 'man clusterpin'.\n"
                  "Run 'clusterpin <applet> --help' for the options of one applet, "
                  "or 'man clusterpin-<applet>'.\n");
}

int run_help(int argc, char** argv) {
  if (argc < 2) {
    print_general_help(stdout);
    return kExitOk;
  }
  if (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
    fmt::print("Show help for clusterpin or one applet\nUsage:\n  clusterpin help [applet]\n\n"
               "  -h, --help  Print this help and exit\n");
    return kExitOk;
  }
  if (argc > 2) {
    fmt::print(stderr, "clusterpin help: unexpected argument '{}' (it accepts: [applet])\n", argv[2]);
    return kExitUsage;
  }
  const Applet* applet = find_applet(argv[1]);
  if (applet == nullptr) {
    fmt::print(stderr, "clusterpin help: unknown applet '{}' (applets: {})\n", argv[1],
               applet_names());
    return kExitUsage;
  }
  std::string name(applet->name);
  std::string help_flag = "--help";
  char* args[] = {name.data(), help_flag.data(), nullptr};
  return applet->run(2, args);
}

}  // namespace clusterpin::cmd
