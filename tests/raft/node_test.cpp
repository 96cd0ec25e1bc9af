// Unit tests of raft::Node: elections and pre-vote, replication and the commit rule, proposals
// and their errors, membership changes, leadership transfer, snapshot chunking, restart, and the
// cluster-id check. Most run on a hand-driven Cluster with the invariant checker on.
#include <doctest/doctest.h>

#include "cluster.hpp"
#include "core/raft/codec.hpp"
#include "core/raft/config.hpp"

namespace clusterpin::raft::test {
namespace {

const std::vector<NodeId> kThree = {"a", "b", "c"};

// Elects `id` and lets its first heartbeats and the no-op entry settle on every peer.
void elect_and_settle(Cluster& c, const NodeId& id) {
  c.elect(id);
  c.tick_all(2);
  c.deliver_all();
}

bool has_command(Cluster& c, const NodeId& id, const std::string& cmd) {
  return c.peer(id).state().has(cmd);
}

TEST_CASE("election: a peer that times out becomes leader and commits a no-op of its term") {
  Cluster c(kThree);
  CHECK(c.elect("a") == "a");
  Node& a = c.node("a");
  CHECK(a.term() == 2);
  CHECK(a.last_index() == 2);
  CHECK(c.peer("a").durable().log.back().type == EntryType::Noop);
  c.tick_all(2);
  c.deliver_all();
  CHECK(a.commit_index() == 2);
  CHECK(c.node("b").leader() == "a");
  CHECK(c.node("c").commit_index() == 2);
}

TEST_CASE("election: election timeouts are randomized in [election, 2*election)") {
  std::set<int> timeouts;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    Config cfg = test_config("a", seed);
    auto n = Node::create(cfg, bootstrap_state({"a", "b", "c"}), nullptr);
    REQUIRE(n.ok());
    int ticks = 0;
    while (n->role() == Role::Follower && ticks < 100) {
      n->tick();
      ++ticks;
    }
    CHECK(ticks >= cfg.election_ticks);
    CHECK(ticks < 2 * cfg.election_ticks);
    timeouts.insert(ticks);
  }
  CHECK(timeouts.size() > 3);
}

TEST_CASE("pre-vote: a peer that cannot win does not raise its term") {
  Cluster c(kThree);
  c.elect("a");
  c.isolate("c");
  Term before = c.node("c").term();
  c.tick("c", 100);
  c.deliver_all();
  CHECK(c.node("c").term() == before);
  CHECK(c.node("c").role() == Role::PreCandidate);
}

TEST_CASE("pre-vote off: an isolated peer raises its term on every timeout") {
  Cluster c(kThree, [](Config& cfg) { cfg.pre_vote = false; });
  c.elect("a");
  c.isolate("c");
  Term before = c.node("c").term();
  c.tick("c", 100);
  CHECK(c.node("c").term() > before + 2);
}

TEST_CASE("votes: a candidate with a shorter log is refused") {
  Cluster c(kThree);
  c.elect("a");
  c.cut("a", "c");
  for (int i = 0; i < 3; ++i) REQUIRE(c.node("a").propose("x" + std::to_string(i)).ok());
  c.deliver_all();
  CHECK(c.node("b").last_index() > c.node("c").last_index());
  c.isolate("a");
  // c's log is shorter than b's: b refuses both the pre-vote and the vote.
  c.elect("c");
  CHECK(c.node("c").role() != Role::Leader);
  CHECK(c.elect("b") == "b");
}

TEST_CASE("proposals: a follower refuses and names the leader") {
  Cluster c(kThree);
  c.elect("a");
  auto r = c.node("b").propose("x");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("the leader is a") != std::string::npos);
}

TEST_CASE("proposals: an entry larger than an Append message may hold is refused, saying so") {
  Cluster c(kThree, [](Config& cfg) { cfg.max_append_bytes = 1000; });
  c.elect("a");
  Index last = c.node("a").last_index();
  auto r = c.node("a").propose(std::string(1001, 'x'));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("1001 bytes") != std::string::npos);
  CHECK(r.error().message.find("1000 bytes") != std::string::npos);
  CHECK(c.node("a").last_index() == last);  // nothing was appended
  CHECK(c.node("a").propose(std::string(1000, 'x')).ok());
}

