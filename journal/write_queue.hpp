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
  std::byte* data = nullptr;     // bytes to write (into a pool buffer, `temp`, or index entries)
  std::uint64_t offset = 0;      // file offset of data[0]
  std::uint64_t length = 0;
  std::uint64_t done = 0;        // bytes already written (a short write resumes from here)
  int buffer = -1;               // pool buffer index (registered: write_fixed), -1 otherwise
  AlignedBuffer temp;            // the slow path's own buffer for a record larger than a buffer
  std::uint64_t last_sequence = 0;  // the last record that ends inside this write (0: none)
  std::uint64_t wait_for = 0;    // a write of the same block that must complete before this starts
  bool direct = false;           // O_DIRECT: offsets and lengths stay block-aligned on retries
  bool retrying = false;         // failed at least once and not yet complete (counts in blocked)
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
    slots_[head_] = Write{};  // releases a temp buffer
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
