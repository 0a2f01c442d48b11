// What the files of the Python module (python/) share: each binds one part of the C++ API into the
// module `shmbus` (module.cpp calls them in order), and all raise shmbus.Error the same way.
#pragma once

#include <Python.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include <pybind11/pybind11.h>

#include "shmbus/result.hpp"

namespace shmbus::python {

namespace py = pybind11;

// errors.cpp: shmbus.Error (a RuntimeError) with the library's message and `code`, the
// ErrorCode's name ("not_found", "corrupt", ...).
void bind_errors(py::module_& m);
[[noreturn]] void raise(const Error& error);
[[noreturn]] void raise(ErrorCode code, const std::string& message);
const char* code_name(ErrorCode code) noexcept;

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

// Locks `mutex` for one call of a Python object that may be used from several threads: without
// the GIL when it has to wait, so that the thread holding it can take the GIL back to return.
class ThreadGuard {
 public:
  explicit ThreadGuard(std::mutex& mutex) : lock_(mutex, std::try_to_lock) {
    if (!lock_.owns_lock()) {
      py::gil_scoped_release no_gil;
      lock_.lock();
    }
  }

 private:
  std::unique_lock<std::mutex> lock_;
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
