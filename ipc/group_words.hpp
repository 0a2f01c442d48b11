// The ways a group's 16-byte words (GroupPair in ipc/group_layout.hpp) are read and changed.
//
// Changes are 16-byte compare-and-swaps (lock cmpxchg16b: a full barrier, so each one both
// acquires what the previous holder published and releases what this process wrote before it).
// Reads are of two kinds:
//  - exact: a compare-and-swap that writes the value it found back (the cursor words and the
//    entries a member is about to change: it needs a consistent pair, and it holds a writable
//    mapping anyway);
//  - bracketed: for the two cursors, whose `second` half (a sequence) grows with every change,
//    two acquire loads of it around one of `first`: equal sequences mean no change between.
#pragma once

#include <atomic>
#include <cstdint>

#include "ipc/group_layout.hpp"

namespace shmbus::detail {

inline unsigned __int128 pack_pair(GroupPair p) noexcept {
  return (static_cast<unsigned __int128>(p.second) << 64) | p.first;
}
inline GroupPair unpack_pair(unsigned __int128 v) noexcept {
  return GroupPair{static_cast<std::uint64_t>(v), static_cast<std::uint64_t>(v >> 64)};
}

// Replaces `word` with `want` if it holds `expected`; otherwise loads it into `expected`.
// Full barrier either way (see above).
inline bool cas_pair(GroupPair& word, GroupPair& expected, GroupPair want) noexcept {
  const unsigned __int128 seen = __sync_val_compare_and_swap(
      reinterpret_cast<unsigned __int128*>(&word), pack_pair(expected), pack_pair(want));
  if (seen == pack_pair(expected)) return true;
  expected = unpack_pair(seen);
  return false;
}

// An exact read (a CAS of zero for zero: writes only a zero already there). Full barrier.
inline GroupPair load_pair_exact(GroupPair& word) noexcept {
  return unpack_pair(__sync_val_compare_and_swap(reinterpret_cast<unsigned __int128*>(&word),
                                                 static_cast<unsigned __int128>(0),
                                                 static_cast<unsigned __int128>(0)));
}

// A cursor ({position, sequence}, the sequence growing with every change) without writing:
// for read-only mappings (tools) and the hot path.
inline GroupPair load_cursor(const GroupPair& word) noexcept {
  auto& w = const_cast<GroupPair&>(word);
  for (;;) {
    // acquire (all three): the sequence loads bracket the position load in this thread's order;
    // equal sequences mean the pair did not change in between (every CAS moves the sequence).
    // What the changing process wrote before its CAS is visible after these loads.
    const std::uint64_t s1 = std::atomic_ref<std::uint64_t>(w.second).load(std::memory_order_acquire);
    const std::uint64_t p = std::atomic_ref<std::uint64_t>(w.first).load(std::memory_order_acquire);  // acquire: see above
    const std::uint64_t s2 = std::atomic_ref<std::uint64_t>(w.second).load(std::memory_order_acquire);  // acquire: see above
    if (s1 == s2) return GroupPair{p, s1};
  }
}

// An entry's halves read separately, for tools on a read-only mapping: may be torn by a change
// in between; callers use it for statistics only. acquire: see load_cursor.
inline GroupPair load_pair_for_tools(const GroupPair& word) noexcept {
  auto& w = const_cast<GroupPair&>(word);
  const std::uint64_t a = std::atomic_ref<std::uint64_t>(w.first).load(std::memory_order_acquire);  // acquire: see above
  const std::uint64_t b = std::atomic_ref<std::uint64_t>(w.second).load(std::memory_order_acquire);  // acquire: see above
  return GroupPair{a, b};
}

}  // namespace shmbus::detail

namespace shmbus::detail {

// A tagged word whose tag only grows (GroupEntry::place and ::key, tagged by sequence): moves it
// to {tag, value} unless it already holds that tag or a later one. Every writer of one tag writes
// the same value, so which of them lands does not matter; a slow writer of an older tag changes
// nothing.
inline void store_forward(GroupPair& word, std::uint64_t tag, std::uint64_t value) noexcept {
  GroupPair seen = load_pair_for_tools(word);
  while (seen.first < tag) {
    if (cas_pair(word, seen, GroupPair{tag, value})) return;
  }
}

// The value of a forward-only tagged word if it holds `tag`. Bracketed like load_cursor (the tag
// only grows, so an unchanged tag around the value's load means the value is that tag's).
inline bool load_tagged(const GroupPair& word, std::uint64_t tag, std::uint64_t& value) noexcept {
  auto& w = const_cast<GroupPair&>(word);
  // acquire (all three): see load_cursor.
  const std::uint64_t t1 = std::atomic_ref<std::uint64_t>(w.first).load(std::memory_order_acquire);
  const std::uint64_t v = std::atomic_ref<std::uint64_t>(w.second).load(std::memory_order_acquire);  // acquire: see above
  const std::uint64_t t2 = std::atomic_ref<std::uint64_t>(w.first).load(std::memory_order_acquire);  // acquire: see above
  if (t1 != tag || t2 != tag) return false;
  value = v;
  return true;
}

// The tag of a lease's deadline (GroupEntry::deadline): the record's sequence and the lease word
// mixed, so that one member's identical lease words on two records of one entry, or two leases of
// one record, never share a tag.
constexpr std::uint64_t deadline_tag(std::uint64_t sequence, std::uint64_t lease) noexcept {
  return sequence ^ (lease * 0x9e3779b97f4a7c15ULL) ^ 0x5bd1e9955bd1e995ULL;
}

}  // namespace shmbus::detail

namespace shmbus::detail {

// Replaces a pair whatever it holds (a lease's deadline, written by the lease's holder).
inline void store_pair(GroupPair& word, GroupPair want) noexcept {
  GroupPair seen = load_pair_for_tools(word);
  while (!cas_pair(word, seen, want)) {
  }
}

}  // namespace shmbus::detail
