#include "bench/harness/fd_io.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>

#include "bench/harness/spin.hpp"

namespace shmbus::bench {

void write_all_spin(int fd, const void* data, std::size_t size, const char* what) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n > 0) {
      p += n;
      size -= static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      spin_relax();
    } else {
      throw std::system_error(errno, std::generic_category(), fmt::format("{}: write", what));
    }
  }
}

void read_all_spin(int fd, void* data, std::size_t size, const char* what) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = read(fd, p, size);
    if (n > 0) {
      p += n;
      size -= static_cast<std::size_t>(n);
    } else if (n == 0) {
      throw std::runtime_error(fmt::format("{}: read: the peer closed its end", what));
    } else if (errno == EAGAIN || errno == EINTR) {
      spin_relax();
    } else {
      throw std::system_error(errno, std::generic_category(), fmt::format("{}: read", what));
    }
  }
}

void set_nonblocking(int fd, const char* what) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    throw std::system_error(errno, std::generic_category(), fmt::format("{}: O_NONBLOCK", what));
  }
}

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace shmbus::bench
