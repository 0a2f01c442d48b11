// The control segment: everything subscribers and tools write about a channel, kept apart from the
// data ring so that a drop subscriber can map the ring read-only. One per channel incarnation,
// named after the ring and the incarnation (control_object_name in ipc/channel.hpp).
// docs/architecture.md draws it.
//
// A fixed ControlHeader comes first; the subscriber slots, producer slots and latency histograms
// follow at offsets computed from the slot counts the creator chose (ChannelOptions), which the
// header declares. An opener checks every declared count, offset and the segment's size against
// control_layout() before it touches anything past the header (ipc/control_segment.hpp), and then
// reaches the arrays only through ControlRef, never by the header's values.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/latency_histogram.hpp"
#include "core/layout.hpp"

namespace shmbus::detail {

inline constexpr std::uint64_t kControlMagic = 0x4c52'5443'5342'4d48ULL;  // "HMBSCTRL"
// 2: the journal section, `spilled`. 3: byte counters, retired producers' totals, the
// per-subscriber end-to-end latency histograms. 4: slot counts chosen per channel, the arrays
// after the fixed header, the high-water marks and the block-slot hints. 5: the trust model
// (docs/security.md): the header's role, the readers' registry and the use lock as objects of
// their own; a build of version 4 would lock the ring and never see the registry.
inline constexpr std::uint32_t kControlVersion = 5;
// ChannelOptions::subscriber_slots and producer_slots: defaults and accepted ranges (1 to max).
inline constexpr std::uint32_t kDefaultSubscriberSlots = 64;
inline constexpr std::uint32_t kMaxSubscriberSlots = 4096;
inline constexpr std::uint32_t kDefaultProducerSlots = 32;
inline constexpr std::uint32_t kMaxProducerSlots = 1024;
inline constexpr std::size_t kSubscriberNameSize = 64;
inline constexpr std::size_t kJournalDirSize = 512;
// Set in ControlHeader::journal_owner while a journaler is writing journal_dir (the rest of the
// word is its pack_process()): readers treat the channel as having no journaler until it clears.
inline constexpr std::uint64_t kJournalClaiming = 1ULL << 63;

// What a segment in the control format is for (ControlHeader::role), so that one can never be
// passed off as the other: the channel's control segment, writable only by trusted processes and
// the only one producers scan, or the readers' registry, where readers without write access to
// the control segment register and which gates nobody (docs/security.md).
enum class ControlRole : std::uint32_t { control = 1, readers = 2 };

enum class SlotState : std::uint8_t {
  free = 0,
  claiming = 1,  // a process is filling the slot in; not yet gating
  active = 2,    // attached; gates the producers if its policy is block
  detached = 3,  // a named subscriber that closed cleanly; keeps its position for a restart
  evicted = 4,   // its process died and it stopped gating after its liveness timeout
  resuming = 5,  // a new process is taking over a named gating slot; it keeps gating meanwhile
};

// States in which a block subscriber's position bounds the producers.
constexpr bool gates(SlotState s) noexcept {
  return s == SlotState::active || s == SlotState::resuming;
}

// The owner word packs the owning pid with the state so one CAS changes both.
constexpr std::uint64_t owner_word(std::uint32_t pid, SlotState state) noexcept {
  return (std::uint64_t{pid} << 8) | static_cast<std::uint8_t>(state);
}
constexpr SlotState owner_state(std::uint64_t word) noexcept {
  return static_cast<SlotState>(word & 0xff);
}
constexpr std::uint32_t owner_pid(std::uint64_t word) noexcept {
  return static_cast<std::uint32_t>(word >> 8);
}

struct SubscriberSlot {
  // --- lines 0-1: identity, written while the slot is `claiming`, read by producers and tools ---
  std::atomic<std::uint64_t> owner;   // owner_word()
  std::uint32_t pid;
  std::uint8_t policy;                // shmbus::Policy
  std::uint8_t flags;                 // kSlotLatencyHistogram
  std::uint8_t reserved[2];
  std::uint64_t start_time;           // /proc/PID/stat field 22: pid + start time = one process
  std::int64_t attached_ns;           // CLOCK_REALTIME
  std::int64_t liveness_timeout_ns;
  char name[kSubscriberNameSize];      // NUL-terminated; empty for anonymous subscribers

