// The sequenced ring: claim/commit for producers, poll for readers, over any memory region the
// caller maps. No OS calls here: time and the gating floor come from the caller.
//
// Thread and process safety, the invariants everything below relies on:
//  1. Space is claimed only by a 16-byte CAS of RingHeader::tail {position, next_sequence}; so the
//     position order of records is their sequence order, and a claimed range belongs to exactly one
//     producer until the ring laps it.
//  2. A record's fields are written before its commit word, and the commit word equals
//     commit_word(key, position, kStateCommitted) only once they are final (release store; readers
//     acquire-load it). A stale header (older lap, older incarnation) never has that value.
//  3. A producer never writes into [E - capacity, E) for a claim ending at E unless every gating
//     reader's position is >= E - capacity (the caller's gate floor). Non-gating readers are never
//     waited for: they copy, then check the tail, and discard what may have been overwritten.
//  4. Every length, type and sequence read from the ring is validated before use; a bad value is
//     reported as corruption and never indexes memory outside the data area.
//
// Hot path: try_claim, commit, poll_inplace and poll_copy allocate nothing, take no lock and make
// no system call. tests/core/hot_path_test.cpp checks this by counting syscalls and allocations.
#pragma once

#include <immintrin.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>

#include "layout.hpp"
#include "ring_ref.hpp"

namespace shmbus::core {

struct RingParams {
  std::uint64_t capacity = 0;  // power of two, kMinCapacity..kMaxCapacity
  std::uint32_t max_message = 0;
  std::uint64_t incarnation = 0;
  std::int64_t created_ns = 0;
  std::uint32_t creator_pid = 0;
  std::uint64_t creator_start_time = 0;
  const char* name = "";
  bool single_producer = false;
};

// Checks params; returns a message naming what is wrong, or nothing.
std::optional<std::string> check_params(const RingParams& params);

// Writes a fresh header into `base` (at least ring_segment_size(capacity) bytes, zero-filled) and
// marks it ready. Call before the region is visible to anybody else.
void format_ring(void* base, const RingParams& params);

// Validates a mapped segment of `size` bytes before anything in it is used: magic, version,
// layout fingerprint, capacity and size agreement, ready marker. Returns a message that names what
// differs (expected and found), or nothing when the segment is usable.
std::optional<std::string> check_ring(const void* base, std::size_t size);

enum class ClaimStatus : std::uint8_t {
  ok,
  back_pressured,  // a gating reader has not freed the space yet; nothing was claimed
  too_large,       // payload above max_message; nothing was claimed
  corrupt,         // the claim word holds a position no writer produces; nothing was claimed
};

enum class CommitStatus : std::uint8_t {
  ok,
  abandoned,  // a peer marked this claim abandoned (the producer stalled past the timeout)
};

struct ClaimTicket {
  std::byte* payload = nullptr;
  std::uint32_t length = 0;
  std::uint64_t position = 0;  // of the record header
  std::uint64_t sequence = 0;
  std::uint64_t start = 0;     // where the claim starts: the padding, if any, else the record
  std::uint64_t end = 0;       // position after the record
  std::int64_t timestamp_ns = 0;  // the claim's time, for commit_with_header() and abandon()
  // data, or tagged when the caller lays a tag (TagPrefix and key) at the start of the payload
  // (write_tag); `length` then counts the tag too.
  RecordType type = RecordType::data;
};

// Lays a tag at `at` (tag_size(key.size()) bytes): the prefix, the key and its zero padding.
// The caller has checked key.size() <= kMaxKeyLength.
inline void write_tag(std::byte* at, std::span<const std::byte> key,
                      std::uint16_t message_type) noexcept {
  const TagPrefix prefix{static_cast<std::uint16_t>(key.size()), message_type, 0};
  std::memcpy(at, &prefix, sizeof prefix);
  const std::uint32_t tag = tag_size(static_cast<std::uint32_t>(key.size()));
  // The padding first, as one word over the tag's last 8 bytes; the key then overwrites its part.
  if (tag > sizeof prefix) std::memset(at + tag - kTagAlignment, 0, kTagAlignment);
  if (!key.empty()) std::memcpy(at + sizeof prefix, key.data(), key.size());
}

class RingWriter {
 public:
  RingWriter() = default;
  // `exclusive`: this writer is the channel's only producer (the caller enforces it), so a claim
  // is a plain atomic store of the tail instead of a compare-and-swap.
  RingWriter(RingRef ring, std::uint16_t producer_tag, bool exclusive = false) noexcept;

