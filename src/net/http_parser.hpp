// Incremental HTTP/1.1 parser for requests (server side) and responses (client side). Pure: it
// sees bytes, never sockets, so it is fed in any fragmentation (byte by byte included) and handles
// pipelined messages. It enforces size limits as it reads (an oversized header fails before the
// whole header arrives) and maps each failure to the status a server answers
// (400/413/414/431/501/505). Framing follows RFC 9112: chunked wins, Content-Length must be
// unambiguous, both at once is refused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "net/http_message.hpp"
#include "net/http_url.hpp"

namespace clusterpin::net {

struct HttpLimits {
  // Request line or status line. Longer -> 414 (request) or an error (response).
  size_t max_start_line_bytes = 8192;
  // Header field lines (names, values, line ends), not counting the start line: ipfs-cluster's
  // restapi max_header_bytes. Longer -> 431.
  size_t max_header_bytes = 4096;
  size_t max_header_count = 128;
  // Bytes of the body (after de-chunking); 0 means unlimited. Larger -> 413.
  uint64_t max_body_bytes = 64ull << 20;
  // Trailer field lines of a chunked body.
  size_t max_trailer_bytes = 4096;
};

enum class HttpParseError {
  none,
  bad_start_line,        // 400
  bad_version,           // 505
  bad_target,            // 400
  start_line_too_large,  // 414
  bad_header,            // 400
  header_too_large,      // 431
  bad_framing,           // 400: invalid or conflicting Content-Length / Transfer-Encoding
  unsupported_encoding,  // 501: a transfer coding other than chunked
  bad_chunk,             // 400
  body_too_large,        // 413
  truncated,             // the peer closed the connection in the middle of a message
};

// The status a server answers for a parse error.
int status_for(HttpParseError error);
// A one-line description, used as the "message" of the JSON error body.
std::string_view describe(HttpParseError error);

class HttpParser {
 public:
  enum class Mode { request, response };
  enum class Event {
    need_more,  // all input consumed; feed more bytes
    head,       // start line and headers are complete: request() / response() are readable
    body,       // body_piece() holds the next piece of the (de-chunked) body
    done,       // the message is complete; trailers() is readable; the next call starts a new one
    error,      // error() says why; the parser stays in this state
  };
  struct Step {
    size_t consumed = 0;  // bytes of the input used; the caller drops them before the next call
    Event event = Event::need_more;
  };

  HttpParser(Mode mode, HttpLimits limits = {});

  // Consumes a prefix of `input` and reports the next event. Call again (with the rest of the
  // input, possibly empty) until need_more: events such as done may need no further bytes.
  Step next(std::string_view input);

  // The peer closed the connection: completes a response delimited by close, else reports
  // truncated when a message was in progress, else need_more (a clean close between messages).
  Step finish_eof();

  // Response mode: the next response answers this method (HEAD responses carry no body).
  void expect_response_to(std::string_view method) { head_request_ = method == "HEAD"; }

  // Request head (request mode); valid from the head event until the next message starts.
  // body and trailers are not filled in by the parser: the body arrives as body events.
  const HttpRequest& request() const { return request_; }
  HttpRequest& request() { return request_; }
  const HttpResponseHead& response() const { return response_; }
  const HttpHeaders& trailers() const { return trailers_; }
  std::string_view body_piece() const { return piece_; }
  HttpParseError error() const { return error_; }
  // describe(error()) with the limit that was passed (sizes) or the line refused (a header).
  std::string error_message() const;
  // Whether the connection may carry another message after this one.
  bool keep_alive() const { return keep_alive_; }
  // True when some bytes of a message have been consumed and the message is not done yet.
  bool in_message() const { return state_ != State::start && state_ != State::error; }
  uint64_t body_bytes() const { return body_bytes_; }

 private:
  enum class State {
    start,  // before the first byte of a message
    start_line,
    headers,
    fixed_body,  // Content-Length
    chunk_size,
    chunk_data,
    chunk_data_end,
    trailers,
    until_close,  // response body delimited by the connection's end
    complete,     // head parsed, no body (or body finished): next call reports done
    error,
  };

  Step fail(size_t consumed, HttpParseError e);
  // Collects one line into line_, up to `limit` bytes; returns true when the line is complete.
  bool take_line(std::string_view input, size_t& pos, size_t limit, bool& too_long);
  bool parse_start_line();
  bool parse_header_line(HttpHeaders& into);
  HttpParseError finish_head();
  HttpParseError set_framing();
  void begin_message();

  Mode mode_;
  HttpLimits limits_;
  State state_ = State::start;
  HttpParseError error_ = HttpParseError::none;
  std::string line_;
  size_t head_bytes_ = 0;   // header (or trailer) bytes counted against the limit
  uint64_t remaining_ = 0;  // bytes left in the fixed body or in the current chunk
  uint64_t body_bytes_ = 0;
  bool keep_alive_ = true;
  bool head_request_ = false;
  HttpRequest request_;
  HttpResponseHead response_;
  HttpHeaders trailers_;
  std::string_view piece_;
};

}  // namespace clusterpin::net
