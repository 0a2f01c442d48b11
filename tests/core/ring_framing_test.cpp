// Framing of the sequenced ring: frame sizes, padding at the lap end, limits and back-pressure,
// checked single-threaded on heap memory by sequence and by content.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "tests/core/ring_testing.hpp"

namespace shmbus::core {
namespace {

using ringtest::drain_copy;
using ringtest::drain_inplace;
using ringtest::publish;
using ringtest::Seen;
using ringtest::stamp;
using ringtest::TestRing;

TEST(RingFraming, FrameIsHeaderPlusPayloadRoundedUpTo32Bytes) {
  EXPECT_EQ(sizeof(RecordHeader), 32u);
  EXPECT_EQ(frame_size(0), 32u);
  EXPECT_EQ(frame_size(1), 64u);
  EXPECT_EQ(frame_size(32), 64u);
  EXPECT_EQ(frame_size(33), 96u);
  EXPECT_EQ(frame_size(64), 96u);  // a 64-byte message spans exactly three half-lines
  for (std::uint64_t n = 0; n < 5000; ++n) {
    const std::uint64_t f = frame_size(n);
    ASSERT_EQ(f % kFrameAlignment, 0u) << n;
    ASSERT_GE(f, n + kRecordHeaderSize) << n;
    ASSERT_LT(f, n + kRecordHeaderSize + kFrameAlignment) << n;
  }
}

TEST(RingFraming, ConsecutiveClaimsAreContiguousAnd32ByteAligned) {
  TestRing ring(1 << 16, 4000);
  RingWriter w(ring.ref(), 1);
  std::mt19937_64 rng(7);
  std::uint64_t expected_position = 0;
  for (std::uint64_t seq = 1; seq <= 200; ++seq) {
    const auto len = static_cast<std::uint32_t>(rng() % 300);
    ClaimTicket t;
    ASSERT_EQ(publish(w, len, UINT64_MAX, &t), ClaimStatus::ok);
    EXPECT_EQ(t.sequence, seq);
    EXPECT_EQ(t.start, expected_position);
    EXPECT_EQ(t.position, expected_position);
    EXPECT_EQ(t.position % kFrameAlignment, 0u);
    EXPECT_EQ(t.end, t.position + frame_size(len));
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.payload) % kFrameAlignment, 0u);
    EXPECT_EQ(t.payload,
              ring.data() + (t.position & (ring.ref().capacity - 1)) + kRecordHeaderSize);
    expected_position = t.end;
  }
  const TailWord tail = ring.ref().load_tail();
  EXPECT_EQ(tail.position, expected_position);
  EXPECT_EQ(tail.next_sequence, 201u);
}

TEST(RingFraming, FirstRecordHasSequenceOneTimestampAndPayload) {
  TestRing ring(1 << 14, 1000);
  RingWriter w(ring.ref(), 3);
  ClaimTicket t;
  ASSERT_EQ(w.try_claim(100, UINT64_MAX, t), ClaimStatus::ok);
  EXPECT_EQ(t.sequence, 1u);
  EXPECT_EQ(t.position, 0u);
  EXPECT_EQ(t.length, 100u);
  w.write_header(t, 123'456'789);
  ringtest::fill_payload(t.payload, 100, 1);
  ASSERT_EQ(w.commit(t), CommitStatus::ok);

  EXPECT_EQ(ring.record_at(0).producer, 3u);

  RingReader in_place(ring.ref(), 0, 1);
  std::vector<Seen> got;
  EXPECT_EQ(drain_inplace(in_place, got), ReadState::empty);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sequence, 1u);
  EXPECT_EQ(got[0].timestamp_ns, 123'456'789);
  EXPECT_EQ(got[0].length, 100u);
  EXPECT_EQ(got[0].type, RecordType::data);
  EXPECT_EQ(got[0].lost_before, 0u);
  EXPECT_TRUE(got[0].payload_intact);
  EXPECT_EQ(in_place.position(), frame_size(100));
  EXPECT_EQ(in_place.next_sequence(), 2u);

  RingReader copying(ring.ref(), 0, 1);
  std::vector<std::byte> buffer(1 << 14);
  std::vector<Seen> copied;
  EXPECT_EQ(drain_copy(copying, copied, buffer), ReadState::empty);
  ASSERT_EQ(copied.size(), 1u);
  EXPECT_EQ(copied[0].sequence, 1u);
  EXPECT_EQ(copied[0].timestamp_ns, 123'456'789);
  EXPECT_EQ(copied[0].length, 100u);
  EXPECT_TRUE(copied[0].payload_intact);
  EXPECT_EQ(copying.position(), frame_size(100));
}

