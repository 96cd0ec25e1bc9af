// HTTP Basic authentication for the REST API: parsing `Authorization: Basic <base64>` and
// checking it against the configured credentials (ipfs-cluster basic_auth_credentials) in time
// that does not depend on where the given user or password differs, nor on which user exists.
#pragma once

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

}  // namespace clusterpin::net
