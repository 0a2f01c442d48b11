// Claims that are never committed: the analysis of what a dead or stalled claim covered, the
// repair that marks it abandoned, readers that skip it (in place, by copy, or read-only without
// writing) and count its sequence lost, and the stalled producer that finds out.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/core/ring_testing.hpp"

namespace shmbus::core {
namespace {

using ringtest::drain_copy;
using ringtest::drain_inplace;
using ringtest::publish;
using ringtest::Seen;
using ringtest::TestRing;

constexpr std::uint64_t kCapacity = 8192;
constexpr std::uint32_t kMax = 1024;

// A claim whose producer dies right after the claim CAS: nothing of it is written.
ClaimTicket claim_only(RingWriter& w, std::uint32_t length, std::uint64_t gate_floor) {
  ClaimTicket t;
  EXPECT_EQ(w.try_claim(length, gate_floor, t), ClaimStatus::ok);
  return t;
}

// A claim whose producer stalls after writing its header (and payload), before committing.
ClaimTicket claim_pending(RingWriter& w, std::uint32_t length, std::uint64_t gate_floor) {
  ClaimTicket t = claim_only(w, length, gate_floor);
  w.write_header(t, ringtest::stamp(t.sequence));
  ringtest::fill_payload(t.payload, t.length, t.sequence);
  return t;
}

// A piece is a run of `count` abandoned sequences from `first` over `bytes` (count 0: padding).
void expect_run(const StallPiece& p, std::uint64_t position, std::uint64_t bytes,
                std::uint64_t first, std::uint64_t count) {
  EXPECT_EQ(p.position, position);
  EXPECT_EQ(p.bytes, bytes);
  EXPECT_EQ(p.count, count);
  if (count != 0) {
    EXPECT_EQ(p.first_sequence, first);
  }
}

void expect_piece(const StallPiece& p, std::uint64_t position, std::uint64_t bytes, RecordType type,
                  std::uint64_t sequence) {
  expect_run(p, position, bytes, sequence, type == RecordType::padding ? 0 : 1);
}

// Reads everything available with poll_inplace and with poll_copy from (position, sequence);
// both must agree with `want` (sequence, lost_before) pairs and end empty at the tail.
void expect_reads(const TestRing& ring, std::uint64_t position, std::uint64_t sequence,
                  const std::vector<std::pair<std::uint64_t, std::uint64_t>>& want) {
  for (int mode = 0; mode < 2; ++mode) {
    SCOPED_TRACE(mode == 0 ? "poll_inplace" : "poll_copy");
    RingReader r(ring.ref(), position, sequence);
    std::vector<Seen> got;
    std::vector<std::byte> buffer(2 * frame_size(ring.ref().max_message));
    EXPECT_EQ(mode == 0 ? drain_inplace(r, got) : drain_copy(r, got, buffer), ReadState::empty);
    EXPECT_EQ(r.position(), ring.ref().load_tail().position);
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].sequence, want[i].first);
      EXPECT_EQ(got[i].lost_before, want[i].second) << "sequence " << got[i].sequence;
      EXPECT_EQ(got[i].type, RecordType::data);
      EXPECT_TRUE(got[i].payload_intact) << "sequence " << got[i].sequence;
    }
  }
}

// Fills lap 0 with 63 frames of 128 bytes (records 1..63, up to 8064), read by `r`.
void fill_to_8064(RingWriter& w, RingReader& r) {
  std::vector<Seen> got;
  for (int i = 0; i < 63; ++i) ASSERT_EQ(publish(w, 96, UINT64_MAX), ClaimStatus::ok);
  ASSERT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(r.position(), 8064u);
  ASSERT_EQ(r.next_sequence(), 64u);
}

