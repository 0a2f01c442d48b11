// Whole-message I/O on non-blocking file descriptors (pipes, stream sockets), spinning on EAGAIN.
// A stream may move part of a message per call; messages have a fixed size, so framing is just
// "keep going until `size` bytes have moved".
#pragma once

#include <cstddef>

namespace shmbus::bench {

// Writes all `size` bytes; spins (spin_relax) while the kernel buffer is full. Throws
// std::system_error naming `what` on any other error (EPIPE: the peer is gone; the runner ignores
// SIGPIPE in its children so this arrives as an error, not a signal).
void write_all_spin(int fd, const void* data, std::size_t size, const char* what);

// Reads exactly `size` bytes; spins while nothing is there. Throws std::runtime_error if the peer
// closed its end, std::system_error on any other error.
void read_all_spin(int fd, void* data, std::size_t size, const char* what);

// Sets O_NONBLOCK on fd; throws std::system_error.
void set_nonblocking(int fd, const char* what);

// Closes fd if it is open and sets it to -1; for transports' file descriptor members.
void close_fd(int& fd);

}  // namespace shmbus::bench
