// Garbage in the words readers take places from (the claim word, the checkpoints, committed
// headers) is reported as corruption, never counted as loss: a reader never moves to a place whose
// sequence the bytes before it cannot hold, and never hands on a sequence from such a place.
#include <gtest/gtest.h>

#include <vector>

#include "core/ring_walk.hpp"
#include "tests/core/ring_testing.hpp"

namespace shmbus::core {
namespace {

using ringtest::drain_copy;
using ringtest::drain_inplace;
using ringtest::publish;
using ringtest::Seen;
using ringtest::TestRing;

constexpr std::uint64_t kCapacity = 4096;
constexpr std::uint64_t kGarbageSequence = 0xEEEE'EEEE'EEEE'EEE0ULL;  // about 1.7e19

// Publishes `count` records of 40 bytes (96-byte frames) with nothing gating.
void publish_records(RingWriter& w, int count) {
  for (int i = 0; i < count; ++i) ASSERT_EQ(publish(w, 40, UINT64_MAX), ClaimStatus::ok);
}

// What a stray write leaves in the claim word: its sequence half replaced.
void garble_tail_sequence(TestRing& ring, std::uint64_t sequence) {
  std::atomic_ref<std::uint64_t>(ring.header().tail.next_sequence).store(sequence);
}

static_assert(plausible_place(TailWord{0, 1}));
static_assert(plausible_place(TailWord{3200, 101}));   // 100 records of 32 bytes before it
static_assert(!plausible_place(TailWord{3200, 102}));  // one more than 3200 bytes can hold
static_assert(!plausible_place(TailWord{3200, 0}));
static_assert(!plausible_place(TailWord{3201, 1}));
static_assert(plausible_move(TailWord{320, 5}, TailWord{640, 15}));
static_assert(!plausible_move(TailWord{320, 5}, TailWord{640, 16}));
static_assert(!plausible_move(TailWord{640, 15}, TailWord{320, 5}));  // backwards
static_assert(!plausible_move(TailWord{320, 5}, TailWord{640, 4}));   // sequence backwards

TEST(RingCorruption, SkipToRefusesAClaimWordWhoseSequenceItsPositionCannotHold) {
  TestRing ring(kCapacity, 992);
  RingWriter w(ring.ref(), 1);
  publish_records(w, 10);
  RingReader r(ring.ref(), 0, 1);
  std::vector<Seen> got;
  ASSERT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(got.size(), 10u);
  const std::uint64_t position = r.position();

  garble_tail_sequence(ring, kGarbageSequence);
  EXPECT_FALSE(r.skip_to(ring.ref().load_tail()));
  EXPECT_EQ(r.position(), position);
  EXPECT_EQ(r.next_sequence(), 11u);
  EXPECT_EQ(r.pending_lost(), 0u);
}

TEST(RingCorruption, SkipToAcceptsAGenuineJumpAndCountsExactlyTheSequencesSkipped) {
  TestRing ring(kCapacity, 992);
  RingWriter w(ring.ref(), 1);
  publish_records(w, 10);
  RingReader r(ring.ref(), 0, 1);
  EXPECT_TRUE(r.skip_to(ring.ref().load_tail()));
  EXPECT_EQ(r.next_sequence(), 11u);
  EXPECT_EQ(r.pending_lost(), 10u);
}

TEST(RingCorruption, SkipToRefusesAPlaceBeyondTheClaimWord) {
  TestRing ring(kCapacity, 992);
  RingWriter w(ring.ref(), 1);
  ASSERT_EQ(publish(w, 40, UINT64_MAX), ClaimStatus::ok);  // one 96-byte frame
  RingReader r(ring.ref(), 0, 1);
  EXPECT_FALSE(r.skip_to(TailWord{640, 2}));  // plausible by itself, but nobody claimed it
  EXPECT_EQ(r.position(), 0u);
}

// A producer that takes its claims from a garbage claim word commits records that agree with each
// other and with the checkpoints it leaves: only the sequence's size against the position gives
// them away. A lapped drop reader must find no place to resume among them.
TEST(RingCorruption, LappedDropReaderFindsNoResumePointAfterProducersAdoptAGarbageSequence) {
  TestRing ring(kCapacity, 992);
  RingWriter w(ring.ref(), 1);
  publish_records(w, 20);
  RingReader r(ring.ref(), 0, 1);
  std::vector<std::byte> buffer(8192);
  std::vector<Seen> got;
  ASSERT_EQ(drain_copy(r, got, buffer), ReadState::empty);
  ASSERT_EQ(got.size(), 20u);

  garble_tail_sequence(ring, kGarbageSequence);
  // Three laps of records numbered from the garbage.
  while (ring.ref().load_tail().position < r.position() + 3 * kCapacity) {
    ASSERT_EQ(publish(w, 40, UINT64_MAX), ClaimStatus::ok);
  }
  ASSERT_EQ(drain_copy(r, got, buffer), ReadState::lapped);
  const TailWord earliest = earliest_retained(ring.ref(), kCapacity / 8);
  EXPECT_FALSE(r.skip_to(earliest)) << earliest.position << " " << earliest.next_sequence;
  EXPECT_EQ(r.next_sequence(), 21u);
  EXPECT_EQ(r.pending_lost(), 0u);
  EXPECT_EQ(got.size(), 20u);
  EXPECT_EQ(boundary_for_sequence(ring.ref(), 25).next_sequence, ring.ref().load_tail().next_sequence)
      << "no checkpoint may be offered as a boundary";
}

TEST(RingCorruption, BlockReaderMeetingProducersOfAGarbageSequenceReportsCorruptAndDeliversNothing) {
  TestRing ring(kCapacity, 992);
  RingWriter w(ring.ref(), 1);
  publish_records(w, 5);
  RingReader r(ring.ref(), 0, 1);
  std::vector<Seen> got;
  ASSERT_EQ(drain_inplace(r, got), ReadState::empty);
  garble_tail_sequence(ring, kGarbageSequence);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(publish(w, 40, r.position()), ClaimStatus::ok);
  EXPECT_EQ(drain_inplace(r, got), ReadState::corrupt);
  EXPECT_FALSE(r.skip_to(ring.ref().load_tail()));
  EXPECT_EQ(drain_inplace(r, got), ReadState::corrupt);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got.back().sequence, 5u);
  EXPECT_EQ(r.pending_lost(), 0u);
}

TEST(RingCorruption, GarbageCheckpointsAreNeverOfferedAsBoundaries) {
  TestRing ring(kCapacity, 992);
  RingWriter w(ring.ref(), 1);
  while (ring.ref().load_tail().position < 3 * kCapacity) {
    ASSERT_EQ(publish(w, 40, UINT64_MAX), ClaimStatus::ok);
  }
  const TailWord tail = ring.ref().load_tail();
  // Every checkpoint names a frame-aligned position in the last lap with a sequence the ring
  // cannot hold there, or a position more than a lap behind, or ahead of the claim word.
  for (std::uint32_t i = 0; i < kCheckpoints; ++i) {
    Checkpoint& cp = ring.header().checkpoints[i];
    const std::uint64_t pos = (tail.position - kCapacity / 2) & ~std::uint64_t{31};
    switch (i % 3) {
      case 0: cp.sequence.store(kGarbageSequence + i); cp.position.store(pos); break;
      case 1: cp.sequence.store(2); cp.position.store(tail.position - 2 * kCapacity); break;
      case 2: cp.sequence.store(tail.next_sequence + 5); cp.position.store(tail.position + 320);
              break;
    }
  }
  const TailWord earliest = earliest_retained(ring.ref(), kCapacity / 8);
  EXPECT_EQ(earliest.position, tail.position);
  EXPECT_EQ(earliest.next_sequence, tail.next_sequence);
  EXPECT_EQ(find_boundary(ring.ref(), 0), std::nullopt);
  const TailWord b = boundary_for_sequence(ring.ref(), tail.next_sequence - 3);
  EXPECT_TRUE(plausible_place(b));
  EXPECT_LE(b.next_sequence, tail.next_sequence);
}

TEST(RingCorruption, WalkReportsAClaimWordWhoseSequenceItsPositionCannotHold) {
  TestRing ring(kCapacity, 992);
  RingWriter w(ring.ref(), 1);
  publish_records(w, 5);
  garble_tail_sequence(ring, kGarbageSequence);
  const RingWalk walk = walk_ring(ring.ref(), 4);
  ASSERT_EQ(walk.problems.size(), 1u);
  EXPECT_NE(walk.problems[0].what.find("claim word"), std::string::npos) << walk.problems[0].what;
  EXPECT_EQ(walk.data_records, 0u);
}

}  // namespace
}  // namespace shmbus::core
