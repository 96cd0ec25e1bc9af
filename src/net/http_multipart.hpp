// multipart/form-data bodies for client requests, as Kubo's /api/v0/add expects (a part named
// `file` with a filename). The boundary is random and is checked against every part, so the body
// is always well formed whatever the file holds.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace clusterpin::net {

struct MultipartBody {
  std::string content_type;  // "multipart/form-data; boundary=..."
  std::string body;
};

class MultipartForm {
 public:
  // A form field without filename.
  void add_field(std::string_view name, std::string_view value);
  // A file part: Content-Disposition with filename, and its own Content-Type.
  void add_file(std::string_view name, std::string_view filename, std::string_view data,
                std::string_view content_type = "application/octet-stream");
  // Encodes all parts with a boundary that occurs in none of them.
  MultipartBody encode() const;

 private:
  struct Part {
    std::string headers;
    std::string data;
  };
  std::vector<Part> parts_;
};

}  // namespace clusterpin::net