  // Claims space for `length` payload bytes if the claim ends within gate_floor + capacity
  // (gate_floor: the lowest position a gating reader still needs; UINT64_MAX when none gates).
  // Nothing is written yet: the caller may still wait for a gating reader that registered while
  // it claimed, then calls write_header(), writes the payload and commits.
  // Inline, like begin() and commit_record(): they are the whole per-message cost of a producer.
  [[nodiscard]] ClaimStatus try_claim(std::uint32_t length, std::uint64_t gate_floor,
                                      ClaimTicket& out) noexcept {
    return exclusive_ ? try_claim_as<true>(length, gate_floor, out)
                      : try_claim_as<false>(length, gate_floor, out);
  }
  // The same, for a caller that knows which kind of writer this is (it built it) and keeps one
  // straight path per kind.
  template <bool kExclusive>
  [[nodiscard]] [[gnu::always_inline]] ClaimStatus try_claim_as(std::uint32_t length,
                                                                std::uint64_t gate_floor,
                                                                ClaimTicket& out) noexcept {
    if (length > ring_.max_message) [[unlikely]] return ClaimStatus::too_large;
    const std::uint64_t frame = frame_size(length);
    std::uint64_t position, sequence, pad;
    const ClaimStatus st = reserve<kExclusive>(frame, 1, gate_floor, position, sequence, pad);
    if (st != ClaimStatus::ok) [[unlikely]] return st;
    out.position = position + pad;
    out.payload = reinterpret_cast<std::byte*>(ring_.header_at(out.position) + 1);
    out.length = length;
    out.sequence = sequence;
    out.start = position;
    out.end = out.position + frame;
    return ClaimStatus::ok;
  }

  // Claims several records as one claim: one tail update, consecutive sequences, no padding
  // between them (at most a quarter lap in all). Fills out[0..lengths.size()); each ticket is
  // then written and committed like a single one.
  [[nodiscard]] ClaimStatus try_claim_batch(std::span<const std::uint32_t> lengths,
                                            std::uint64_t gate_floor,
                                            std::span<ClaimTicket> out) noexcept;

  // Writes the padding (if the claim has any) and the record header, marked pending.
  void write_header(const ClaimTicket& ticket, std::int64_t now_ns) noexcept;

  // Publishes the record: one release store. Reports if a peer repaired the claim meanwhile.
  [[nodiscard]] CommitStatus commit(const ClaimTicket& ticket) noexcept;

  // The low-latency alternative to write_header + commit. A reader waiting for the record spins
  // on its header line; writing the header at claim time and the commit word later moves that line
  // to the producer twice. begin() writes only the padding (if any); commit_with_header() writes
  // the header and its commit word together, so the line moves once. The claim carries no pending
  // header meanwhile: a repairer infers its extent (ring_repair.hpp).
  void begin(const ClaimTicket& ticket, std::int64_t now_ns) noexcept {
    if (ticket.position != ticket.start) [[unlikely]] {
      write_padding(ticket.start, ticket.position - ticket.start, now_ns);
    }
    note_checkpoint(ticket.start, ticket.end, ticket.sequence + 1);
  }
  [[nodiscard]] CommitStatus commit_with_header(const ClaimTicket& ticket,
                                                std::int64_t timestamp_ns) noexcept {
    return commit_record(ticket.position, ticket.length, ticket.sequence, timestamp_ns,
                         ticket.type);
  }
  // The same for a claim known by the fields its header needs: a caller that keeps its claims in
  // its own form passes them in registers instead of building a ticket in memory.
  [[nodiscard]] CommitStatus commit_record(std::uint64_t position, std::uint32_t length,
                                           std::uint64_t sequence, std::int64_t timestamp_ns,
                                           RecordType type = RecordType::data) noexcept {
    // acquire: pairs with the repairer's release of repaired_through, which it stores before it
    // rewrites any header; without a pending header this is the only way to learn of a repair.
    if (ring_.header->repaired_through.load(std::memory_order_acquire) > position) [[unlikely]] {
      return CommitStatus::abandoned;
    }
    fill_header(position, length, sequence, type, timestamp_ns);
    // release: the payload and the fields above are visible to a reader that acquires this.
    ring_.header_at(position)->commit.store(ring_.committed(position), std::memory_order_release);
    return CommitStatus::ok;
  }

  // Gives up a claim: readers skip it and count its sequence as lost.
  void abandon(const ClaimTicket& ticket) noexcept;

  const RingRef& ring() const noexcept { return ring_; }

