// Raft commit benchmark: three peers in one process, each a real node::RaftDriver with its own
// raft.db (synchronous=FULL, group commit on a storage thread) and state.db, all on ONE io_context
// thread as in the daemon; the "network" posts each message to the target's step(). For each
// level C, C proposals stay outstanding at the leader. Reports entries/s, pins/s, latency
// (propose -> applied at the leader), fsyncs per entry, io-thread CPU, loop stalls and bytes
// written per pin, so a slow result says whether the disk or the event loop is the limit.
#include <asio.hpp>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "core/cid.hpp"
#include "core/command.hpp"
#include "core/pin.hpp"
#include "core/raft/node.hpp"
#include "node/raft_driver.hpp"
#include "store/log_writer.hpp"
#include "store/raft_log.hpp"
#include "store/state_db.hpp"

using namespace clusterpin;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

constexpr std::chrono::milliseconds kTick{100};  // as the daemon (src/node/peer.cpp)
constexpr std::chrono::milliseconds kProposeTimeout{30'000};

struct Args {
  double seconds = 5;
  std::vector<std::size_t> levels{1, 16, 256};
  std::size_t pins_per_entry = 1;
  std::size_t max_entries = 0;  // per level; 0: chosen from pins_per_entry
  fs::path dir;
};

[[noreturn]] void usage_error(const std::string& what) {
  fmt::print(stderr,
             "raft_bench: {}\naccepted: --seconds S (per level, > 0) --levels N,N,... "
             "--pins-per-entry N --max-entries N (per level) --dir FOLDER\n",
             what);
  std::exit(2);
}

std::size_t parse_count(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v == 0) {
    usage_error(fmt::format("{}: \"{}\" is not a whole number >= 1", flag, text));
  }
  return static_cast<std::size_t>(v);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(fmt::format("{} needs a value", flag));
      return argv[++i];
    };
    if (flag == "--seconds") {
      std::string v = value();
      char* end = nullptr;
      a.seconds = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(a.seconds > 0)) {
        usage_error(fmt::format("--seconds: \"{}\" is not a number > 0", v));
      }
    } else if (flag == "--levels") {
      a.levels.clear();
      std::stringstream list(value());
      std::string item;
      while (std::getline(list, item, ',')) a.levels.push_back(parse_count("--levels", item));
      if (a.levels.empty()) usage_error("--levels: give at least one level, e.g. 1,16,256");
    } else if (flag == "--pins-per-entry") {
      a.pins_per_entry = parse_count(flag, value());
    } else if (flag == "--max-entries") {
      a.max_entries = parse_count(flag, value());
    } else if (flag == "--dir") {
      a.dir = value();
    } else {
      usage_error(fmt::format("unknown flag \"{}\"", flag));
    }
  }
  if (a.dir.empty()) a.dir = fs::temp_directory_path();
  if (a.max_entries == 0) {
    // Enough for well over the machine's budget (~11k fsyncs/s, ~0.5M rows/s) for 5 s.
    a.max_entries = a.pins_per_entry == 1 ? 300'000 : std::max<std::size_t>(1000, 2'500'000 / a.pins_per_entry);
  }
  return a;
}

// CPU seconds (user + system) a thread of this process has used so far.
double thread_cpu_seconds(pid_t tid) {
  std::ifstream stat(fmt::format("/proc/self/task/{}/stat", tid));
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::stringstream rest(text.substr(close + 2));
  std::string field;
  // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
  double utime = 0, stime = 0;
  for (int n = 3; n <= 15 && rest >> field; ++n) {
    if (n == 14) utime = std::strtod(field.c_str(), nullptr);
    if (n == 15) stime = std::strtod(field.c_str(), nullptr);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double process_cpu_seconds() {
  double total = 0;
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    total += thread_cpu_seconds(static_cast<pid_t>(std::stol(task.path().filename().string())));
  }
  return total;
}

// Bytes this process handed to write() so far (all threads): SQLite's WAL frames of raft.db
// and state.db, i.e. the write amplification of a pin.
double written_mb() {
  std::ifstream io("/proc/self/io");
  std::string key;
  std::uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "wchar:") return static_cast<double>(value) / (1024.0 * 1024.0);
  }
  return 0;
}

