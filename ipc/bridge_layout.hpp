// The shared-memory layout of a NATS JetStream bridge's object (ipc/bridge_segment.hpp names it):
// one per bridge of a channel incarnation, written only by the bridge process that owns it, read
// by `shmbus stat` (read_bridge_stats) through read-only mappings.
//
//   BridgeHeader  identity (immutable once ready), the owner line, the counters, then seqlocked
//                 records: the state and last error, the settings, bridge in's applied and intent
//                 positions (two copies each, so that a kill -9 mid-write leaves the other intact)
//
// Seqlock protocol (seqlock_write / seqlock_read below): the one writer makes the sequence word
// odd, stores the data words, makes it even again; a reader copies the data words between two
// loads of the sequence word and keeps the copy only if both loads saw the same even value. Every
// data word is itself an atomic (relaxed), so a reader racing the writer reads stale or new words,
// never undefined bytes, and the sequence check throws the mixed copy away.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/layout.hpp"

namespace shmbus::detail {

inline constexpr std::uint64_t kBridgeMagic = 0x4744'4952'4253'4d48ULL;  // "HMSBRIDG"
inline constexpr std::uint32_t kBridgeVersion = 1;
inline constexpr std::uint32_t kBridgeReady = 0x44475242;  // "BRGD"
inline constexpr std::size_t kBridgeStreamSize = 64;       // JetStream names: at most 63 here
inline constexpr std::size_t kBridgeTextSize = 256;        // last error, subject, url
inline constexpr std::size_t kBridgeHostSize = 64;

// `N` data words behind a sequence word. Only the owner process writes.
template <std::size_t N>
struct SeqlockWords {
  std::atomic<std::uint64_t> seq;  // odd while the owner writes the words
  std::atomic<std::uint64_t> words[N];
};

// The writer's side: only the bridge process that owns the object calls it.
template <std::size_t N>
void seqlock_write(SeqlockWords<N>& r, const std::uint64_t (&values)[N]) noexcept {
  // relaxed: the owner is the only writer of `seq`; it reads back its own last store (or, just
  // after taking the object over, the dead owner's, which the ownership CAS made visible).
  const std::uint64_t before = r.seq.load(std::memory_order_relaxed);
  // Odd whatever a dead writer left (an odd `before` stays odd two steps on).
  const std::uint64_t begin = (before + 1) | 1;
  // relaxed: ordered before the data stores by the release fence below.
  r.seq.store(begin, std::memory_order_relaxed);
  // release fence: a reader that sees any data word stored below (and then runs its acquire
  // fence) also sees `begin` or later in its second load of `seq`, so it discards the copy.
  std::atomic_thread_fence(std::memory_order_release);
  for (std::size_t i = 0; i < N; ++i) {
    r.words[i].store(values[i], std::memory_order_relaxed);  // relaxed: published by `seq` below
  }
  // release: a reader that acquires this even value sees every data word stored above.
  r.seq.store(begin + 1, std::memory_order_release);
}

// The reader's side: true with a consistent copy in `out`, false when the writer kept changing
// the record (or died writing it: the sequence stays odd) for `attempts` tries.
template <std::size_t N>
bool seqlock_read(const SeqlockWords<N>& r, std::uint64_t (&out)[N], int attempts) noexcept {
  for (int i = 0; i < attempts; ++i) {
    // acquire: pairs with the writer's release of this even value; the words read after it are
    // at least that new.
    const std::uint64_t first = r.seq.load(std::memory_order_acquire);
    if ((first & 1) != 0) continue;
    for (std::size_t w = 0; w < N; ++w) {
      out[w] = r.words[w].load(std::memory_order_relaxed);  // relaxed: checked by `seq` below
    }
    // acquire fence: the second load of `seq` below sees any writer's odd store that preceded a
    // data word we read (pairs with the writer's release fence).
    std::atomic_thread_fence(std::memory_order_acquire);
    // relaxed: ordered after the data loads by the fence above.
    if (r.seq.load(std::memory_order_relaxed) == first) return true;
  }
  return false;
}

// The state and the last error: words[0] = state | length << 8, then the text (NUL-padded).
inline constexpr std::size_t kBridgeTextWords = 1 + kBridgeTextSize / 8;
using BridgeText = SeqlockWords<kBridgeTextWords>;

// The settings: words[0] = subject length | url length << 16 | host length << 32, then the three
// texts, each padded to its full size.
inline constexpr std::size_t kBridgeSettingsWords = 1 + (2 * kBridgeTextSize + kBridgeHostSize) / 8;
using BridgeSettingsText = SeqlockWords<kBridgeSettingsWords>;

// Bridge in's position: what it applied (or is about to commit) and where that came from.
struct BridgeInPosition {
  std::uint64_t stream_seq = 0;          // the JetStream stream sequence of the message
  std::uint64_t stream_created_ns = 0;   // the stream's creation time (a re-created stream resets)
  std::uint64_t origin_incarnation = 0;  // the origin channel's incarnation
  std::uint64_t origin_seq = 0;          // the record's sequence on the origin channel
  std::uint64_t local_seq = 0;           // its sequence on this channel
  friend bool operator==(const BridgeInPosition&, const BridgeInPosition&) = default;
};
// words[0] = version (0: never written or invalidated), words[1..5] the position. Two copies: each
// write goes to copy[version & 1], so the copy written before it stays whole whatever happens to
// this write; readers take the highest version among the consistent copies.
inline constexpr std::size_t kBridgePositionWords = 6;
struct BridgePositionRecord {
  SeqlockWords<kBridgePositionWords> copy[2];
  std::uint64_t reserved[2];
};
static_assert(sizeof(BridgePositionRecord) == 2 * sizeof(SeqlockWords<kBridgePositionWords>) + 16);

// What the bridge counts. Each is stored only by the owning bridge (relaxed: statistics; nothing
// is published through them) and loaded by readers (relaxed).
struct BridgeCounters {
  std::atomic<std::uint64_t> published_or_applied;  // out: acknowledged; in: committed locally
  std::atomic<std::uint64_t> acked_through;         // out: every sequence up to it is stored
  std::atomic<std::uint64_t> in_flight;             // out: published, unacknowledged
  std::atomic<std::uint64_t> window;                // out: the most in flight allowed
  std::atomic<std::uint64_t> resends;
  std::atomic<std::uint64_t> recoveries;
  std::atomic<std::uint64_t> gaps;           // GAP records published (out) or laid out (in)
  std::atomic<std::uint64_t> gap_sequences;  // the sequences they cover
  std::atomic<std::uint64_t> duplicates;     // in: redelivered and already applied
  std::atomic<std::uint64_t> own_skipped;    // in: from this host, not applied
  std::atomic<std::uint64_t> stream_gaps;    // in: sequences the stream discarded
  std::atomic<std::uint64_t> invalid;        // in: messages without valid headers
  std::atomic<std::uint64_t> lag_records;
  std::atomic<std::uint64_t> lag_ns;
  std::atomic<std::uint64_t> head_sequence;       // out: the channel's last claimed sequence
  std::atomic<std::uint64_t> origin_incarnation;  // in: of the last applied record
  std::atomic<std::uint64_t> origin_seq;          // in: of the last applied record
  std::atomic<std::uint64_t> stream_seq;          // in: of the last applied record
  std::uint64_t reserved[6];
};
static_assert(sizeof(BridgeCounters) == 3 * core::kCacheLine);

struct BridgeHeader {
  // --- identity: written before `ready`, never changed after ---
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t header_size;
  std::uint64_t layout_fingerprint;
  std::uint64_t incarnation;  // the channel's
  std::uint64_t segment_size;
  std::int64_t created_ns;  // CLOCK_REALTIME
  std::uint8_t role;        // BridgeRole
  std::uint8_t reserved0[7];
  char stream[kBridgeStreamSize];    // NUL-terminated; the object's name ends with it
  std::atomic<std::uint32_t> ready;  // release-stored last by the creator
  std::uint32_t reserved1;