TEST(RingFraming, ClaimedRecordIsInvisibleUntilCommitted) {
  TestRing ring(1 << 14, 1000);
  RingWriter w(ring.ref(), 1);
  ClaimTicket t;
  ASSERT_EQ(w.try_claim(40, UINT64_MAX, t), ClaimStatus::ok);
  RingReader r(ring.ref(), 0, 1);
  std::vector<Seen> got;
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);  // claimed, nothing written
  w.write_header(t, stamp(1));
  ringtest::fill_payload(t.payload, 40, 1);
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);  // pending
  std::vector<std::byte> buffer(1 << 14);
  EXPECT_EQ(drain_copy(r, got, buffer), ReadState::empty);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(r.position(), 0u);
  ASSERT_EQ(w.commit(t), CommitStatus::ok);
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sequence, 1u);
  EXPECT_TRUE(got[0].payload_intact);
}

// Single-threaded wrap-around: a producer and two readers (one in place, one copying) take turns
// in random amounts, the producer gated by the slower reader, until the ring has lapped many times.
TEST(RingFraming, RandomSizesOverManyLapsArriveOnceInOrderIntact) {
  constexpr std::uint64_t kCapacity = 1 << 15;
  constexpr std::uint32_t kMax = 2000;
  TestRing ring(kCapacity, kMax);
  RingWriter w(ring.ref(), 1);
  RingReader in_place(ring.ref(), 0, 1);
  RingReader copying(ring.ref(), 0, 1);
  std::vector<std::byte> buffer(2 * frame_size(kMax));
  std::mt19937_64 rng(2024);

  std::uint64_t published = 0;
  std::uint64_t next_in_place = 1;
  std::uint64_t next_copied = 1;
  std::uint64_t paddings = 0;
  std::vector<Seen> got;
  auto check = [&](std::uint64_t& next, const char* who) {
    for (const Seen& s : got) {
      ASSERT_EQ(s.sequence, next) << who;
      ASSERT_EQ(s.type, RecordType::data) << who;  // padding is never delivered
      ASSERT_EQ(s.timestamp_ns, stamp(s.sequence)) << who;
      ASSERT_EQ(s.lost_before, 0u) << who;
      ASSERT_TRUE(s.payload_intact) << who << " sequence " << s.sequence;
      ++next;
    }
    got.clear();
  };

  while (ring.ref().load_tail().position < 60 * kCapacity) {
    const int burst = static_cast<int>(rng() % 40);
    for (int i = 0; i < burst; ++i) {
      // Mostly small, sometimes the maximum, sometimes empty.
      const std::uint64_t pick = rng() % 100;
      const auto len = static_cast<std::uint32_t>(pick < 5 ? kMax : pick < 10 ? 0 : rng() % 700);
      const std::uint64_t floor = std::min(in_place.position(), copying.position());
      ClaimTicket t;
      const ClaimStatus st = publish(w, len, floor, &t);
      if (st == ClaimStatus::back_pressured) break;
      ASSERT_EQ(st, ClaimStatus::ok);
      ASSERT_EQ(t.sequence, published + 1);
      if (t.start != t.position) {
        ++paddings;
        ASSERT_EQ(t.position % kCapacity, 0u) << "a padded record starts the next lap";
      }
      ASSERT_LE((t.position % kCapacity) + frame_size(len), kCapacity) << "no record wraps";
      ++published;
    }
    if (rng() % 2 == 0) {
      std::size_t delivered = 0;
      const ReadState st = in_place.poll_inplace(
          [&](const RecordView& v) { got.push_back(ringtest::seen(v)); }, rng() % 50, delivered);
      ASSERT_NE(st, ReadState::corrupt);
      ASSERT_EQ(delivered, got.size());
      check(next_in_place, "in place");
    } else {
      std::size_t delivered = 0;
      const ReadState st =
          copying.poll_copy([&](const RecordView& v) { got.push_back(ringtest::seen(v)); },
                            rng() % 50, buffer.data(), buffer.size(), delivered);
      ASSERT_TRUE(st == ReadState::ready || st == ReadState::empty);
      check(next_copied, "copying");
    }
  }
  EXPECT_EQ(drain_inplace(in_place, got), ReadState::empty);
  check(next_in_place, "in place");
  EXPECT_EQ(drain_copy(copying, got, buffer), ReadState::empty);
  check(next_copied, "copying");
  EXPECT_EQ(next_in_place, published + 1);
  EXPECT_EQ(next_copied, published + 1);
  EXPECT_EQ(in_place.position(), ring.ref().load_tail().position);
  EXPECT_GT(paddings, 30u);
}

