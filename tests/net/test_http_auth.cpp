// Tests for Basic authentication parsing and checking, and for multipart/form-data encoding
// (the body Kubo's /api/v0/add reads). Part of the http_parser test program.
#include <doctest/doctest.h>

#include "net/http_auth.hpp"
#include "net/http_multipart.hpp"

using namespace clusterpin::net;

TEST_CASE("Basic credentials parse from the Authorization header, in any scheme case") {
  auto c = parse_basic_auth("Basic dXNlcjpwYTpzcw==");  // user:pa:ss
  REQUIRE(c);
  CHECK(c->user == "user");
  CHECK(c->password == "pa:ss");
  CHECK(parse_basic_auth("basic dXNlcjpwYTpzcw==")->user == "user");
  CHECK(!parse_basic_auth("Bearer abc"));
  CHECK(!parse_basic_auth("Basic !!!notbase64"));
  CHECK(!parse_basic_auth("Basic dXNlcg=="));  // "user": no ':'
  CHECK(!parse_basic_auth("Basic"));
  CHECK(!parse_basic_auth(""));
}

TEST_CASE("basic_auth_header and parse_basic_auth round-trip") {
  std::string header = basic_auth_header("admin", "s3cr:et");
  CHECK(header == "Basic YWRtaW46czNjcjpldA==");
  auto c = parse_basic_auth(header);
  REQUIRE(c);
  CHECK(c->user == "admin");
  CHECK(c->password == "s3cr:et");
}

TEST_CASE("basic_auth_matches accepts only a configured user with its own password") {
  std::map<std::string, std::string> credentials{{"alice", "wonderland"}, {"bob", "builder"}};
  auto with = [](std::string value) { return HttpHeaders{{"Authorization", std::move(value)}}; };
  CHECK(basic_auth_matches(with(basic_auth_header("alice", "wonderland")), credentials));
  CHECK(basic_auth_matches(with(basic_auth_header("bob", "builder")), credentials));
  CHECK(!basic_auth_matches(with(basic_auth_header("alice", "builder")), credentials));
  CHECK(!basic_auth_matches(with(basic_auth_header("alice", "wonderlan")), credentials));
  CHECK(!basic_auth_matches(with(basic_auth_header("carol", "wonderland")), credentials));
  CHECK(!basic_auth_matches(HttpHeaders{}, credentials));
  CHECK(!basic_auth_matches(with(basic_auth_header("alice", "wonderland")), {}));
}

TEST_CASE("constant_time_equal compares contents of any lengths") {
  CHECK(constant_time_equal("", ""));
  CHECK(constant_time_equal("abc", "abc"));
  CHECK(!constant_time_equal("abc", "abd"));
  CHECK(!constant_time_equal("abc", "abcd"));
}

TEST_CASE(
    "a multipart form carries a file part named `file` with its filename, framed by the boundary") {
  MultipartForm form;
  form.add_file("file", "hello \"x\".txt", "hello clusterpin\n");
  form.add_field("note", "n");
  auto encoded = form.encode();
  const std::string prefix = "multipart/form-data; boundary=";
  REQUIRE(encoded.content_type.rfind(prefix, 0) == 0);
  std::string boundary = encoded.content_type.substr(prefix.size());
  CHECK(boundary.size() > 20);
  CHECK(encoded.body ==
        "--" + boundary + "\r\n" +
            "Content-Disposition: form-data; name=\"file\"; filename=\"hello \\\"x\\\".txt\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
            "hello clusterpin\n\r\n"
            "--" +
            boundary + "\r\n" +
            "Content-Disposition: form-data; name=\"note\"\r\n\r\n"
            "n\r\n"
            "--" +
            boundary + "--\r\n");
  // Two encodings pick different random boundaries.
  CHECK(form.encode().content_type != encoded.content_type);
}
