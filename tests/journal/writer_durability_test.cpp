// DurabilityTracker: when an fdatasync round is due and how far durable_sequence() may move, as
// pure bookkeeping (the writer tests cover the fdatasyncs themselves).
#include "journal/writer_durability.hpp"

#include <gtest/gtest.h>

namespace shmbus::journal {
namespace {

using namespace std::chrono_literals;
using Clock = DurabilityTracker::Clock;

const Clock::time_point kStart = Clock::time_point{} + 1h;

// A batch tracker that recovered `recovered`, has `written` written and asks for a round over it.
DurabilityTracker batch_waiting(std::uint64_t recovered, std::uint64_t written) {
  DurabilityTracker t(FsyncPolicy::batch, 100ms);
  t.start(recovered, kStart);
  t.advance_written(written);
  t.request_sync_through(written);
  return t;
}

// Issues a round of `syncs` fdatasyncs, as the writer does.
void issue_round(DurabilityTracker& t, unsigned syncs, bool covered_every_file) {
  t.begin_round(kStart);
  for (unsigned i = 0; i < syncs; ++i) t.sync_issued();
  t.end_issuing(covered_every_file);
}

TEST(DurabilityTracker, UnderFsyncNeverNothingIsDurableAndNoRoundIsEverDue) {
  DurabilityTracker t(FsyncPolicy::never, 100ms);
  t.start(50, kStart);
  EXPECT_EQ(t.written(), 50u);
  EXPECT_EQ(t.durable(), 0u);
  t.advance_written(80);
  t.request_sync_through(80);
  EXPECT_FALSE(t.round_due(kStart + 1h));
  EXPECT_TRUE(t.settled_through(80)) << "never asks for nothing beyond written";
}

TEST(DurabilityTracker, RecoveredRecordsCountAsDurableWhenThePolicySyncs) {
  DurabilityTracker t(FsyncPolicy::batch, 100ms);
  t.start(50, kStart);
  EXPECT_EQ(t.written(), 50u);
  EXPECT_EQ(t.durable(), 50u);
  EXPECT_TRUE(t.settled_through(50));
  EXPECT_FALSE(t.settled_through(51));
}

TEST(DurabilityTracker, WrittenOnlyMovesForward) {
  DurabilityTracker t(FsyncPolicy::batch, 100ms);
  t.start(0, kStart);
  t.advance_written(10);
  t.advance_written(0);  // a completed write that ends no record
  EXPECT_EQ(t.written(), 10u);
}

TEST(DurabilityTracker, ARequestedRoundIsDueOnlyOnceItsSequenceIsWritten) {
  DurabilityTracker t(FsyncPolicy::batch, 100ms);
  t.start(0, kStart);
  t.advance_written(5);
  t.request_sync_through(10);
  EXPECT_FALSE(t.requested_sync_written());
  EXPECT_FALSE(t.round_due(kStart + 1h)) << "batch rounds do not come from the interval";
  t.advance_written(10);
  EXPECT_TRUE(t.requested_sync_written());
  EXPECT_TRUE(t.round_due(kStart));
}

TEST(DurabilityTracker, AnIntervalRoundIsDueWhenTheIntervalPassedWithSomethingWritten) {
  DurabilityTracker t(FsyncPolicy::interval, 100ms);
  t.start(0, kStart);
  EXPECT_FALSE(t.interval_sync_waiting());
  EXPECT_FALSE(t.round_due(kStart + 1s)) << "nothing written yet";
  t.advance_written(3);
  EXPECT_TRUE(t.interval_sync_waiting());
  EXPECT_EQ(t.next_interval_sync(), kStart + 100ms);
  EXPECT_FALSE(t.round_due(kStart + 99ms));
  EXPECT_TRUE(t.round_due(kStart + 100ms));
  t.begin_round(kStart + 150ms);
  EXPECT_EQ(t.next_interval_sync(), kStart + 250ms) << "counted from the round's start";
}

TEST(DurabilityTracker, DurableMovesToWhatWasWrittenWhenTheRoundWasIssued) {
  DurabilityTracker t = batch_waiting(0, 10);
  ASSERT_TRUE(t.round_due(kStart));
  issue_round(t, 2, true);
  EXPECT_FALSE(t.round_due(kStart + 1h)) << "one round at a time";
  t.advance_written(20);  // written after the round was issued: not covered by it
  t.sync_completed(false);
  EXPECT_EQ(t.durable(), 0u) << "the round's other fdatasync is still in flight";
  t.sync_completed(false);
  EXPECT_EQ(t.durable(), 10u);
  EXPECT_EQ(t.syncs_in_flight(), 0u);
}

TEST(DurabilityTracker, ARoundThatMissedAFileProvesNothingNew) {
  DurabilityTracker t = batch_waiting(4, 10);
  issue_round(t, 1, false);
  t.sync_completed(false);
  EXPECT_EQ(t.durable(), 4u);
  EXPECT_TRUE(t.round_due(kStart)) << "the next round tries again";
}

TEST(DurabilityTracker, ARoundWithoutFdatasyncsEndsWhenIssued) {
  DurabilityTracker t = batch_waiting(0, 7);
  issue_round(t, 0, true);  // every file was synced by an earlier round
  EXPECT_EQ(t.durable(), 7u);
}

TEST(DurabilityTracker, AStoppedWriterNeverMovesDurable) {
  DurabilityTracker t = batch_waiting(0, 10);
  issue_round(t, 2, true);
  t.sync_completed(true);  // this fdatasync failed and stopped the writer
  t.sync_completed(true);  // the other one succeeded, but proves nothing
  EXPECT_EQ(t.durable(), 0u);
}

}  // namespace
}  // namespace shmbus::journal
