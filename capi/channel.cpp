// Channels from C: their options, identity and removal, and the library's versions.
#include <cerrno>

#include "capi/errors.hpp"
#include "capi/handles.hpp"
#include "core/layout.hpp"
#include "ipc/control_layout.hpp"
#include "shmbus/version.hpp"

namespace shmbus::capi {

void copy_info(const ChannelInfo& info, shmbus_channel_info& out) noexcept {
  out.capacity = info.capacity;
  out.max_message = info.max_message;
  out.subscriber_slots = info.subscriber_slots;
  out.producer_slots = info.producer_slots;
  out.single_producer = info.single_producer ? 1 : 0;
  out.incarnation = info.incarnation;
}

}  // namespace shmbus::capi

extern "C" {

const char* shmbus_version_string(void) { return shmbus::kVersionString; }

void shmbus_version(int* major, int* minor, int* patch) {
  if (major != nullptr) *major = shmbus::kVersion.major;
  if (minor != nullptr) *minor = shmbus::kVersion.minor;
  if (patch != nullptr) *patch = shmbus::kVersion.patch;
}

int shmbus_c_abi_version(void) { return SHMBUS_C_ABI_VERSION; }

uint32_t shmbus_layout_version(void) { return shmbus::core::kLayoutVersion; }

uint32_t shmbus_control_version(void) { return shmbus::detail::kControlVersion; }

void shmbus_channel_options_init(shmbus_channel_options* options) {
  if (options == nullptr) return;
  const shmbus::ChannelOptions defaults;
  options->capacity = defaults.capacity;
  options->max_message = defaults.max_message;
  options->mode = defaults.mode;
  options->open_timeout_ms = defaults.open_timeout.count();
  options->single_producer = defaults.single_producer ? 1 : 0;
  options->counters = defaults.counters ? 1 : 0;
  options->subscriber_slots = defaults.subscriber_slots;
  options->producer_slots = defaults.producer_slots;
  options->gating_group = -1;
  options->accept_existing = defaults.accept_existing ? 1 : 0;
}

int shmbus_channel_remove(const char* channel) {
  return shmbus::capi::guarded([&]() -> int {
    if (channel == nullptr) return shmbus::capi::fail(EINVAL, "shmbus_channel_remove: channel is NULL");
    auto removed = shmbus::remove_channel(channel);
    return removed ? 0 : shmbus::capi::fail(removed.error());
  });
}

}  // extern "C"