TEST(RingRepair, StalledPendingClaimIsMarkedAbandonedAndCountedLost) {
  TestRing ring(kCapacity, kMax);
  const RingRef ref = ring.ref();
  RingWriter first(ref, 1);
  RingWriter stalled(ref, 2);
  RingWriter other(ref, 3);
  ASSERT_EQ(publish(first, 100, UINT64_MAX), ClaimStatus::ok);
  const ClaimTicket t = claim_pending(stalled, 200, UINT64_MAX);
  ASSERT_EQ(t.sequence, 2u);
  ASSERT_EQ(publish(other, 50, UINT64_MAX), ClaimStatus::ok);
  ASSERT_EQ(publish(other, 60, UINT64_MAX), ClaimStatus::ok);

  // The reader waits at the stalled claim.
  RingReader r(ref, 0, 1);
  std::vector<Seen> got;
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(r.position(), t.position);
  EXPECT_EQ(r.current_commit_word(), commit_word(ref.key, t.position, kStatePending));

  const auto a = analyze_stall(ref, r.position(), r.next_sequence());
  ASSERT_TRUE(a.has_value());
  ASSERT_EQ(a->count, 1);
  EXPECT_EQ(a->abandoned_sequences, 1u);
  expect_piece(a->pieces[0], t.position, frame_size(200), RecordType::abandoned, 2);

  EXPECT_EQ(repair_stall(ref, *a), 1u);
  EXPECT_EQ(repair_stall(ref, *a), 0u);  // a second repairer finds it done
  EXPECT_EQ(analyze_stall(ref, t.position, 2), std::nullopt);
  const RecordHeader& h = ring.record_at(t.position);
  EXPECT_EQ(h.commit.load(), ref.committed(t.position));
  EXPECT_EQ(h.type, static_cast<std::uint16_t>(RecordType::abandoned));
  EXPECT_EQ(h.sequence, 2u);

  got.clear();
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].sequence, 3u);
  EXPECT_EQ(got[0].lost_before, 1u);
  EXPECT_TRUE(got[0].payload_intact);
  EXPECT_EQ(got[1].sequence, 4u);
  EXPECT_EQ(got[1].lost_before, 0u);

  // The stalled producer wakes up and learns that its claim is gone; the ring is unchanged.
  EXPECT_EQ(stalled.commit(t), CommitStatus::abandoned);
  EXPECT_EQ(h.type, static_cast<std::uint16_t>(RecordType::abandoned));
  expect_reads(ring, 0, 1, {{1, 0}, {3, 1}, {4, 0}});
}

TEST(RingRepair, RepairLosesToAProducerThatCommitsFirst) {
  TestRing ring(kCapacity, kMax);
  const RingRef ref = ring.ref();
  RingWriter slow(ref, 1);
  RingWriter other(ref, 2);
  const ClaimTicket t = claim_pending(slow, 300, UINT64_MAX);
  ASSERT_EQ(publish(other, 10, UINT64_MAX), ClaimStatus::ok);
  const auto a = analyze_stall(ref, 0, 1);
  ASSERT_TRUE(a.has_value());
  ASSERT_EQ(slow.commit(t), CommitStatus::ok);  // just in time
  EXPECT_EQ(repair_stall(ref, *a), 0u);
  expect_reads(ring, 0, 1, {{1, 0}, {2, 0}});
}

TEST(RingRepair, ClaimDeadBeforeItsHeaderIsInferredFromTheNextHeader) {
  // Once on a fresh ring, once in lap 1 over stale committed headers of lap 0.
  for (const bool stale : {false, true}) {
    SCOPED_TRACE(stale ? "over lap 0" : "fresh");
    TestRing ring(kCapacity, kMax);
    const RingRef ref = ring.ref();
    RingWriter w(ref, 1);
    RingWriter dead(ref, 2);
    RingReader r(ref, 0, 1);
    std::vector<Seen> got;
    if (stale) {
      for (int i = 0; i < 64; ++i) ASSERT_EQ(publish(w, 96, r.position()), ClaimStatus::ok);
      ASSERT_EQ(drain_inplace(r, got), ReadState::empty);
      ASSERT_EQ(r.position(), kCapacity);
    }
    const std::uint64_t base_seq = r.next_sequence();
    ASSERT_EQ(publish(w, 40, r.position()), ClaimStatus::ok);
    const ClaimTicket t = claim_only(dead, 300, r.position());
    ASSERT_EQ(t.sequence, base_seq + 1);
    ASSERT_EQ(publish(w, 70, r.position()), ClaimStatus::ok);
    ClaimTicket after;
    ASSERT_EQ(publish(w, 80, r.position(), &after), ClaimStatus::ok);

    got.clear();
    EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
    ASSERT_EQ(got.size(), 1u);
    ASSERT_EQ(r.position(), t.position);
    const auto a = analyze_stall(ref, r.position(), r.next_sequence());
    ASSERT_TRUE(a.has_value());
    ASSERT_EQ(a->count, 1);
    EXPECT_EQ(a->abandoned_sequences, 1u);
    expect_piece(a->pieces[0], t.position, t.end - t.position, RecordType::abandoned, base_seq + 1);
    EXPECT_EQ(t.end - t.position, frame_size(300));

    EXPECT_EQ(repair_stall(ref, *a), 1u);
    got.clear();
    EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].sequence, base_seq + 2);
    EXPECT_EQ(got[0].lost_before, 1u);
    EXPECT_TRUE(got[0].payload_intact);
    EXPECT_EQ(got[1].sequence, base_seq + 3);
    EXPECT_EQ(got[1].lost_before, 0u);
    EXPECT_EQ(r.position(), after.end);
    // A producer that wakes up after all learns the same.
    EXPECT_EQ(dead.commit(t), CommitStatus::abandoned);
  }
}

