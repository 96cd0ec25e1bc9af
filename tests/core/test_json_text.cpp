// JSON text helpers: escaped strings read back as the bytes written; the indenter lays JSON out
// exactly as RapidJSON's PrettyWriter does, refuses what is not one JSON value, and survives
// deep nesting and random bytes.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "core/json_text.hpp"

using namespace clusterpin;

namespace {

std::string rapidjson_pretty(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  REQUIRE_FALSE(doc.HasParseError());
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
  writer.SetIndent(' ', 4);
  doc.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

// A random JSON value with random whitespace between tokens.
std::string random_json(std::mt19937& rng, int depth) {
  auto ws = [&] { return std::string(rng() % 3 == 0 ? rng() % 3 : 0, " \n\t"[rng() % 3]); };
  switch (depth <= 0 ? rng() % 4 : rng() % 6) {
    case 0: return std::to_string(static_cast<int>(rng() % 2001) - 1000);
    case 1: return std::string("\"s") + std::string(rng() % 3, 'x') + (rng() % 2 ? "\\n\"" : "\"");
    case 2: return rng() % 2 ? "true" : "null";
    case 3: return "false";
    case 4: {
      std::string out = "[" + ws();
      const unsigned n = rng() % 4;
      for (unsigned i = 0; i < n; ++i) out += (i ? "," : "") + ws() + random_json(rng, depth - 1) + ws();
      return out + "]";
    }
    default: {
      std::string out = "{" + ws();
      const unsigned n = rng() % 4;
      for (unsigned i = 0; i < n; ++i) {
        out += (i ? "," : "") + ws() + "\"k" + std::to_string(i) + "\"" + ws() + ":" + ws() +
               random_json(rng, depth - 1) + ws();
      }
      return out + "}";
    }
  }
}

}  // namespace

TEST_CASE("an escaped string reads back as the bytes written") {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  for (const std::string& s : {std::string(), std::string("plain"), std::string("q\"b\\s/"), all}) {
    std::string json;
    append_json_string(json, s);
    rapidjson::Document doc;
    doc.Parse(json.data(), json.size());
    REQUIRE_FALSE(doc.HasParseError());
    REQUIRE(doc.IsString());
    CHECK(std::string(doc.GetString(), doc.GetStringLength()) == s);
  }
  std::string json;
  append_json_string(json, "a\"\\\n\t\x01\x1f\x7f");
  CHECK(json == "\"a\\\"\\\\\\n\\t\\u0001\\u001F\x7f\"");
}

TEST_CASE("indenting gives PrettyWriter's layout with a 4-space indent") {
  for (std::string_view json : {
           R"({"a":1,"b":[1,2,{"c":null}],"d":{},"e":[],"f":"x\"y","g":true,"h":false})",
           R"([])", R"({})", R"("s")", R"(-12.5)", R"(0)", R"(null)",
           R"([[[]],[{}],{"k":[{"z":[1]}]}])",
           " \n{ \"a\" : [ 1 , 2 ] ,\t\"b\" : { } } \r\n",
           R"({"cid":"QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n","metadata":{"k":"v"},"origins":[]})"}) {
    CAPTURE(json);
    auto ours = indent_json(json, 4);
    REQUIRE(ours.has_value());
    CHECK(*ours == rapidjson_pretty(json));
  }
  CHECK(indent_json("[-12.5e+3]", 2) == "[\n  -12.5e+3\n]");  // numbers as written
}

TEST_CASE("indenting random JSON values gives PrettyWriter's layout") {
  std::mt19937 rng(5);
  for (int i = 0; i < 5'000; ++i) {
    const std::string json = random_json(rng, 4);
    CAPTURE(json);
    auto ours = indent_json(json, 4);
    REQUIRE(ours.has_value());
    CHECK(*ours == rapidjson_pretty(json));
  }
}

TEST_CASE("indenting copies strings of any length with an escape or a UTF-8 byte anywhere") {
  // Long strings are scanned a word at a time: each stop byte at every position of every length.
  for (std::size_t n = 0; n <= 40; ++n) {
    const std::string plain(n, 'a');
    CAPTURE(n);
    const std::string json = "[\"" + plain + "\"]";
    CHECK(indent_json(json, 4) == rapidjson_pretty(json));
    for (std::size_t at = 0; at <= n; ++at) {
      CAPTURE(at);
      for (std::string_view insert : {"\\\"", "\\\\", "\\n", "\\u0001", "\xc3\xa9", "\x7f", " ", "~"}) {
        const std::string text = "[\"" + plain.substr(0, at) + std::string(insert) + plain.substr(at) + "\"]";
        CHECK(indent_json(text, 4) == rapidjson_pretty(text));
      }
      // A raw control byte or an unescaped quote inside is refused wherever it stands.
      for (char bad : {'\x01', '\x1f', '\n', '"'}) {
        const std::string text = "[\"" + plain.substr(0, at) + bad + plain.substr(at) + "\"]";
        CHECK_FALSE(indent_json(text, 4).has_value());
      }
    }
  }
}

TEST_CASE("indenting refuses what is not exactly one JSON value") {
  for (std::string_view bad : {"", " ", "{", "}", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}", "{a:1}",
                               "{\"a\":1,}", "[1 2]", "[1]]", "[1]x", "\"open", "\"bad\\q\"",
                               "\"\\u12g4\"", "\"\\u12\"", "\"ctl\x01\"", "01", "-", "1.", "1e",
                               "tru", "nul", "{\"a\":1]", "[1}", "1 2"}) {
    CAPTURE(bad);
    CHECK_FALSE(indent_json(bad, 4).has_value());
  }
}

TEST_CASE("append_indented_json appends to what the buffer holds and keeps it on bad input") {
  std::string out = "before\n";
  REQUIRE(append_indented_json(out, R"({"a":"x\"y","b":[1]})", 2));
  CHECK(out == "before\n{\n  \"a\": \"x\\\"y\",\n  \"b\": [\n    1\n  ]\n}");
  const std::string kept = out;
  CHECK_FALSE(append_indented_json(out, R"({"a":"open)", 2));
  CHECK_FALSE(append_indented_json(out, R"({"a":[1,2,}})", 2));
  CHECK(out == kept);  // a failed line leaves no partial output behind
}

TEST_CASE("deep nesting costs heap, not stack, and random bytes never crash") {
  const std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  auto out = indent_json(deep, 0);  // width 0: the layout of a million levels stays small
  REQUIRE(out.has_value());
  CHECK(out->size() == 2 * deep.size() - 2);  // a newline after each [ and before each ], but in []
  CHECK_FALSE(indent_json(std::string(1'000'000, '['), 0).has_value());
  std::mt19937 rng(11);
  const std::string alphabet = "{}[]\",:\\ 0123456789-.eEtrufalsn";
  for (int i = 0; i < 20'000; ++i) {
    std::string junk(rng() % 24, ' ');
    for (auto& c : junk) c = alphabet[rng() % alphabet.size()];
    auto ours = indent_json(junk, 4);
    rapidjson::Document doc;
    doc.Parse(junk.data(), junk.size());
    CAPTURE(junk);
    CHECK(ours.has_value() == !doc.HasParseError());
    // RapidJSON rewrites fractions, exponents and integers past 64 bits; other text must match.
    const bool plain_numbers = junk.find_first_of(".eE") == std::string::npos && junk.size() <= 16;
    if (ours && !doc.HasParseError() && plain_numbers) CHECK(*ours == rapidjson_pretty(junk));
  }
}
