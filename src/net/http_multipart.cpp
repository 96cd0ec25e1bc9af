// multipart/form-data encoding (RFC 7578): CRLF line ends, quoted names with '"' and '\'
// escaped, and a fresh random boundary until none of the parts contains it.
#include "net/http_multipart.hpp"

#include <sodium.h>

#include <fmt/format.h>

#include "core/sodium_init.hpp"

namespace clusterpin::net {

namespace {
std::string quote(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\r' || c == '\n') continue;  // a line end would break out of the header
    out += c;
  }
  return out;
}

std::string random_boundary() {
  initialize_sodium();
  unsigned char bytes[16];
  randombytes_buf(bytes, sizeof bytes);
  std::string out = "clusterpin-";
  for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
  return out;
}
}  // namespace

void MultipartForm::add_field(std::string_view name, std::string_view value) {
  parts_.push_back(Part{fmt::format("Content-Disposition: form-data; name=\"{}\"\r\n", quote(name)),
                        std::string(value)});
}

void MultipartForm::add_file(std::string_view name, std::string_view filename,
                             std::string_view data, std::string_view content_type) {
  parts_.push_back(
      Part{fmt::format("Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\n"
                       "Content-Type: {}\r\n",
                       quote(name), quote(filename), content_type),
           std::string(data)});
}

MultipartBody MultipartForm::encode() const {
  std::string boundary;
  for (;;) {
    boundary = random_boundary();
    bool clash = false;
    for (const auto& p : parts_) clash = clash || p.data.find(boundary) != std::string::npos;
    if (!clash) break;
  }
  MultipartBody out;
  out.content_type = "multipart/form-data; boundary=" + boundary;
  for (const auto& p : parts_) {
    out.body += "--" + boundary + "\r\n" + p.headers + "\r\n";
    out.body += p.data;
    out.body += "\r\n";
  }
  out.body += "--" + boundary + "--\r\n";
  return out;
}

}  // namespace clusterpin::net
