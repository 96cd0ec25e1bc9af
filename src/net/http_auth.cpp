// Basic authentication: base64 through libsodium, comparisons of fixed-size hashes with
// sodium_memcmp so that neither content nor length leaks through timing.
#include "net/http_auth.hpp"

#include <sodium.h>

#include "core/sodium_init.hpp"

namespace clusterpin::net {

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
  initialize_sodium();
  std::string decoded(encoded.size(), '\0');
  size_t length = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(decoded.data()), decoded.size(),
                        encoded.data(), encoded.size(), nullptr, &length, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != encoded.data() + encoded.size()) {
    return std::nullopt;
  }
  decoded.resize(length);
  size_t colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return BasicCredentials{decoded.substr(0, colon), decoded.substr(colon + 1)};
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
  initialize_sodium();
  std::string plain = std::string(user) + ":" + std::string(password);
  std::string encoded(sodium_base64_ENCODED_LEN(plain.size(), sodium_base64_VARIANT_ORIGINAL),
                      '\0');
  sodium_bin2base64(encoded.data(), encoded.size(),
                    reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  encoded.resize(std::char_traits<char>::length(encoded.c_str()));
  return "Basic " + encoded;
}

}  // namespace clusterpin::net
