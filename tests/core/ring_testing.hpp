// Helpers shared by the core ring tests: rings in plain process memory, payloads that carry their
// own identity and checksum, and small publish/poll wrappers. core/ never calls the OS, so every
// core test runs in one process on memory allocated here.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <span>
#include <stdexcept>
#include <vector>

#include "core/layout.hpp"
#include "core/ring.hpp"
#include "core/ring_reader.hpp"
#include "core/ring_repair.hpp"

namespace shmbus::core {

// Readable names in test failure messages (found by GoogleTest through argument-dependent lookup).
inline void PrintTo(ReadState s, std::ostream* os) {
  constexpr const char* names[] = {"ready", "empty", "lapped", "corrupt"};
  const auto i = static_cast<unsigned>(s);
  *os << (i < 4 ? names[i] : "ReadState?");
}
inline void PrintTo(ClaimStatus s, std::ostream* os) {
  constexpr const char* names[] = {"ok", "back_pressured", "too_large"};
  const auto i = static_cast<unsigned>(s);
  *os << (i < 3 ? names[i] : "ClaimStatus?");
}
inline void PrintTo(CommitStatus s, std::ostream* os) {
  *os << (s == CommitStatus::ok ? "ok" : "abandoned");
}
inline void PrintTo(RecordType t, std::ostream* os) {
  switch (t) {
    case RecordType::data: *os << "data"; return;
    case RecordType::padding: *os << "padding"; return;
    case RecordType::abandoned: *os << "abandoned"; return;
    case RecordType::tagged: *os << "tagged"; return;
  }
  *os << "RecordType(" << static_cast<unsigned>(t) << ")";
}

}  // namespace shmbus::core

namespace shmbus::core::ringtest {

inline constexpr std::uint64_t kDefaultIncarnation = 0x5eed'1234'abcd'0001ULL;

inline RingParams params(std::uint64_t capacity, std::uint32_t max_message,
                         std::uint64_t incarnation = kDefaultIncarnation) {
  RingParams p;
  p.capacity = capacity;
  p.max_message = max_message;
  p.incarnation = incarnation;
  p.created_ns = 1'700'000'000'000'000'000;
  p.creator_pid = 4242;
  p.creator_start_time = 99;
  p.name = "core.test";
  return p;
}

// Where a test ring lives.
enum class Memory {
  heap,     // aligned_alloc, exactly the segment size: AddressSanitizer flags any stray byte
  guarded,  // mmap with an inaccessible page on each side: a stray access faults in every build
};

inline void PrintTo(Memory m, std::ostream* os) { *os << (m == Memory::heap ? "heap" : "guarded"); }

// A formatted ring in process memory, zero-filled before formatting.
class TestRing {
 public:
  TestRing(std::uint64_t capacity, std::uint32_t max_message, Memory memory = Memory::heap,
           std::uint64_t incarnation = kDefaultIncarnation)
      : size_(ring_segment_size(capacity)), memory_(memory) {
    if (memory == Memory::heap) {
      base_ = std::aligned_alloc(4096, size_);
      if (base_ == nullptr) throw std::runtime_error("aligned_alloc failed");
    } else {
      const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
      void* m = ::mmap(nullptr, size_ + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) throw std::runtime_error("mmap failed");
      mapping_ = m;
      base_ = static_cast<std::byte*>(m) + page;
      if (::mprotect(base_, size_, PROT_READ | PROT_WRITE) != 0) {
        throw std::runtime_error("mprotect failed");
      }
    }
    std::memset(base_, 0, size_);
    format_ring(base_, params(capacity, max_message, incarnation));
  }
  ~TestRing() {
    if (memory_ == Memory::heap) {
      std::free(base_);
    } else {
      const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
      ::munmap(mapping_, size_ + 2 * page);
    }
  }
  TestRing(const TestRing&) = delete;
  TestRing& operator=(const TestRing&) = delete;

  void* base() const noexcept { return base_; }
  std::size_t size() const noexcept { return size_; }
  RingRef ref() const noexcept { return RingRef::attach(base_); }
  RingHeader& header() const noexcept { return *static_cast<RingHeader*>(base_); }
  std::byte* data() const noexcept { return static_cast<std::byte*>(base_) + kRingDataOffset; }
  RecordHeader& record_at(std::uint64_t position) const noexcept {
    return *ref().header_at(position);
  }