  // --- line 2: written by the subscriber as it reads, read by producers (gating) and tools ---
  alignas(core::kCacheLine) std::atomic<std::uint64_t> position;  // next byte it needs
  std::atomic<std::uint64_t> next_sequence;
  std::atomic<std::uint64_t> received;
  std::atomic<std::uint64_t> lost;
  std::atomic<std::int64_t> heartbeat_ns;  // CLOCK_REALTIME, refreshed while it waits
  std::atomic<std::uint64_t> spilled;       // spill policy: records delivered from the journal

  // --- line 3: written by peers about this subscriber ---
  alignas(core::kCacheLine) std::atomic<std::uint64_t> evictions;
  std::atomic<std::int64_t> evicted_ns;
  // CLOCK_MONOTONIC when a peer first found the process dead (0: not seen dead). Shared, so the
  // liveness timeout runs from the first sighting whichever process looks next.
  std::atomic<std::int64_t> dead_since_ns;
};
static_assert(offsetof(SubscriberSlot, name) == 40);
static_assert(offsetof(SubscriberSlot, position) == 2 * core::kCacheLine);
static_assert(offsetof(SubscriberSlot, spilled) == 2 * core::kCacheLine + 40);
static_assert(offsetof(SubscriberSlot, evictions) == 3 * core::kCacheLine);
static_assert(sizeof(SubscriberSlot) == 4 * core::kCacheLine);

// SubscriberSlot::flags: the subscriber records its end-to-end latency in its histogram
// (ControlRef::latency_histogram, same index as the slot).
inline constexpr std::uint8_t kSlotLatencyHistogram = 1;

// A producer's registration. On multi-producer channels its in-flight claim bounds every other
// producer: nobody claims beyond in_flight + capacity, so a producer preempted between claim and
// commit is never lapped by the others and never writes into their records.
struct ProducerSlot {
  std::atomic<std::uint64_t> owner;  // owner_word(pid, active) or 0
  std::uint64_t start_time;          // /proc/PID/stat field 22
  // A lower bound of the oldest position this producer has claimed and not yet committed, or
  // kNoClaim. Stored before the claim's CAS, cleared after its last commit.
  std::atomic<std::uint64_t> in_flight;
  // Statistics for tools, stored by the owner after each commit (relaxed: nothing is ordered by
  // them). Folded into ControlHeader::retired_* when the slot is released.
  std::atomic<std::uint64_t> published;        // records committed
  std::int64_t attached_ns;
  std::atomic<std::uint64_t> published_bytes;  // payload bytes of those records
  std::uint64_t reserved[2];
};
static_assert(sizeof(ProducerSlot) == core::kCacheLine);
inline constexpr std::uint64_t kNoClaim = UINT64_MAX;

struct ControlHeader {
  // --- identity, written before the segment is published; never changed after ---
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t header_size;  // sizeof(ControlHeader)
  std::uint64_t layout_fingerprint;
  std::uint64_t incarnation;  // equals the ring's
  std::uint32_t slot_count;   // subscriber slots
  std::atomic<std::uint32_t> ready;  // release-stored last by the creator
  std::uint32_t producer_slot_count;
  std::uint32_t role;  // ControlRole
  // Where the arrays are and how large the segment is, as control_layout(slot_count,
  // producer_slot_count) computes them: an opener refuses a header whose values differ.
  std::uint64_t segment_size;
  std::uint64_t subscriber_slots_offset;
  std::uint64_t producer_slots_offset;
  std::uint64_t latency_offset;

  // --- bumped whenever the set of gating subscribers changes; producers re-scan on change ---
  alignas(core::kCacheLine) std::atomic<std::uint64_t> gate_epoch;
  // High-water marks: every slot ever taken has a lower index. A process raises the mark (by
  // CAS, it only grows) before it takes the slot, and takes the lowest free slot, so the marks
  // stay at the most slots ever used at once; scans stop there (see scan_gate_floor). Written at
  // registration only, which bumps gate_epoch anyway: sharing its line costs producers nothing.
  std::atomic<std::uint32_t> subscriber_slots_high_water;
  std::atomic<std::uint32_t> producer_slots_high_water;

  // --- channel counters, written on slow paths only ---
  alignas(core::kCacheLine) std::atomic<std::uint64_t> evictions;
  std::atomic<std::uint64_t> abandoned_repaired;  // sequences marked abandoned by repairers
  std::atomic<std::uint64_t> back_pressure_events;
  // What producers that have left (closed, or found dead) had published: the channel's totals are
  // these plus the live producer slots'. Added to by whoever frees the slot.
  std::atomic<std::uint64_t> retired_published;
  std::atomic<std::uint64_t> retired_bytes;