TEST(RingFraming, PadsTheLapEndSoNoRecordWraps) {
  constexpr std::uint64_t kCapacity = 4096;
  TestRing ring(kCapacity, 992);
  RingWriter w(ring.ref(), 1);
  RingReader in_place(ring.ref(), 0, 1);
  RingReader copying(ring.ref(), 0, 1);
  std::vector<std::byte> buffer(8192);
  std::vector<Seen> got_in_place;
  std::vector<Seen> got_copied;
  // 31 frames of 128 bytes, then one of 64: 64 bytes are left at the end of lap 0.
  for (int i = 0; i < 31; ++i) ASSERT_EQ(publish(w, 96, UINT64_MAX), ClaimStatus::ok);
  ASSERT_EQ(publish(w, 32, UINT64_MAX), ClaimStatus::ok);
  ASSERT_EQ(ring.ref().load_tail().position, kCapacity - 64);
  EXPECT_EQ(drain_inplace(in_place, got_in_place), ReadState::empty);
  EXPECT_EQ(drain_copy(copying, got_copied, buffer), ReadState::empty);

  // A 96-byte frame does not fit in the 64 left: padding fills them, the record starts lap 1.
  ClaimTicket t;
  const std::uint64_t floor = std::min(in_place.position(), copying.position());
  ASSERT_EQ(publish(w, 64, floor, &t), ClaimStatus::ok);
  EXPECT_EQ(t.sequence, 33u);
  EXPECT_EQ(t.start, kCapacity - 64);
  EXPECT_EQ(t.position, kCapacity);
  EXPECT_EQ(t.end, kCapacity + 96);
  const RecordHeader& pad = ring.record_at(kCapacity - 64);
  EXPECT_EQ(pad.type, static_cast<std::uint16_t>(RecordType::padding));
  EXPECT_EQ(pad.length, 64u - kRecordHeaderSize);
  EXPECT_EQ(pad.sequence, 0u);
  EXPECT_EQ(pad.commit.load(), ring.ref().committed(kCapacity - 64));

  // Both readers go from sequence 32 to 33 over the padding without delivering it.
  EXPECT_EQ(drain_inplace(in_place, got_in_place), ReadState::empty);
  EXPECT_EQ(drain_copy(copying, got_copied, buffer), ReadState::empty);
  for (const auto* got : {&got_in_place, &got_copied}) {
    ASSERT_EQ(got->size(), 33u);
    for (std::size_t i = 0; i < got->size(); ++i) {
      EXPECT_EQ((*got)[i].sequence, i + 1);
      EXPECT_EQ((*got)[i].type, RecordType::data);
      EXPECT_TRUE((*got)[i].payload_intact);
    }
    EXPECT_EQ(got->back().length, 64u);
  }
  EXPECT_EQ(in_place.position(), kCapacity + 96);
  EXPECT_EQ(copying.position(), kCapacity + 96);
}

