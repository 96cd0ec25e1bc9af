// The checkpoint thread of WalCheckpointer (contract in wal_checkpointer.hpp). The commit hook
// runs on the writer's thread inside sqlite3_step, so it only flips a flag and notifies (once per
// pass: not while a pass is due or running; a commit during a pass makes one more due).
#include "store/wal_checkpointer.hpp"

#include <sqlite3.h>

#include "store/fail_stop.hpp"

namespace clusterpin::store {

Result<std::unique_ptr<WalCheckpointer>> WalCheckpointer::start(Connection& writer,
                                                                const std::string& path,
                                                                const std::string& vfs,
                                                                int threshold_frames) {
  assert(threshold_frames > 0 && "a zero threshold would checkpoint after every commit");
  auto own = Connection::open(path, OpenMode::ReadWrite, vfs);
  if (!own) return own.error();
  // The hook replaces SQLite's own auto-checkpoint (which is also a WAL hook); say so explicitly.
  if (Status s = writer.exec("PRAGMA wal_autocheckpoint=0"); !s) return s.error();
  return std::unique_ptr<WalCheckpointer>(
      new WalCheckpointer(writer, std::move(*own), threshold_frames));
}

WalCheckpointer::WalCheckpointer(Connection& writer, Connection own, int threshold_frames)
    : writer_(writer),
      own_(std::move(own)),
      threshold_frames_(threshold_frames),
      thread_([this] { run(); }) {
  sqlite3_wal_hook(writer_.handle(), &WalCheckpointer::on_commit, this);
}

WalCheckpointer::~WalCheckpointer() {
  sqlite3_wal_hook(writer_.handle(), nullptr, nullptr);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

int WalCheckpointer::checkpoints() const {
  std::lock_guard lock(mu_);
  return checkpoints_;
}

int WalCheckpointer::on_commit(void* self, sqlite3* db, const char* schema, int frames) {
  auto* c = static_cast<WalCheckpointer*>(self);
  if (frames >= kCatchUpFactor * c->threshold_frames_) {
    // The background thread is not keeping up: a writer that commits back to back (state
    // import, a bulk apply) never leaves a moment in which the WAL is fully checkpointed, so
    // SQLite never rewinds it, and it grew past 55 GB while importing 10M pins. Checkpoint here,
    // between two transactions of the only writer, so that everything is backfilled and the
    // next transaction starts the WAL from its beginning. The background thread is not woken
    // meanwhile; BUSY means its last pass is still running, and the next commit tries again.
    int rc = sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
      stop_on_storage_failure(c->writer_.error("checkpointing the WAL"));
    if (rc == SQLITE_OK) {
      std::lock_guard lock(c->mu_);
      ++c->checkpoints_;
    }
    return SQLITE_OK;
  }
  if (frames >= c->threshold_frames_) {
    {
      std::lock_guard lock(c->mu_);
      if (c->wanted_) return SQLITE_OK;  // a pass is already due
      c->wanted_ = true;  // during a pass: one more after it (it may miss this commit's frames)
      if (c->running_) return SQLITE_OK;  // the thread looks at wanted_ when the pass ends
    }
    c->wake_.notify_one();
  }
  return SQLITE_OK;
}

void WalCheckpointer::run() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || wanted_; });
      if (stopping_) return;
      wanted_ = false;
      running_ = true;
    }
    int rc = sqlite3_wal_checkpoint_v2(own_.handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                       nullptr);
    // BUSY only means another checkpoint is running; the next commit over the threshold retries.
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
      stop_on_storage_failure(own_.error("checkpointing the WAL"));
    std::lock_guard lock(mu_);
    ++checkpoints_;
    running_ = false;
  }
}

}  // namespace clusterpin::store
