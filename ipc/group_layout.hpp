// The shared-memory layout of one consumer group: one object per group and channel incarnation
// (group_object_name in ipc/group_segment.hpp), created by the group's first member. docs/groups.md
// describes the protocol over these bytes; every invariant it states is about the words below.
//
//   GroupHeader   identity and settings (immutable once ready), then three lines of shared words:
//                 the dispatch cursor, the retirement floor, the counters
//   GroupMember[max members]   one per member process, 128 bytes
//   GroupEntry[window]         one per record between the floor and the dispatch cursor, 64 bytes,
//                              record `s` at index s % window
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/layout.hpp"

namespace shmbus::detail {

inline constexpr std::uint64_t kGroupMagic = 0x5055'4f52'4753'4d48ULL;  // "HMSGROUP"
inline constexpr std::uint32_t kGroupVersion = 1;
inline constexpr std::uint32_t kMaxGroupMembers = 64;
inline constexpr std::uint32_t kMinGroupWindow = 64;
inline constexpr std::uint32_t kMaxGroupWindow = 1U << 20;
inline constexpr std::uint32_t kMaxGroupAttempts = 1000;
inline constexpr std::size_t kGroupNameSize = 64;
inline constexpr std::size_t kGroupChannelNameSize = 128;

// A 16-byte pair changed only as a whole, by a 16-byte compare-and-swap (lock cmpxchg16b, a full
// barrier). Both halves are also read alone with acquire loads (see group_words.hpp).
struct alignas(16) GroupPair {
  std::uint64_t first;
  std::uint64_t second;
};
static_assert(sizeof(GroupPair) == 16);

// The lease word of an entry: what the group knows of the record it holds. Bits:
//   0-2 state, 3-5 why it was taken back (orphaned only), 8-15 member index, 16-31 attempts
//   (deliveries so far), 32-63 the token of the membership that holds or last held it.
enum class EntryState : std::uint8_t {
  none = 0,           // never used (the segment starts zeroed)
  in_flight = 1,      // delivered to a member; expires at deadline_ns
  pinned = 2,         // delivered and pinned (GroupConsumer::pin): expires only with its member
  orphaned = 3,       // taken back; waits for a member to take it (or the dead-letter channel)
  acked = 4,          // retired: done
  dead_lettered = 5,  // retired: sent to the dead-letter channel
  lost = 6,           // retired: never deliverable (an abandoned claim, a record lapped)
};
constexpr bool retired(EntryState s) noexcept {
  return s == EntryState::acked || s == EntryState::dead_lettered || s == EntryState::lost;
}
enum class OrphanReason : std::uint8_t {
  none = 0,
  ack_timeout = 1,
  member_died = 2,
  member_left = 3,
  nacked = 4,
};

struct Lease {
  EntryState state = EntryState::none;
  OrphanReason reason = OrphanReason::none;
  std::uint32_t member = 0;
  std::uint32_t attempts = 0;
  std::uint32_t token = 0;
};
constexpr std::uint64_t pack_lease(const Lease& l) noexcept {
  return static_cast<std::uint64_t>(l.state) | (static_cast<std::uint64_t>(l.reason) << 3) |
         (std::uint64_t{l.member & 0xff} << 8) | (std::uint64_t{l.attempts & 0xffff} << 16) |
         (std::uint64_t{l.token} << 32);
}
constexpr Lease unpack_lease(std::uint64_t w) noexcept {
  return Lease{static_cast<EntryState>(w & 7), static_cast<OrphanReason>((w >> 3) & 7),
               static_cast<std::uint32_t>((w >> 8) & 0xff),
               static_cast<std::uint32_t>((w >> 16) & 0xffff), static_cast<std::uint32_t>(w >> 32)};
}
// A lease word no writer produces: an unknown state or reason, or a member index out of range.
constexpr bool plausible_lease(std::uint64_t w) noexcept {
  const Lease l = unpack_lease(w);
  return (w & 7) <= 6 && ((w >> 3) & 7) <= 4 && ((w >> 6) & 3) == 0 && l.member < kMaxGroupMembers;
}

// One record between the floor and the dispatch cursor. Every word is a pair whose first half
// says which record (or which lease) the second half belongs to, so a slow member writing about a
// record the entry no longer holds cannot mislead a reader: it checks the tag.
struct GroupEntry {
  // {sequence, lease word}: the record this entry holds and what became of it; changed only by
  // 16-byte CAS. sequence 0: never used.
  GroupPair word;
  // {sequence, ring position of that record}. Written (by CAS, only ever to a higher sequence) by
  // every member that tries to claim the entry, before its claiming CAS: all of them write the
  // same value for one sequence, and once a sequence is claimed its position is here.
  GroupPair place;
  // {sequence, key_hash() of its key (0: none)}: keyed groups; written like `place`.
  GroupPair key;
  // {lease word, CLOCK_MONOTONIC when that lease expires}: written by the lease's holder after it
  // won it (or, for a redelivery, by the member taking it). A deadline whose tag is not the
  // entry's current lease word is not yet written for it: the lease has not expired.
  GroupPair deadline;
};
static_assert(sizeof(GroupEntry) == 64);

// A record key's hash for the per-key order of keyed groups: FNV-1a over its bytes, with the low
// bit set so that no key hashes to 0 (no key). Two keys with one hash are ordered as one key
// (never wrong, only less parallel); at 64 bits that is as rare as it gets.
constexpr std::uint64_t key_hash(const std::byte* key, std::size_t length) noexcept {
  if (key == nullptr || length == 0) return 0;
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < length; ++i) {
    h ^= static_cast<std::uint8_t>(key[i]);
    h *= 0x100000001b3ULL;
  }
  return h | 1;
}

