// WalCheckpointer keeps WAL checkpoints, and the fsyncs they do, off the thread that commits.
// SQLite normally checkpoints inside the commit that crosses wal_autocheckpoint, stalling the
// committer for two fsyncs and a burst of random writes. Instead, a commit hook on the writer
// notes the WAL size, and one background thread with its own connection runs PASSIVE
// checkpoints (which never block the writer or readers). A failed checkpoint stops the peer.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/result.hpp"
#include "store/sqlite_connection.hpp"

namespace clusterpin::store {

class WalCheckpointer {
 public:
  // Starts checkpointing `writer`'s database (at `path`, via `vfs`) whenever a commit leaves at
  // least `threshold_frames` frames in the WAL. `writer` must outlive this object.
  static Result<std::unique_ptr<WalCheckpointer>> start(Connection& writer, const std::string& path,
                                                        const std::string& vfs,
                                                        int threshold_frames);
  // Removes the hook from the writer and joins the thread (finishing a running checkpoint).
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // When a commit leaves this many times threshold_frames in the WAL, the background thread has
  // not kept up: the commit hook checkpoints on the writer's thread (bounds the WAL's size).
  static constexpr int kCatchUpFactor = 4;

  // Checkpoints completed so far (for tests and diagnostics).
  int checkpoints() const;

 private:
  WalCheckpointer(Connection& writer, Connection own, int threshold_frames);
  static int on_commit(void* self, struct sqlite3* db, const char* schema, int frames);
  void run();

  Connection& writer_;
  Connection own_;  // used only by thread_
  const int threshold_frames_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  // A commit over the threshold wakes the thread only when no pass is due or running (under
  // steady writes the WAL stays over it, and a wake per commit was a tenth of each commit's
  // cost); one during a pass makes another due, which the thread sees when the pass ends.
  bool wanted_ = false;    // guarded by mu_: a pass is due
  bool running_ = false;   // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  int checkpoints_ = 0;    // guarded by mu_
  std::thread thread_;
};

}  // namespace clusterpin::store
