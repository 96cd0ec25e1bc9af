// service.json on disk (see config_file.hpp).
#include "cmd/config_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/core.h>

namespace clusterpin::cmd {
namespace {

Status make_dirs(const std::string& dir) {
  std::string path;
  for (std::size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || (dir[i] == '/' && i > 0)) {
      path = dir.substr(0, i);
      if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
        return make_error(fmt::format("cannot create folder {}: {}", path, std::strerror(errno)));
      }
    }
  }
  return {};
}

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

// Writes `text` to `path` through a temporary file, fsync and rename, mode 0600.
Status write_file_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(fmt::format("cannot write {}: {}", tmp, std::strerror(errno)));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fchmod(fd, 0600) == 0 && ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) saved = errno;
    ::unlink(tmp.c_str());
    return make_error(fmt::format("cannot write {}: {}", path, std::strerror(saved)));
  }
  return {};
}

}  // namespace

std::string service_json_path(const std::string& config_dir) {
  return config_dir + "/service.json";
}

Status write_config_file(const std::string& path, const ServiceConfig& config) {
  if (auto s = make_dirs(parent_of(path)); !s) return s;
  return write_file_atomically(path, config_to_json(config));
}

Result<ServiceConfig> load_config_file(const std::string& path, const ConfigLoadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(fmt::format("cannot read {}: {} (create it with 'clusterpin init')", path,
                                  std::strerror(errno)));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto loaded = parse_config(buffer.str(), path, options);
  if (!loaded) return loaded.error();
  for (const auto& w : loaded->warnings) fmt::print(stderr, "warning: {}\n", w);
  return std::move(loaded->config);
}

// Holds an exclusive lock on <config>/clusterpin.lock for the life of the process.
Result<int> lock_config_dir(const std::string& dir, std::string_view why_stop) {
  std::string path = dir + "/clusterpin.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 && errno == ENOTDIR) {
    return make_error(fmt::format("the configuration folder {} is not a folder; accepted: a folder "
                                  "(--config, else $CLUSTERPIN_PATH, else ~/.clusterpin)",
                                  dir));
  }
  if (fd < 0) return make_error(fmt::format("cannot open lock file {}: {}", path, std::strerror(errno)));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return make_error(fmt::format("a clusterpin daemon is running on {} (or a state tool: lock "
                                  "file {} is held); stop it first: {}",
                                  dir, path, why_stop));
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) == 0) (void)!::write(fd, pid.data(), pid.size());
  return fd;
}

std::string member_file_path(const std::string& config_dir) { return config_dir + "/clusterpin.member"; }

std::optional<std::string> read_member_of(const std::string& config_dir) {
  std::ifstream in(member_file_path(config_dir));
  std::string id;
  if (!(in >> id) || id.empty()) return std::nullopt;
  return id;
}

Status write_member_of(const std::string& config_dir, const std::string& cluster_id) {
  if (read_member_of(config_dir) == cluster_id) return {};
  return write_file_atomically(member_file_path(config_dir), cluster_id + "\n");
}

void forget_member_of(const std::string& config_dir) { ::unlink(member_file_path(config_dir).c_str()); }

}  // namespace clusterpin::cmd