// The member word: the token of the membership holding the slot (0: none), its process's pid
// (so that a slot still `joining` can be judged by it) and its state.
enum class MemberState : std::uint8_t {
  free = 0,
  joining = 1,  // being filled in by its process
  active = 2,
  leaving = 3,  // its process is giving its records back and closing its gate
};
constexpr std::uint64_t member_word(std::uint32_t token, MemberState s,
                                    std::uint32_t pid = 0) noexcept {
  return (std::uint64_t{token} << 32) | (std::uint64_t{pid & 0xffffff} << 8) |
         static_cast<std::uint8_t>(s);
}
constexpr MemberState member_state(std::uint64_t w) noexcept {
  return static_cast<MemberState>(w & 0xff);
}
constexpr std::uint32_t member_token(std::uint64_t w) noexcept {
  return static_cast<std::uint32_t>(w >> 32);
}
constexpr std::uint32_t member_pid(std::uint64_t w) noexcept {
  return static_cast<std::uint32_t>((w >> 8) & 0xffffff);
}

struct GroupMember {
  // --- line 0: identity, written while joining, read by peers and tools ---
  std::atomic<std::uint64_t> word;  // member_word(); CAS
  std::uint32_t pid;
  std::uint32_t control_slot;  // the index of its gating subscriber slot in the control segment
  std::uint64_t start_time;    // /proc/PID/stat field 22
  std::int64_t joined_ns;      // CLOCK_REALTIME
  // Peers raising this member's gate (see raise_gates in group_housekeeping.cpp): the leaving
  // member waits for it to drop to zero before it gives its subscriber slot up.
  std::atomic<std::uint32_t> raisers;
  std::uint32_t reserved0;
  std::atomic<std::int64_t> heartbeat_ns;  // CLOCK_REALTIME of its last poll or wait
  std::uint64_t reserved1[2];
  // --- line 1: statistics, written by the member (relaxed) and read by tools ---
  alignas(core::kCacheLine) std::atomic<std::uint64_t> delivered;
  std::atomic<std::uint64_t> acked;
  std::atomic<std::uint64_t> nacked;
  std::atomic<std::uint64_t> redelivered;
  std::atomic<std::uint64_t> fenced;
  std::atomic<std::uint64_t> held;
  std::uint64_t reserved2[2];
};
static_assert(sizeof(GroupMember) == 2 * core::kCacheLine);

