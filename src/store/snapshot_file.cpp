// POSIX file access for snapshot files (contract in snapshot_file.hpp). Short reads and writes
// are looped; EINTR is retried because it is not an I/O failure. fsync errors are reported, not
// retried: the caller decides (a snapshot that failed to sync is discarded, never used).
#include "store/snapshot_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace clusterpin::store {

namespace {

Error errno_error(const std::filesystem::path& file, std::string_view doing) {
  return make_error(fmt::format("{}: {}: {}", file.string(), doing, std::strerror(errno)));
}

// Closes the descriptor when the scope ends.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status sync_path(const std::filesystem::path& path, int flags, std::string_view what) {
  Fd f{::open(path.c_str(), flags | O_CLOEXEC)};
  if (f.fd < 0) return errno_error(path, fmt::format("opening {} to sync", what));
  if (::fsync(f.fd) != 0) return errno_error(path, fmt::format("fsync of {}", what));
  return Status::ok_status();
}

}  // namespace

Result<std::string> read_snapshot_chunk(const std::filesystem::path& file, std::uint64_t offset,
                                        std::size_t max_len) {
  Fd f{::open(file.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) return errno_error(file, "opening snapshot");
  std::string out(max_len, '\0');
  std::size_t got = 0;
  while (got < max_len) {
    ssize_t n = ::pread(f.fd, out.data() + got, max_len - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(file, fmt::format("reading snapshot at offset {}", offset + got));
    if (n == 0) break;  // end of file
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return out;
}

Result<std::uint64_t> append_snapshot_chunk(const std::filesystem::path& file, std::uint64_t offset,
                                            std::string_view bytes) {
  Fd f{::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)};
  if (f.fd < 0) return errno_error(file, "opening snapshot for writing");
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return errno_error(file, "reading snapshot size");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (offset > size)
    return make_error(
        fmt::format("{}: snapshot chunk at offset {} would leave a hole: the file has {} bytes",
                    file.string(), offset, size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n =
        ::pwrite(f.fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return errno_error(file, fmt::format("writing snapshot at offset {}", offset + done));
    done += static_cast<std::size_t>(n);
  }
  // Start writing these pages out now (it does not wait for them): a snapshot of gigabytes
  // otherwise sits dirty until the install's fsync, which then stalls this peer, and every
  // other fsync on the disk, for as long as the whole file takes to write.
  (void)::sync_file_range(f.fd, static_cast<off_t>(offset), static_cast<off_t>(bytes.size()),
                          SYNC_FILE_RANGE_WRITE);
  return std::max(size, offset + bytes.size());
}

Status sync_file(const std::filesystem::path& file) {
  return sync_path(file, O_RDONLY, "file");
}

Status remove_database_file(const std::filesystem::path& file) {
  for (const char* suffix : {"-journal", "-wal", "-shm", ""}) {
    std::filesystem::path path = file.string() + suffix;
    std::error_code ec;
    std::filesystem::remove(path, ec);
    if (ec) return make_error(fmt::format("{}: cannot remove it: {}", path.string(), ec.message()));
  }
  return Status::ok_status();
}

Status sync_parent_directory(const std::filesystem::path& file) {
  std::filesystem::path dir = file.parent_path();
  if (dir.empty()) dir = ".";
  return sync_path(dir, O_RDONLY | O_DIRECTORY, "directory");
}

}  // namespace clusterpin::store
