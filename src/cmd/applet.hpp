// The applet table of the busybox-style binary: every `clusterpin <applet>` and every symlink
// named `clusterpin-<applet>` resolves through this one list, so help, man-page checks and
// dispatch cannot disagree about which applets exist.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace clusterpin::cmd {

// argv[0] is the applet name ("pin"), the rest are its arguments.
using AppletMain = int (*)(int argc, char** argv);

struct Applet {
  std::string_view name;
  std::string_view summary;
  AppletMain run;
};

std::span<const Applet> applets();
const Applet* find_applet(std::string_view name);

// "init, daemon, pin, ..." for error messages.
std::string applet_names();

// Exit codes shared by all applets (as ipfs-cluster-ctl uses them).
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;     // bad arguments, transport errors
inline constexpr int kExitApiError = 2;  // the API answered with an error

}  // namespace clusterpin::cmd
