// Unit tests of the Raft wire codec: every field survives a round trip, and decode refuses
// (never crashes on) truncated, extended or random bytes.
#include <doctest/doctest.h>

#include "core/raft/codec.hpp"
#include "core/raft/rng.hpp"

namespace clusterpin::raft {
namespace {

Message full_message() {
  Message m;
  m.type = MessageType::Snapshot;
  m.cluster_id = "cluster-1";
  m.from = "12D3KooWA";
  m.to = "12D3KooWB";
  m.term = 7;
  m.index = 1ULL << 40;
  m.log_term = 6;
  m.commit = 300;
  m.hint = 12;
  m.reject = true;
  m.transfer = true;
  m.done = true;
  m.entries = {Entry{5, 1, EntryType::Normal, "pin"}, Entry{6, 2, EntryType::Noop, ""},
               Entry{6, 3, EntryType::ConfChange, std::string("\0\xff", 2)}};
  m.snapshot = SnapshotMeta{99, 5, ConfState{{"a", "b"}, {"c"}}};
  m.offset = 4096;
  m.data = std::string(300, 'x');
  return m;
}

TEST_CASE("codec: every message field survives encode and decode") {
  Message m = full_message();
  auto back = decode(encode(m));
  REQUIRE(back.ok());
  CHECK(*back == m);
  Message empty;
  auto back_empty = decode(encode(empty));
  REQUIRE(back_empty.ok());
  CHECK(*back_empty == empty);
}

TEST_CASE("codec: every truncation of a valid message is refused") {
  std::string bytes = encode(full_message());
  for (std::size_t n = 0; n < bytes.size(); ++n) CHECK_FALSE(decode(bytes.substr(0, n)).ok());
  CHECK_FALSE(decode(bytes + "z").ok());
}

TEST_CASE("codec: unknown version, message type and entry type are refused") {
  std::string bytes = encode(full_message());
  std::string bad = bytes;
  bad[0] = 9;
  CHECK_FALSE(decode(bad).ok());
  bad = bytes;
  bad[1] = 42;
  CHECK_FALSE(decode(bad).ok());
}

TEST_CASE("codec: random and mutated bytes never crash decode") {
  Rng rng(12345);
  std::string valid = encode(full_message());
  std::size_t accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes;
    if (i % 2 == 0) {
      bytes.resize(rng.below(64));
      for (auto& c : bytes) c = static_cast<char>(rng.below(256));
    } else {
      bytes = valid;
      for (int k = 0; k < 3; ++k) bytes[rng.below(bytes.size())] = static_cast<char>(rng.below(256));
    }
    auto r = decode(bytes);
    if (r.ok()) {
      ++accepted;
      CHECK(decode(encode(*r)).ok());  // whatever is accepted is a well-formed message
    }
  }
  CHECK(accepted < 20000);
}

TEST_CASE("codec: a huge declared length is refused without allocating it") {
  std::string bytes;
  bytes += '\x01';  // version
  bytes += '\x04';  // Append
  bytes += '\x00';  // flags
  bytes += "\xff\xff\xff\xff\xff\xff\xff\xff\x7f";  // cluster id length ~2^63
  CHECK_FALSE(decode(bytes).ok());
}

TEST_CASE("codec: conf change entries round trip and garbage is refused") {
  ConfEntry e{ConfChange{ConfChangeType::AddLearner, "p4", "/ip4/10.0.0.4/tcp/9096"},
              ConfState{{"p1", "p2", "p3"}, {"p4"}}};
  auto back = decode_conf_entry(encode_conf_entry(e));
  REQUIRE(back.ok());
  CHECK(back->change == e.change);
  CHECK(back->conf == e.conf);
  CHECK_FALSE(decode_conf_entry("").ok());
  CHECK_FALSE(decode_conf_entry("\x01\x09").ok());
}

}  // namespace
}  // namespace clusterpin::raft
