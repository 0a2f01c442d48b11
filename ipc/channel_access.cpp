#include "ipc/channel_access.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

#include "ipc/shm_segment.hpp"

namespace shmbus::detail {
namespace {

Error lock_error(const std::string& what, const std::string& name, int err) {
  Error error = shm_error(what, name, err);
  if (error.code == ErrorCode::permission_denied) {
    error.message += " (only processes the channel's owner trusts may hold its use lock: write "
                     "access to the ring or the gating group, see docs/security.md)";
  }
  return error;
}

// Read-write on purpose: a descriptor opened read-only could take a flock too.
int open_lock(const std::string& name, int extra_flags, unsigned mode) {
  return ::open(shm_path(name).c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | extra_flags,
                static_cast<mode_t>(mode));
}

}  // namespace

ChannelModes channel_modes(unsigned ring_mode, bool gating_group) noexcept {
  const unsigned ring = ring_mode & 0666;
  const bool group_trusted = gating_group || (ring & 0020) != 0;
  const bool others_trusted = (ring & 0002) != 0;
  // With a gating group the control segment's group is that group, so the ring's group readers
  // count as others there: they keep their read access only if others get it.
  const bool group_reads = (ring & 0040) != 0;
  const bool others_read = (ring & 0004) != 0 || (gating_group && group_reads);
  ChannelModes m;
  m.ring = ring;
  m.control = 0600 | (group_trusted ? 0060u : (group_reads ? 0040u : 0u)) |
              (others_trusted ? 0006u : (others_read ? 0004u : 0u));
  m.readers = 0600 | (group_reads ? 0060u : 0u) | ((ring & 0004) != 0 ? 0006u : 0u);
  m.lock = 0600 | (group_trusted ? 0060u : 0u) | (others_trusted ? 0006u : 0u);
  return m;
}

Result<void> give_to_group(const std::string& name, std::uint32_t gid, unsigned mode) {
  const std::string path = shm_path(name);
  if (::chown(path.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(gid)) != 0 ||
      ::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) {
    const int err = errno;
    return tl::unexpected(Error{
        err == EPERM || err == EACCES ? ErrorCode::permission_denied : ErrorCode::system,
        fmt::format("cannot give '{}' to the gating group {}: {} (the creator must belong to "
                    "it)",
                    path, gid, std::strerror(err))});
  }
  return {};
}

UseLock::UseLock(UseLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

UseLock& UseLock::operator=(UseLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

UseLock::~UseLock() {
  if (fd_ >= 0) ::close(fd_);
}

Result<UseLock> UseLock::create(const std::string& name, unsigned mode,
                                std::optional<std::uint32_t> group) {
  // Private until given to the gating group, as build_control does (ipc/channel.cpp).
  const unsigned first_mode = group ? (mode & 0700) : mode;
  const int fd = open_lock(name, O_CREAT | O_EXCL, first_mode);
  if (fd < 0) return tl::unexpected(lock_error("cannot create the use lock", name, errno));
  UseLock lock(fd);
  // The mode is the caller's, not the umask's.
  if (::fchmod(fd, static_cast<mode_t>(first_mode)) != 0 ||
      ::flock(fd, LOCK_SH | LOCK_NB) != 0) {
    const int err = errno;
    ShmSegment::remove(name);
    return tl::unexpected(lock_error("cannot set up the use lock", name, err));
  }
  if (group) {
    if (auto given = give_to_group(name, *group, mode); !given) {
      ShmSegment::remove(name);
      return tl::unexpected(given.error());
    }
  }
  return lock;
}

Result<UseLock> UseLock::hold(const std::string& name) {
  const int fd = open_lock(name, 0, 0);
  if (fd < 0) return tl::unexpected(lock_error("cannot open the use lock", name, errno));
  UseLock lock(fd);
  // A gc holds the exclusive lock only while it checks and unlinks (milliseconds): wait it out,
  // without blocking forever on a stuck one.
  for (int attempt = 0;; ++attempt) {
    if (::flock(fd, LOCK_SH | LOCK_NB) == 0) break;
    const int err = errno;
    if ((err != EWOULDBLOCK && err != EINTR) || attempt == 2000) {
      return tl::unexpected(lock_error("cannot lock the use lock", name, err));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_nlink == 0) {
    return tl::unexpected(Error{
        ErrorCode::not_found,
        fmt::format("'{}' was removed while being opened", shm_path(name))});
  }
  return lock;
}

Result<int> try_lock_exclusive(const std::string& name) {
  const int fd = open_lock(name, 0, 0);
  if (fd < 0) return tl::unexpected(lock_error("cannot open the use lock", name, errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
  const int err = errno;
  ::close(fd);
  if (err == EWOULDBLOCK) return -1;
  return tl::unexpected(lock_error("cannot lock the use lock", name, err));
}

}  // namespace shmbus::detail
