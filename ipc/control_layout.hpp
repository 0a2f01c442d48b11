// The control segment: everything subscribers and tools write about a channel, kept apart from the
// data ring so that a drop subscriber can map the ring read-only. One per channel incarnation,
// named after the ring and the incarnation (control_object_name in ipc/channel.hpp).
// docs/architecture.md draws it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/latency_histogram.hpp"
#include "core/layout.hpp"

namespace shmbus::detail {

inline constexpr std::uint64_t kControlMagic = 0x4c52'5443'5342'4d48ULL;  // "HMBSCTRL"
// 2: the journal section, `spilled`. 3: byte counters, retired producers' totals, the
// per-subscriber end-to-end latency histograms.
inline constexpr std::uint32_t kControlVersion = 3;
inline constexpr std::uint32_t kSubscriberSlots = 64;
inline constexpr std::uint32_t kProducerSlots = 32;
inline constexpr std::size_t kSubscriberNameSize = 64;
inline constexpr std::size_t kJournalDirSize = 512;
// Set in ControlHeader::journal_owner while a journaler is writing journal_dir (the rest of the
// word is its pack_process()): readers treat the channel as having no journaler until it clears.
inline constexpr std::uint64_t kJournalClaiming = 1ULL << 63;

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
// (ControlHeader::latency, same index as the slot).
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
  // --- identity, written before the segment is published ---
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t header_size;
  std::uint64_t layout_fingerprint;
  std::uint64_t incarnation;  // equals the ring's
  std::uint32_t slot_count;
  std::atomic<std::uint32_t> ready;  // release-stored last by the creator

  // --- bumped whenever the set of gating subscribers changes; producers re-scan on change ---
  alignas(core::kCacheLine) std::atomic<std::uint64_t> gate_epoch;

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

  alignas(core::kCacheLine) SubscriberSlot slots[kSubscriberSlots];
  ProducerSlot producers[kProducerSlots];

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

  // --- end-to-end latency histograms, one per subscriber slot, written only by that
  // slot's subscriber when it asked for one (kSlotLatencyHistogram); read by tools ---
  alignas(core::kCacheLine) core::LatencyHistogram latency[kSubscriberSlots];
};
static_assert(offsetof(ControlHeader, gate_epoch) == 64);
static_assert(offsetof(ControlHeader, evictions) == 128);
static_assert(offsetof(ControlHeader, waiters) == 192);
static_assert(offsetof(ControlHeader, slots) == 256);
static_assert(offsetof(ControlHeader, producers) ==
              256 + kSubscriberSlots * sizeof(SubscriberSlot));
static_assert(offsetof(ControlHeader, journal_owner) ==
              offsetof(ControlHeader, producers) + kProducerSlots * sizeof(ProducerSlot));
static_assert(offsetof(ControlHeader, journal_dir) == offsetof(ControlHeader, journal_owner) + 16);
static_assert(offsetof(ControlHeader, journal_written) ==
              offsetof(ControlHeader, journal_owner) + 9 * core::kCacheLine);
static_assert(offsetof(ControlHeader, latency) ==
              offsetof(ControlHeader, journal_written) + core::kCacheLine);
static_assert(sizeof(ControlHeader) ==
              offsetof(ControlHeader, latency) + kSubscriberSlots * sizeof(core::LatencyHistogram));
static_assert(offsetof(ProducerSlot, published_bytes) == 40);
static_assert(offsetof(SubscriberSlot, flags) == 13);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

// Stored in every control segment and compared by every opener. Its formula is part of the
// format: segments of running channels carry this value, so it stays bit for bit what earlier
// builds of this layout version computed. The next control layout version (a new kControlVersion)
// computes it with core::fingerprint, as the ring does.
constexpr std::uint64_t control_fingerprint() noexcept {
  return (std::uint64_t{sizeof(ControlHeader)} << 32) ^ (sizeof(SubscriberSlot) << 16) ^
         (offsetof(SubscriberSlot, position) << 8) ^ (offsetof(ControlHeader, producers) << 40) ^
         (sizeof(ProducerSlot) << 24) ^ (offsetof(SubscriberSlot, spilled) << 56) ^
         (offsetof(ControlHeader, journal_owner) << 12) ^
         (offsetof(ControlHeader, journal_written) << 4) ^
         (offsetof(ControlHeader, latency) << 20) ^ (sizeof(core::LatencyHistogram) << 48) ^
         (offsetof(ControlHeader, retired_bytes) << 2) ^ kControlVersion;
}

inline constexpr std::size_t kControlSegmentSize = (sizeof(ControlHeader) + 4095) & ~std::size_t{4095};

}  // namespace shmbus::detail
