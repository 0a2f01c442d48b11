#include "bench/harness/unix_socket_transport.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <system_error>

#include "bench/harness/fd_io.hpp"

namespace shmbus::bench {

namespace {

void make_socket_pair(int fds[2]) {
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::system_error(errno, std::generic_category(), "unix-socket: socketpair");
  }
}

}  // namespace

void UnixSocketPingPong::prepare(const BenchConfig& config) {
  make_socket_pair(fds_);
  message_.assign(config.size, '\x5a');
}

// Each side closes the peer's end, so a side that dies shows as end-of-file or EPIPE.
void UnixSocketPingPong::as_initiator() { close_fd(fds_[1]); }

void UnixSocketPingPong::as_responder() { close_fd(fds_[0]); }

void UnixSocketPingPong::send(std::uint64_t seq) {
  write_seq(message_.data(), seq);
  write_all_spin(fds_[0], message_.data(), message_.size(), "unix-socket");
}

std::uint64_t UnixSocketPingPong::receive() {
  read_all_spin(fds_[1], message_.data(), message_.size(), "unix-socket");
  return read_seq(message_.data());
}

void UnixSocketPingPong::send_back(std::uint64_t seq) {
  write_seq(message_.data(), seq);
  write_all_spin(fds_[1], message_.data(), message_.size(), "unix-socket");
}

std::uint64_t UnixSocketPingPong::receive_back() {
  read_all_spin(fds_[0], message_.data(), message_.size(), "unix-socket");
  return read_seq(message_.data());
}

void UnixSocketPingPong::cleanup() {
  for (int& fd : fds_) close_fd(fd);
}

void UnixSocketThroughput::prepare(const BenchConfig& config) {
  make_socket_pair(fds_);
  message_.assign(config.size, '\x5a');
}

void UnixSocketThroughput::as_producer() { close_fd(fds_[1]); }

void UnixSocketThroughput::as_consumer() { close_fd(fds_[0]); }

void UnixSocketThroughput::send(std::uint64_t seq) {
  write_seq(message_.data(), seq);
  write_all_spin(fds_[0], message_.data(), message_.size(), "unix-socket");
}

std::uint64_t UnixSocketThroughput::receive() {
  read_all_spin(fds_[1], message_.data(), message_.size(), "unix-socket");
  return read_seq(message_.data());
}

void UnixSocketThroughput::cleanup() {
  for (int& fd : fds_) close_fd(fd);
}

}  // namespace shmbus::bench