  // --- the owner: the bridge process using the object (fencing), and its sign of life ---
  // pack_process(pid, start time) of the owner; 0: none. Changed only by CAS (acq_rel).
  alignas(core::kCacheLine) std::atomic<std::uint64_t> owner;
  std::atomic<std::int64_t> heartbeat_ns;  // CLOCK_REALTIME, relaxed: a statistic
  std::atomic<std::int64_t> owned_ns;      // CLOCK_REALTIME when the owner took it, relaxed
  std::uint64_t reserved2[5];

  alignas(core::kCacheLine) BridgeCounters counters;
  alignas(core::kCacheLine) BridgeText text;
  alignas(core::kCacheLine) BridgeSettingsText settings;
  alignas(core::kCacheLine) BridgePositionRecord applied;
  alignas(core::kCacheLine) BridgePositionRecord intent;
};
static_assert(offsetof(BridgeHeader, stream) == 56);
static_assert(offsetof(BridgeHeader, ready) == 56 + kBridgeStreamSize);
static_assert(offsetof(BridgeHeader, owner) == 2 * core::kCacheLine);
static_assert(offsetof(BridgeHeader, counters) == 3 * core::kCacheLine);
static_assert(sizeof(BridgeHeader) % core::kCacheLine == 0);

constexpr std::uint64_t bridge_segment_size() noexcept {
  return (sizeof(BridgeHeader) + 4095) & ~std::uint64_t{4095};
}

constexpr std::uint64_t bridge_layout_fingerprint() noexcept {
  constexpr std::uint64_t parts[] = {
      sizeof(BridgeHeader),
      offsetof(BridgeHeader, owner),
      offsetof(BridgeHeader, counters),
      offsetof(BridgeHeader, text),
      offsetof(BridgeHeader, settings),
      offsetof(BridgeHeader, applied),
      offsetof(BridgeHeader, intent),
      sizeof(BridgeCounters),
      kBridgeTextWords,
      kBridgeSettingsWords,
      kBridgePositionWords,
      kBridgeVersion,
  };
  return core::fingerprint(parts);
}

}  // namespace shmbus::detail