TEST(RingFraming, RecordThatExactlyFillsTheLapNeedsNoPadding) {
  constexpr std::uint64_t kCapacity = 4096;
  TestRing ring(kCapacity, 992);
  RingWriter w(ring.ref(), 1);
  RingReader r(ring.ref(), 0, 1);
  std::vector<Seen> got;
  for (int i = 0; i < 31; ++i) ASSERT_EQ(publish(w, 96, UINT64_MAX), ClaimStatus::ok);
  ClaimTicket t;
  ASSERT_EQ(publish(w, 96, r.position(), &t), ClaimStatus::ok);  // the last 128 bytes exactly
  EXPECT_EQ(t.start, t.position);
  EXPECT_EQ(t.end, kCapacity);
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(publish(w, 0, r.position(), &t), ClaimStatus::ok);
  EXPECT_EQ(t.start, kCapacity);
  EXPECT_EQ(t.position, kCapacity);
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(got.size(), 33u);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].sequence, i + 1);
  EXPECT_EQ(got.back().length, 0u);
  EXPECT_EQ(r.position(), kCapacity + 32);
}

TEST(RingFraming, MaximumSizeMessageRoundTripsOverManyLaps) {
  constexpr std::uint64_t kCapacity = 4096;
  constexpr std::uint32_t kMax = kCapacity / 4 - kRecordHeaderSize;  // 992, the largest allowed
  TestRing ring(kCapacity, kMax);
  RingWriter w(ring.ref(), 1);
  RingReader r(ring.ref(), 0, 1);
  std::vector<Seen> got;
  for (std::uint64_t seq = 1; seq <= 100; ++seq) {
    ClaimTicket t;
    ASSERT_EQ(publish(w, kMax, r.position(), &t), ClaimStatus::ok) << seq;
    ASSERT_EQ(t.length, kMax);
    ASSERT_EQ(drain_inplace(r, got), ReadState::empty);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].sequence, seq);
    EXPECT_EQ(got[0].length, kMax);
    EXPECT_TRUE(got[0].payload_intact);
    got.clear();
  }
  EXPECT_GT(r.position(), 20 * kCapacity);
}

TEST(RingFraming, OversizeMessageIsTooLargeAndClaimsNothing) {
  TestRing ring(4096, 500);
  RingWriter w(ring.ref(), 1);
  ASSERT_EQ(publish(w, 10, UINT64_MAX), ClaimStatus::ok);
  const TailWord before = ring.ref().load_tail();
  for (std::uint32_t len : {501u, 992u, 5000u, UINT32_MAX}) {
    ClaimTicket t;
    EXPECT_EQ(w.try_claim(len, UINT64_MAX, t), ClaimStatus::too_large) << len;
    EXPECT_EQ(w.try_claim(len, 0, t), ClaimStatus::too_large) << len;
    const TailWord after = ring.ref().load_tail();
    EXPECT_EQ(after.position, before.position);
    EXPECT_EQ(after.next_sequence, before.next_sequence);
  }
  ClaimTicket t;
  EXPECT_EQ(w.try_claim(500, UINT64_MAX, t), ClaimStatus::ok);
  EXPECT_EQ(t.sequence, 2u);
}

