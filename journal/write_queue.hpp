// The writer's writes in the order they were created (which is file order within a segment, and
// segment order across segments). Completions may come back in any order; the writer only counts a
// record as written once every write before it has completed, so it pops completed writes off the
// front. Ids are consecutive, so find(id) is O(1), and a popped id is simply below the front.
//
// A ring over a vector that only grows (on the slow path: more writes outstanding than ever
// before), so the steady state allocates nothing. References are invalidated by push().
#pragma once

#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

#include "journal/aligned_buffer.hpp"

namespace shmbus::journal {

struct OpenSegment;

struct Write {
  enum class Phase : std::uint8_t { queued, in_flight, failed, complete };

  std::uint64_t id = 0;
  OpenSegment* segment = nullptr;
  int fd = -1;
  // Bytes to write: in a pool buffer, in `own_buffer`, or in the segment's index entries.
  std::byte* bytes = nullptr;
  std::uint64_t offset = 0;         // file offset of bytes[0]
  std::uint64_t length = 0;
  std::uint64_t bytes_written = 0;  // a short write resumes from here
  int pool_buffer = -1;             // pool buffer index (registered: write_fixed), -1 otherwise
  AlignedBuffer own_buffer;         // a record larger than a pool buffer gets a buffer of its own
  std::uint64_t last_sequence = 0;  // the last record that ends inside this write (0: none)
  std::uint64_t waits_for = 0;      // a write of the same block to complete before this starts
  bool direct = false;              // O_DIRECT: offsets and lengths stay block-aligned on retries
  bool retrying = false;            // failed at least once and not yet complete: blocks the writer
  Phase phase = Phase::queued;
  std::chrono::steady_clock::time_point retry_at{};
};

class WriteQueue {
 public:
  explicit WriteQueue(std::size_t capacity) {
    std::size_t n = 16;
    while (n < capacity) n *= 2;
    slots_.resize(n);
  }

  bool empty() const noexcept { return count_ == 0; }
  std::size_t size() const noexcept { return count_; }

  Write& push() {
    if (count_ == slots_.size()) grow();
    Write& w = slots_[(head_ + count_) & (slots_.size() - 1)];
    w = Write{};
    w.id = first_id_ + count_;
    ++count_;
    return w;
  }
  Write& front() noexcept { return slots_[head_]; }
  void pop() noexcept {
    slots_[head_] = Write{};  // releases a record's own buffer
    head_ = (head_ + 1) & (slots_.size() - 1);
    ++first_id_;
    --count_;
  }
  // The write with this id, or null once it has been popped.
  Write* find(std::uint64_t id) noexcept {
    if (id < first_id_ || id >= first_id_ + count_) return nullptr;
    return &slots_[(head_ + (id - first_id_)) & (slots_.size() - 1)];
  }
  template <class F>
  void for_each(F&& f) {
    for (std::size_t i = 0; i < count_; ++i) f(slots_[(head_ + i) & (slots_.size() - 1)]);
  }

 private:
  void grow() {
    std::vector<Write> bigger(slots_.size() * 2);
    for (std::size_t i = 0; i < count_; ++i) {
      bigger[i] = std::move(slots_[(head_ + i) & (slots_.size() - 1)]);
    }
    slots_ = std::move(bigger);
    head_ = 0;
  }

  std::vector<Write> slots_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::uint64_t first_id_ = 1;  // 0 means "no write"
};

}  // namespace shmbus::journal
