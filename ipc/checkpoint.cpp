// StateCheckpoint (include/shmbus/checkpoint.hpp): encoding, validation and the atomic replace.
#include "shmbus/checkpoint.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "ipc/checkpoint_format.hpp"
#include "journal/format.hpp"
#include "journal/segment_files.hpp"

namespace shmbus {

namespace {

using detail::CheckpointHeader;
using detail::kCheckpointCrcOffset;

tl::unexpected<Error> corrupt(const std::string& file, const std::string& what) {
  return tl::unexpected(Error{ErrorCode::corrupt, fmt::format("checkpoint {} is damaged: {}", file, what)});
}

tl::unexpected<Error> os_failure(int err, const std::string& what) {
  return tl::unexpected(journal::os_error(err, what));
}

// The masked CRC32C of an encoded checkpoint: header bytes before the crc field, then the body.
std::uint32_t checkpoint_crc(const std::byte* file, std::size_t size) {
  std::uint32_t crc = journal::crc32c(file, kCheckpointCrcOffset);
  crc = journal::crc32c(crc, file + sizeof(CheckpointHeader), size - sizeof(CheckpointHeader));
  return journal::mask_crc(crc);
}

// Empty: well formed; otherwise what is wrong with the list.
std::string check_applied(const AppliedSet& applied) {
  const auto& s = applied.sequences;
  if (s.size() > StateCheckpoint::kMaxApplied) {
    return fmt::format("{} applied sequences, more than the limit {}", s.size(),
                       StateCheckpoint::kMaxApplied);
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] < applied.through) {
      return fmt::format("applied sequence {} lies below applied_through {}", s[i], applied.through);
    }
    if (i > 0 && s[i] <= s[i - 1]) {
      return fmt::format("applied sequences are not strictly ascending ({} after {})", s[i], s[i - 1]);
    }
  }
  return {};
}

// Reads exactly `n` bytes at `offset`; returns errno, or -1 if the file ended first.
int pread_all(int fd, void* data, std::size_t n, off_t offset) {
  auto* p = static_cast<std::byte*>(data);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, offset);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (r == 0) return -1;
    p += r;
    n -= static_cast<std::size_t>(r);
    offset += r;
  }
  return 0;
}

int write_all(int fd, const std::byte* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return 0;
}

class FileCloser {
 public:
  explicit FileCloser(int fd) : fd_(fd) {}
  ~FileCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileCloser(const FileCloser&) = delete;
  FileCloser& operator=(const FileCloser&) = delete;
  // Closes now, returning close's errno (0 on success).
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

}  // namespace

bool AppliedSet::covers(std::uint64_t sequence) const noexcept {
  return sequence < through || std::binary_search(sequences.begin(), sequences.end(), sequence);
}

void AppliedSet::add(std::span<const std::uint64_t> sorted) {
  const auto middle = static_cast<std::ptrdiff_t>(sequences.size());
  sequences.insert(sequences.end(), sorted.begin(), sorted.end());
  std::inplace_merge(sequences.begin(), sequences.begin() + middle, sequences.end());
}

void AppliedSet::trim(std::uint64_t retired_through) {
  if (retired_through <= through) return;
  through = retired_through;
  sequences.erase(sequences.begin(),
                  std::lower_bound(sequences.begin(), sequences.end(), retired_through));
}

Result<StateCheckpoint> StateCheckpoint::open(std::string file) {
  if (file.empty() || file.back() == '/') {
    return tl::unexpected(Error{ErrorCode::invalid_argument,
                                fmt::format("checkpoint path '{}' does not name a file", file)});
  }
  StateCheckpoint c;
  const std::filesystem::path parent = std::filesystem::path(file).parent_path();
  std::string dir = parent.empty() ? std::string(".") : parent.string();
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return os_failure(errno, fmt::format("checkpoint directory {} of {}", dir, file));
  }
  if (!S_ISDIR(st.st_mode)) {
    return tl::unexpected(Error{ErrorCode::not_found,
                                fmt::format("checkpoint directory {} of {} is not a directory", dir, file)});
  }
  c.path_ = std::move(file);
  c.directory_ = std::move(dir);
  return c;
}

