// Non-gating readers: a producer that never waits laps them; they notice, resynchronise at a
// record boundary and count exactly what they skipped. Also the boundary hints that resync uses.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "tests/core/ring_testing.hpp"

namespace shmbus::core {
namespace {

using ringtest::drain_inplace;
using ringtest::publish;
using ringtest::Seen;
using ringtest::TestRing;

// Where each published sequence went: its claim start (padding, if any) and its header.
struct Published {
  std::vector<std::uint64_t> start{0};
  std::vector<std::uint64_t> position{0};

  void add(const ClaimTicket& t) {
    start.push_back(t.start);
    position.push_back(t.position);
  }
  std::uint64_t count() const { return position.size() - 1; }
  // A reader may start at `b`: the header (or the padding before it) of record b.next_sequence,
  // or the tail.
  bool is_boundary(TailWord b, TailWord tail) const {
    if (b.position == tail.position && b.next_sequence == tail.next_sequence) return true;
    if (b.next_sequence == 0 || b.next_sequence > count()) return false;
    return b.position == position[b.next_sequence] || b.position == start[b.next_sequence];
  }
};

// Publishes random sizes with no gating reader until the tail has passed `laps` laps.
Published publish_laps(RingWriter& w, std::uint64_t laps, std::uint64_t seed,
                       std::uint32_t max_len) {
  Published p;
  std::mt19937_64 rng(seed);
  while (w.ring().load_tail().position < laps * w.ring().capacity) {
    ClaimTicket t;
    const auto len =
        static_cast<std::uint32_t>(rng() % 4 == 0 ? rng() % (max_len + 1) : rng() % 200);
    EXPECT_EQ(publish(w, len, UINT64_MAX, &t), ClaimStatus::ok);
    p.add(t);
  }
  return p;
}

TEST(DropReader, IsLappedExactlyWhenClaimsPassItsPositionByALap) {
  constexpr std::uint64_t kCapacity = 4096;
  TestRing ring(kCapacity, 992);
  RingWriter w(ring.ref(), 1);
  RingReader r(ring.ref(), 0, 1);
  std::vector<std::byte> buffer(4096);
  std::vector<Seen> got;
  auto poll_one = [&] {
    std::size_t n = 0;
    return r.poll_copy([&](const RecordView& v) { got.push_back(ringtest::seen(v)); }, 1,
                       buffer.data(), buffer.size(), n);
  };
  // 32 frames of 128 bytes: the claims reach exactly one lap past the reader, which is not lapped.
  for (int i = 0; i < 32; ++i) ASSERT_EQ(publish(w, 96, UINT64_MAX), ClaimStatus::ok);
  EXPECT_EQ(poll_one(), ReadState::ready);
  // In lock-step (one claim, one read) the claims stay exactly a lap ahead.
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(publish(w, 96, UINT64_MAX), ClaimStatus::ok);
    EXPECT_EQ(poll_one(), ReadState::ready);
  }
  ASSERT_EQ(got.size(), 11u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].sequence, i + 1);
    EXPECT_TRUE(got[i].payload_intact);
  }
  // Two claims without a read: the record at the reader's position is being overwritten.
  ASSERT_EQ(publish(w, 96, UINT64_MAX), ClaimStatus::ok);
  ASSERT_EQ(publish(w, 96, UINT64_MAX), ClaimStatus::ok);
  const std::uint64_t pos = r.position();
  EXPECT_EQ(poll_one(), ReadState::lapped);
  EXPECT_EQ(poll_one(), ReadState::lapped);  // and stays lapped: nothing handed on, no move
  EXPECT_EQ(r.position(), pos);
  EXPECT_EQ(r.next_sequence(), 12u);
  EXPECT_EQ(got.size(), 11u);
  // Resynchronise at the earliest hinted record still intact. The window starts at 1536 (tail
  // 5632 - 4096); the hint for 1536 shares its slot with the tail's own hint (5632), which replaced
  // it, so the first boundary known is record 14 at 1664.
  const TailWord b = earliest_retained(ring.ref(), 0);
  EXPECT_EQ(b.position, 1664u);
  EXPECT_EQ(b.next_sequence, 14u);
  r.skip_to(b);
  EXPECT_EQ(poll_one(), ReadState::ready);
  ASSERT_EQ(got.size(), 12u);
  EXPECT_EQ(got.back().sequence, 14u);
  EXPECT_EQ(got.back().lost_before, 2u);  // 12 and 13
  EXPECT_TRUE(got.back().payload_intact);
  EXPECT_EQ(poll_one(), ReadState::ready);
  EXPECT_EQ(got.back().sequence, 15u);
  EXPECT_EQ(got.back().lost_before, 0u);
}

