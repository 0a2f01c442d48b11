// The consistency walk behind `shmbus inspect` (core/ring_walk.hpp): what it counts and keeps on
// healthy rings (empty, one lap, several laps from capacity/8 past the overwrite front, abandoned
// and pending claims), that an uncommitted claim ends the walk as pending, never as a problem,
// even with later records committed first (out-of-order commits of two producers, a batch's
// padding written at claim time, a header being repaired, a damaged commit word), what it reports
// as a problem (headers no writer produces), and that producers overwriting what it walks end the
// walk as overtaken, never as a problem. Checked by position, sequence and header content against
// what the test wrote. Single-threaded on heap memory, except WalkInterrupted (a fault handler
// plays the producers in the middle of a walk, on guarded memory) and the one live test at the end.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "core/ring_walk.hpp"
#include "tests/core/ring_testing.hpp"

namespace shmbus::core {
namespace {

using ringtest::fill_payload;
using ringtest::payload_ok;
using ringtest::stamp;
using ringtest::TestRing;

constexpr std::uint64_t kCapacity = 4096;
constexpr std::uint32_t kMax = 992;  // a maximum frame is a quarter lap
constexpr std::uint16_t kProducer = 7;

std::string show(const WalkedRecord& r) {
  return "{pos " + std::to_string(r.position) + " seq " + std::to_string(r.sequence) + " len " +
         std::to_string(r.length) + " type " + std::to_string(r.type) + " producer " +
         std::to_string(r.producer) + " ts " + std::to_string(r.timestamp_ns) +
         (r.pending ? " pending}" : "}");
}

std::vector<std::string> show(const std::vector<WalkedRecord>& records) {
  std::vector<std::string> out;
  for (const WalkedRecord& r : records) out.push_back(show(r));
  return out;
}

std::string show(const std::vector<WalkProblem>& problems) {
  std::string out;
  for (const WalkProblem& p : problems) {
    out.append("at ").append(std::to_string(p.position)).append(": ").append(p.what).append("\n");
  }
  return out.empty() ? "<no problems>" : out;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Writes records through a RingWriter and remembers every header it wrote (lap-end padding
// included), in position order, as the walk should find it.
class Script {
 public:
  explicit Script(const TestRing& ring, bool exclusive = false)
      : writer_(ring.ref(), kProducer, exclusive) {}

  // Claims, writes (payload tagged with the sequence), commits.
  ClaimTicket publish(std::uint32_t length) {
    ClaimTicket t;
    EXPECT_EQ(ringtest::publish(writer_, length, UINT64_MAX, &t), ClaimStatus::ok);
    note_padding(t);
    headers.push_back(record(t, RecordType::data, stamp(t.sequence), false));
    return t;
  }

  // Claims, writes the pending header, then gives the claim up.
  ClaimTicket abandon(std::uint32_t length) {
    ClaimTicket t;
    EXPECT_EQ(writer_.try_claim(length, UINT64_MAX, t), ClaimStatus::ok);
    t.timestamp_ns = stamp(t.sequence);
    writer_.write_header(t, t.timestamp_ns);
    writer_.abandon(t);
    note_padding(t);
    headers.push_back(record(t, RecordType::abandoned, t.timestamp_ns, false));
    return t;
  }

  // Claims the way a publisher does: begin() (the padding, if any), no header until commit().
  ClaimTicket claim(std::uint32_t length, RingWriter* by = nullptr) {
    RingWriter& w = by ? *by : writer_;
    ClaimTicket t;
    EXPECT_EQ(w.try_claim(length, UINT64_MAX, t), ClaimStatus::ok);
    t.timestamp_ns = stamp(t.sequence);
    w.begin(t, t.timestamp_ns);
    note_padding(t);
    return t;
  }

  // A batch claimed and begun the same way; the padding (if any) is written now.
  std::vector<ClaimTicket> claim_batch(std::vector<std::uint32_t> lengths) {
    std::vector<ClaimTicket> t(lengths.size());
    EXPECT_EQ(writer_.try_claim_batch(lengths, UINT64_MAX, t), ClaimStatus::ok);
    for (ClaimTicket& c : t) {
      c.timestamp_ns = stamp(t[0].sequence);
      writer_.begin(c, c.timestamp_ns);
    }
    note_padding(t[0]);
    return t;
  }

  // Writes the payload and commits with the header (commit_with_header).
  void commit(const ClaimTicket& t, RingWriter* by = nullptr) {
    RingWriter& w = by ? *by : writer_;
    fill_payload(t.payload, t.length, t.sequence);
    EXPECT_EQ(w.commit_with_header(t, t.timestamp_ns), CommitStatus::ok);
    headers.push_back(record(t, RecordType::data, t.timestamp_ns, false));
  }

  RingWriter& writer() { return writer_; }

  static WalkedRecord record(const ClaimTicket& t, RecordType type, std::int64_t ts,
                             bool pending) {
    WalkedRecord r;
    r.position = t.position;
    r.sequence = t.sequence;
    r.length = t.length;
    r.type = static_cast<std::uint16_t>(type);
    r.producer = kProducer;
    r.timestamp_ns = ts;
    r.pending = pending;
    return r;
  }

  // Padding the claim put before its record (write_header and begin write it, committed).
  void note_padding(const ClaimTicket& t) {
    if (t.start == t.position) return;
    WalkedRecord p;
    p.position = t.start;
    p.sequence = 0;
    p.length = static_cast<std::uint32_t>(t.position - t.start - kRecordHeaderSize);
    p.type = static_cast<std::uint16_t>(RecordType::padding);
    p.producer = kProducer;
    p.timestamp_ns = stamp(t.sequence);
    headers.push_back(p);
  }

  // The headers at or after `from` and before `to`, in position order (commits need not be).
  std::vector<WalkedRecord> from(std::uint64_t position, std::uint64_t to = UINT64_MAX) const {
    std::vector<WalkedRecord> out;
    for (const WalkedRecord& r : headers) {
      if (r.position >= position && r.position < to) out.push_back(r);
    }
    std::sort(out.begin(), out.end(), [](const WalkedRecord& a, const WalkedRecord& b) {
      return a.position < b.position;
    });
    return out;
  }

  // The position of the header written for `sequence`.
  std::uint64_t position_of(std::uint64_t sequence) const {
    for (const WalkedRecord& r : headers) {
      if (r.sequence == sequence) return r.position;
    }
    ADD_FAILURE() << "no record " << sequence;
    return 0;
  }

  std::vector<WalkedRecord> headers;

 private:
  RingWriter writer_;
};

// Every walked data record lies where the walk says, with the payload tagged with its sequence.
void expect_payloads_at(const TestRing& ring, const std::vector<WalkedRecord>& walked) {
  const RingRef ref = ring.ref();
  for (const WalkedRecord& r : walked) {
    if (r.type != static_cast<std::uint16_t>(RecordType::data) || r.pending) continue;
    const std::byte* payload = ring.data() + (r.position & ref.mask) + kRecordHeaderSize;
    EXPECT_TRUE(payload_ok(payload, r.length, r.sequence)) << show(r);
  }
}

void expect_healthy(const RingWalk& w) {
  EXPECT_TRUE(w.problems.empty()) << show(w.problems);
  EXPECT_FALSE(w.overtaken);
}

// Healthy, and stopped at no uncommitted claim.
void expect_complete(const RingWalk& w) {
  expect_healthy(w);
  EXPECT_EQ(w.stopped_at_pending, UINT64_MAX);
  EXPECT_FALSE(w.committed_beyond_pending);
}

// Healthy, stopped at the uncommitted claim at `position`: one pending record, no problem.
void expect_pending_at(const RingWalk& w, std::uint64_t position, bool committed_beyond) {
  expect_healthy(w);
  EXPECT_EQ(w.stopped_at_pending, position);
  EXPECT_EQ(w.to_position, position);
  EXPECT_EQ(w.pending_records, 1u);
  EXPECT_EQ(w.committed_beyond_pending, committed_beyond);
}

// Lengths with every frame size from one to six half-lines, and the largest record.
constexpr std::array<std::uint32_t, 18> kVaried = {0,   1,  31, 32, 33,  64,  100, 200, kMax,
                                                   5,   17, 96, 128, 150, 0,  77,  250, 1};

// --- healthy rings ---------------------------------------------------------------------------

// What the walk read from `from` on, as the script wrote it, up to `to`: the data records
// contiguous by sequence and tagged with it, the counts right.
void expect_walked_as_written(const TestRing& ring, const Script& s, const RingWalk& w,
                              std::uint64_t to) {
  const std::vector<WalkedRecord> want = s.from(w.from_position, to);
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(want.front().position, w.from_position) << "the walk starts on a record boundary";
  EXPECT_EQ(show(w.last), show(want));
  std::uint64_t data = 0;
  std::uint64_t padding = 0;
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  for (const WalkedRecord& r : want) {
    if (r.type == static_cast<std::uint16_t>(RecordType::padding)) {
      ++padding;
      continue;
    }
    if (first == 0) first = r.sequence;
    if (last != 0) {
      EXPECT_EQ(r.sequence, last + 1) << show(r);
    }
    last = r.sequence;
    ++data;
  }
  EXPECT_EQ(w.data_records, data);
  EXPECT_EQ(w.padding_records, padding);
  EXPECT_EQ(w.first_sequence, first);
  EXPECT_EQ(w.last_sequence, last);
  expect_payloads_at(ring, w.last);
}

TEST(RingWalk, EmptyRingHasNoRecordsAndNoProblems) {
  TestRing ring(kCapacity, kMax);
  const RingWalk w = walk_ring(ring.ref(), 8);
  expect_complete(w);
  EXPECT_EQ(w.start_margin, kCapacity / 8);
  EXPECT_EQ(w.from_position, 0u);
  EXPECT_EQ(w.to_position, 0u);
  EXPECT_EQ(w.head_position, 0u);
  EXPECT_EQ(w.first_sequence, 0u);
  EXPECT_EQ(w.last_sequence, 0u);
  EXPECT_EQ(w.data_records, 0u);
  EXPECT_EQ(w.padding_records, 0u);
  EXPECT_EQ(w.abandoned_records, 0u);
  EXPECT_EQ(w.pending_records, 0u);
  EXPECT_TRUE(w.last.empty());
}

TEST(RingWalk, OneLapOfVariedRecordsIsWalkedFromSequenceOneToTheHead) {
  TestRing ring(kCapacity, kMax);
  Script s(ring);
  for (std::uint32_t len : kVaried) s.publish(len);
  const std::uint64_t head = ring.ref().load_tail().position;
  ASSERT_LE(head + kCapacity / 8, kCapacity) << "the walk must start at record 1";
  ASSERT_EQ(s.headers.size(), kVaried.size());

  for (std::size_t keep : {std::size_t{1}, std::size_t{5}, kVaried.size(), std::size_t{100}}) {
    SCOPED_TRACE("keep " + std::to_string(keep));
    const RingWalk w = walk_ring(ring.ref(), keep);
    expect_complete(w);
    EXPECT_EQ(w.from_position, 0u);
    EXPECT_EQ(w.to_position, head);
    EXPECT_EQ(w.head_position, head);
    EXPECT_EQ(w.first_sequence, 1u);
    EXPECT_EQ(w.last_sequence, kVaried.size());
    EXPECT_EQ(w.data_records, kVaried.size());
    EXPECT_EQ(w.padding_records, 0u);
    EXPECT_EQ(w.abandoned_records, 0u);
    EXPECT_EQ(w.pending_records, 0u);
    const std::size_t kept = std::min(keep, kVaried.size());
    const std::vector<WalkedRecord> want(s.headers.end() - static_cast<std::ptrdiff_t>(kept),
                                         s.headers.end());
    EXPECT_EQ(show(w.last), show(want));
    expect_payloads_at(ring, w.last);
  }
}

TEST(RingWalk, KeepZeroKeepsNothingButCountsEverything) {
  TestRing ring(kCapacity, kMax);
  Script s(ring);
  for (std::uint32_t len : kVaried) s.publish(len);
  const RingWalk w = walk_ring(ring.ref(), 0);
  expect_complete(w);
  EXPECT_TRUE(w.last.empty());
  EXPECT_EQ(w.data_records, kVaried.size());
  EXPECT_EQ(w.first_sequence, 1u);
  EXPECT_EQ(w.last_sequence, kVaried.size());
  EXPECT_EQ(w.to_position, ring.ref().load_tail().position);
}

// Several laps with padding at the lap ends; walked after every record of the last laps, so that
// the head (and the overwrite front one lap behind it) lies everywhere in a lap, lap ends too.
TEST(RingWalk, WrappedRingIsWalkedFromTheEarliestRetainedRecord) {
  TestRing ring(kCapacity, kMax);
  Script s(ring);
  std::uint64_t walks_with_padding = 0;
  for (std::uint64_t i = 0; i < 200; ++i) {
    s.publish(kVaried[(i * 7) % kVaried.size()]);
    if (i < 60) continue;
    SCOPED_TRACE("after " + std::to_string(i + 1) + " records");
    const TailWord tail = ring.ref().load_tail();
    ASSERT_GT(tail.position, 2 * kCapacity);
    const RingWalk w = walk_ring(ring.ref(), 1000);
    expect_complete(w);
    EXPECT_EQ(w.head_position, tail.position);
    EXPECT_EQ(w.to_position, tail.position);
    // Not before the overwrite front plus the readers' margin (capacity/8), and not much after
    // it: the walk covers most of a lap.
    EXPECT_EQ(w.start_margin, kCapacity / 8);
    EXPECT_GE(w.from_position, tail.position - kCapacity + w.start_margin);
    EXPECT_LT(w.from_position, tail.position - kCapacity / 2);

    expect_walked_as_written(ring, s, w, UINT64_MAX);
    EXPECT_EQ(w.last_sequence, tail.next_sequence - 1);
    EXPECT_EQ(w.abandoned_records, 0u);
    EXPECT_EQ(w.pending_records, 0u);
    if (w.padding_records > 0) ++walks_with_padding;
  }
  std::uint64_t paddings_written = 0;
  for (const WalkedRecord& r : s.headers) {
    paddings_written += r.type == static_cast<std::uint16_t>(RecordType::padding);
  }
  EXPECT_GE(paddings_written, 5u) << "the test must put padding at lap ends";
  EXPECT_GT(walks_with_padding, 100u);
}

TEST(RingWalk, AbandonedRecordsAreCountedApartFromDataAndAreNoProblem) {
  TestRing ring(kCapacity, kMax);
  Script s(ring);
  s.publish(40);
  s.publish(100);
  s.abandon(300);  // sequence 3
  s.publish(0);
  s.abandon(0);  // sequence 5
  s.abandon(kMax);  // sequence 6
  s.publish(64);
  const RingWalk w = walk_ring(ring.ref(), 100);
  expect_complete(w);
  EXPECT_EQ(w.data_records, 4u);
  EXPECT_EQ(w.abandoned_records, 3u);
  EXPECT_EQ(w.pending_records, 0u);
  EXPECT_EQ(w.first_sequence, 1u);
  EXPECT_EQ(w.last_sequence, 7u);
  EXPECT_EQ(w.to_position, ring.ref().load_tail().position);
  EXPECT_EQ(show(w.last), show(s.headers));
  expect_payloads_at(ring, w.last);
}

// The producer of the last claim has not committed: with its pending header written
// (write_header) the walk steps over it; without a header yet (begin(), the header comes with
// commit_with_header) it cannot, and stops there. Neither is a problem.
TEST(RingWalk, UncommittedClaimAtTheHeadIsPendingNotAProblem) {
  for (bool header_written : {true, false}) {
    SCOPED_TRACE(header_written ? "pending header" : "no header yet");
    TestRing ring(kCapacity, kMax);
    Script s(ring);
    for (int i = 0; i < 5; ++i) s.publish(static_cast<std::uint32_t>(50 * i));
    ClaimTicket t;
    ASSERT_EQ(s.writer().try_claim(120, UINT64_MAX, t), ClaimStatus::ok);
    ASSERT_EQ(t.sequence, 6u);
    if (header_written) {
      s.writer().write_header(t, stamp(6));
    } else {
      s.writer().begin(t, stamp(6));
    }
    const RingWalk w = walk_ring(ring.ref(), 3);
    if (header_written) {
      expect_complete(w);  // stepped over with the pending header's length
    } else {
      expect_pending_at(w, t.position, false);
    }
    EXPECT_EQ(w.head_position, t.end);
    EXPECT_EQ(w.pending_records, 1u);
    EXPECT_EQ(w.data_records, 5u);
    EXPECT_EQ(w.first_sequence, 1u);
    std::vector<WalkedRecord> want(s.headers.end() - (header_written ? 2 : 3), s.headers.end());
    if (header_written) {
      EXPECT_EQ(w.to_position, t.end);
      EXPECT_EQ(w.last_sequence, 6u);
      want.push_back(Script::record(t, RecordType::data, stamp(6), true));
    } else {
      EXPECT_EQ(w.to_position, t.position);
      EXPECT_EQ(w.last_sequence, 5u);
    }
    EXPECT_EQ(show(w.last), show(want));

    // Once committed, the same claim is an ordinary record.
    if (header_written) {
      ASSERT_EQ(s.writer().commit(t), CommitStatus::ok);
    } else {
      ASSERT_EQ(s.writer().commit_with_header(t, stamp(6)), CommitStatus::ok);
    }
    const RingWalk after = walk_ring(ring.ref(), 3);
    expect_complete(after);
    EXPECT_EQ(after.pending_records, 0u);
    EXPECT_EQ(after.data_records, 6u);
    EXPECT_EQ(after.last_sequence, 6u);
    EXPECT_EQ(after.to_position, t.end);
  }
}

// A claim in a later lap whose header is not written yet still holds the previous lap's header
// for that slot: claimed, not corrupt.
TEST(RingWalk, UncommittedClaimOverThePreviousLapsHeaderIsPending) {
  TestRing ring(kCapacity, kMax);
  Script s(ring);
  for (int i = 0; i < 40; ++i) s.publish(96);  // 128-byte frames: every lap has the same slots
  ClaimTicket t;
  ASSERT_EQ(s.writer().try_claim(96, UINT64_MAX, t), ClaimStatus::ok);
  s.writer().begin(t, stamp(t.sequence));
  ASSERT_EQ(ring.record_at(t.position).commit.load(), ring.ref().committed(t.position - kCapacity));
  const RingWalk w = walk_ring(ring.ref(), 1);
  expect_pending_at(w, t.position, false);
  EXPECT_EQ(w.last_sequence, 40u);
  ASSERT_EQ(w.last.size(), 1u);
  EXPECT_EQ(w.last[0].sequence, 40u);
}

// The same with the slot in the middle of the previous lap's payload (records of other sizes
// then): the header of a claim not written yet holds whatever bytes that lap left there. It is a
// claim being written (the way every publisher claims: begin(), then commit_with_header()), with
// nothing committed after it at the head.
TEST(RingWalk, UncommittedClaimOverThePreviousLapsPayloadIsPending) {
  for (bool header_written : {false, true}) {
    SCOPED_TRACE(header_written ? "fields written, commit word not yet" : "no header yet");
    TestRing ring(kCapacity, kMax);
    Script s(ring);
    for (int i = 0; i < 32; ++i) s.publish(96);  // lap 0: 128-byte frames
    s.publish(32);                                // lap 1: a 64-byte frame at 4096
    ClaimTicket t;
    ASSERT_EQ(s.writer().try_claim(96, UINT64_MAX, t), ClaimStatus::ok);
    ASSERT_EQ(t.position, kCapacity + 64);  // in record 1's payload in lap 0
    s.writer().begin(t, stamp(t.sequence));
    RecordHeader& h = ring.record_at(t.position);
    if (header_written) {  // write_header's field stores, before its pending word
      h.length = t.length;
      h.type = static_cast<std::uint16_t>(RecordType::data);
      h.sequence = t.sequence;
    }
    const std::uint64_t word = h.commit.load();
    ASSERT_NE(((word & ~kCommitStateMask) ^ ring.ref().key) & ring.ref().mask,
              t.position & ring.ref().mask)
        << "the slot must hold no lap's header";
    const RingWalk w = walk_ring(ring.ref(), 2);
    expect_pending_at(w, t.position, false);
    EXPECT_EQ(w.head_position, t.end);
    EXPECT_EQ(w.last_sequence, 33u);
    EXPECT_EQ(show(w.last), show(s.from(s.headers[s.headers.size() - 2].position)));

    ASSERT_EQ(s.writer().commit_with_header(t, stamp(t.sequence)), CommitStatus::ok);
    const RingWalk after = walk_ring(ring.ref(), 1);
    expect_complete(after);
    EXPECT_EQ(after.pending_records, 0u);
    EXPECT_EQ(after.to_position, t.end);
    EXPECT_EQ(after.last_sequence, 34u);
  }
}

// Two producers on one (multi-producer) ring in its second lap, where the slots hold the previous
// lap's payload: A claims first, B after it, and B commits first. The walk stops at A's claim as
// pending, with a committed record beyond it; never a problem. Once A commits, it reaches the head.
TEST(RingWalk, OutOfOrderCommitsOfTwoProducersStopAtTheFirstUncommittedClaim) {
  TestRing ring(kCapacity, kMax);
  Script s(ring);
  RingWriter b(ring.ref(), kProducer);
  for (int i = 0; i < 32; ++i) s.publish(96);  // lap 0: 128-byte frames
  s.publish(32);                                // lap 1: a 64-byte frame at 4096
  const ClaimTicket ta = s.claim(96);
  const ClaimTicket tb = s.claim(200, &b);
  ASSERT_EQ(ta.position, kCapacity + 64);  // in lap 0's record 1 payload
  ASSERT_EQ(tb.position, ta.end);
  ASSERT_EQ(tb.sequence, ta.sequence + 1);

  // Both claimed, neither committed: pending at A, nothing committed after it.
  RingWalk w = walk_ring(ring.ref(), 100);
  expect_pending_at(w, ta.position, false);
  EXPECT_EQ(w.head_position, tb.end);
  EXPECT_EQ(w.last_sequence, 33u);
  expect_walked_as_written(ring, s, w, ta.position);

  s.commit(tb, &b);
  w = walk_ring(ring.ref(), 100);
  expect_pending_at(w, ta.position, true);
  EXPECT_EQ(w.last_sequence, 33u);
  expect_walked_as_written(ring, s, w, ta.position);

  s.commit(ta);
  w = walk_ring(ring.ref(), 100);
  expect_complete(w);
  EXPECT_EQ(w.to_position, tb.end);
  EXPECT_EQ(w.pending_records, 0u);
  EXPECT_EQ(w.last_sequence, tb.sequence);
  expect_walked_as_written(ring, s, w, UINT64_MAX);
}

// One producer (exclusive writer), in the second lap where the slots hold lap 0's payload: claim
// A is not committed yet when the next claim, a batch across the lap end, writes its padding at
// claim time (begin()). The committed padding after A makes A a claim with a record committed
// beyond it, not a problem. With A committed, the walk steps over the padding and stops at the
// batch's first record at the next lap's start (whose slot holds lap 1's header); with the
// batch's last record committed first, there is again a committed record beyond it.
TEST(RingWalk, BatchAcrossTheLapEndWithItsPaddingWrittenIsPending) {
  TestRing ring(kCapacity, kMax);
  Script s(ring, /*exclusive=*/true);
  for (int i = 0; i < 32; ++i) s.publish(96);  // lap 0: 128-byte frames
  s.publish(32);                                // lap 1: a 64-byte frame, later slots off 128
  for (int i = 0; i < 29; ++i) s.publish(96);  // up to 7872
  const ClaimTicket a = s.claim(96);
  ASSERT_EQ(a.position, 2 * kCapacity - 320);
  const std::uint64_t word = ring.record_at(a.position).commit.load();
  ASSERT_NE(((word & ~kCommitStateMask) ^ ring.ref().key) & ring.ref().mask,
            a.position & ring.ref().mask)
      << "A's slot must hold lap 0's payload, no header";
  const std::vector<ClaimTicket> batch = s.claim_batch({96, 96, 96});
  ASSERT_EQ(batch[0].start, a.end);
  ASSERT_EQ(batch[0].position, 2 * kCapacity) << "the batch must cross the lap end";
  ASSERT_EQ(ring.record_at(a.end).commit.load(), ring.ref().committed(a.end))
      << "the padding is written at claim time";
  ASSERT_EQ(ring.record_at(2 * kCapacity).commit.load(), ring.ref().committed(kCapacity));

  RingWalk w = walk_ring(ring.ref(), 100);
  expect_pending_at(w, a.position, true);
  EXPECT_EQ(w.head_position, batch.back().end);
  EXPECT_EQ(w.last_sequence, 62u);
  expect_walked_as_written(ring, s, w, a.position);

  s.commit(a);
  w = walk_ring(ring.ref(), 100);
  expect_pending_at(w, 2 * kCapacity, false);
  EXPECT_EQ(w.padding_records, 1u);
  EXPECT_EQ(w.last_sequence, a.sequence);
  expect_walked_as_written(ring, s, w, 2 * kCapacity);

  s.commit(batch[2]);
  w = walk_ring(ring.ref(), 100);
  expect_pending_at(w, 2 * kCapacity, true);
  expect_walked_as_written(ring, s, w, 2 * kCapacity);

  s.commit(batch[0]);
  s.commit(batch[1]);
  w = walk_ring(ring.ref(), 100);
  expect_complete(w);
  EXPECT_EQ(w.to_position, batch.back().end);
  EXPECT_EQ(w.last_sequence, batch.back().sequence);
  expect_walked_as_written(ring, s, w, UINT64_MAX);
}

// --- corruption ------------------------------------------------------------------------------

// Records 1..12 of kVaried in lap 0; the tests damage record 7 (100 bytes, at position 416).
class WalkCorruption : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kVictim = 7;
  WalkCorruption() : ring_(kCapacity, kMax), script_(ring_) {
    for (std::size_t i = 0; i < 12; ++i) script_.publish(kVaried[i]);
    victim_ = script_.position_of(kVictim);
    head_ = ring_.ref().load_tail().position;
  }
  RecordHeader& victim() { return ring_.record_at(victim_); }

  // The walk reports one problem at the victim, naming its position, and stops there having
  // walked records 1..6.
  void expect_stopped_at_victim(const std::string& what) {
    const RingWalk w = walk_ring(ring_.ref(), 100);
    ASSERT_EQ(w.problems.size(), 1u) << show(w.problems);
    EXPECT_EQ(w.problems[0].position, victim_);
    EXPECT_TRUE(contains(w.problems[0].what, "position " + std::to_string(victim_)))
        << w.problems[0].what;
    EXPECT_TRUE(contains(w.problems[0].what, what)) << w.problems[0].what;
    EXPECT_FALSE(w.overtaken);
    EXPECT_EQ(w.to_position, victim_);
    EXPECT_EQ(w.head_position, head_);
    EXPECT_EQ(w.data_records, kVictim - 1);
    EXPECT_EQ(w.pending_records, 0u);
    EXPECT_EQ(w.first_sequence, 1u);
    EXPECT_EQ(w.last_sequence, kVictim - 1);
    const std::vector<WalkedRecord> want(script_.headers.begin(),
                                         script_.headers.begin() + (kVictim - 1));
    EXPECT_EQ(show(w.last), show(want));
    EXPECT_EQ(w.stopped_at_pending, UINT64_MAX);
  }

  // No problem: the walk stops at the victim as at an uncommitted claim, records 1..6 walked,
  // the records after it committed.
  void expect_pending_at_victim() {
    const RingWalk w = walk_ring(ring_.ref(), 100);
    expect_pending_at(w, victim_, true);
    EXPECT_EQ(w.head_position, head_);
    EXPECT_EQ(w.data_records, kVictim - 1);
    EXPECT_EQ(w.first_sequence, 1u);
    EXPECT_EQ(w.last_sequence, kVictim - 1);
    const std::vector<WalkedRecord> want(script_.headers.begin(),
                                         script_.headers.begin() + (kVictim - 1));
    EXPECT_EQ(show(w.last), show(want));
  }

  TestRing ring_;
  Script script_;
  std::uint64_t victim_ = 0;
  std::uint64_t head_ = 0;
};

TEST_F(WalkCorruption, HealthyBeforeDamage) {
  const RingWalk w = walk_ring(ring_.ref(), 100);
  expect_complete(w);
  EXPECT_EQ(w.data_records, 12u);
  EXPECT_EQ(w.to_position, head_);
  EXPECT_EQ(show(w.last), show(script_.headers));
}

TEST_F(WalkCorruption, LengthAboveMaxMessageIsAProblem) {
  victim().length = kMax + 1;
  expect_stopped_at_victim("above the maximum");
}

TEST_F(WalkCorruption, UnknownTypeIsAProblem) {
  victim().type = 9;
  expect_stopped_at_victim("unknown type 9");
}

TEST_F(WalkCorruption, UnknownCommitStateIsAProblem) {
  victim().commit.store(ring_.ref().committed(victim_) | 7);
  expect_stopped_at_victim("unknown commit state 7");
}

// A commit word that is no record's (no lap's word for this slot, or no word at all) cannot be
// told from a claim whose header is not written yet: the slot of such a claim holds whatever the
// previous lap left, and commits after it need not wait for it. Readers take it for a stalled
// claim and repair it as abandoned; the walk stops there as pending, with records committed
// beyond it, and reports no problem.
TEST_F(WalkCorruption, GarbageCommitWordIsAStalledClaimNotAProblem) {
  const RingRef ref = ring_.ref();
  for (std::uint64_t garbage :
       {ref.committed(victim_ + kFrameAlignment), ref.committed(victim_ - 2 * kFrameAlignment),
        ref.committed(victim_ + kCapacity / 2), std::uint64_t{0},
        std::uint64_t{0x4141414141414141}, std::uint64_t{0xdeadbeefcafef00d}}) {
    SCOPED_TRACE("commit word " + std::to_string(garbage));
    // No lap's word for this slot: its position differs from the victim's by no whole lap.
    const std::uint64_t word_position = (garbage & ~kCommitStateMask) ^ ref.key;
    ASSERT_NE((word_position - victim_) & ref.mask, 0u);
    victim().commit.store(garbage);
    expect_pending_at_victim();
  }
}

// The same at the last record: nothing committed beyond it, as a claim being written at the head.
TEST_F(WalkCorruption, GarbageCommitWordOfTheLastRecordIsPendingAtTheHead) {
  const std::uint64_t last = script_.position_of(12);
  ring_.record_at(last).commit.store(0x4141414141414141);
  const RingWalk w = walk_ring(ring_.ref(), 100);
  expect_pending_at(w, last, false);
  EXPECT_EQ(w.data_records, 11u);
  EXPECT_EQ(w.last_sequence, 11u);
}

// A repairer wins the word first (repairing) and writes length, type and sequence after it
// (ring_repair.cpp): until it commits, the fields may be anything the claim's slot held. The walk
// does not trust them: pending, no problem, even with fields no writer produces. Once the
// repairer commits the record as abandoned, the walk goes on to the head.
TEST_F(WalkCorruption, HeaderBeingRepairedIsPendingNotAProblem) {
  const RingRef ref = ring_.ref();
  const std::uint32_t length = victim().length;
  victim().commit.store(commit_word(ref.key, victim_, kStateRepairing));
  for (std::uint32_t stale : {length, kMax + 1, std::uint32_t{4000}}) {
    SCOPED_TRACE("length " + std::to_string(stale));
    victim().length = stale;
    victim().sequence = 99;
    expect_pending_at_victim();
  }
  // The repairer's field stores, then its commit.
  victim().length = length;
  victim().type = static_cast<std::uint16_t>(RecordType::abandoned);
  victim().producer = 0;
  victim().sequence = kVictim;
  victim().commit.store(ref.committed(victim_));
  const RingWalk w = walk_ring(ref, 100);
  expect_complete(w);
  EXPECT_EQ(w.to_position, head_);
  EXPECT_EQ(w.abandoned_records, 1u);
  EXPECT_EQ(w.data_records, 11u);
  EXPECT_EQ(w.last_sequence, 12u);
}

// A length within max_message whose frame runs past the lap end: the last record of lap 0,
// 128 bytes before the end, claims a 256-byte frame.
TEST(RingWalkCorruption, LengthPastTheLapEndIsAProblem) {
  TestRing ring(kCapacity, kMax);
  Script s(ring);
  for (int i = 0; i < 31; ++i) s.publish(96);  // 31 frames of 128
  const ClaimTicket last = s.publish(96);
  ASSERT_EQ(last.position, kCapacity - 128);
  ASSERT_EQ(last.sequence, 32u);
  ring.record_at(last.position).length = 200;
  const RingWalk w = walk_ring(ring.ref(), 2);
  ASSERT_EQ(w.problems.size(), 1u) << show(w.problems);
  EXPECT_EQ(w.problems[0].position, last.position);
  EXPECT_TRUE(contains(w.problems[0].what, "position " + std::to_string(last.position)))
      << w.problems[0].what;
  EXPECT_TRUE(contains(w.problems[0].what, "runs past the end")) << w.problems[0].what;
  EXPECT_FALSE(w.overtaken);
  EXPECT_EQ(w.to_position, last.position);
  // The head is at the lap end: the walk starts capacity/8 past the overwrite front, at record 5.
  EXPECT_EQ(w.from_position, kCapacity / 8);
  EXPECT_EQ(w.first_sequence, kCapacity / 8 / 128 + 1);
  EXPECT_EQ(w.data_records, 31u - kCapacity / 8 / 128);
  EXPECT_EQ(w.last_sequence, 31u);
  ASSERT_EQ(w.last.size(), 2u);
  EXPECT_EQ(w.last[1].sequence, 31u);
  EXPECT_EQ(w.last[1].position, kCapacity - 256);
}

// A sequence that breaks contiguity can be stepped over (its length is valid): the walk reports
// it and goes on to the head. Record 7 says 12: the break into it and the one out of it (8 after
// 12) are both at the damaged record or right after it.
TEST_F(WalkCorruption, SequenceBreakIsReportedAndTheWalkGoesOn) {
  victim().sequence = 12;
  const RingWalk w = walk_ring(ring_.ref(), 100);
  ASSERT_FALSE(w.problems.empty());
  EXPECT_EQ(w.problems[0].position, victim_);
  EXPECT_TRUE(contains(w.problems[0].what, "position " + std::to_string(victim_)))
      << w.problems[0].what;
  EXPECT_TRUE(contains(w.problems[0].what, "sequence 12 where 7 was expected"))
      << w.problems[0].what;
  const std::uint64_t next = script_.position_of(kVictim + 1);
  for (const WalkProblem& p : w.problems) {
    EXPECT_TRUE(p.position == victim_ || p.position == next) << show(w.problems);
  }
  EXPECT_FALSE(w.overtaken);
  EXPECT_EQ(w.to_position, head_);
  EXPECT_EQ(w.data_records, 12u);
  EXPECT_EQ(w.first_sequence, 1u);
  EXPECT_EQ(w.last_sequence, 12u);
  ASSERT_EQ(w.last.size(), 12u);
  EXPECT_EQ(w.last[kVictim - 1].sequence, 12u);
  EXPECT_EQ(w.last[kVictim].sequence, kVictim + 1);
  EXPECT_EQ(w.last[11].position, script_.position_of(12));
}

// --- overtaken -------------------------------------------------------------------------------

// A header the walk reaches already holds the next lap's record for that slot (committed, or
// claimed with its header pending): producers passed the walk. Not a problem: run it again.
TEST_F(WalkCorruption, LaterLapsRecordEndsTheWalkAsOvertaken) {
  const RingRef ref = ring_.ref();
  for (std::uint64_t state : {kStateCommitted, kStatePending}) {
    for (std::uint64_t laps : {1u, 3u}) {
      SCOPED_TRACE("state " + std::to_string(state) + ", " + std::to_string(laps) + " laps on");
      victim().commit.store(commit_word(ref.key, victim_ + laps * kCapacity, state));
      const RingWalk w = walk_ring(ref, 100);
      EXPECT_TRUE(w.overtaken);
      EXPECT_TRUE(w.problems.empty()) << show(w.problems);
      EXPECT_EQ(w.to_position, victim_);
      EXPECT_EQ(w.data_records, kVictim - 1);
      EXPECT_EQ(w.pending_records, 0u);
      EXPECT_EQ(w.last_sequence, kVictim - 1);
      EXPECT_EQ(w.last.size(), kVictim - 1);
    }
  }
}

// Producers lapping the walk between its look at the head and its read of one header, made
// deterministic: that header's page is inaccessible, and the fault of the walk's first read of it
// runs `producers` (the page open again) before the read goes on. What they leave there is a
// later lap's record being written, so the walk is overtaken: no problem may be reported for it.
struct Interruption {
  std::byte* page = nullptr;
  std::size_t page_size = 0;
  void (*producers)(void*) = nullptr;
  void* context = nullptr;
  bool fired = false;
};
Interruption* g_interruption = nullptr;

void on_fault(int sig, siginfo_t* info, void*) {
  Interruption* in = g_interruption;
  auto* addr = static_cast<std::byte*>(info->si_addr);
  if (in == nullptr || in->fired || addr < in->page || addr >= in->page + in->page_size) {
    ::signal(sig, SIG_DFL);  // not ours: the access faults again and ends the program
    return;
  }
  in->fired = true;
  ::mprotect(in->page, in->page_size, PROT_READ | PROT_WRITE);
  in->producers(in->context);
}

class WalkInterrupted : public ::testing::Test {
 public:
  // 16 pages; lap 0 holds records 1..512 in 128-byte frames and the head is at the lap end, so
  // the walk starts at the checkpoint capacity/8 past the overwrite front (position 8192, record
  // 65, on page 2), without reading the victim's page first. The victim, record 161, starts
  // page 5.
  static constexpr std::uint64_t kBigCapacity = 1 << 16;
  static constexpr std::uint64_t kVictim = 161;
  static constexpr std::uint64_t kVictimPosition = (kVictim - 1) * 128;
  static constexpr std::uint64_t kStart = kBigCapacity / 8;
  static constexpr std::uint64_t kFirst = kStart / 128 + 1;  // the first record walked

  WalkInterrupted()
      : ring_(kBigCapacity, kMax, ringtest::Memory::guarded), writer_(ring_.ref(), kProducer) {
    for (int i = 0; i < 512; ++i) {
      EXPECT_EQ(ringtest::publish(writer_, 96, UINT64_MAX), ClaimStatus::ok);
    }
  }

  // Walks with `producers` run when the walk first touches the victim's page. False if this
  // process cannot take the fault (a sanitizer keeps SIGSEGV to itself).
  bool walk_interrupted(void (*producers)(void*), RingWalk& w) {
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    Interruption in;
    in.page = ring_.data() + kVictimPosition;
    in.page_size = page;
    in.producers = producers;
    in.context = this;
    if (page != 4096 || reinterpret_cast<std::uintptr_t>(in.page) % page != 0) return false;
    struct sigaction sa = {};
    struct sigaction old = {};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(SIGSEGV, &sa, &old) != 0) return false;
    struct sigaction now = {};
    ::sigaction(SIGSEGV, nullptr, &now);
    if ((now.sa_flags & SA_SIGINFO) == 0 || now.sa_sigaction != on_fault) {
      ::sigaction(SIGSEGV, &old, nullptr);
      return false;
    }
    g_interruption = &in;
    EXPECT_EQ(::mprotect(in.page, page, PROT_NONE), 0);
    w = walk_ring(ring_.ref(), 4);
    g_interruption = nullptr;
    ::sigaction(SIGSEGV, &old, nullptr);
    ::mprotect(in.page, page, PROT_READ | PROT_WRITE);
    EXPECT_TRUE(in.fired) << "the walk never read the victim's page";
    return true;
  }

  void expect_overtaken_at_victim(const RingWalk& w) {
    EXPECT_TRUE(w.problems.empty()) << show(w.problems);
    EXPECT_TRUE(w.overtaken);
    EXPECT_EQ(w.from_position, kStart);
    EXPECT_EQ(w.head_position, kBigCapacity);
    EXPECT_EQ(w.to_position, kVictimPosition);
    EXPECT_EQ(w.stopped_at_pending, UINT64_MAX);
    EXPECT_EQ(w.first_sequence, kFirst);
    EXPECT_EQ(w.data_records, kVictim - kFirst);
    EXPECT_EQ(w.last_sequence, kVictim - 1);
    ASSERT_EQ(w.last.size(), 4u);
    EXPECT_EQ(w.last.back().sequence, kVictim - 1);
  }

  TestRing ring_;
  RingWriter writer_;
};

// The producer whose claim reaches the victim's slot in lap 1 has stored its header fields and
// not yet its commit word (write_header, or commit_with_header, preempted between the two): the
// walk reads the victim's own commit word over the new record's length and sequence.
TEST_F(WalkInterrupted, HeaderHalfRewrittenByTheNextLapIsOvertaken) {
  RingWalk w;
  const bool ran = walk_interrupted([](void* ctx) {
    auto* self = static_cast<WalkInterrupted*>(ctx);
    ClaimTicket t;
    do {  // claims 513.. up to the one over the victim; only that one is written
      if (self->writer_.try_claim(96, UINT64_MAX, t) != ClaimStatus::ok) return;
    } while (t.position < kVictimPosition + kBigCapacity);
    RecordHeader* h = self->ring_.ref().header_at(t.position);
    h->length = t.length;
    h->type = static_cast<std::uint16_t>(RecordType::data);
    h->producer = kProducer;
    h->sequence = t.sequence;
    h->timestamp_ns = stamp(t.sequence);
  }, w);
  if (!ran) GTEST_SKIP() << "needs 4 KiB pages and its own SIGSEGV handler";
  EXPECT_EQ(ring_.record_at(kVictimPosition).commit.load(), ring_.ref().committed(kVictimPosition));
  EXPECT_EQ(ring_.record_at(kVictimPosition).sequence, kVictim + 512);
  expect_overtaken_at_victim(w);
}

// Lap 1's records are framed differently: the victim's header lies inside the payload of a
// committed record that starts 64 bytes before its slot, and reads as garbage.
TEST_F(WalkInterrupted, HeaderInsideTheNextLapsPayloadIsOvertaken) {
  RingWalk w;
  const bool ran = walk_interrupted([](void* ctx) {
    auto* self = static_cast<WalkInterrupted*>(ctx);
    ClaimTicket t;
    if (self->writer_.try_claim(32, UINT64_MAX, t) != ClaimStatus::ok) return;  // 64 bytes
    for (int i = 0; i < 159; ++i) {
      if (self->writer_.try_claim(96, UINT64_MAX, t) != ClaimStatus::ok) return;
    }
    if (self->writer_.try_claim(500, UINT64_MAX, t) != ClaimStatus::ok) return;
    if (t.position != kVictimPosition + kBigCapacity - 64) return;
    self->writer_.write_header(t, stamp(t.sequence));
    fill_payload(t.payload, t.length, t.sequence);
    (void)self->writer_.commit(t);
  }, w);
  if (!ran) GTEST_SKIP() << "needs 4 KiB pages and its own SIGSEGV handler";
  const std::uint64_t word = ring_.record_at(kVictimPosition).commit.load();
  const RingRef ref = ring_.ref();
  ASSERT_NE(((word & ~kCommitStateMask) ^ ref.key) & ref.mask, kVictimPosition & ref.mask)
      << "the victim's slot must hold payload, no header";
  expect_overtaken_at_victim(w);
}

// Live: a producer laps the walk while it runs. Records are all 128-byte frames so that each lap
// has its headers in the same slots (a claim whose header is not written yet then still holds the
// previous lap's header, which the walk rightly takes for pending). Each batch of eight records
// (a quarter lap, one claim) lands on the overwrite front, where every walk starts; its headers
// are filled in and then, after a pause, get their pending words, as a producer preempted
// between the two stores would leave them. A walk that copies such a header sees the old
// record's commit word over the new record's fields: it must call itself overtaken (the claim
// position shows the producers passed it), never report a sequence break or a bad header.
TEST(RingWalkLive, ProducerLappingTheWalkEndsItAsOvertakenNeverAsAProblem) {
  TestRing ring(kCapacity, kMax);
  const RingRef ref = ring.ref();
  RingWriter writer(ref, kProducer);
  auto length_of = [](std::uint64_t sequence) {
    return static_cast<std::uint32_t>(65 + sequence % 32);  // frame 128 for 65..96
  };
  for (std::uint64_t seq = 1; seq <= 32; ++seq) {
    ASSERT_EQ(ringtest::publish(writer, length_of(seq), UINT64_MAX), ClaimStatus::ok);
  }
  ASSERT_EQ(ref.load_tail().position, kCapacity);

  constexpr int kBatches = 4000;
  constexpr auto kPause = std::chrono::microseconds(3);
  std::atomic<bool> done{false};
  std::atomic<bool> producer_failed{false};
  std::thread producer([&] {
    auto pause = [](std::chrono::microseconds d) {
      const auto until = std::chrono::steady_clock::now() + d;
      while (std::chrono::steady_clock::now() < until) {
      }
    };
    std::uint64_t next = 33;
    for (int b = 0; b < kBatches; ++b) {
      std::array<std::uint32_t, 8> lengths;
      for (std::size_t i = 0; i < lengths.size(); ++i) lengths[i] = length_of(next + i);
      std::array<ClaimTicket, 8> t;
      if (writer.try_claim_batch(lengths, UINT64_MAX, t) != ClaimStatus::ok ||
          t[0].sequence != next) {
        producer_failed = true;
        break;
      }
      for (const ClaimTicket& c : t) {  // fill_header's stores, the commit word not yet
        RecordHeader* h = ref.header_at(c.position);
        h->length = c.length;
        h->type = static_cast<std::uint16_t>(RecordType::data);
        h->producer = kProducer;
        h->sequence = c.sequence;
        h->timestamp_ns = stamp(c.sequence);
      }
      pause(kPause);
      for (const ClaimTicket& c : t) {
        writer.write_header(c, stamp(c.sequence));
        fill_payload(c.payload, c.length, c.sequence);
        if (writer.commit(c) != CommitStatus::ok) producer_failed = true;
      }
      next += t.size();
      pause(kPause);
    }
    done = true;
  });

  std::uint64_t walks = 0;
  std::uint64_t overtaken = 0;
  std::uint64_t with_problems = 0;
  std::string first_problems;
  while (!done.load()) {
    const RingWalk w = walk_ring(ref, 0);
    ++walks;
    if (w.overtaken) ++overtaken;
    if (!w.problems.empty()) {
      if (with_problems++ == 0) first_problems = show(w.problems);
      continue;
    }
    if (!w.overtaken && w.to_position < w.head_position) {
      EXPECT_GE(w.pending_records, 1u) << "a walk stops early only at a claim";
      EXPECT_EQ(w.stopped_at_pending, w.to_position);
    }
  }
  producer.join();
  EXPECT_FALSE(producer_failed.load());
  EXPECT_EQ(with_problems, 0u) << "of " << walks << " walks; the first reported:\n"
                               << first_problems;
  std::printf("[ info     ] %llu walks, %llu overtaken\n", static_cast<unsigned long long>(walks),
              static_cast<unsigned long long>(overtaken));

  // Quiet again: the retained lap walks clean to the head.
  const TailWord tail = ref.load_tail();
  const RingWalk w = walk_ring(ref, 8);
  expect_complete(w);
  EXPECT_GE(w.from_position, tail.position - kCapacity + kCapacity / 8);
  EXPECT_EQ(w.to_position, tail.position);
  EXPECT_EQ(w.last_sequence, tail.next_sequence - 1);
  EXPECT_EQ(w.data_records, (tail.position - w.from_position) / 128);
  EXPECT_EQ(w.data_records, w.last_sequence - w.first_sequence + 1);
}

}  // namespace
}  // namespace shmbus::core
