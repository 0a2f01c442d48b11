// A Publisher's state (include/shmbus/publisher.hpp holds only a pointer to it): the ring writer
// and the gate cache every claim uses first, the registration it holds in the channel after.
#pragma once

#include <cstdint>
#include <memory>

#include "core/ring.hpp"
#include "ipc/channel.hpp"
#include "ipc/publish_clock.hpp"

namespace shmbus::detail {

struct PublisherState {
  // --- every claim and commit ---
  core::RingWriter writer;
  PublishClock clock;
  ProducerSlot* slot = nullptr;            // our registration in the control segment
  std::uint64_t gate_epoch = UINT64_MAX;   // ControlHeader::gate_epoch when gate_floor was scanned
  std::uint64_t gate_floor = UINT64_MAX;   // the lowest position a gating reader still needs
  std::uint32_t outstanding = 0;           // claims not yet committed or abandoned
  std::uint64_t published = 0;             // our counters, mirrored into `slot`
  std::uint64_t published_bytes = 0;
  bool counters = true;                    // ChannelOptions::counters
  std::uint32_t back_pressured_tries = 0;  // every 1024th looks for dead subscribers
  // --- owned for the Publisher's lifetime ---
  bool exclusive = false;  // holds the single-producer ownership of the channel
  std::shared_ptr<ChannelMapping> channel;

  PublisherState() = default;
  PublisherState(const PublisherState&) = delete;
  PublisherState& operator=(const PublisherState&) = delete;
  // Gives up the producer slot (adding what it published to the retired totals) and the
  // single-producer ownership.
  ~PublisherState();

  // The cached floor, re-scanned when the gate epoch moved; refresh_gate() re-scans regardless.
  std::uint64_t current_gate_floor() noexcept;
  std::uint64_t refresh_gate() noexcept;
  // A subscriber registered while we claimed and needs space we already hold: waits for it.
  void wait_for_gate(std::uint64_t end) noexcept;
  // One claim committed or abandoned: the last one clears our in-flight bound.
  void claim_done() noexcept;
  void wake_waiters() noexcept;
};

}  // namespace shmbus::detail
