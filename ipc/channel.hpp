// A mapped channel: its data ring and its control segment, created or opened race-free.
//
// Creation publishes a fully built ring atomically: the creator builds it under a private
// temporary name and link()s it to the channel's name, so an opener sees either no channel or a
// finished one, and of many simultaneous creators exactly one wins (the others open the winner's,
// if its configuration is theirs or they accept the existing one: ChannelOptions::accept_existing).
// The control segment is named after the ring's random incarnation, so a deleted and re-created
// channel never shares counters or subscriber slots with its predecessor; so are the readers'
// registry and the use lock (ipc/channel_access.hpp, docs/security.md).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/ring.hpp"
#include "ipc/channel_access.hpp"
#include "ipc/control_layout.hpp"
#include "ipc/control_segment.hpp"
#include "ipc/process.hpp"
#include "ipc/shm_segment.hpp"
#include "shmbus/shmbus.hpp"

namespace shmbus::detail {

std::string ring_object_name(std::string_view channel);
std::string control_object_name(std::string_view channel, std::uint64_t incarnation);
std::string readers_object_name(std::string_view channel, std::uint64_t incarnation);
std::string lock_object_name(std::string_view channel, std::uint64_t incarnation);
Result<void> check_channel_name(std::string_view channel);
// check_ring / check_control as the Error an opener returns: version_mismatch or corrupt, the
// message prefixed with `where` (the channel and its ring's path) and naming the segment. A usable
// control segment gives the layout it declares (checked).
Result<void> validate_ring(const ShmSegment& ring, const std::string& where);
Result<ControlLayout> validate_control(const ShmSegment& control, std::uint64_t incarnation,
                                       const std::string& where);

// The exclusive use lock of a channel's current incarnation (UseLock), taken by `shmbus gc`:
// `fd` holds it (close it to release), or is -1 when a process uses the channel. `ring_inode` is
// the ring whose incarnation was locked: the caller checks the name still names it.
struct UnusedChannelLock {
  int fd = -1;
  std::uint64_t ring_inode = 0;
};
Result<UnusedChannelLock> try_lock_unused_channel(std::string_view channel);

// How a process asks for a channel's objects (ChannelMapping::open).
enum class RingAccess : std::uint8_t {
  read,                // drop and spill readers, the journaler's link
  write,               // producers
  write_if_permitted,  // block subscribers: read-write to repair stalled claims, else read-only
};
enum class ControlAccess : std::uint8_t {
  write,  // producers, block subscribers, journalers: trusted, refused without write access
  // drop and spill readers: the control segment read-write when permitted, else read-only with
  // a registration in the readers' registry
  write_or_register_as_reader,
};
struct OpenRequest {
  RingAccess ring = RingAccess::read;
  ControlAccess control = ControlAccess::write;
  std::chrono::milliseconds timeout{0};
  bool prefault_ring = true;
};

class ChannelMapping {
 public:
  // Opens `channel`, creating it with `options` if it does not exist (publishers). An existing
  // channel of another configuration is invalid_argument, naming both, unless
  // options.accept_existing. The creator's mode and gating group decide the objects' modes
  // (channel_modes); an opener's are not compared.
  static Result<std::shared_ptr<ChannelMapping>> open_or_create(std::string_view channel,
                                                                const ChannelOptions& options);
  // Opens an existing channel, waiting up to `timeout` for it to appear (subscribers, tools).
  // A read-only ring mapping is enough for non-gating readers.
  // `prefault_ring` maps every ring page at once (no page faults on the hot path later); a
  // mapping kept only for the control segment (the journaler's link) leaves it off.
  // Trusted: the control segment read-write (ControlAccess::write).
  static Result<std::shared_ptr<ChannelMapping>> open(std::string_view channel,
                                                      bool writable_ring,
                                                      std::chrono::milliseconds timeout,
                                                      bool prefault_ring = true);
  static Result<std::shared_ptr<ChannelMapping>> open(std::string_view channel,
                                                      const OpenRequest& request);

  const core::RingRef& ring() const noexcept { return ring_; }
  // The header of the segment this process registers in and writes: the control segment, or for
  // an untrusted reader the readers' registry (its slots, its futex words).
  ControlHeader& control() const noexcept { return control_.header(); }
  // That segment with its arrays (slots, histograms), as validated when it was mapped.
  const ControlRef& control_ref() const noexcept { return control_; }
  // The channel's control segment, read-only: what the channel's trusted processes publish (the
  // journal section, the counters), whichever segment this process registers in.
  const ControlHeader& channel_control() const noexcept { return channel_control_.header(); }
  const ChannelInfo& info() const noexcept { return info_; }
  bool ring_writable() const noexcept { return ring_writable_; }
  // Whether this process may write the control segment (and so registered there); false for a
  // reader registered in the readers' registry.
  bool trusted() const noexcept { return trusted_; }

  // The lowest position producers must not overwrite (UINT64_MAX when nothing bounds them): the
  // positions of active block subscribers and, on multi-producer channels, the in-flight claims
  // of the other producers and the tail as it was when we looked (a claim made after this scan
  // starts beyond it). Looks only at slots below the high-water marks, and at subscriber slots
  // only where a block hint is set. Called when gate_epoch changed or the cached floor says the
  // ring is full and the word that set it has moved, never per message. See gate.cpp.
  struct GateFloor {
    std::uint64_t position = UINT64_MAX;
    // The word the floor was read from (a subscriber's position or a producer's in-flight
    // bound), or null when the tail or nothing set it. Until a registration, a departure or a
    // gating slot that stops gating (each bumps gate_epoch) changes the set of gating words,
    // every other word stays at or above `position` (positions only grow; a new in-flight bound
    // starts at the tail, which is above it), so while this word still holds `position` the floor
    // has not moved: a back-pressured producer re-reads this one line instead of every slot.
    const std::atomic<std::uint64_t>* source = nullptr;
  };
  GateFloor scan_gate_floor() const noexcept;

  // Evicts block subscribers whose process has been seen dead for their liveness timeout, frees
  // the slots of dead non-gating subscribers and clears dead producers' in-flight claims. Slow
  // path: reads /proc. Returns how many subscribers it evicted.
  std::size_t evict_dead_subscribers() noexcept;

  // Producer registration (every publisher holds a slot; see ProducerSlot): the lowest free
  // slot, busy when every one of the channel's producer slots is held by a live process.
  Result<ProducerSlot*> take_producer_slot(const ProcessId& self);
  // Frees the slot and adds what it published to the channel's retired totals.
  void release_producer_slot(ProducerSlot* slot, std::uint64_t published,
                             std::uint64_t published_bytes) noexcept;

 private:
  void add_retired(std::uint64_t published, std::uint64_t bytes) noexcept;
  static Result<std::shared_ptr<ChannelMapping>> attach(std::string_view channel,
                                                        ShmSegment ring_segment,
                                                        const OpenRequest& request);
  Result<void> map_control(std::string_view channel, const OpenRequest& request,
                           const std::string& where);

  ShmSegment ring_segment_;
  ShmSegment control_segment_;
  ShmSegment readers_segment_;  // untrusted readers only
  UseLock use_lock_;            // trusted processes only
  core::RingRef ring_;
  ControlRef control_;
  ConstControlRef channel_control_;
  ChannelInfo info_;
  bool ring_writable_ = false;
  bool trusted_ = false;
};

}  // namespace shmbus::detail
