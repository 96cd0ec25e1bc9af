// Measures the store on this machine: durable Raft log commits one batch at a time (every batch
// waits for its own fsync) and pipelined (batches queue during an fsync and share the next
// transaction); then StateDb with many pins: apply, count, ordered streaming, snapshot, restore.
// Not a test: run `store_bench [folder] [seconds] [pins]`; the folder must be on the disk to
// measure.
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>

#include "store/log_writer.hpp"
#include "store/raft_log.hpp"
#include "store/state_db.hpp"

using namespace clusterpin;
using Clock = std::chrono::steady_clock;

namespace {

store::RaftLog open_fresh(const std::filesystem::path& dir) {
  std::filesystem::remove_all(dir);
  auto log = store::RaftLog::open(dir);
  if (!log.ok()) {
    std::fprintf(stderr, "%s\n", log.error().message.c_str());
    std::exit(1);
  }
  return std::move(*log);
}

store::LogBatch batch(raft::Index first, int entries, size_t bytes) {
  store::LogBatch b;
  for (int i = 0; i < entries; ++i)
    b.entries.push_back(raft::Entry{1, first + static_cast<raft::Index>(i), raft::EntryType::Normal,
                                    std::string(bytes, 'x')});
  b.hard_state = raft::HardState{1, "n1", first};
  return b;
}

// Keeps up to `window` batches in flight for `seconds`; reports batches, entries and commits per
// second.
void run(const std::filesystem::path& dir, const char* label, int window, int entries_per_batch,
         size_t bytes, double seconds) {
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  std::uint64_t done = 0;
  raft::Index next = 1;
  store::LogWriter::Stats stats;
  const auto start = Clock::now();
  double elapsed = 0;
  {
    store::LogWriter writer(open_fresh(dir));
    while ((elapsed = std::chrono::duration<double>(Clock::now() - start).count()) < seconds) {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return in_flight < window; });
        ++in_flight;
      }
      writer.submit(batch(next, entries_per_batch, bytes), [&](Status) {
        std::lock_guard lock(mu);
        --in_flight;
        ++done;
        cv.notify_one();
      });
      next += static_cast<raft::Index>(entries_per_batch);
    }
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return in_flight == 0; });
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    stats = writer.stats();
  }
  std::printf(
      "%-34s window %4d, %3d entries x %4zu B: %9.0f batches/s %10.0f entries/s %8.0f commits/s "
      "(%.1f batches/commit)\n",
      label, window, entries_per_batch, bytes, static_cast<double>(done) / elapsed,
      static_cast<double>(done) * entries_per_batch / elapsed,
      static_cast<double>(stats.transactions) / elapsed,
      static_cast<double>(stats.batches) / static_cast<double>(stats.transactions));
}

double since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

template <class T>
T must(Result<T> r) {
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.error().message.c_str());
    std::exit(1);
  }
  return std::move(*r);
}

// `pins` pins of ~120 bytes under 34-byte CID-like keys, applied 1000 per entry.
void run_state(const std::filesystem::path& dir, std::uint64_t pins) {
  std::filesystem::remove_all(dir);
  auto db = must(store::StateDb::open(dir / "a"));
  constexpr std::uint64_t kPerEntry = 1000;
  auto start = Clock::now();
  raft::Index index = 0;
  for (std::uint64_t done = 0; done < pins;) {
    std::vector<store::StateOp> ops;
    for (std::uint64_t i = 0; i < kPerEntry && done < pins; ++i, ++done) {
      std::string cid(34, '\0');
      std::uint64_t x = done * 0x9e3779b97f4a7c15ULL;  // spread keys like hashes do
      for (int b = 0; b < 8; ++b)
        cid[static_cast<size_t>(2 + b)] = static_cast<char>((x >> (8 * b)) & 0xff);
      cid[0] = 0x12;
      cid[1] = 0x20;
      ops.push_back(store::StateOp::put_pin(std::move(cid), std::string(120, 'p')));
    }
    must(db.apply(++index, 1, ops));
  }
  double t = since(start);
  std::printf("state: applied %llu pins in %.2f s (%.0f pins/s, %llu entries of %llu pins)\n",
              static_cast<unsigned long long>(pins), t, static_cast<double>(pins) / t,
              static_cast<unsigned long long>(index), static_cast<unsigned long long>(kPerEntry));
  // The common case: one pin per Raft entry, on top of the pins already there.
  constexpr std::uint64_t kSingles = 20000;
  start = Clock::now();
  for (std::uint64_t i = 0; i < kSingles; ++i) {
    std::string cid = "single-" + std::to_string(i * 7919 % kSingles);
    store::StateOp op = store::StateOp::put_pin(std::move(cid), std::string(120, 's'));
    must(db.apply(++index, 1, std::span<const store::StateOp>(&op, 1)));
  }
  t = since(start);
  std::printf("state: applied %llu entries of 1 pin in %.2f s (%.0f entries/s)\n",
              static_cast<unsigned long long>(kSingles), t, static_cast<double>(kSingles) / t);
  auto reader = must(db.open_reader());
  start = Clock::now();
  auto n = must(reader.count_pins());
  std::printf("state: count_pins = %llu in %.3f s\n", static_cast<unsigned long long>(n),
              since(start));
  start = Clock::now();
  std::uint64_t seen = 0, bytes = 0;
  Status s = reader.for_each_pin([&](std::string_view c, std::string_view p) {
    ++seen;
    bytes += c.size() + p.size();
    return true;
  });
  if (!s.ok()) std::exit(1);
  t = since(start);
  std::printf("state: for_each_pin streamed %llu pins (%.0f MB) in %.2f s (%.0f pins/s)\n",
              static_cast<unsigned long long>(seen), static_cast<double>(bytes) / 1e6, t,
              static_cast<double>(seen) / t);
  start = Clock::now();
  auto snap = must(db.create_snapshot(dir / "snap.db"));
  std::printf("state: create_snapshot %.0f MB in %.2f s\n",
              static_cast<double>(snap.size_bytes) / 1e6, since(start));
  auto other = must(store::StateDb::open(dir / "b"));
  start = Clock::now();
  must(other.restore_snapshot(dir / "snap.db"));
  std::printf("state: restore_snapshot (quick_check, copy, fsync, rename) in %.2f s\n",
              since(start));
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path base =
      argc > 1 ? std::filesystem::path(argv[1]) : std::filesystem::temp_directory_path();
  double seconds = argc > 2 ? std::atof(argv[2]) : 2.0;
  std::uint64_t pins = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1000000;
  std::filesystem::path dir = base / ("clusterpin-bench-" + std::to_string(::getpid()));
  run(dir, "one writer, wait for each fsync", 1, 1, 100, seconds);
  run(dir, "pipelined (group commit)", 64, 1, 100, seconds);
  run(dir, "pipelined (group commit)", 1024, 1, 100, seconds);
  run(dir, "one writer, 100-entry batches", 1, 100, 100, seconds);
  run(dir, "pipelined, 100-entry batches", 16, 100, 100, seconds);
  std::filesystem::remove_all(dir);
  if (pins > 0) run_state(dir, pins);
  return 0;
}