Result<CheckpointData> read_checkpoint(const std::string& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return CheckpointData{};
    return os_failure(errno, fmt::format("cannot open checkpoint {}", file));
  }
  FileCloser closer(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return os_failure(errno, fmt::format("cannot stat checkpoint {}", file));
  if (!S_ISREG(st.st_mode)) return corrupt(file, "not a regular file");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size < sizeof(CheckpointHeader)) {
    return corrupt(file, fmt::format("{} bytes, shorter than the {}-byte header", size,
                                     sizeof(CheckpointHeader)));
  }
  CheckpointHeader h{};
  if (const int err = pread_all(fd, &h, sizeof h, 0); err != 0) {
    if (err < 0) return corrupt(file, "it shrank while being read");
    return os_failure(err, fmt::format("cannot read checkpoint {}", file));
  }
  if (std::memcmp(h.magic, detail::kCheckpointMagic, sizeof h.magic) != 0) {
    return corrupt(file, "bad magic (not a shmbus checkpoint)");
  }
  if (h.version != detail::kCheckpointVersion) {
    return corrupt(file, fmt::format("version {}, this build reads version {}", h.version,
                                     detail::kCheckpointVersion));
  }
  if (h.header_size != sizeof(CheckpointHeader)) {
    return corrupt(file, fmt::format("header size {}, expected {}", h.header_size, sizeof(CheckpointHeader)));
  }
  if (h.reserved != 0) return corrupt(file, "reserved header field is not zero");
  if (h.applied_count > StateCheckpoint::kMaxApplied) {
    return corrupt(file, fmt::format("applied count {} exceeds the limit {}", h.applied_count,
                                     StateCheckpoint::kMaxApplied));
  }
  if (h.state_size > StateCheckpoint::kMaxStateBytes) {
    return corrupt(file, fmt::format("state size {} exceeds the limit {}", h.state_size,
                                     StateCheckpoint::kMaxStateBytes));
  }
  const std::uint64_t expected = sizeof(CheckpointHeader) + 8 * h.applied_count + h.state_size;
  if (size != expected) {
    return corrupt(file, fmt::format("{} bytes, its header describes {} ({} applied sequences, "
                                     "{} state bytes)",
                                     size, expected, h.applied_count, h.state_size));
  }
  std::vector<std::byte> bytes(expected);
  if (const int err = pread_all(fd, bytes.data(), bytes.size(), 0); err != 0) {
    if (err < 0) return corrupt(file, "it shrank while being read");
    return os_failure(err, fmt::format("cannot read checkpoint {}", file));
  }
  std::uint32_t stored_crc = 0;
  std::memcpy(&stored_crc, bytes.data() + kCheckpointCrcOffset, sizeof stored_crc);
  if (checkpoint_crc(bytes.data(), bytes.size()) != stored_crc) return corrupt(file, "CRC mismatch");

  CheckpointData data;
  data.applied.through = h.applied_through;
  data.applied.sequences.resize(h.applied_count);
  if (h.applied_count > 0) {  // an empty vector's data() may be null, which memcpy may not get
    std::memcpy(data.applied.sequences.data(), bytes.data() + sizeof(CheckpointHeader),
                8 * h.applied_count);
  }
  const std::byte* state = bytes.data() + sizeof(CheckpointHeader) + 8 * h.applied_count;
  data.state.assign(state, state + h.state_size);
  // The CRC matched, so only a writer that broke the rules could produce this; still checked.
  if (const std::string bad = check_applied(data.applied); !bad.empty()) return corrupt(file, bad);
  return data;
}

namespace {
tl::unexpected<Error> unopened() {
  return tl::unexpected(Error{ErrorCode::invalid_argument,
                              "StateCheckpoint was default-constructed: it names no file"});
}
}  // namespace

Result<CheckpointData> StateCheckpoint::load() const {
  if (path_.empty()) return unopened();
  return read_checkpoint(path_);
}

Result<void> StateCheckpoint::commit(const CheckpointData& data) {
  return commit(data.state, data.applied);
}

Result<void> StateCheckpoint::commit(std::span<const std::byte> state, const AppliedSet& applied) {
  if (path_.empty()) return unopened();
  if (const std::string bad = check_applied(applied); !bad.empty()) {
    return tl::unexpected(Error{ErrorCode::invalid_argument,
                                fmt::format("cannot commit checkpoint {}: {}", path_, bad)});
  }
  if (state.size() > kMaxStateBytes) {
    return tl::unexpected(Error{ErrorCode::invalid_argument,
                                fmt::format("cannot commit checkpoint {}: state of {} bytes exceeds "
                                            "the limit {}", path_, state.size(), kMaxStateBytes)});
  }
  CheckpointHeader h{};
  std::memcpy(h.magic, detail::kCheckpointMagic, sizeof h.magic);
  h.version = detail::kCheckpointVersion;
  h.header_size = sizeof(CheckpointHeader);
  h.applied_through = applied.through;
  h.applied_count = applied.sequences.size();
  h.state_size = state.size();
  const std::size_t size = sizeof h + 8 * applied.sequences.size() + state.size();
  buffer_.resize(size);
  std::memcpy(buffer_.data(), &h, sizeof h);
  if (!applied.sequences.empty()) {
    std::memcpy(buffer_.data() + sizeof h, applied.sequences.data(), 8 * applied.sequences.size());
  }
  if (!state.empty()) {
    std::memcpy(buffer_.data() + sizeof h + 8 * applied.sequences.size(), state.data(), state.size());
  }
  const std::uint32_t crc = checkpoint_crc(buffer_.data(), size);
  std::memcpy(buffer_.data() + kCheckpointCrcOffset, &crc, sizeof crc);

  // The temporary file is private to this checkpoint's writer (one per file: the exactly-once
  // helper holds a lock per member name); a leftover from a crash is truncated here.
  const std::string temp = path_ + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return os_failure(errno, fmt::format("cannot create {} to commit checkpoint", temp));
  FileCloser closer(fd);
  const auto fail = [&](int err, const std::string& what) {
    closer.close();
    ::unlink(temp.c_str());
    return os_failure(err, fmt::format("cannot commit checkpoint {}: {} {}", path_, what, temp));
  };
  if (const int err = write_all(fd, buffer_.data(), size); err != 0) return fail(err, "writing");
  if (::fdatasync(fd) != 0) return fail(errno, "fdatasync of");
  if (const int err = closer.close(); err != 0) {
    ::unlink(temp.c_str());
    return os_failure(err, fmt::format("cannot commit checkpoint {}: closing {}", path_, temp));
  }
  if (::rename(temp.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    return os_failure(err, fmt::format("cannot commit checkpoint {}: renaming {} over it", path_, temp));
  }
  // After the rename the new checkpoint is in place (every reader sees it); the directory's fsync
  // makes the rename itself survive a power loss. If it fails, committing again is harmless.
  if (auto synced = journal::sync_directory(directory_); !synced) {
    return tl::unexpected(Error{synced.error().code,
                                fmt::format("checkpoint {} replaced but perhaps not durable: {}",
                                            path_, synced.error().message)});
  }
  return {};
}

}  // namespace shmbus