struct GroupHeader {
  // --- identity and settings: written before `ready`, never changed after ---
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t header_size;
  std::uint64_t layout_fingerprint;
  std::uint64_t incarnation;  // the channel's
  std::uint64_t segment_size;
  std::uint32_t window;       // entries, a power of two
  std::uint32_t max_members;  // kMaxGroupMembers
  std::int64_t ack_timeout_ns;
  std::uint32_t max_attempts;
  std::uint8_t policy;  // shmbus::Policy
  std::uint8_t keyed;
  std::uint16_t reserved0;
  std::int64_t created_ns;
  // StartFrom::sequence: records below it are retired unseen (the cursors start at a record
  // boundary at or before it). 0 otherwise.
  std::uint64_t start_sequence;
  char group[kGroupNameSize];                       // NUL-terminated
  char dead_letter_channel[kGroupChannelNameSize];  // NUL-terminated
  std::atomic<std::uint32_t> ready;  // release-stored last by the creator
  std::uint32_t reserved1;

  // --- the dispatch cursor {position, sequence}: the next record to hand out and where it lies
  // (or a padding record before it). Every change moves the sequence forward. ---
  alignas(core::kCacheLine) GroupPair dispatch;
  // --- the floor {position, sequence}: every sequence below it is retired; the position is at
  // or before that record. The group's gate: member slots are raised to it. ---
  alignas(core::kCacheLine) GroupPair floor;
  // --- counters and housekeeping, written on slow paths ---
  alignas(core::kCacheLine) std::atomic<std::uint64_t> acked;
  std::atomic<std::uint64_t> redelivered;
  std::atomic<std::uint64_t> dead_lettered;
  std::atomic<std::uint64_t> lost;
  std::atomic<std::uint64_t> fenced;
  std::atomic<std::uint64_t> orphaned;       // entries in state orphaned now
  std::atomic<std::uint64_t> next_token;     // the last membership token handed out
  std::atomic<std::int64_t> last_sweep_ns;   // CLOCK_MONOTONIC of the last housekeeping pass
  // The arrays follow: GroupMember[max_members] at members_offset(), GroupEntry[window] after.
};
inline constexpr std::uint32_t kGroupReady = 0x50524744;  // "DGRP"
static_assert(offsetof(GroupHeader, group) == 80);
static_assert(offsetof(GroupHeader, ready) == 80 + kGroupNameSize + kGroupChannelNameSize);
static_assert(offsetof(GroupHeader, dispatch) == 5 * core::kCacheLine);
static_assert(offsetof(GroupHeader, floor) == 6 * core::kCacheLine);
static_assert(offsetof(GroupHeader, acked) == 7 * core::kCacheLine);
static_assert(sizeof(GroupHeader) == 8 * core::kCacheLine);

constexpr std::uint64_t group_members_offset() noexcept { return sizeof(GroupHeader); }
constexpr std::uint64_t group_entries_offset() noexcept {
  return group_members_offset() + sizeof(GroupMember) * kMaxGroupMembers;
}
constexpr std::uint64_t group_segment_size(std::uint32_t window) noexcept {
  const std::uint64_t bytes = group_entries_offset() + sizeof(GroupEntry) * std::uint64_t{window};
  return (bytes + 4095) & ~std::uint64_t{4095};
}

constexpr std::uint64_t group_layout_fingerprint() noexcept {
  constexpr std::uint64_t parts[] = {
      sizeof(GroupHeader),         offsetof(GroupHeader, dispatch),
      offsetof(GroupHeader, floor), offsetof(GroupHeader, acked),
      sizeof(GroupMember),         offsetof(GroupMember, delivered),
      sizeof(GroupEntry),          offsetof(GroupEntry, place),
      offsetof(GroupEntry, key),          offsetof(GroupEntry, deadline),
      kMaxGroupMembers,            kGroupVersion,
  };
  return core::fingerprint(parts);
}

}  // namespace shmbus::detail
