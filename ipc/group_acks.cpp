// Retiring records: ack, nack, pin. A member changes an entry only from the exact lease word it
// installed ({sequence, lease} by 16-byte CAS), so once housekeeping has taken a record back (a
// new lease word) the old holder's late ack fails and is reported as fenced.
#include <fmt/format.h>

#include "ipc/group_state.hpp"
#include "ipc/group_words.hpp"

namespace shmbus::detail {

void GroupState::remember(std::uint64_t sequence, std::uint64_t lease) {
  HeldRecord& h = held[sequence & window_mask];
  if (h.sequence == 0) ++held_count;
  h = HeldRecord{sequence, lease};
}

void GroupState::forget(std::uint64_t sequence) {
  HeldRecord& h = held[sequence & window_mask];
  if (h.sequence == sequence) {
    h = HeldRecord{};
    --held_count;
  }
}

AckStatus GroupState::finish(std::uint64_t sequence, EntryState final_state) {
  const HeldRecord h = held[sequence & window_mask];
  if (sequence == 0 || h.sequence != sequence) return AckStatus::not_held;
  forget(sequence);
  GroupEntry& e = entry(sequence);
  GroupPair expected{sequence, h.lease};
  const Lease mine = unpack_lease(h.lease);
  const Lease done{final_state, OrphanReason::none, index, mine.attempts, token};
  if (!cas_pair(e.word, expected, GroupPair{sequence, pack_lease(done)})) {
    // Taken back (an expired lease, or this process was judged gone) and maybe done by another
    // member already: our work on it must not count.
    ++fenced;
    header->fenced.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    publish_counters();
    return AckStatus::fenced;
  }
  if (final_state == EntryState::acked) {
    ++acked;
    header->acked.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
  }
  // The floor moves over retired entries only from the floor itself: whoever retires the record
  // at the floor moves it. The CAS above is a full barrier, and so is the floor's CAS: of a
  // member retiring the next record and one moving the floor up to it, at least one sees the
  // other's change (see docs/groups.md, "The floor").
  if (load_cursor(header->floor).second == sequence) {
    advance_floor();
    // A member busy with records never reaches the housekeeping that raises the gates: raise
    // them here once the floor has moved a quarter of the ring past where they stand.
    if (load_cursor(header->floor).first - raised_position > ring.capacity / 4) raise_gates();
  }
  if ((acked & 255) == 0) publish_counters();
  return AckStatus::ok;
}

AckStatus GroupState::pin(std::uint64_t sequence) {
  HeldRecord& h = held[sequence & window_mask];
  if (sequence == 0 || h.sequence != sequence) return AckStatus::not_held;
  const Lease mine = unpack_lease(h.lease);
  if (mine.state == EntryState::pinned) return AckStatus::ok;
  GroupPair expected{sequence, h.lease};
  const std::uint64_t pinned = pack_lease(my_lease(EntryState::pinned, mine.attempts));
  if (!cas_pair(entry(sequence).word, expected, GroupPair{sequence, pinned})) {
    forget(sequence);
    ++fenced;
    header->fenced.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    return AckStatus::fenced;
  }
  h.lease = pinned;
  return AckStatus::ok;
}

AckStatus GroupState::nack(std::uint64_t sequence, std::string_view reason) {
  const HeldRecord h = held[sequence & window_mask];
  if (sequence == 0 || h.sequence != sequence) return AckStatus::not_held;
  const Lease mine = unpack_lease(h.lease);
  GroupEntry& e = entry(sequence);
  ++nacked;
  if (mine.attempts >= settings.max_attempts) {
    forget(sequence);
    // Still ours? (A CAS that changes nothing.) A record taken back and done by another member
    // must not be dead-lettered; one taken back after this look may be sent twice (at least once).
    GroupPair still{sequence, h.lease};
    std::uint64_t position = 0;
    if (!cas_pair(e.word, still, still) || !load_tagged(e.place, sequence, position)) {
      ++fenced;
      header->fenced.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
      publish_counters();
      return AckStatus::fenced;
    }
    const bool sent = dead_letter(sequence, h.lease, position, mine.attempts,
                                  static_cast<std::uint16_t>(OrphanReason::nacked), reason);
    publish_counters();
    return sent ? AckStatus::ok : AckStatus::fenced;
  }
  forget(sequence);
  GroupPair expected{sequence, h.lease};
  const Lease back{EntryState::orphaned, OrphanReason::nacked, index, mine.attempts, token};
  if (!cas_pair(e.word, expected, GroupPair{sequence, pack_lease(back)})) {
    ++fenced;
    header->fenced.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    publish_counters();
    return AckStatus::fenced;
  }
  header->orphaned.fetch_add(1, std::memory_order_relaxed);  // relaxed: a hint for take_orphan
  publish_counters();
  return AckStatus::ok;
}

}  // namespace shmbus::detail
