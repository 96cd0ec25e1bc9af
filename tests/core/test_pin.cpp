// Pins: the binary form round-trips, garbage is refused, the REST JSON has IPFS Cluster's keys,
// the pin-options query is read with clear errors, and RFC 3339 times print as Go prints them.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <random>

#include <rapidjson/document.h>

#include "core/command.hpp"
#include "core/json_text.hpp"
#include "core/pin.hpp"
#include "core/time_format.hpp"

using namespace clusterpin;

namespace {

Cid cid_of(std::string_view text) { return Cid::parse(text).value(); }
PeerId peer_of(std::string_view text) { return PeerId::parse(text).value(); }

const char* kCid = "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n";
const char* kCidV1 = "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
const char* kPeer = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

Pin full_pin() {
  Pin pin(cid_of(kCid));
  pin.allocations = {peer_of(kPeer)};
  pin.max_depth = 0;
  pin.timestamp = 1'790'000'000'123'000'000;
  pin.options.replication_factor_min = 2;
  pin.options.replication_factor_max = 3;
  pin.options.name = "photos";
  pin.options.mode = PinMode::direct;
  pin.options.user_allocations = {peer_of(kPeer)};
  pin.options.expire_at = 1'800'000'000'000'000'000;
  pin.options.metadata = {{"owner", "ana"}};
  pin.options.pin_update = cid_of(kCidV1);
  pin.options.origins = {"/ip4/127.0.0.1/tcp/4001/p2p/" + std::string(kPeer)};
  return pin;
}

}  // namespace

TEST_CASE("a pin survives the binary form unchanged") {
  Pin pin = full_pin();
  auto back = decode_pin(encode_pin(pin));
  REQUIRE(back.ok());
  CHECK(pin_to_json(*back) == pin_to_json(pin));
}

TEST_CASE("truncated or garbage pin records are refused, never crash") {
  std::string bytes = encode_pin(full_pin());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    CHECK_FALSE(decode_pin(bytes.substr(0, n)).ok());
  }
  CHECK_FALSE(decode_pin(bytes + "x").ok());
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string junk(rng() % 64, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    (void)decode_pin(junk);
    (void)decode_ops(junk);
  }
}

TEST_CASE("a stored pin's mode and depth are read without decoding it, and cut records refused") {
  Pin pin = full_pin();
  pin.max_depth = 5;
  auto form = stored_pin_ipfs_form(encode_pin(pin));
  REQUIRE(form.ok());
  CHECK(*form == PinIpfsForm{PinMode::direct, 5});
  Pin plain(cid_of(kCidV1));
  CHECK(stored_pin_ipfs_form(encode_pin(plain)).value() == PinIpfsForm{PinMode::recursive, -1});
  // Cut before the mode (the byte after the name): refused; after it, the rest is not read.
  std::string bytes = encode_pin(pin);
  std::size_t mode_at = bytes.find("photos") + 6;
  REQUIRE(bytes[mode_at] == 1);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    CAPTURE(n);
    auto cut = stored_pin_ipfs_form(bytes.substr(0, n));
    CHECK(cut.ok() == (n > mode_at));
    if (cut.ok()) CHECK(*cut == PinIpfsForm{PinMode::direct, 5});
  }
  std::string bad_mode = bytes;
  bad_mode[mode_at] = 2;
  CHECK_FALSE(stored_pin_ipfs_form(bad_mode).ok());
}

TEST_CASE("the JSON object has IPFS Cluster's keys and value forms") {
  rapidjson::Document doc;
  doc.Parse(pin_to_json(full_pin()).c_str());
  REQUIRE(doc.IsObject());
  CHECK(std::string(doc["cid"].GetString()) == kCid);
  CHECK(std::string(doc["type"].GetString()) == "pin");
  CHECK(std::string(doc["mode"].GetString()) == "direct");
  CHECK(doc["max_depth"].GetInt() == 0);
  CHECK(doc["replication_factor_min"].GetInt() == 2);
  CHECK(std::string(doc["allocations"][0].GetString()) == kPeer);
  CHECK(std::string(doc["metadata"]["owner"].GetString()) == "ana");
  CHECK(std::string(doc["pin_update"].GetString()) == kCidV1);
  CHECK(doc["reference"].IsNull());
  CHECK(std::string(doc["timestamp"].GetString()) == "2026-09-21T14:13:20.123Z");
}

TEST_CASE("pin_update is null when empty, as Go writes it, and zero times print as Go's zero time") {
  rapidjson::Document doc;
  doc.Parse(pin_to_json(Pin(cid_of(kCid))).c_str());
  REQUIRE(doc.HasMember("pin_update"));
  CHECK(doc["pin_update"].IsNull());
  CHECK(std::string(doc["expire_at"].GetString()) == "0001-01-01T00:00:00Z");
}

