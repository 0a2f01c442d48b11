// What a ring accepts from shared memory: check_ring on segments that are not (or not yet, or no
// longer) this build's rings, and readers facing records a buggy or hostile peer rewrote. Hostile
// cases run on heap memory (AddressSanitizer flags any stray byte) and on memory fenced by
// inaccessible pages (a stray access faults in every build).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "tests/core/ring_testing.hpp"

namespace shmbus::core {
namespace {

using ringtest::drain_copy;
using ringtest::drain_inplace;
using ringtest::Memory;
using ringtest::publish;
using ringtest::Seen;
using ringtest::TestRing;

std::string check(const TestRing& ring, std::size_t size) {
  const auto err = check_ring(ring.base(), size);
  return err ? *err : std::string("<accepted>");
}
std::string check(const TestRing& ring) { return check(ring, ring.size()); }

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(CheckRing, AcceptsAFreshlyFormattedRing) {
  TestRing ring(1 << 16, 1000);
  EXPECT_EQ(check_ring(ring.base(), ring.size()), std::nullopt);
  const RingRef r = ring.ref();
  EXPECT_EQ(r.capacity, 1u << 16);
  EXPECT_EQ(r.mask, (1u << 16) - 1);
  EXPECT_EQ(r.max_message, 1000u);
  EXPECT_EQ(r.key & kCommitStateMask, 0u);
  EXPECT_EQ(r.data, static_cast<std::byte*>(ring.base()) + kRingDataOffset);
  const TailWord tail = r.load_tail();
  EXPECT_EQ(tail.position, 0u);
  EXPECT_EQ(tail.next_sequence, 1u);
  EXPECT_STREQ(ring.header().name, "core.test");
}

TEST(CheckRing, ZeroFilledRegionIsNotARing) {
  std::vector<std::byte> zeros(ring_segment_size(4096));
  const auto err = check_ring(zeros.data(), zeros.size());
  ASSERT_TRUE(err.has_value());
  EXPECT_TRUE(contains(*err, "not a shmbus ring")) << *err;
  EXPECT_TRUE(contains(*err, "magic 0000000000000000")) << *err;
}

TEST(CheckRing, RegionSmallerThanAHeaderIsNamed) {
  TestRing ring(4096, 100);
  const std::string err = check(ring, 100);
  EXPECT_TRUE(contains(err, "segment is 100 bytes, smaller than a ring header")) << err;
}

TEST(CheckRing, WrongMagicIsNamedWithBothValues) {
  TestRing ring(4096, 100);
  ring.header().magic = 0x1122334455667788ULL;
  const std::string err = check(ring);
  EXPECT_TRUE(contains(err, "not a shmbus ring")) << err;
  EXPECT_TRUE(contains(err, "1122334455667788")) << err;
  EXPECT_TRUE(contains(err, "474e495253424d48")) << err;  // the expected magic
}

TEST(CheckRing, OtherLayoutVersionIsNamed) {
  TestRing ring(4096, 100);
  ring.header().layout_version = kLayoutVersion + 1;
  const std::string err = check(ring);
  EXPECT_TRUE(contains(err, "layout version " + std::to_string(kLayoutVersion + 1))) << err;
  EXPECT_TRUE(contains(err, "reads version " + std::to_string(kLayoutVersion))) << err;
}

TEST(CheckRing, OtherLayoutFingerprintIsNamed) {
  TestRing ring(4096, 100);
  ring.header().layout_fingerprint = 0xdeadbeefcafef00dULL;
  const std::string err = check(ring);
  EXPECT_TRUE(contains(err, "layout fingerprint deadbeefcafef00d")) << err;
  EXPECT_TRUE(contains(err, "incompatible build")) << err;
}

TEST(CheckRing, OtherHeaderSizeIsNamedAsAnotherLayout) {
  TestRing ring(4096, 100);
  ring.header().header_size = sizeof(RingHeader) + 64;
  const std::string err = check(ring);
  EXPECT_TRUE(contains(err, "header " + std::to_string(sizeof(RingHeader) + 64) + " bytes")) << err;
  EXPECT_TRUE(contains(err, "incompatible build")) << err;
}

TEST(CheckRing, MissingReadyMarkerIsNamed) {
  TestRing ring(4096, 100);
  ring.header().ready.store(0);
  const std::string err = check(ring);
  EXPECT_TRUE(contains(err, "not ready")) << err;
  ring.header().ready.store(kReadyMarker ^ 1);
  EXPECT_TRUE(contains(check(ring), "not ready"));
}

TEST(CheckRing, SizeMismatchIsNamedWithBothSizes) {
  TestRing ring(8192, 100);
  const std::size_t declared = ring_segment_size(8192);
  for (std::size_t size : {declared - 4096, declared - 1, declared + 1, declared + 4096}) {
    const std::string err = check(ring, size);
    EXPECT_TRUE(contains(err, "segment is " + std::to_string(size) + " bytes")) << err;
    EXPECT_TRUE(contains(err, "declares " + std::to_string(declared))) << err;
  }
}

TEST(CheckRing, BadGeometryIsNamed) {
  TestRing ring(8192, 100);
  ring.header().capacity = 8000;
  std::string err = check(ring);
  EXPECT_TRUE(contains(err, "bad geometry")) << err;
  EXPECT_TRUE(contains(err, "capacity 8000")) << err;
  ring.header().capacity = 8192;
  ring.header().max_message = 8192;
  err = check(ring);
  EXPECT_TRUE(contains(err, "bad geometry")) << err;
  EXPECT_TRUE(contains(err, "max message 8192")) << err;
}

TEST(CheckRing, CommitKeyWithStateBitsIsRefused) {
  TestRing ring(4096, 100);
  ring.header().commit_key |= kStatePending;
  EXPECT_TRUE(contains(check(ring), "commit key"));
}

TEST(CheckRing, GarbageSegmentsNeverCrashAndAreRefused) {
  constexpr std::size_t kSize = ring_segment_size(4096);
  std::vector<std::byte> seg(kSize);
  int refused = 0;
  int runs = 0;
  for (std::uint64_t seed = 1; seed <= 3000; ++seed) {
    std::mt19937_64 rng(seed);
    for (std::size_t i = 0; i < kRingDataOffset; i += 8) {
      const std::uint64_t v = rng();
      std::memcpy(seg.data() + i, &v, 8);
    }
    // Most seeds get past the first checks so that the later ones see garbage too.
    auto* h = reinterpret_cast<RingHeader*>(seg.data());
    const std::uint64_t stage = seed % 8;
    if (stage >= 1) h->magic = kRingMagic;
    if (stage >= 2) h->layout_version = kLayoutVersion;
    if (stage >= 3) {
      h->header_size = sizeof(RingHeader);
      h->layout_fingerprint = layout_fingerprint();
    }
    if (stage >= 4) h->ready.store(kReadyMarker);
    if (stage >= 5) h->capacity = std::uint64_t{1} << (rng() % 64);
    if (stage >= 6) h->capacity = 4096;
    if (stage >= 7) h->max_message = static_cast<std::uint32_t>(rng() % 1100);
    const std::size_t size = seed % 3 == 0 ? kSize : static_cast<std::size_t>(rng() % (2 * kSize));
    const auto err = check_ring(seg.data(), size);
    ++runs;
    if (err) {
      ++refused;
      EXPECT_FALSE(err->empty());
    }
  }
  // Only stage 7 with a usable max_message, the right size and a clean key can pass.
  EXPECT_GT(refused, runs * 9 / 10);
}

// A ring with known records, for corrupting. Readers start at (128, sequence 2): record 1 was
// overwritten by lap 1.
//   records 1..63: 96 bytes, frames of 128 at (s - 1) * 128
//   record 64:     32 bytes at 8064 (a 64-byte frame; 128 bytes left in the lap)
//   padding:       at 8128, 64 bytes
//   record 65:     64 bytes at 8192 (lap 1, over record 1)
class HostileRecord : public ::testing::TestWithParam<Memory> {
 protected:
  static constexpr std::uint64_t kCapacity = 8192;
  static constexpr std::uint32_t kMax = 600;
  static constexpr std::uint64_t kStart = 128;
  static constexpr std::uint64_t kLast = 65;

