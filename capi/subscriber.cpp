// Subscribing from C: open a subscriber, poll with a callback or into the caller's buffer, wait,
// release, and read its own counters.
//
// Hot path: shmbus_poll and shmbus_poll_copy call Subscriber::poll (instantiated here with a
// handler that calls the C callback, or copies), which allocates nothing, takes no lock and makes
// no system call on the ring path; the C layer adds none. A failure's message is the subscriber's
// own last_error() copied into the fixed thread-local buffer (no allocation)
// (tests/capi/capi_hot_path_test.cpp counts allocations and traces system calls).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "capi/errors.hpp"
#include "capi/handles.hpp"

namespace shmbus::capi {
namespace {

SubscriberOptions to_subscriber_options(const shmbus_subscriber_options& in) {
  SubscriberOptions o;
  o.policy = static_cast<Policy>(in.policy);
  o.start = static_cast<StartFrom>(in.start);
  o.start_sequence = in.start_sequence;
  if (in.name != nullptr) o.name = in.name;
  o.liveness_timeout = std::chrono::nanoseconds(in.liveness_timeout_ns);
  o.abandon_timeout = std::chrono::nanoseconds(in.abandon_timeout_ns);
  o.open_timeout = std::chrono::milliseconds(in.open_timeout_ms);
  o.manual_release = in.manual_release != 0;
  o.latency_histogram = in.latency_histogram != 0;
  if (in.filter_key != nullptr) {
    o.filter.key.emplace(static_cast<const char*>(in.filter_key), in.filter_key_length);
  }
  if (in.filter_types != nullptr) {
    o.filter.message_types.assign(in.filter_types, in.filter_types + in.filter_type_count);
  }
  return o;
}

// The options' enumerations, checked before the casts above give them to the library.
int check_options(const shmbus_subscriber_options& in) noexcept {
  if (in.policy < SHMBUS_POLICY_BLOCK || in.policy > SHMBUS_POLICY_SPILL) {
    return fail(EINVAL, "shmbus_subscriber_open: policy must be SHMBUS_POLICY_BLOCK, _DROP or "
                        "_SPILL, got " + std::to_string(in.policy));
  }
  if (in.start < SHMBUS_START_LATEST || in.start > SHMBUS_START_SEQUENCE) {
    return fail(EINVAL, "shmbus_subscriber_open: start must be SHMBUS_START_LATEST, _EARLIEST or "
                        "_SEQUENCE, got " + std::to_string(in.start));
  }
  if (in.filter_key_length > kMaxKeyLength) {
    return fail(EINVAL, "shmbus_subscriber_open: filter_key_length " +
                            std::to_string(in.filter_key_length) + " is above " +
                            std::to_string(kMaxKeyLength));
  }
  return 0;
}

// What a poll that delivered nothing says about the subscriber: 0, or its state as an error
// (the message is its own last_error(), copied: no allocation).
std::int64_t poll_outcome(const Subscriber& sub, std::size_t delivered) noexcept {
  if (delivered != 0) return static_cast<std::int64_t>(delivered);
  switch (sub.status()) {
    case PollStatus::evicted:
      set_error("evicted: ", sub.last_error());
      return -ENOTCONN;
    case PollStatus::corrupt:
      set_error("corrupt: ", sub.last_error());
      return -EBADMSG;
    default:
      return 0;
  }
}

constexpr std::size_t round8(std::size_t n) noexcept { return (n + 7) & ~std::size_t{7}; }

}  // namespace
}  // namespace shmbus::capi

using shmbus::capi::fail;