TEST(RingFraming, FullRingIsBackPressuredAndClaimsNothing) {
  constexpr std::uint64_t kCapacity = 4096;
  TestRing ring(kCapacity, 992);
  RingWriter w(ring.ref(), 1);
  RingReader r(ring.ref(), 0, 1);
  // 32 frames of 128 bytes fill the lap exactly; the gating reader has read nothing.
  for (int i = 0; i < 32; ++i) ASSERT_EQ(publish(w, 96, r.position()), ClaimStatus::ok) << i;
  const TailWord full = ring.ref().load_tail();
  EXPECT_EQ(full.position, kCapacity);
  for (std::uint32_t len : {0u, 96u, 992u}) {
    ClaimTicket t;
    EXPECT_EQ(w.try_claim(len, r.position(), t), ClaimStatus::back_pressured) << len;
    const TailWord after = ring.ref().load_tail();
    EXPECT_EQ(after.position, full.position);
    EXPECT_EQ(after.next_sequence, full.next_sequence);
  }
  // Reading one record frees exactly its frame.
  std::vector<Seen> got;
  std::size_t delivered = 0;
  ASSERT_EQ(
      r.poll_inplace([&](const RecordView& v) { got.push_back(ringtest::seen(v)); }, 1, delivered),
      ReadState::ready);
  EXPECT_EQ(r.position(), 128u);
  ClaimTicket t;
  EXPECT_EQ(w.try_claim(97, r.position(), t), ClaimStatus::back_pressured);  // needs 160
  EXPECT_EQ(publish(w, 96, r.position(), &t), ClaimStatus::ok);
  EXPECT_EQ(t.sequence, 33u);
  EXPECT_EQ(t.end, kCapacity + 128);
  EXPECT_EQ(w.try_claim(0, r.position(), t), ClaimStatus::back_pressured);
  // A reader of the full ring sees every record once.
  got.clear();
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(got.size(), 32u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].sequence, i + 2);
    EXPECT_TRUE(got[i].payload_intact);
  }
}

TEST(RingFraming, BackPressureCountsThePaddingOfAClaim) {
  constexpr std::uint64_t kCapacity = 4096;
  TestRing ring(kCapacity, 992);
  RingWriter w(ring.ref(), 1);
  RingReader r(ring.ref(), 0, 1);
  for (int i = 0; i < 31; ++i) ASSERT_EQ(publish(w, 96, r.position()), ClaimStatus::ok);
  ASSERT_EQ(publish(w, 32, r.position()), ClaimStatus::ok);  // 64 bytes left in lap 0
  std::vector<Seen> got;
  std::size_t delivered = 0;
  ASSERT_EQ(
      r.poll_inplace([&](const RecordView& v) { got.push_back(ringtest::seen(v)); }, 1, delivered),
      ReadState::ready);  // frees [0, 128)
  // 64 bytes of padding + a 128-byte frame would end at 4096 + 128 = floor 128 + capacity: fits.
  ClaimTicket t;
  EXPECT_EQ(w.try_claim(97, r.position(), t), ClaimStatus::back_pressured);  // 64 + 160
  ASSERT_EQ(publish(w, 96, r.position(), &t), ClaimStatus::ok);
  EXPECT_EQ(t.start, kCapacity - 64);
  EXPECT_EQ(t.end, kCapacity + 128);
}