  HostileRecord() : ring_(kCapacity, kMax, GetParam()), writer_(ring_.ref(), 1) {
    for (int i = 0; i < 63; ++i) publish96();
    EXPECT_EQ(publish(writer_, 32, UINT64_MAX), ClaimStatus::ok);
    ClaimTicket t;
    EXPECT_EQ(publish(writer_, 64, UINT64_MAX, &t), ClaimStatus::ok);
    EXPECT_EQ(t.start, 8128u);
    EXPECT_EQ(t.position, 8192u);
    EXPECT_EQ(t.sequence, kLast);
  }
  void publish96() { EXPECT_EQ(publish(writer_, 96, UINT64_MAX), ClaimStatus::ok); }
  static std::uint64_t position_of(std::uint64_t seq) { return (seq - 1) * 128; }  // seq <= 64

  // Reads from the start with both kinds of poll; expects sequences 2..last_good, then `stop` at
  // `stop_position`, and the same again on a second try (a corrupt record stays corrupt).
  void expect_reads(std::uint64_t last_good, ReadState stop, std::uint64_t stop_position) {
    for (int mode = 0; mode < 2; ++mode) {
      SCOPED_TRACE(mode == 0 ? "poll_inplace" : "poll_copy");
      RingReader r(ring_.ref(), kStart, 2);
      std::vector<Seen> got;
      std::vector<std::byte> buffer(2 * frame_size(kMax));
      for (int attempt = 0; attempt < 2; ++attempt) {
        const ReadState st = mode == 0 ? drain_inplace(r, got) : drain_copy(r, got, buffer);
        EXPECT_EQ(st, stop);
        EXPECT_EQ(r.position(), stop_position);
        EXPECT_EQ(r.next_sequence(), last_good + 1);
      }
      ASSERT_EQ(got.size(), last_good - 1);
      for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].sequence, i + 2);
        EXPECT_EQ(got[i].type, RecordType::data);
        EXPECT_EQ(got[i].lost_before, 0u);
        EXPECT_TRUE(got[i].payload_intact);
      }
    }
  }

  TestRing ring_;
  RingWriter writer_;
};