TEST_CASE("JSON read back gives the same pin") {
  Pin pin = full_pin();
  auto back = pin_from_json(pin_to_json(pin));
  REQUIRE_MESSAGE(back.ok(), (back.ok() ? "" : back.error().message));
  CHECK(encode_pin(*back) == encode_pin(pin));
}

TEST_CASE("pin options are read from the query") {
  QueryParams q{{"replication-min", "2"}, {"replication-max", "4"}, {"name", "n"},
                {"mode", "direct"}, {"meta-k", "v"}, {"expire-in", "1h0m0s"},
                {"user-allocations", std::string(kPeer)}};
  auto o = pin_options_from_query(q, 1'000);
  REQUIRE(o.ok());
  CHECK(o->replication_factor_min == 2);
  CHECK(o->replication_factor_max == 4);
  CHECK(o->mode == PinMode::direct);
  CHECK(o->metadata.at("k") == "v");
  CHECK(o->expire_at == 1'000 + 3'600'000'000'000);
  CHECK(o->user_allocations.size() == 1);
  auto both = pin_options_from_query({{"replication", "3"}}, 0);
  CHECK((both->replication_factor_min == 3 && both->replication_factor_max == 3));
}

TEST_CASE("expire-at wins over expire-in whatever the order") {
  auto o = pin_options_from_query({{"expire-in", "1h"}, {"expire-at", "2030-01-01T00:00:00Z"}}, 0);
  REQUIRE(o.ok());
  CHECK(format_rfc3339(o->expire_at) == "2030-01-01T00:00:00Z");
}

TEST_CASE("bad pin options name the parameter and the value") {
  CHECK(pin_options_from_query({{"mode", "deep"}}, 0).error().message ==
        "mode: \"deep\" is not a pin mode; accepted: recursive, direct");
  CHECK(pin_options_from_query({{"replication", "two"}}, 0).error().message ==
        "replication: \"two\" is not an integer");
  CHECK(pin_options_from_query({{"expire-in", "soon"}}, 0).error().message.find("expire-in") == 0);
  CHECK(pin_options_from_query({{"origins", "/ip4/1.2.3.4/tcp/1"}}, 0).error().message.find(
            "no /p2p/") != std::string::npos);
  CHECK_FALSE(pin_options_from_query({{"pin-update", "nope"}}, 0).ok());
}

TEST_CASE("a batch of pinset operations round-trips") {
  std::vector<PinsetOp> ops{{PinsetOp::Kind::pin, full_pin()},
                            {PinsetOp::Kind::unpin, Pin(cid_of(kCidV1))}};
  auto back = decode_ops(encode_ops(ops));
  REQUIRE(back.ok());
  REQUIRE(back->size() == 2);
  CHECK((*back)[0].kind == PinsetOp::Kind::pin);
  CHECK(encode_pin((*back)[0].pin) == encode_pin(ops[0].pin));
  CHECK((*back)[1].kind == PinsetOp::Kind::unpin);
  CHECK((*back)[1].pin.cid == cid_of(kCidV1));
  CHECK(!(*back)[0].if_version);
  CHECK(!(*back)[1].if_version);
}

TEST_CASE("conditional pinset operations keep the version they expect") {
  std::vector<PinsetOp> ops{{PinsetOp::Kind::pin, full_pin(), 0x0123456789abcdefULL},
                            {PinsetOp::Kind::unpin, Pin(cid_of(kCidV1)), 7}};
  auto back = decode_ops(encode_ops(ops));
  REQUIRE(back.ok());
  REQUIRE(back->size() == 2);
  CHECK((*back)[0].kind == PinsetOp::Kind::pin);
  CHECK((*back)[0].if_version == std::optional<std::uint64_t>(0x0123456789abcdefULL));
  CHECK(encode_pin((*back)[0].pin) == encode_pin(ops[0].pin));
  CHECK((*back)[1].kind == PinsetOp::Kind::unpin);
  CHECK((*back)[1].if_version == std::optional<std::uint64_t>(7));
  CHECK((*back)[1].pin.cid == cid_of(kCidV1));
}

TEST_CASE("an entry with a request id decodes to the same operations, and the id splits off") {
  std::vector<PinsetOp> ops{{PinsetOp::Kind::pin, full_pin()},
                            {PinsetOp::Kind::unpin, Pin(cid_of(kCidV1))}};
  const std::string plain = encode_ops(ops);
  const RequestId id{0xfedcba9876543210ULL, 42, 40};
  const std::string stamped = with_request_id(id, plain);
  auto split = split_request(stamped);
  REQUIRE(split.ok());
  CHECK(split->id == std::optional<RequestId>(id));
  CHECK(split->command == plain);
  auto command = decode_command(stamped);
  REQUIRE(command.ok());
  const auto& back = std::get<std::vector<PinsetOp>>(*command);
  REQUIRE(back.size() == 2);
  CHECK(encode_pin(back[0].pin) == encode_pin(ops[0].pin));
  CHECK(back[1].pin.cid == cid_of(kCidV1));
  // Entries without one (older entries, peer announcements) split with no id.
  auto old = split_request(plain);
  REQUIRE(old.ok());
  CHECK(!old->id);
  CHECK(old->command == plain);
  // A request id must be whole and followed by pinset changes.
  CHECK(!split_request(stamped.substr(0, 3)).ok());
  CHECK(!decode_command(with_request_id(id, encode_peer_addresses({"p", {}, "n"}))).ok());
  CHECK(!decode_command(with_request_id(id, "")).ok());
}

TEST_CASE("append_rfc3339 adds the same text as format_rfc3339 after what the string holds") {
  for (UnixNanos t : {kZeroTime, UnixNanos{0}, UnixNanos{1'500'000'000}, UnixNanos{-1}, INT64_MAX}) {
    std::string out = "at ";
    append_rfc3339(out, t);
    CHECK(out == "at " + format_rfc3339(t));
  }
  CHECK(format_rfc3339(kZeroTime) == "0001-01-01T00:00:00Z");
}

TEST_CASE("RFC 3339 times print like Go's RFC3339Nano and parse back") {
  CHECK(format_rfc3339(0) == "1970-01-01T00:00:00Z");
  CHECK(format_rfc3339(1'500'000'000) == "1970-01-01T00:00:01.5Z");
  CHECK(format_rfc3339(-1) == "1969-12-31T23:59:59.999999999Z");
  CHECK(format_rfc3339(951'782'400'000'000'000) == "2000-02-29T00:00:00Z");
  CHECK(format_rfc3339(1'790'000'000'000'000'010) == "2026-09-21T14:13:20.00000001Z");
  CHECK(format_rfc3339(INT64_MIN + 1) == "1677-09-21T00:12:43.145224193Z");
  CHECK(format_rfc3339(INT64_MAX) == "2262-04-11T23:47:16.854775807Z");
  std::mt19937_64 rng(3);
  for (int i = 0; i < 10'000; ++i) {
    const auto t = static_cast<UnixNanos>(rng());
    CHECK(parse_rfc3339(format_rfc3339(t)).value() == t);
  }
  for (UnixNanos t : {UnixNanos{0}, UnixNanos{1'790'000'000'123'456'789}, UnixNanos{-86'400'000'000'000}, kZeroTime}) {
    CHECK(parse_rfc3339(format_rfc3339(t)).value() == t);
  }
  CHECK(parse_rfc3339("2026-11-24T02:29:54+01:00").value() ==
        parse_rfc3339("2026-11-24T01:29:54Z").value());
  CHECK_FALSE(parse_rfc3339("2026-13-01T00:00:00Z").ok());
  CHECK_FALSE(parse_rfc3339("yesterday").ok());
}

TEST_CASE("the JSON text is compact, in IPFS Cluster's key order, with strings escaped") {
  Pin pin = full_pin();
  pin.options.name = "a \"b\" \\ c\n\x01 caf\xc3\xa9 /";
  pin.options.metadata["tab\t"] = "";
  CHECK(pin_to_json(pin) ==
        R"({"replication_factor_min":2,"replication_factor_max":3,"name":"a \"b\" \\ c\n\u0001 caf)" "\xc3\xa9" R"( /",)"
        R"("mode":"direct","shard_size":0,"user_allocations":["12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"],)"
        R"("expire_at":"2027-01-15T08:00:00Z","metadata":{"owner":"ana","tab\t":""},)"
        R"("pin_update":"bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",)"
        R"("origins":["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"],)"
        R"("cid":"QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n","type":"pin",)"
        R"("allocations":["12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"],"max_depth":0,)"
        R"("reference":null,"timestamp":"2026-09-21T14:13:20.123Z"})");
  CHECK(pin_to_json(Pin(cid_of(kCid))) ==
        R"({"replication_factor_min":0,"replication_factor_max":0,"name":"","mode":"recursive",)"
        R"("shard_size":0,"user_allocations":[],"expire_at":"0001-01-01T00:00:00Z","metadata":{},)"
        R"("pin_update":null,"origins":[],"cid":"QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n","type":"pin",)"
        R"("allocations":[],"max_depth":-1,"reference":null,"timestamp":"0001-01-01T00:00:00Z"})");
  auto back = pin_from_json(pin_to_json(pin));
  REQUIRE(back.ok());
  CHECK(back->options.name == pin.options.name);
}

TEST_CASE("a stored pin's JSON is appended after what the buffer holds, the same as the Pin's") {
  const Pin pin = full_pin();
  std::string out = "before\n";
  REQUIRE(append_stored_pin_json(out, encode_pin(pin)).ok());
  CHECK(out == "before\n" + pin_to_json(pin));
  // The JSON of the decoded pin is the same object.
  rapidjson::Document doc;
  doc.Parse(out.c_str() + 7);
  REQUIRE(doc.IsObject());
  CHECK(pin_from_json(out.substr(7)).value().options.name == "photos");
}

TEST_CASE("a stored pin written indented is the compact line re-indented, byte for byte") {
  // Empty and full lists and metadata, a pin_update, a reference, escapes in strings.
  Pin plain(cid_of(kCidV1));
  Pin full = full_pin();
  full.options.name = "tab\there \"quoted\" \x01";
  full.options.metadata.emplace("zone", "\xc3\xa9u");
  Ed25519PublicKey key{};
  key.fill(7);
  full.allocations.push_back(PeerId::from_ed25519_public_key(key));
  full.options.origins.push_back("/ip4/127.0.0.2/tcp/4001");
  full.reference = cid_of(kCidV1);
  for (const Pin& pin : {plain, full}) {
    for (int width : {1, 2, 4, 8}) {
      std::string out = "before\n";
      REQUIRE(append_stored_pin_json(out, encode_pin(pin), width).ok());
      CHECK(out == "before\n" + indent_json(pin_to_json(pin), width).value());
    }
  }
  std::string compact;
  REQUIRE(append_stored_pin_json(compact, encode_pin(full), 0).ok());
  CHECK(compact == pin_to_json(full));
}

TEST_CASE("stored pins written into a TextBuffer one after another are the same text") {
  // A listing writes page after page into one buffer that is cleared, never shrunk: what is
  // left in its room from a longer page must not show through.
  Pin full = full_pin();
  full.options.name = std::string(300, 'n');
  const std::string records[] = {encode_pin(full), encode_pin(Pin(cid_of(kCidV1)))};
  TextBuffer buffer;
  for (int indent : {0, 4}) {
    for (int round = 0; round < 3; ++round) {
      buffer.clear();
      std::string expected;
      for (int i = 0; i <= round; ++i) {
        const std::string& record = records[(i + round) % 2];
        REQUIRE(append_stored_pin_json(buffer, record, indent).ok());
        buffer.append("\n");
        REQUIRE(append_stored_pin_json(expected, record, indent).ok());
        expected += '\n';
      }
      CHECK(buffer.view() == expected);
    }
  }
  // A refused record leaves the text as it was.
  const std::string before(buffer.view());
  const std::string& bad = records[0];
  CHECK_FALSE(append_stored_pin_json(buffer, bad.substr(0, bad.size() - 1), 4).ok());
  CHECK(buffer.view() == before);
}

TEST_CASE("a refused stored record leaves the buffer as it was and says what decode_pin says") {
  const std::string bytes = encode_pin(full_pin());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    std::string out = "kept";
    Status s = append_stored_pin_json(out, bytes.substr(0, n));
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message == decode_pin(bytes.substr(0, n)).error().message);
    CHECK(out == "kept");
    CHECK_FALSE(append_stored_pin_json(out, bytes.substr(0, n), 4).ok());
    CHECK(out == "kept");
  }
  std::string out = "kept";
  CHECK_FALSE(append_stored_pin_json(out, bytes + "x").ok());
  CHECK(out == "kept");
}

TEST_CASE("every record decode_pin reads is written as the decoded pin's JSON") {
  // One byte changed anywhere in a full record, then random bytes: whatever decode_pin accepts
  // the stored writer accepts and writes the same JSON; what it refuses leaves no trace.
  const std::string bytes = encode_pin(full_pin());
  std::mt19937 rng(11);
  int accepted = 0;
  auto check = [&](const std::string& record) {
    auto pin = decode_pin(record);
    std::string out = "x";
    Status s = append_stored_pin_json(out, record);
    std::string indented = "x";
    Status si = append_stored_pin_json(indented, record, 4);
    if (pin) {
      ++accepted;
      REQUIRE(s.ok());
      CHECK(out == "x" + pin_to_json(*pin));
      REQUIRE(si.ok());
      CHECK(indented == "x" + indent_json(pin_to_json(*pin), 4).value());
    } else if (!s) {
      CHECK(out == "x");
      CHECK_FALSE(si.ok());
      CHECK(indented == "x");
    }
  };
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (int v : {0, 1, 0x7f, 0x80, 0xff, static_cast<int>(rng() & 0xff)}) {
      std::string record = bytes;
      record[i] = static_cast<char>(v);
      check(record);
    }
  }
  for (int i = 0; i < 2000; ++i) {
    std::string junk(rng() % 96, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    check(junk);
  }
  CHECK(accepted > 0);
}

TEST_CASE("peer IDs in stored pins are written right when many different peers alternate") {
  // More peers than the writer keeps texts for, so it forgets and computes them again.
  std::vector<PeerId> peers;
  for (int i = 0; i < 80; ++i) {
    Ed25519PublicKey key{};
    key.fill(static_cast<std::uint8_t>(i));
    peers.push_back(PeerId::from_ed25519_public_key(key));
  }
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < peers.size(); ++i) {
      Pin pin(cid_of(kCidV1));
      pin.allocations = {peers[i], peers[(i * 7 + round) % peers.size()]};
      std::string out;
      REQUIRE(append_stored_pin_json(out, encode_pin(pin)).ok());
      rapidjson::Document doc;
      doc.Parse(out.c_str());
      REQUIRE(doc.IsObject());
      CHECK(std::string(doc["allocations"][0].GetString()) == pin.allocations[0].to_string());
      CHECK(std::string(doc["allocations"][1].GetString()) == pin.allocations[1].to_string());
    }
  }
}

TEST_CASE("a pin read from JSON keeps every field or is refused naming the field") {
  const Pin pin = full_pin();
  auto back = pin_from_json(pin_to_json(pin));
  REQUIRE(back.ok());
  CHECK(pin_to_json(*back) == pin_to_json(pin));
  const std::string cid = std::string(R"({"cid":")") + kCid + "\"";
  struct Bad {
    std::string field, accepted;
  };
  for (const auto& [json, bad] : std::vector<std::pair<std::string, Bad>>{
           {cid + R"(,"mode":"Direct"})", {"mode", "recursive, direct"}},
           {cid + R"(,"replication_factor_min":"2"})", {"replication_factor_min", "an integer"}},
           {cid + R"(,"replication_factor_max":2.0})", {"replication_factor_max", "an integer"}},
           {cid + R"(,"replication_factor_max":-2})", {"replication_factor_max", "an integer"}},
           {cid + R"(,"type":"shardpin"})", {"type", "shard-pin"}},
           {cid + R"(,"metadata":{"k":1}})", {"metadata", "strings"}},
           {cid + R"(,"metadata":[]})", {"metadata", "an object"}},
           {cid + R"(,"allocations":"x"})", {"allocations", "peer ids"}},
           {cid + R"(,"origins":[1]})", {"origins", "strings"}},
           {cid + R"(,"name":7})", {"name", "a string"}},
           {cid + R"(,"shard_size":-1})", {"shard_size", "0 or more"}},
           {cid + R"(,"max_depth":"-1"})", {"max_depth", "-1 (recursive)"}},
           {cid + R"(,"timestamp":"yesterday"})", {"timestamp", ""}},
           {R"({"name":"x"})", {"cid", "the CID"}}}) {
    CAPTURE(json);
    auto r = pin_from_json(json);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("pin: " + bad.field + ":") != std::string::npos);
    CHECK(r.error().message.find(bad.accepted) != std::string::npos);
  }
  // null is absent, and keys this reader does not know are skipped.
  auto lenient = pin_from_json(cid + R"(,"reference":null,"pin_update":null,"name":null,"future":[1]})");
  REQUIRE(lenient.ok());
  CHECK(lenient->options.name.empty());
  CHECK_FALSE(lenient->reference.has_value());
}

TEST_CASE("an expiry is refused when it does not fit a pin's 64-bit time") {
  const UnixNanos now = 1'790'000'000'000'000'000;
  CHECK(expiry_after(now, "24h").value() == now + 86'400'000'000'000);
  auto far = expiry_after(now, "2500000h");
  REQUIRE_FALSE(far.ok());
  CHECK(far.error().message.find("2262-04-11") != std::string::npos);
  CHECK_FALSE(expiry_after(now, "0s").ok());
  CHECK_FALSE(expiry_after(now, "soon").ok());
  auto from_query = pin_options_from_query({{"expire-in", "2500000h"}}, now);
  REQUIRE_FALSE(from_query.ok());
  CHECK(from_query.error().message.find("expire-in") != std::string::npos);
}
