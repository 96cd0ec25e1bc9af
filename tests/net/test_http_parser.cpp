// Tests for the incremental HTTP/1.1 parser and the request-target functions: every message is
// also fed byte by byte to prove fragmentation never changes the result, pipelined requests come
// out in order, and each kind of malformed or oversized input maps to its status code.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "net/http_parser.hpp"
#include "net/http_url.hpp"

using namespace clusterpin::net;

namespace {

struct Parsed {
  HttpRequest request;
  HttpResponseHead response;
  std::string body;
  HttpHeaders trailers;
  bool keep_alive = false;
};

struct Outcome {
  std::vector<Parsed> messages;
  HttpParseError error = HttpParseError::none;
  bool error_before_end = false;  // the error was reported before all input was fed
};

// Feeds `input` in pieces of `step` bytes (0 = all at once), collecting complete messages.
Outcome feed(HttpParser& parser, const std::string& input, size_t step = 0, bool eof = false) {
  Outcome out;
  Parsed current;
  std::string buffer;
  size_t offset = 0;
  auto drain = [&]() -> bool {
    for (;;) {
      auto s = parser.next(buffer);
      std::string piece(parser.body_piece());
      buffer.erase(0, s.consumed);
      switch (s.event) {
        case HttpParser::Event::need_more:
          return true;
        case HttpParser::Event::head:
          current = Parsed{};
          current.request = parser.request();
          current.response = parser.response();
          break;
        case HttpParser::Event::body:
          current.body += piece;
          break;
        case HttpParser::Event::done:
          current.trailers = parser.trailers();
          current.keep_alive = parser.keep_alive();
          out.messages.push_back(current);
          break;
        case HttpParser::Event::error:
          out.error = parser.error();
          return false;
      }
    }
  };
  while (offset < input.size()) {
    size_t n = step == 0 ? input.size() : std::min(step, input.size() - offset);
    buffer.append(input, offset, n);
    offset += n;
    if (!drain()) {
      out.error_before_end = offset < input.size();
      return out;
    }
  }
  if (eof) {
    auto s = parser.finish_eof();
    if (s.event == HttpParser::Event::done) {
      current.keep_alive = false;
      out.messages.push_back(current);
    } else if (s.event == HttpParser::Event::error) {
      out.error = parser.error();
    }
  }
  return out;
}

Outcome feed_request(const std::string& input, size_t step = 0, HttpLimits limits = {}) {
  HttpParser parser(HttpParser::Mode::request, limits);
  return feed(parser, input, step);
}

HttpParseError request_error(const std::string& input, HttpLimits limits = {}) {
  return feed_request(input, 0, limits).error;
}

}  // namespace

TEST_CASE("a simple GET yields method, decoded path, repeated query keys and headers") {
  auto out = feed_request(
      "GET /pins/ipfs/Qm%20x?arg=a&arg=b%2Fc&local=true&name=a+b HTTP/1.1\r\n"
      "Host: 127.0.0.1:9094\r\nX-Thing:   padded value  \r\n\r\n");
  REQUIRE(out.error == HttpParseError::none);
  REQUIRE(out.messages.size() == 1);
  const auto& r = out.messages[0].request;
  CHECK(r.method == "GET");
  CHECK(r.path == "/pins/ipfs/Qm x");
  CHECK(r.raw_query == "arg=a&arg=b%2Fc&local=true&name=a+b");
  CHECK(r.query_values("arg") == std::vector<std::string_view>{"a", "b/c"});
  CHECK(r.query_value("local") == "true");
  CHECK(r.query_value("name") == "a b");
  CHECK(!r.query_value("missing"));
  CHECK(r.headers.get("host") == "127.0.0.1:9094");
  CHECK(r.headers.get("x-thing") == "padded value");
  CHECK(r.version_minor == 1);
  CHECK(out.messages[0].keep_alive);
  CHECK(out.messages[0].body.empty());
}