TEST_P(HostileRecord, IntactRingReadsToTheEnd) {
  expect_reads(kLast, ReadState::empty, ring_.ref().load_tail().position);
}

TEST_P(HostileRecord, HugeLengthIsCorrupt) {
  for (std::uint32_t len : {UINT32_MAX, 0x8000'0000u, 1u << 20}) {
    ring_.record_at(position_of(10)).length = len;
    expect_reads(9, ReadState::corrupt, position_of(10));
  }
}

TEST_P(HostileRecord, LengthJustAboveMaxMessageIsCorrupt) {
  ring_.record_at(position_of(10)).length = kMax + 1;
  expect_reads(9, ReadState::corrupt, position_of(10));
}

TEST_P(HostileRecord, LengthRunningPastTheLapEndIsCorrupt) {
  // Record 64 has 128 bytes to the lap end; 200 bytes is below the maximum but does not fit.
  ring_.record_at(position_of(64)).length = 200;
  expect_reads(63, ReadState::corrupt, position_of(64));
  ring_.record_at(position_of(64)).length = 97;  // a 160-byte frame: 32 bytes too many
  expect_reads(63, ReadState::corrupt, position_of(64));
}

TEST_P(HostileRecord, UnknownTypeIsCorrupt) {
  for (std::uint16_t type : {std::uint16_t{0}, std::uint16_t{5}, std::uint16_t{0xffff}}) {
    ring_.record_at(position_of(10)).type = type;
    expect_reads(9, ReadState::corrupt, position_of(10));
  }
}

TEST_P(HostileRecord, DataRecordRelabelledAsPaddingIsCorrupt) {
  ring_.record_at(position_of(10)).type = static_cast<std::uint16_t>(RecordType::padding);
  expect_reads(9, ReadState::corrupt, position_of(10));
}

TEST_P(HostileRecord, WrongSequenceIsCorrupt) {
  for (std::uint64_t seq : {std::uint64_t{0}, std::uint64_t{9}, std::uint64_t{11},
                            std::uint64_t{10} + (std::uint64_t{1} << 63)}) {
    ring_.record_at(position_of(10)).sequence = seq;
    expect_reads(9, ReadState::corrupt, position_of(10));
  }
}

TEST_P(HostileRecord, WrongPaddingLengthIsCorrupt) {
  const std::uint64_t pad = kCapacity - 64;
  for (std::uint32_t len : {0u, 64u, 16u, UINT32_MAX, UINT32_MAX - 31}) {
    ring_.record_at(pad).length = len;
    expect_reads(64, ReadState::corrupt, pad);
  }
}

TEST_P(HostileRecord, AbandonedRecordWithWrongSequenceIsCorrupt) {
  ring_.record_at(position_of(10)).type = static_cast<std::uint16_t>(RecordType::abandoned);
  ring_.record_at(position_of(10)).sequence = 3;
  expect_reads(9, ReadState::corrupt, position_of(10));
}

TEST_P(HostileRecord, BoundaryHintsPointingAnywhereAreIgnored) {
  std::mt19937_64 rng(5);
  const TailWord tail = ring_.ref().load_tail();
  Checkpoint* cps = ring_.header().checkpoints;
  for (std::uint32_t i = 0; i < kCheckpoints; ++i) {
    switch (i % 6) {
      case 0:
        cps[i].position.store(position_of(2 + i % 60));
        cps[i].sequence.store(3 + i % 60);
        break;
      case 1:
        cps[i].position.store(position_of(2 + i % 60) + 8);
        cps[i].sequence.store(2 + i % 60);
        break;
      case 2:
        cps[i].position.store(tail.position + 32 * i);
        cps[i].sequence.store(kLast + 1);
        break;
      case 3:
        cps[i].position.store(position_of(2 + i % 60));
        cps[i].sequence.store(0);
        break;
      case 4:
        cps[i].position.store(rng());
        cps[i].sequence.store(rng());
        break;
      default:
        cps[i].position.store(rng() % tail.position);
        cps[i].sequence.store(rng() % 80);
        break;
    }
  }
  // Whatever is returned must be a real data record boundary of this ring with its sequence
  // (the padding at 8128 is not among the hints; see BoundaryHints below).
  auto expect_boundary = [&](TailWord b) {
    if (b.position == tail.position) {
      EXPECT_EQ(b.next_sequence, tail.next_sequence);
      return;
    }
    ASSERT_EQ(b.position % kFrameAlignment, 0u);
    ASSERT_LT(b.position, tail.position);
    RingReader r(ring_.ref(), b.position, b.next_sequence);
    std::vector<Seen> got;
    EXPECT_EQ(drain_inplace(r, got), ReadState::empty) << "from " << b.position;
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.front().sequence, b.next_sequence);
    EXPECT_EQ(got.back().sequence, kLast);
  };
  int found = 0;
  for (std::uint64_t m = 0; m < tail.position; m += 96) {
    if (auto b = find_boundary(ring_.ref(), m)) {
      ++found;
      EXPECT_GE(b->position, m);
      expect_boundary(*b);
    }
  }
  EXPECT_EQ(found, 0);  // no hint above is both aligned, committed and of the right sequence
  expect_boundary(earliest_retained(ring_.ref(), 0));
  for (std::uint64_t s = 0; s < 80; ++s) expect_boundary(boundary_for_sequence(ring_.ref(), s));
}