TEST_CASE("replication: Append messages carry at most max_append_bytes of entries") {
  Cluster c(kThree, [](Config& cfg) { cfg.max_append_bytes = 250; });
  elect_and_settle(c, "a");
  c.cut("a", "c");  // c falls behind: catching it up sends many entries at once
  for (int i = 0; i < 10; ++i) {  // 100 bytes each, distinct: two fit in a message
    std::string command = "p" + std::to_string(i);
    command.resize(100, '.');
    REQUIRE(c.node("a").propose(command).ok());
  }
  c.deliver_all();
  c.heal();
  int batched = 0;
  auto check = [&](Message& m) {
    if (m.type != MessageType::Append || m.to != "c") return true;
    std::size_t bytes = 0;
    for (const Entry& e : m.entries) bytes += e.data.size();
    CHECK((bytes <= 250 || m.entries.size() == 1));
    if (m.entries.size() > 1) ++batched;
    return true;
  };
  for (int round = 0; round < 10; ++round) {
    c.tick_all(1);
    c.deliver_all(check);
  }
  CHECK(batched > 0);  // entries did go out together, two at a time
  for (const auto& id : kThree) {
    CHECK(c.peer(id).state().commands.size() == 10);
    CHECK(c.node(id).commit_index() == c.node("a").last_index());
  }
}

TEST_CASE("replication: proposals commit and are applied once on every peer") {
  Cluster c(kThree, [](Config& cfg) { cfg.max_append_entries = 2; cfg.max_inflight = 2; });
  c.elect("a");
  for (int i = 0; i < 20; ++i) REQUIRE(c.node("a").propose("p" + std::to_string(i)).ok());
  c.deliver_all();
  c.tick_all(3);
  c.deliver_all();
  for (const auto& id : kThree) {
    CHECK(c.peer(id).state().commands.size() == 20);
    CHECK(c.node(id).commit_index() == c.node("a").last_index());
  }
}

TEST_CASE("replication: a leader's appends go out before its own persist, and an entry durable on "
          "a majority of followers stays committed when the leader crashes before persisting it") {
  Cluster c(kThree);
  elect_and_settle(c, "a");
  Node& a = c.node("a");
  auto index = a.propose("early");
  REQUIRE(index.ok());
  REQUIRE(c.peer("a").take_ready());
  const Ready& r = c.peer("a").unsynced();
  REQUIRE(r.entries.size() == 1);
  int early = 0;
  for (const Message& m : r.send_now) {
    CHECK((m.type == MessageType::Append || m.type == MessageType::Heartbeat));
    if (m.type == MessageType::Append && !m.entries.empty() && m.entries.back().index == *index)
      ++early;
    CHECK(m.commit < *index);  // the leader's own copy is not durable: it counts for nothing yet
  }
  CHECK(early == 2);
  for (const Message& m : r.messages) CHECK(m.type != MessageType::Append);

  // b and c persist the entry and answer while a's persist is still pending.
  c.queue() = r.send_now;
  c.deliver_all();
  CHECK(c.peer("a").has_unsynced());
  CHECK(a.commit_index() == *index);  // b and c are a durable majority
  CHECK(c.peer("b").durable().log.back().data == "early");

  c.crash("a");  // the leader's copy is lost before its persist
  CHECK(c.elect("b") == "b");
  c.tick_all(2);
  c.deliver_all();
  c.restart("a");
  c.tick_all(3);
  c.deliver_all();
  for (const NodeId& id : kThree) {
    CAPTURE(id);
    CHECK(has_command(c, id, "early"));
  }
  CHECK(c.checker().ok());
}