extern "C" {

void shmbus_subscriber_options_init(shmbus_subscriber_options* options) {
  if (options == nullptr) return;
  const shmbus::SubscriberOptions defaults;
  *options = shmbus_subscriber_options{};
  options->policy = static_cast<int>(defaults.policy);
  options->start = SHMBUS_START_LATEST;
  options->start_sequence = defaults.start_sequence;
  options->name = nullptr;
  options->liveness_timeout_ns = defaults.liveness_timeout.count();
  options->abandon_timeout_ns = defaults.abandon_timeout.count();
  options->open_timeout_ms = defaults.open_timeout.count();
  options->manual_release = defaults.manual_release ? 1 : 0;
  options->latency_histogram = defaults.latency_histogram ? 1 : 0;
}

int shmbus_subscriber_open(const char* channel, const shmbus_subscriber_options* options,
                           shmbus_subscriber** out) {
  return shmbus::capi::guarded([&]() -> int {
    if (channel == nullptr || out == nullptr) {
      return fail(EINVAL, "shmbus_subscriber_open: channel and out must not be NULL");
    }
    *out = nullptr;
    shmbus::SubscriberOptions o;
    if (options != nullptr) {
      if (const int bad = shmbus::capi::check_options(*options); bad != 0) return bad;
      o = shmbus::capi::to_subscriber_options(*options);
    }
    auto sub = shmbus::Subscriber::open(channel, o);
    if (!sub) return fail(sub.error());
    *out = new shmbus_subscriber{std::move(*sub)};
    return 0;
  });
}

void shmbus_subscriber_close(shmbus_subscriber* subscriber) { delete subscriber; }

int shmbus_subscriber_info(const shmbus_subscriber* subscriber, shmbus_channel_info* out) {
  if (subscriber == nullptr || out == nullptr) {
    shmbus::capi::set_static_error("shmbus_subscriber_info: subscriber and out must not be NULL");
    return -EINVAL;
  }
  shmbus::capi::copy_info(subscriber->subscriber.info(), *out);
  return 0;
}

int64_t shmbus_poll(shmbus_subscriber* subscriber, shmbus_message_fn on_message, void* context,
                    size_t max_messages) {
  if (subscriber == nullptr || on_message == nullptr) {
    shmbus::capi::set_static_error("shmbus_poll: subscriber and on_message must not be NULL");
    return -EINVAL;
  }
  shmbus::Subscriber& sub = subscriber->subscriber;
  const std::size_t delivered = sub.poll(
      [&](const shmbus::Message& m) {
        const shmbus_message message{m.sequence,
                                     m.timestamp_ns,
                                     m.payload.data(),
                                     static_cast<std::uint32_t>(m.payload.size()),
                                     static_cast<std::uint16_t>(m.key.size()),
                                     m.message_type,
                                     m.key.data(),
                                     m.lost_before};
        on_message(&message, context);
      },
      max_messages);
  return shmbus::capi::poll_outcome(sub, delivered);
}

int64_t shmbus_poll_copy(shmbus_subscriber* subscriber, void* buffer, size_t buffer_size,
                         shmbus_record* records, size_t max_records) {
  if (subscriber == nullptr || buffer == nullptr || records == nullptr) {
    shmbus::capi::set_static_error(
        "shmbus_poll_copy: subscriber, buffer and records must not be NULL");
    return -EINVAL;
  }
  shmbus::Subscriber& sub = subscriber->subscriber;
  // A record's payload and key together are at most max_message bytes (the tag counts against
  // it), so a batch of k records fits in k such slots: each poll asks for no more records than
  // the space left is sure to hold, and no record is ever consumed without being copied.
  const std::size_t slot = shmbus::capi::round8(sub.info().max_message);
  if (buffer_size < slot) {
    shmbus::capi::set_static_error(
        "shmbus_poll_copy: the buffer is smaller than one record of the channel's max_message "
        "(rounded up to 8 bytes; shmbus_subscriber_info tells it)");
    return -ENOBUFS;
  }
  buffer_size = std::min<std::size_t>(buffer_size, UINT32_MAX);  // the offsets are 32-bit
  auto* out = static_cast<std::byte*>(buffer);
  std::size_t used = 0;
  std::size_t copied = 0;
  while (copied < max_records) {
    const std::size_t room = (buffer_size - used) / slot;
    if (room == 0) break;
    const std::size_t want = std::min(room, max_records - copied);
    const std::size_t got = sub.poll(
        [&](const shmbus::Message& m) {
          shmbus_record& r = records[copied++];
          r.sequence = m.sequence;
          r.timestamp_ns = m.timestamp_ns;
          r.lost_before = m.lost_before;
          r.offset = static_cast<std::uint32_t>(used);
          r.length = static_cast<std::uint32_t>(m.payload.size());
          r.key_offset = static_cast<std::uint32_t>(used + m.payload.size());
          r.key_length = static_cast<std::uint16_t>(m.key.size());
          r.message_type = m.message_type;
          if (!m.payload.empty()) std::memcpy(out + used, m.payload.data(), m.payload.size());
          if (!m.key.empty()) std::memcpy(out + r.key_offset, m.key.data(), m.key.size());
          used += shmbus::capi::round8(m.payload.size() + m.key.size());
        },
        want);
    if (got < want) break;  // nothing more ready (or the subscriber stopped)
  }
  return shmbus::capi::poll_outcome(sub, copied);
}

int shmbus_wait(shmbus_subscriber* subscriber, int64_t timeout_ns, int64_t spin_ns) {
  if (subscriber == nullptr) {
    shmbus::capi::set_static_error("shmbus_wait: subscriber must not be NULL");
    return -EINVAL;
  }
  const bool ready = subscriber->subscriber.wait(std::chrono::nanoseconds(timeout_ns),
                                                 std::chrono::nanoseconds(spin_ns < 0 ? 0 : spin_ns));
  if (ready) return 0;
  shmbus::capi::set_static_error("shmbus_wait: nothing arrived before the timeout");
  return -ETIMEDOUT;
}

int shmbus_release(shmbus_subscriber* subscriber) {
  if (subscriber == nullptr) {
    shmbus::capi::set_static_error("shmbus_release: subscriber must not be NULL");
    return -EINVAL;
  }
  subscriber->subscriber.release(subscriber->subscriber.cursor());
  return 0;
}

int shmbus_subscriber_counters_get(const shmbus_subscriber* subscriber,
                                   shmbus_subscriber_counters* out) {
  if (subscriber == nullptr || out == nullptr) {
    shmbus::capi::set_static_error(
        "shmbus_subscriber_counters_get: subscriber and out must not be NULL");
    return -EINVAL;
  }
  const shmbus::Subscriber& sub = subscriber->subscriber;
  out->next_sequence = sub.next_sequence();
  out->received = sub.received();
  out->lost = sub.lost();
  out->filtered = sub.filtered();
  out->spilled = sub.spilled();
  switch (sub.status()) {
    case shmbus::PollStatus::ok: out->status = SHMBUS_SUBSCRIBER_OK; break;
    case shmbus::PollStatus::corrupt: out->status = SHMBUS_SUBSCRIBER_CORRUPT; break;
    case shmbus::PollStatus::evicted: out->status = SHMBUS_SUBSCRIBER_EVICTED; break;
    case shmbus::PollStatus::journal_unavailable:
      out->status = SHMBUS_SUBSCRIBER_JOURNAL_UNAVAILABLE;
      break;
  }
  out->catching_up = sub.catching_up() ? 1 : 0;
  return 0;
}

const char* shmbus_subscriber_error(const shmbus_subscriber* subscriber) {
  return subscriber == nullptr ? "" : subscriber->subscriber.last_error().c_str();
}

}  // extern "C"