TEST(RingRepair, ClaimDeadBeforeItsHeaderIsInferredFromAPendingNextHeader) {
  TestRing ring(kCapacity, kMax);
  const RingRef ref = ring.ref();
  RingWriter dead(ref, 1);
  RingWriter busy(ref, 2);
  const ClaimTicket t = claim_only(dead, 500, UINT64_MAX);
  const ClaimTicket next = claim_pending(busy, 20, UINT64_MAX);  // not committed yet either
  const auto a = analyze_stall(ref, 0, 1);
  ASSERT_TRUE(a.has_value());
  ASSERT_EQ(a->count, 1);
  expect_piece(a->pieces[0], 0, frame_size(500), RecordType::abandoned, 1);
  EXPECT_EQ(repair_stall(ref, *a), 1u);
  ASSERT_EQ(busy.commit(next), CommitStatus::ok);  // the live neighbour is untouched
  expect_reads(ring, 0, 1, {{2, 1}});
  EXPECT_EQ(t.sequence, 1u);
}

TEST(RingRepair, LastClaimDeadBeforeItsHeaderTakesItsExtentFromTheTail) {
  TestRing ring(kCapacity, kMax);
  const RingRef ref = ring.ref();
  RingWriter w(ref, 1);
  RingWriter dead(ref, 2);
  ASSERT_EQ(publish(w, 64, UINT64_MAX), ClaimStatus::ok);
  const ClaimTicket t = claim_only(dead, 700, UINT64_MAX);
  ASSERT_EQ(ref.load_tail().position, t.end);

  RingReader r(ref, 0, 1);
  std::vector<Seen> got;
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(r.position(), t.position);
  const auto a = analyze_stall(ref, r.position(), r.next_sequence());
  ASSERT_TRUE(a.has_value());
  ASSERT_EQ(a->count, 1);
  expect_piece(a->pieces[0], t.position, frame_size(700), RecordType::abandoned, 2);
  EXPECT_EQ(repair_stall(ref, *a), 1u);

  // Nothing follows yet: the reader passes the hole and waits at the tail ...
  got.clear();
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(r.position(), t.end);
  EXPECT_EQ(r.next_sequence(), 3u);
  // ... and reports the loss with the next record.
  ASSERT_EQ(publish(w, 10, r.position()), ClaimStatus::ok);
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sequence, 3u);
  EXPECT_EQ(got[0].lost_before, 1u);
  expect_reads(ring, 0, 1, {{1, 0}, {3, 1}});
}

TEST(RingRepair, DeadClaimWithPaddingAcrossTheLapEndIsRepairedInTwoPieces) {
  TestRing ring(kCapacity, kMax);
  const RingRef ref = ring.ref();
  RingWriter w(ref, 1);
  RingWriter dead(ref, 2);
  RingReader r(ref, 0, 1);
  fill_to_8064(w, r);
  std::vector<Seen> got;
  ASSERT_EQ(publish(w, 32, r.position()), ClaimStatus::ok);  // record 64, 64 bytes left
  ASSERT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(r.position(), 8128u);
  // Record 65 needs 128 bytes: its claim pads 8128..8192 and starts lap 1. Its producer dies.
  const ClaimTicket t = claim_only(dead, 96, r.position());
  ASSERT_EQ(t.start, 8128u);
  ASSERT_EQ(t.position, 8192u);
  ASSERT_EQ(t.end, 8320u);
  ASSERT_EQ(publish(w, 50, r.position()), ClaimStatus::ok);  // record 66 at 8320

  const auto a = analyze_stall(ref, r.position(), r.next_sequence());
  ASSERT_TRUE(a.has_value());
  ASSERT_EQ(a->count, 2);
  EXPECT_EQ(a->abandoned_sequences, 1u);
  expect_piece(a->pieces[0], 8128, 64, RecordType::padding, 0);
  expect_piece(a->pieces[1], 8192, 128, RecordType::abandoned, 65);
  EXPECT_EQ(repair_stall(ref, *a), 1u);  // padding is not a lost sequence
  got.clear();
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sequence, 66u);
  EXPECT_EQ(got[0].lost_before, 1u);
  EXPECT_TRUE(got[0].payload_intact);
  expect_reads(ring, 8064, 64, {{64, 0}, {66, 1}});
}