TEST_CASE("apply early: a leader applies what committed before its next Ready persists, and a "
          "crash in between keeps it applied") {
  Cluster c(kThree);
  elect_and_settle(c, "a");
  Node& a = c.node("a");
  auto x = a.propose("x");
  REQUIRE(x.ok());
  // a persists x and sends it; b and c persist it and answer; nothing else is delivered.
  REQUIRE(c.peer("a").take_ready());
  std::vector<Message> out = c.peer("a").unsynced().send_now;
  auto synced = c.peer("a").sync();
  REQUIRE(synced.error.empty());
  std::vector<Message> acks;
  for (const Message& m : out) {
    if (m.type != MessageType::Append) continue;
    REQUIRE(c.node(m.to).step(m).ok());
    REQUIRE(c.peer(m.to).take_ready());
    auto r = c.peer(m.to).sync();
    for (const Message& ack : r.messages) acks.push_back(ack);
  }
  for (const Message& m : acks) REQUIRE(a.step(m).ok());
  REQUIRE(a.commit_index() >= *x);
  CHECK_FALSE(has_command(c, "a", "x"));

  // y is proposed; the Ready that persists y hands out x as committed and durable here.
  REQUIRE(a.propose("y").ok());
  REQUIRE(c.peer("a").take_ready());
  const Ready& r = c.peer("a").unsynced();
  CHECK(r.entries.size() == 1);
  CHECK(r.apply_early_through >= *x);
  CHECK(has_command(c, "a", "x"));  // applied while y is not durable yet
  CHECK_FALSE(has_command(c, "a", "y"));

  // Lost before y's persist: the commit index x raised was never made durable, the applied
  // state is ahead of it, and the restart takes the applied index as committed.
  c.crash("a");
  c.restart("a");
  CHECK(c.node("a").applied_index() >= *x);
  CHECK(c.node("a").commit_index() >= *x);
  c.elect("b");
  c.tick_all(3);
  c.deliver_all();
  for (const NodeId& id : kThree) {
    CAPTURE(id);
    CHECK(has_command(c, id, "x"));
  }
  CHECK(c.checker().ok());
}

TEST_CASE("apply early: a follower waits for the persist of entries that arrive committed") {
  Cluster c(kThree);
  elect_and_settle(c, "a");
  c.isolate("b");
  REQUIRE(c.node("a").propose("z").ok());
  c.deliver_all();  // a and c commit z without b
  REQUIRE(has_command(c, "c", "z"));
  c.heal();
  c.tick("a", 2);  // a heartbeat finds b behind; the append that follows carries z committed
  for (int round = 0; round < 10 && !has_command(c, "b", "z"); ++round) {
    std::vector<Message> batch = std::move(c.queue());
    c.queue().clear();
    for (const Message& m : batch) {
      if (m.to != "b") continue;
      REQUIRE(c.node("b").step(m).ok());
      if (!c.peer("b").take_ready()) continue;
      const Ready& r = c.peer("b").unsynced();
      bool z_here = false;
      for (const Entry& e : r.entries) z_here = z_here || e.data == "z";
      if (z_here) {
        for (const Entry& e : r.committed) CHECK(e.index > r.apply_early_through);
        CHECK_FALSE(has_command(c, "b", "z"));  // not before its own persist
      }
      auto synced = c.peer("b").sync();
      REQUIRE(synced.error.empty());
      for (const Message& out : synced.messages) REQUIRE(c.node(out.to).step(out).ok());
    }
    c.flush();
    c.tick("a", 1);
  }
  CHECK(has_command(c, "b", "z"));
}

TEST_CASE("replication: a leader's appends wait for the persist of a Ready that raises its term") {
  // A lone voter with a learner wins an election inside one Ready: the new term and the appends
  // to the learner come together. Sent before the term is durable, a crash could make the
  // voter win that same term again and write a different entry at the same index.
  Cluster c({"solo"});
  c.tick("solo", 25);
  REQUIRE(c.node("solo").role() == Role::Leader);
  c.add_peer("l");
  REQUIRE(c.node("solo").propose_conf_change({ConfChangeType::AddLearner, "l", ""}).ok());
  c.deliver_all([](Message& m) { return m.from != "l"; });  // l stays a learner
  REQUIRE(c.node("solo").conf().learners == std::vector<NodeId>{"l"});
  Term before = c.node("solo").term();
  c.crash("solo");
  c.restart("solo");
  for (int i = 0; i < 100 && c.node("solo").role() != Role::Leader; ++i) c.node("solo").tick();
  REQUIRE(c.node("solo").role() == Role::Leader);
  REQUIRE(c.peer("solo").take_ready());
  const Ready& r = c.peer("solo").unsynced();
  REQUIRE(r.hard_state.has_value());
  CHECK(r.hard_state->term > before);
  CHECK(r.send_now.empty());
  bool append_to_learner = false;
  for (const Message& m : r.messages)
    append_to_learner |= m.type == MessageType::Append && m.to == "l";
  CHECK(append_to_learner);
}
TEST_CASE("replication: batches never exceed max_append_entries and the window max_inflight") {
  Cluster c(kThree, [](Config& cfg) { cfg.max_append_entries = 3; cfg.max_inflight = 2; });
  elect_and_settle(c, "a");
  for (int i = 0; i < 30; ++i) REQUIRE(c.node("a").propose("p" + std::to_string(i)).ok());
  c.flush();
  std::size_t appends_to_b = 0;
  for (const auto& m : c.queue()) {
    if (m.type != MessageType::Append) continue;
    CHECK(m.entries.size() <= 3);
    if (m.to == "b" && !m.entries.empty()) ++appends_to_b;
  }
  CHECK(appends_to_b == 2);
  c.deliver_all();
  CHECK(c.node("b").commit_index() >= 30);
}

