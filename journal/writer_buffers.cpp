#include "journal/writer_buffers.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "journal/segment_files.hpp"

namespace shmbus::journal {

Result<void> BufferPool::allocate(const std::string& dir, unsigned count,
                                  std::size_t buffer_bytes) {
  capacity_ = align_up(buffer_bytes);
  memory_ = AlignedBuffer::allocate(capacity_ * count);
  carried_block_ = AlignedBuffer::allocate(kPageSize);
  if (!memory_ || !carried_block_) {
    return tl::unexpected(Error{
        ErrorCode::system,
        fmt::format("journal {}: cannot allocate {} write buffers of {} bytes", dir, count,
                    capacity_)});
  }
  buffers_.resize(count);
  free_.reserve(count);
  for (unsigned i = 0; i < count; ++i) {
    buffers_[i].bytes = memory_.data() + i * capacity_;
    free_.push_back(static_cast<int>(count - 1 - i));
  }
  return {};
}

std::vector<iovec> BufferPool::regions() const {
  std::vector<iovec> regions(buffers_.size());
  for (std::size_t i = 0; i < buffers_.size(); ++i) {
    regions[i] = iovec{buffers_[i].bytes, capacity_};
  }
  return regions;
}

void BufferPool::take(OpenSegment& segment, std::uint64_t stream_position) {
  const int index = free_.back();
  free_.pop_back();
  PoolBuffer& b = buffers_[static_cast<std::size_t>(index)];
  b.segment = &segment;
  b.file_offset = segment.end_offset - carried_;
  std::memcpy(b.bytes, carried_block_.data(), carried_);
  b.filled = b.submitted = carried_;
  b.stream_start = stream_position - carried_;
  b.writes_outstanding = 0;
  b.retired = false;
  carried_ = 0;
  current_ = index;
}

void BufferPool::handed_off(BufferHandoff handoff, bool direct) {
  PoolBuffer& b = current();
  b.submitted = b.filled;
  const bool partial_block = direct && b.filled % kPageSize != 0;
  if (b.filled == capacity_ || partial_block || handoff != BufferHandoff::keep_filling) {
    carry(b.bytes + b.filled,
          partial_block && handoff != BufferHandoff::end_segment ? b.filled % kPageSize : 0);
    const int index = current_;
    current_ = -1;
    retire(index);
  }
}

void BufferPool::write_completed(int index) {
  PoolBuffer& b = buffer(index);
  if (--b.writes_outstanding == 0 && b.retired) free_.push_back(index);
}

void BufferPool::carry(const std::byte* end, std::uint64_t count) {
  carried_ = count;
  std::memcpy(carried_block_.data(), end - count, count);
}

Result<void> BufferPool::carry_last_block_of(const OpenSegment& segment) {
  carried_ = segment.end_offset % kPageSize;
  const ssize_t n = ::pread(segment.fd, carried_block_.data(), kPageSize,
                            static_cast<off_t>(align_down(segment.end_offset)));
  if (n < static_cast<ssize_t>(carried_)) {
    return tl::unexpected(os_error(n < 0 ? errno : EIO,
                                   fmt::format("cannot read the last block of {}", segment.path)));
  }
  return {};
}

void BufferPool::retire(int index) {
  PoolBuffer& b = buffer(index);
  b.retired = true;
  if (b.writes_outstanding == 0) free_.push_back(index);
}

}  // namespace shmbus::journal