// The exclusive writer (one producer owns the tail and stores it instead of a CAS) claims exactly
// what the shared writer claims, given the same sizes and the same gate.
TEST(RingFraming, ExclusiveWriterFramesLikeTheSharedOne) {
  constexpr std::uint64_t kCapacity = 1 << 14;
  constexpr std::uint32_t kMax = 1000;
  TestRing shared_ring(kCapacity, kMax);
  TestRing exclusive_ring(kCapacity, kMax);
  RingWriter shared(shared_ring.ref(), 1);
  // Start the exclusive writer on a ring that already holds records of another writer.
  RingWriter before(exclusive_ring.ref(), 2);
  ASSERT_EQ(publish(shared, 100, UINT64_MAX), ClaimStatus::ok);
  ASSERT_EQ(publish(before, 100, UINT64_MAX), ClaimStatus::ok);
  RingWriter exclusive(exclusive_ring.ref(), 3, /*exclusive=*/true);
  RingReader shared_reader(shared_ring.ref(), 0, 1);
  RingReader exclusive_reader(exclusive_ring.ref(), 0, 1);
  std::mt19937_64 rng(11);
  std::vector<Seen> got_shared;
  std::vector<Seen> got_exclusive;
  std::uint64_t back_pressured = 0;
  for (int i = 0; i < 20'000; ++i) {
    const auto len = static_cast<std::uint32_t>(rng() % 10 == 0 ? kMax : rng() % 300);
    ClaimTicket a;
    ClaimTicket b;
    const ClaimStatus sa = publish(shared, len, shared_reader.position(), &a);
    const TailWord tail_before = exclusive_ring.ref().load_tail();
    const ClaimStatus sb = publish(exclusive, len, exclusive_reader.position(), &b);
    ASSERT_EQ(sa, sb) << i;
    if (sa == ClaimStatus::back_pressured) {
      ++back_pressured;
      const TailWord tail_after = exclusive_ring.ref().load_tail();
      ASSERT_EQ(tail_after.position, tail_before.position);
      ASSERT_EQ(tail_after.next_sequence, tail_before.next_sequence);
    } else {
      ASSERT_EQ(a.sequence, b.sequence);
      ASSERT_EQ(a.start, b.start);
      ASSERT_EQ(a.position, b.position);
      ASSERT_EQ(a.end, b.end);
      ASSERT_EQ(exclusive_ring.ref().load_tail().position, b.end);
    }
    if (rng() % 3 == 0) {
      drain_inplace(shared_reader, got_shared, rng() % 6);
      drain_inplace(exclusive_reader, got_exclusive, got_shared.size() - got_exclusive.size());
    }
  }
  drain_inplace(shared_reader, got_shared);
  drain_inplace(exclusive_reader, got_exclusive);
  ASSERT_EQ(got_shared.size(), got_exclusive.size());
  for (std::size_t i = 0; i < got_exclusive.size(); ++i) {
    ASSERT_EQ(got_exclusive[i].sequence, i + 1);
    ASSERT_EQ(got_exclusive[i].length, got_shared[i].length);
    ASSERT_TRUE(got_exclusive[i].payload_intact);
  }
  EXPECT_GT(back_pressured, 100u);
  EXPECT_GT(exclusive_ring.ref().load_tail().position, 20 * kCapacity);
}

TEST(RingFraming, BatchClaimIsConsecutiveRecordsWithNoPaddingBetween) {
  constexpr std::uint64_t kCapacity = 4096;
  TestRing ring(kCapacity, 992);
  RingWriter w(ring.ref(), 1);
  RingReader r(ring.ref(), 0, 1);
  std::vector<Seen> got;
  // 31 frames of 128 bytes leave 128 at the lap end; the batch needs 64 + 160 + 32 = 256, so all
  // of it moves to lap 1 behind one padding record.
  for (int i = 0; i < 31; ++i) ASSERT_EQ(publish(w, 96, UINT64_MAX), ClaimStatus::ok);
  ASSERT_EQ(drain_inplace(r, got), ReadState::empty);
  const std::uint32_t lengths[] = {10, 100, 0};
  ClaimTicket t[3];
  ASSERT_EQ(w.try_claim_batch(lengths, r.position(), t), ClaimStatus::ok);
  EXPECT_EQ(t[0].start, kCapacity - 128);
  EXPECT_EQ(t[0].position, kCapacity);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(t[i].sequence, 32u + i);
    EXPECT_EQ(t[i].length, lengths[i]);
    EXPECT_EQ(t[i].end, t[i].position + frame_size(lengths[i]));
    if (i > 0) {
      EXPECT_EQ(t[i].position, t[i - 1].end);
      EXPECT_EQ(t[i].start, t[i].position);
    }
  }
  EXPECT_EQ(ring.ref().load_tail().position, t[2].end);
  EXPECT_EQ(ring.ref().load_tail().next_sequence, 35u);
  // Written and committed in order, each like a single claim.
  for (const ClaimTicket& c : t) {
    w.write_header(c, ringtest::stamp(c.sequence));
    ringtest::fill_payload(c.payload, c.length, c.sequence);
    ASSERT_EQ(w.commit(c), CommitStatus::ok);
  }
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(got.size(), 34u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].sequence, i + 1);
    EXPECT_EQ(got[i].timestamp_ns, stamp(i + 1));
    EXPECT_TRUE(got[i].payload_intact);
  }
}