// One in-process peer: its data folder, its stores and its driver.
struct BenchPeer {
  raft::NodeId id;
  fs::path dir;
  std::optional<store::StateDb> state;
  store::LogWriter* writer = nullptr;  // owned by `driver`
  std::unique_ptr<node::RaftDriver> driver;
};

// With one proposer, splits each proposal's latency at the messages the peers send, which they
// send only after their fsync returned: propose -> the leader's Append with the entry (leader
// fsync) -> the first follower's AppendResponse (follower fsync) -> done (the leader's next
// Ready: commit index fsync, apply to state.db).
struct PhaseTrace {
  bool active = false;
  int stage = 0;  // 0: proposed, 1: Append seen, 2: AppendResponse seen
  Clock::time_point proposed, appended, acknowledged;
  double leader_ms = 0, follower_ms = 0, commit_ms = 0;
  std::uint64_t samples = 0;

  void on_send(const raft::Message& m) {
    if (!active) return;
    if (stage == 0 && m.type == raft::MessageType::Append && !m.entries.empty()) {
      appended = Clock::now();
      stage = 1;
    } else if (stage == 1 && m.type == raft::MessageType::AppendResponse && !m.reject) {
      acknowledged = Clock::now();
      stage = 2;
    }
  }
  void on_done(Clock::time_point done) {
    if (!active || stage != 2) return;
    using ms = std::chrono::duration<double, std::milli>;
    leader_ms += ms(appended - proposed).count();
    follower_ms += ms(acknowledged - appended).count();
    commit_ms += ms(done - acknowledged).count();
    ++samples;
  }
};

struct Cluster {
  asio::io_context io;
  std::vector<std::unique_ptr<BenchPeer>> peers;
  PhaseTrace trace;

  BenchPeer* find(const raft::NodeId& id) {
    for (auto& p : peers) {
      if (p->id == id) return p.get();
    }
    return nullptr;
  }
  BenchPeer* leader() {
    for (auto& p : peers) {
      if (p->driver->node().role() == raft::Role::Leader) return p.get();
    }
    return nullptr;
  }
};

// Builds a peer the way Peer::start does for a founding member: bootstrap state made durable in
// raft.db before Raft starts, cluster id fixed in both databases.
Status add_peer(Cluster& cluster, const fs::path& root, const raft::NodeId& id,
                const std::vector<raft::NodeId>& voters, std::uint64_t seed) {
  auto peer = std::make_unique<BenchPeer>();
  peer->id = id;
  peer->dir = root / id;
  const std::string cluster_id = "raft-bench";

  auto log = store::RaftLog::open(peer->dir);
  if (!log) return log.error();
  if (auto loaded = log->load(); !loaded) return loaded.error();
  raft::DurableState durable = raft::bootstrap_state(voters);
  if (auto s = log->set_cluster_id(cluster_id); !s) return s;
  store::LogBatch founding;
  founding.hard_state = durable.hard;
  founding.entries = durable.entries;
  if (auto s = log->apply(founding); !s) return s;

  auto state = store::StateDb::open(peer->dir);
  if (!state) return state.error();
  peer->state.emplace(std::move(state).value());
  if (auto s = peer->state->set_cluster_id(cluster_id); !s) return s;
  auto applied = peer->state->applied();
  if (!applied) return applied.error();
  durable.applied = applied->index;

  // The daemon's defaults (service.json consensus.raft, converted as in Peer::start_raft_with).
  raft::Config cfg;
  cfg.id = id;
  cfg.cluster_id = cluster_id;
  cfg.heartbeat_ticks = 3;        // heartbeat_timeout 1s / 4, in 100 ms ticks
  cfg.election_ticks = 10;        // election_timeout 1s
  cfg.lease_ticks = 10;
  cfg.max_append_entries = 64;
  cfg.trailing_logs = 10240;
  cfg.snapshot_threshold = 8192;
  cfg.snapshot_interval_ticks = 1200;  // 2 minutes
  cfg.seed = seed;

  auto writer = std::make_unique<store::LogWriter>(std::move(log).value());
  peer->writer = writer.get();
  node::RaftDriver::Callbacks callbacks;
  callbacks.send = [&cluster](const raft::Message& m) {
    cluster.trace.on_send(m);
    BenchPeer* to = cluster.find(m.to);
    if (to == nullptr) return;
    asio::post(cluster.io, [to, m] { to->driver->step(m); });
  };
  auto driver = node::RaftDriver::create(cluster.io, std::move(cfg), std::move(durable),
                                         std::move(writer), *peer->state, peer->dir, kTick,
                                         std::move(callbacks));
  if (!driver) return driver.error();
  peer->driver = std::move(driver).value();
  cluster.peers.push_back(std::move(peer));
  return {};
}

