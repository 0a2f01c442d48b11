// What bounds the producers: block subscribers' positions and, on multi-producer channels, the
// other producers' in-flight claims. And the slow paths that keep dead processes from holding
// that bound forever.
#include "ipc/channel.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <bit>
#include <span>

namespace shmbus::detail {

// What the scan may skip, and why that loses no gating subscriber:
//  - Slots at or above the high-water mark. A subscriber raises the mark (CAS, it only grows)
//    before it takes its slot, then fills the slot in, stores `active` (release) and bumps
//    gate_epoch (seq_cst). Producers call this scan after a seq_cst load of gate_epoch
//    (PublisherState::current_gate_floor). If that load saw the subscriber's bump (or a later
//    one: every bump is a read-modify-write, so the release sequence carries it), everything the
//    subscriber wrote before its bump happens-before this scan, the mark included, and the
//    acquire loads below see it or a later, larger value. If it did not, the gate protocol does
//    not rely on this scan: the producer's load after its claim sees the bump, or the
//    subscriber's tail load after its bump sees the claim (Subscriber::open, announce_gate).
//  - Subscriber slots whose block hint is clear. The hint is set by the slot's block registrant
//    before its owner word says active, in the same registration, so the argument above covers
//    it; only a later non-block registrant of the same slot clears it: once the block one has
//    left, or while it takes over a dead block one's slot of the same name, after which it bumps
//    gate_epoch so that producers drop the slot from their floor.
//  - Producer slots at or above the producer mark: a producer raises it before it takes its slot,
//    so before it stores its in-flight bound; whatever makes the bound visible to the scan (see
//    below) makes the mark visible too.
// Drop and spill subscribers therefore cost the scan one bit each; unused slots cost nothing.
ChannelMapping::GateFloor ChannelMapping::scan_gate_floor() const noexcept {
  const bool shared_producers = !info_.single_producer;
  std::uint64_t floor = UINT64_MAX;
  const std::atomic<std::uint64_t>* source = nullptr;
  if (shared_producers) {
    // acquire, and loaded before the producer slots: a producer stores its in-flight bound and
    // then claims with a locked CAS (which makes that store visible first). If this load does not
    // see its claim, the claim starts at or beyond this tail; if it does, the loads below see
    // the in-flight bound.
    floor = ring_.claimed_position(std::memory_order_acquire);  // acquire: above
    for (const ProducerSlot& p : control_.producer_slots_taken()) {
      // relaxed: a free slot's bound is kNoClaim anyway; this only skips the load.
      if (p.owner.load(std::memory_order_relaxed) == 0) continue;
      // acquire: as above.
      const std::uint64_t in_flight = p.in_flight.load(std::memory_order_acquire);
      if (in_flight < floor) {
        floor = in_flight;
        source = &p.in_flight;
      }
    }
  }
  const std::span<SubscriberSlot> slots = control_.subscriber_slots_taken();
  const auto taken = static_cast<std::uint32_t>(slots.size());
  for (std::uint32_t word = 0; word * 64 < taken; ++word) {
    std::uint64_t hints = control_.block_slot_hints(word);
    while (hints != 0) {
      const std::uint32_t index = word * 64 + static_cast<std::uint32_t>(std::countr_zero(hints));
      hints &= hints - 1;
      if (index >= taken) break;
      const SubscriberSlot& s = slots[index];
      // acquire: a slot seen active has its policy and position filled in (registration
      // releases).
      const std::uint64_t owner = s.owner.load(std::memory_order_acquire);
      if (!gates(owner_state(owner))) continue;
      if (s.policy != static_cast<std::uint8_t>(Policy::block)) continue;
      // acquire: pairs with the subscriber's release of its position; the records before it have
      // been read and may be overwritten.
      const std::uint64_t pos = s.position.load(std::memory_order_acquire);
      if (pos < floor) {
        floor = pos;
        source = &s.position;
      }
    }
  }
  return GateFloor{floor, source};
}

namespace {

// Whether a gating slot's owner is provably alive: the identity fields name the owner word's pid
// and that process, start time included (0 matches nothing). Anything else counts as dead, and
// the slot is evicted once that has lasted its liveness timeout: a forged or half-written slot
// gates for that long at most. A resuming slot's fields name the previous owner for the
// microseconds until its new owner rewrites them (describe_slot), far below any timeout; the
// next look then finds it alive and resets the clock.
bool gating_owner_alive(const SubscriberSlot& slot, std::uint64_t owner) noexcept {
  return slot.pid == owner_pid(owner) && process_alive(ProcessId{slot.pid, slot.start_time});
}

}  // namespace

std::size_t ChannelMapping::evict_dead_subscribers() noexcept {
  std::size_t evicted = 0;
  const std::int64_t now = monotonic_ns();
  for (SubscriberSlot& s : control_.subscriber_slots_taken()) {
    // acquire: as in scan_gate_floor.
    std::uint64_t owner = s.owner.load(std::memory_order_acquire);
    if (!gates(owner_state(owner))) continue;
    if (gating_owner_alive(s, owner)) {
      // relaxed: a hint for the next look; a revived slot (new owner) resets it at registration.
      s.dead_since_ns.store(0, std::memory_order_relaxed);
      continue;
    }
    if (s.policy != static_cast<std::uint8_t>(Policy::block)) {
      // Nothing waits for a dead non-gating subscriber: free its slot now (a named one keeps its
      // position for a restart). acq_rel: the slot changes hands only if still that owner's.
      const std::uint64_t next = s.name[0] != '\0' ? owner_word(s.pid, SlotState::detached) : 0;
      s.owner.compare_exchange_strong(owner, next, std::memory_order_acq_rel);  // acq_rel: above
      continue;
    }
    std::int64_t since = 0;
    // relaxed CAS: the first sighting starts the shared liveness clock; losing means a peer
    // started it already (`since` then holds its time).
    if (s.dead_since_ns.compare_exchange_strong(since, now, std::memory_order_relaxed)) continue;
    if (now - since < s.liveness_timeout_ns) continue;
    // acq_rel: the winner alone counts the eviction; producers that then re-scan (after the
    // epoch bump below) no longer see the slot as gating.
    if (s.owner.compare_exchange_strong(owner, owner_word(owner_pid(owner), SlotState::evicted),
                                        std::memory_order_acq_rel)) {  // acq_rel: see above
      // relaxed: counters for tools.
      s.evictions.fetch_add(1, std::memory_order_relaxed);            // relaxed: statistic
      s.evicted_ns.store(realtime_ns(), std::memory_order_relaxed);   // relaxed: statistic
      control().evictions.fetch_add(1, std::memory_order_relaxed);    // relaxed: statistic
      // release: producers that see the new epoch re-scan and see the eviction.
      control().gate_epoch.fetch_add(1, std::memory_order_release);
      ++evicted;
    }
  }
  for (ProducerSlot& p : control_.producer_slots_taken()) {
    // acquire: the identity of an active producer slot is filled in.
    std::uint64_t owner = p.owner.load(std::memory_order_acquire);
    if (owner == 0) continue;
    // A claiming slot's start time is not written yet: judge it by its pid alone.
    const bool alive = owner_state(owner) == SlotState::active
                           ? process_alive(ProcessId{owner_pid(owner), p.start_time})
                           : pid_exists(owner_pid(owner));
    if (alive) continue;
    // A dead producer's claim is repaired or skipped by readers; once its slot is free it bounds
    // nobody (scan_gate_floor skips free slots, and the next owner resets the bound). The bound
    // is not cleared here first: if a peer frees the slot meanwhile and a new producer takes it,
    // that store would wipe the new producer's bound.
    // Its totals are read before the slot is freed (a new owner zeroes them) and added to the
    // channel's by whoever frees it; a claiming slot's counters are still the previous owner's,
    // who added them when it left. relaxed: statistics; the dead process changes them no more.
    const bool counted = owner_state(owner) == SlotState::active;
    // relaxed (both): as said above.
    const std::uint64_t published = p.published.load(std::memory_order_relaxed);
    const std::uint64_t bytes = p.published_bytes.load(std::memory_order_relaxed);  // relaxed
    // acq_rel: the slot is freed once, by whoever wins; the winner's totals then go out with
    // add_retired's release.
    if (p.owner.compare_exchange_strong(owner, 0, std::memory_order_acq_rel)) {
      if (counted) add_retired(published, bytes);
      // release: producers held back by the dead one's in-flight bound wait on that word alone
      // (PublisherState::gate_may_have_moved), which freeing the slot does not change; the new
      // epoch makes them scan again, without it.
      control().gate_epoch.fetch_add(1, std::memory_order_release);
    }
  }
  return evicted;
}

Result<ProducerSlot*> ChannelMapping::take_producer_slot(const ProcessId& self) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    for (ProducerSlot& p : control_.producer_slots()) {
      // acquire: see evict_dead_subscribers.
      std::uint64_t owner = p.owner.load(std::memory_order_acquire);
      if (owner != 0) continue;
      // Covered by the high-water mark before it is ours (see scan_gate_floor).
      control_.cover_producer_slot(control_.index_of(p));
      // acq_rel: winning makes the slot ours.
      if (!p.owner.compare_exchange_strong(owner, owner_word(self.pid, SlotState::claiming),
                                           std::memory_order_acq_rel)) {  // acq_rel: ours now
        continue;
      }
      p.start_time = self.start_time;
      p.attached_ns = realtime_ns();
      // relaxed: published by the release store of the owner word below.
      p.in_flight.store(kNoClaim, std::memory_order_relaxed);
      p.published.store(0, std::memory_order_relaxed);  // relaxed: as in_flight above
      p.published_bytes.store(0, std::memory_order_relaxed);  // relaxed: as in_flight above
      // release: peers that see the slot active see its start time.
      p.owner.store(owner_word(self.pid, SlotState::active), std::memory_order_release);
      return &p;
    }
    evict_dead_subscribers();  // frees dead producers' slots too
  }
  return tl::unexpected(Error{ErrorCode::busy,
                              fmt::format("channel '{}': all {} producer slots are in use",
                                          info_.name, control_.layout().producer_slots)});
}

