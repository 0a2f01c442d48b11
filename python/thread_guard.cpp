// ThreadGuard (bindings.hpp): one call at a time on an object of the module, waited for without
// the GIL, and a long wait that steps aside between its slices for signal handlers and for the
// other threads that want the object.
#include <fmt/format.h>

#include "python/bindings.hpp"

namespace shmbus::python {

using namespace std::chrono_literals;

ThreadGuard::ThreadGuard(CallLock& lock, const char* kind, const std::string& name,
                         std::atomic<bool>* stop_waiting)
    : lock_(lock) {
  // relaxed: CallLock::owner.
  if (lock_.owner.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
    raise(ErrorCode::busy,
          fmt::format("{} '{}': called again by the thread that is inside one of its calls (from "
                      "a __del__ run in the middle of it); call it once that call has returned",
                      kind, name));
  }
  acquire(stop_waiting);
}

ThreadGuard::ThreadGuard(CallLock& lock, ReentryAllowed) : lock_(lock) {
  // relaxed: CallLock::owner.
  if (lock_.owner.load(std::memory_order_relaxed) == std::this_thread::get_id()) return;
  acquire(nullptr);
}

ThreadGuard::~ThreadGuard() {
  if (owns_) release();
}

void ThreadGuard::acquire(std::atomic<bool>* stop_waiting) {
  if (!lock_.mutex.try_lock()) {
    // relaxed: the flag only asks the call holding the lock to stop waiting; the lock orders
    // what the two calls share.
    if (stop_waiting != nullptr) stop_waiting->store(true, std::memory_order_relaxed);
    // relaxed: CallLock::waiting is a hint.
    lock_.waiting.fetch_add(1, std::memory_order_relaxed);
    py::gil_scoped_release no_gil;
    lock_.mutex.lock();
    // relaxed: as above.
    lock_.waiting.fetch_sub(1, std::memory_order_relaxed);
  }
  // relaxed: CallLock::owner.
  lock_.owner.store(std::this_thread::get_id(), std::memory_order_relaxed);
  owns_ = true;
}

void ThreadGuard::release() noexcept {
  // relaxed: CallLock::owner.
  lock_.owner.store(std::thread::id{}, std::memory_order_relaxed);
  lock_.mutex.unlock();
  owns_ = false;
}

void ThreadGuard::let_others_in() {
  release();
  // A handler that calls this object finds it unlocked; one that raises ends the wait.
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  // relaxed: CallLock::waiting is a hint.
  const std::uint32_t waiting = lock_.waiting.load(std::memory_order_relaxed);
  if (waiting != 0) {
    // std::mutex promises no order: without a pause this thread, awake already, would take the
    // lock again before a waiter is scheduled, slice after slice. So it waits (without the GIL,
    // which the waiter needs next) until one of them has the lock, or 2 ms.
    py::gil_scoped_release no_gil;
    const auto until = std::chrono::steady_clock::now() + 2ms;
    // relaxed: as above.
    while (lock_.waiting.load(std::memory_order_relaxed) >= waiting &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(50us);
    }
  }
  acquire(nullptr);
}

}  // namespace shmbus::python
