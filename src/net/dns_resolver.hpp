// A small stub resolver for a static binary, where glibc's getaddrinfo does not work: IP literals,
// "localhost" (RFC 6761), the hosts file, then A/AAAA queries over UDP (TCP when the answer is
// truncated) to the nameservers of resolv.conf, with its search domains, ndots, timeout and
// attempts applied as glibc applies them. No cache, no EDNS, no DNSSEC: a recursive server is
// expected to do the work.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <asio.hpp>

#include "core/result.hpp"

namespace clusterpin::net {

struct ResolverConfig {
  // From resolv.conf "nameserver" lines (IPv4/IPv6, port 53, at most 3 as glibc); 127.0.0.1:53
  // when none.
  std::vector<asio::ip::udp::endpoint> nameservers;
  // "search"/"domain" lines; the last such line wins.
  std::vector<std::string> search;
  // "options ndots:N" (0..15).
  int ndots = 1;
  // Per query attempt ("options timeout:N" seconds, 1..30).
  std::chrono::milliseconds timeout{2000};
  // Rounds over all nameservers ("options attempts:N", 1..5).
  int attempts = 2;
  std::string hosts_file = "/etc/hosts";
};

// Reads resolv.conf (a missing or unreadable file gives the defaults above, as glibc does).
// hosts_file is recorded, and read at each resolve. Lines starting with '#' or ';' are comments,
// as is the rest of a line after one; unknown keywords, unknown options and nameserver lines
// that are not IP addresses are skipped.
ResolverConfig load_resolver_config(const std::string& resolv_conf = "/etc/resolv.conf",
                                    std::string hosts_file = "/etc/hosts");

enum class AddressFamily { any, v4, v6 };

// Whether `name` may be looked up: labels of 1 to 63 letters, digits, '-' or '_', separated by
// dots, at most 253 bytes in all, with one optional final dot (an absolute name).
Status validate_host_name(std::string_view name);

// Resolves a host name to its addresses, in this order:
// - an IP literal is returned as is (an error when it is of the other family than asked for);
// - "localhost" and names under it give the loopback address(es) without asking anyone;
// - the hosts file: every matching line, names and aliases compared case-insensitively;
// - DNS: A and/or AAAA queries (any: A first, then AAAA; v4 addresses first in the result) over
//   UDP to each nameserver in turn, config.timeout per attempt, config.attempts rounds. A name
//   with fewer than ndots dots tries name + "." + each search domain first, then the name itself;
//   one with more tries itself first; one ending in "." is absolute. CNAMEs are followed inside
//   one answer. A truncated answer is asked again over TCP of the same server. Answers whose id,
//   question or source do not match the query are ignored. NXDOMAIN ends the search for that
//   candidate name; SERVFAIL, REFUSED and malformed answers move on to the next server.
// `done` runs exactly once, on a thread running `io`, never inside this call. Errors name the
// name and why: "cannot resolve ipfs0: no such name (NXDOMAIN from 127.0.0.11:53)".
void resolve_host(asio::io_context& io, const ResolverConfig& config, std::string name,
                  AddressFamily family,
                  std::function<void(Result<std::vector<asio::ip::address>>)> done);

}  // namespace clusterpin::net