void ChannelMapping::release_producer_slot(ProducerSlot* slot, std::uint64_t published,
                                           std::uint64_t published_bytes) noexcept {
  if (slot == nullptr) return;
  // Only a slot that is still ours: a forked child destroying the parent's Publisher must not
  // touch the parent's registration. relaxed: only this process writes an owner word it holds.
  std::uint64_t mine = owner_word(static_cast<std::uint32_t>(::getpid()), SlotState::active);
  if (slot->owner.load(std::memory_order_relaxed) != mine) return;  // relaxed: above
  // relaxed, then the CAS's release: the bound is cleared before the slot is seen free.
  slot->in_flight.store(kNoClaim, std::memory_order_relaxed);
  // acq_rel: the slot is freed once (a peer frees only a dead owner's).
  if (slot->owner.compare_exchange_strong(mine, 0, std::memory_order_acq_rel)) {  // acq_rel: above
    add_retired(published, published_bytes);
  }
}

void ChannelMapping::add_retired(std::uint64_t published, std::uint64_t bytes) noexcept {
  // release: pairs with read_channel_stats' acquire loads of the totals; a reader that sees them
  // grown also sees the slot freed (by the CAS before this), so it never counts a producer
  // twice. It re-reads the totals after its pass over the slots to not miss one either.
  control().retired_published.fetch_add(published, std::memory_order_release);
  control().retired_bytes.fetch_add(bytes, std::memory_order_release);  // release: above
}

}  // namespace shmbus::detail