TEST(RingRepair, TwoDeadClaimsAroundTheLapEndAreToldApartBySequence) {
  TestRing ring(kCapacity, kMax);
  const RingRef ref = ring.ref();
  RingWriter w(ref, 1);
  RingWriter dead1(ref, 2);
  RingWriter dead2(ref, 3);
  RingReader r(ref, 0, 1);
  fill_to_8064(w, r);
  // Record 64 ends exactly at the lap end, record 65 starts lap 1: both producers die. The bytes
  // 8064..8288 look just like the padded claim above; only the sequence after them differs. Which
  // side held which sequence cannot be known and does not matter: the repair puts both after the
  // lap start (padding before it), and readers see the two sequences lost.
  const ClaimTicket t1 = claim_only(dead1, 96, r.position());
  const ClaimTicket t2 = claim_only(dead2, 64, r.position());
  ASSERT_EQ(t1.end, 8192u);
  ASSERT_EQ(t2.start, 8192u);
  ASSERT_EQ(t2.end, 8288u);
  ASSERT_EQ(publish(w, 50, r.position()), ClaimStatus::ok);  // record 66

  const auto a = analyze_stall(ref, r.position(), r.next_sequence());
  ASSERT_TRUE(a.has_value());
  ASSERT_EQ(a->count, 2);
  EXPECT_EQ(a->abandoned_sequences, 2u);
  expect_run(a->pieces[0], 8064, 128, 0, 0);
  expect_run(a->pieces[1], 8192, 96, 64, 2);
  EXPECT_EQ(repair_stall(ref, *a), 2u);
  expect_reads(ring, 8064, 64, {{66, 2}});
}

TEST(RingRepair, DeadClaimEndingAtTheLapEndBeforeALiveRecordIsOnePiece) {
  TestRing ring(kCapacity, kMax);
  const RingRef ref = ring.ref();
  RingWriter w(ref, 1);
  RingWriter dead(ref, 2);
  RingReader r(ref, 0, 1);
  fill_to_8064(w, r);
  const ClaimTicket t = claim_only(dead, 96, r.position());
  ASSERT_EQ(t.end, 8192u);
  ASSERT_EQ(publish(w, 50, r.position()), ClaimStatus::ok);  // record 65 at the lap start
  const auto a = analyze_stall(ref, r.position(), r.next_sequence());
  ASSERT_TRUE(a.has_value());
  ASSERT_EQ(a->count, 1);
  expect_piece(a->pieces[0], 8064, 128, RecordType::abandoned, 64);
  EXPECT_EQ(repair_stall(ref, *a), 1u);
  expect_reads(ring, 8064, 64, {{65, 1}});
}

TEST(RingRepair, NothingToAnalyzeOnAnIdleRingOrACommittedRecord) {
  TestRing ring(kCapacity, kMax);
  const RingRef ref = ring.ref();
  EXPECT_EQ(analyze_stall(ref, 0, 1), std::nullopt);  // nothing claimed at all
  RingWriter w(ref, 1);
  ClaimTicket t;
  ASSERT_EQ(publish(w, 100, UINT64_MAX, &t), ClaimStatus::ok);
  EXPECT_EQ(analyze_stall(ref, 0, 1), std::nullopt);      // committed
  EXPECT_EQ(analyze_stall(ref, t.end, 2), std::nullopt);  // at the tail: idle
  EXPECT_EQ(analyze_stall(ref, t.end + 4096, 2), std::nullopt);
}

