// Where an HTTP server listens or a client connects: a TCP address (IPv4/IPv6, numeric, or
// "localhost"), a host name that a client resolves when it connects (net/dns_resolver.hpp: the
// static binary has no getaddrinfo), or a unix socket path, parsed from the forms users write in
// service.json and on command lines ("127.0.0.1:9094", "[::1]:5001", "/ip4/127.0.0.1/tcp/5001",
// "/dns4/ipfs0/tcp/5001", "ipfs0:5001", "unix:/run/x.sock"). A server listens on an address.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include <asio.hpp>

#include "core/result.hpp"
#include "net/dns_resolver.hpp"

namespace clusterpin::net {

struct HttpEndpoint {
  enum class Kind { tcp, unix_socket };
  Kind kind = Kind::tcp;
  asio::ip::address address;  // tcp only, unless `host` is set
  uint16_t port = 0;          // tcp only; 0 asks the OS for a free port when listening
  std::string path;           // unix_socket only
  // tcp only: a name to resolve at each new connection, with the addresses it may take
  // (/dns4: IPv4 only, /dns6: IPv6 only); `address` is unset.
  std::string host;
  AddressFamily family = AddressFamily::any;

  static HttpEndpoint tcp(asio::ip::address address, uint16_t port);
  static HttpEndpoint named(std::string host, uint16_t port, AddressFamily family);
  static HttpEndpoint unix_socket(std::string path);

  bool is_named() const { return kind == Kind::tcp && !host.empty(); }
  // "127.0.0.1:9094", "[::1]:9094", "ipfs0:5001" or "unix:/path": used in every error message.
  std::string to_string() const;
  // The address to connect to or listen on; for a named endpoint, once resolved (with_address).
  asio::ip::tcp::endpoint tcp_endpoint() const { return {address, port}; }
  HttpEndpoint with_address(asio::ip::address resolved) const {
    HttpEndpoint e = *this;
    e.address = resolved;
    return e;
  }
  bool operator==(const HttpEndpoint& other) const = default;
};

// Parses "host:port", "[v6]:port", "http://host:port[/]", "/ip4|ip6/<addr>/tcp/<port>",
// "/dns|dns4|dns6/<name>/tcp/<port>", "unix:<path>" and "/unix/<path>"; host is a numeric IP,
// "localhost" (the IPv4 loopback, never asked), or a DNS name.
Result<HttpEndpoint> parse_http_endpoint(std::string_view text);
// The same for an address to listen on: a name is refused (a server binds an address).
Result<HttpEndpoint> parse_http_listen_endpoint(std::string_view text);

// Whether an HTTP Host header value names this machine's loopback: "localhost" or a name under
// it (RFC 6761), an IPv4 address in 127.0.0.0/8 or "[::1]", each with an optional ":port".
// A server on a loopback address without credentials accepts only those, so that a web page
// whose own name was made to resolve to 127.0.0.1 (DNS rebinding) cannot use it.
bool is_loopback_host(std::string_view host);

// A connected byte stream over TCP or a unix socket, so that server and client code is written
// once. Handlers follow Asio's conventions: (error_code, bytes).
class HttpSocket {
 public:
  using Tcp = asio::ip::tcp::socket;
  using Local = asio::local::stream_protocol::socket;

  explicit HttpSocket(Tcp socket) : socket_(std::move(socket)) {}
  explicit HttpSocket(Local socket) : socket_(std::move(socket)) {}

  template <class Buffers, class Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    std::visit([&](auto& s) { s.async_read_some(buffers, std::forward<Handler>(handler)); },
               socket_);
  }
  template <class Buffers, class Handler>
  void async_write(const Buffers& buffers, Handler&& handler) {
    std::visit([&](auto& s) { asio::async_write(s, buffers, std::forward<Handler>(handler)); },
               socket_);
  }
  // As much of `buffers` as the socket takes now (at least one byte, or an error).
  template <class Buffers, class Handler>
  void async_write_some(const Buffers& buffers, Handler&& handler) {
    std::visit([&](auto& s) { s.async_write_some(buffers, std::forward<Handler>(handler)); },
               socket_);
  }
  // Disables small-write coalescing on TCP: responses are written whole already.
  void set_no_delay() {
    if (auto* tcp = std::get_if<Tcp>(&socket_)) {
      asio::error_code ignored;
      tcp->set_option(asio::ip::tcp::no_delay(true), ignored);
    }
  }
  void shutdown_send() {
    asio::error_code ignored;
    std::visit([&](auto& s) { s.shutdown(asio::socket_base::shutdown_send, ignored); }, socket_);
  }
  void close() {
    asio::error_code ignored;
    std::visit([&](auto& s) { s.close(ignored); }, socket_);
  }
  // The peer's address for logs: "127.0.0.1:53412", "[::1]:53412" or "unix".
  std::string remote() const {
    if (const auto* tcp = std::get_if<Tcp>(&socket_)) {
      asio::error_code ec;
      auto ep = tcp->remote_endpoint(ec);
      if (ec) return "unknown";
      return HttpEndpoint::tcp(ep.address(), ep.port()).to_string();
    }
    return "unix";
  }
  bool is_open() const {
    return std::visit([](const auto& s) { return s.is_open(); }, socket_);
  }

 private:
  std::variant<Tcp, Local> socket_;
};

}  // namespace clusterpin::net
