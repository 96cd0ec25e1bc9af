// The applets' REST client (see api_client.hpp).
#include "cmd/api_client.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include <fmt/core.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "cmd/applet.hpp"
#include "cmd/cli.hpp"
#include "core/json_text.hpp"
#include "net/http_auth.hpp"

namespace clusterpin::cmd {

namespace {

// The --host forms parse_http_endpoint takes, as man/clusterpin.1 (CLIENT OPTIONS) lists them.
constexpr std::string_view kHostForms =
    "/ip4/<ip>/tcp/<port>, /ip6/<ip>/tcp/<port>, /dns4/<name>/tcp/<port>, <ip>:<port>, "
    "<name>:<port>, [<ipv6>]:<port>, http://<ip or name>:<port>, unix:<path> or /unix/<path>";

}  // namespace

ApiClient::ApiClient(net::HttpEndpoint endpoint, std::string host, std::chrono::milliseconds timeout,
                     std::string auth, bool json, bool debug)
    : endpoint_(std::move(endpoint)),
      host_(std::move(host)),
      auth_(std::move(auth)),
      json_(json),
      debug_(debug) {
  net::HttpClientOptions options;
  options.timeout = timeout;
  http_ = std::make_unique<net::BlockingHttpClient>(options);
}

Result<ApiClient> ApiClient::from_args(const cxxopts::ParseResult& args) {
  std::string host = args["host"].as<std::string>();
  if (auto comma = host.find(','); comma != std::string::npos) {
    // ipfs-cluster-ctl fails over along a comma list; a failover after a request was sent could
    // send a pin or an unpin twice, so one address is taken and a list is refused.
    return make_error(fmt::format("--host: \"{}\" is a list; accepted: one address ({}), not "
                                  "ipfs-cluster-ctl's comma-separated failover list",
                                  host, kHostForms));
  }
  auto endpoint = net::parse_http_endpoint(host);
  if (!endpoint) {
    // The parser's reason, with the forms named as the man pages name them.
    std::string why = endpoint.error().message;
    const std::string prefix = fmt::format("HTTP endpoint \"{}\": ", host);
    if (why.starts_with(prefix)) why.erase(0, prefix.size());
    if (auto forms = why.find(" (expected"); forms != std::string::npos) why.erase(forms);
    return make_error(fmt::format("--host: \"{}\": {}; accepted: {}", host, why, kHostForms));
  }
  std::string enc = args["enc"].as<std::string>();
  if (enc != "text" && enc != "json") {
    return make_error(fmt::format("--enc: \"{}\" is not an output format; accepted: text, json", enc));
  }
  std::string credentials;
  if (args.count("basic-auth") != 0) {
    credentials = args["basic-auth"].as<std::string>();
  } else if (const char* env = std::getenv("CLUSTER_CREDENTIALS"); env != nullptr) {
    credentials = env;
  }
  std::string auth;
  if (!credentials.empty()) {
    auto colon = credentials.find(':');
    auth = net::basic_auth_header(credentials.substr(0, colon),
                                  colon == std::string::npos ? "" : credentials.substr(colon + 1));
  }
  auto seconds = integer_option(args, "timeout", 0, 100'000'000,
                                "whole seconds from 0 to 100000000 (0: never)");
  if (!seconds) return seconds.error();
  auto timeout = std::chrono::seconds(seconds->value_or(0));
  return ApiClient(std::move(endpoint).value(), host, timeout, std::move(auth), enc == "json",
                   flag(args, "debug"));
}

Result<net::HttpClientResponse> ApiClient::call(std::string method, std::string target,
                                                std::string body, LineHandler on_line) {
  return exchange(std::move(method), std::move(target), std::move(body), std::move(on_line), false);
}

// The indent ipfs-cluster-ctl prints with, as a listing asks for it and the peer confirms it.
constexpr std::string_view kListingIndent = "4";

Result<net::HttpClientResponse> ApiClient::list(std::string target, LineHandler print) {
  if (json_) {
    target += target.find('?') == std::string::npos ? "?indent=" : "&indent=";
    target += kListingIndent;
  }
  return exchange("GET", std::move(target), {}, std::move(print), json_);
}

Result<net::HttpClientResponse> ApiClient::exchange(std::string method, std::string target,
                                                    std::string body, LineHandler on_line,
                                                    bool copy_indented) {
  net::HttpClientRequest request;
  request.method = std::move(method);
  request.target = std::move(target);
  request.body = std::move(body);
  if (!auth_.empty()) request.headers.add("Authorization", auth_);
  // --debug: the request line as sent (headers are left out: Authorization holds credentials).
  if (debug_) fmt::print(stderr, "> {} {} HTTP/1.1\n", request.method, request.target);
  // A streamed answer: a success's lines go to on_line as they arrive (or, when the peer wrote
  // them indented as asked, its bytes to standard output); an error's body is kept whole for
  // check_response. The exchange runs to its end before this returns: locals may be captured.
  int status = 0;
  bool copy = false;
  std::string error_body;
  net::LineSplitter lines;
  net::HttpBodySink sink;
  if (on_line) {
    sink.on_head = [&](const net::HttpResponseHead& head) {
      status = head.status;
      copy = copy_indented && status / 100 == 2 &&
             head.headers.get("X-Clusterpin-Indent") == kListingIndent;
    };
    sink.on_data = [&](std::string_view data) {
      if (status / 100 != 2) {
        error_body.append(data);
        return true;
      }
      if (copy) {
        std::fwrite(data.data(), 1, data.size(), stdout);  // as print_line: stdout's errors unread
        return true;
      }
      return lines.feed(data, on_line);
    };
  }
  if (debug_) {
    // The status line as it arrives, before a streamed body is printed.
    sink.on_head = [print = std::move(sink.on_head)](const net::HttpResponseHead& head) {
      fmt::print(stderr, "< HTTP/1.{} {}{}{}\n", head.version_minor, head.status,
                 head.reason.empty() ? "" : " ", head.reason);
      if (print) print(head);
    };
  }
  auto response = http_->request(endpoint_, std::move(request), std::move(sink));
  if (!response) {
    return make_error(fmt::format("cannot reach the clusterpin API at {}: {} (is the daemon of that "
                                  "peer running? --host names another peer's API)",
                                  host_, response.error().message));
  }
  if (on_line) {
    if (status / 100 == 2) (void)lines.finish(on_line);
    response->body = std::move(error_body);
  }
  return response;
}

int check_response(const net::HttpClientResponse& response, bool json) {
  if (response.status >= 200 && response.status < 300) return kExitOk;
  std::int64_t code = response.status;
  std::string message = response.reason;
  rapidjson::Document doc;
  doc.Parse(response.body.c_str());
  if (!doc.HasParseError() && doc.IsObject()) {
    if (doc.HasMember("message") && doc["message"].IsString()) message = doc["message"].GetString();
    if (doc.HasMember("code") && doc["code"].IsInt64()) code = doc["code"].GetInt64();
  }
  if (json) {
    // As ipfs-cluster-ctl prints an API error with --enc json: the error object on standard
    // output, so that `| jq .message` reads it.
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    writer.StartObject();
    writer.Key("code");
    writer.Int64(code);
    writer.Key("message");
    writer.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
    writer.EndObject();
    print_pretty_json(std::string_view(buffer.GetString(), buffer.GetSize()));
    std::fflush(stdout);
    return kExitApiError;
  }
  fmt::print(stderr, "An error occurred:\n  Code: {}\n  Message: {}\n", code, message);
  return kExitApiError;
}

int transport_error(std::string_view applet, const Error& error) {
  fmt::print(stderr, "clusterpin {}: {}\n", applet, error.message);
  return kExitUsage;
}

std::string pretty_json(std::string_view json) {
  auto indented = indent_json(json, 4);
  return indented ? std::move(*indented) : std::string(json);
}

void print_line(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
}

void print_pretty_json(std::string_view json) {
  static std::string buffer;
  buffer.clear();
  print_line(append_indented_json(buffer, json, 4) ? std::string_view(buffer) : json);
}

void buffer_listing_output() {
  static bool done = false;  // setvbuf is only allowed before the first output: once per process
  if (std::exchange(done, true) || ::isatty(STDOUT_FILENO) != 0) return;
  static char buffer[1 << 16];
  std::setvbuf(stdout, buffer, _IOFBF, sizeof buffer);
}

}  // namespace clusterpin::cmd
