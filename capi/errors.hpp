// The C API's error convention (include/shmbus/shmbus.h): negative errno values, a per-thread
// message, and a guard that turns every C++ exception into one of them before it can cross the C
// boundary.
#pragma once

#include <cerrno>
#include <exception>
#include <new>
#include <string_view>

#include "shmbus/result.hpp"

namespace shmbus::capi {

// The thread's message is a fixed thread-local buffer (plus a pointer, for static texts): setting
// it never allocates, so the hot-path calls may set it on failure and stay allocation-free.
inline constexpr std::size_t kErrorCapacity = 1024;

// Points the thread's message at a string with static storage duration: one store, no copy (what
// the hot paths use).
void set_static_error(const char* text) noexcept;
// Copies `text` (after `prefix`) into the thread's buffer, cut to kErrorCapacity - 1 bytes.
void set_error(std::string_view text) noexcept;
void set_error(std::string_view prefix, std::string_view text) noexcept;
// Sets the message of `error` and returns its negative errno value.
int fail(const Error& error) noexcept;
// Sets `text` as the message (copied) and returns -code.
int fail(int code, std::string_view text) noexcept;
// The errno value a library error code stands for (shmbus.h lists them).
int errno_of(ErrorCode code) noexcept;

// Runs `body` (a setup call), returning what it returns; an exception becomes -ENOMEM or -EIO
// with its text as the message. Every exported function that may throw runs under it.
template <class Body>
auto guarded(Body&& body) noexcept -> decltype(body()) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    set_static_error("out of memory");
    return -ENOMEM;
  } catch (const std::exception& e) {
    set_error("internal error: ", e.what());
    return -EIO;
  } catch (...) {
    set_static_error("internal error: an exception of unknown type");
    return -EIO;
  }
}

}  // namespace shmbus::capi
