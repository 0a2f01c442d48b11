#include "ipc/shm_segment.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

#include <boost/interprocess/shared_memory_object.hpp>

namespace bip = boost::interprocess;

namespace shmbus::detail {
namespace {

Error os_error(const std::string& what, const std::string& name, int err) {
  ErrorCode code = ErrorCode::system;
  if (err == ENOENT) code = ErrorCode::not_found;
  if (err == EACCES || err == EPERM || err == EROFS) code = ErrorCode::permission_denied;
  if (err == ENOSPC || err == ENOMEM || err == EFBIG) code = ErrorCode::no_space;
  return Error{code,
               fmt::format("{} shared memory '{}': {}", what, shm_path(name), std::strerror(err))};
}

Error boost_error(const std::string& what, const std::string& name,
                  const bip::interprocess_exception& e) {
  const int err = e.get_native_error();
  if (err != 0) return os_error(what, name, err);
  return Error{ErrorCode::system,
               fmt::format("{} shared memory '{}': {}", what, shm_path(name), e.what())};
}

// Maps every page now, so that the first message through a page costs no page fault (a few
// microseconds each, on the hot path). Best effort: kernels before 5.14 lack MADV_POPULATE_*.
void prefault(void* base, std::size_t size, bool writable) noexcept {
#if defined(MADV_POPULATE_WRITE)
  ::madvise(base, size, writable ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
#else
  (void)base;
  (void)size;
  (void)writable;
#endif
}

}  // namespace

std::string shm_path(const std::string& name) { return fmt::format("/dev/shm/{}", name); }

ShmSegment::ShmSegment(ShmSegment&& other) noexcept { *this = std::move(other); }

ShmSegment& ShmSegment::operator=(ShmSegment&& other) noexcept {
  if (this == &other) return *this;
  if (use_fd_ >= 0) ::close(use_fd_);
  region_ = std::move(other.region_);
  name_ = std::move(other.name_);
  use_fd_ = std::exchange(other.use_fd_, -1);
  return *this;
}

ShmSegment::~ShmSegment() {
  if (use_fd_ >= 0) ::close(use_fd_);
}

Result<bool> ShmSegment::hold_use_lock(int fd) {
  // Our own descriptor of the very object we mapped (the name may point elsewhere by now).
  const int held = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (held < 0) return tl::unexpected(os_error("cannot lock", name_, errno));
  // A gc holds the exclusive lock only while it checks and unlinks (milliseconds): wait it out,
  // without blocking forever on a stuck one.
  for (int attempt = 0;; ++attempt) {
    if (::flock(held, LOCK_SH | LOCK_NB) == 0) break;
    const int err = errno;
    if ((err != EWOULDBLOCK && err != EINTR) || attempt == 2000) {
      ::close(held);
      return tl::unexpected(os_error("cannot lock", name_, err));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  struct stat st {};
  if (::fstat(held, &st) != 0 || st.st_nlink == 0) {
    ::close(held);
    return false;  // removed between our open and our lock
  }
  use_fd_ = held;
  return true;
}

Result<int> try_lock_unused(const std::string& name) {
  const int fd = ::open(shm_path(name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(os_error("cannot open", name, errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
  const int err = errno;
  ::close(fd);
  if (err == EWOULDBLOCK) return -1;
  return tl::unexpected(os_error("cannot lock", name, err));
}

Result<ShmSegment> ShmSegment::create(const std::string& name, std::size_t size, unsigned mode,
                                      Use use) {
  try {
    bip::permissions perm(mode);
    bip::shared_memory_object shm(bip::create_only, name.c_str(), bip::read_write, perm);
    const int fd = shm.get_mapping_handle().handle;
    // The mode is the caller's, not the umask's.
    if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
      const int err = errno;
      bip::shared_memory_object::remove(name.c_str());
      return tl::unexpected(os_error("cannot set the mode of", name, err));
    }
    // Allocate every page now: ftruncate alone would succeed on a full /dev/shm and the first
    // touch of a missing page would kill the process with SIGBUS.
    if (const int err = ::posix_fallocate(fd, 0, static_cast<off_t>(size)); err != 0) {
      bip::shared_memory_object::remove(name.c_str());
      return tl::unexpected(os_error(fmt::format("cannot allocate {} bytes of", size), name, err));
    }
    ShmSegment seg;
    seg.region_ = bip::mapped_region(shm, bip::read_write, 0, size);
    seg.name_ = name;
    if (use == Use::use) {
      auto held = seg.hold_use_lock(fd);
      if (!held || !*held) {
        bip::shared_memory_object::remove(name.c_str());
        return tl::unexpected(
            held ? Error{ErrorCode::system,
                         fmt::format("cannot lock new shared memory '{}'", shm_path(name))}
                 : held.error());
      }
    }
    prefault(seg.region_.get_address(), size, true);
    return seg;
  } catch (const bip::interprocess_exception& e) {
    return tl::unexpected(boost_error("cannot create", name, e));
  }
}

Result<ShmSegment> ShmSegment::open(const std::string& name, bool writable, bool populate,
                                    Use use) {
  try {
    const auto mode = writable ? bip::read_write : bip::read_only;
    bip::shared_memory_object shm(bip::open_only, name.c_str(), mode);
    bip::offset_t size = 0;
    if (!shm.get_size(size) || size <= 0) {
      return tl::unexpected(
          Error{ErrorCode::corrupt, fmt::format("shared memory '{}' is empty", shm_path(name))});
    }
    ShmSegment seg;
    seg.region_ = bip::mapped_region(shm, mode, 0, static_cast<std::size_t>(size));
    seg.name_ = name;
    if (use == Use::use) {
      auto held = seg.hold_use_lock(shm.get_mapping_handle().handle);
      if (!held) return tl::unexpected(held.error());
      if (!*held) {
        return tl::unexpected(Error{
            ErrorCode::not_found,
            fmt::format("shared memory '{}' was removed while being opened", shm_path(name))});
      }
    }
    if (populate) prefault(seg.region_.get_address(), seg.region_.get_size(), writable);
    return seg;
  } catch (const bip::interprocess_exception& e) {
    return tl::unexpected(
        boost_error(writable ? "cannot open (read-write)" : "cannot open (read-only)", name, e));
  }
}

Result<bool> ShmSegment::link(const std::string& from, const std::string& to) {
  if (::link(shm_path(from).c_str(), shm_path(to).c_str()) == 0) return true;
  if (errno == EEXIST) return false;
  return tl::unexpected(os_error("cannot publish", to, errno));
}

void ShmSegment::remove(const std::string& name) noexcept {
  bip::shared_memory_object::remove(name.c_str());
}

Result<void> ShmSegment::unlink(const std::string& name) {
  if (::unlink(shm_path(name).c_str()) == 0) return {};
  return tl::unexpected(os_error("cannot remove", name, errno));
}

bool ShmSegment::exists(const std::string& name) noexcept {
  return ::access(shm_path(name).c_str(), F_OK) == 0;
}

Error shm_error(const std::string& what, const std::string& name, int err) {
  return os_error(what, name, err);
}

}  // namespace shmbus::detail