// The producer never waits; the reader polls now and then, falls behind by random amounts, is
// lapped many times and every time resynchronises an eighth of a lap ahead of the overwrite front.
TEST(DropReader, LappedReaderResyncsAndCountsExactlyWhatItSkipped) {
  constexpr std::uint64_t kCapacity = 1 << 14;
  constexpr std::uint32_t kMax = 1000;
  TestRing ring(kCapacity, kMax);
  const RingRef ref = ring.ref();
  RingWriter w(ref, 1);
  RingReader r(ref, 0, 1);
  std::vector<std::byte> buffer(2 * frame_size(kMax));
  std::mt19937_64 rng(99);
  Published pub;

  std::uint64_t pending_skip = 0;  // skipped by skip_to, not yet reported by a record
  std::uint64_t last = 0;
  std::uint64_t received = 0;
  std::uint64_t lost = 0;
  std::uint64_t lapped = 0;
  std::uint64_t skips = 0;
  auto on_record = [&](const RecordView& v) {
    EXPECT_EQ(v.lost_before, pending_skip) << "sequence " << v.sequence;
    EXPECT_EQ(v.sequence, last + 1 + v.lost_before);
    EXPECT_EQ(v.type, RecordType::data);
    EXPECT_TRUE(ringtest::payload_ok(v.payload, v.length, v.sequence)) << v.sequence;
    EXPECT_EQ(v.timestamp_ns, ringtest::stamp(v.sequence));
    pending_skip = 0;
    last = v.sequence;
    lost += v.lost_before;
    ++received;
  };
  auto poll = [&](std::size_t max_records) {
    std::size_t n = 0;
    const ReadState st = r.poll_copy(on_record, max_records, buffer.data(), buffer.size(), n);
    EXPECT_NE(st, ReadState::corrupt);
    if (st == ReadState::lapped) {
      ++lapped;
      const TailWord tail = ref.load_tail();
      const TailWord b = earliest_retained(ref, kCapacity / 8);
      EXPECT_TRUE(pub.is_boundary(b, tail)) << b.position << " " << b.next_sequence;
      EXPECT_GE(b.position + kCapacity, tail.position + kCapacity / 8);
      EXPECT_GE(b.next_sequence, r.next_sequence());
      if (b.next_sequence > r.next_sequence()) ++skips;
      pending_skip += b.next_sequence - r.next_sequence();
      r.skip_to(b);
      EXPECT_EQ(r.position(), b.position);
    }
    return st;
  };

  while (pub.count() < 100'000) {
    const std::uint64_t burst = rng() % 8 == 0 ? rng() % 400 : rng() % 40;
    for (std::uint64_t i = 0; i < burst; ++i) {
      ClaimTicket t;
      const auto len =
          static_cast<std::uint32_t>(rng() % 16 == 0 ? rng() % (kMax + 1) : rng() % 120);
      ASSERT_EQ(publish(w, len, UINT64_MAX, &t), ClaimStatus::ok);
      pub.add(t);
    }
    poll(1 + rng() % 32);
  }
  // The producer stops; the reader drains what is left.
  for (int i = 0; i < 100'000; ++i) {
    const ReadState st = poll(64);
    if (st == ReadState::empty) break;
  }
  EXPECT_EQ(r.next_sequence(), pub.count() + 1);
  EXPECT_EQ(r.position(), ref.load_tail().position);
  EXPECT_EQ(last, pub.count());  // the margin leaves records after every resync
  EXPECT_EQ(pending_skip, 0u);
  EXPECT_EQ(received + lost, pub.count());
  EXPECT_GT(lapped, 100u);
  EXPECT_GT(skips, 100u);
  EXPECT_GT(received, pub.count() / 20);
}

TEST(Boundaries, EarliestRetainedIsRecordOneUntilTheFirstLapIsReused) {
  constexpr std::uint64_t kCapacity = 8192;
  TestRing ring(kCapacity, 1000);
  RingWriter w(ring.ref(), 1);
  const TailWord fresh = earliest_retained(ring.ref(), 0);
  EXPECT_EQ(fresh.position, 0u);
  EXPECT_EQ(fresh.next_sequence, 1u);
  for (;;) {
    if (ring.ref().load_tail().position + 1024 > kCapacity) break;  // inside the margin now
    const TailWord b = earliest_retained(ring.ref(), 1024);
    EXPECT_EQ(b.position, 0u);
    EXPECT_EQ(b.next_sequence, 1u);
    ASSERT_EQ(publish(w, 200, UINT64_MAX), ClaimStatus::ok);
  }
  const TailWord tail = ring.ref().load_tail();
  const TailWord b = earliest_retained(ring.ref(), 1024);
  EXPECT_GE(b.position, tail.position + 1024 - kCapacity);
  EXPECT_GT(b.next_sequence, 1u);
  EXPECT_EQ(b.position, (b.next_sequence - 1) * frame_size(200));
}

