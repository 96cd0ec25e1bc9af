// HTTP/1.1 message values shared by the parser, the server and the client: header lists with
// case-insensitive lookup, a parsed request, a response head, status reasons and the JSON error
// body ({"code":N,"message":"..."}) that every error answer of the REST API carries.
// Header order and repeated fields are preserved, because HTTP allows a field to repeat.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace clusterpin::net {

// Appends "name: value\r\n". A CR or LF in the value would end the field there and let the rest
// pass for fields of its own (or, after an empty line, end the head or the trailers), so they and
// the other control characters but tab go out as spaces. Values are not always ours: an error
// text from Kubo or another peer can span lines. Every header and trailer the server and the
// client write goes through it.
void append_header_field(std::string& out, std::string_view name, std::string_view value);

// True when a and b are equal ignoring ASCII case (header names, tokens).
bool equals_ignore_case(std::string_view a, std::string_view b);

// An ordered list of header fields. Lookup ignores case; values are kept as received (trimmed).
class HttpHeaders {
 public:
  using Field = std::pair<std::string, std::string>;

  HttpHeaders() = default;
  HttpHeaders(std::initializer_list<Field> fields) : fields_(fields) {}

  // The first value of `name`, or nothing.
  std::optional<std::string_view> get(std::string_view name) const;
  // Every value of `name`, in order.
  std::vector<std::string_view> get_all(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  // True when a comma-separated field (Connection, Transfer-Encoding) lists `token`.
  bool has_token(std::string_view name, std::string_view token) const;
  // The items of a comma-separated field, trimmed, empty ones skipped (every occurrence of it).
  std::vector<std::string_view> tokens(std::string_view name) const;

  void add(std::string name, std::string value);
  // Replaces every field called `name` by one field with `value`.
  void set(std::string_view name, std::string value);
  void remove(std::string_view name);

  const std::vector<Field>& fields() const { return fields_; }
  bool empty() const { return fields_.empty(); }
  size_t size() const { return fields_.size(); }

 private:
  std::vector<Field> fields_;
};

// A request as the server hands it to a handler: target already split and decoded.
struct HttpRequest {
  std::string method;     // as sent, e.g. "GET" (methods are case-sensitive)
  std::string target;     // raw request target, e.g. "/pins?local=true"
  std::string path;       // percent-decoded path, e.g. "/pins/Qm..."
  std::string raw_path;   // as sent, escapes kept: split into segments by net::path_segments
  std::string raw_query;  // undecoded query after '?', without the '?'
  std::vector<std::pair<std::string, std::string>> query;  // decoded, repeated keys kept in order
  int version_minor = 1;                                   // HTTP/1.<minor>
  HttpHeaders headers;
  std::string body;
  HttpHeaders trailers;    // from a chunked body
  bool keep_alive = true;  // what the client asked for (version + Connection)
  std::string remote;      // the client's address ("127.0.0.1:53412", "unix"), for logs and tests

  // First value of a query key, or nothing.
  std::optional<std::string_view> query_value(std::string_view key) const;
  // Every value of a query key (Kubo's repeated `arg=`).
  std::vector<std::string_view> query_values(std::string_view key) const;
};

// The status line and headers of a response as the client parsed them.
struct HttpResponseHead {
  int status = 0;
  std::string reason;
  int version_minor = 1;
  HttpHeaders headers;
};

// The standard reason phrase for a status code ("Unknown" for codes it does not know).
std::string_view status_reason(int status);

// Escapes `text` for use inside a JSON string literal (without the surrounding quotes); bytes
// that are not UTF-8 become \ufffd (JSON text is UTF-8).
std::string json_escape(std::string_view text);

// {"code":<status>,"message":"<message>"}: the error body shape of the ipfs-cluster REST API.
std::string json_error_body(int status, std::string_view message);

}  // namespace clusterpin::net
