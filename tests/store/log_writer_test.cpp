// Tests for LogWriter: callbacks only after the batch is on disk, in order, batches that queue
// up during a commit share the next transaction, and shutdown drains the queue.
#include "store/log_writer.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "temp_dir.hpp"

using namespace clusterpin;
using store::LogBatch;
using store::LogWriter;
using store::RaftLog;
using store::testing::TempDir;

namespace {

LogBatch one_entry(raft::Index index, raft::Term term) {
  LogBatch b;
  b.entries.push_back(
      raft::Entry{term, index, raft::EntryType::Normal, "e" + std::to_string(index)});
  b.hard_state = raft::HardState{term, "n1", index};
  return b;
}

RaftLog open_log(const TempDir& dir, bool read_only = false) {
  store::LogOpenOptions opts;
  opts.read_only = read_only;
  auto log = RaftLog::open(dir.path(), opts);
  REQUIRE_MESSAGE(log.ok(), (log.ok() ? "" : log.error().message));
  return std::move(*log);
}

// Counts callbacks and lets the test wait for a number of them.
struct Acks {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<raft::Index> order;
  void add(raft::Index i) {
    std::lock_guard lock(mu);
    order.push_back(i);
    cv.notify_all();
  }
  void wait_for(size_t n) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return order.size() >= n; });
  }
};

}  // namespace

TEST_CASE("on_durable runs after the batch is committed, in submission order") {
  TempDir dir;
  auto reader = open_log(dir);  // creates the schema; a second connection checks what is on disk
  Acks acks;
  std::atomic<bool> seen_in_db_every_time{true};
  {
    LogWriter writer(open_log(dir));
    for (raft::Index i = 1; i <= 50; ++i) {
      writer.submit(one_entry(i, 1), [&, i](Status s) {
        CHECK(s.ok());
        // Another connection can only see a committed transaction: proof the ack follows the
        // commit.
        auto t = reader.term_at(i);
        if (!t.ok() || !t->has_value()) seen_in_db_every_time = false;
        acks.add(i);
      });
    }
    acks.wait_for(50);
  }
  CHECK(seen_in_db_every_time.load());
  std::vector<raft::Index> expected;
  for (raft::Index i = 1; i <= 50; ++i) expected.push_back(i);
  CHECK(acks.order == expected);
}

TEST_CASE(
    "batches submitted while a commit is running are written together in the next transaction") {
  TempDir dir;
  Acks acks;
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool first_running = false;
  bool all_submitted = false;
  constexpr raft::Index kBatches = 200;
  {
    LogWriter writer(open_log(dir));
    // The first callback holds the storage thread until every other batch is queued, so all of
    // them must be taken together as the second transaction.
    writer.submit(one_entry(1, 1), [&](Status) {
      std::unique_lock lock(gate_mu);
      first_running = true;
      gate_cv.notify_all();
      gate_cv.wait(lock, [&] { return all_submitted; });
      acks.add(1);
    });
    {
      std::unique_lock lock(gate_mu);
      gate_cv.wait(lock, [&] { return first_running; });
    }
    for (raft::Index i = 2; i <= kBatches; ++i)
      writer.submit(one_entry(i, 1), [&, i](Status) { acks.add(i); });
    {
      std::lock_guard lock(gate_mu);
      all_submitted = true;
    }
    gate_cv.notify_all();
    acks.wait_for(kBatches);
    auto stats = writer.stats();
    CHECK(stats.batches == kBatches);
    CHECK(stats.transactions == 2);
  }
  auto log = open_log(dir);
  auto s = log.load();
  REQUIRE(s.ok());
  CHECK(s->entries.size() == kBatches);
  CHECK(s->hard.commit == kBatches);
}

TEST_CASE("destroying the writer makes every submitted batch durable and runs its callback") {
  TempDir dir;
  std::atomic<int> callbacks{0};
  {
    LogWriter writer(open_log(dir));
    for (raft::Index i = 1; i <= 300; ++i)
      writer.submit(one_entry(i, 2), [&](Status) { ++callbacks; });
  }
  CHECK(callbacks.load() == 300);
  auto log = open_log(dir, true);
  auto s = log.load();
  REQUIRE(s.ok());
  CHECK(s->entries.size() == 300);
  CHECK(s->hard == raft::HardState{2, "n1", 300});
}
