// Checks the Noise core byte for byte against the cacophony vectors in
// shared/reference/noise-test-vectors.json (path in $NOISE_VECTORS): XX, NNpsk0 and XXpsk3.
// Every handshake and transport ciphertext and the final handshake hash must match exactly.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "net/noise.hpp"

using namespace clusterpin;
using namespace clusterpin::net::noise;

namespace {

Bytes unhex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    FAIL("not a hex digit: " << c);
    return 0;
  };
  Bytes out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
  }
  return out;
}

Key key_of(std::string_view hex) {
  Bytes b = unhex(hex);
  REQUIRE(b.size() == kKeySize);
  Key k{};
  std::copy(b.begin(), b.end(), k.begin());
  return k;
}

rapidjson::Document load_vectors() {
  const char* path = std::getenv("NOISE_VECTORS");
  REQUIRE_MESSAGE(path != nullptr, "set NOISE_VECTORS to noise-test-vectors.json");
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse(text.str().c_str());
  REQUIRE(!doc.HasParseError());
  return doc;
}

HandshakeConfig config_for(const rapidjson::Value& v, bool initiator) {
  const std::string side = initiator ? "init_" : "resp_";
  HandshakeConfig c;
  c.protocol_name = v["protocol_name"].GetString();
  c.initiator = initiator;
  c.prologue = unhex(v[(side + "prologue").c_str()].GetString());
  c.fixed_ephemeral = keypair_from_secret(key_of(v[(side + "ephemeral").c_str()].GetString()));
  if (v.HasMember((side + "static").c_str())) {
    c.static_keypair = keypair_from_secret(key_of(v[(side + "static").c_str()].GetString()));
  }
  if (v.HasMember((side + "psks").c_str())) {
    for (const auto& psk : v[(side + "psks").c_str()].GetArray())
      c.psks.push_back(key_of(psk.GetString()));
  }
  return c;
}

// Runs one vector: handshake messages then transport messages, alternating sides.
void run_vector(const rapidjson::Value& v) {
  auto init = HandshakeState::create(config_for(v, true));
  auto resp = HandshakeState::create(config_for(v, false));
  REQUIRE(init.ok());
  REQUIRE(resp.ok());
  std::optional<std::pair<CipherState, CipherState>> ic, rc;
  const auto& messages = v["messages"].GetArray();
  for (rapidjson::SizeType i = 0; i < messages.Size(); ++i) {
    const Bytes payload = unhex(messages[i]["payload"].GetString());
    const Bytes expected = unhex(messages[i]["ciphertext"].GetString());
    const bool initiator_sends = i % 2 == 0;
    Bytes wire, got;
    if (!init->finished()) {
      HandshakeState& writer = initiator_sends ? *init : *resp;
      HandshakeState& reader = initiator_sends ? *resp : *init;
      REQUIRE(writer.write_message(payload, wire).ok());
      CHECK(wire == expected);
      REQUIRE(reader.read_message(wire, got).ok());
      CHECK(got == payload);
      if (init->finished()) {
        REQUIRE(resp->finished());
        CHECK(init->handshake_hash() == key_of(v["handshake_hash"].GetString()));
        CHECK(resp->handshake_hash() == init->handshake_hash());
        ic = init->split();
        rc = resp->split();
      }
    } else {
      // first = initiator->responder, second = responder->initiator
      CipherState& enc = initiator_sends ? ic->first : rc->second;
      CipherState& dec = initiator_sends ? rc->first : ic->second;
      REQUIRE(enc.encrypt_with_ad({}, payload, wire).ok());
      CHECK(wire == expected);
      REQUIRE(dec.decrypt_with_ad({}, wire, got).ok());
      CHECK(got == payload);
    }
  }
  CHECK(ic.has_value());
}

const rapidjson::Value& vector_named(const rapidjson::Document& doc, std::string_view name) {
  for (const auto& v : doc["vectors"].GetArray()) {
    if (name == v["protocol_name"].GetString()) return v;
  }
  FAIL("vector missing: " << name);
  return doc;
}

}  // namespace

TEST_CASE("XXpsk3 handshake and transport match the reference vector byte for byte") {
  auto doc = load_vectors();
  run_vector(vector_named(doc, "Noise_XXpsk3_25519_ChaChaPoly_SHA256"));
}

TEST_CASE("XX handshake and transport match the reference vector byte for byte") {
  auto doc = load_vectors();
  run_vector(vector_named(doc, "Noise_XX_25519_ChaChaPoly_SHA256"));
}

TEST_CASE("NNpsk0 handshake and transport match the reference vector byte for byte") {
  auto doc = load_vectors();
  run_vector(vector_named(doc, "Noise_NNpsk0_25519_ChaChaPoly_SHA256"));
}

TEST_CASE("a tampered handshake message fails authentication and ends the handshake") {
  auto doc = load_vectors();
  const auto& v = vector_named(doc, "Noise_XXpsk3_25519_ChaChaPoly_SHA256");
  auto init = HandshakeState::create(config_for(v, true));
  auto resp = HandshakeState::create(config_for(v, false));
  Bytes m1, m2, p;
  REQUIRE(init->write_message({}, m1).ok());
  REQUIRE(resp->read_message(m1, p).ok());
  REQUIRE(resp->write_message({}, m2).ok());
  m2.back() ^= 1;
  CHECK_FALSE(init->read_message(m2, p).ok());
  CHECK(init->failed());
  CHECK_FALSE(init->write_message({}, m1).ok());
}

TEST_CASE("rekey changes the key identically on both sides") {
  CipherState a, b;
  Key k{};
  k[0] = 7;
  a.initialize_key(k);
  b.initialize_key(k);
  a.rekey();
  Bytes ct, pt;
  REQUIRE(a.encrypt_with_ad({}, as_bytes("hello"), ct).ok());
  CHECK_FALSE(b.decrypt_with_ad({}, ct, pt).ok());
  b.rekey();
  REQUIRE(b.decrypt_with_ad({}, ct, pt).ok());
  CHECK(pt == to_bytes("hello"));
}