TEST(Boundaries, FindBoundaryLandsOnARealRecordWithItsSequence) {
  constexpr std::uint64_t kCapacity = 1 << 15;
  constexpr std::uint32_t kMax = 2000;
  constexpr std::uint64_t kChunk = kCapacity / kCheckpoints;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    TestRing ring(kCapacity, kMax);
    RingWriter w(ring.ref(), 1);
    const Published pub = publish_laps(w, 3 + seed, seed, seed % 2 ? kMax : 100);
    const TailWord tail = ring.ref().load_tail();
    int found = 0;
    int tried = 0;
    for (std::uint64_t m = tail.position - kCapacity; m < tail.position; m += 97) {
      const auto b = find_boundary(ring.ref(), m);
      const bool far_from_tail = m + kChunk + 2 * frame_size(kMax) < tail.position;
      if (far_from_tail) ++tried;
      if (!b) {
        EXPECT_FALSE(far_from_tail) << "no boundary at or after " << m;
        continue;
      }
      ++found;
      ASSERT_GE(b->position, m);
      ASSERT_LT(b->position, tail.position);
      ASSERT_TRUE(pub.is_boundary(*b, tail)) << b->position << " " << b->next_sequence;
      // A hint per 1/64 lap: the boundary found is near, not just somewhere after.
      EXPECT_LE(b->position - m, kChunk + 2 * frame_size(kMax));
      // Reading from it yields every record from its sequence up to the tail.
      RingReader r(ring.ref(), b->position, b->next_sequence);
      std::vector<Seen> got;
      ASSERT_EQ(drain_inplace(r, got), ReadState::empty);
      ASSERT_EQ(got.size(), tail.next_sequence - b->next_sequence);
      for (std::size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i].sequence, b->next_sequence + i);
        ASSERT_TRUE(got[i].payload_intact);
      }
    }
    EXPECT_GE(found, tried);
    EXPECT_GT(tried, 250);
    // Nothing at or after the tail.
    EXPECT_EQ(find_boundary(ring.ref(), tail.position), std::nullopt);
  }
}

TEST(Boundaries, EarliestRetainedKeepsTheMarginAndIsReal) {
  constexpr std::uint64_t kCapacity = 1 << 15;
  TestRing ring(kCapacity, 2000);
  RingWriter w(ring.ref(), 1);
  Published pub;
  std::mt19937_64 rng(3);
  while (ring.ref().load_tail().position < 6 * kCapacity) {
    ClaimTicket t;
    ASSERT_EQ(publish(w, static_cast<std::uint32_t>(rng() % 700), UINT64_MAX, &t), ClaimStatus::ok);
    pub.add(t);
    if (pub.count() % 7 != 0) continue;
    const TailWord tail = ring.ref().load_tail();
    for (std::uint64_t margin : {std::uint64_t{0}, kCapacity / 8, kCapacity / 2}) {
      const TailWord b = earliest_retained(ring.ref(), margin);
      ASSERT_TRUE(pub.is_boundary(b, tail)) << b.position << " " << b.next_sequence;
      if (tail.position + margin <= kCapacity) {
        ASSERT_EQ(b.position, 0u);
        ASSERT_EQ(b.next_sequence, 1u);
      } else {
        ASSERT_GE(b.position + kCapacity, tail.position + margin);
      }
    }
  }
}

TEST(Boundaries, BoundaryForSequenceIsAtOrBeforeThatRecord) {
  constexpr std::uint64_t kCapacity = 1 << 15;
  constexpr std::uint32_t kMax = 2000;
  TestRing ring(kCapacity, kMax);
  RingWriter w(ring.ref(), 1);
  const Published pub = publish_laps(w, 5, 17, kMax);
  const TailWord tail = ring.ref().load_tail();
  const TailWord first = earliest_retained(ring.ref(), 0);
  ASSERT_TRUE(pub.is_boundary(first, tail));
  ASSERT_GE(first.position + kCapacity, tail.position);
  std::vector<Seen> got;
  for (std::uint64_t s = 1; s <= tail.next_sequence + 5; ++s) {
    const TailWord b = boundary_for_sequence(ring.ref(), s);
    ASSERT_TRUE(pub.is_boundary(b, tail)) << s;
    if (s >= tail.next_sequence) {  // not yet published: the tail
      ASSERT_EQ(b.position, tail.position) << s;
      ASSERT_EQ(b.next_sequence, tail.next_sequence) << s;
    } else if (s < first.next_sequence) {  // overwritten, or before any known boundary
      ASSERT_EQ(b.position, first.position) << s;
      ASSERT_EQ(b.next_sequence, first.next_sequence) << s;
    } else {
      ASSERT_LE(b.next_sequence, s);
      // Walking forward from it reaches s, intact.
      RingReader r(ring.ref(), b.position, b.next_sequence);
      got.clear();
      std::size_t n = 0;
      ASSERT_EQ(r.poll_inplace([&](const RecordView& v) { got.push_back(ringtest::seen(v)); },
                               s - b.next_sequence + 1, n),
                ReadState::ready);
      ASSERT_EQ(got.back().sequence, s);
      ASSERT_TRUE(got.back().payload_intact);
      // And it is close: the next hint would have been past s.
      EXPECT_LE(pub.position[s] - b.position, kCapacity / kCheckpoints + 2 * frame_size(kMax));
    }
  }
}

}  // namespace
}  // namespace shmbus::core
