// A channel made of an input's bytes, as the files an opener finds in /dev/shm: the ring segment
// under the channel's name and the control segment under the name its incarnation gives. The
// channel is this process's own ("fuzz-<purpose>-<pid>") and removed when the object goes.
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <cstdint>
#include <span>
#include <string>

#include "core/ring.hpp"
#include "fuzz/targets/fuzz_support.hpp"
#include "ipc/channel.hpp"
#include "ipc/control_segment.hpp"
#include "ipc/shm_segment.hpp"

namespace shmbus::fuzz {

class ChannelFiles {
 public:
  explicit ChannelFiles(std::string_view purpose)
      : channel_(fmt::format("fuzz-{}-{}", purpose, ::getpid())) {}
  ChannelFiles(const ChannelFiles&) = delete;
  ChannelFiles& operator=(const ChannelFiles&) = delete;
  ~ChannelFiles() { remove(); }

  const std::string& channel() const noexcept { return channel_; }

  // Writes both segments; the control segment is named after `incarnation` (the one the ring's
  // header holds, or openers look for another name). False if /dev/shm refused a write.
  bool write(std::span<const std::byte> ring, std::span<const std::byte> control,
             std::uint64_t incarnation) {
    remove();
    ring_path_ = detail::shm_path(detail::ring_object_name(channel_));
    control_path_ = detail::shm_path(detail::control_object_name(channel_, incarnation));
    lock_path_ = detail::shm_path(detail::lock_object_name(channel_, incarnation));
    // The use lock is an empty object that openers flock; without it every open stops early.
    return write_file(lock_path_, std::span<const std::byte>()) && write_file(control_path_, control) &&
           write_file(ring_path_, ring);
  }

  void remove() noexcept {
    for (const std::string* path : {&ring_path_, &control_path_, &lock_path_}) {
      if (!path->empty()) ::unlink(path->c_str());
    }
  }

 private:
  std::string channel_;
  std::string ring_path_;
  std::string control_path_;
  std::string lock_path_;
};

// A valid control segment for `incarnation` with the given slot counts (a ring target pairs its
// ring with one slot of each kind).
inline AlignedBytes valid_control(std::uint64_t incarnation, std::uint32_t subscriber_slots = 1,
                                  std::uint32_t producer_slots = 1) {
  const detail::ControlLayout layout = detail::control_layout(subscriber_slots, producer_slots);
  AlignedBytes control(layout.segment_size);
  detail::format_control(control.data(), layout, incarnation);
  return control;
}

// A valid ring segment of `capacity` data bytes holding `records` committed records of
// `payload_bytes` each (sequences 1..records; more than a lap's worth wraps, with padding).
inline AlignedBytes valid_ring(std::uint64_t capacity, std::uint64_t incarnation,
                               std::uint32_t records, std::uint32_t payload_bytes) {
  AlignedBytes ring(core::ring_segment_size(capacity));
  core::RingParams params;
  params.capacity = capacity;
  params.max_message = static_cast<std::uint32_t>(capacity / 4 - core::kRecordHeaderSize);
  params.incarnation = incarnation;
  params.name = "fuzz";
  core::format_ring(ring.data(), params);
  core::RingWriter writer(core::RingRef::attach(ring.data()), 1);
  for (std::uint32_t i = 0; i < records; ++i) {
    core::ClaimTicket ticket;
    if (writer.try_claim(payload_bytes, UINT64_MAX, ticket) != core::ClaimStatus::ok) break;
    for (std::uint32_t b = 0; b < payload_bytes; ++b) {
      ticket.payload[b] = static_cast<std::byte>(ticket.sequence + b);
    }
    writer.write_header(ticket, 1'700'000'000'000'000'000 + ticket.sequence);
    (void)writer.commit(ticket);
  }
  return ring;
}

}  // namespace shmbus::fuzz
