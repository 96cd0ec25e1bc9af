// Parsing of HTTP endpoints from host:port, URL and multiaddr forms; names are kept to be
// resolved by the client that connects.
// Every refusal names the text given and the forms that would be accepted.
#include "net/http_endpoint.hpp"

#include <charconv>

#include <fmt/format.h>

#include "net/address_text.hpp"

namespace clusterpin::net {

namespace {
constexpr std::string_view kForms =
    "expected host:port with an IP or a name, [v6]:port, /ip4/<ip>/tcp/<port>, "
    "/dns4/<name>/tcp/<port> or unix:<path>";

Error endpoint_error(std::string_view text, std::string_view why) {
  return make_error(fmt::format("HTTP endpoint \"{}\": {} ({})", text, why, kForms));
}

bool parse_port(std::string_view text, uint16_t& port) {
  if (text.empty() || text.size() > 5) return false;
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

bool parse_host(std::string_view host, asio::ip::address& out) {
  if (host == "localhost") {
    out = asio::ip::address_v4::loopback();
    return true;
  }
  asio::error_code ec;
  out = asio::ip::make_address(std::string(host), ec);
  return !ec;
}

}  // namespace

HttpEndpoint HttpEndpoint::tcp(asio::ip::address address, uint16_t port) {
  HttpEndpoint e;
  e.kind = Kind::tcp;
  e.address = address;
  e.port = port;
  return e;
}

HttpEndpoint HttpEndpoint::named(std::string host, uint16_t port, AddressFamily family) {
  HttpEndpoint e;
  e.kind = Kind::tcp;
  e.host = std::move(host);
  e.port = port;
  e.family = family;
  return e;
}

HttpEndpoint HttpEndpoint::unix_socket(std::string path) {
  HttpEndpoint e;
  e.kind = Kind::unix_socket;
  e.path = std::move(path);
  return e;
}

std::string HttpEndpoint::to_string() const {
  if (kind == Kind::unix_socket) return "unix:" + path;
  if (!host.empty()) return fmt::format("{}:{}", host, port);
  return address_text(address, port);
}

Result<HttpEndpoint> parse_http_endpoint(std::string_view text) {
  std::string_view rest = text;
  if (rest.substr(0, 5) == "unix:") {
    if (rest.size() == 5) return endpoint_error(text, "empty unix socket path");
    return HttpEndpoint::unix_socket(std::string(rest.substr(5)));
  }
  if (rest.substr(0, 6) == "/unix/") return HttpEndpoint::unix_socket(std::string(rest.substr(5)));
  if (!rest.empty() && rest.front() == '/') {
    // Multiaddr: /ip4/<addr>/tcp/<port>, /ip6/..., /dns*/localhost/...
    std::vector<std::string_view> parts;
    rest.remove_prefix(1);
    while (!rest.empty()) {
      size_t slash = rest.find('/');
      parts.push_back(rest.substr(0, slash));
      rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    }
    if (parts.size() != 4 || parts[2] != "tcp")
      return endpoint_error(text, "unsupported multiaddr");
    asio::ip::address address;
    bool dns = parts[0] == "dns" || parts[0] == "dns4" || parts[0] == "dns6";
    if (!dns && parts[0] != "ip4" && parts[0] != "ip6")
      return endpoint_error(text, "unsupported multiaddr");
    uint16_t port = 0;
    if (dns && parts[1] != "localhost") {
      if (!validate_host_name(parts[1])) return endpoint_error(text, "invalid DNS name");
      if (!parse_port(parts[3], port)) return endpoint_error(text, "invalid port");
      AddressFamily family = parts[0] == "dns4"   ? AddressFamily::v4
                             : parts[0] == "dns6" ? AddressFamily::v6
                                                  : AddressFamily::any;
      return HttpEndpoint::named(std::string(parts[1]), port, family);
    }
    if (!parse_host(parts[1], address) || (parts[0] == "ip4" && !address.is_v4()) ||
        (parts[0] == "ip6" && !address.is_v6())) {
      return endpoint_error(text, "invalid IP address");
    }
    if (!parse_port(parts[3], port)) return endpoint_error(text, "invalid port");
    return HttpEndpoint::tcp(address, port);
  }
  if (rest.substr(0, 7) == "http://") rest.remove_prefix(7);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  std::string_view host;
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos || rest.substr(close + 1, 1) != ":") {
      return endpoint_error(text, "malformed IPv6 address");
    }
    host = rest.substr(1, close - 1);
    port_text = rest.substr(close + 2);
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) return endpoint_error(text, "missing port");
    host = rest.substr(0, colon);
    port_text = rest.substr(colon + 1);
  }
  asio::ip::address address;
  uint16_t port = 0;
  if (!parse_host(host, address)) {
    // Not an IP: a name ("ipfs0:5001"), unless it is no valid one or a bracketed IPv6. Digits
    // and dots alone are a mistyped IP address (10.0.0.256), not a name.
    if (host.find_first_not_of("0123456789.") == std::string_view::npos)
      return endpoint_error(text, "invalid IP address");
    if (text.find('[') != std::string_view::npos || !validate_host_name(host))
      return endpoint_error(text, "host is neither an IP address nor a DNS name");
    if (!parse_port(port_text, port)) return endpoint_error(text, "invalid port");
    return HttpEndpoint::named(std::string(host), port, AddressFamily::any);
  }
  if (!parse_port(port_text, port)) return endpoint_error(text, "invalid port");
  return HttpEndpoint::tcp(address, port);
}

Result<HttpEndpoint> parse_http_listen_endpoint(std::string_view text) {
  auto endpoint = parse_http_endpoint(text);
  if (!endpoint) return endpoint;
  if (endpoint->is_named())
    return make_error(fmt::format(
        "HTTP endpoint \"{}\": a server listens on an IP address (or localhost) or a unix "
        "socket, not on the name \"{}\"",
        text, endpoint->host));
  return endpoint;
}

bool is_loopback_host(std::string_view host) {
  std::string_view name = host;
  std::string_view port;
  if (name.starts_with('[')) {
    auto close = name.find(']');
    if (close == std::string_view::npos) return false;
    port = name.substr(close + 1);
    name = name.substr(1, close - 1);
    if (!port.empty() && port.front() != ':') return false;
  } else if (auto colon = name.find(':'); colon != std::string_view::npos) {
    port = name.substr(colon);
    name = name.substr(0, colon);
  }
  uint16_t number = 0;
  if (!port.empty() && !parse_port(port.substr(1), number)) return false;
  if (name.ends_with('.')) name.remove_suffix(1);  // "localhost." is the same name
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (lower == "localhost" || lower.ends_with(".localhost")) return true;
  asio::error_code ec;
  auto address = asio::ip::make_address(lower, ec);
  if (ec) return false;
  // A bracketed name must be IPv6 and a bare one IPv4: "[127.0.0.1]" is not a Host.
  if (address.is_v6() != host.starts_with('[')) return false;
  return address.is_loopback();
}

}  // namespace clusterpin::net
