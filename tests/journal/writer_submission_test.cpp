// RecordEnds: which record a write completes, from where the newest records end in the stream.
// The writes themselves (ordering, retries, fdatasync rounds) are tested through JournalWriter in
// writer_test.cpp and writer_faults_test.cpp.
#include "journal/writer_submission.hpp"

#include <gtest/gtest.h>

namespace shmbus::journal {
namespace {

TEST(RecordEnds, AWriteCompletesTheNewestRecordEndingInsideIt) {
  RecordEnds ends;
  ends.note(1000, 7);
  ends.note(1200, 8);
  EXPECT_EQ(ends.last_sequence_in(900, 1200), 8u);
  EXPECT_EQ(ends.last_sequence_in(900, 1100), 7u) << "a full buffer cut inside record 8";
  EXPECT_EQ(ends.last_sequence_in(1000, 1100), 0u) << "only the middle of record 8";
}

TEST(RecordEnds, ARangeEndsInclusiveAndStartsExclusive) {
  RecordEnds ends;
  ends.note(500, 3);
  EXPECT_EQ(ends.last_sequence_in(499, 500), 3u);
  EXPECT_EQ(ends.last_sequence_in(500, 600), 0u) << "record 3 ended before this write";
}

TEST(RecordEnds, AGapRecordCompletesItsLastSequence) {
  RecordEnds ends;
  ends.note(640, 10);
  ends.note(700, 19);  // a gap record of sequences 11..19
  EXPECT_EQ(ends.last_sequence_in(600, 700), 19u);
}

TEST(RecordEnds, NothingNotedCompletesNothing) {
  RecordEnds ends;
  EXPECT_EQ(ends.last_sequence_in(0, 1'000'000), 0u);
}

}  // namespace
}  // namespace shmbus::journal
