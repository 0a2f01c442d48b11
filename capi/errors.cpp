// The thread's last error message, and how library errors map to errno values.
#include "capi/errors.hpp"

#include <algorithm>
#include <cstring>

#include "shmbus/shmbus.h"

namespace shmbus::capi {
namespace {

// No constructor, no destructor: a thread's copy needs no initialization call and registers no
// exit handler, so touching it allocates nothing (in a program that links libshmbus at start-up;
// a library loaded later by dlopen gets its thread-local block from glibc on a thread's first use,
// which docs/c-api.md tells how to take off the hot path).
struct LastError {
  const char* text;  // nullptr: none yet; else `buffer` or a static string
  char buffer[kErrorCapacity];
};
thread_local LastError t_error;

}  // namespace

void set_static_error(const char* text) noexcept { t_error.text = text; }

void set_error(std::string_view text) noexcept { set_error({}, text); }

void set_error(std::string_view prefix, std::string_view text) noexcept {
  const std::size_t p = std::min(prefix.size(), kErrorCapacity - 1);
  const std::size_t n = std::min(text.size(), kErrorCapacity - 1 - p);
  if (p != 0) std::memcpy(t_error.buffer, prefix.data(), p);
  if (n != 0) std::memcpy(t_error.buffer + p, text.data(), n);
  t_error.buffer[p + n] = '\0';
  t_error.text = t_error.buffer;
}

int errno_of(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_argument: return EINVAL;
    case ErrorCode::not_found: return ENOENT;
    case ErrorCode::permission_denied: return EACCES;
    case ErrorCode::no_space: return ENOSPC;
    case ErrorCode::version_mismatch: return EPROTO;
    case ErrorCode::corrupt: return EBADMSG;
    case ErrorCode::busy: return EBUSY;
    case ErrorCode::timed_out: return ETIMEDOUT;
    case ErrorCode::system: return EIO;
  }
  return EIO;
}

int fail(const Error& error) noexcept {
  set_error(error.message);
  return -errno_of(error.code);
}

int fail(int code, std::string_view text) noexcept {
  set_error(text);
  return -code;
}

}  // namespace shmbus::capi

extern "C" const char* shmbus_last_error(void) {
  using shmbus::capi::t_error;
  return t_error.text != nullptr ? t_error.text : "";
}
