// A mapped channel: its data ring and its control segment, created or opened race-free.
//
// Creation publishes a fully built ring atomically: the creator builds it under a private
// temporary name and link()s it to the channel's name, so an opener sees either no channel or a
// finished one, and of many simultaneous creators exactly one wins (the others open the winner's).
// The control segment is named after the ring's random incarnation, so a deleted and re-created
// channel never shares counters or subscriber slots with its predecessor.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/ring.hpp"
#include "ipc/control_layout.hpp"
#include "ipc/process.hpp"
#include "ipc/shm_segment.hpp"
#include "shmbus/shmbus.hpp"

namespace shmbus::detail {

std::string ring_object_name(std::string_view channel);
std::string control_object_name(std::string_view channel, std::uint64_t incarnation);
Result<void> check_channel_name(std::string_view channel);

class ChannelMapping {
 public:
  // Opens `channel`, creating it with `options` if it does not exist (publishers).
  static Result<std::shared_ptr<ChannelMapping>> open_or_create(std::string_view channel,
                                                                const ChannelOptions& options);
  // Opens an existing channel, waiting up to `timeout` for it to appear (subscribers, tools).
  // A read-only ring mapping is enough for non-gating readers.
  static Result<std::shared_ptr<ChannelMapping>> open(std::string_view channel,
                                                      bool writable_ring,
                                                      std::chrono::milliseconds timeout);

  const core::RingRef& ring() const noexcept { return ring_; }
  ControlHeader& control() const noexcept { return *control_; }
  const ChannelInfo& info() const noexcept { return info_; }
  bool ring_writable() const noexcept { return ring_writable_; }

  // The lowest position a live gating subscriber still needs (UINT64_MAX when none gates).
  std::uint64_t scan_gate_floor() const noexcept;

  // Evicts gating subscribers whose process is dead and whose position has not moved for their
  // liveness timeout. Slow path: reads /proc. Returns how many it evicted.
  std::size_t evict_dead_subscribers() noexcept;

 private:
  static Result<std::shared_ptr<ChannelMapping>> attach(std::string_view channel,
                                                        ShmSegment ring_segment);

  ShmSegment ring_segment_;
  ShmSegment control_segment_;
  core::RingRef ring_;
  ControlHeader* control_ = nullptr;
  ChannelInfo info_;
  bool ring_writable_ = false;

  // What this process last saw of each gating slot, to time its liveness (position, since).
  struct SlotWatch {
    std::uint64_t owner = 0;
    std::uint64_t position = 0;
    std::int64_t unchanged_since_ns = 0;
  };
  std::unique_ptr<SlotWatch[]> watch_ = std::make_unique<SlotWatch[]>(kSubscriberSlots);
};

}  // namespace shmbus::detail