TEST_CASE("commit rule: entries of an earlier term are not committed by counting replicas") {
  // a leads term 2 and gets entry 3 to b only, never learning that b has it. b then leads term
  // 3 and copies entry 3 (term 2) to c but not its own no-op (entry 4): entry 3 is now on a
  // majority (b, c) yet must stay uncommitted until an entry of term 3 is.
  Cluster c(kThree, [](Config& cfg) { cfg.max_append_entries = 1; });
  elect_and_settle(c, "a");
  c.isolate("c");
  REQUIRE(c.node("a").propose("old").ok());
  c.deliver_all([](Message& m) { return m.type != MessageType::AppendResponse; });
  CHECK(c.node("b").last_index() == 3);
  CHECK(c.node("a").commit_index() == 2);
  c.crash("a");
  c.heal();
  c.isolate("a");
  auto without_noop = [](Message& m) {
    std::erase_if(m.entries, [](const Entry& e) { return e.index >= 4; });
    return true;
  };
  CHECK(c.elect("b", without_noop) == "b");
  c.tick_all(3);
  c.deliver_all(without_noop);
  CHECK(c.node("c").last_index() == 3);
  CHECK(c.node("b").status().peers.at("c").match == 3);
  CHECK(c.node("b").commit_index() < 3);
  // Once the no-op reaches c, both entries commit.
  c.tick_all(3);
  c.deliver_all();
  CHECK(c.node("b").commit_index() == 4);
}

TEST_CASE("membership: a new peer joins as a learner and is promoted once caught up") {
  Cluster c(kThree);
  elect_and_settle(c, "a");
  for (int i = 0; i < 10; ++i) REQUIRE(c.node("a").propose("p" + std::to_string(i)).ok());
  c.deliver_all();
  c.add_peer("d");
  auto idx = c.node("a").propose_conf_change({ConfChangeType::AddLearner, "d", "/ip4/1.2.3.4"});
  REQUIRE(idx.ok());
  CHECK(c.node("a").conf().learners == std::vector<NodeId>{"d"});
  for (int i = 0; i < 5; ++i) {
    c.tick_all();
    c.deliver_all();
  }
  CHECK(c.node("a").conf().voters.size() == 4);
  CHECK(c.node("a").conf().learners.empty());
  CHECK(c.node("d").conf() == c.node("a").conf());
  CHECK(c.peer("d").state().commands.size() == 10);
}

TEST_CASE("membership: only one uncommitted change at a time") {
  Cluster c(kThree);
  elect_and_settle(c, "a");
  c.isolate("a");
  REQUIRE(c.node("a").propose_conf_change({ConfChangeType::AddLearner, "d", ""}).ok());
  auto second = c.node("a").propose_conf_change({ConfChangeType::AddLearner, "e", ""});
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().message.find("not committed") != std::string::npos);
}