 private:
  void fill_header(std::uint64_t position, std::uint32_t length, std::uint64_t sequence,
                   RecordType type, std::int64_t timestamp_ns) noexcept {
    RecordHeader* h = ring_.header_at(position);
    h->length = length;
    h->type = static_cast<std::uint16_t>(type);
    h->producer = producer_tag_;
    h->sequence = sequence;
    h->timestamp_ns = timestamp_ns;
  }
  // Takes `bytes` (count records, plus padding to the lap end if they would wrap) from the tail:
  // the claim starts at `position` with sequence `sequence`, after `pad` bytes of padding.
  template <bool kExclusive>
  [[gnu::always_inline]] ClaimStatus reserve(std::uint64_t bytes, std::uint64_t count,
                                             std::uint64_t gate_floor, std::uint64_t& position,
                                             std::uint64_t& sequence, std::uint64_t& pad) noexcept {
    // Relaxed loads: an exclusive writer knows the tail; a shared one's torn guess only makes the
    // first CAS fail, which returns the real value.
    constexpr auto guess = std::memory_order_relaxed;  // relaxed: a guess, as said above
    TailWord cur = kExclusive ? local_tail_
                              : TailWord{ring_.claimed_position(guess),
                                         ring_.claimed_sequence(guess)};
    for (;;) {
      if (!is_frame_aligned(cur.position)) [[unlikely]] return ClaimStatus::corrupt;
      const std::uint64_t offset = cur.position & ring_.mask;
      pad = offset + bytes > ring_.capacity ? ring_.capacity - offset : 0;
      const std::uint64_t end = cur.position + pad + bytes;
      // UINT64_MAX (nobody gates) + capacity wraps below any end: test it first.
      if (gate_floor != UINT64_MAX && end > gate_floor + ring_.capacity) {
        return ClaimStatus::back_pressured;
      }
      const TailWord want{end, cur.next_sequence + count};
      if constexpr (kExclusive) {
        local_tail_ = want;
        store_tail_exclusive(cur, want);
        break;
      } else {
        if (cas_tail(cur, want)) break;
      }
    }
    // release fence: a non-gating reader that reads any byte we write after this and then (after
    // its acquire fence) loads the claim position is guaranteed to see this claim, and so discards
    // its copy as lapped (see RingReader::poll_copy). On x86 it only stops the compiler.
    std::atomic_thread_fence(std::memory_order_release);
    position = cur.position;
    sequence = cur.next_sequence;
    return ClaimStatus::ok;
  }
  // Stores the whole tail word at once. A 16-byte aligned SSE store is a single atomic access on
  // every x86-64 processor with AVX (Intel SDM vol. 3A, 9.1.1; AMD APM vol. 2, 7.3.2); readers'
  // 8-byte loads of either half therefore never see a mix. Elsewhere, and under ThreadSanitizer
  // (which cannot see the vector store), the CAS does the same job.
  void store_tail_exclusive(TailWord before, TailWord want) noexcept {
    if (vector_tail_store_) [[likely]] {
      _mm_store_si128(reinterpret_cast<__m128i*>(&ring_.header->tail),
                      _mm_set_epi64x(static_cast<long long>(want.next_sequence),
                                     static_cast<long long>(want.position)));
    } else {
      (void)cas_tail(before, want);  // nobody else stores it: this CAS cannot fail
    }
  }
  // Full barrier (lock cmpxchg16b): the claim is the single point that orders shared producers.
  // On failure `expected` becomes the tail seen.
  bool cas_tail(TailWord& expected, TailWord want) noexcept;
  void write_padding(std::uint64_t position, std::uint64_t bytes, std::int64_t now_ns) noexcept;
  // Records the boundary `end` (with the sequence after the claim) when the claim crossed one of
  // the kCheckpoints boundaries of a lap; a shift and a compare otherwise.
  void note_checkpoint(std::uint64_t claim_start, std::uint64_t end,
                       std::uint64_t next_sequence) noexcept {
    if ((end >> checkpoint_shift_) == (claim_start >> checkpoint_shift_)) [[likely]] return;
    Checkpoint& cp = ring_.header->checkpoints[(end >> checkpoint_shift_) % kCheckpoints];
    // relaxed: a hint only. Readers check it against the record header it names and ignore a
    // torn or stale pair.
    cp.sequence.store(next_sequence, std::memory_order_relaxed);
    cp.position.store(end, std::memory_order_relaxed);  // relaxed: a hint, as said above
  }

  RingRef ring_;
  std::uint16_t producer_tag_ = 0;
  bool exclusive_ = false;
  bool vector_tail_store_ = false;  // a 16-byte SSE store is atomic on this CPU
  std::uint32_t checkpoint_shift_ = 0;  // log2 of the bytes between checkpoint boundaries
  TailWord local_tail_{0, 1};  // exclusive writers: the tail as we last stored it
};

// Validates a committed header at `position`: type, length, lap bounds. Returns a message or
// nothing. Used by readers and by the inspect tool.
std::optional<std::string> check_record(const RingRef& ring, std::uint64_t position,
                                        const RecordHeader& header);

// Finds a record boundary: the first checkpointed record at or after `min_position` whose header
// validates. Returns {position, sequence} or nothing if none is known (the caller then starts at
// the tail).
std::optional<TailWord> find_boundary(const RingRef& ring, std::uint64_t min_position) noexcept;

// The earliest record a reader can still start at, leaving `margin` bytes between it and the
// overwrite front for a non-gating reader.
TailWord earliest_retained(const RingRef& ring, std::uint64_t margin) noexcept;

// A boundary at or before the record with sequence `sequence` (so that walking forward reaches it),
// or the earliest retained boundary if that sequence is already gone.
TailWord boundary_for_sequence(const RingRef& ring, std::uint64_t sequence,
                               std::uint64_t margin = 0) noexcept;

}  // namespace shmbus::core
