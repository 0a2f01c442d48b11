// Handing records out: redeliveries first, then the record at the dispatch cursor. The steps and
// why they are safe are in docs/groups.md ("Handing a record out"); in short:
//  1. the record at the cursor is copied and validated (a lapped or garbage record is never
//     handed on);
//  2. its entry is claimed by a 16-byte CAS from the entry's previous, retired record to this
//     one, leased to us: of several members at the same cursor exactly one wins;
//  3. the cursor is moved past it by a CAS, by the winner or by any member that finds the entry
//     already claimed (so a winner that dies here stops nobody).
// The entry is claimed before the cursor moves, so at every moment each sequence below the cursor
// has an entry saying who holds it: nothing handed out can be forgotten.
#include <fmt/format.h>

#include "ipc/group_state.hpp"
#include "ipc/group_words.hpp"

namespace shmbus::detail {

std::optional<core::RecordView> GroupState::read_record(std::uint64_t position,
                                                        std::uint64_t sequence) {
  core::RingReader reader(ring, position, sequence);
  std::optional<core::RecordView> found;
  std::size_t delivered = 0;
  const core::ReadState state = reader.poll_copy(
      [&](const core::RecordView& v) { found = v; }, 1, copy_buffer.data(), copy_buffer.size(),
      delivered);
  if (state == core::ReadState::lapped || state == core::ReadState::corrupt) return std::nullopt;
  if (!found || found->sequence != sequence) return std::nullopt;
  return found;
}

void GroupState::retire_lost(std::uint64_t sequence, std::uint64_t position) {
  GroupEntry& e = entry(sequence);
  GroupPair seen = load_pair_exact(e.word);
  store_forward(e.place, sequence, position);
  while (seen.first < sequence) {
    if (!reusable(seen)) return;  // garbage below the window: housekeeping reports it
    const Lease lost{EntryState::lost, OrphanReason::none, index, 0, token};
    if (cas_pair(e.word, seen, GroupPair{sequence, pack_lease(lost)})) {
      // relaxed: a statistic.
      header->lost.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
}

bool GroupState::key_free_below(std::uint64_t hash, std::uint64_t sequence) const {
  const GroupPair floor = load_cursor(header->floor);
  for (std::uint64_t q = floor.second; q < sequence; ++q) {
    GroupEntry& e = entry(q);
    const GroupPair seen = load_pair_for_tools(e.word);
    if (seen.first != q || retired(unpack_lease(seen.second).state)) continue;
    // Stored before record q was claimed (which the load above saw): a tag that is not q's
    // would be garbage, and is taken as the key being busy.
    std::uint64_t other = 0;
    if (!load_tagged(e.key, q, other) || other == hash) return false;
  }
  return true;
}

bool GroupState::dispatch_new(GroupConsumer::Sink sink) {
  for (int round = 0; round < 64; ++round) {
    GroupPair cursor = load_cursor(header->dispatch);
    const GroupPair floor = load_cursor(header->floor);
    if (cursor.second < floor.second) {
      // The floor jumped over records the ring lost (see take_lapped): follow it.
      cas_pair(header->dispatch, cursor, floor);
      continue;
    }
    if (cursor.second >= floor.second + settings.window) return false;  // window full

    core::RingReader reader(ring, cursor.first, cursor.second);
    std::optional<core::RecordView> view;
    std::size_t copied = 0;  // not `delivered`: that is this member's counter, counted below
    const core::ReadState state = reader.poll_copy(
        [&](const core::RecordView& v) { view = v; }, 1, copy_buffer.data(), copy_buffer.size(),
        copied);
    if (state == core::ReadState::corrupt) {
      fail(GroupStatus::corrupt,
           fmt::format("group '{}': the ring holds a record no shmbus writer produces at position "
                       "{} (sequence {} expected)",
                       group_name, cursor.first, cursor.second));
      return false;
    }
    if (state == core::ReadState::lapped) {
      // The producers overwrote records the group had not handed out: its gate was not held
      // (no member was attached). They are lost; the group resumes at the oldest record left.
      const core::TailWord earliest = core::earliest_retained(ring, ring.capacity / 8);
      if (!core::plausible_place(earliest) || earliest.next_sequence <= cursor.second) {
        fail(GroupStatus::corrupt, fmt::format("group '{}': lapped at sequence {} and the ring "
                                               "offers no place to resume",
                                               group_name, cursor.second));
        return false;
      }
      // Records handed out and not retired cannot be read again either: they are retired as
      // lost first (their holders' acks are then fenced), so the floor passes no live entry.
      retire_all_lost(floor.second, cursor.second);
      GroupPair f = floor;
      const GroupPair to{earliest.position, earliest.next_sequence};
      // The floor first, then the cursor (dispatchers follow a floor ahead of the cursor).
      if (cas_pair(header->floor, f, to)) {
        // relaxed: a statistic.
        header->lost.fetch_add(to.second - cursor.second, std::memory_order_relaxed);
        last_error = fmt::format("group '{}': the ring overwrote sequences {} to {} before the "
                                 "group handed them out (no member held its gate)",
                                 group_name, cursor.second, to.second - 1);
      }
      continue;
    }
    if (!view) {
      if (reader.next_sequence() == cursor.second) {
        // Nothing committed at the cursor (maybe after padding): idle, or a stalled claim.
        check_stall(reader.position(), cursor.second);
        return false;
      }
      // An abandoned claim: its sequence is retired as lost and the cursor moves past it.
      for (std::uint64_t s = cursor.second; s < reader.next_sequence(); ++s) {
        retire_lost(s, cursor.first);
      }
      cas_pair(header->dispatch, cursor, GroupPair{reader.position(), reader.next_sequence()});
      advance_floor();
      continue;
    }
    const std::uint64_t sequence = view->sequence;
    for (std::uint64_t s = cursor.second; s < sequence; ++s) retire_lost(s, cursor.first);
    // The record's own position: the cursor's, or the next lap's start when the copy began
    // with the padding that ends a lap.
    const auto* first = reinterpret_cast<const core::RecordHeader*>(copy_buffer.data());
    const std::uint64_t position =
        first->type == static_cast<std::uint16_t>(core::RecordType::padding)
            ? (cursor.first & ~ring.mask) + ring.capacity
            : cursor.first;
    const GroupPair next{reader.position(), sequence + 1};

    GroupEntry& e = entry(sequence);
    GroupPair seen = load_pair_exact(e.word);
    if (seen.first > sequence) continue;  // our view of the cursor is stale
    if (seen.first == sequence) {         // another member won it: help move the cursor
      cas_pair(header->dispatch, cursor, next);
      continue;
    }
    if (!reusable(seen)) return false;  // the entry's previous record is live: window full
    const std::uint64_t hash = settings.keyed ? key_hash(view->key, view->key_length) : 0;
    // Before the claim, by every claimer alike (see GroupEntry): whoever reads the entry once
    // it holds this sequence finds them.
    store_forward(e.place, sequence, position);
    store_forward(e.key, sequence, hash);
    // relaxed: an immutable setting written before the group was ready.
    if (header->start_sequence != 0 && sequence < header->start_sequence) {
      // StartFrom::sequence: records before it are retired unseen.
      retire_lost(sequence, position);
      cas_pair(header->dispatch, cursor, next);
      advance_floor();
      continue;
    }
    if (hash != 0 && !key_free_below(hash, sequence)) {
      // Keyed: an earlier record of this key is not retired yet. This one waits as an orphan
      // that has had no delivery; take_orphan hands it out once the key is free.
      const Lease waiting{EntryState::orphaned, OrphanReason::none, index, 0, token};
      if (!cas_pair(e.word, seen, GroupPair{sequence, pack_lease(waiting)})) continue;
      header->orphaned.fetch_add(1, std::memory_order_relaxed);  // relaxed: a hint
      cas_pair(header->dispatch, cursor, next);
      continue;
    }
    const std::uint64_t lease = pack_lease(my_lease(EntryState::in_flight, 1));
    if (!cas_pair(e.word, seen, GroupPair{sequence, lease})) continue;
    set_deadline(e, sequence, lease);
    cas_pair(header->dispatch, cursor, next);
    remember(sequence, lease);
    ++delivered;
    const GroupMessage m{sequence,
                         view->timestamp_ns,
                         {view->payload, view->length},
                         {view->key, view->key == nullptr ? 0u : view->key_length},
                         view->message_type,
                         false,
                         1};
    sink.call(sink.handler, m);
    return true;
  }
  return false;
}

bool GroupState::take_orphan(GroupConsumer::Sink sink) {
  // relaxed: a hint; the scan below finds orphans by their entries.
  if (header->orphaned.load(std::memory_order_relaxed) == 0) return false;
  const GroupPair floor = load_cursor(header->floor);
  const GroupPair cursor = load_cursor(header->dispatch);
  if (cursor.second <= floor.second) return false;
  const std::uint64_t span = cursor.second - floor.second;
  if (span > settings.window) {  // never written so: garbage, and the scan below would not end
    fail(GroupStatus::corrupt, fmt::format("group '{}': cursors out of order (dispatch at {}, "
                                           "floor at {}, window {})",
                                           group_name, cursor.second, floor.second,
                                           settings.window));
    return false;
  }
  // Keyed groups scan from the floor up, so that a key's waiting records go out oldest first.
  std::uint64_t start = settings.keyed ? floor.second : orphan_hint;
  if (start < floor.second || start >= cursor.second) start = floor.second;
  for (std::uint64_t i = 0; i < span; ++i) {
    std::uint64_t s = start + i;
    if (s >= cursor.second) s -= span;
    GroupEntry& e = entry(s);
    // The halves apart (no locked read per entry): a torn pair only makes the CAS below fail.
    GroupPair seen = load_pair_for_tools(e.word);
    if (seen.first != s || !plausible_lease(seen.second)) continue;
    const Lease old = unpack_lease(seen.second);
    if (old.state != EntryState::orphaned) continue;
    std::uint64_t hash = 0;
    std::uint64_t position = 0;
    // Both stored before the entry was claimed for s (see GroupEntry); a wrong tag is garbage.
    if (!load_tagged(e.key, s, hash) || !load_tagged(e.place, s, position)) continue;
    if (hash != 0 && !key_free_below(hash, s)) continue;  // its key is busy below it
    orphan_hint = s;
    if (old.attempts >= settings.max_attempts) {
      // Delivered max_attempts times already: to the dead-letter channel. Held while we send it,
      // so that no other member sends it too.
      const std::uint64_t lease = pack_lease(my_lease(EntryState::in_flight, old.attempts));
      if (!cas_pair(e.word, seen, GroupPair{s, lease})) continue;
      set_deadline(e, s, lease);
      // relaxed: the count of orphans is a hint (see above).
      header->orphaned.fetch_sub(1, std::memory_order_relaxed);
      static constexpr const char* kWhy[] = {"taken back", "ack timeout", "member died",
                                             "member left", "nacked"};
      const auto reason = static_cast<std::size_t>(old.reason);
      dead_letter(s, lease, position, old.attempts, static_cast<std::uint16_t>(old.reason),
                  fmt::format("{} after {} attempts", kWhy[reason <= 4 ? reason : 0],
                              old.attempts));
      continue;
    }
    const std::uint32_t attempt = old.attempts + 1;
    const std::uint64_t lease = pack_lease(my_lease(EntryState::in_flight, attempt));
    if (!cas_pair(e.word, seen, GroupPair{s, lease})) continue;
    set_deadline(e, s, lease);
    header->orphaned.fetch_sub(1, std::memory_order_relaxed);  // relaxed: a hint
    // A keyed record that waited for its key has had no delivery yet: not a redelivery.
    const bool again = old.attempts > 0;
    if (again) header->redelivered.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistic
    const std::optional<core::RecordView> view = read_record(position, s);
    if (!view) {
      // Gone from the ring (the gate was not held) or unreadable: nothing to deliver.
      GroupPair mine{s, lease};
      const Lease lost{EntryState::lost, OrphanReason::none, index, attempt, token};
      if (cas_pair(e.word, mine, GroupPair{s, pack_lease(lost)})) {
        header->lost.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
      }
      last_error = fmt::format("group '{}': sequence {} was to be delivered again but the ring no "
                               "longer holds it; retired as lost",
                               group_name, s);
      advance_floor();
      continue;
    }
    remember(s, lease);
    ++delivered;
    if (again) ++redelivered;
    const GroupMessage m{s,
                         view->timestamp_ns,
                         {view->payload, view->length},
                         {view->key, view->key == nullptr ? 0u : view->key_length},
                         view->message_type,
                         again,
                         attempt};
    sink.call(sink.handler, m);
    return true;
  }
  return false;
}

bool GroupState::reusable(GroupPair seen) const noexcept {
  if (seen.first == 0 || retired(unpack_lease(seen.second).state)) return true;
  // A record below the floor is past: only the lapped path leaves one unretired, and it retires
  // them first; anything else there is garbage that must not block the group for good.
  return seen.first < load_cursor(header->floor).second;
}

void GroupState::set_deadline(GroupEntry& e, std::uint64_t sequence, std::uint64_t lease) {
  store_pair(e.deadline, GroupPair{deadline_tag(sequence, lease),
                                   static_cast<std::uint64_t>(group_clock_ns() +
                                                              settings.ack_timeout.count())});
}

void GroupState::retire_all_lost(std::uint64_t from, std::uint64_t to) {
  if (to - from > settings.window) return;  // garbage cursors: reported elsewhere
  for (std::uint64_t q = from; q < to; ++q) {
    GroupEntry& e = entry(q);
    GroupPair seen = load_pair_exact(e.word);
    while (seen.first == q && !retired(unpack_lease(seen.second).state)) {
      const Lease old = unpack_lease(seen.second);
      const Lease lost{EntryState::lost, OrphanReason::none, old.member, old.attempts, old.token};
      if (cas_pair(e.word, seen, GroupPair{q, pack_lease(lost)})) {
        // relaxed (both): statistics and the orphans hint.
        if (old.state == EntryState::orphaned) header->orphaned.fetch_sub(1, std::memory_order_relaxed);
        header->lost.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistic
        break;
      }
    }
  }
}

bool GroupState::deliver_one(GroupConsumer::Sink sink) {
  if (take_orphan(sink)) return true;
  return dispatch_new(sink);
}

}  // namespace shmbus::detail