// A claim whose producer is alive but has not written its header yet looks, for a moment, just
// like a dead one. Whatever the analysis concludes while it sits behind a dead claim, the live
// producer's record must end up either delivered intact or reported lost (its commit then says
// abandoned), and the ring must stay readable.
TEST(RingRepair, RepairNeverDestroysARecordThatALiveProducerCommitsLater) {
  TestRing ring(kCapacity, kMax);
  const RingRef ref = ring.ref();
  RingWriter w(ref, 1);
  RingWriter dead(ref, 2);
  RingWriter slow(ref, 3);
  (void)claim_only(dead, 100, UINT64_MAX);                   // 1: never written
  const ClaimTicket t2 = claim_only(slow, 100, UINT64_MAX);  // 2: header not written yet
  ASSERT_EQ(publish(w, 100, UINT64_MAX), ClaimStatus::ok);   // 3
  if (const auto a = analyze_stall(ref, 0, 1)) repair_stall(ref, *a);
  slow.write_header(t2, ringtest::stamp(2));
  ringtest::fill_payload(t2.payload, t2.length, 2);
  const CommitStatus late = slow.commit(t2);

  RingReader r(ref, 0, 1);
  std::vector<Seen> got;
  for (int round = 0; round < 6; ++round) {
    ASSERT_NE(drain_inplace(r, got), ReadState::corrupt);
    if (r.position() == ref.load_tail().position) break;
    const auto a = analyze_stall(ref, r.position(), r.next_sequence());
    if (!a) break;
    repair_stall(ref, *a);
  }
  ASSERT_EQ(r.position(), ref.load_tail().position);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> want{{3, 2}};
  if (late == CommitStatus::ok) want = {{2, 1}, {3, 0}};
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].sequence, want[i].first);
    EXPECT_EQ(got[i].lost_before, want[i].second);
    EXPECT_TRUE(got[i].payload_intact);
  }
}

TEST(RingRepair, PendingHeaderOfAnotherSequenceIsNotRepaired) {
  TestRing ring(kCapacity, kMax);
  RingWriter stalled(ring.ref(), 1);
  (void)claim_pending(stalled, 100, UINT64_MAX);  // sequence 1
  EXPECT_EQ(analyze_stall(ring.ref(), 0, 5), std::nullopt);
}

TEST(RingRepair, ReadOnlyReaderSkipsAStalledClaimWithoutWriting) {
  TestRing ring(kCapacity, kMax);
  const RingRef ref = ring.ref();
  RingWriter stalled(ref, 1);
  RingWriter other(ref, 2);
  const ClaimTicket t = claim_pending(stalled, 200, UINT64_MAX);
  ASSERT_EQ(publish(other, 50, UINT64_MAX), ClaimStatus::ok);
  RingReader r(ref, 0, 1);
  std::vector<Seen> got;
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  const auto a = analyze_stall(ref, r.position(), r.next_sequence());
  ASSERT_TRUE(a.has_value());
  skip_stall(r, *a);
  EXPECT_EQ(r.position(), t.end);
  EXPECT_EQ(r.next_sequence(), 2u);
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sequence, 2u);
  EXPECT_EQ(got[0].lost_before, 1u);
  EXPECT_TRUE(got[0].payload_intact);
  // Nothing was written: the claim is still pending, and its producer may still commit it for
  // readers that did not give up on it.
  EXPECT_EQ(ring.record_at(0).commit.load(), commit_word(ref.key, 0, kStatePending));
  EXPECT_EQ(stalled.commit(t), CommitStatus::ok);
  expect_reads(ring, 0, 1, {{1, 0}, {2, 0}});
}

TEST(RingRepair, ReadOnlyReaderSkipsADeadPaddedClaimWithoutWriting) {
  TestRing ring(kCapacity, kMax);
  const RingRef ref = ring.ref();
  RingWriter w(ref, 1);
  RingWriter dead(ref, 2);
  RingReader r(ref, 0, 1);
  fill_to_8064(w, r);
  std::vector<Seen> got;
  ASSERT_EQ(publish(w, 32, r.position()), ClaimStatus::ok);
  ASSERT_EQ(drain_inplace(r, got), ReadState::empty);
  (void)claim_only(dead, 96, r.position());
  ASSERT_EQ(publish(w, 50, r.position()), ClaimStatus::ok);
  const std::uint64_t word_before = ring.record_at(8128).commit.load();
  const auto a = analyze_stall(ref, r.position(), r.next_sequence());
  ASSERT_TRUE(a.has_value());
  ASSERT_EQ(a->count, 2);
  skip_stall(r, *a);
  EXPECT_EQ(r.position(), 8320u);
  EXPECT_EQ(r.next_sequence(), 66u);
  got.clear();
  EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sequence, 66u);
  EXPECT_EQ(got[0].lost_before, 1u);
  EXPECT_EQ(ring.record_at(8128).commit.load(), word_before);
  EXPECT_NE(ring.record_at(8192).commit.load(), ref.committed(8192));
}