  // --- idle waiting: sleepers count themselves in, producers wake them through the futex word ---
  alignas(core::kCacheLine) std::atomic<std::uint32_t> waiters;
  std::atomic<std::uint32_t> wake_word;

  // --- block-slot hints: bit i of word i / 64 is set while subscriber slot i's latest
  // registrant chose the block policy. Set or cleared by that registrant only, while it holds the
  // slot and before its owner word says active; a slot left by a block subscriber keeps its bit
  // until a non-block one registers there. So every gating slot has its bit set, and
  // scan_gate_floor visits only those (still checking state and policy): drop subscribers cost
  // the producers' scan one bit each. ---
  alignas(core::kCacheLine) std::atomic<std::uint64_t> block_slots[kMaxSubscriberSlots / 64];

  // --- the journal: one journaler per channel records every message to files
  // (`shmbus record`). Written by the journaler only, through ipc/journal_link.hpp; read by
  // publishers (durability waits), spill subscribers (catch-up) and tools. ---
  // Identity, rewritten only when a journaler attaches: the owner word and the directory.
  // pack_process() of the attached journaler, | kJournalClaiming while it writes journal_dir;
  // 0 when none is attached. Taken by CAS (from 0 or from a dead process), then release-stored
  // without the claiming bit once journal_dir is written, so a reader that acquires the word
  // sees the whole directory.
  alignas(core::kCacheLine) std::atomic<std::uint64_t> journal_owner;
  // Seqlock over journal_dir: odd while a new journaler writes it. Readers copy the directory
  // between two loads of it and retry when they differ, so even the same process detaching and
  // re-attaching with another directory (same owner word) is never read torn.
  std::atomic<std::uint64_t> journal_dir_version;
  // The journal directory, an absolute path, NUL-terminated. Accessed only with atomic byte
  // loads and stores (std::atomic_ref), under journal_dir_version.
  char journal_dir[kJournalDirSize];
  // Progress, written by the journaler as its writes complete (its own line: it changes often
  // and is polled by publishers waiting for durability).
  // Every sequence <= journal_written is in the journal files (survives a crash of any process).
  // Release-stored after the journaler saw its write complete; a reader that acquires it and
  // then reads the files finds those records.
  alignas(core::kCacheLine) std::atomic<std::uint64_t> journal_written;
  // Every sequence <= journal_durable has also been fdatasync'ed (survives a power loss).
  // Release/acquire like journal_written. Never above journal_written.
  std::atomic<std::uint64_t> journal_durable;
  // CLOCK_REALTIME of the journaler's last progress report (relaxed: a statistic for tools).
  std::atomic<std::int64_t> journal_heartbeat_ns;

  // The arrays follow (ControlLayout): SubscriberSlot[slot_count], ProducerSlot[producer_slot_count],
  // then one core::LatencyHistogram per subscriber slot, written only by that slot's subscriber
  // when it asked for one (kSlotLatencyHistogram) and read by tools.
};
static_assert(offsetof(ControlHeader, slot_count) == 32);
static_assert(offsetof(ControlHeader, ready) == 36);
static_assert(offsetof(ControlHeader, segment_size) == 48);
static_assert(offsetof(ControlHeader, role) == 44);
static_assert(offsetof(ControlHeader, latency_offset) == 72);
static_assert(offsetof(ControlHeader, gate_epoch) == 128);
static_assert(offsetof(ControlHeader, subscriber_slots_high_water) == 136);
static_assert(offsetof(ControlHeader, producer_slots_high_water) == 140);
static_assert(offsetof(ControlHeader, evictions) == 192);
static_assert(offsetof(ControlHeader, waiters) == 256);
static_assert(offsetof(ControlHeader, block_slots) == 320);
static_assert(offsetof(ControlHeader, journal_owner) == 320 + kMaxSubscriberSlots / 8);
static_assert(offsetof(ControlHeader, journal_dir) == offsetof(ControlHeader, journal_owner) + 16);
static_assert(offsetof(ControlHeader, journal_written) ==
              offsetof(ControlHeader, journal_owner) + 9 * core::kCacheLine);
static_assert(sizeof(ControlHeader) ==
              offsetof(ControlHeader, journal_written) + core::kCacheLine);
static_assert(sizeof(ControlHeader) == 1472);
static_assert(offsetof(ProducerSlot, published_bytes) == 40);
static_assert(offsetof(SubscriberSlot, flags) == 13);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(core::LatencyHistogram) % core::kCacheLine == 0);
static_assert(alignof(core::LatencyHistogram) <= core::kCacheLine);

