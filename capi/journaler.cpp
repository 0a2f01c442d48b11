// Running the library's Journaler from C: a thread of the caller's writes a channel to a journal
// directory, step by step.
#include <chrono>
#include <utility>

#include "capi/errors.hpp"
#include "capi/handles.hpp"

extern "C" {

void shmbus_journaler_options_init(shmbus_journaler_options* options) {
  if (options == nullptr) return;
  const shmbus::JournalerOptions defaults;
  options->name = nullptr;  // defaults.name
  options->segment_bytes = defaults.writer.segment_bytes;
  options->lossy = defaults.lossy ? 1 : 0;
  options->open_timeout_ms = defaults.open_timeout.count();
}

int shmbus_journaler_open(const char* channel, const char* dir,
                          const shmbus_journaler_options* options, shmbus_journaler** out) {
  return shmbus::capi::guarded([&]() -> int {
    if (channel == nullptr || dir == nullptr || out == nullptr) {
      return shmbus::capi::fail(EINVAL,
                                "shmbus_journaler_open: channel, dir and out must not be NULL");
    }
    *out = nullptr;
    shmbus::JournalerOptions o;
    o.channel = channel;
    o.writer.dir = dir;
    if (options != nullptr) {
      if (options->name != nullptr && options->name[0] != '\0') o.name = options->name;
      if (options->segment_bytes != 0) o.writer.segment_bytes = options->segment_bytes;
      o.lossy = options->lossy != 0;
      o.open_timeout = std::chrono::milliseconds(options->open_timeout_ms);
    }
    auto journaler = shmbus::Journaler::open(o);
    if (!journaler) return shmbus::capi::fail(journaler.error());
    *out = new shmbus_journaler{std::move(*journaler)};
    return 0;
  });
}

int64_t shmbus_journaler_step(shmbus_journaler* journaler, int64_t idle_wait_ms) {
  if (journaler == nullptr) {
    return shmbus::capi::fail(EINVAL, "shmbus_journaler_step: journaler must not be NULL");
  }
  return shmbus::capi::guarded([&]() -> int64_t {
    auto appended = journaler->journaler.step(std::chrono::milliseconds(idle_wait_ms));
    if (!appended) return shmbus::capi::fail(appended.error());
    return static_cast<int64_t>(*appended);
  });
}

int shmbus_journaler_drain(shmbus_journaler* journaler, int64_t timeout_ms) {
  if (journaler == nullptr) {
    return shmbus::capi::fail(EINVAL, "shmbus_journaler_drain: journaler must not be NULL");
  }
  return shmbus::capi::guarded([&]() -> int {
    auto drained = journaler->journaler.drain(std::chrono::milliseconds(timeout_ms));
    return drained ? 0 : shmbus::capi::fail(drained.error());
  });
}

// The destructor drains (bounded); like every destructor it is noexcept, so nothing escapes.
void shmbus_journaler_close(shmbus_journaler* journaler) { delete journaler; }

}  // extern "C"
