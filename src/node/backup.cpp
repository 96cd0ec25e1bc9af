// Pinset backups (see backup.hpp). The file is written through a temporary name in the same
// folder and renamed only after fsync, so a crash leaves either no new backup or a complete one;
// names sort by time (fixed-width UTC stamp), which is the order rotation deletes in.
#include "node/backup.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/core.h>

#include "core/json_text.hpp"
#include "core/pin.hpp"

namespace clusterpin::node {
namespace {

constexpr std::string_view kPrefix = "pinset-";
constexpr std::string_view kSuffix = ".json";

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += fmt::format("\\u{:04x}", u);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// "20261124T025930.123Z": sortable, no characters that need quoting in a shell.
std::string utc_stamp() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y%m%dT%H%M%S", &tm);
  return fmt::format("{}.{:03}Z", text, ms % 1000);
}

Status fsync_folder(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return make_error(fmt::format("cannot open {}: {}", dir.string(), std::strerror(errno)));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0)
    return make_error(fmt::format("cannot fsync {}: {}", dir.string(), std::strerror(err)));
  return {};
}

bool is_backup_name(const std::string& name) {
  return name.size() > kPrefix.size() + kSuffix.size() && name.starts_with(kPrefix) &&
         name.ends_with(kSuffix);
}

// Streams the document into `file`; the caller closes and renames. `read_failed` tells an error
// reading state.db (damaged or unreadable) from one writing the backup.
Status write_document(std::FILE* file, const std::string& path, store::StateReader& reader,
                      std::string_view cluster_id, bool& read_failed) {
  auto applied = reader.applied();
  if (!applied) {
    read_failed = true;
    return applied.error();
  }
  bool write_failed = false;
  auto put = [&](std::string_view text) {
    if (!write_failed && std::fwrite(text.data(), 1, text.size(), file) != text.size()) {
      write_failed = true;
    }
  };
  put(fmt::format("{{\"cluster_id\": {}, \"applied_index\": {}, \"pins\": [\n",
                  json_string(cluster_id), applied->index));
  bool first = true;
  Status bad_pin;
  TextBuffer line;
  Status listed = reader.for_each_pin([&](std::string_view, std::string_view bytes) {
    line.clear();
    if (!first) line.append(",\n");
    if (Status s = append_stored_pin_json(line, bytes); !s) {
      bad_pin = make_error(fmt::format("state.db holds an unreadable pin: {}", s.error().message));
      return false;
    }
    first = false;
    put(line.view());
    return !write_failed;
  });
  if (!listed || !bad_pin) {
    read_failed = true;
    return !listed ? listed : bad_pin;
  }
  put(first ? "]}\n" : "\n]}\n");
  if (write_failed || std::fflush(file) != 0) {
    return make_error(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  }
  if (::fsync(fileno(file)) != 0) {
    return make_error(fmt::format("cannot fsync {}: {}", path, std::strerror(errno)));
  }
  return {};
}

}  // namespace

std::vector<std::filesystem::path> list_backups(const std::filesystem::path& config_dir) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(backups_folder(config_dir), ec)) {
    if (entry.is_regular_file(ec) && is_backup_name(entry.path().filename().string())) {
      out.push_back(entry.path());
    }
  }
  // Oldest first: by stamp, then by the number a backup made within the same millisecond got
  // (pinset-<stamp>-1.json is newer than pinset-<stamp>.json, though it sorts first as text).
  auto key = [](const std::filesystem::path& p) {
    std::string name = p.filename().string();
    std::string_view stem(name);
    stem.remove_prefix(kPrefix.size());
    stem.remove_suffix(kSuffix.size());
    std::size_t dash = stem.find('-');
    int n = 0;
    if (dash != std::string_view::npos) {
      std::string_view digits = stem.substr(dash + 1);
      std::from_chars(digits.data(), digits.data() + digits.size(), n);
      stem = stem.substr(0, dash);
    }
    return std::pair<std::string, int>(std::string(stem), n);
  };
  std::sort(out.begin(), out.end(), [&](const auto& a, const auto& b) { return key(a) < key(b); });
  return out;
}

