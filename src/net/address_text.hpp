// An IP address and port as people write them: "127.0.0.1:9096", "[::1]:9096". One spelling for
// logs, error messages and limiter keys across the network code.
#pragma once

#include <cstdint>
#include <string>

#include <asio.hpp>

namespace clusterpin::net {

std::string address_text(const asio::ip::address& address, std::uint16_t port);

template <typename Protocol>
std::string address_text(const asio::ip::basic_endpoint<Protocol>& endpoint) {
  return address_text(endpoint.address(), endpoint.port());
}

}  // namespace clusterpin::net
