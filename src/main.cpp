// Busybox dispatch: `clusterpin [client options] <applet> [args]`, or a symlink named
// `clusterpin-<applet>`. Unknown applets get one line naming them plus the applet list on stderr
// and exit 1.
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "cmd/applet.hpp"
#include "cmd/cli.hpp"
#include "cmd/help.hpp"
#include "core/version.hpp"

namespace {

std::string_view basename_of(const char* path) {
  std::string_view p(path);
  auto slash = p.rfind('/');
  return slash == std::string_view::npos ? p : p.substr(slash + 1);
}

int unknown_applet(std::string_view name) {
  fmt::print(stderr, "clusterpin: unknown applet '{}' (applets: {})\n", name,
             clusterpin::cmd::applet_names());
  return clusterpin::cmd::kExitUsage;
}

// ipfs-cluster-ctl takes its client options before the command (`--enc=json --host A pin ls`).
// Those given before the applet name are taken off here and handed to the applet's parser,
// which reads them as if they followed the applet name (see set_leading_options). Returns the
// index of the first argument that is not one of them, or -1 after printing a usage error.
int take_leading_client_options(int argc, char** argv, std::vector<std::string>& taken) {
  using namespace clusterpin::cmd;
  int i = 1;
  while (i < argc) {
    std::string_view arg = argv[i];
    auto eq = arg.find('=');
    std::string_view name = arg.substr(0, eq);
    if (auto why = refused_client_option(name)) {
      fmt::print(stderr, "clusterpin: {}\n", *why);
      return -1;
    }
    if (is_client_switch(name)) {
      taken.emplace_back(arg);
      ++i;
      continue;
    }
    if (!takes_client_option_value(name)) break;
    taken.emplace_back(arg);
    if (eq == std::string_view::npos) {
      if (i + 1 >= argc) {
        fmt::print(stderr, "clusterpin: {}: no value given (usage: clusterpin [client options] "
                           "<applet> ...)\n", arg);
        return -1;
      }
      taken.emplace_back(argv[i + 1]);
      ++i;
    }
    ++i;
  }
  return i;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace clusterpin::cmd;
  std::string_view self = argc > 0 ? basename_of(argv[0]) : "clusterpin";
  constexpr std::string_view kPrefix = "clusterpin-";
  if (self.substr(0, kPrefix.size()) == kPrefix) {
    // Invoked through a symlink: the applet name is in the program name.
    std::string_view name = self.substr(kPrefix.size());
    const Applet* applet = find_applet(name);
    if (applet == nullptr) return unknown_applet(name);
    std::string applet_name(name);
    argv[0] = applet_name.data();
    return applet->run(argc, argv);
  }
  if (argc < 2) {
    print_general_help(stderr);
    return kExitUsage;
  }
  std::vector<std::string> leading;
  const int at = take_leading_client_options(argc, argv, leading);
  if (at < 0) return kExitUsage;
  if (at >= argc) {
    fmt::print(stderr, "clusterpin: no applet after the client options (usage: clusterpin [client "
                       "options] <applet> [options] [args]; applets: {})\n", applet_names());
    return kExitUsage;
  }
  std::string_view first = argv[at];
  if (first == "--version" || first == "-v") {
    if (!leading.empty()) {
      fmt::print(stderr, "clusterpin: {} prints this binary's version and takes no client options "
                         "(the version of a peer: clusterpin --host ADDRESS version)\n", first);
      return kExitUsage;
    }
    if (argc > 2) {
      fmt::print(stderr, "clusterpin: unexpected argument '{}' after {} (it takes none)\n", argv[2], first);
      return kExitUsage;
    }
    fmt::print("clusterpin {}\n", clusterpin::version());
    return kExitOk;
  }
  if (first == "--help" || first == "-h") {
    print_general_help(stdout);
    return kExitOk;
  }
  if (!first.empty() && first[0] == '-') {
    fmt::print(stderr, "clusterpin: unknown option '{}' before the applet name (accepted there: the "
                       "client options -l/--host, --enc/--encoding, -t/--timeout, --basic-auth, "
                       "-d/--debug, --force-http, --no-check-certificate; applets: {})\n", first,
               applet_names());
    return kExitUsage;
  }
  const Applet* applet = find_applet(first);
  if (applet == nullptr) return unknown_applet(first);
  if (!leading.empty() && applet->name == "help") {
    fmt::print(stderr, "clusterpin help: it takes no client options ('{}' was given before it)\n",
               leading.front());
    return kExitUsage;
  }
  set_leading_options(std::move(leading));
  return applet->run(argc - at, argv + at);
}