// Runs `fn` on the io thread and waits for its result.
template <typename Fn>
auto on_io(Cluster& cluster, Fn fn) -> decltype(fn()) {
  std::packaged_task<decltype(fn())()> task(std::move(fn));
  auto result = task.get_future();
  asio::post(cluster.io, [&task] { task(); });
  return result.get();
}

// Entry payloads for one level, made before it starts so the measured loop only proposes.
std::vector<std::string> make_entries(std::size_t count, std::size_t pins_per_entry,
                                      std::uint64_t& next_pin) {
  std::vector<std::string> entries;
  entries.reserve(count);
  auto now = std::chrono::system_clock::now().time_since_epoch();
  UnixNanos stamp = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count();
  std::vector<PinsetOp> ops;
  for (std::size_t e = 0; e < count; ++e) {
    ops.clear();
    for (std::size_t p = 0; p < pins_per_entry; ++p) {
      std::string content = fmt::format("raft_bench pin {}", next_pin++);
      Pin pin(Cid::from_content(Codec::raw, as_bytes(content)));
      pin.timestamp = stamp;
      ops.push_back(PinsetOp{PinsetOp::Kind::pin, std::move(pin)});
    }
    entries.push_back(encode_ops(ops));
  }
  return entries;
}

struct LevelResult {
  std::size_t concurrency = 0;
  std::uint64_t ok = 0;
  std::uint64_t errors = 0;
  std::string first_error;
  double seconds = 0;
  std::vector<double> latency_ms;
  bool bounded = false;  // ran out of prepared entries before the time was up
  std::uint64_t leader_txns = 0;
  std::uint64_t follower_txns = 0;  // sum over both followers
  double io_cpu = 0;                // io thread CPU seconds during the level
  double all_cpu = 0;               // whole process CPU seconds during the level
  PhaseTrace trace;                 // filled with one proposer only
  double max_stall_ms = 0;          // longest time the io thread did not get to a due timer
  double written_mb = 0;            // written by all three peers during the level
};

// The closed loop of one level; lives on the io thread until `finished` is set.
struct LevelRun {
  LevelRun(Cluster& c, std::size_t n) : cluster(c), concurrency(n) {}

  Cluster& cluster;
  std::size_t concurrency;
  std::vector<std::string> entries;
  std::size_t next = 0;
  std::size_t outstanding = 0;
  bool stopping = false;
  bool finished_set = false;
  Clock::time_point start, last_done;
  std::unique_ptr<asio::steady_timer> deadline;
  std::unique_ptr<asio::steady_timer> retry;
  std::unique_ptr<asio::steady_timer> probe;  // measures how long the loop was kept busy
  Clock::time_point probe_due;
  LevelResult result;
  std::promise<void> finished;