namespace {

// write_backup; sets `read_failed` when the error came from reading the state, not from writing.
Result<std::filesystem::path> write_backup_checked(const std::filesystem::path& config_dir,
                                                   store::StateReader& reader,
                                                   std::string_view cluster_id, int rotate,
                                                   bool& read_failed) {
  std::filesystem::path dir = backups_folder(config_dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(fmt::format("cannot create {}: {}", dir.string(), ec.message()));

  std::string stamp = utc_stamp();
  std::filesystem::path dest = dir / fmt::format("{}{}{}", kPrefix, stamp, kSuffix);
  // Two backups within one millisecond (a test, a quick restart) must not overwrite each other.
  for (int n = 1; std::filesystem::exists(dest, ec); ++n) {
    dest = dir / fmt::format("{}{}-{}{}", kPrefix, stamp, n, kSuffix);
  }
  std::filesystem::path temp = dest;
  temp += ".tmp";

  std::FILE* file = std::fopen(temp.c_str(), "we");
  if (!file)
    return make_error(fmt::format("cannot create {}: {}", temp.string(), std::strerror(errno)));
  std::vector<char> buffer(1 << 16);
  std::setvbuf(file, buffer.data(), _IOFBF, buffer.size());
  Status written = write_document(file, temp.string(), reader, cluster_id, read_failed);
  if (std::fclose(file) != 0 && written) {
    written = make_error(fmt::format("cannot close {}: {}", temp.string(), std::strerror(errno)));
  }
  if (!written) {
    std::filesystem::remove(temp, ec);
    return written.error();
  }
  std::filesystem::rename(temp, dest, ec);
  if (ec) {
    std::filesystem::remove(temp, ec);
    return make_error(
        fmt::format("cannot rename {} to {}: {}", temp.string(), dest.string(), ec.message()));
  }
  if (Status s = fsync_folder(dir); !s) return s.error();

  auto kept = list_backups(config_dir);
  std::size_t keep = static_cast<std::size_t>(std::max(rotate, 1));
  for (std::size_t i = 0; i + keep < kept.size(); ++i) {
    std::filesystem::remove(kept[i], ec);
    if (ec)
      return make_error(fmt::format("wrote {}, but cannot delete the old backup {}: {}",
                                    dest.string(), kept[i].string(), ec.message()));
  }
  return dest;
}

}  // namespace

Result<std::filesystem::path> write_backup(const std::filesystem::path& config_dir,
                                           store::StateReader& reader, std::string_view cluster_id,
                                           int rotate) {
  bool read_failed = false;
  return write_backup_checked(config_dir, reader, cluster_id, rotate, read_failed);
}

std::filesystem::path old_folder(const std::filesystem::path& data_dir, int n) {
  return std::filesystem::path(data_dir.string() + ".old." + std::to_string(n));
}

std::filesystem::path backups_folder(const std::filesystem::path& config_dir) {
  return config_dir / "backups";
}

Result<std::string> move_data_aside(const std::filesystem::path& config_dir,
                                    const std::filesystem::path& data_dir, int rotate) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(data_dir, ec)) return std::string();
  rotate = std::max(rotate, 1);
  fs::path aside = old_folder(data_dir, 0);
  std::string done;
  if (fs::exists(data_dir / store::StateDb::kFileName, ec)) {
    // A state.db that cannot be opened or read (damaged, not a database) has no pinset to back
    // up: resetting such a peer is what cleanup is for, so the folder is moved aside anyway and
    // keeps the damaged files. Failing to write the backup file still changes nothing.
    std::string unreadable;
    {
      auto state = store::StateDb::open(data_dir);
      auto cluster = state ? state->cluster_id() : Result<std::string>(state.error());
      auto reader = cluster ? state->open_reader() : Result<store::StateReader>(cluster.error());
      if (!reader) {
        unreadable = reader.error().message;
      } else {
        bool read_failed = false;
        auto backup = write_backup_checked(config_dir, *reader, *cluster, rotate, read_failed);
        if (backup) {
          done = fmt::format("backup of the pinset written to {}; ", backup->string());
        } else if (read_failed) {
          unreadable = backup.error().message;
        } else {
          return make_error(
              fmt::format("cannot write a backup, nothing changed: {}", backup.error().message));
        }
      }
    }  // state.db closed before its folder is renamed
    if (!unreadable.empty()) {
      done = fmt::format(
          "warning: state.db cannot be read ({}), so NO backup of the pinset was written; the "
          "damaged files are kept as they are in the folder moved aside; ",
          unreadable);
    }
  }
  fs::remove_all(old_folder(data_dir, rotate - 1), ec);
  if (ec) {
    return make_error(fmt::format("cannot delete {}: {}", old_folder(data_dir, rotate - 1).string(), ec.message()));
  }
  for (int n = rotate - 2; n >= 0; --n) {
    fs::path from = old_folder(data_dir, n);
    if (!fs::exists(from, ec)) continue;
    fs::rename(from, old_folder(data_dir, n + 1), ec);
    if (ec) return make_error(fmt::format("cannot rename {}: {}", from.string(), ec.message()));
  }
  fs::rename(data_dir, aside, ec);
  if (ec) {
    return make_error(fmt::format("cannot rename {} to {}: {}", data_dir.string(), aside.string(), ec.message()));
  }
  if (Status s = fsync_folder(fs::absolute(data_dir).parent_path()); !s) return s.error();
  return done + fmt::format("data folder moved to {}", aside.string());
}

}  // namespace clusterpin::node
