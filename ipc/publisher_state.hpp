// A Publisher's state (include/shmbus/publisher.hpp holds only a pointer to it): the ring writer
// and the gate cache every claim uses first, the registration it holds in the channel after.
#pragma once

#include <cstdint>
#include <memory>

#include "core/ring.hpp"
#include "ipc/channel.hpp"
#include "ipc/publish_clock.hpp"
#include "shmbus/publisher.hpp"

namespace shmbus::detail {

struct PublisherState {
  // --- every claim and commit ---
  core::RingWriter writer;
  PublishClock clock;
  ControlHeader* control = nullptr;        // channel->control(), one indirection closer
  ProducerSlot* slot = nullptr;            // our registration in the control segment
  std::uint64_t gate_epoch = UINT64_MAX;   // ControlHeader::gate_epoch when gate_floor was scanned
  std::uint64_t gate_floor = UINT64_MAX;   // the lowest position a gating reader still needs
  const std::atomic<std::uint64_t>* gate_source = nullptr;  // the word gate_floor was read from
  std::uint32_t outstanding = 0;           // shared producers: claims not yet committed or abandoned
  std::uint64_t published = 0;             // our counters, mirrored into `slot`
  std::uint64_t published_bytes = 0;
  bool counters = true;                    // ChannelOptions::counters
  std::uint32_t back_pressured_tries = 0;  // every 1024th looks for dead subscribers
  // The last claim failed for back-pressure: the episode is counted once, when it starts, and a
  // claim that succeeds ends it. Ours alone, so the retries of one episode write nothing shared.
  bool ring_full = false;
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
  std::uint64_t current_gate_floor() noexcept {
    // seq_cst: a subscriber registers (RMW on the epoch) then loads the tail; either our load
    // sees its registration or its tail load sees our earlier claims (see Subscriber::open).
    const std::uint64_t epoch = control->gate_epoch.load(std::memory_order_seq_cst);
    if (epoch != gate_epoch) [[unlikely]] return scan_gate(epoch);
    return gate_floor;
  }
  std::uint64_t refresh_gate() noexcept;
  // The cached floor says the ring is full: whether it may have moved since (the word it came from
  // changed, or none is known). If not, the producer is still held back and need not scan.
  bool gate_may_have_moved() const noexcept {
    // acquire: if it moved, the scan that follows re-reads it with acquire anyway; a value still
    // equal needs no ordering.
    return gate_source == nullptr || gate_source->load(std::memory_order_acquire) != gate_floor;
  }
  // A subscriber registered while we claimed and needs space we already hold: waits for it.
  void wait_for_gate(std::uint64_t end) noexcept;

  // Multi-producer channels: announces a lower bound of where our next claim will start before
  // making it, so that no other producer laps it while we write (see ProducerSlot).
  void announce_claim() noexcept {
    // relaxed load: any tail value read now is at or below our claim's start. release store:
    // made visible before the claim by the CAS's full barrier; scan_gate_floor loads the tail
    // before the slots.
    slot->in_flight.store(channel->ring().claimed_position(std::memory_order_relaxed),
                          std::memory_order_release);  // release: see above
  }
  // A claim that failed: withdraws the announcement (`announced`), counts a back-pressure
  // episode when this failure starts one, and maps the ring's status to the caller's.
  PublishStatus claim_failed(core::ClaimStatus status, bool announced) noexcept;
  // One claim committed or abandoned: on a multi-producer channel the last one clears our
  // in-flight bound (a single producer has none to clear).
  void claim_done() noexcept {
    if (exclusive) return;
    // release: our bound goes only after the commit stores before it.
    if (--outstanding == 0) slot->in_flight.store(kNoClaim, std::memory_order_release);
  }
  void wake_waiters() noexcept;
  // Fills `claim` from a ticket whose payload starts `tag_bytes` in (0: an ordinary record).
  static void fill_claim(Claim& claim, const core::ClaimTicket& t,
                         std::uint32_t tag_bytes) noexcept {
    claim.payload_ = t.payload + tag_bytes;
    claim.length_ = t.length - tag_bytes;
    claim.sequence_ = t.sequence;
    claim.position_ = t.position;
    claim.start_ = t.start;
    claim.end_ = t.end;
    claim.timestamp_ns_ = t.timestamp_ns;
    claim.record_length_ = t.length;
    claim.record_type_ = static_cast<std::uint16_t>(t.type);
  }

 private:
  std::uint64_t scan_gate(std::uint64_t epoch) noexcept;
};

}  // namespace shmbus::detail