  void begin(double seconds) {
    cluster.trace = PhaseTrace{};
    cluster.trace.active = concurrency == 1;
    start = last_done = Clock::now();
    deadline = std::make_unique<asio::steady_timer>(
        cluster.io, std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)));
    deadline->async_wait([this](const std::error_code& ec) {
      if (ec) return;
      stopping = true;
      maybe_finish();
    });
    retry = std::make_unique<asio::steady_timer>(cluster.io);
    probe = std::make_unique<asio::steady_timer>(cluster.io);
    arm_probe();
    issue();
  }

  // A 5 ms timer: how late it fires is how long the io thread was busy with something else
  // (a long apply, a snapshot copy), which delays every peer's messages.
  void arm_probe() {
    probe_due = Clock::now() + std::chrono::milliseconds(5);
    probe->expires_at(probe_due);
    probe->async_wait([this](const std::error_code& ec) {
      if (ec || finished_set) return;
      double late = std::chrono::duration<double, std::milli>(Clock::now() - probe_due).count();
      result.max_stall_ms = std::max(result.max_stall_ms, late);
      arm_probe();
    });
  }

  void issue() {
    if (finished_set) return;
    if (stopping) return maybe_finish();
    BenchPeer* leader = cluster.leader();
    if (leader == nullptr) {
      // Between leaders: try again shortly (counted in latency of nothing; rare).
      retry->expires_after(std::chrono::milliseconds(10));
      retry->async_wait([this](const std::error_code& ec) {
        if (!ec) issue();
      });
      return;
    }
    while (outstanding < concurrency && next < entries.size()) {
      std::string data = std::move(entries[next++]);
      ++outstanding;
      auto sent = Clock::now();
      cluster.trace.proposed = sent;
      cluster.trace.stage = 0;
      leader->driver->propose(std::move(data), kProposeTimeout, [this, sent](Status s) {
        auto now = Clock::now();
        if (s.ok()) cluster.trace.on_done(now);
        --outstanding;
        last_done = now;
        if (s.ok()) {
          ++result.ok;
          result.latency_ms.push_back(std::chrono::duration<double, std::milli>(now - sent).count());
        } else {
          if (result.errors++ == 0) result.first_error = s.error().message;
        }
        // Like a client reacting to an answer: the next proposal is a new event on the loop.
        asio::post(cluster.io, [this] { issue(); });
      });
    }
    if (next >= entries.size()) {
      result.bounded = !stopping;
      stopping = true;
    }
    maybe_finish();
  }

  void maybe_finish() {
    if (!stopping || outstanding > 0 || finished_set) return;
    finished_set = true;
    deadline->cancel();
    retry->cancel();
    probe->cancel();
    result.seconds = std::chrono::duration<double>(last_done - start).count();
    result.trace = cluster.trace;
    cluster.trace.active = false;
    finished.set_value();
  }
};

double percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(rank, sorted.size() - 1)];
}

