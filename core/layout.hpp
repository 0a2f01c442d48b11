// The shared-memory layout of a channel's data ring: every struct that lives in shared memory and
// the constants that give it meaning. Writers and readers include this one file; docs/architecture.md
// describes the same bytes in prose. Every size and offset is pinned by a static_assert, because two
// builds that disagree on any of them must refuse to talk (see layout_fingerprint()).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace shmbus::core {

inline constexpr std::uint64_t kRingMagic = 0x474e'4952'5342'4d48ULL;  // "HMBSRING" little-endian
inline constexpr std::uint32_t kLayoutVersion = 2;  // 2: tagged records (RecordType::tagged)
inline constexpr std::size_t kCacheLine = 64;

// Records start on 32-byte boundaries: a 64-byte payload plus its 32-byte header is exactly three
// half-lines, so it always spans two cache lines and never three.
inline constexpr std::uint32_t kFrameAlignment = 32;
inline constexpr std::uint32_t kRecordHeaderSize = 32;

// The ring's data area starts one page after the header so the header never shares a line or a
// page with records.
inline constexpr std::size_t kRingDataOffset = 4096;

// Bounds on what a segment may declare; anything outside is treated as garbage, not trusted.
inline constexpr std::uint64_t kMinCapacity = 4096;
inline constexpr std::uint64_t kMaxCapacity = 1ULL << 40;

// Boundary hints: the ring remembers the position and sequence of the first record at or after each
// of kCheckpoints equally spaced boundaries of one lap, so a reader can find a record boundary near
// any position (start at earliest, start at a sequence, resume) without walking a whole lap.
inline constexpr std::uint32_t kCheckpoints = 64;

enum class RecordType : std::uint16_t {
  data = 1,       // an application message
  padding = 2,    // fills the end of a lap so that no record wraps; carries no sequence
  abandoned = 3,  // a claim whose producer never committed; its sequence is counted as lost
  tagged = 4,     // an application message with a key and/or a message type: a TagPrefix, the
                  // key padded to 8 bytes, then the payload (see below)
};

// A tagged record's payload area starts with this prefix, then key_length key bytes, zero padding
// up to a multiple of kTagAlignment, then the application payload. RecordHeader::length counts all
// of it. Records with neither a key nor a message type stay RecordType::data and carry no prefix,
// so they cost nothing more than before. Readers check the prefix against the length (tag_fits)
// before they trust it: a prefix is shared-memory bytes like any other.
struct TagPrefix {
  std::uint16_t key_length;    // 0..kMaxKeyLength
  std::uint16_t message_type;  // the application's type, 0: none
  std::uint32_t reserved;      // zero
};
static_assert(sizeof(TagPrefix) == 8);
static_assert(offsetof(TagPrefix, key_length) == 0);
static_assert(offsetof(TagPrefix, message_type) == 2);
static_assert(offsetof(TagPrefix, reserved) == 4);
inline constexpr std::uint32_t kMaxKeyLength = 256;
inline constexpr std::uint32_t kTagAlignment = 8;

// Bytes a tag takes before the application payload: the prefix and the padded key.
constexpr std::uint32_t tag_size(std::uint32_t key_length) noexcept {
  return static_cast<std::uint32_t>(sizeof(TagPrefix)) +
         ((key_length + kTagAlignment - 1) & ~(kTagAlignment - 1));
}
// Whether `prefix`, read from a tagged record of `length` bytes, describes bytes inside it.
constexpr bool tag_fits(const TagPrefix& prefix, std::uint32_t length) noexcept {
  return prefix.reserved == 0 && prefix.key_length <= kMaxKeyLength &&
         tag_size(prefix.key_length) <= length;
}

// The commit word of a record is the record's own position, keyed by the channel incarnation, so a
// header left over from an earlier lap (another position) or from an earlier incarnation (another
// key) never looks committed. The low 5 bits of a position are always zero (32-byte frames), and the
// key's low 5 bits are cleared, so they can carry the record's state:
inline constexpr std::uint64_t kCommitStateMask = 0x1f;
inline constexpr std::uint64_t kStateCommitted = 0;  // fields are valid and final
inline constexpr std::uint64_t kStatePending = 1;    // claimed; length and sequence are valid
inline constexpr std::uint64_t kStateRepairing = 2;  // a peer is marking it abandoned

constexpr std::uint64_t commit_word(std::uint64_t key, std::uint64_t position,
                                    std::uint64_t state) noexcept {
  return (position ^ key) | state;
}

// One record header. The commit word is written last with a release store (or repaired by a
// peer, see ring_repair.cpp); every other field is written before it and read only after an
// acquire load of it has shown this position's committed value.
struct RecordHeader {
  std::atomic<std::uint64_t> commit;
  std::uint32_t length;   // payload bytes (tagged: the tag too; padding: bytes after the header up
                          // to the lap end)
  std::uint16_t type;     // RecordType
  std::uint16_t producer; // producer tag, diagnostic only
  std::uint64_t sequence; // 0 for padding
  std::int64_t timestamp_ns;  // publish time, nanoseconds since the Unix epoch
};
static_assert(sizeof(RecordHeader) == kRecordHeaderSize);
static_assert(offsetof(RecordHeader, commit) == 0);
static_assert(offsetof(RecordHeader, length) == 8);
static_assert(offsetof(RecordHeader, type) == 12);
static_assert(offsetof(RecordHeader, producer) == 14);
static_assert(offsetof(RecordHeader, sequence) == 16);
static_assert(offsetof(RecordHeader, timestamp_ns) == 24);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

