// The journal writer's pool of write buffers: page-aligned, allocated once at open and reused, so
// appending allocates nothing. Records are copied into the current buffer; a buffer handed to
// writes is retired and returns to the free list when its last write completes.
//
// A buffer maps to one segment: byte i of it goes to file offset file_offset + i, and the current
// buffer ends at the segment's logical end. Bytes [0, submitted) belong to writes already created
// and are never touched again; appends only add bytes at `filled`. Under O_DIRECT a write covers
// whole blocks, so a buffer whose last block is partly filled is retired when that block is
// written, and the partial block is carried (copied) into the next buffer, which rewrites it.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "journal/aligned_buffer.hpp"
#include "journal/open_segment.hpp"
#include "shmbus/result.hpp"

namespace shmbus::journal {

struct PoolBuffer {
  std::byte* bytes = nullptr;
  OpenSegment* segment = nullptr;
  std::uint64_t file_offset = 0;   // where bytes[0] goes in the segment
  std::uint64_t filled = 0;        // bytes appended (or carried in)
  std::uint64_t submitted = 0;     // bytes handed to writes
  std::uint64_t stream_start = 0;  // stream position of bytes[0] (see JournalWriter::State)
  unsigned writes_outstanding = 0;  // writes from this buffer not yet complete
  bool retired = false;             // no more appends: free once writes_outstanding is 0
};

// What happens to the current buffer once its new bytes are handed to a write.
enum class BufferHandoff : std::uint8_t {
  keep_filling,  // flush: it stays current if it can take more bytes
  move_on,       // the next bytes go elsewhere; under O_DIRECT its partial last block is carried
  end_segment,   // the segment is finished: nothing is carried
};

class BufferPool {
 public:
  BufferPool() = default;
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // `count` buffers of `buffer_bytes` rounded up to whole pages, and the carried block.
  Result<void> allocate(const std::string& dir, unsigned count, std::size_t buffer_bytes);
  // Every buffer's memory, for registering with the ring (index i is buffer i).
  std::vector<iovec> regions() const;

  std::uint64_t buffer_capacity() const noexcept { return capacity_; }
  // Bytes appendable without waiting for a write: the current buffer's space and the free
  // buffers' (`new_segment`: only the free buffers, and no carried block).
  std::uint64_t room(bool new_segment) const noexcept {
    const std::uint64_t spare = free_.size() * capacity_;
    if (new_segment) return spare;
    if (current_ >= 0) return space_in_current() + spare;
    return spare >= capacity_ ? spare - carried_ : 0;
  }
  // No free buffer, and the current one (if any) cannot take even an empty record.
  bool full() const noexcept {
    return free_.empty() && (current_ < 0 || space_in_current() < kRecordHeaderSize);
  }

  bool has_current() const noexcept { return current_ >= 0; }
  bool has_free_buffer() const noexcept { return !free_.empty(); }
  int current_index() const noexcept { return current_; }
  PoolBuffer& current() noexcept { return buffers_[static_cast<std::size_t>(current_)]; }
  std::uint64_t space_in_current() const noexcept {
    return capacity_ - buffers_[static_cast<std::size_t>(current_)].filled;
  }
  PoolBuffer& buffer(int index) noexcept { return buffers_[static_cast<std::size_t>(index)]; }

  // Makes a free buffer current for `segment` at its end: it starts with the carried block.
  // `stream_position` is the stream position of the segment's end. Requires a free buffer.
  void take(OpenSegment& segment, std::uint64_t stream_position);
  // The current buffer's bytes up to `filled` were handed to writes. Retires it when it is full,
  // when it ends in a partial block under O_DIRECT, or when `handoff` is not keep_filling.
  void handed_off(BufferHandoff handoff, bool direct);
  // A write from buffer `index` completed.
  void write_completed(int index);

  // The partial block the next buffer (or a record's own buffer) starts with, under O_DIRECT.
  std::uint64_t carried_bytes() const noexcept { return carried_; }
  std::byte* carried_block() const noexcept { return carried_block_.data(); }
  // Carries the `count` bytes before `end`.
  void carry(const std::byte* end, std::uint64_t count);
  void drop_carried() noexcept { carried_ = 0; }
  // A continued segment's last block is partial (O_DIRECT): the next write rewrites it whole, so
  // it starts from the bytes on disk.
  Result<void> carry_last_block_of(const OpenSegment& segment);

 private:
  void retire(int index);

  AlignedBuffer memory_;
  AlignedBuffer carried_block_;
  std::uint64_t capacity_ = 0;  // bytes per buffer
  std::vector<PoolBuffer> buffers_;
  std::vector<int> free_;  // reserved for every buffer: returning one never allocates
  int current_ = -1;       // the buffer appends go to (-1: none; the next append takes one)
  std::uint64_t carried_ = 0;
};

}  // namespace shmbus::journal
