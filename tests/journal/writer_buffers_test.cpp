// BufferPool: room, taking a buffer at a segment's end, when a handed-off buffer is retired and
// what it carries into the next, and when a retired buffer is free again.
#include "journal/writer_buffers.hpp"

#include <cstring>

#include <gtest/gtest.h>

namespace shmbus::journal {
namespace {

constexpr std::uint64_t kBuffer = 2 * kPageSize;

void allocate(BufferPool& pool, unsigned count) {
  ASSERT_TRUE(pool.allocate("/journal/dir", count, kBuffer - 100)) << "rounded up to whole pages";
}

void fill(BufferPool& pool, OpenSegment& segment, std::uint64_t& stream, std::uint64_t bytes,
          std::byte value) {
  PoolBuffer& b = pool.current();
  std::memset(b.bytes + b.filled, static_cast<int>(value), bytes);
  b.filled += bytes;
  segment.end_offset += bytes;
  stream += bytes;
}

TEST(BufferPool, BuffersAreWholePagesAndEachRegionIsOneBuffer) {
  BufferPool pool;
  allocate(pool, 3);
  EXPECT_EQ(pool.buffer_capacity(), kBuffer);
  const auto regions = pool.regions();
  ASSERT_EQ(regions.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(regions[i].iov_base, pool.buffer(i).bytes);
    EXPECT_EQ(regions[i].iov_len, kBuffer);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(regions[i].iov_base) % kPageSize, 0u);
  }
}

TEST(BufferPool, RoomIsTheCurrentBuffersSpaceAndTheFreeBuffers) {
  BufferPool pool;
  allocate(pool, 3);
  OpenSegment segment;
  segment.end_offset = kSegmentHeaderSize;
  std::uint64_t stream = kPageSize;
  EXPECT_EQ(pool.room(false), 3 * kBuffer);
  pool.take(segment, stream);
  fill(pool, segment, stream, 1000, std::byte{1});
  EXPECT_EQ(pool.room(false), kBuffer - 1000 + 2 * kBuffer);
  EXPECT_EQ(pool.room(true), 2 * kBuffer) << "a new segment cannot use the current buffer";
  EXPECT_FALSE(pool.full());
}

TEST(BufferPool, ATakenBufferStartsAtTheSegmentEndWithTheCarriedBlock) {
  BufferPool pool;
  allocate(pool, 2);
  OpenSegment segment;
  segment.end_offset = kSegmentHeaderSize + 300;
  std::byte tail[300];
  std::memset(tail, 0x5a, sizeof tail);
  pool.carry(tail + sizeof tail, sizeof tail);
  EXPECT_EQ(pool.room(false), 2 * kBuffer - 300) << "the carried block fills the next buffer";
  pool.take(segment, 10'000);
  const PoolBuffer& b = pool.current();
  EXPECT_EQ(b.segment, &segment);
  EXPECT_EQ(b.file_offset, kSegmentHeaderSize);
  EXPECT_EQ(b.filled, 300u);
  EXPECT_EQ(b.submitted, 300u) << "the carried bytes are already written";
  EXPECT_EQ(b.stream_start, 10'000u - 300);
  EXPECT_EQ(std::memcmp(b.bytes, tail, sizeof tail), 0);
  EXPECT_EQ(pool.carried_bytes(), 0u);
}

TEST(BufferPool, AFlushedBufferStaysCurrentUntilItIsFull) {
  BufferPool pool;
  allocate(pool, 2);
  OpenSegment segment;
  segment.end_offset = kSegmentHeaderSize;
  std::uint64_t stream = kPageSize;
  pool.take(segment, stream);
  fill(pool, segment, stream, 100, std::byte{1});
  pool.handed_off(BufferHandoff::keep_filling, false);
  ASSERT_TRUE(pool.has_current());
  EXPECT_EQ(pool.current().submitted, 100u);
  fill(pool, segment, stream, kBuffer - 100, std::byte{2});
  pool.handed_off(BufferHandoff::keep_filling, false);
  EXPECT_FALSE(pool.has_current());
  EXPECT_EQ(pool.carried_bytes(), 0u);
}

TEST(BufferPool, UnderODirectAPartialLastBlockRetiresTheBufferAndIsCarried) {
  BufferPool pool;
  allocate(pool, 2);
  OpenSegment segment;
  segment.end_offset = kSegmentHeaderSize;
  std::uint64_t stream = kPageSize;
  pool.take(segment, stream);
  fill(pool, segment, stream, kPageSize, std::byte{1});
  fill(pool, segment, stream, 40, std::byte{2});
  pool.handed_off(BufferHandoff::keep_filling, true);
  EXPECT_FALSE(pool.has_current()) << "its partial block is in flight: no more appends to it";
  ASSERT_EQ(pool.carried_bytes(), 40u);
  for (std::uint64_t i = 0; i < 40; ++i) EXPECT_EQ(pool.carried_block()[i], std::byte{2});
}

TEST(BufferPool, EndingASegmentCarriesNothing) {
  BufferPool pool;
  allocate(pool, 2);
  OpenSegment segment;
  segment.end_offset = kSegmentHeaderSize;
  std::uint64_t stream = kPageSize;
  pool.take(segment, stream);
  fill(pool, segment, stream, 40, std::byte{2});
  pool.handed_off(BufferHandoff::end_segment, true);
  EXPECT_FALSE(pool.has_current());
  EXPECT_EQ(pool.carried_bytes(), 0u);
}

TEST(BufferPool, ARetiredBufferIsFreeOnlyOnceItsLastWriteCompletes) {
  BufferPool pool;
  allocate(pool, 1);
  OpenSegment segment;
  segment.end_offset = kSegmentHeaderSize;
  std::uint64_t stream = kPageSize;
  pool.take(segment, stream);
  const int index = pool.current_index();
  fill(pool, segment, stream, 100, std::byte{1});
  pool.current().writes_outstanding = 2;  // two writes created from it
  pool.handed_off(BufferHandoff::move_on, false);
  EXPECT_TRUE(pool.full());
  EXPECT_EQ(pool.room(false), 0u);
  pool.write_completed(index);
  EXPECT_TRUE(pool.full());
  pool.write_completed(index);
  EXPECT_FALSE(pool.full());
  EXPECT_EQ(pool.room(false), kBuffer);
}

TEST(BufferPool, FullWhenTheCurrentBufferCannotTakeARecordHeaderAndNoneIsFree) {
  BufferPool pool;
  allocate(pool, 1);
  OpenSegment segment;
  segment.end_offset = kSegmentHeaderSize;
  std::uint64_t stream = kPageSize;
  pool.take(segment, stream);
  fill(pool, segment, stream, kBuffer - kRecordHeaderSize, std::byte{1});
  EXPECT_FALSE(pool.full());
  fill(pool, segment, stream, 8, std::byte{1});
  EXPECT_TRUE(pool.full());
}

}  // namespace
}  // namespace shmbus::journal
