// raft_sim: runs the deterministic Raft simulation over many seeds (CI: --seeds 1000) and
// prints the one-line command that replays a failing seed. Flags: --seed N (one seed),
// --seeds N, --first N, --steps N, --long (20000 seeds of 800 steps), --verbose.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "simulation.hpp"

using clusterpin::raft::test::run_simulation;
using clusterpin::raft::test::SimOptions;
using clusterpin::raft::test::SimOutcome;

namespace {

struct Flags {
  std::uint64_t first = 1;
  std::uint64_t seeds = 1000;
  int steps = 1000;
  bool verbose = false;
  bool ok = true;
};

Flags parse(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::uint64_t {
      if (i + 1 >= argc) {
        f.ok = false;
        return 0;
      }
      return std::strtoull(argv[++i], nullptr, 10);
    };
    if (a == "--seed") {
      f.first = value();
      f.seeds = 1;
    } else if (a == "--seeds") {
      f.seeds = value();
    } else if (a == "--first") {
      f.first = value();
    } else if (a == "--steps") {
      f.steps = static_cast<int>(value());
    } else if (a == "--long") {
      f.seeds = 20000;
      f.steps = 800;
    } else if (a == "--verbose") {
      f.verbose = true;
    } else {
      std::fprintf(stderr, "raft_sim: unknown flag \"%s\" (accepted: --seed N, --seeds N, "
                   "--first N, --steps N, --long, --verbose)\n", a.c_str());
      f.ok = false;
    }
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = parse(argc, argv);
  if (!flags.ok) return 2;
  auto start = std::chrono::steady_clock::now();
  SimOutcome total;
  std::uint64_t failed = 0;
  for (std::uint64_t seed = flags.first; seed < flags.first + flags.seeds; ++seed) {
    SimOptions options;
    options.seed = seed;
    options.steps = flags.steps;
    options.verbose = flags.verbose;
    SimOutcome out = run_simulation(options);
    total.elections += out.elections;
    total.commits += out.commits;
    total.acked += out.acked;
    total.snapshot_installs += out.snapshot_installs;
    total.snapshots_taken += out.snapshots_taken;
    total.conf_changes += out.conf_changes;
    total.crashes += out.crashes;
    total.messages += out.messages;
    if (flags.verbose || !out.ok) {
      fmt::print("seed {}: {} elections, commit index {}, {} acked, {} snapshot installs, "
                 "{} conf changes, {} crashes\n", seed, out.elections, out.commits, out.acked,
                 out.snapshot_installs, out.conf_changes, out.crashes);
    }
    if (!out.ok) {
      ++failed;
      fmt::print("FAILED seed {}: {}\n  replay: {} --seed {} --steps {}\n", seed, out.failure,
                 argv[0], seed, flags.steps);
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("raft_sim: {} seeds from {} ({} steps): {} failed; totals: {} elections, {} "
             "committed entries, {} acknowledged proposals, {} snapshots taken, {} snapshot "
             "installs, {} membership changes, {} crashes, {} messages; {:.1f}s\n",
             flags.seeds, flags.first, flags.steps, failed, total.elections, total.commits,
             total.acked, total.snapshots_taken, total.snapshot_installs, total.conf_changes,
             total.crashes, total.messages, secs);
  return failed == 0 ? 0 : 1;
}
