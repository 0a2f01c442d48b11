// A thin owner of one io_uring instance for the journal writer: setup, buffer registration, getting
// submission entries and handing completions to a callback. The writer keeps all the bookkeeping;
// this file only hides liburing's structs. Single-threaded: one thread owns the ring.
// Before init() succeeded every call is a harmless no-op (no entry, nothing to submit, wait or
// reap), so a writer that failed half way through opening can never touch a ring it never had.
#pragma once

#include <liburing.h>
#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <span>

#include "shmbus/result.hpp"

namespace shmbus::journal {

class Uring {
 public:
  Uring() = default;
  Uring(const Uring&) = delete;
  Uring& operator=(const Uring&) = delete;
  ~Uring();

  // Sets up a ring with at least `entries` submission entries.
  Result<void> init(unsigned entries);
  // Registers `buffers` for write_fixed (pinned once instead of per write). False if the kernel or
  // RLIMIT_MEMLOCK refuses: plain writes work the same, only a little slower.
  bool register_buffers(std::span<const iovec> buffers) noexcept;

  // A free submission entry, submitting what is queued first if the queue is full; null if the
  // ring cannot take more now (the caller keeps the operation queued and tries again later).
  io_uring_sqe* entry() noexcept;
  // Hands queued entries to the kernel. Returns 0 or -errno.
  int submit() noexcept;

  // Calls on_completion(user_data, result) for every completion already there; returns how many.
  template <class F>
  unsigned for_each_ready(F&& on_completion) {
    unsigned n = 0;
    if (!ready_) return n;
    io_uring_cqe* cqe = nullptr;
    while (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe != nullptr) {
      const std::uint64_t data = cqe->user_data;
      const int res = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      on_completion(data, res);
      ++n;
    }
    return n;
  }
  // Waits until a completion is there or `timeout` passes (does not consume it).
  void wait(std::chrono::nanoseconds timeout) noexcept;

 private:
  io_uring ring_{};
  bool ready_ = false;
};

}  // namespace shmbus::journal
