// Busybox dispatch: `clusterpin <applet> [args]`, or a symlink named `clusterpin-<applet>`.
// Unknown applets get one line naming them plus the applet list on stderr and exit 1.
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include <fmt/core.h>

#include "cmd/applet.hpp"
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
  std::string_view first = argv[1];
  if (first == "--version" || first == "-v") {
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
    fmt::print(stderr, "clusterpin: unknown option '{}' (applets: {})\n", first, applet_names());
    return kExitUsage;
  }
  const Applet* applet = find_applet(first);
  if (applet == nullptr) return unknown_applet(first);
  return applet->run(argc - 1, argv + 1);
}
