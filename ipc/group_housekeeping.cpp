// The group's slow paths: moving the floor and the gate, taking records back from expired leases
// and departed members, freeing dead members' slots, repairing a claim stuck at the dispatch
// cursor. Run by whichever member gets there (rate-limited across the group), never per record.
#include <time.h>

#include <fmt/format.h>

#include "core/ring_repair.hpp"
#include "ipc/group_state.hpp"
#include "ipc/group_words.hpp"

namespace shmbus::detail {

std::int64_t group_clock_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void GroupState::advance_floor() noexcept {
  for (int steps = 0; steps < 1 << 20; ++steps) {
    GroupPair floor = load_cursor(header->floor);
    const GroupPair cursor = load_cursor(header->dispatch);
    if (floor.second >= cursor.second) return;
    GroupEntry& e = entry(floor.second);
    const GroupPair seen = load_pair_for_tools(e.word);
    if (seen.first != floor.second || !retired(unpack_lease(seen.second).state)) return;
    // Where the next record lies: its entry's position when it has been handed out (stored
    // before its claiming CAS, which the cursor's CAS we acquired came after), else the cursor's.
    const std::uint64_t next = floor.second + 1;
    std::uint64_t position = cursor.first;
    // Stored before record `next` was claimed, which came before the cursor moved past it; a
    // tag that is not `next`'s leaves the position where it is (never wrong, only cautious).
    if (next < cursor.second && !load_tagged(entry(next).place, next, position)) {
      position = floor.first;
    }
    // Never backwards, whatever we read; a record read from the journal (spill) has no ring
    // position, and the floor keeps its own.
    if (position < floor.first || position == kNoRingPosition) position = floor.first;
    cas_pair(header->floor, floor, GroupPair{position, next});
  }
}

bool GroupState::member_gone(std::uint32_t member, std::uint32_t lease_token) const noexcept {
  if (member >= kMaxGroupMembers) return true;
  // acquire: a slot seen active has its identity written (the joiner's release).
  const std::uint64_t word = members[member].word.load(std::memory_order_acquire);
  return member_token(word) != lease_token || member_state(word) != MemberState::active;
}

void GroupState::raise_gates() noexcept {
  const GroupPair floor = load_cursor(header->floor);
  const ControlRef& control = channel->control_ref();
  const auto slots = control.subscriber_slots();
  for (std::uint32_t i = 0; i < kMaxGroupMembers; ++i) {
    GroupMember& m = members[i];
    // relaxed: a first look; the check that counts is after we announce ourselves below.
    if (member_state(m.word.load(std::memory_order_relaxed)) != MemberState::active) continue;
    // seq_cst (both): a leaving member stores `leaving` and then reads `raisers` (seq_cst);
    // we count ourselves in and then read its word. One of us sees the other: it waits for us,
    // or we see it leaving and keep off its slot, which it is about to give up.
    m.raisers.fetch_add(1, std::memory_order_seq_cst);
    const std::uint64_t word = m.word.load(std::memory_order_seq_cst);  // seq_cst: above
    const std::uint32_t slot_index = m.control_slot;
    if (member_state(word) == MemberState::active && slot_index < slots.size()) {
      SubscriberSlot& slot = slots[slot_index];
      // acquire: the slot's identity, as its registration released it.
      const std::uint64_t owner = slot.owner.load(std::memory_order_acquire);
      if (gates(owner_state(owner)) && owner_pid(owner) == m.pid &&
          slot.policy == static_cast<std::uint8_t>(Policy::block)) {
        // relaxed load, then the CAS's release: producers that acquire the new position may
        // overwrite what lies before it, all of it retired by the group.
        std::uint64_t pos = slot.position.load(std::memory_order_relaxed);
        while (pos < floor.first &&
               !slot.position.compare_exchange_weak(pos, floor.first, std::memory_order_release,  // relaxed: retry
                                                    std::memory_order_relaxed)) {
        }
        // relaxed: for tools only.
        slot.next_sequence.store(floor.second, std::memory_order_relaxed);
      }
    }
    m.raisers.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: see fetch_add above
  }
  raised_position = floor.first;
}

void GroupState::evict_dead_gate(std::uint32_t slot_index, std::uint32_t pid) noexcept {
  // The group has taken the dead member's records back, and this live member's gate holds the
  // floor: the dead gate protects nothing. Left alone it would hold the producers at the floor
  // it was last raised to until the channel's liveness timeout evicts it.
  const auto slots = channel->control_ref().subscriber_slots();
  if (slot_index >= slots.size()) return;
  SubscriberSlot& slot = slots[slot_index];
  // acquire: the slot's identity, as its registration released it.
  std::uint64_t owner = slot.owner.load(std::memory_order_acquire);
  if (!gates(owner_state(owner)) || owner_pid(owner) != pid || slot.pid != pid ||
      process_alive(ProcessId{slot.pid, slot.start_time})) {
    return;  // not that member's gate any more, or its process lives
  }
  // acq_rel: as the channel's own eviction (ChannelMapping::evict_dead_subscribers).
  if (slot.owner.compare_exchange_strong(owner, owner_word(pid, SlotState::evicted),
                                         std::memory_order_acq_rel)) {  // acq_rel: above
    slot.evictions.fetch_add(1, std::memory_order_relaxed);           // relaxed: statistic
    slot.evicted_ns.store(realtime_ns(), std::memory_order_relaxed);  // relaxed: statistic
    channel->control().evictions.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistic
    // release: producers that see the new epoch re-scan and see the eviction.
    channel->control().gate_epoch.fetch_add(1, std::memory_order_release);
  }
}

void GroupState::check_stall(std::uint64_t position, std::uint64_t sequence) noexcept {
  // acquire: a claim seen here comes with what its producer ordered before it.
  const std::uint64_t claimed = ring.claimed_position(std::memory_order_acquire);
  if (claimed <= position) {  // nothing claimed there: idle
    stall_position = UINT64_MAX;
    return;
  }
  // Never written so (garbage in the group's state): the dispatch path reports it as corrupt.
  if (!core::is_frame_aligned(position)) return;
  // acquire: the header fields a repair reads were written before this word.
  const std::uint64_t word = ring.header_at(position)->commit.load(std::memory_order_acquire);
  const std::int64_t now = group_clock_ns();
  if (position != stall_position || word != stall_word) {
    stall_position = position;
    stall_word = word;
    stall_since_ns = now;
    return;
  }
  if (now - stall_since_ns < std::int64_t{1'000'000'000} || !channel->ring_writable()) return;
  // A producer died (or stalls) between claim and commit: the ring's readers repair such a claim
  // as abandoned after their abandon timeout; the group does the same after one second.
  const auto analysis = core::analyze_stall(ring, position, sequence);
  if (!analysis) return;
  const std::uint64_t marked = core::repair_stall(ring, *analysis);
  // relaxed: a statistic.
  channel->control().abandoned_repaired.fetch_add(marked, std::memory_order_relaxed);
  stall_position = UINT64_MAX;
}

void GroupState::housekeeping(bool force) noexcept {
  const std::int64_t now = group_clock_ns();
  if (!force) {
    if (now < next_local_sweep_ns) return;
    next_local_sweep_ns = now + sweep_interval_ns;
    // relaxed (both): only paces the passes; two members running one at once is harmless.
    std::int64_t last = header->last_sweep_ns.load(std::memory_order_relaxed);
    if (now - last < sweep_interval_ns ||
        !header->last_sweep_ns.compare_exchange_strong(last, now, std::memory_order_relaxed)) {  // relaxed: pace
      // Another member swept recently; still move the floor and our gate.
      advance_floor();
      raise_gates();
      return;
    }
  }
  // relaxed: statistics for tools.
  me->heartbeat_ns.store(realtime_ns(), std::memory_order_relaxed);

  // Members whose process died: their slot is freed, which makes every lease they hold gone.
  for (std::uint32_t i = 0; i < kMaxGroupMembers; ++i) {
    GroupMember& m = members[i];
    // acquire: the identity below was written before the word said joining's successor.
    std::uint64_t word = m.word.load(std::memory_order_acquire);
    const MemberState state = member_state(word);
    if (state == MemberState::free || i == index) continue;
    // A joining member's identity fields are not written yet: it is judged by the pid its word
    // carries (written with the word itself).
    const bool alive = state == MemberState::joining
                           ? pid_exists(member_pid(word))
                           : process_alive(ProcessId{m.pid, m.start_time});
    if (alive) continue;
    // Read before the slot is freed (a joiner rewrites them after).
    const std::uint32_t pid = member_pid(word);
    const std::uint32_t control_slot = m.control_slot;
    const bool had_gate = state != MemberState::joining;
    // acq_rel: freed once, by whoever wins; the records it held are taken back below.
    if (m.word.compare_exchange_strong(word, member_word(0, MemberState::free),
                                       std::memory_order_acq_rel)) {  // acq_rel: see above
      if (had_gate) evict_dead_gate(control_slot, pid);
    }
  }

  const std::uint64_t orphans = take_back_expired(now);
  if (status == GroupStatus::corrupt) return;
  // The count of orphans is a hint that a kill between an entry's CAS and the count's update
  // leaves off by one: each full pass sets it to what the entries say (orphans found here, before
  // any of them was taken, and a change racing with this store is corrected by the next pass).
  // relaxed: a hint.
  header->orphaned.store(orphans, std::memory_order_relaxed);
  advance_floor();
  raise_gates();
  const GroupPair at = load_cursor(header->dispatch);
  check_stall(at.first, at.second);
  publish_counters();
}

std::uint64_t GroupState::take_back_expired(std::int64_t now) noexcept {
  const GroupPair floor = load_cursor(header->floor);
  const GroupPair cursor = load_cursor(header->dispatch);
  if (cursor.second > floor.second && cursor.second - floor.second > settings.window) {
    // Never written so: garbage, and the scan below would not end.
    fail(GroupStatus::corrupt, fmt::format("group '{}': cursors out of order (dispatch at {}, "
                                           "floor at {}, window {})",
                                           group_name, cursor.second, floor.second,
                                           settings.window));
    return 0;
  }
  std::uint64_t orphans = 0;
  for (std::uint64_t s = floor.second; s < cursor.second; ++s) {
    GroupEntry& e = entry(s);
    GroupPair seen = load_pair_for_tools(e.word);
    if (seen.first != s || !plausible_lease(seen.second)) continue;
    const Lease l = unpack_lease(seen.second);
    if (l.state == EntryState::orphaned) ++orphans;
    if (l.state != EntryState::in_flight && l.state != EntryState::pinned) continue;
    OrphanReason why = OrphanReason::none;
    if (member_gone(l.member, l.token)) {
      why = OrphanReason::member_died;
    } else if (l.state == EntryState::in_flight) {
      // The deadline counts only if it is this lease's (its holder writes it just after winning).
      const GroupPair d = load_pair_exact(e.deadline);
      if (d.first == deadline_tag(s, seen.second) && now > static_cast<std::int64_t>(d.second)) {
        why = OrphanReason::ack_timeout;
      }
    }
    if (why == OrphanReason::none) continue;
    const Lease back{EntryState::orphaned, why, l.member, l.attempts, l.token};
    if (cas_pair(e.word, seen, GroupPair{s, pack_lease(back)})) {
      header->orphaned.fetch_add(1, std::memory_order_relaxed);  // relaxed: a hint
      ++orphans;
    }
  }
  return orphans;
}

std::uint64_t GroupState::retirement_epoch() const noexcept {
  // relaxed (all): statistics, read only to notice that something changed.
  return header->acked.load(std::memory_order_relaxed) +
         header->dead_lettered.load(std::memory_order_relaxed) +  // relaxed: see above
         header->lost.load(std::memory_order_relaxed) +           // relaxed: see above
         header->orphaned.load(std::memory_order_relaxed) +       // relaxed: see above
         header->redelivered.load(std::memory_order_relaxed);     // relaxed: see above
}

void GroupState::publish_counters() noexcept {
  if (me == nullptr) return;
  // relaxed (all): statistics for tools.
  me->delivered.store(delivered, std::memory_order_relaxed);
  me->acked.store(acked, std::memory_order_relaxed);         // relaxed: statistic
  me->nacked.store(nacked, std::memory_order_relaxed);       // relaxed: statistic
  me->redelivered.store(redelivered, std::memory_order_relaxed);  // relaxed: statistic
  me->fenced.store(fenced, std::memory_order_relaxed);       // relaxed: statistic
  me->held.store(held_count, std::memory_order_relaxed);     // relaxed: statistic
}

void GroupState::leave() noexcept {
  if (me == nullptr) return;
  std::uint64_t word = member_word(token, MemberState::active, self.pid);
  // seq_cst: see raise_gates; after this, no peer starts raising our slot.
  me->word.compare_exchange_strong(word, member_word(token, MemberState::leaving, self.pid),
                                   std::memory_order_seq_cst);  // seq_cst: above
  // What we hold goes back to the group at once.
  for (HeldRecord& h : held) {
    if (h.sequence == 0) continue;
    GroupPair expected{h.sequence, h.lease};
    const Lease l = unpack_lease(h.lease);
    const Lease back{EntryState::orphaned, OrphanReason::member_left, index, l.attempts, token};
    if (cas_pair(entry(h.sequence).word, expected, GroupPair{h.sequence, pack_lease(back)})) {
      header->orphaned.fetch_add(1, std::memory_order_relaxed);  // relaxed: a hint
    }
    h = HeldRecord{};
  }
  held_count = 0;
  publish_counters();
  // Peers raising our slot finish before we give it up (bounded: a raiser that died holding the
  // count must not keep us here).
  const std::int64_t until = monotonic_ns() + 100'000'000;
  // seq_cst: see raise_gates.
  while (me->raisers.load(std::memory_order_seq_cst) != 0 && monotonic_ns() < until) {
  }
  gate.reset();
  word = member_word(token, MemberState::leaving, self.pid);
  // release: the slot is free for the next joiner once our last writes to it are done.
  me->word.compare_exchange_strong(word, member_word(0, MemberState::free),
                                   std::memory_order_release);  // release: see above
  me = nullptr;
}

void GroupState::fail(GroupStatus s, std::string why) {
  status = s;
  last_error = std::move(why);
}

GroupState::~GroupState() { leave(); }

}  // namespace shmbus::detail
