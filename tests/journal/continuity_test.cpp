// The segment-continuity rule (journal/continuity.hpp) on its own, and the three places that apply
// it judging the same boundaries alike: the reader, journal::verify and the writer's recovery.
#include "journal/continuity.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "shmbus/journal_reader.hpp"
#include "journal/verify.hpp"
#include "journal/writer_recovery.hpp"
#include "tests/support/journal_files.hpp"

namespace {

using namespace shmbus;
using namespace shmbus::journal;
using shmbus::test::SegmentBuilder;
using shmbus::test::TempDir;

TEST(SegmentBreak, NothingIsJudgedWhenThePreviousEndIsUnknown) {
  EXPECT_FALSE(segment_break(kUnknownSequence, 1).has_value());
  EXPECT_FALSE(segment_break(kUnknownSequence, 12345).has_value());
}

TEST(SegmentBreak, ASegmentBeginningRightAfterThePreviousEndContinuesIt) {
  EXPECT_FALSE(segment_break(11, 11).has_value());
  EXPECT_FALSE(segment_break(1, 1).has_value());
}

TEST(SegmentBreak, ASegmentBeginningLaterLostSequencesAndIsReportedAtItsFirstRecord) {
  const auto broken = segment_break(11, 30);
  ASSERT_TRUE(broken.has_value());
  EXPECT_EQ(broken->expected_sequence, 11u);
  EXPECT_EQ(broken->first_sequence, 30u);
  EXPECT_EQ(SequenceBreak::offset, kSegmentHeaderSize);
}

TEST(SegmentBreak, ASegmentBeginningEarlierRepeatsSequencesAndIsABreakToo) {
  const auto broken = segment_break(11, 5);
  ASSERT_TRUE(broken.has_value());
  EXPECT_EQ(broken->expected_sequence, 11u);
  EXPECT_EQ(broken->first_sequence, 5u);
}

// Two segments meeting at one boundary, and whether they should be judged continuous.
// `finished_tail_damaged`: the first segment holds bytes other than zeros after its last record;
// the sequence continues, but a finished segment has no torn tail, so verify calls it damage.
struct Boundary {
  const char* name;
  bool continuous;
  void (*build)(const std::string& dir);
  bool finished_tail_damaged = false;
};

// The second segment of each case: one data record at `first`.
void second_segment(const std::string& dir, std::uint64_t first) {
  SegmentBuilder b(dir, first, 1);
  b.data(first, static_cast<std::int64_t>(first), "record");
  b.write();
}

// The first segment holds data 1..10, then `tail_of_first` (bytes that hold no record).
void two_segments(const std::string& dir, std::uint64_t second_first,
                  std::vector<std::byte> tail_of_first = {}) {
  SegmentBuilder a(dir, 1, 0);
  for (std::uint64_t s = 1; s <= 10; ++s) a.data(s, static_cast<std::int64_t>(s), "record");
  if (!tail_of_first.empty()) a.raw(tail_of_first);
  a.write();
  second_segment(dir, second_first);
}

// The first segment ends with a gap record for 6..15 after data 1..5.
void gap_at_the_end(const std::string& dir, std::uint64_t second_first) {
  SegmentBuilder a(dir, 1, 0);
  for (std::uint64_t s = 1; s <= 5; ++s) a.data(s, static_cast<std::int64_t>(s), "record");
  a.gap(6, 10, 6);
  a.write();
  second_segment(dir, second_first);
}

// The first segment's last record (10) is cut halfway: a torn tail.
void last_record_torn(const std::string& dir, std::uint64_t second_first) {
  SegmentBuilder a(dir, 1, 0);
  std::uint64_t last_offset = 0;
  for (std::uint64_t s = 1; s <= 10; ++s) last_offset = a.data(s, static_cast<std::int64_t>(s), "record");
  a.write();
  shmbus::test::truncate_file(a.path(), last_offset + 20);
  second_segment(dir, second_first);
}

const Boundary kBoundaries[] = {
    {"continues", true, [](const std::string& d) { two_segments(d, 11); }},
    {"loses sequences", false, [](const std::string& d) { two_segments(d, 15); }},
    {"repeats sequences", false, [](const std::string& d) { two_segments(d, 8); }},
    {"zeros after the last record, continued", true,
     [](const std::string& d) { two_segments(d, 11, std::vector<std::byte>(4096)); }},
    {"garbage after the last record, continued", true,
     [](const std::string& d) { two_segments(d, 11, std::vector<std::byte>(100, std::byte{0x5a})); },
     true},
    {"garbage after the last record, not continued", false,
     [](const std::string& d) { two_segments(d, 12, std::vector<std::byte>(100, std::byte{0x5a})); }},
    {"gap at the end, continued after it", true, [](const std::string& d) { gap_at_the_end(d, 16); }},
    {"gap at the end, next begins inside it", false,
     [](const std::string& d) { gap_at_the_end(d, 6); }},
    {"last record torn, next begins at it", true,
     [](const std::string& d) { last_record_torn(d, 10); }, true},
    {"last record torn, next begins after it", false,
     [](const std::string& d) { last_record_torn(d, 11); }},
};

// Whether reading the whole journal from its start meets no damage.
bool reader_reads_through(const std::string& dir) {
  auto reader = JournalReader::open(dir);
  EXPECT_TRUE(reader.has_value()) << reader.error().message;
  if (!reader) return false;
  JournalRecord record;
  ReadStatus status;
  while ((status = reader->next(record)) == ReadStatus::record) {
  }
  return status == ReadStatus::end;
}

// Whether the writer's recovery lets the newest segment stand (sets nothing aside).
bool recovery_keeps_every_segment(const std::string& dir) {
  RecoveryReport report;
  auto recovered = recover_journal(dir, false, UINT64_MAX, report);
  EXPECT_TRUE(recovered.has_value()) << recovered.error().message;
  return recovered && report.crash_repairs.empty();
}

TEST(SegmentContinuity, TheReaderVerifyAndRecoveryJudgeEveryBoundaryAlike) {
  for (const Boundary& b : kBoundaries) {
    SCOPED_TRACE(b.name);
    TempDir dir{"continuity"};
    b.build(dir.path());
    EXPECT_EQ(reader_reads_through(dir.path()), b.continuous);
    auto report = verify(dir.path());
    ASSERT_TRUE(report.has_value()) << report.error().message;
    EXPECT_EQ(report->intact(), b.continuous && !b.finished_tail_damaged);
    // Recovery last: it changes the directory (cuts the newest tail, sets segments aside).
    EXPECT_EQ(recovery_keeps_every_segment(dir.path()), b.continuous);
  }
}

}  // namespace
