// Tests for the ConfState encoding stored in raft.db's snapshot row.
#include "store/conf_state_codec.hpp"

#include <doctest/doctest.h>

using namespace clusterpin;

TEST_CASE("a ConfState survives encode then decode with member order kept") {
  raft::ConfState conf{{"12D3KooWA", "12D3KooWB", "n3"}, {"12D3KooWL"}};
  auto decoded = store::decode_conf_state(store::encode_conf_state(conf));
  REQUIRE(decoded.ok());
  CHECK(*decoded == conf);
}

TEST_CASE("an empty ConfState encodes to nothing and decodes back to empty") {
  CHECK(store::encode_conf_state({}).empty());
  auto decoded = store::decode_conf_state("");
  REQUIRE(decoded.ok());
  CHECK(*decoded == raft::ConfState{});
}

TEST_CASE("decoding refuses an unknown role instead of dropping part of the membership") {
  auto decoded = store::decode_conf_state("voter a\nwitness b\n");
  REQUIRE(!decoded.ok());
  CHECK(decoded.error().message.find("witness") != std::string::npos);
}

TEST_CASE("decoding refuses a truncated record") {
  CHECK(!store::decode_conf_state("voter a\nvoter b").ok());
  CHECK(!store::decode_conf_state("voter\n").ok());
}
