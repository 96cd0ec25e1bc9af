// Scenario tests for the hard cases of the Raft paper, each driven message by message on a
// hand-driven Cluster with the invariant checker running after every event: the Figure-8 case,
// a stale leader's uncommitted tail, votes denied to shorter logs, a partitioned peer rejoining
// (with and without pre-vote), a lagging peer caught up through a chunked snapshot, and a
// removed peer that comes back wiped under its old id, and a learner that joins again wiped.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "cluster.hpp"

namespace clusterpin::raft::test {
namespace {

// Elections can need a second round: a pre-vote refused by peers of a higher term first
// teaches the candidate that term.
NodeId elect_until(Cluster& c, const NodeId& id, const MessageFilter& keep = {}) {
  for (int round = 0; round < 4 && c.leader() != id; ++round) c.elect(id, keep);
  return c.leader();
}

void settle(Cluster& c, int rounds = 5) {
  for (int i = 0; i < rounds; ++i) {
    c.tick_all();
    c.deliver_all();
  }
}

// Drops entries at or beyond `index` from every Append, and every message to `blocked`.
MessageFilter strip_from(Index index, std::vector<NodeId> blocked = {}) {
  return [index, blocked](Message& m) {
    for (const auto& b : blocked)
      if (m.to == b) return false;
    if (m.type == MessageType::Append)
      std::erase_if(m.entries, [&](const Entry& e) { return e.index >= index; });
    return true;
  };
}

TEST_CASE("figure 8: an old-term entry on a majority is not committed and may be overwritten") {
  // Raft paper, figure 8, with this implementation's no-op entries (entry 2 is term 2's no-op).
  Cluster c({"s1", "s2", "s3", "s4", "s5"}, [](Config& cfg) { cfg.max_append_entries = 1; });
  REQUIRE(elect_until(c, "s1") == "s1");
  settle(c);
  REQUIRE(c.node("s3").commit_index() == 2);

  // (a) s1 (term 2) writes entry 3 and gets it to s2 only.
  for (const auto& other : {"s3", "s4", "s5"}) c.cut("s1", other);
  REQUIRE(c.node("s1").propose("figure8-old").ok());
  c.deliver_all();
  REQUIRE(c.node("s2").term_at(3) == Term{2});

  // (b) s1 crashes; s5 wins term 3 with s3 and s4 and writes entry 3 (its no-op) only locally.
  c.crash("s1");
  c.heal();
  c.isolate("s2");
  auto no_appends_from_s5 = [](Message& m) {
    return !(m.from == "s5" && m.type == MessageType::Append);
  };
  REQUIRE(elect_until(c, "s5", no_appends_from_s5) == "s5");
  Term s5_term = c.node("s5").term();
  REQUIRE(c.node("s5").term_at(3) == s5_term);

  // (c) s5 crashes; s1 restarts and wins a later term with s2, s3 and s4, then copies entry 3
  //     (term 2) to s3 but not its own no-op (entry 4).
  c.crash("s5");
  c.heal();
  c.restart("s1");
  auto without_noop = strip_from(4, {"s4"});
  REQUIRE(elect_until(c, "s1", without_noop) == "s1");
  for (int i = 0; i < 5; ++i) {
    c.tick("s1");
    c.deliver_all(without_noop);
  }
  REQUIRE(c.node("s3").term_at(3) == Term{2});
  // Entry 3 is on s1, s2 and s3 — a majority — but is from term 2, not s1's term.
  CHECK(c.node("s1").commit_index() < 3);

  // (d) s1 crashes before its no-op spreads; s5 restarts and wins with s2, s3 and s4 (its last
  //     term is higher), overwriting entry 3 everywhere. Safe: entry 3 was never committed.
  c.crash("s1");
  c.restart("s5");
  REQUIRE(elect_until(c, "s5") == "s5");
  settle(c);
  for (const auto& id : {"s2", "s3", "s4"}) CHECK(c.node(id).term_at(3) == s5_term);
  c.restart("s1");
  settle(c, 10);
  CHECK(c.node("s1").term_at(3) == s5_term);
  for (const auto& id : c.ids()) CHECK_FALSE(c.peer(id).state().has("figure8-old"));
  CHECK(c.checker().ok());
}

TEST_CASE("stale leader: its uncommitted tail is truncated when it rejoins") {
  Cluster c({"a", "b", "c"});
  REQUIRE(elect_until(c, "a") == "a");
  settle(c);
  REQUIRE(c.node("a").propose("committed").ok());
  settle(c);
  c.isolate("a");
  for (int i = 0; i < 3; ++i) REQUIRE(c.node("a").propose("stale" + std::to_string(i)).ok());
  c.deliver_all();
  Index stale_last = c.node("a").last_index();
  REQUIRE(elect_until(c, "b") == "b");
  REQUIRE(c.node("b").propose("new").ok());
  settle(c);
  c.heal();
  settle(c, 10);
  CHECK(c.node("a").role() == Role::Follower);
  CHECK(c.node("a").leader() == "b");
  CHECK(c.node("a").last_index() == c.node("b").last_index());
  for (Index i = 1; i <= std::max(stale_last, c.node("b").last_index()); ++i)
    CHECK(c.node("a").term_at(i) == c.node("b").term_at(i));
  CHECK(c.peer("a").state().has("committed"));
  CHECK(c.peer("a").state().has("new"));
  for (int i = 0; i < 3; ++i) CHECK_FALSE(c.peer("a").state().has("stale" + std::to_string(i)));
}

TEST_CASE("votes: peers with longer logs deny their vote to a shorter log") {
  Cluster c({"n1", "n2", "n3", "n4", "n5"});
  REQUIRE(elect_until(c, "n1") == "n1");
  settle(c);
  c.cut("n1", "n4");
  c.cut("n1", "n5");
  REQUIRE(c.node("n1").propose("x").ok());
  settle(c);
  REQUIRE(c.node("n1").commit_index() == 3);  // on n1, n2, n3: committed
  c.isolate("n1");
  std::vector<Message> answers;
  auto record = [&answers](Message& m) {
    if (m.type == MessageType::PreVoteResponse || m.type == MessageType::VoteResponse)
      answers.push_back(m);
    return true;
  };
  c.elect("n4", record);
  CHECK(c.node("n4").role() != Role::Leader);
  bool n2_refused = false, n3_refused = false;
  for (const auto& m : answers) {
    if (m.to != "n4") continue;
    if (m.from == "n2") n2_refused = m.reject;
    if (m.from == "n3") n3_refused = m.reject;
  }
  CHECK(n2_refused);
  CHECK(n3_refused);
  REQUIRE(elect_until(c, "n2") == "n2");
  settle(c);
  for (const auto& id : {"n2", "n3", "n4", "n5"}) CHECK(c.peer(id).state().has("x"));
}

TEST_CASE("pre-vote: a partitioned peer rejoins without disrupting the leader") {
  Cluster c({"a", "b", "c"});
  REQUIRE(elect_until(c, "a") == "a");
  settle(c);
  Term term = c.node("a").term();
  c.isolate("c");
  settle(c, 60);  // c times out again and again while cut off
  CHECK(c.node("c").term() == term);
  c.heal();
  settle(c, 10);
  CHECK(c.leader() == "a");
  CHECK(c.node("a").term() == term);
  CHECK(c.node("c").leader() == "a");
}

TEST_CASE("without pre-vote: the same partitioned peer disrupts the leader when it rejoins") {
  // The contrast that shows the previous test can fail: terms grow while cut off, and the
  // rejoining peer's higher term deposes a healthy leader.
  Cluster c({"a", "b", "c"}, [](Config& cfg) { cfg.pre_vote = false; });
  for (int i = 0; i < 100 && c.leader().empty(); ++i) settle(c, 1);
  NodeId leader = c.leader();
  REQUIRE(!leader.empty());
  settle(c);
  Term term = c.node(leader).term();
  NodeId outsider = leader == "c" ? "b" : "c";
  c.isolate(outsider);
  settle(c, 60);
  CHECK(c.node(outsider).term() > term);
  c.heal();
  settle(c, 30);
  CHECK(c.node(leader).term() > term);
}

TEST_CASE("snapshot: a lagging peer is caught up by a chunked snapshot after compaction") {
  Cluster c({"a", "b", "c"}, [](Config& cfg) {
    cfg.snapshot_threshold = 5;
    cfg.trailing_logs = 1;
    cfg.snapshot_chunk_size = 16;
    cfg.max_inflight = 2;
  });
  REQUIRE(elect_until(c, "a") == "a");
  settle(c);
  c.crash("c");
  for (int i = 0; i < 40; ++i) {
    REQUIRE(c.node("a").propose("cmd" + std::to_string(i)).ok());
    c.deliver_all();
  }
  REQUIRE(c.node("a").first_index() > c.peer("c").durable().log.back().index + 1);
  std::size_t chunks_before = c.snapshot_chunks();
  c.restart("c");
  // Crash c in the middle of the transfer once: it must start over and still finish.
  c.tick_all();
  c.deliver_all([&](Message&) { return c.snapshot_chunks() - chunks_before < 3; });
  c.crash("c");
  c.restart("c");
  settle(c, 20);
  CHECK(c.snapshot_installs() >= 1);
  CHECK(c.snapshot_chunks() - chunks_before > 5);
  CHECK(c.peer("c").state().commands == c.peer("a").state().commands);
  CHECK(c.node("c").commit_index() == c.node("a").commit_index());
  // c keeps up through ordinary appends afterwards.
  REQUIRE(c.node("a").propose("after").ok());
  settle(c);
  CHECK(c.peer("c").state().has("after"));
}

TEST_CASE("membership: a removed peer re-added wiped under its old id is caught up and promoted") {
  // The leader keeps a removed peer's progress until the peer learns of its removal or a
  // bounded number of heartbeats passed. A peer reprovisioned with the same identity and added
  // back within that window must not inherit it: its log is empty, so an old match would have
  // every probe rejected at match + 1, forever.
  Cluster c({"a", "b", "c"});
  REQUIRE(elect_until(c, "a") == "a");
  settle(c);
  for (int i = 0; i < 10; ++i) REQUIRE(c.node("a").propose("before" + std::to_string(i)).ok());
  settle(c);
  const Index old_match = c.node("a").status().peers.at("c").match;
  REQUIRE(old_match == c.node("a").last_index());

  // c is stopped to be reprovisioned and removed meanwhile: it never acknowledges its removal.
  c.crash("c");
  auto removal = c.node("a").propose_conf_change({ConfChangeType::RemoveNode, "c", ""});
  REQUIRE(removal.ok());
  c.tick("a");
  c.tick("b");
  c.deliver_all();
  REQUIRE(c.node("a").commit_index() >= *removal);
  REQUIRE(c.node("a").status().peers.count("c") == 1);  // within the retention window

  // It comes back with an empty store and joins again as a learner, as a new peer would.
  c.wipe("c");
  REQUIRE(c.node("c").last_index() == 0);
  auto added = c.node("a").propose_conf_change({ConfChangeType::AddLearner, "c", "/ip4/1.2.3.4"});
  REQUIRE(added.ok());
  // What the leader answers a join with: c's membership begins at this entry, so the removal
  // c replays from the log while it catches up is not its own.
  CHECK(c.node("a").member_since("c") == *added);
  CHECK(c.node("a").member_since("b") == 1);  // the founding configuration's entry
  CHECK(c.node("b").member_since("c") == 0);  // b has not received the addition yet
  PeerStatus fresh = c.node("a").status().peers.at("c");
  CHECK(fresh.match == 0);
  CHECK(fresh.state == ReplicationState::Probe);
  REQUIRE(c.node("a").propose("after").ok());

  // Like any new peer: caught up and promoted within a few heartbeats.
  for (int i = 0; i < 10 && !c.node("a").is_voter("c"); ++i) {
    c.tick("a");
    c.tick("b");
    c.tick("c");
    c.deliver_all();
  }
  CHECK(c.node("a").is_voter("c"));
  CHECK(c.node("c").commit_index() == c.node("a").commit_index());
  settle(c);  // the promotion's commit reaches c
  CHECK(c.node("c").conf() == c.node("a").conf());
  CHECK(c.peer("c").state().commands == c.peer("a").state().commands);
  CHECK(c.peer("c").state().has("after"));
  CHECK(c.checker().ok());
}

TEST_CASE("membership: a learner that lost its log and joins again is caught up from the start") {
  // A learner caught up partway (match > 0), then stopped and wiped (`state cleanup`) before
  // it was promoted, joins again under its id: it is still a learner, so the join changes no
  // configuration. The leader's progress says match = M; every Append it sends (prev = M) is
  // rejected by the empty log, and rejections never take next below match: without a restart
  // of its replication the learner is probed at M + 1 for ever.
  Cluster c({"a", "b", "c"});
  REQUIRE(elect_until(c, "a") == "a");
  settle(c);
  for (int i = 0; i < 300; ++i) REQUIRE(c.node("a").propose("cmd" + std::to_string(i)).ok());
  settle(c);
  c.add_peer("d");
  REQUIRE(c.node("a").propose_conf_change({ConfChangeType::AddLearner, "d", "/ip4/1.2.3.4"}).ok());
  // d accepts one batch of entries, then everything to and from it is lost (it stops).
  int accepted = 0;
  c.deliver_all([&](Message& m) {
    if (m.from == "d" && m.type == MessageType::AppendResponse && !m.reject) return accepted++ == 0;
    return accepted == 0 || (m.to != "d" && m.from != "d");
  });
  const Index old_match = c.node("a").status().peers.at("d").match;
  REQUIRE(old_match > 0);
  REQUIRE(old_match < c.node("a").last_index());
  REQUIRE_FALSE(c.node("a").is_voter("d"));
  REQUIRE(c.node("a").first_index() <= old_match);  // still in the log: no snapshot is sent

  c.wipe("d");
  c.node("a").restart_replication("d");  // what the leader does when a learner's join arrives
  CHECK(c.node("a").status().peers.at("d").match == 0);
  for (int i = 0; i < 20 && !c.node("a").is_voter("d"); ++i) settle(c, 1);
  CHECK(c.node("a").is_voter("d"));
  settle(c);
  CHECK(c.node("d").commit_index() == c.node("a").commit_index());
  CHECK(c.peer("d").state().commands == c.peer("a").state().commands);
  CHECK(c.checker().ok());
}

}  // namespace
}  // namespace clusterpin::raft::test
