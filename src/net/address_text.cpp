#include "net/address_text.hpp"

#include <fmt/format.h>

namespace clusterpin::net {

std::string address_text(const asio::ip::address& address, std::uint16_t port) {
  if (address.is_v6()) return fmt::format("[{}]:{}", address.to_string(), port);
  return fmt::format("{}:{}", address.to_string(), port);
}

}  // namespace clusterpin::net