TEST_CASE("membership: a leader asked to remove itself hands over leadership first") {
  Cluster c(kThree);
  elect_and_settle(c, "a");
  auto r = c.node("a").propose_conf_change({ConfChangeType::RemoveNode, "a", ""});
  REQUIRE_FALSE(r.ok());
  c.deliver_all();
  NodeId next = c.leader();
  REQUIRE(!next.empty());
  CHECK(next != "a");
  c.tick_all(2);
  c.deliver_all();
  REQUIRE(c.node(next).propose_conf_change({ConfChangeType::RemoveNode, "a", ""}).ok());
  c.tick_all(2);
  c.deliver_all();
  CHECK(c.node(next).conf().voters.size() == 2);
  REQUIRE(c.node(next).propose("after").ok());
  c.deliver_all();
  c.tick_all(2);
  c.deliver_all();
  CHECK(has_command(c, next, "after"));
}

TEST_CASE("transfer: leadership moves to the chosen voter") {
  Cluster c(kThree);
  elect_and_settle(c, "a");
  REQUIRE(c.node("a").transfer_leadership("c").ok());
  CHECK_FALSE(c.node("a").propose("during").ok());
  c.deliver_all();
  CHECK(c.leader() == "c");
  CHECK(c.node("a").role() == Role::Follower);
}

// Small snapshots sent in 8-byte chunks.
void small_snapshots(Config& cfg) {
  cfg.snapshot_threshold = 5;
  cfg.trailing_logs = 1;
  cfg.snapshot_chunk_size = 8;
}

// "a" leads; "c" is down while 20 commands commit and the log is compacted past them.
void leave_c_behind_a_snapshot(Cluster& c) {
  elect_and_settle(c, "a");
  c.crash("c");
  for (int i = 0; i < 20; ++i) {
    REQUIRE(c.node("a").propose("cmd" + std::to_string(i)).ok());
    c.deliver_all();
  }
}

TEST_CASE("snapshots: a lagging follower receives the snapshot in chunks") {
  Cluster c(kThree, small_snapshots);
  leave_c_behind_a_snapshot(c);
  CHECK(c.node("a").first_index() > 2);
  std::size_t before = c.snapshot_chunks();
  c.restart("c");
  for (int i = 0; i < 10; ++i) {
    c.tick_all();
    c.deliver_all();
  }
  CHECK(c.snapshot_installs() >= 1);
  CHECK(c.snapshot_chunks() - before > 3);
  CHECK(c.peer("c").state().commands == c.peer("a").state().commands);
  for (const auto& m : c.queue()) CHECK(m.data.size() <= 8);
}

TEST_CASE("snapshots: the leader names the snapshots it is streaming until their transfers end") {
  Cluster c(kThree, small_snapshots);
  leave_c_behind_a_snapshot(c);
  CHECK(c.node("a").snapshots_being_sent().empty());
  c.restart("c");
  // c's answers to the chunks are lost: the transfer stays under way.
  auto no_snapshot_answers = [](const Message& m) { return m.type != MessageType::SnapshotResponse; };
  for (int i = 0; i < 3; ++i) {
    c.tick_all();
    c.deliver_all(no_snapshot_answers);
  }
  auto sending = c.node("a").snapshots_being_sent();
  REQUIRE(sending.size() == 1);
  CHECK(sending[0] > 2);
  CHECK(c.node("b").snapshots_being_sent().empty());  // a follower streams nothing
  for (int i = 0; i < 10; ++i) {
    c.tick_all();
    c.deliver_all();
  }
  CHECK(c.snapshot_installs() >= 1);
  CHECK(c.node("a").snapshots_being_sent().empty());
}

TEST_CASE("snapshots: snapshot_interval_ticks spaces snapshots out even past the threshold") {
  Cluster c({"solo"}, [](Config& cfg) {
    cfg.snapshot_threshold = 2;
    cfg.snapshot_interval_ticks = 50;
  });
  c.tick("solo", 25);
  REQUIRE(c.node("solo").role() == Role::Leader);
  for (int i = 0; i < 4; ++i) REQUIRE(c.node("solo").propose("a" + std::to_string(i)).ok());
  c.flush();
  Index first = c.peer("solo").durable().snapshot.index;
  CHECK(first > 0);  // the first one may be taken at once
  for (int i = 0; i < 4; ++i) REQUIRE(c.node("solo").propose("b" + std::to_string(i)).ok());
  c.flush();
  CHECK(c.peer("solo").durable().snapshot.index == first);  // too soon for another
  CHECK_FALSE(c.node("solo").snapshot_due());
  c.tick("solo", 50);
  CHECK(c.node("solo").snapshot_due());
}

