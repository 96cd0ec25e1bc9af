// Message layout (version 1): version byte, type byte, flags byte (bit0 reject, bit1 transfer,
// bit2 done), then cluster_id, from, to, term, index, log_term, commit, hint, entry count and
// entries (term, index, type, data), snapshot meta (index, term, voters, learners), offset, data.
// The reader checks every length against the bytes that remain before allocating.
#include "core/raft/codec.hpp"

#include <cstdint>

#include <fmt/format.h>

namespace clusterpin::raft {

namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::uint8_t kConfVersion = 1;

class Writer {
 public:
  void byte(std::uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      byte(static_cast<std::uint8_t>(v | 0x80));
      v >>= 7;
    }
    byte(static_cast<std::uint8_t>(v));
  }
  void str(std::string_view s) {
    varint(s.size());
    out_.append(s);
  }
  void ids(const std::vector<NodeId>& v) {
    varint(v.size());
    for (const auto& s : v) str(s);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads until the first error; afterwards every read returns a zero value and failed() is true.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool failed() const { return failed_; }
  bool at_end() const { return pos_ == in_.size(); }
  std::size_t remaining() const { return in_.size() - pos_; }

  std::uint8_t byte() {
    if (failed_ || pos_ >= in_.size()) return fail();
    return static_cast<std::uint8_t>(in_[pos_++]);
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      std::uint8_t b = byte();
      if (failed_) return 0;
      if (shift == 63 && b > 1) return fail();  // would overflow 64 bits
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return fail();
  }
  std::string str() {
    std::uint64_t n = varint();
    if (failed_ || n > remaining()) {
      fail();
      return {};
    }
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  // A count of items that each take at least one byte cannot exceed the bytes left.
  std::uint64_t count() {
    std::uint64_t n = varint();
    if (n > remaining()) return fail();
    return n;
  }
  std::vector<NodeId> ids() {
    std::vector<NodeId> v;
    std::uint64_t n = count();
    for (std::uint64_t i = 0; i < n && !failed_; ++i) v.push_back(str());
    return v;
  }

 private:
  std::uint8_t fail() {
    failed_ = true;
    return 0;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

void write_conf(Writer& w, const ConfState& c) {
  w.ids(c.voters);
  w.ids(c.learners);
}

ConfState read_conf(Reader& r) {
  ConfState c;
  c.voters = r.ids();
  c.learners = r.ids();
  return c;
}

}  // namespace

std::string_view to_string(MessageType type) {
  switch (type) {
    case MessageType::PreVote: return "PreVote";
    case MessageType::PreVoteResponse: return "PreVoteResponse";
    case MessageType::Vote: return "Vote";
    case MessageType::VoteResponse: return "VoteResponse";
    case MessageType::Append: return "Append";
    case MessageType::AppendResponse: return "AppendResponse";
    case MessageType::Heartbeat: return "Heartbeat";
    case MessageType::HeartbeatResponse: return "HeartbeatResponse";
    case MessageType::Snapshot: return "Snapshot";
    case MessageType::SnapshotResponse: return "SnapshotResponse";
    case MessageType::TimeoutNow: return "TimeoutNow";
  }
  return "Unknown";
}

std::string encode(const Message& m) {
  Writer w;
  w.byte(kVersion);
  w.byte(static_cast<std::uint8_t>(m.type));
  w.byte(static_cast<std::uint8_t>((m.reject ? 1 : 0) | (m.transfer ? 2 : 0) | (m.done ? 4 : 0)));
  w.str(m.cluster_id);
  w.str(m.from);
  w.str(m.to);
  w.varint(m.term);
  w.varint(m.index);
  w.varint(m.log_term);
  w.varint(m.commit);
  w.varint(m.hint);
  w.varint(m.entries.size());
  for (const auto& e : m.entries) {
    w.varint(e.term);
    w.varint(e.index);
    w.byte(static_cast<std::uint8_t>(e.type));
    w.str(e.data);
  }
  w.varint(m.snapshot.index);
  w.varint(m.snapshot.term);
  write_conf(w, m.snapshot.conf);
  w.varint(m.offset);
  w.str(m.data);
  return w.take();
}

Result<Message> decode(std::string_view bytes) {
  Reader r(bytes);
  std::uint8_t version = r.byte();
  if (r.failed()) return make_error("raft message: empty (expected at least a version byte)");
  if (version != kVersion)
    return make_error(fmt::format("raft message: version {} is not supported (expected {})",
                                  version, kVersion));
  Message m;
  std::uint8_t type = r.byte();
  if (type > kMaxMessageType)
    return make_error(fmt::format("raft message: type {} is unknown (0..{})", type,
                                  kMaxMessageType));
  m.type = static_cast<MessageType>(type);
  std::uint8_t flags = r.byte();
  if (flags > 7) return make_error(fmt::format("raft message: flags {:#x} are unknown", flags));
  m.reject = flags & 1;
  m.transfer = flags & 2;
  m.done = flags & 4;
  m.cluster_id = r.str();
  m.from = r.str();
  m.to = r.str();
  m.term = r.varint();
  m.index = r.varint();
  m.log_term = r.varint();
  m.commit = r.varint();
  m.hint = r.varint();
  std::uint64_t n = r.count();
  for (std::uint64_t i = 0; i < n && !r.failed(); ++i) {
    Entry e;
    e.term = r.varint();
    e.index = r.varint();
    std::uint8_t t = r.byte();
    if (t > static_cast<std::uint8_t>(EntryType::ConfChange))
      return make_error(fmt::format("raft message: entry type {} is unknown", t));
    e.type = static_cast<EntryType>(t);
    e.data = r.str();
    m.entries.push_back(std::move(e));
  }
  m.snapshot.index = r.varint();
  m.snapshot.term = r.varint();
  m.snapshot.conf = read_conf(r);
  m.offset = r.varint();
  m.data = r.str();
  if (r.failed()) return make_error("raft message: truncated or malformed");
  if (!r.at_end())
    return make_error(fmt::format("raft message: {} trailing bytes after the message",
                                  r.remaining()));
  return m;
}

std::string encode_conf_entry(const ConfEntry& entry) {
  Writer w;
  w.byte(kConfVersion);
  w.byte(static_cast<std::uint8_t>(entry.change.type));
  w.str(entry.change.node);
  w.str(entry.change.context);
  write_conf(w, entry.conf);
  return w.take();
}

Result<ConfEntry> decode_conf_entry(std::string_view bytes) {
  Reader r(bytes);
  std::uint8_t version = r.byte();
  if (r.failed() || version != kConfVersion)
    return make_error(fmt::format("raft conf change: version {} is not supported (expected {})",
                                  version, kConfVersion));
  ConfEntry e;
  std::uint8_t type = r.byte();
  if (type > static_cast<std::uint8_t>(ConfChangeType::RemoveNode))
    return make_error(fmt::format("raft conf change: type {} is unknown (0..3)", type));
  e.change.type = static_cast<ConfChangeType>(type);
  e.change.node = r.str();
  e.change.context = r.str();
  e.conf = read_conf(r);
  if (r.failed() || !r.at_end()) return make_error("raft conf change: truncated or malformed");
  return e;
}

}  // namespace clusterpin::raft