 private:
  std::size_t size_;
  Memory memory_;
  void* base_ = nullptr;
  void* mapping_ = nullptr;
};

// splitmix64: a deterministic byte stream per tag.
inline std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

inline std::uint32_t fnv1a(const std::byte* p, std::size_t n) noexcept {
  std::uint32_t h = 2166136261u;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= static_cast<std::uint8_t>(p[i]);
    h *= 16777619u;
  }
  return h;
}

// A payload that names its tag (usually the sequence) and checks itself. Layout for length >= 16:
// tag (8 bytes), filler derived from the tag, FNV-1a of everything before (last 4 bytes). Shorter
// payloads are filler only. Any torn, shifted or foreign payload fails payload_ok.
inline void fill_payload(std::byte* p, std::uint32_t length, std::uint64_t tag) noexcept {
  std::uint32_t i = 0;
  if (length >= 16) {
    std::memcpy(p, &tag, 8);
    i = 8;
  }
  const std::uint32_t filler_end = length >= 16 ? length - 4 : length;
  std::uint64_t state = mix(tag);
  for (; i < filler_end; ++i) {
    if ((i & 7) == 0) state = mix(state + i);
    p[i] = static_cast<std::byte>(state >> (8 * (i & 7)));
  }
  if (length >= 16) {
    const std::uint32_t sum = fnv1a(p, length - 4);
    std::memcpy(p + length - 4, &sum, 4);
  }
}

inline bool payload_ok(const std::byte* p, std::uint32_t length, std::uint64_t tag) {
  std::vector<std::byte> want(length);
  fill_payload(want.data(), length, tag);
  return length == 0 || std::memcmp(p, want.data(), length) == 0;
}

// The timestamp tests give the record with sequence s.
inline std::int64_t stamp(std::uint64_t sequence) noexcept {
  return 1'000'000'000'000 + static_cast<std::int64_t>(sequence) * 7;
}

// Claims, writes (payload tagged with the sequence) and commits one record.
inline ClaimStatus publish(RingWriter& w, std::uint32_t length, std::uint64_t gate_floor,
                           ClaimTicket* out = nullptr) {
  ClaimTicket t;
  const ClaimStatus st = w.try_claim(length, gate_floor, t);
  if (st != ClaimStatus::ok) return st;
  w.write_header(t, stamp(t.sequence));
  fill_payload(t.payload, t.length, t.sequence);
  if (w.commit(t) != CommitStatus::ok) throw std::logic_error("commit of a live claim failed");
  if (out != nullptr) *out = t;
  return st;
}

// A record as a test keeps it: copied out of the view.
struct Seen {
  std::uint64_t sequence;
  std::int64_t timestamp_ns;
  std::uint32_t length;
  RecordType type;
  std::uint64_t lost_before;
  bool payload_intact;  // tagged with its own sequence, checksum right
};

inline Seen seen(const RecordView& v) {
  return Seen{v.sequence, v.timestamp_ns, v.length,
              v.type,     v.lost_before,  payload_ok(v.payload, v.length, v.sequence)};
}

// Polls in place until the reader stops; returns the state that stopped it.
inline ReadState drain_inplace(RingReader& r, std::vector<Seen>& out,
                               std::size_t max_records = 1'000'000) {
  std::size_t delivered = 0;
  return r.poll_inplace([&](const RecordView& v) { out.push_back(seen(v)); }, max_records,
                        delivered);
}

// Polls by copy until a poll returns anything but ready (ready with nothing delivered also stops).
inline ReadState drain_copy(RingReader& r, std::vector<Seen>& out, std::span<std::byte> buffer) {
  for (;;) {
    std::size_t delivered = 0;
    const ReadState st = r.poll_copy([&](const RecordView& v) { out.push_back(seen(v)); }, 64,
                                     buffer.data(), buffer.size(), delivered);
    if (st != ReadState::ready || delivered == 0) return st;
  }
}

}  // namespace shmbus::core::ringtest