TEST(RingFraming, BatchBeyondAQuarterLapOrMalformedClaimsNothing) {
  TestRing ring(4096, 500);
  RingWriter w(ring.ref(), 1);
  ASSERT_EQ(publish(w, 10, UINT64_MAX), ClaimStatus::ok);
  const TailWord before = ring.ref().load_tail();
  ClaimTicket t[4];
  const std::uint32_t too_much[] = {200, 200, 200};  // 3 * 256 > frame_size(500) = 544
  const std::uint32_t one_too_large[] = {10, 501};
  const std::uint32_t fine[] = {10, 20, 30, 40};
  EXPECT_EQ(w.try_claim_batch(too_much, UINT64_MAX, t), ClaimStatus::too_large);
  EXPECT_EQ(w.try_claim_batch(one_too_large, UINT64_MAX, t), ClaimStatus::too_large);
  EXPECT_EQ(w.try_claim_batch({}, UINT64_MAX, t), ClaimStatus::too_large);
  EXPECT_EQ(w.try_claim_batch(fine, UINT64_MAX, std::span<ClaimTicket>(t, 3)),
            ClaimStatus::too_large);  // not enough tickets
  const TailWord after = ring.ref().load_tail();
  EXPECT_EQ(after.position, before.position);
  EXPECT_EQ(after.next_sequence, before.next_sequence);
  ASSERT_EQ(w.try_claim_batch(fine, UINT64_MAX, t), ClaimStatus::ok);
  EXPECT_EQ(t[0].sequence, 2u);
  EXPECT_EQ(t[3].sequence, 5u);
}

TEST(RingParams, AcceptsTheLimits) {
  EXPECT_EQ(check_params(ringtest::params(4096, 992)), std::nullopt);
  EXPECT_EQ(check_params(ringtest::params(1 << 20, 1)), std::nullopt);
  EXPECT_EQ(check_params(ringtest::params(kMaxCapacity, 1 << 20)), std::nullopt);
}

TEST(RingParams, RejectsCapacityThatIsNotAPowerOfTwoOrOutOfRange) {
  for (std::uint64_t capacity :
       {std::uint64_t{0}, std::uint64_t{6000}, std::uint64_t{4097}, std::uint64_t{(1 << 20) + 4096},
        std::uint64_t{2048}, kMaxCapacity * 2, std::uint64_t{3} << 40}) {
    const auto err = check_params(ringtest::params(capacity, 100));
    ASSERT_TRUE(err.has_value()) << capacity;
    EXPECT_NE(err->find("capacity " + std::to_string(capacity)), std::string::npos) << *err;
    EXPECT_NE(err->find("power of two"), std::string::npos) << *err;
  }
}

TEST(RingParams, RejectsMaxMessageAboveAQuarterLapMinusHeader) {
  for (std::uint64_t capacity : {std::uint64_t{4096}, std::uint64_t{1} << 20}) {
    const auto largest = static_cast<std::uint32_t>(capacity / 4 - kRecordHeaderSize);
    EXPECT_EQ(check_params(ringtest::params(capacity, largest)), std::nullopt);
    for (std::uint32_t bad : {largest + 1, largest + 32, 0u, UINT32_MAX}) {
      const auto err = check_params(ringtest::params(capacity, bad));
      ASSERT_TRUE(err.has_value()) << bad;
      EXPECT_NE(err->find("max message " + std::to_string(bad)), std::string::npos) << *err;
      EXPECT_NE(err->find(std::to_string(largest) + " bytes"), std::string::npos) << *err;
    }
  }
}

TEST(RingParams, RejectsANameThatDoesNotFitTheHeader) {
  RingParams p = ringtest::params(4096, 100);
  const std::string longest(sizeof(RingHeader::name) - 1, 'n');
  p.name = longest.c_str();
  EXPECT_EQ(check_params(p), std::nullopt);
  const std::string too_long(sizeof(RingHeader::name), 'n');
  p.name = too_long.c_str();
  const auto err = check_params(p);
  ASSERT_TRUE(err.has_value());
  EXPECT_NE(err->find("name"), std::string::npos) << *err;
}

}  // namespace
}  // namespace shmbus::core
