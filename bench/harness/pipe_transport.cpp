#include "bench/harness/pipe_transport.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "bench/harness/fd_io.hpp"

namespace shmbus::bench {

namespace {

void make_pipe(int fds[2]) {
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe: pipe2");
  }
}

}  // namespace

void PipePingPong::prepare(const BenchConfig& config) {
  make_pipe(to_responder_);
  make_pipe(to_initiator_);
  message_.assign(config.size, '\x5a');
}

// Each side closes the ends it does not use, so a side that dies shows as end-of-file or EPIPE.
void PipePingPong::as_initiator() {
  close_fd(to_responder_[0]);
  close_fd(to_initiator_[1]);
}

void PipePingPong::as_responder() {
  close_fd(to_responder_[1]);
  close_fd(to_initiator_[0]);
}

void PipePingPong::send(std::uint64_t seq) {
  write_seq(message_.data(), seq);
  write_all_spin(to_responder_[1], message_.data(), message_.size(), "pipe");
}

std::uint64_t PipePingPong::receive() {
  read_all_spin(to_responder_[0], message_.data(), message_.size(), "pipe");
  return read_seq(message_.data());
}

void PipePingPong::send_back(std::uint64_t seq) {
  write_seq(message_.data(), seq);
  write_all_spin(to_initiator_[1], message_.data(), message_.size(), "pipe");
}

std::uint64_t PipePingPong::receive_back() {
  read_all_spin(to_initiator_[0], message_.data(), message_.size(), "pipe");
  return read_seq(message_.data());
}

void PipePingPong::cleanup() {
  for (int& fd : to_responder_) close_fd(fd);
  for (int& fd : to_initiator_) close_fd(fd);
}

void PipeThroughput::prepare(const BenchConfig& config) {
  make_pipe(fds_);
  message_.assign(config.size, '\x5a');
}

void PipeThroughput::as_producer() { close_fd(fds_[0]); }

void PipeThroughput::as_consumer() { close_fd(fds_[1]); }

void PipeThroughput::send(std::uint64_t seq) {
  write_seq(message_.data(), seq);
  write_all_spin(fds_[1], message_.data(), message_.size(), "pipe");
}

std::uint64_t PipeThroughput::receive() {
  read_all_spin(fds_[0], message_.data(), message_.size(), "pipe");
  return read_seq(message_.data());
}

void PipeThroughput::cleanup() {
  for (int& fd : fds_) close_fd(fd);
}

}  // namespace shmbus::bench
