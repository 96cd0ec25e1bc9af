// Fault injection for crash tests: with the environment variable CLUSTERPIN_FAULT naming a point
// ("after-snapshot-restore", "after-removal-applied"), the process ends there at once with exit
// code 86 (no cleanup, as kill -9 would). Unset, each point costs a comparison.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>

namespace clusterpin::node {

inline constexpr int kFaultExitCode = 86;

inline void fault_point(std::string_view name) {
  static const std::string armed = [] {
    const char* v = std::getenv("CLUSTERPIN_FAULT");
    return std::string(v ? v : "");
  }();
  if (!armed.empty() && armed == name) std::_Exit(kFaultExitCode);
}

}  // namespace clusterpin::node