// Where a control segment's parts lie for given slot counts. Every array starts on a cache line
// (the header, both slot types and the histogram are whole lines); the segment is whole pages.
struct ControlLayout {
  std::uint32_t subscriber_slots = 0;
  std::uint32_t producer_slots = 0;
  std::uint64_t subscriber_slots_offset = 0;
  std::uint64_t producer_slots_offset = 0;
  std::uint64_t latency_offset = 0;
  std::uint64_t segment_size = 0;
  bool operator==(const ControlLayout&) const = default;
};

// Only for counts within 1..kMax*Slots (no overflow is possible then: the largest segment is
// about 33 MiB).
constexpr ControlLayout control_layout(std::uint32_t subscriber_slots,
                                       std::uint32_t producer_slots) noexcept {
  ControlLayout l;
  l.subscriber_slots = subscriber_slots;
  l.producer_slots = producer_slots;
  l.subscriber_slots_offset = sizeof(ControlHeader);
  l.producer_slots_offset =
      l.subscriber_slots_offset + std::uint64_t{subscriber_slots} * sizeof(SubscriberSlot);
  l.latency_offset = l.producer_slots_offset + std::uint64_t{producer_slots} * sizeof(ProducerSlot);
  const std::uint64_t end =
      l.latency_offset + std::uint64_t{subscriber_slots} * sizeof(core::LatencyHistogram);
  l.segment_size = (end + 4095) & ~std::uint64_t{4095};
  return l;
}
// The sizes docs/architecture.md states.
static_assert(control_layout(kDefaultSubscriberSlots, kDefaultProducerSlots).segment_size ==
              548864);
static_assert(control_layout(1024, kDefaultProducerSlots).segment_size == 8720384);
static_assert(control_layout(kMaxSubscriberSlots, kMaxProducerSlots).segment_size == 34934784);

// Stored in every control segment and compared by every opener: a digest of every size and
// offset of the fixed header and of the array elements (the counts are per channel, in the
// header, and checked against its size instead). Two builds that disagree on any of them refuse
// each other's segments.
constexpr std::uint64_t control_fingerprint() noexcept {
  constexpr std::uint64_t parts[] = {
      sizeof(ControlHeader),
      offsetof(ControlHeader, slot_count),
      offsetof(ControlHeader, ready),
      offsetof(ControlHeader, producer_slot_count),
      offsetof(ControlHeader, role),
      offsetof(ControlHeader, segment_size),
      offsetof(ControlHeader, subscriber_slots_offset),
      offsetof(ControlHeader, producer_slots_offset),
      offsetof(ControlHeader, latency_offset),
      offsetof(ControlHeader, gate_epoch),
      offsetof(ControlHeader, subscriber_slots_high_water),
      offsetof(ControlHeader, producer_slots_high_water),
      offsetof(ControlHeader, evictions),
      offsetof(ControlHeader, retired_bytes),
      offsetof(ControlHeader, waiters),
      offsetof(ControlHeader, wake_word),
      offsetof(ControlHeader, block_slots),
      offsetof(ControlHeader, journal_owner),
      offsetof(ControlHeader, journal_dir),
      offsetof(ControlHeader, journal_written),
      offsetof(ControlHeader, journal_heartbeat_ns),
      sizeof(SubscriberSlot),
      offsetof(SubscriberSlot, flags),
      offsetof(SubscriberSlot, name),
      offsetof(SubscriberSlot, position),
      offsetof(SubscriberSlot, spilled),
      offsetof(SubscriberSlot, evictions),
      offsetof(SubscriberSlot, dead_since_ns),
      sizeof(ProducerSlot),
      offsetof(ProducerSlot, in_flight),
      offsetof(ProducerSlot, published_bytes),
      sizeof(core::LatencyHistogram),
      core::kLatencyBuckets,
      kMaxSubscriberSlots,
      kControlVersion,
  };
  return core::fingerprint(parts);
}

}  // namespace shmbus::detail
