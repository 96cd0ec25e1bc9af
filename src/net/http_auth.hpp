// HTTP authentication for the REST API, as IPFS Cluster's: `Authorization: Basic <base64>`
// checked against the configured credentials (basic_auth_credentials) in time that does not
// depend on where the given user or password differs, nor on which user exists; and
// `Authorization: Bearer <JWT>`, a token POST /token issues: HS256, claims {"iss": user},
// signed with that user's password.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "net/http_message.hpp"

namespace clusterpin::net {

struct BasicCredentials {
  std::string user;
  std::string password;
};

// Parses the value of an Authorization header ("Basic dXNlcjpwYXNz"); the scheme is
// case-insensitive. Nothing for another scheme, bad base64 or a missing ':'.
std::optional<BasicCredentials> parse_basic_auth(std::string_view authorization);

// Compares in time independent of the contents (lengths may differ: both sides are hashed).
bool constant_time_equal(std::string_view a, std::string_view b);

// True when the request's Authorization header names a user of `credentials` with its password.
// Every entry is checked, so the time taken does not reveal whether the user exists.
bool basic_auth_matches(const HttpHeaders& headers,
                        const std::map<std::string, std::string>& credentials);

// "Basic <base64(user:password)>", for clients.
std::string basic_auth_header(std::string_view user, std::string_view password);

// The token POST /token hands `user`: header {"alg":"HS256","typ":"JWT"}, claims {"iss":user},
// HMAC-SHA256 keyed by the password, each part base64url without padding (RFC 7519).
std::string issue_token(std::string_view user, std::string_view password);

// Whether the value of an Authorization header uses the Bearer scheme (any case).
bool is_bearer_auth(std::string_view authorization);

// The user whose token the value of an Authorization header ("Bearer <JWT>", any scheme case)
// carries, when its signature checks with that user's password; nothing otherwise: another
// scheme, a malformed token, an algorithm other than HS256, an unknown issuer, or a token whose
// exp has passed or whose nbf has not come (`now_seconds`: Unix time).
std::optional<std::string> verify_bearer_token(std::string_view authorization,
                                               const std::map<std::string, std::string>& credentials,
                                               std::int64_t now_seconds);

}  // namespace clusterpin::net
