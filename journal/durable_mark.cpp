#include "journal/durable_mark.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "journal/format.hpp"
#include "journal/segment_files.hpp"

namespace shmbus::journal {

DurableMarkRead read_durable_mark(const std::string& dir) {
  const std::string path = join_path(dir, kDurableMarkFileName);
  DurableMarkRead out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT) out.problem = fmt::format("cannot open {}: {}", path, std::strerror(errno));
    return out;
  }
  DurableMark mark;
  const ssize_t n = ::pread(fd, &mark, sizeof mark, 0);
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof mark)) {
    out.problem = n < 0 ? fmt::format("cannot read {}: {}", path, std::strerror(err))
                        : fmt::format("{} holds {} bytes (expected {})", path, n, sizeof mark);
    return out;
  }
  if (auto bad = check_durable_mark(mark)) {
    out.problem = fmt::format("{}: {}", path, *bad);
    return out;
  }
  out.durable_sequence = mark.durable_sequence;
  return out;
}

Result<void> write_durable_mark(const std::string& dir, std::uint64_t durable_sequence) {
  const std::string path = join_path(dir, kDurableMarkFileName);
  bool created = false;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    created = fd >= 0;
  }
  if (fd < 0) return tl::unexpected(os_error(errno, fmt::format("cannot open {}", path)));
  DurableMark mark;
  make_durable_mark(mark, durable_sequence);
  const ssize_t n = ::pwrite(fd, &mark, sizeof mark, 0);
  const int write_err = n < 0 ? errno : EIO;
  if (n != static_cast<ssize_t>(sizeof mark)) {
    ::close(fd);
    return tl::unexpected(os_error(write_err, fmt::format("cannot write {}", path)));
  }
  if (::fdatasync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    return tl::unexpected(os_error(err, fmt::format("cannot fdatasync {}", path)));
  }
  ::close(fd);
  if (created) return sync_directory(dir);
  return {};
}

Result<int> open_durable_mark(const std::string& dir) {
  const std::string path = join_path(dir, kDurableMarkFileName);
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(os_error(errno, fmt::format("cannot open {}", path)));
  return fd;
}

std::optional<Error> durable_records_missing(const std::string& where, std::uint64_t journal_end,
                                             std::uint64_t durable_sequence,
                                             const std::string& what) {
  if (durable_sequence == 0 || journal_end > durable_sequence) return std::nullopt;
  const std::string held = journal_end > 1 ? fmt::format("only up to sequence {}", journal_end - 1)
                                           : std::string("none of them");
  return Error{ErrorCode::corrupt,
               fmt::format("journal damaged: {}: {}; records up to sequence {} were reported "
                           "durable, but the journal holds {}. Recovery "
                           "does not cut records that were reported durable: copy the journal "
                           "away for inspection, then move the damaged segment aside or remove "
                           "{} to accept the loss",
                           where, what, durable_sequence, held, kDurableMarkFileName)};
}

}  // namespace shmbus::journal