INSTANTIATE_TEST_SUITE_P(Memory, HostileRecord, ::testing::Values(Memory::heap, Memory::guarded),
                         [](const auto& info) {
                           return info.param == Memory::heap ? "Heap" : "Guarded";
                         });

// A hint may name a padding record (a claim ended where the next claim had to pad). Its sequence
// is then that of the record after the padding, at the next lap start; a hint whose sequence does
// not match that record (torn by two producers a lap apart, or hostile) must be ignored like any
// other mismatching hint, or the reader starting there reports a healthy ring as corrupt.
TEST(BoundaryHints, HintAtAPaddingRecordIsCheckedAgainstTheRecordAfterIt) {
  constexpr std::uint64_t kCapacity = 4096;
  TestRing ring(kCapacity, 992);
  RingWriter w(ring.ref(), 1);
  for (int i = 0; i < 31; ++i) ASSERT_EQ(publish(w, 96, UINT64_MAX), ClaimStatus::ok);
  ASSERT_EQ(publish(w, 32, UINT64_MAX), ClaimStatus::ok);  // 64 bytes left in lap 0
  ClaimTicket t;
  ASSERT_EQ(publish(w, 64, UINT64_MAX, &t), ClaimStatus::ok);  // padding at 4032, record 33
  ASSERT_EQ(t.start, kCapacity - 64);
  for (Checkpoint& cp : ring.header().checkpoints) {
    cp.position.store(0);
    cp.sequence.store(0);
  }
  ring.header().checkpoints[63].position.store(kCapacity - 64);
  ring.header().checkpoints[63].sequence.store(7);  // the record after the padding is 33
  const auto b = find_boundary(ring.ref(), 2048);
  if (b) {
    RingReader r(ring.ref(), b->position, b->next_sequence);
    std::vector<Seen> got;
    EXPECT_EQ(drain_inplace(r, got), ReadState::empty)
        << "find_boundary returned {" << b->position << ", " << b->next_sequence
        << "}: a padding hint whose sequence is not that of the record after the padding";
  }
}