constexpr std::uint64_t align_frame(std::uint64_t n) noexcept {
  return (n + kFrameAlignment - 1) & ~std::uint64_t{kFrameAlignment - 1};
}
constexpr std::uint64_t frame_size(std::uint64_t payload) noexcept {
  return align_frame(kRecordHeaderSize + payload);
}
// Every record starts on a frame boundary; a position that does not came from garbage.
constexpr bool is_frame_aligned(std::uint64_t position) noexcept {
  return (position & (kFrameAlignment - 1)) == 0;
}

// The claim word: the next free position and the next sequence number, changed together by one
// 16-byte compare-and-swap so that position order and sequence order are the same order.
struct alignas(16) TailWord {
  std::uint64_t position;
  std::uint64_t next_sequence;
};
static_assert(sizeof(TailWord) == 16);

struct Checkpoint {
  std::atomic<std::uint64_t> position;
  std::atomic<std::uint64_t> sequence;
};
static_assert(sizeof(Checkpoint) == 16);

// The ring header: immutable identity first (written once before the segment is published), then
// the claim word on its own cache line (written by every producer), then the boundary hints.
struct RingHeader {
  // --- identity: written by the creator before the segment is visible, never changed after ---
  std::uint64_t magic;
  std::uint32_t layout_version;
  std::uint32_t header_size;        // sizeof(RingHeader)
  std::uint64_t layout_fingerprint; // see layout_fingerprint()
  std::uint64_t capacity;           // data bytes, a power of two
  std::uint32_t max_message;        // largest payload accepted
  std::uint32_t flags;              // kFlagSingleProducer or zero
  std::uint64_t incarnation;        // random, new for every creation of the name
  std::uint64_t commit_key;         // derived from incarnation, low 5 bits zero
  std::int64_t created_ns;          // CLOCK_REALTIME at creation
  std::uint32_t creator_pid;
  std::uint32_t reserved0;
  std::uint64_t creator_start_time; // /proc/PID/stat field 22 of the creator
  char name[64];                    // channel name, NUL-terminated
  // Written last by the creator with a release store; openers acquire-load it before trusting
  // anything above. Also guards against a zero-filled segment left by a crashed creator.
  std::atomic<std::uint32_t> ready;
  std::uint32_t reserved1;

  // --- the claim word: producers compare-and-swap it (a single producer stores it); readers
  // load its halves ---
  alignas(kCacheLine) TailWord tail;
  // Single-producer channels: the one process allowed to publish, its pid and start time packed
  // in one word (ipc/process.hpp pack_process) so both change in one CAS. 0: nobody.
  std::atomic<std::uint64_t> exclusive_pid;
  std::uint64_t reserved_tail;
  // The end of the furthest range ever repaired as abandoned: a producer whose uncommitted claim
  // lies before it has been skipped, and its commit says so.
  std::atomic<std::uint64_t> repaired_through;

  // --- boundary hints, written by producers at lap boundaries (see kCheckpoints) ---
  alignas(kCacheLine) Checkpoint checkpoints[kCheckpoints];
};
inline constexpr std::uint32_t kReadyMarker = 0x52454459;  // "YDER"
// The channel has one producer at a time: claims are plain stores of the tail, no CAS.
inline constexpr std::uint32_t kFlagSingleProducer = 1;
static_assert(offsetof(RingHeader, magic) == 0);
static_assert(offsetof(RingHeader, layout_version) == 8);
static_assert(offsetof(RingHeader, layout_fingerprint) == 16);
static_assert(offsetof(RingHeader, capacity) == 24);
static_assert(offsetof(RingHeader, incarnation) == 40);
static_assert(offsetof(RingHeader, name) == 80);
static_assert(offsetof(RingHeader, ready) == 144);
static_assert(offsetof(RingHeader, tail) == 192);
static_assert(offsetof(RingHeader, exclusive_pid) == 208);
static_assert(offsetof(RingHeader, repaired_through) == 224);
static_assert(offsetof(RingHeader, checkpoints) == 256);
static_assert(sizeof(RingHeader) == 256 + 16 * kCheckpoints);
static_assert(sizeof(RingHeader) <= kRingDataOffset);

// A digest of a layout's sizes and offsets (FNV-1a over their bytes), stored in a segment's header
// by its creator and compared by every opener. Two builds whose layouts differ in any part
// (another compiler, another packing, an edited struct without a version bump) compute different
// values and refuse each other's segments with a message naming both.
template <std::size_t N>
constexpr std::uint64_t fingerprint(const std::uint64_t (&parts)[N]) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::uint64_t p : parts) {
    for (int i = 0; i < 8; ++i) {
      h ^= (p >> (8 * i)) & 0xff;
      h *= 0x100000001b3ULL;
    }
  }
  return h;
}

// The ring's: every size and offset above.
constexpr std::uint64_t layout_fingerprint() noexcept {
  constexpr std::uint64_t parts[] = {
      sizeof(RecordHeader),          offsetof(RecordHeader, length),
      offsetof(RecordHeader, sequence), offsetof(RecordHeader, timestamp_ns),
      sizeof(RingHeader),            offsetof(RingHeader, tail),
      offsetof(RingHeader, checkpoints), offsetof(RingHeader, exclusive_pid),
      offsetof(RingHeader, repaired_through), kFrameAlignment,
      kRingDataOffset,               kCheckpoints,
      kLayoutVersion,                sizeof(TagPrefix),
      offsetof(TagPrefix, message_type), kMaxKeyLength,
      kTagAlignment,
  };
  return fingerprint(parts);
}

constexpr std::uint64_t ring_segment_size(std::uint64_t capacity) noexcept {
  return kRingDataOffset + capacity;
}

}  // namespace shmbus::core