TEST_CASE("snapshots: none is due while one is being recorded") {
  Cluster c({"solo"}, [](Config& cfg) {
    cfg.snapshot_threshold = 2;
    cfg.snapshot_interval_ticks = 50;
  });
  c.tick("solo", 25);
  REQUIRE(c.node("solo").role() == Role::Leader);
  Node& n = c.node("solo");
  for (int i = 0; i < 4; ++i) REQUIRE(n.propose("a" + std::to_string(i)).ok());
  c.flush();  // the first snapshot is taken at once
  for (int i = 0; i < 4; ++i) REQUIRE(n.propose("b" + std::to_string(i)).ok());
  c.flush();
  c.tick("solo", 50);
  REQUIRE(n.snapshot_due());
  // The application copied its state and submitted the record; until it is durable, entries
  // applied meanwhile must not make another one due (a second copy replaced the first's file).
  Index at = n.applied_index();
  auto meta = n.snapshot_meta_at(at);
  REQUIRE(meta.ok());
  n.snapshot_started(at);
  CHECK_FALSE(n.snapshot_due());
  Index durable_before = c.peer("solo").durable().snapshot.index;
  for (int i = 0; i < 4; ++i) REQUIRE(n.propose("c" + std::to_string(i)).ok());
  c.flush();
  c.tick("solo", 60);
  CHECK_FALSE(n.snapshot_due());
  CHECK(c.peer("solo").durable().snapshot.index == durable_before);  // no second one
  REQUIRE(n.snapshot_taken(*meta).ok());
  c.tick("solo", 50);
  CHECK(n.snapshot_due());  // the entries applied since count toward the next one
}

TEST_CASE("restart: a peer rebuilt from durable state keeps its log, term and vote") {
  Cluster c(kThree);
  elect_and_settle(c, "a");
  REQUIRE(c.node("a").propose("x").ok());
  c.deliver_all();
  Term term = c.node("b").term();
  Index last = c.node("b").last_index();
  c.crash("b");
  c.restart("b");
  CHECK(c.node("b").term() == term);
  CHECK(c.node("b").last_index() == last);
  CHECK(c.node("b").applied_index() == c.peer("b").state().applied);
}

TEST_CASE("cluster id: a message of another cluster is refused and counted") {
  Cluster c(kThree);
  Message m;
  m.type = MessageType::Heartbeat;
  m.cluster_id = "other";
  m.from = "b";
  m.to = "a";
  m.term = 50;
  auto s = c.node("a").step(m);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("other") != std::string::npos);
  CHECK(c.node("a").status().foreign_messages == 1);
  CHECK(c.node("a").term() < 50);
}

TEST_CASE("restart: an inconsistent durable state is refused with a reason") {
  DurableState d = bootstrap_state({"a"});
  d.entries.push_back(Entry{1, 3, EntryType::Normal, "gap"});
  auto n = Node::create(test_config("a", 1), d, nullptr);
  REQUIRE_FALSE(n.ok());
  CHECK(n.error().message.find("contiguous") != std::string::npos);
}

TEST_CASE("config: durations convert to whole ticks, rounding up") {
  using std::chrono::milliseconds;
  CHECK(ticks_from(milliseconds(1000), milliseconds(100)) == 10);
  CHECK(ticks_from(milliseconds(1050), milliseconds(100)) == 11);
  CHECK(ticks_from(milliseconds(1), milliseconds(100)) == 1);
  Config cfg = test_config("a", 1);
  cfg.election_ticks = 1;
  CHECK_FALSE(validate(cfg).ok());
}

TEST_CASE("single voter: a lone peer elects itself and commits after persisting") {
  Cluster c({"solo"});
  c.tick("solo", 25);
  CHECK(c.node("solo").role() == Role::Leader);
  auto idx = c.node("solo").propose("x");
  REQUIRE(idx.ok());
  c.flush();
  CHECK(c.peer("solo").state().has("x"));
}


