// BufferPool: room, taking a buffer at a segment's end, when a handed-off buffer is retired and
// what it carries into the next, and when a retired buffer is free again.
#include "journal/writer_buffers.hpp"

#include <cstring>

#include <gtest/gtest.h>

namespace shmbus::journal {
namespace {

constexpr std::uint64_t kBuffer = 2 * kPageSize;

// A pool appending to one segment (in memory only: no file is written).
class BufferPoolTest : public ::testing::Test {
 protected:
  void allocate(unsigned count) {
    ASSERT_TRUE(pool.allocate("/journal/dir", count, kBuffer - 100)) << "rounded up to pages";
    segment.end_offset = kSegmentHeaderSize;
  }
  // Makes a buffer current at the segment's end and appends `bytes` of `value` to it.
  void append(std::uint64_t bytes, std::byte value = std::byte{1}) {
    if (!pool.has_current()) pool.take(segment, stream);
    PoolBuffer& b = pool.current();
    std::memset(b.bytes + b.filled, static_cast<int>(value), bytes);
    b.filled += bytes;
    segment.end_offset += bytes;
    stream += bytes;
  }

  BufferPool pool;
  OpenSegment segment;
  std::uint64_t stream = kPageSize;
};

TEST_F(BufferPoolTest, BuffersAreWholePagesAndEachRegionIsOneBuffer) {
  allocate(3);
  EXPECT_EQ(pool.buffer_capacity(), kBuffer);
  const auto regions = pool.regions();
  ASSERT_EQ(regions.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(regions[i].iov_base, pool.buffer(i).bytes);
    EXPECT_EQ(regions[i].iov_len, kBuffer);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(regions[i].iov_base) % kPageSize, 0u);
  }
}

TEST_F(BufferPoolTest, RoomIsTheCurrentBuffersSpaceAndTheFreeBuffers) {
  allocate(3);
  EXPECT_EQ(pool.room(false), 3 * kBuffer);
  append(1000);
  EXPECT_EQ(pool.room(false), kBuffer - 1000 + 2 * kBuffer);
  EXPECT_EQ(pool.room(true), 2 * kBuffer) << "a new segment cannot use the current buffer";
  EXPECT_FALSE(pool.full());
}

TEST_F(BufferPoolTest, ATakenBufferStartsAtTheSegmentEndWithTheCarriedBlock) {
  allocate(2);
  segment.end_offset += 300;
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

TEST_F(BufferPoolTest, AFlushedBufferStaysCurrentUntilItIsFull) {
  allocate(2);
  append(100);
  pool.handed_off(BufferHandoff::keep_filling, false);
  ASSERT_TRUE(pool.has_current());
  EXPECT_EQ(pool.current().submitted, 100u);
  append(kBuffer - 100);
  pool.handed_off(BufferHandoff::keep_filling, false);
  EXPECT_FALSE(pool.has_current());
  EXPECT_EQ(pool.carried_bytes(), 0u);
}

TEST_F(BufferPoolTest, UnderODirectAPartialLastBlockRetiresTheBufferAndIsCarried) {
  allocate(2);
  append(kPageSize);
  append(40, std::byte{2});
  pool.handed_off(BufferHandoff::keep_filling, true);
  EXPECT_FALSE(pool.has_current()) << "its partial block is in flight: no more appends to it";
  ASSERT_EQ(pool.carried_bytes(), 40u);
  for (std::uint64_t i = 0; i < 40; ++i) EXPECT_EQ(pool.carried_block()[i], std::byte{2});
}

TEST_F(BufferPoolTest, EndingASegmentCarriesNothing) {
  allocate(2);
  append(40);
  pool.handed_off(BufferHandoff::end_segment, true);
  EXPECT_FALSE(pool.has_current());
  EXPECT_EQ(pool.carried_bytes(), 0u);
}

TEST_F(BufferPoolTest, ARetiredBufferIsFreeOnlyOnceItsLastWriteCompletes) {
  allocate(1);
  append(100);
  const int index = pool.current_index();
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

TEST_F(BufferPoolTest, FullWhenTheCurrentBufferCannotTakeARecordHeaderAndNoneIsFree) {
  allocate(1);
  append(kBuffer - kRecordHeaderSize);
  EXPECT_FALSE(pool.full());
  append(8);
  EXPECT_TRUE(pool.full());
}

}  // namespace
}  // namespace shmbus::journal