TEST_CASE(
    "byte-by-byte feeding gives the same chunked request, extensions and trailers as one read") {
  std::string input =
      "POST /add?stream-channels=true HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Stream-Error: oops\r\nX-Other: 1\r\n\r\n";
  for (size_t step : {0, 1, 2, 3, 7}) {
    CAPTURE(step);
    auto out = feed_request(input, step);
    REQUIRE(out.error == HttpParseError::none);
    REQUIRE(out.messages.size() == 1);
    CHECK(out.messages[0].request.method == "POST");
    CHECK(out.messages[0].body == "hello, world");
    CHECK(out.messages[0].trailers.get("x-stream-error") == "oops");
    CHECK(out.messages[0].trailers.get("X-OTHER") == "1");
  }
}

TEST_CASE("pipelined requests come out in order with their own bodies") {
  std::string input =
      "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
      "GET /b HTTP/1.1\r\n\r\n"
      "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
      "DELETE /d HTTP/1.1\r\nConnection: close\r\n\r\n";
  for (size_t step : {0, 1, 5}) {
    CAPTURE(step);
    auto out = feed_request(input, step);
    REQUIRE(out.error == HttpParseError::none);
    REQUIRE(out.messages.size() == 4);
    CHECK(out.messages[0].request.path == "/a");
    CHECK(out.messages[0].body == "abc");
    CHECK(out.messages[1].request.path == "/b");
    CHECK(out.messages[1].body.empty());
    CHECK(out.messages[2].body == "xy");
    CHECK(out.messages[3].request.method == "DELETE");
    CHECK(out.messages[3].keep_alive == false);
    CHECK(out.messages[2].keep_alive == true);
  }
}

TEST_CASE("keep-alive follows the version and the Connection header") {
  CHECK(feed_request("GET / HTTP/1.1\r\n\r\n").messages.at(0).keep_alive);
  CHECK(!feed_request("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").messages.at(0).keep_alive);
  CHECK(
      !feed_request("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n").messages.at(0).keep_alive);
  CHECK(!feed_request("GET / HTTP/1.0\r\n\r\n").messages.at(0).keep_alive);
  CHECK(feed_request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").messages.at(0).keep_alive);
}

TEST_CASE("empty lines before a request line are ignored") {
  auto out = feed_request("\r\n\r\nGET /x HTTP/1.1\r\n\r\n");
  REQUIRE(out.messages.size() == 1);
  CHECK(out.messages[0].request.path == "/x");
}

TEST_CASE("header fields over the limit fail with 431 before the header ends") {
  HttpLimits limits;
  limits.max_header_bytes = 100;
  std::string input = "GET / HTTP/1.1\r\nX-Big: " + std::string(200, 'a');  // no line end yet
  auto out = feed_request(input, 1, limits);
  CHECK(out.error == HttpParseError::header_too_large);
  CHECK(out.error_before_end);
  CHECK(status_for(out.error) == 431);
  // Many small fields add up to the same limit.
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 20; ++i) many += "X-F" + std::to_string(i) + ": 0123456789\r\n";
  CHECK(request_error(many + "\r\n", limits) == HttpParseError::header_too_large);
  // Exactly at the limit is fine: 3 fields of 30 bytes + CRLF = 96 bytes.
  std::string fits = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 3; ++i)
    fits += "X-" + std::to_string(i) + ": " + std::string(24, 'v') + "\r\n";
  CHECK(request_error(fits + "\r\n", limits) == HttpParseError::none);
}

TEST_CASE("the default header limit is 4096 bytes of fields, like ipfs-cluster") {
  std::string ok = "GET / HTTP/1.1\r\nX-A: " + std::string(4000, 'a') + "\r\n\r\n";
  CHECK(request_error(ok) == HttpParseError::none);
  std::string big = "GET / HTTP/1.1\r\nX-A: " + std::string(4100, 'a') + "\r\n\r\n";
  CHECK(request_error(big) == HttpParseError::header_too_large);
}

TEST_CASE("a body over the limit fails with 413: Content-Length at the head, chunked as it grows") {
  HttpLimits limits;
  limits.max_body_bytes = 10;
  auto out = feed_request("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 0, limits);
  CHECK(out.error == HttpParseError::body_too_large);
  CHECK(status_for(out.error) == 413);
  CHECK(request_error("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", limits) ==
        HttpParseError::none);
  CHECK(request_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "8\r\n01234567\r\n8\r\n01234567\r\n0\r\n\r\n",
                      limits) == HttpParseError::body_too_large);
}

