// The storage thread loop of LogWriter (contract in log_writer.hpp). The group commit is simply
// "swap the whole queue out under the lock, write it outside the lock": whatever accumulated
// while the previous commit was fsyncing is exactly the next transaction.
#include "store/log_writer.hpp"

#include <vector>

namespace clusterpin::store {

LogWriter::LogWriter(RaftLog log) : log_(std::move(log)), thread_([this] { run(); }) {}

LogWriter::~LogWriter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void LogWriter::submit(LogBatch batch, DurableCallback on_durable) {
  {
    std::lock_guard lock(mu_);
    assert(!stopping_ && "no submit after destruction began");
    queue_.push_back(Pending{std::move(batch), std::move(on_durable)});
  }
  wake_.notify_one();
}

LogWriter::Stats LogWriter::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void LogWriter::run() {
  std::vector<LogBatch> batches;
  std::vector<DurableCallback> callbacks;
  for (;;) {
    std::deque<Pending> taken;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      taken.swap(queue_);
    }
    batches.clear();
    callbacks.clear();
    for (auto& p : taken) {
      batches.push_back(std::move(p.batch));
      callbacks.push_back(std::move(p.on_durable));
    }
    if (Status s = log_.apply_all(batches); !s) stop_on_storage_failure(s.error());
    {
      std::lock_guard lock(mu_);
      stats_.transactions += 1;
      stats_.batches += batches.size();
    }
    for (auto& cb : callbacks)
      if (cb) cb(Status::ok_status());
  }
}

}  // namespace clusterpin::store