// Random bytes in the whole data area under a valid header, then a chain of well-formed records
// (data and lap-end padding) across one lap with random damage every few records, and committed
// words planted over random fields elsewhere. Nothing may crash; each delivered record must lie
// inside the data area (or the copy buffer), be well formed and come in sequence order.
TEST(HostileRing, RandomDataAreaNeverCrashesAReader) {
  constexpr std::uint64_t kCapacity = 8192;
  constexpr std::uint32_t kMax = 600;
  std::uint64_t delivered_total = 0;
  std::uint64_t corrupt_total = 0;
  std::uint64_t stalls_total = 0;
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    TestRing ring(kCapacity, kMax, seed % 2 ? Memory::heap : Memory::guarded);
    const RingRef ref = ring.ref();
    std::mt19937_64 rng(seed);
    for (std::uint64_t i = 0; i < kCapacity; i += 8) {
      const std::uint64_t v = rng();
      std::memcpy(ring.data() + i, &v, 8);
    }
    const std::uint64_t lap = rng() % 3;
    const std::uint64_t lap_start = lap * kCapacity;
    // Random damage to one field of a header, or a random committed word.
    auto damage = [&](std::uint64_t pos) {
      RecordHeader& h = ring.record_at(pos);
      const std::uint64_t room = kCapacity - (pos & ref.mask);
      switch (rng() % 8) {
        case 0: h.length = static_cast<std::uint32_t>(rng()); break;
        case 1: h.length = static_cast<std::uint32_t>(room - kRecordHeaderSize); break;
        case 2: h.length = kMax + static_cast<std::uint32_t>(rng() % 3) - 1; break;
        case 3: h.length = static_cast<std::uint32_t>(rng() % 700); break;
        case 4: h.type = static_cast<std::uint16_t>(rng() % 5); break;
        case 5: h.sequence = rng() % 4 == 0 ? rng() : h.sequence + rng() % 3 - 1; break;
        case 6: h.commit.store(commit_word(ref.key, pos, kStatePending)); break;
        default: h.commit.store(rng()); break;
      }
    };
    // The chain: every position of this lap is a record boundary, most of them intact.
    const std::uint64_t first_sequence = 1 + rng() % 300;
    std::uint64_t seq = first_sequence;
    std::vector<std::uint64_t> boundaries;
    for (std::uint64_t pos = lap_start; pos < lap_start + kCapacity;) {
      boundaries.push_back(pos);
      RecordHeader& h = ring.record_at(pos);
      const std::uint64_t room = kCapacity - (pos & ref.mask);
      const auto len = static_cast<std::uint32_t>(rng() % 8 == 0 ? kMax : rng() % 300);
      std::uint64_t frame;
      if (frame_size(len) > room) {
        h.length = static_cast<std::uint32_t>(room - kRecordHeaderSize);
        h.type = static_cast<std::uint16_t>(RecordType::padding);
        h.sequence = 0;
        frame = room;
      } else {
        h.length = len;
        h.type =
            static_cast<std::uint16_t>(rng() % 10 == 0 ? RecordType::abandoned : RecordType::data);
        h.sequence = seq++;
        frame = frame_size(len);
      }
      h.commit.store(ref.committed(pos));
      if (rng() % 12 == 0) damage(pos);
      pos += frame;
    }
    for (int i = 0; i < 40; ++i) {
      const std::uint64_t pos = lap_start + (rng() % kCapacity) / 32 * 32;
      ring.record_at(pos).commit.store(ref.committed(pos));
      damage(pos);
    }
    ring.header().tail = TailWord{lap_start + kCapacity - (rng() % 4) * 512, seq};
    for (Checkpoint& cp : ring.header().checkpoints) {
      const bool real = rng() % 2 == 0;
      cp.position.store(real ? boundaries[rng() % boundaries.size()] : rng());
      cp.sequence.store(real ? first_sequence + rng() % (seq - first_sequence + 1) : rng());
    }

    std::vector<std::byte> buffer(2 * frame_size(kMax));
    auto check_view = [&](const RecordView& v, std::uint64_t& last, const std::byte* lo,
                          const std::byte* hi) {
      EXPECT_EQ(v.type, RecordType::data);
      EXPECT_LE(v.length, kMax);
      EXPECT_GE(v.payload, lo);
      EXPECT_LE(v.payload + v.length, hi);
      EXPECT_GT(v.sequence, last);
      last = v.sequence;
    };
    for (int start = 0; start < 8; ++start) {
      const bool on_chain = start < 4;
      const std::uint64_t pos = start == 0 ? lap_start
                                : on_chain ? boundaries[rng() % boundaries.size()]
                                           : lap_start + (rng() % kCapacity) / 32 * 32;
      const std::uint64_t first = start == 0 ? first_sequence : rng() % 300;
      RingReader in_place(ref, pos, first);
      RingReader copying(ref, pos, first);
      std::uint64_t last_in_place = 0;
      std::uint64_t last_copied = 0;
      for (int i = 0; i < 400; ++i) {
        std::size_t n = 0;
        const ReadState st = in_place.poll_inplace(
            [&](const RecordView& v) {
              check_view(v, last_in_place, ring.data(), ring.data() + kCapacity);
            },
            1 + rng() % 8, n);
        delivered_total += n;
        if (st == ReadState::corrupt) ++corrupt_total;
        EXPECT_NE(st, ReadState::lapped);
        if (st != ReadState::ready) break;
      }
      for (int i = 0; i < 400; ++i) {
        std::size_t n = 0;
        const ReadState st = copying.poll_copy(
            [&](const RecordView& v) {
              check_view(v, last_copied, buffer.data(), buffer.data() + buffer.size());
            },
            1 + rng() % 8, buffer.data(), buffer.size(), n);
        delivered_total += n;
        if (st == ReadState::corrupt) ++corrupt_total;
        if (st != ReadState::ready || n == 0) break;
      }
      // The slow-path helpers face the same garbage.
      if (auto a = analyze_stall(ref, in_place.position(), in_place.next_sequence())) {
        ++stalls_total;
        ASSERT_GE(a->count, 1);
        ASSERT_LE(a->count, 2);
        RingReader skipper(ref, in_place.position(), in_place.next_sequence());
        skip_stall(skipper, *a);
        repair_stall(ref, *a);
      }
      (void)find_boundary(ref, pos);
      (void)earliest_retained(ref, kCapacity / 8);
      (void)boundary_for_sequence(ref, first);
    }
  }
  // The chains must have been read and their damage found, or this test proves nothing.
  EXPECT_GT(delivered_total, 1000u) << corrupt_total << " corrupt, " << stalls_total << " stalls";
  EXPECT_GT(corrupt_total, 1000u);
  EXPECT_GT(stalls_total, 10u);
}

