// What the files of the Python module (python/) share: each binds one part of the C++ API into the
// module `shmbus` (module.cpp calls them in order), and all raise shmbus.Error the same way.
#pragma once

#include <Python.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>

#include <pybind11/pybind11.h>

#include "shmbus/result.hpp"

namespace shmbus::python {

namespace py = pybind11;

// errors.cpp: shmbus.Error (a RuntimeError) with the library's message and `code`, the
// ErrorCode's name ("not_found", "corrupt", ...).
void bind_errors(py::module_& m);
[[noreturn]] void raise(const Error& error);
[[noreturn]] void raise(ErrorCode code, const std::string& message);

// The bytes of a bytes-like argument (bytes, bytearray, memoryview, a C-contiguous numpy array)
// or of a str (UTF-8), held for as long as this lives.
class BytesArg {
 public:
  BytesArg(py::handle object, const char* what);
  ~BytesArg();
  BytesArg(const BytesArg&) = delete;
  BytesArg& operator=(const BytesArg&) = delete;
  std::span<const std::byte> span() const noexcept { return span_; }

 private:
  Py_buffer view_{};
  bool has_view_ = false;
  py::object text_;  // a str's UTF-8 bytes object
  std::span<const std::byte> span_;
};

// payload_buffer.cpp: memoryviews over memory the module owns or maps (a subscriber's batch, a
// publisher's claim). Each view's exporter keeps `owner` alive and counts itself in
// owner->exports from the moment a buffer is taken from it until the last one is given back, so
// the module can tell whether anything (a slice, a numpy array) still refers to the memory after
// it released the views it handed out.
struct BufferOwner {
  virtual ~BufferOwner() = default;
  std::size_t exports = 0;  // changed only with the GIL held
};
void bind_payload_buffer(py::module_& m);
py::object make_memoryview(std::shared_ptr<BufferOwner> owner, std::byte* data, std::size_t size,
                           bool writable);
// Calls memoryview.release(); a view that something exported from (np.frombuffer(view)) cannot be
// released and stays valid: owner->exports tells the caller so.
void release_memoryview(py::handle view);

// One call at a time on a Python object that several threads may use (Publisher, Subscriber,
// Journal): the library objects under them are not thread-safe, and a call lets the GIL go while
// it waits. ThreadGuard takes it for a call.
struct CallLock {
  std::mutex mutex;
  // The thread inside a call, to tell a call made again from that very thread (a __del__ the
  // garbage collector runs in the middle of it), which would deadlock on `mutex`, from another
  // thread's call, which waits. relaxed: a thread only compares it with its own id, which only it
  // stores and clears, so it sees its own id exactly while it is inside a call (coherence of one
  // atomic); the data the calls share is ordered by `mutex`.
  std::atomic<std::thread::id> owner{};
  // How many threads wait for `mutex`, so that a long wait can let them in between its slices
  // (ThreadGuard::let_others_in). relaxed: a hint only; `mutex` orders the data.
  std::atomic<std::uint32_t> waiting{0};
};

// Holds a CallLock for one call. Waiting for it is done without the GIL, so that the thread
// holding it can take the GIL back to return. A second call from the thread already inside a
// call raises shmbus.Error (code "busy") instead of deadlocking.
class ThreadGuard {
 public:
  // `kind` and `name` name the object in the error ("subscriber of channel", channel).
  // `stop_waiting`, when given, is set before this call waits for another one: a call that waits
  // in slices (a poll without end, a back-pressured publish) gives up at its next slice
  // (close() uses it).
  ThreadGuard(CallLock& lock, const char* kind, const std::string& name,
              std::atomic<bool>* stop_waiting = nullptr);
  // For destructors, which cannot raise: called again from the thread inside a call, it goes on
  // without the lock (owns_lock() false). That is safe because Python code runs in the middle of
  // a call only where the call allocates Python objects, between two calls into the library.
  struct ReentryAllowed {};
  ThreadGuard(CallLock& lock, ReentryAllowed);
  ~ThreadGuard();
  ThreadGuard(const ThreadGuard&) = delete;
  ThreadGuard& operator=(const ThreadGuard&) = delete;

  bool owns_lock() const noexcept { return owns_; }

  // Between two slices of a wait: runs the Python signal handlers without the lock (they may call
  // this very object: close() on SIGTERM, a poll, a publish), lets a thread waiting for the lock
  // have it, then takes the lock back. Throws py::error_already_set when a handler raised
  // (KeyboardInterrupt). Whatever the call read from the object before may have changed: the
  // caller checks it again (closed?) after this returns.
  void let_others_in();

 private:
  void acquire(std::atomic<bool>* stop_waiting);
  void release() noexcept;

  CallLock& lock_;
  bool owns_ = false;
};

// A timeout argument in seconds: None waits without end, a number at most that long (0: once).
std::optional<std::chrono::nanoseconds> timeout_arg(const py::object& seconds, const char* what);

// How long a blocking call waits without the GIL before it takes it back to look for signals
// (KeyboardInterrupt) and, with them, raises.
inline constexpr std::chrono::milliseconds kSignalSlice{50};

void bind_publisher(py::module_& m);
void bind_subscriber(py::module_& m);
void bind_stat(py::module_& m);
void bind_journal(py::module_& m);

}  // namespace shmbus::python
