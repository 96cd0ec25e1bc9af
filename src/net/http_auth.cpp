// Basic and bearer authentication: base64 and HMAC-SHA256 through libsodium, comparisons of
// fixed-size values with sodium_memcmp so that neither content nor length leaks through timing.
#include "net/http_auth.hpp"

#include <rapidjson/document.h>
#include <sodium.h>

#include <array>

#include "core/json_text.hpp"
#include "core/sodium_init.hpp"

namespace clusterpin::net {
namespace {

// libsodium's base64 in `variant` (ORIGINAL for Basic credentials, URLSAFE_NO_PADDING for JWT
// parts). Decoding refuses anything but the whole text in that variant.
std::string to_base64(std::string_view bytes, int variant) {
  initialize_sodium();
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), variant);
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}

std::optional<std::string> from_base64(std::string_view text, int variant) {
  initialize_sodium();
  std::string out(text.size(), '\0');
  size_t length = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &length, &end, variant) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(length);
  return out;
}

constexpr int kUrlSafe = sodium_base64_VARIANT_URLSAFE_NO_PADDING;

}  // namespace

std::optional<BasicCredentials> parse_basic_auth(std::string_view authorization) {
  while (!authorization.empty() && authorization.front() == ' ') authorization.remove_prefix(1);
  if (authorization.size() < 6 || !equals_ignore_case(authorization.substr(0, 5), "basic") ||
      authorization[5] != ' ') {
    return std::nullopt;
  }
  std::string_view encoded = authorization.substr(6);
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  while (!encoded.empty() && encoded.back() == ' ') encoded.remove_suffix(1);
  if (encoded.empty() || encoded.size() > 4096) return std::nullopt;
  auto decoded = from_base64(encoded, sodium_base64_VARIANT_ORIGINAL);
  if (!decoded) return std::nullopt;
  size_t colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return BasicCredentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  initialize_sodium();
  unsigned char ha[crypto_generichash_BYTES];
  unsigned char hb[crypto_generichash_BYTES];
  crypto_generichash(ha, sizeof ha, reinterpret_cast<const unsigned char*>(a.data()), a.size(),
                     nullptr, 0);
  crypto_generichash(hb, sizeof hb, reinterpret_cast<const unsigned char*>(b.data()), b.size(),
                     nullptr, 0);
  return sodium_memcmp(ha, hb, sizeof ha) == 0;
}

bool basic_auth_matches(const HttpHeaders& headers,
                        const std::map<std::string, std::string>& credentials) {
  auto value = headers.get("Authorization");
  if (!value) return false;
  auto given = parse_basic_auth(*value);
  if (!given) return false;
  bool match = false;
  for (const auto& [user, password] : credentials) {
    // Non-short-circuit '&' and '|': every entry costs the same whatever matched.
    bool this_one =
        constant_time_equal(given->user, user) & constant_time_equal(given->password, password);
    match = match | this_one;
  }
  return match;
}

std::string basic_auth_header(std::string_view user, std::string_view password) {
  std::string plain = std::string(user) + ":" + std::string(password);
  return "Basic " + to_base64(plain, sodium_base64_VARIANT_ORIGINAL);
}

namespace {

using Mac = std::array<unsigned char, crypto_auth_hmacsha256_BYTES>;

Mac hs256(std::string_view key, std::string_view signed_part) {
  initialize_sodium();
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(signed_part.data()),
                                signed_part.size());
  Mac mac{};
  crypto_auth_hmacsha256_final(&state, mac.data());
  return mac;
}

std::optional<rapidjson::Document> json_object(std::string_view text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  return d;
}

// A NumericDate claim, when present, must be a number.
bool time_claim(const rapidjson::Document& claims, const char* name, std::optional<double>& out) {
  auto it = claims.FindMember(name);
  if (it == claims.MemberEnd()) return true;
  if (!it->value.IsNumber()) return false;
  out = it->value.GetDouble();
  return true;
}

}  // namespace

std::string issue_token(std::string_view user, std::string_view password) {
  std::string claims = "{\"iss\":";
  append_json_string(claims, user);
  claims += "}";
  std::string signed_part =
      to_base64(R"({"alg":"HS256","typ":"JWT"})", kUrlSafe) + "." + to_base64(claims, kUrlSafe);
  Mac mac = hs256(password, signed_part);
  return signed_part + "." +
         to_base64(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()), kUrlSafe);
}

bool is_bearer_auth(std::string_view authorization) {
  while (!authorization.empty() && authorization.front() == ' ') authorization.remove_prefix(1);
  return authorization.size() >= 7 && equals_ignore_case(authorization.substr(0, 6), "bearer") &&
         authorization[6] == ' ';
}

std::optional<std::string> verify_bearer_token(std::string_view authorization,
                                               const std::map<std::string, std::string>& credentials,
                                               std::int64_t now_seconds) {
  if (!is_bearer_auth(authorization)) return std::nullopt;
  while (authorization.front() == ' ') authorization.remove_prefix(1);
  std::string_view token = authorization.substr(7);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  std::size_t dot1 = token.find('.');
  std::size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return std::nullopt;
  if (token.size() > 8192) return std::nullopt;
  auto header = from_base64(token.substr(0, dot1), kUrlSafe);
  auto payload = from_base64(token.substr(dot1 + 1, dot2 - dot1 - 1), kUrlSafe);
  auto signature = from_base64(token.substr(dot2 + 1), kUrlSafe);
  if (!header || !payload || !signature || signature->size() != crypto_auth_hmacsha256_BYTES)
    return std::nullopt;
  auto head = json_object(*header);
  if (!head) return std::nullopt;
  auto alg = head->FindMember("alg");
  // Only the algorithm tokens are issued with: never "none", never another key type.
  if (alg == head->MemberEnd() || !alg->value.IsString() || std::string_view(alg->value.GetString()) != "HS256")
    return std::nullopt;
  auto claims = json_object(*payload);
  if (!claims) return std::nullopt;
  auto iss = claims->FindMember("iss");
  if (iss == claims->MemberEnd() || !iss->value.IsString()) return std::nullopt;
  std::string issuer(iss->value.GetString(), iss->value.GetStringLength());
  auto user = credentials.find(issuer);
  // An unknown issuer costs the same HMAC and comparison: the time taken does not tell which
  // users exist.
  const bool known = user != credentials.end();
  Mac expected = hs256(known ? std::string_view(user->second) : std::string_view("\x01unknown"),
                       token.substr(0, dot2));
  bool matches = sodium_memcmp(expected.data(), signature->data(), expected.size()) == 0;
  if (!known || !matches) return std::nullopt;
  std::optional<double> exp, nbf;
  if (!time_claim(*claims, "exp", exp) || !time_claim(*claims, "nbf", nbf)) return std::nullopt;
  if (exp && static_cast<double>(now_seconds) >= *exp) return std::nullopt;
  if (nbf && static_cast<double>(now_seconds) < *nbf) return std::nullopt;
  return issuer;
}

}  // namespace clusterpin::net