TEST(StaleHeader, FromThePreviousLapIsNotTakenAsCommitted) {
  constexpr std::uint64_t kCapacity = 4096;
  TestRing ring(kCapacity, 992);
  RingWriter w(ring.ref(), 1);
  RingReader r(ring.ref(), 0, 1);
  std::vector<Seen> got;
  for (int i = 0; i < 32; ++i) ASSERT_EQ(publish(w, 96, r.position()), ClaimStatus::ok);
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(got.size(), 32u);
  ASSERT_EQ(r.position(), kCapacity);
  // Lap 1 starts where record 1 still lies, committed for position 0.
  EXPECT_EQ(ring.record_at(kCapacity).commit.load(), ring.ref().committed(0));
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  std::vector<std::byte> buffer(8192);
  EXPECT_EQ(drain_copy(r, got, buffer), ReadState::empty);
  EXPECT_EQ(got.size(), 32u);
  // A claim in lap 1 with only its header pending is still not there.
  ClaimTicket t;
  ASSERT_EQ(w.try_claim(96, r.position(), t), ClaimStatus::ok);
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  w.write_header(t, ringtest::stamp(t.sequence));
  ringtest::fill_payload(t.payload, 96, t.sequence);
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  EXPECT_EQ(got.size(), 32u);
  ASSERT_EQ(w.commit(t), CommitStatus::ok);
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(got.size(), 33u);
  EXPECT_EQ(got.back().sequence, 33u);
  EXPECT_TRUE(got.back().payload_intact);
  // A reader that never moved sees lap 1 over its position, not record 1.
  RingReader late(ring.ref(), 0, 1);
  EXPECT_EQ(drain_inplace(late, got), ReadState::empty);
  EXPECT_EQ(got.size(), 33u);
}

