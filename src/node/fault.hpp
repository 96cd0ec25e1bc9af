// Fault injection for crash tests: the environment variable CLUSTERPIN_FAULT names one scenario.
// At a point of that name ("after-snapshot-restore", "after-removal-applied",
// "unpin-before-tracker-commit") the process ends at once with exit code 86 (no cleanup, as
// kill -9 would); a scenario may also change behaviour (fault_armed: "commit-answer-lost",
// "recover-fails", "tracker-commits-held", "sync-clock-steps-back"). Unset,
// each check costs a comparison.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>

namespace clusterpin::node {

inline constexpr int kFaultExitCode = 86;

inline bool fault_armed(std::string_view name) {
  static const std::string armed = [] {
    const char* v = std::getenv("CLUSTERPIN_FAULT");
    return std::string(v ? v : "");
  }();
  return !armed.empty() && armed == name;
}

inline void fault_point(std::string_view name) {
  if (fault_armed(name)) std::_Exit(kFaultExitCode);
}

}  // namespace clusterpin::node
