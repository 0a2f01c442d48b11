#include "journal/uring.hpp"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace shmbus::journal {

Uring::~Uring() {
  if (ready_) io_uring_queue_exit(&ring_);
}

Result<void> Uring::init(unsigned entries) {
  const int rc = io_uring_queue_init(entries, &ring_, 0);
  if (rc < 0) {
    return tl::unexpected(Error{
        rc == -EPERM || rc == -EACCES ? ErrorCode::permission_denied : ErrorCode::system,
        fmt::format("cannot set up an io_uring of {} entries: {}", entries, std::strerror(-rc))});
  }
  ready_ = true;
  return {};
}

bool Uring::register_buffers(std::span<const iovec> buffers) noexcept {
  return ready_ && io_uring_register_buffers(&ring_, buffers.data(), static_cast<unsigned>(buffers.size())) ==
         0;
}

io_uring_sqe* Uring::entry() noexcept {
  if (!ready_) return nullptr;
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr && io_uring_submit(&ring_) >= 0) sqe = io_uring_get_sqe(&ring_);
  return sqe;
}

int Uring::submit() noexcept {
  if (!ready_) return -EBADF;
  // EINTR/EAGAIN/EBUSY leave the entries queued; the next submit hands them over.
  const int rc = io_uring_submit(&ring_);
  return rc < 0 ? rc : 0;
}

void Uring::wait(std::chrono::nanoseconds timeout) noexcept {
  if (!ready_) return;
  if (timeout.count() < 0) timeout = {};
  __kernel_timespec ts{};
  ts.tv_sec = static_cast<long long>(timeout.count() / 1'000'000'000);
  ts.tv_nsec = static_cast<long long>(timeout.count() % 1'000'000'000);
  io_uring_cqe* cqe = nullptr;
  (void)io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
}

}  // namespace shmbus::journal
