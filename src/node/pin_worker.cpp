// PinWorker (see pin_worker.hpp). IPFS calls come back on the io thread; their results go to the
// tracker, which decides retries. tracker.db writes are flushed after each burst of changes.
#include "node/pin_worker.hpp"

#include <unordered_set>

#include <fmt/core.h>

namespace clusterpin::node {
namespace {

using namespace std::chrono;

constexpr milliseconds kRetryTick{500};
constexpr std::size_t kRecoverBatch = 10000;

struct BytesHash {
  std::size_t operator()(const Bytes& b) const noexcept { return hash_bytes(b); }
};

std::string as_string(const Bytes& b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

}  // namespace

PinWorker::PinWorker(asio::io_context& io, const ServiceConfig& config, PeerId self,
                     store::StateDb& state)
    : io_(io), config_(config), self_(std::move(self)), state_(state), retry_timer_(io),
      sync_timer_(io), recover_timer_(io), reconcile_timer_(io), ipfs_timer_(io) {}

PinWorker::~PinWorker() {
  *alive_ = false;
  stop();
}

UnixNanos PinWorker::now() const {
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

Status PinWorker::open(const std::filesystem::path& data_dir) {
  auto db = store::TrackerDb::open(data_dir);
  if (!db) return db.error();
  db_ = std::move(db).value();
  auto tracker = PinTracker::open(*db_, tracker_limits(config_.tracker), now());
  if (!tracker) return tracker.error();
  tracker_.emplace(std::move(tracker).value());
  net::IpfsConnectorOptions options;
  options.node_multiaddress = config_.ipfshttp.node_multiaddress;
  options.request_timeout = duration_cast<milliseconds>(config_.ipfshttp.ipfs_request_timeout);
  options.pin_timeout = duration_cast<milliseconds>(config_.ipfshttp.pin_timeout);
  options.unpin_timeout = duration_cast<milliseconds>(config_.ipfshttp.unpin_timeout);
  connector_ = std::make_unique<net::IpfsConnector>(io_, options);
  return {};
}

void PinWorker::start() {
  running_ = true;
  check_ipfs();
  schedule(retry_timer_, kRetryTick, &PinWorker::retry_tick);
  schedule(sync_timer_, config_.cluster.ipfs_sync_interval, &PinWorker::sync_tick);
  schedule(recover_timer_, config_.cluster.pin_recover_interval, &PinWorker::recover_tick);
  schedule(reconcile_timer_, config_.cluster.state_sync_interval, &PinWorker::reconcile_tick);
  // What the shared state asks for, whatever happened while this peer was down.
  asio::post(io_, [this, alive = alive_] {
    if (*alive) reconcile_tick();
  });
  pump();
}

void PinWorker::stop() {
  running_ = false;
  for (auto* t : {&retry_timer_, &sync_timer_, &recover_timer_, &reconcile_timer_, &ipfs_timer_}) {
    t->cancel();
  }
  flush();
}

void PinWorker::schedule(asio::steady_timer& timer, nanoseconds every, void (PinWorker::*what)()) {
  if (!running_ || every.count() <= 0) return;
  timer.expires_after(every);
  timer.async_wait([this, &timer, every, what, alive = alive_](const std::error_code& ec) {
    if (ec || !*alive || !running_) return;
    (this->*what)();
    schedule(timer, every, what);
  });
}

void PinWorker::check_ipfs() {
  connector_->id([this, alive = alive_](Result<net::IpfsId> id) {
    if (!*alive) return;
    if (id) {
      ipfs_id_ = std::move(id).value();
      ipfs_error_.clear();
    } else {
      ipfs_error_ = id.error().message;
    }
    if (!running_) return;
    ipfs_timer_.expires_after(ipfs_error_.empty() ? seconds(30) : seconds(2));
    ipfs_timer_.async_wait([this, alive](const std::error_code& ec) {
      if (!ec && *alive) check_ipfs();
    });
  });
}

void PinWorker::flush() {
  if (!db_) return;
  if (auto s = db_->flush(); !s) {
    fmt::print(stderr, "clusterpin daemon: tracker.db: {}\n", s.error().message);
  }
}

void PinWorker::pin_applied(const Pin& pin) {
  tracker_->track(pin, pin.allocated_to(self_), now());
  pump();
}

void PinWorker::unpin_applied(const Cid& cid) {
  tracker_->untrack(cid, now());
  pump();
}

void PinWorker::state_replaced() { reconcile_tick(); }

void PinWorker::retry_tick() { pump(); }

void PinWorker::pump() {
  if (!running_) return;
  for (TrackerOperation& op : tracker_->next_operations(now())) run(std::move(op));
  flush();
}

void PinWorker::run(TrackerOperation op) {
  Cid cid = op.pin.cid;
  std::uint64_t id = op.id;
  auto finished = [this, cid, id, alive = alive_](Status result) {
    if (!*alive || !tracker_) return;
    tracker_->operation_finished(cid, id, result, now());
    pump();
  };
  if (op.op == TrackerOp::unpin) return connector_->pin_rm(cid, finished);
  const auto& update = op.pin.options.pin_update;
  if (update && *update != cid) return connector_->pin_update(*update, cid, finished);
  connector_->pin_add(cid, op.pin.options.mode, finished);
}

Result<std::optional<TrackerRecord>> PinWorker::status(const Cid& cid) { return tracker_->status(cid); }

Status PinWorker::for_each(const StatusFilter& filter,
                           const std::function<bool(const TrackerRecord&)>& visit) {
  return tracker_->for_each(filter, visit);
}

Result<std::optional<TrackerRecord>> PinWorker::recover(const Cid& cid) {
  auto r = tracker_->recover(cid, now());
  pump();
  return r;
}

Result<std::vector<TrackerRecord>> PinWorker::recover_all() {
  auto r = tracker_->recover_all(now(), kRecoverBatch);
  pump();
  return r;
}

void PinWorker::recover_tick() { (void)recover_all(); }

void PinWorker::sync(std::function<void(Result<std::size_t>)> done) {
  if (syncing_) return done(make_error("a sync with IPFS is already running"));
  syncing_ = true;
  // One streamed listing of recursive and direct pins; the set holds CID bytes only.
  auto pinned = std::make_shared<std::unordered_set<Bytes, BytesHash>>();
  UnixNanos listed_at = now();
  connector_->pin_ls("all",
      [pinned](const Cid& cid, std::string_view) {
        pinned->insert(cid.bytes());
        return true;
      },
      [this, pinned, listed_at, done, alive = alive_](Status s) {
        if (!*alive) return;
        syncing_ = false;
        if (!s) return done(s.error());
        auto changed = tracker_->reconcile_ipfs(
            [&](const Cid& cid) { return pinned->count(cid.bytes()) != 0; }, listed_at, now());
        pump();
        done(std::move(changed));
      });
}

void PinWorker::sync_tick() {
  sync([](Result<std::size_t> r) {
    if (!r) fmt::print(stderr, "clusterpin daemon: sync with IPFS failed: {}\n", r.error().message);
  });
}

void PinWorker::reconcile_tick() {
  if (!tracker_) return;
  auto reader = state_.open_reader();
  if (!reader) return;
  auto shared_reader = std::make_shared<store::StateReader>(std::move(reader).value());
  SharedPinsetScan scan = [shared_reader](const std::function<bool(const Pin&)>& visit) {
    return shared_reader->for_each_pin([&](std::string_view, std::string_view bytes) {
      auto pin = decode_pin(bytes);
      return !pin || visit(*pin);
    });
  };
  auto in_pinset = [shared_reader](const Cid& cid) {
    auto found = shared_reader->get_pin(as_string(cid.bytes()));
    return found && found->has_value();
  };
  auto changed = tracker_->reconcile_shared(scan, in_pinset, self_, now());
  if (!changed) {
    fmt::print(stderr, "clusterpin daemon: reconciling with the shared state failed: {}\n",
               changed.error().message);
  }
  // Expired pins: exactly one live peer (the XOR-closest to each CID) proposes the unpin.
  if (cluster_.live_peers && cluster_.commit) {
    auto expired = expired_to_unpin(scan, now(), self_, cluster_.live_peers(), kRecoverBatch);
    if (expired && !expired->empty()) {
      std::vector<PinsetOp> ops;
      for (Cid& cid : *expired) ops.push_back({PinsetOp::Kind::unpin, Pin(std::move(cid))});
      cluster_.commit(std::move(ops));
    }
  }
  pump();
}

}  // namespace clusterpin::node