TEST_CASE("check quorum: an isolated leader steps down within the lease") {
  Cluster c(kThree);
  elect_and_settle(c, "a");
  c.isolate("a");
  int ticks = 0;
  while (c.node("a").role() == Role::Leader && ticks < 100) {
    c.tick("a");
    ++ticks;
  }
  CHECK(c.node("a").role() == Role::Follower);
  CHECK(ticks <= 2 * c.peer("a").config().lease_ticks);
  CHECK_FALSE(c.node("a").propose("late").ok());
}

TEST_CASE("learners: a learner never starts an election") {
  Cluster c(kThree);
  elect_and_settle(c, "a");
  c.add_peer("d");
  REQUIRE(c.node("a").propose_conf_change({ConfChangeType::AddLearner, "d", ""}).ok());
  // Keep d a learner: drop everything d sends so it never looks caught up.
  c.deliver_all([](Message& m) { return m.from != "d"; });
  c.crash("a");
  c.tick("d", 200);
  CHECK(c.node("d").role() == Role::Follower);
  CHECK(c.node("d").term() <= c.node("b").term());
}

TEST_CASE("learners: a learner hears its leader while heartbeats arrive, not after an election "
          "timeout of silence") {
  Cluster c(kThree);
  elect_and_settle(c, "a");
  CHECK(c.node("a").hears_leader());
  c.add_peer("d");
  REQUIRE(c.node("a").propose_conf_change({ConfChangeType::AddLearner, "d", ""}).ok());
  auto not_from_d = [](Message& m) { return m.from != "d"; };  // d stays a learner
  c.deliver_all(not_from_d);
  const int election = c.peer("d").config().election_ticks;
  for (int i = 0; i < 3 * election; ++i) {  // longer than a timeout, with heartbeats in it
    c.tick_all(1);
    c.deliver_all(not_from_d);
  }
  REQUIRE(c.node("a").conf().learners == std::vector<NodeId>{"d"});
  CHECK(c.node("d").leader() == "a");
  CHECK(c.node("d").hears_leader());
  c.crash("a");
  int silent = 0;
  while (c.node("d").hears_leader() && silent < 10 * election) {
    c.tick("d");
    ++silent;
  }
  CHECK(silent > 0);
  CHECK(silent <= election);
  CHECK(c.node("d").leader() == "a");  // a learner keeps the name: it never campaigns
  CHECK_FALSE(c.node("d").hears_leader());
}

TEST_CASE("snapshot chunks: a follower takes chunks in order, acks duplicates, refuses gaps") {
  Config cfg = test_config("f", 1);
  auto made = Node::create(cfg, bootstrap_state({"l", "f"}), nullptr);
  REQUIRE(made.ok());
  Node& f = *made;
  SnapshotMeta meta{10, 2, ConfState{{"l", "f"}, {}}};
  auto chunk = [&](std::uint64_t offset, std::string data, bool done) {
    Message m;
    m.type = MessageType::Snapshot;
    m.cluster_id = cfg.cluster_id;
    m.from = "l";
    m.to = "f";
    m.term = 2;
    m.snapshot = meta;
    m.offset = offset;
    m.data = std::move(data);
    m.done = done;
    REQUIRE(f.step(m).ok());
    Ready r = f.ready();
    f.advance();
    REQUIRE(!r.messages.empty());
    return std::make_pair(r, r.messages.back());
  };
  auto [r1, a1] = chunk(0, "abcd", false);
  CHECK(r1.snapshot_chunks.size() == 1);
  CHECK(a1.offset == 4);
  CHECK_FALSE(a1.reject);
  auto [r2, a2] = chunk(8, "ijkl", false);  // gap: bytes 4..8 missing
  CHECK(r2.snapshot_chunks.empty());
  CHECK(a2.reject);
  CHECK(a2.offset == 4);
  auto [r3, a3] = chunk(0, "abcd", false);  // offset 0 restarts the transfer
  CHECK(a3.offset == 4);
  auto [r4, a4] = chunk(4, "efgh", true);
  REQUIRE(r4.snapshot.has_value());
  CHECK(*r4.snapshot == meta);
  CHECK(a4.done);
  CHECK(a4.index == 10);
  CHECK(f.commit_index() == 10);
  CHECK(f.applied_index() == 10);
  CHECK(f.last_index() == 10);
}