TEST_CASE("malformed requests are refused with the matching status") {
  struct Case {
    const char* input;
    HttpParseError error;
    int status;
  };
  const Case cases[] = {
      {"GARBAGE\r\n\r\n", HttpParseError::bad_start_line, 400},
      {"GET /\r\n\r\n", HttpParseError::bad_start_line, 400},
      {"GET  / HTTP/1.1\r\n\r\n", HttpParseError::bad_start_line, 400},
      {"GET / HTTP/1.1 extra\r\n\r\n", HttpParseError::bad_start_line, 400},
      {"G(T / HTTP/1.1\r\n\r\n", HttpParseError::bad_start_line, 400},
      {"GET / FTP/1.1\r\n\r\n", HttpParseError::bad_start_line, 400},
      {"GET / HTTP/2.0\r\n\r\n", HttpParseError::bad_version, 505},
      {"GET nopath HTTP/1.1\r\n\r\n", HttpParseError::bad_target, 400},
      {"GET /a%zz HTTP/1.1\r\n\r\n", HttpParseError::bad_target, 400},
      {"GET /a?x=%4 HTTP/1.1\r\n\r\n", HttpParseError::bad_target, 400},
      {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", HttpParseError::bad_header, 400},
      {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", HttpParseError::bad_header, 400},
      {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", HttpParseError::bad_header, 400},
      {"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", HttpParseError::bad_header, 400},
      {"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", HttpParseError::bad_framing, 400},
      {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", HttpParseError::bad_framing, 400},
      {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
       HttpParseError::bad_framing, 400},
      {"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
       HttpParseError::bad_framing, 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", HttpParseError::unsupported_encoding,
       501},
      // A Transfer-Encoding naming no coding, beside a Content-Length or alone.
      {"POST / HTTP/1.1\r\nTransfer-Encoding:\r\nContent-Length: 5\r\n\r\nabcde",
       HttpParseError::bad_framing, 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: ,\r\n\r\n", HttpParseError::bad_framing, 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", HttpParseError::bad_chunk,
       400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
       HttpParseError::bad_chunk, 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
       HttpParseError::bad_chunk, 400},
  };
  for (const auto& c : cases) {
    CAPTURE(c.input);
    auto error = request_error(c.input);
    CHECK(error == c.error);
    CHECK(status_for(error) == c.status);
    CHECK(!describe(error).empty());
  }
  // Equal repeated Content-Length values are one length, not a conflict.
  CHECK(request_error("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab") ==
        HttpParseError::none);
}

TEST_CASE("an error's message names the limit passed or the header line refused") {
  auto message = [](const std::string& input, HttpLimits limits = {}) {
    HttpParser parser(HttpParser::Mode::request, limits);
    feed(parser, input);
    return parser.error_message();
  };
  HttpLimits small;
  small.max_header_bytes = 100;
  small.max_header_count = 7;
  small.max_body_bytes = 10;
  small.max_start_line_bytes = 64;
  CHECK(message("GET / HTTP/1.1\r\nX-Big: " + std::string(200, 'a'), small) ==
        "request header fields too large (at most 100 bytes and 7 fields)");
  CHECK(message("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", small) ==
        "request body too large (at most 10 bytes)");
  CHECK(message("GET /" + std::string(100, 'a') + " HTTP/1.1\r\n", small) ==
        "request line too long (at most 64 bytes)");
  CHECK(message("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n").starts_with(
      "malformed header field \"Bad Name: x\""));
  // Bytes that are not printable are shown as '?', and at most 64 of them.
  std::string odd = message("GET / HTTP/1.1\r\n\x01" + std::string(100, 'z') + "\r\n\r\n");
  CHECK(odd.starts_with("malformed header field \"?" + std::string(63, 'z') + "\""));
  CHECK(message("GET / FTP/1.1\r\n\r\n") == describe(HttpParseError::bad_start_line));
}

TEST_CASE("an error body is valid UTF-8 JSON whatever bytes its message echoes") {
  // Valid sequences of 1 to 4 bytes are kept; bytes that are not UTF-8 (a lone continuation,
  // an overlong form, a surrogate, past U+10FFFF, a cut sequence) become \ufffd.
  CHECK(json_escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x8c") == "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x8c");
  CHECK(json_escape("/x\xff") == "/x\\ufffd");
  CHECK(json_escape("\x80") == "\\ufffd");
  CHECK(json_escape("\xc0\xaf") == "\\ufffd\\ufffd");          // overlong '/'
  CHECK(json_escape("\xed\xa0\x80") == "\\ufffd\\ufffd\\ufffd");  // a surrogate
  CHECK(json_escape("\xf4\x90\x80\x80") == "\\ufffd\\ufffd\\ufffd\\ufffd");
  CHECK(json_escape("ab\xe2\x82") == "ab\\ufffd\\ufffd");  // cut at the end
  CHECK(json_escape("q\"\\\n\x01") == "q\\\"\\\\\\n\\u0001");
  CHECK(json_error_body(404, "no route for GET /x\xff") ==
        "{\"code\":404,\"message\":\"no route for GET /x\\ufffd\"}");
}

TEST_CASE("bytes that cannot begin a request fail at once, without waiting for a line end") {
  auto out = feed_request(std::string("\x16\x03\x01\x02\x00", 5), 1);
  CHECK(out.error == HttpParseError::bad_start_line);
  CHECK(out.error_before_end);
  // A method still arriving byte by byte is not an error.
  CHECK(feed_request("GE", 1).error == HttpParseError::none);
}

TEST_CASE("a request line over the limit fails with 414") {
  HttpLimits limits;
  limits.max_start_line_bytes = 64;
  auto error = request_error("GET /" + std::string(100, 'a') + " HTTP/1.1\r\n\r\n", limits);
  CHECK(error == HttpParseError::start_line_too_large);
  CHECK(status_for(error) == 414);
}

TEST_CASE("after an error the parser stays failed and reports it again") {
  HttpParser parser(HttpParser::Mode::request);
  CHECK(parser.next("BAD\r\n").event == HttpParser::Event::error);
  CHECK(parser.next("GET / HTTP/1.1\r\n\r\n").event == HttpParser::Event::error);
  CHECK(!parser.keep_alive());
}

TEST_CASE("a chunked NDJSON response with the X-Stream-Error trailer parses byte by byte") {
  std::string input =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTrailer: X-Stream-Error\r\n"
      "Transfer-Encoding: chunked\r\n\r\n"
      "e\r\n{\"Cid\":\"Qm1\"}\n\r\ne\r\n{\"Cid\":\"Qm2\"}\n\r\n0\r\nX-Stream-Error: \r\n\r\n";
  for (size_t step : {0, 1, 4}) {
    HttpParser parser(HttpParser::Mode::response);
    auto out = feed(parser, input, step);
    REQUIRE(out.error == HttpParseError::none);
    REQUIRE(out.messages.size() == 1);
    CHECK(out.messages[0].response.status == 200);
    CHECK(out.messages[0].response.reason == "OK");
    CHECK(out.messages[0].body == "{\"Cid\":\"Qm1\"}\n{\"Cid\":\"Qm2\"}\n");
    CHECK(out.messages[0].trailers.get("X-Stream-Error") == "");
    CHECK(out.messages[0].keep_alive);
  }
}

TEST_CASE("responses without a body: 204, 304, HEAD, and 100 Continue is skipped") {
  HttpParser p1(HttpParser::Mode::response);
  auto out = feed(
      p1, "HTTP/1.1 204 No Content\r\nTrailer: X-Stream-Error\r\n\r\nHTTP/1.1 304 \r\n\r\n", 1);
  REQUIRE(out.messages.size() == 2);
  CHECK(out.messages[0].response.status == 204);
  CHECK(out.messages[1].response.status == 304);
  CHECK(out.messages[1].response.reason.empty());

  HttpParser p2(HttpParser::Mode::response);
  p2.expect_response_to("HEAD");
  out = feed(p2, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
  REQUIRE(out.messages.size() == 1);
  CHECK(out.messages[0].body.empty());

  HttpParser p3(HttpParser::Mode::response);
  out =
      feed(p3, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
  REQUIRE(out.messages.size() == 1);
  CHECK(out.messages[0].response.status == 201);
  CHECK(out.messages[0].body == "ok");
}

TEST_CASE("a response without length is read until the connection closes") {
  HttpParser parser(HttpParser::Mode::response);
  auto out = feed(parser, "HTTP/1.0 200 OK\r\n\r\nall of this is the body", 3, true);
  REQUIRE(out.messages.size() == 1);
  CHECK(out.messages[0].body == "all of this is the body");
  CHECK(!out.messages[0].keep_alive);
}

TEST_CASE("a connection closed in the middle of a response is reported as truncated") {
  HttpParser parser(HttpParser::Mode::response);
  auto out = feed(parser, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, true);
  CHECK(out.error == HttpParseError::truncated);
  HttpParser chunked(HttpParser::Mode::response);
  out = feed(chunked, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", 0, true);
  CHECK(out.error == HttpParseError::truncated);
  HttpParser clean(HttpParser::Mode::response);
  CHECK(clean.finish_eof().event == HttpParser::Event::need_more);
}

TEST_CASE("malformed status lines are refused") {
  for (const char* input : {"HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 abc OK\r\n\r\n",
                            "ICY 200 OK\r\n\r\n", "HTTP/1.1 200OK\r\n\r\n"}) {
    CAPTURE(input);
    HttpParser parser(HttpParser::Mode::response);
    CHECK(feed(parser, input, 0).error == HttpParseError::bad_start_line);
  }
}

TEST_CASE("percent decoding is strict and query parsing keeps repeated keys in order") {
  CHECK(percent_decode("a%2Fb%20c", false) == "a/b c");
  CHECK(percent_decode("a+b", false) == "a+b");
  CHECK(percent_decode("a+b", true) == "a b");
  CHECK(!percent_decode("%", false));
  CHECK(!percent_decode("%4", false));
  CHECK(!percent_decode("%g0", false));
  auto q = parse_query("arg=1&arg=2&flag&&x=%3D");
  REQUIRE(q);
  REQUIRE(q->size() == 4);
  CHECK((*q)[0] == std::pair<std::string, std::string>{"arg", "1"});
  CHECK((*q)[1] == std::pair<std::string, std::string>{"arg", "2"});
  CHECK((*q)[2] == std::pair<std::string, std::string>{"flag", ""});
  CHECK((*q)[3] == std::pair<std::string, std::string>{"x", "="});
  CHECK(!parse_query("a=%zz"));
}

TEST_CASE("a path is split into segments before decoding, so an encoded slash stays in its segment") {
  using Segments = std::vector<std::string>;
  CHECK(path_segments("/monitor/metrics/tag%3Aa%2Fb") == Segments{"monitor", "metrics", "tag:a/b"});
  CHECK(path_segments("/monitor/metrics/a%2fb%2F") == Segments{"monitor", "metrics", "a/b/"});
  // Real slashes still separate: an IPFS path under /pins keeps every component.
  CHECK(path_segments("/pins/ipfs/Qm1/a/b") == Segments{"pins", "ipfs", "Qm1", "a", "b"});
  CHECK(path_segments("/pins/ipfs/Qm1/a%20b/c") == Segments{"pins", "ipfs", "Qm1", "a b", "c"});
  // Empty segments (leading, trailing, doubled '/') are skipped; an encoded empty name is not.
  CHECK(path_segments("//pins//x/") == Segments{"pins", "x"});
  CHECK(path_segments("/") == Segments{});
  CHECK(path_segments("") == Segments{});
  CHECK(path_segments("/%2F") == Segments{"/"});
  // A malformed escape in any segment refuses the whole path.
  CHECK(!path_segments("/a%zz/b"));
  CHECK(!path_segments("/a/b%2"));
  CHECK(!path_segments("/a/%/b"));
}

TEST_CASE("a request keeps its raw path beside the decoded one") {
  auto out = feed_request("GET /monitor/metrics/tag%3Aa%2Fb?x=%2F HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(out.error == HttpParseError::none);
  REQUIRE(out.messages.size() == 1);
  const auto& r = out.messages[0].request;
  CHECK(r.raw_path == "/monitor/metrics/tag%3Aa%2Fb");
  CHECK(r.path == "/monitor/metrics/tag:a/b");
  CHECK(r.raw_query == "x=%2F");
  auto absolute = parse_target("http://127.0.0.1:9094/pins/a%2Fb?local=true");
  REQUIRE(absolute);
  CHECK(absolute->raw_path == "/pins/a%2Fb");
  CHECK(absolute->path == "/pins/a/b");
  auto bare = parse_target("http://127.0.0.1:9094?local=true");
  REQUIRE(bare);
  CHECK(bare->raw_path == "/");
  CHECK(parse_target("*")->raw_path == "*");
}

TEST_CASE("targets built with make_target decode back to the same path and query") {
  QueryPairs query = {{"arg", "/ipfs/Qm x"}, {"arg", "a&b=c"}, {"stream", "true"}};
  std::string target = make_target("/api/v0/pin/ls", query);
  CHECK(target == "/api/v0/pin/ls?arg=%2Fipfs%2FQm%20x&arg=a%26b%3Dc&stream=true");
  auto parsed = parse_target(target);
  REQUIRE(parsed);
  CHECK(parsed->path == "/api/v0/pin/ls");
  CHECK(parsed->query == query);
  CHECK(percent_encode("a/b c", true) == "a/b%20c");
  auto absolute = parse_target("http://127.0.0.1:9094/pins?local=true");
  REQUIRE(absolute);
  CHECK(absolute->path == "/pins");
  CHECK(absolute->raw_query == "local=true");
  CHECK(parse_target("*")->path == "*");
}

TEST_CASE("random fragmentation of pipelined traffic never changes the parsed messages") {
  std::string input =
      "POST /a?x=1 HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"
      "POST /b HTTP/1.1\r\nTransfer-Encoding: "
      "chunked\r\n\r\n3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n"
      "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
  auto reference = feed_request(input);
  REQUIRE(reference.messages.size() == 3);
  std::mt19937 rng(12345);
  for (int round = 0; round < 300; ++round) {
    HttpParser parser(HttpParser::Mode::request);
    Outcome out;
    Parsed current;
    std::string buffer;
    size_t offset = 0;
    while (offset < input.size()) {
      size_t n = std::min<size_t>(1 + rng() % 9, input.size() - offset);
      buffer.append(input, offset, n);
      offset += n;
      for (bool more = true; more;) {
        auto s = parser.next(buffer);
        std::string piece(parser.body_piece());
        buffer.erase(0, s.consumed);
        switch (s.event) {
          case HttpParser::Event::head:
            current = Parsed{};
            current.request = parser.request();
            break;
          case HttpParser::Event::body:
            current.body += piece;
            break;
          case HttpParser::Event::done:
            current.trailers = parser.trailers();
            out.messages.push_back(current);
            break;
          default:
            more = false;
        }
      }
    }
    REQUIRE(out.messages.size() == 3);
    for (size_t i = 0; i < 3; ++i) {
      CHECK(out.messages[i].request.target == reference.messages[i].request.target);
      CHECK(out.messages[i].body == reference.messages[i].body);
      CHECK(out.messages[i].trailers.fields() == reference.messages[i].trailers.fields());
    }
  }
}

TEST_CASE("random bytes end in need_more or an error status, never a crash") {
  std::mt19937 rng(777);
  const std::string alphabet = "GET /HTTP1.\r\n:; 0123456789abcdefxyzChunkedTransfer-Encoding%?&=";
  for (int round = 0; round < 2000; ++round) {
    HttpLimits limits;
    limits.max_header_bytes = 256;
    limits.max_start_line_bytes = 256;
    HttpParser parser(HttpParser::Mode::request, limits);
    std::string input;
    size_t size = rng() % 600;
    for (size_t i = 0; i < size; ++i) input += alphabet[rng() % alphabet.size()];
    auto out = feed(parser, input, 1 + rng() % 7);
    if (out.error != HttpParseError::none) CHECK(status_for(out.error) >= 400);
  }
}

TEST_CASE("a header field written with a line break in its value parses as one field") {
  // What the server and the client write (append_header_field), read back by the parser.
  std::string head = "GET /x HTTP/1.1\r\n";
  append_header_field(head, "Host", "a");
  append_header_field(head, "X-Note", "one\r\nX-Evil: 1\r\n\r\nGET /y HTTP/1.1\tend\x7f");
  head += "\r\n";
  auto out = feed_request(head);
  REQUIRE(out.error == HttpParseError::none);
  REQUIRE(out.messages.size() == 1);
  const auto& r = out.messages[0].request;
  CHECK(r.path == "/x");
  CHECK_FALSE(r.headers.has("X-Evil"));
  CHECK(r.headers.get("X-Note") == "one  X-Evil: 1    GET /y HTTP/1.1\tend");
}
