// The REST API client the applets share: --host, --timeout, --basic-auth and --debug from the
// command line, one keep-alive connection, and the output rules of IPFS Cluster's ctl: --enc json
// prints each object indented by 4 spaces (streams one object after another), API errors print
// "An error occurred:" with code and message (with --enc json, the error object on standard
// output) and exit 2, transport errors exit 1.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <cxxopts.hpp>

#include "core/result.hpp"
#include "net/http_client.hpp"
#include "net/http_endpoint.hpp"

namespace clusterpin::cmd {

class ApiClient {
 public:
  // Reads --host, --timeout, --basic-auth ($CLUSTER_CREDENTIALS) and --debug (each request line
  // and the answer's status line on standard error, as "> GET /id HTTP/1.1", "< HTTP/1.1 200 OK").
  // --force-http and --no-check-certificate change nothing: the API is plain HTTP.
  static Result<ApiClient> from_args(const cxxopts::ParseResult& args);

  using LineHandler = std::function<bool(std::string_view line)>;
  // One request; `on_line` (when set) receives a successful answer's NDJSON lines as they
  // arrive (an error's body stays in the response, for check_response).
  Result<net::HttpClientResponse> call(std::string method, std::string target,
                                       std::string body = {}, LineHandler on_line = {});
  // GET of a listing printed object by object: `print` receives each NDJSON line. With
  // --enc json the peer is asked to write the objects indented as they are printed (clusterpin's
  // `indent=4`); when it did (X-Clusterpin-Indent: 4) its bytes go to standard output as they
  // come, and `print` is only called by peers that ignore the parameter.
  Result<net::HttpClientResponse> list(std::string target, LineHandler print);
  bool json_output() const { return json_; }
  const std::string& host() const { return host_; }

 private:
  ApiClient(net::HttpEndpoint endpoint, std::string host, std::chrono::milliseconds timeout,
            std::string auth, bool json, bool debug);
  Result<net::HttpClientResponse> exchange(std::string method, std::string target, std::string body,
                                           LineHandler on_line, bool copy_indented);
  net::HttpEndpoint endpoint_;
  std::string host_;
  std::string auth_;
  bool json_;
  bool debug_;
  std::unique_ptr<net::BlockingHttpClient> http_;
};

// Exit code for a response: 0 for 2xx; prints the API error and returns 2 otherwise: as text on
// standard error, or with `json` (--enc json) as the object {"code": ..., "message": ...} on
// standard output, as ipfs-cluster-ctl does.
int check_response(const net::HttpClientResponse& response, bool json);
// Prints a transport error ("cannot reach the API at ...") and returns 1.
int transport_error(std::string_view applet, const Error& error);
// Pretty JSON with a 4-space indent, as ipfs-cluster-ctl prints it; text that is not JSON as it is.
std::string pretty_json(std::string_view json);
// Writes one printed object and a newline to standard output.
void print_line(std::string_view text);
// print_line(pretty_json(json)) through one buffer kept for the process: a listing prints
// millions of objects.
void print_pretty_json(std::string_view json);
// Called before a command's first output (later calls do nothing): standard output that is not
// a terminal gets a 64 KiB buffer (glibc's default for a file or pipe is 4 KiB: a write(2)
// every few pins of `pin ls --enc json`).
void buffer_listing_output();

}  // namespace clusterpin::cmd