TEST(StaleHeader, FromAnotherIncarnationIsNotTakenAsCommitted) {
  constexpr std::uint64_t kCapacity = 8192;
  TestRing ring(kCapacity, 600, Memory::heap, 1111);
  const std::uint64_t old_key = ring.ref().key;
  {
    RingWriter w(ring.ref(), 1);
    for (int i = 0; i < 20; ++i) ASSERT_EQ(publish(w, 100, UINT64_MAX), ClaimStatus::ok);
  }
  // The name is re-created over the same memory: a new header, the old records still there.
  format_ring(ring.base(), ringtest::params(kCapacity, 600, 2222));
  ASSERT_EQ(check_ring(ring.base(), ring.size()), std::nullopt);
  const RingRef ref = ring.ref();
  EXPECT_NE(ref.key, old_key);
  RingReader r(ref, 0, 1);
  std::vector<Seen> got;
  std::vector<std::byte> buffer(4096);
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  EXPECT_EQ(drain_copy(r, got, buffer), ReadState::empty);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(find_boundary(ref, 64), std::nullopt);
  EXPECT_EQ(analyze_stall(ref, 0, 1), std::nullopt);  // nothing claimed in this incarnation
  // The new incarnation's records are read from sequence 1.
  RingWriter w(ref, 2);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(publish(w, 40, r.position()), ClaimStatus::ok);
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(got.size(), 5u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].sequence, i + 1);
    EXPECT_EQ(got[i].length, 40u);
    EXPECT_TRUE(got[i].payload_intact);
  }
}

TEST(StaleHeader, CommitKeysOfConsecutiveIncarnationsDiffer) {
  std::vector<std::byte> seg(ring_segment_size(4096));
  std::vector<std::uint64_t> keys;
  for (std::uint64_t inc = 0; inc < 2000; ++inc) {
    format_ring(seg.data(), ringtest::params(4096, 100, inc));
    const std::uint64_t key = RingRef::attach(seg.data()).key;
    ASSERT_EQ(key & kCommitStateMask, 0u) << inc;
    ASSERT_NE(key, 0u) << inc;  // a zero-filled header never looks committed at position 0
    keys.push_back(key);
  }
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end());
}

// A peer that writes an unaligned claim position (RingHeader::tail is shared memory) must not make
// a reader or a writer index a header that straddles the end of the data area. Each body runs in a
// child (a death test) so that a fault is reported as this test's failure rather than ending the
// whole program; the child exits 0 if the ring kept to its data area.
[[noreturn]] void read_at_unaligned_tail() {
  TestRing ring(4096, 992, Memory::guarded);
  const RingRef ref = ring.ref();
  const std::uint64_t pos = 4096 - 8;  // 8 bytes before the end of the data area
  ring.header().tail = TailWord{pos, 5};
  ref.header_at(pos)->commit.store(ref.committed(pos));
  const TailWord start = ref.load_tail();
  RingReader r(ref, start.position, start.next_sequence);
  std::vector<Seen> got;
  const ReadState st = drain_inplace(r, got);
  std::exit(st == ReadState::ready ? 1 : 0);
}

[[noreturn]] void write_at_unaligned_tail() {
  TestRing ring(4096, 992, Memory::guarded);
  ring.header().tail = TailWord{4096 - 8, 5};
  RingWriter w(ring.ref(), 1);
  ClaimTicket t;
  if (w.try_claim(0, UINT64_MAX, t) == ClaimStatus::ok) {
    w.write_header(t, 1);
    (void)w.commit(t);
  }
  std::exit(0);
}

TEST(HostileTail, ReaderAtAnUnalignedTailStaysInsideTheDataArea) {
  EXPECT_EXIT(read_at_unaligned_tail(), ::testing::ExitedWithCode(0), "");
}

TEST(HostileTail, WriterAtAnUnalignedTailStaysInsideTheDataArea) {
  EXPECT_EXIT(write_at_unaligned_tail(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace shmbus::core