TEST_CASE("step: a message addressed to another peer is refused") {
  Cluster c(kThree);
  Message m;
  m.type = MessageType::Heartbeat;
  m.cluster_id = "test-cluster";
  m.from = "b";
  m.to = "c";
  CHECK_FALSE(c.node("a").step(m).ok());
}


TEST_CASE("membership: a removed follower learns that its removal committed") {
  Cluster c(kThree);
  elect_and_settle(c, "a");
  auto idx = c.node("a").propose_conf_change({ConfChangeType::RemoveNode, "c", ""});
  REQUIRE(idx.ok());
  for (int i = 0; i < 4; ++i) {
    c.tick_all();
    c.deliver_all();
  }
  CHECK(c.node("c").commit_index() >= *idx);
  CHECK_FALSE(c.node("c").is_voter("c"));
  CHECK(c.node("a").status().peers.count("c") == 0);  // no longer replicated to
  c.tick("c", 100);
  CHECK(c.node("c").role() == Role::Follower);  // a removed peer never campaigns
}


TEST_CASE("membership: a removed follower that lagged behind its removal still learns it") {
  Cluster c(kThree);
  elect_and_settle(c, "a");
  c.cut_one_way("a", "c");  // c misses the removal entry and the heartbeats after its commit
  auto idx = c.node("a").propose_conf_change({ConfChangeType::RemoveNode, "c", ""});
  REQUIRE(idx.ok());
  for (int i = 0; i < 4; ++i) {
    c.tick("a");
    c.tick("b");
    c.deliver_all();
  }
  REQUIRE(c.node("a").commit_index() >= *idx);
  CHECK(c.node("c").commit_index() < *idx);
  c.heal();
  for (int i = 0; i < 4; ++i) {
    c.tick("a");
    c.tick("b");
    c.deliver_all();
  }
  CHECK(c.node("c").commit_index() >= *idx);
  CHECK_FALSE(c.node("c").is_voter("c"));
  CHECK(c.node("a").status().peers.count("c") == 0);
}

TEST_CASE("membership: a removed follower that never answers is dropped after a bounded wait") {
  Cluster c(kThree);
  elect_and_settle(c, "a");
  c.isolate("c");
  auto idx = c.node("a").propose_conf_change({ConfChangeType::RemoveNode, "c", ""});
  REQUIRE(idx.ok());
  c.tick("a");
  c.deliver_all();
  REQUIRE(c.node("a").commit_index() >= *idx);
  CHECK(c.node("a").status().peers.count("c") == 1);  // still given the chance to learn
  for (int i = 0; i < 200 && c.node("a").status().peers.count("c"); ++i) {
    c.tick("a");
    c.tick("b");
    c.deliver_all();
  }
  CHECK(c.node("a").status().peers.count("c") == 0);
  CHECK(c.node("c").commit_index() < *idx);
}

TEST_CASE("lease: a follower that hears from its leader ignores a higher-term vote request") {
  Cluster c(kThree, [](Config& cfg) { cfg.pre_vote = false; });
  for (int i = 0; i < 100 && c.leader().empty(); ++i) {
    c.tick_all();
    c.deliver_all();
  }
  NodeId leader = c.leader();
  REQUIRE(!leader.empty());
  NodeId follower = leader == "a" ? "b" : "a";
  NodeId other = (leader != "c" && follower != "c") ? "c" : "b";
  c.tick_all();
  c.deliver_all();
  Term term = c.node(follower).term();
  Message vote;
  vote.type = MessageType::Vote;
  vote.cluster_id = "test-cluster";
  vote.from = other;
  vote.to = follower;
  vote.term = term + 5;
  vote.index = 100;
  vote.log_term = term + 4;
  REQUIRE(c.node(follower).step(vote).ok());
  CHECK(c.node(follower).term() == term);  // ignored: within the lease
  vote.transfer = true;                     // a transfer-induced election passes the lease
  REQUIRE(c.node(follower).step(vote).ok());
  CHECK(c.node(follower).term() == term + 5);
}

}  // namespace
}  // namespace clusterpin::raft::test
