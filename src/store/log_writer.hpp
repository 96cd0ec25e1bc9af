// LogWriter: the storage thread that makes Raft log batches durable with group commit.
// submit() queues a batch and returns at once. The thread takes everything queued, applies it
// in ONE transaction (one fsync), and only after the commit returned OK calls each batch's
// on_durable callback, in submission order, on the storage thread. Batches that arrive while an
// fsync runs form the next transaction; there are no timers. A failed write or fsync is fatal:
// the process prints why and exits (fail_stop.hpp), never retrying or acknowledging.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "core/result.hpp"
#include "store/fail_stop.hpp"
#include "store/raft_log.hpp"

namespace clusterpin::store {

class LogWriter {
 public:
  // Called once the batch is durable. The Status is always OK (failure stops the process); it is
  // kept so a future non-fatal outcome (e.g. shutdown) can be reported without an API change.
  using DurableCallback = std::function<void(Status)>;

  struct Stats {
    std::uint64_t transactions = 0;  // commits (fsyncs) done
    std::uint64_t batches = 0;       // batches made durable
  };

  // Takes ownership of an opened log (call log.load() before, on the owning thread).
  explicit LogWriter(RaftLog log);
  // Makes everything already submitted durable, runs its callbacks, then joins the thread.
  ~LogWriter();
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Thread-safe. Batches become durable in submission order.
  void submit(LogBatch batch, DurableCallback on_durable);

  Stats stats() const;

 private:
  struct Pending {
    LogBatch batch;
    DurableCallback on_durable;
  };
  void run();

  RaftLog log_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;  // guarded by mu_
  bool stopping_ = false;      // guarded by mu_
  Stats stats_;                // guarded by mu_
  std::thread thread_;         // last: starts after every other member is constructed
};

}  // namespace clusterpin::store
