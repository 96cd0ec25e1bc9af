// The seeded, deterministic Raft simulation: 3 or 5 founding peers in one process over a
// network that loses, duplicates, delays and reorders messages, with symmetric and one-way
// partitions, crashes that lose unsynced writes, restarts, membership changes and snapshot
// installs. The InvariantChecker runs after every event; the run ends with a liveness phase:
// faults heal, a leader must appear and fresh proposals must be applied everywhere in time.
#pragma once

#include <cstdint>
#include <string>

namespace clusterpin::raft::test {

struct SimOptions {
  std::uint64_t seed = 1;
  int steps = 400;  // ticks of the faulty phase
  bool verbose = false;
};

struct SimOutcome {
  bool ok = true;
  std::string failure;  // the first violated invariant or liveness failure
  std::uint64_t elections = 0;
  std::uint64_t commits = 0;          // highest committed index
  std::uint64_t acked = 0;            // proposals acknowledged as committed
  std::uint64_t snapshot_installs = 0;
  std::uint64_t snapshots_taken = 0;
  std::uint64_t conf_changes = 0;     // committed membership changes
  std::uint64_t crashes = 0;
  std::uint64_t messages = 0;
};

SimOutcome run_simulation(const SimOptions& options);

}  // namespace clusterpin::raft::test
