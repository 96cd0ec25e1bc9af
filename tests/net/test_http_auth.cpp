// Tests for Basic and bearer-token authentication, and for multipart/form-data encoding
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

// Tokens computed independently (Python's hmac and base64 over the same header and claims).
constexpr const char* kAdminToken =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhZG1pbiJ9."
    "oiqVSzC-HZvcSSGW97CNzQ07FgIUgfZFkVOYHRrYFCs";

TEST_CASE("issue_token signs {\"iss\": user} with HS256 keyed by the password, as POST /token does") {
  CHECK(issue_token("admin", "s3cret") == kAdminToken);
}

TEST_CASE("a bearer token is accepted only with a valid HS256 signature by a configured user") {
  std::map<std::string, std::string> credentials{{"admin", "s3cret"}, {"bob", "builder"}};
  constexpr std::int64_t now = 1'800'000'000;
  auto verify = [&](const std::string& header) { return verify_bearer_token(header, credentials, now); };
  CHECK(verify(std::string("Bearer ") + kAdminToken) == "admin");
  CHECK(verify(std::string("bearer  ") + kAdminToken) == "admin");
  CHECK(verify("Bearer " + issue_token("bob", "builder")) == "bob");
  // Signed with another password, by an unknown user, or altered.
  CHECK_FALSE(verify("Bearer " + issue_token("bob", "wrong")));
  CHECK_FALSE(verify("Bearer " + issue_token("carol", "builder")));
  std::string altered = kAdminToken;
  altered.back() = altered.back() == 's' ? 't' : 's';
  CHECK_FALSE(verify("Bearer " + altered));
  // Another algorithm (even with a signature a HS256 check would take), or none at all.
  CHECK_FALSE(verify("Bearer eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhZG1pbiJ9."
                     "_5Qyvd0H-orAYlXy0dL1HKs7RW3ufiaM3X2yDy6hSbs"));
  CHECK_FALSE(verify("Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJhZG1pbiJ9."));
  // Expired (exp 1000), not yet valid (nbf 4e9).
  CHECK_FALSE(verify("Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhZG1pbiIsImV4cCI6MTAwMH0."
                     "4RPOgLD7pv1OFsdJ8WscBuIa8h7WUc20OL35kz-k12c"));
  CHECK_FALSE(verify("Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhZG1pbiIsIm5iZiI6NDAwMDAwMDAwMH0."
                     "Zwkm-uhyinngre5JTxZp0-jb2_JxUDeBySVrZ4kCjX8"));
  // Not a token, or another scheme.
  CHECK_FALSE(verify("Bearer not-a-token"));
  CHECK_FALSE(verify("Bearer a.b.c.d"));
  CHECK_FALSE(verify("Bearer "));
  CHECK_FALSE(verify(std::string("Basic ") + kAdminToken));
  CHECK(is_bearer_auth("Bearer x"));
  CHECK_FALSE(is_bearer_auth("Basic x"));
}