TEST(RingRepair, ClaimAbandonedByItsProducerIsSkippedAndCountedLost) {
  TestRing ring(kCapacity, kMax);
  RingWriter w(ring.ref(), 1);
  ClaimTicket t;
  ASSERT_EQ(w.try_claim(300, UINT64_MAX, t), ClaimStatus::ok);
  w.write_header(t, 5);
  w.abandon(t);
  ASSERT_EQ(publish(w, 30, UINT64_MAX), ClaimStatus::ok);
  expect_reads(ring, 0, 1, {{2, 1}});
  EXPECT_EQ(analyze_stall(ring.ref(), 0, 1), std::nullopt);
}

// A producer that claims a batch (one tail update for several records) and dies before writing
// all of their headers leaves a hole holding several sequences. Whoever notices must be able to
// repair it (here: up to a few analyze/repair rounds), or every reader waits at it forever and
// gating readers stall the channel. The producer wrote `written` of the three headers.
TEST(RingRepair, BatchClaimDeadBeforeItsHeadersIsRepaired) {
  for (int written = 0; written <= 2; ++written) {
    SCOPED_TRACE(std::to_string(written) + " of 3 headers written");
    TestRing ring(kCapacity, kMax);
    const RingRef ref = ring.ref();
    RingWriter w(ref, 1);
    RingWriter dead(ref, 2);
    ASSERT_EQ(publish(w, 64, UINT64_MAX), ClaimStatus::ok);
    const std::uint32_t lengths[] = {40, 200, 90};
    ClaimTicket t[3];
    ASSERT_EQ(dead.try_claim_batch(lengths, UINT64_MAX, t), ClaimStatus::ok);
    for (int i = 0; i < written; ++i) dead.write_header(t[i], ringtest::stamp(t[i].sequence));
    ASSERT_EQ(publish(w, 70, UINT64_MAX), ClaimStatus::ok);  // record 5

    RingReader r(ref, 0, 1);
    std::vector<Seen> got;
    for (int round = 0; round < 6; ++round) {
      EXPECT_EQ(drain_inplace(r, got), ReadState::empty);
      if (r.position() == ref.load_tail().position) break;
      const auto a = analyze_stall(ref, r.position(), r.next_sequence());
      if (!a) break;
      repair_stall(ref, *a);
    }
    EXPECT_EQ(got.size(), 2u) << "the reader is stuck at position " << r.position()
                              << " expecting sequence " << r.next_sequence();
    if (got.size() != 2) continue;
    EXPECT_EQ(got[1].sequence, 5u);
    EXPECT_EQ(got[1].lost_before, 3u);
    EXPECT_TRUE(got[1].payload_intact);
  }
}

// A repaired record's length is its frame minus the header: for a claim of (nearly) max_message
// bytes that is more than max_message when max_message is not a multiple of 32, and readers must
// still skip it rather than report the ring corrupt. max_message 1000: frame_size(1000) = 1056,
// so the repair writes length 1024.
TEST(RingRepair, RepairedFullSizeClaimStaysReadableWhenMaxMessageIsNotAMultipleOf32) {
  constexpr std::uint32_t kOddMax = 1000;
  for (const bool pending : {true, false}) {
    SCOPED_TRACE(pending ? "stalled after its header" : "dead before its header");
    TestRing ring(kCapacity, kOddMax);
    const RingRef ref = ring.ref();
    RingWriter stalled(ref, 1);
    RingWriter other(ref, 2);
    const ClaimTicket t = pending ? claim_pending(stalled, kOddMax, UINT64_MAX)
                                  : claim_only(stalled, kOddMax, UINT64_MAX);
    ASSERT_EQ(publish(other, 10, UINT64_MAX), ClaimStatus::ok);
    const auto a = analyze_stall(ref, 0, 1);
    ASSERT_TRUE(a.has_value());
    ASSERT_EQ(a->count, 1);
    expect_piece(a->pieces[0], 0, frame_size(kOddMax), RecordType::abandoned, 1);
    EXPECT_EQ(repair_stall(ref, *a), 1u);
    expect_reads(ring, 0, 1, {{2, 1}});
    EXPECT_EQ(t.sequence, 1u);
  }
}

}  // namespace
}  // namespace shmbus::core