// Waits (on the calling thread) until every peer applied what the leader committed.
bool wait_caught_up(Cluster& cluster, std::chrono::milliseconds limit) {
  auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    bool done = on_io(cluster, [&cluster] {
      BenchPeer* leader = cluster.leader();
      if (leader == nullptr) return false;
      raft::Index commit = leader->driver->node().commit_index();
      for (auto& p : cluster.peers) {
        if (p->driver->node().applied_index() < commit) return false;
      }
      return true;
    });
    if (done) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// What the disk gives right now without Raft: one RaftLog applying batches back to back for
// about a second, each batch `entries_per_commit` entries of `bytes` bytes in one transaction.
// Returns durable commits per second (0 on error).
double calibrate_commits(const fs::path& dir, std::size_t entries_per_commit, std::size_t bytes) {
  auto log = store::RaftLog::open(dir);
  if (!log) return 0;
  std::string payload(bytes, 'x');
  raft::Index index = 0;
  std::uint64_t commits = 0;
  auto start = Clock::now();
  auto until = start + std::chrono::seconds(1);
  while (Clock::now() < until) {
    store::LogBatch batch;
    for (std::size_t i = 0; i < entries_per_commit; ++i) {
      batch.entries.push_back(raft::Entry{1, ++index, raft::EntryType::Normal, payload});
    }
    batch.hard_state = raft::HardState{1, "", index};
    if (!log->apply(batch)) return 0;
    ++commits;
  }
  return static_cast<double>(commits) / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse(argc, argv);

  std::error_code ec;
  fs::path root = args.dir / fmt::format("clusterpin-raft-bench-{}", ::getpid());
  fs::create_directories(root, ec);
  if (ec) {
    fmt::print(stderr, "raft_bench: cannot create {}: {}\n", root.string(), ec.message());
    return 1;
  }

  // Entry payloads are about as large as the benchmark's: ~100 bytes per pin.
  double disk_commits = calibrate_commits(root / "calibrate-1", 1, 100);
  double disk_commits_100 = calibrate_commits(root / "calibrate-100", 100, 100);
  fs::remove_all(root / "calibrate-1", ec);
  fs::remove_all(root / "calibrate-100", ec);

  int exit_code = 0;
  {
    Cluster cluster;
    const std::vector<raft::NodeId> voters{"peer-a", "peer-b", "peer-c"};
    for (std::size_t i = 0; i < voters.size(); ++i) {
      if (auto s = add_peer(cluster, root, voters[i], voters, 1000 + i); !s) {
        fmt::print(stderr, "raft_bench: peer {}: {}\n", voters[i], s.error().message);
        fs::remove_all(root, ec);
        return 1;
      }
    }

    auto work = asio::make_work_guard(cluster.io);
    std::atomic<pid_t> io_tid{0};
    std::thread io_thread([&] {
      io_tid = static_cast<pid_t>(::syscall(SYS_gettid));
      pthread_setname_np(pthread_self(), "raft-bench-io");
      cluster.io.run();
    });
    on_io(cluster, [&cluster] {
      for (auto& p : cluster.peers) p->driver->start();
      return 0;
    });

    // A leader, and its first entry of its term committed (proposals are accepted then).
    auto wait_from = Clock::now();
    bool leader_ready = false;
    while (!leader_ready && Clock::now() - wait_from < std::chrono::seconds(15)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      leader_ready = on_io(cluster, [&cluster] {
        BenchPeer* l = cluster.leader();
        if (l == nullptr) return false;
        const raft::Node& n = l->driver->node();
        auto t = n.term_at(n.commit_index());
        return t && *t == n.term() && n.applied_index() == n.commit_index();
      });
    }
    if (!leader_ready) {
      fmt::print(stderr, "raft_bench: no leader within 15 s\n");
      exit_code = 1;
    }
    double election_s = std::chrono::duration<double>(Clock::now() - wait_from).count();

    std::vector<LevelResult> results;
    std::vector<std::unique_ptr<LevelRun>> runs;
    std::uint64_t next_pin = 0;
    std::uint64_t pins_expected = 0;
    std::size_t entry_bytes = 0;
    for (std::size_t level = 0; exit_code == 0 && level < args.levels.size(); ++level) {
      // Kept until the end: cancelled timers and posted handlers may still name it.
      runs.push_back(std::make_unique<LevelRun>(cluster, args.levels[level]));
      LevelRun* run = runs.back().get();
      run->entries = make_entries(args.max_entries, args.pins_per_entry, next_pin);
      entry_bytes = run->entries.front().size();
      run->result.concurrency = args.levels[level];
      run->result.latency_ms.reserve(args.max_entries);

      struct Before {
        store::LogWriter::Stats leader;
        std::uint64_t followers = 0;
      };
      auto finished = run->finished.get_future();
      double io_before = thread_cpu_seconds(io_tid);
      double all_before = process_cpu_seconds();
      double mb_before = written_mb();
      Before before = on_io(cluster, [&cluster, run, &args] {
        Before b;
        BenchPeer* leader = cluster.leader();
        for (auto& p : cluster.peers) {
          if (p.get() == leader) {
            b.leader = p->writer->stats();
          } else {
            b.followers += p->writer->stats().transactions;
          }
        }
        run->begin(args.seconds);
        return b;
      });
      finished.wait();
      double io_after = thread_cpu_seconds(io_tid);
      double all_after = process_cpu_seconds();
      run->result.written_mb = written_mb() - mb_before;
      on_io(cluster, [&cluster, run, &before] {
        BenchPeer* leader = cluster.leader();
        std::uint64_t followers = 0;
        for (auto& p : cluster.peers) {
          if (p.get() == leader) {
            run->result.leader_txns = p->writer->stats().transactions - before.leader.transactions;
          } else {
            followers += p->writer->stats().transactions;
          }
        }
        run->result.follower_txns = followers - before.followers;
        return 0;
      });
      run->result.io_cpu = io_after - io_before;
      run->result.all_cpu = all_after - all_before;
      pins_expected += run->result.ok * args.pins_per_entry;
      results.push_back(std::move(run->result));
      if (!wait_caught_up(cluster, std::chrono::seconds(10))) {
        fmt::print(stderr, "raft_bench: followers did not catch up within 10 s\n");
      }
    }

    // Every peer must hold exactly the pins that were acknowledged.
    std::vector<std::uint64_t> counts;
    if (exit_code == 0) {
      wait_caught_up(cluster, std::chrono::seconds(10));
      counts = on_io(cluster, [&cluster] {
        std::vector<std::uint64_t> c;
        for (auto& p : cluster.peers) {
          std::uint64_t n = 0;
          if (auto reader = p->state->open_reader()) {
            if (auto pins = reader->count_pins()) n = *pins;
          }
          c.push_back(n);
        }
        return c;
      });
    }

    // Stop the drivers on their thread, then the loop; the LogWriters flush in the destructors.
    on_io(cluster, [&cluster] {
      for (auto& p : cluster.peers) p->driver->stop();
      return 0;
    });
    work.reset();
    cluster.io.stop();
    io_thread.join();
    for (auto& p : cluster.peers) p->driver.reset();

    if (exit_code == 0) {
      fmt::print("raft_bench: 3 peers, one io thread, instant network, raft.db synchronous=FULL; "
                 "{} pin(s) per entry ({} bytes), {} s per level; leader after {:.2f} s\n",
                 args.pins_per_entry, entry_bytes, args.seconds, election_s);
      fmt::print("disk now, one RaftLog alone: {:.0f} durable commits/s of 1 entry; {:.0f} of 100 "
                 "entries ({:.0f} rows/s)\n\n",
                 disk_commits, disk_commits_100, disk_commits_100 * 100);
      fmt::print("| proposers | entries | entries/s | pins/s | p50 ms | p99 ms | max ms | "
                 "leader fsyncs | entries/fsync | follower fsyncs | io thread CPU | process CPU | "
                 "longest loop stall ms | MB written | bytes written per pin | errors |\n");
      fmt::print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
      for (auto& r : results) {
        std::sort(r.latency_ms.begin(), r.latency_ms.end());
        double rate = r.seconds > 0 ? static_cast<double>(r.ok) / r.seconds : 0;
        double per_fsync = r.leader_txns > 0 ? static_cast<double>(r.ok) / static_cast<double>(r.leader_txns) : 0;
        fmt::print("| {} | {}{} | {:.0f} | {:.0f} | {:.2f} | {:.2f} | {:.2f} | {} | {:.1f} | {} | "
                   "{:.0f}% | {:.0f}% | {:.1f} | {:.0f} | {:.0f} | {} |\n",
                   r.concurrency, r.ok, r.bounded ? " (bound)" : "", rate,
                   rate * static_cast<double>(args.pins_per_entry), percentile(r.latency_ms, 0.50),
                   percentile(r.latency_ms, 0.99), r.latency_ms.empty() ? 0.0 : r.latency_ms.back(),
                   r.leader_txns, per_fsync, r.follower_txns,
                   r.seconds > 0 ? 100 * r.io_cpu / r.seconds : 0,
                   r.seconds > 0 ? 100 * r.all_cpu / r.seconds : 0, r.max_stall_ms, r.written_mb,
                   r.ok > 0 ? r.written_mb * 1024 * 1024 /
                                  static_cast<double>(r.ok * args.pins_per_entry)
                            : 0,
                   r.errors);
        if (r.errors > 0) fmt::print(stderr, "raft_bench: C={}: first error: {}\n", r.concurrency, r.first_error);
      }
      for (const auto& r : results) {
        if (r.trace.samples == 0) continue;
        double n = static_cast<double>(r.trace.samples);
        fmt::print("\none proposer, mean of {} proposals: leader fsync of the entry {:.2f} ms, first "
                   "follower's fsync {:.2f} ms, leader's commit-index fsync + apply {:.2f} ms\n",
                   r.trace.samples, r.trace.leader_ms / n, r.trace.follower_ms / n,
                   r.trace.commit_ms / n);
      }
      bool agree = !counts.empty();
      for (auto c : counts) agree = agree && c == pins_expected;
      fmt::print("\npins acknowledged: {}; pins in each state.db: {}\n", pins_expected,
                 fmt::format("{}/{}/{}", counts.size() > 0 ? counts[0] : 0,
                             counts.size() > 1 ? counts[1] : 0, counts.size() > 2 ? counts[2] : 0));
      if (!agree) {
        fmt::print(stderr, "raft_bench: the peers' state.db do not all hold the acknowledged pins\n");
        exit_code = 1;
      }
    }
  }
  fs::remove_all(root, ec);
  if (ec) fmt::print(stderr, "raft_bench: could not delete {}: {}\n", root.string(), ec.message());
  return exit_code;
}
