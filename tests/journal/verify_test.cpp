// journal::verify on journals built byte by byte: what it says of each segment and in total, and
// its verdict: torn tails are not damage; damaged records, segments that cannot be read and
// segments that do not continue the one before are, each named by file, offset and sequence.
#include "journal/verify.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tests/support/journal_files.hpp"

namespace shmbus::journal {
namespace {

using test::journal_payload;
using test::SegmentBuilder;
using test::TempDir;

constexpr std::int64_t kBase = 1'795'773'600'000'000'000;
std::int64_t time_of(std::uint64_t sequence) { return kBase + static_cast<std::int64_t>(sequence) * 1000; }

// Three segments, built with the channel "verify.channel" and created_ns 100 + segment number:
//   segment 1:  data 1..5, a gap record for 6..8, data 9..10
//   segment 11: data 11..20
//   segment 21: data 21..30
struct Journal {
  TempDir dir{"journal-verify"};
  std::vector<SegmentBuilder> segments;

  Journal() {
    for (std::uint64_t number = 0; number < 3; ++number) {
      const std::uint64_t first = 1 + 10 * number;
      SegmentBuilder b(dir.path(), first, number, "verify.channel",
                       100 + static_cast<std::int64_t>(number));
      for (std::uint64_t s = first; s < first + 10; ++s) {
        if (s == 6) {
          b.gap(6, 3, time_of(6));
          s = 8;
          continue;
        }
        b.data(s, time_of(s), journal_payload(s, 40 + s));
      }
      b.write();
      segments.push_back(std::move(b));
    }
  }
};

JournalReport verify_ok(const std::string& dir) {
  auto report = verify(dir);
  EXPECT_TRUE(report.has_value()) << report.error().message;
  return report ? std::move(*report) : JournalReport{};
}

TEST(JournalVerify, ACleanJournalIsIntactAndEverySegmentIsDescribed) {
  Journal j;
  const JournalReport r = verify_ok(j.dir.path());
  EXPECT_TRUE(r.intact());
  EXPECT_TRUE(r.damage.empty());
  ASSERT_EQ(r.segments.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    const SegmentReport& s = r.segments[i];
    const std::uint64_t first = 1 + 10 * i;
    EXPECT_EQ(s.path, j.segments[i].path());
    EXPECT_FALSE(s.error.has_value());
    EXPECT_EQ(s.first_sequence, first);
    EXPECT_EQ(s.last_sequence, first + 9);
    EXPECT_EQ(s.file_bytes, j.segments[i].size());
    EXPECT_EQ(s.channel, "verify.channel");
    EXPECT_EQ(s.created_ns, 100 + static_cast<std::int64_t>(i));
    EXPECT_EQ(s.first_time_ns, time_of(first));
    EXPECT_EQ(s.last_time_ns, time_of(first + 9));
    EXPECT_FALSE(s.torn_tail.has_value());
    EXPECT_TRUE(s.damaged_records.empty());
  }
  EXPECT_EQ(r.segments[0].data_records, 7u);
  EXPECT_EQ(r.segments[0].gap_records, 1u);
  EXPECT_EQ(r.segments[0].lost_sequences, 3u);
  EXPECT_EQ(r.segments[1].data_records, 10u);
  EXPECT_EQ(r.segments[1].gap_records, 0u);

  const JournalTotals& t = r.totals;
  EXPECT_EQ(t.segments, 3u);
  EXPECT_EQ(t.bytes, j.segments[0].size() + j.segments[1].size() + j.segments[2].size());
  EXPECT_EQ(t.data_records, 27u);
  EXPECT_EQ(t.gap_records, 1u);
  EXPECT_EQ(t.lost_sequences, 3u);
  EXPECT_EQ(t.first_sequence, 1u);
  EXPECT_EQ(t.last_sequence, 30u);
}

TEST(JournalVerify, ATornTailAtTheEndOfTheNewestSegmentIsReportedButIsNotDamage) {
  Journal j;
  const std::uint64_t end = j.segments[2].size();
  test::append_to_file(j.segments[2].path(), journal_payload(99, 20));
  const JournalReport r = verify_ok(j.dir.path());
  EXPECT_TRUE(r.intact()) << r.damage[0].what;
  const SegmentReport& newest = r.segments[2];
  ASSERT_TRUE(newest.torn_tail.has_value());
  EXPECT_EQ(newest.torn_tail->offset, end);
  EXPECT_EQ(newest.torn_tail->bytes, 20u);
  EXPECT_EQ(newest.file_bytes, end + 20);
  EXPECT_EQ(newest.last_sequence, 30u);
  EXPECT_EQ(newest.data_records, 10u);
}

TEST(JournalVerify, AChecksumFailureInTheMiddleIsDamageNamingTheFileOffsetAndExpectedSequence) {
  Journal j;
  const auto& bad = j.segments[1].records()[3];  // sequence 14
  ASSERT_EQ(bad.sequence, 14u);
  test::flip_byte(j.segments[1].path(), bad.offset + kRecordHeaderSize + 5);
  const JournalReport r = verify_ok(j.dir.path());
  EXPECT_FALSE(r.intact());
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_EQ(r.damage[0].segment, j.segments[1].path());
  EXPECT_EQ(r.damage[0].offset, bad.offset);
  EXPECT_EQ(r.damage[0].expected_sequence, 14u);
  EXPECT_EQ(r.damage[0].what, "checksum mismatch");
  const SegmentReport& damaged = r.segments[1];
  ASSERT_EQ(damaged.damaged_records.size(), 1u);
  EXPECT_EQ(damaged.damaged_records[0].offset, bad.offset);
  // The records after the damage still count, and the next segment continues after them.
  EXPECT_EQ(damaged.data_records, 9u);
  EXPECT_EQ(damaged.last_sequence, 20u);
  EXPECT_FALSE(damaged.torn_tail.has_value());
  EXPECT_EQ(r.totals.last_sequence, 30u);
}

TEST(JournalVerify, AMissingMiddleSegmentIsABreakReportedAtTheFirstRecordOfTheNextOne) {
  Journal j;
  ASSERT_EQ(std::remove(j.segments[1].path().c_str()), 0);
  const JournalReport r = verify_ok(j.dir.path());
  EXPECT_FALSE(r.intact());
  ASSERT_EQ(r.segments.size(), 2u);
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_EQ(r.damage[0].segment, j.segments[2].path());
  EXPECT_EQ(r.damage[0].offset, kSegmentHeaderSize);
  EXPECT_EQ(r.damage[0].expected_sequence, 11u);
  EXPECT_EQ(r.damage[0].what,
            "the segment begins at sequence 21, but the previous segment ends before sequence 11");
  EXPECT_TRUE(r.segments[1].damaged_records.empty()) << "the segment's records are intact";
  EXPECT_EQ(r.totals.first_sequence, 1u);
  EXPECT_EQ(r.totals.last_sequence, 30u);
}

// Segment 1 holds data 1 and a gap record for 2..101; the next segment begins at `second_first`
// with one data record.
void gap_then_segment(const std::string& dir, std::uint64_t second_first) {
  SegmentBuilder a(dir, 1, 0);
  a.data(1, time_of(1), "one");
  a.gap(2, 100, time_of(2));
  a.write();
  SegmentBuilder b(dir, second_first, 1);
  b.data(second_first, time_of(second_first), "after the gap");
  b.write();
}

TEST(JournalVerify, AGapRecordAtTheEndOfASegmentIsContinuedAfterItsLostSequences) {
  TempDir dir;
  gap_then_segment(dir.path(), 102);
  const JournalReport r = verify_ok(dir.path());
  EXPECT_TRUE(r.intact()) << r.damage[0].what;
  ASSERT_EQ(r.segments.size(), 2u);
  EXPECT_EQ(r.segments[0].last_sequence, 101u) << "the gap's sequences belong to its segment";
  EXPECT_EQ(r.segments[0].gap_records, 1u);
  EXPECT_EQ(r.segments[0].lost_sequences, 100u);
  EXPECT_EQ(r.segments[0].last_time_ns, time_of(1)) << "times are of data records only";
  EXPECT_EQ(r.totals.lost_sequences, 100u);
  EXPECT_EQ(r.totals.last_sequence, 102u);
}

TEST(JournalVerify, ASegmentBeginningInsideTheGapBeforeItIsABreak) {
  TempDir dir;
  gap_then_segment(dir.path(), 50);
  const JournalReport r = verify_ok(dir.path());
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_EQ(r.damage[0].segment, dir.file(segment_file_name(50)));
  EXPECT_EQ(r.damage[0].offset, kSegmentHeaderSize);
  EXPECT_EQ(r.damage[0].expected_sequence, 102u);
}

TEST(JournalVerify, ATornTailOfAnOlderSegmentIsNotDamageWhenTheNextSegmentContinues) {
  Journal j;
  const std::uint64_t end = j.segments[0].size();
  test::append_to_file(j.segments[0].path(), std::vector<std::byte>(8192));
  const JournalReport r = verify_ok(j.dir.path());
  EXPECT_TRUE(r.intact()) << r.damage[0].what;
  ASSERT_TRUE(r.segments[0].torn_tail.has_value());
  EXPECT_EQ(r.segments[0].torn_tail->offset, end);
  EXPECT_EQ(r.segments[0].torn_tail->bytes, 8192u);
}

TEST(JournalVerify, ATornTailThatCutAnOlderSegmentsLastRecordBreaksTheSequenceAtTheNext) {
  Journal j;
  const auto& last = j.segments[0].records().back();  // sequence 10
  test::truncate_file(j.segments[0].path(), last.offset + 20);
  const JournalReport r = verify_ok(j.dir.path());
  ASSERT_TRUE(r.segments[0].torn_tail.has_value());
  EXPECT_EQ(r.segments[0].torn_tail->offset, last.offset);
  EXPECT_EQ(r.segments[0].last_sequence, 9u);
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_EQ(r.damage[0].segment, j.segments[1].path());
  EXPECT_EQ(r.damage[0].offset, kSegmentHeaderSize);
  EXPECT_EQ(r.damage[0].expected_sequence, 10u);
}

TEST(JournalVerify, AnUnreadableSegmentIsDamageAndTheNextIsNotJudgedAgainstIt) {
  Journal j;
  test::flip_byte(j.segments[1].path(), 3);  // the magic
  const JournalReport r = verify_ok(j.dir.path());
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_EQ(r.damage[0].segment, j.segments[1].path());
  EXPECT_EQ(r.damage[0].offset, 0u);
  EXPECT_EQ(r.damage[0].expected_sequence, 11u);
  EXPECT_NE(r.damage[0].what.find(j.segments[1].path()), std::string::npos) << r.damage[0].what;
  EXPECT_NE(r.damage[0].what.find("bad magic"), std::string::npos) << r.damage[0].what;
  const SegmentReport& unreadable = r.segments[1];
  ASSERT_TRUE(unreadable.error.has_value());
  EXPECT_EQ(unreadable.error->code, ErrorCode::corrupt);
  EXPECT_EQ(unreadable.error->message, r.damage[0].what);
  EXPECT_FALSE(unreadable.last_sequence.has_value());
  EXPECT_EQ(unreadable.data_records, 0u);
  // Counted in segments and bytes, not in records.
  EXPECT_EQ(r.totals.segments, 3u);
  EXPECT_EQ(r.totals.bytes, j.segments[0].size() + j.segments[1].size() + j.segments[2].size());
  EXPECT_EQ(r.totals.data_records, 17u);
}

TEST(JournalVerify, AnEmptyDirectoryIsAnIntactEmptyJournal) {
  TempDir dir;
  const JournalReport r = verify_ok(dir.path());
  EXPECT_TRUE(r.intact());
  EXPECT_TRUE(r.segments.empty());
  EXPECT_EQ(r.totals.segments, 0u);
  EXPECT_EQ(r.totals.bytes, 0u);
  EXPECT_FALSE(r.totals.first_sequence.has_value());
  EXPECT_FALSE(r.totals.last_sequence.has_value());
}

TEST(JournalVerify, ASegmentWithoutRecordsHasNoLastSequenceAndContinuesTheJournal) {
  Journal j;
  SegmentBuilder empty(j.dir.path(), 31, 3);
  empty.write();
  const JournalReport r = verify_ok(j.dir.path());
  EXPECT_TRUE(r.intact()) << r.damage[0].what;
  ASSERT_EQ(r.segments.size(), 4u);
  EXPECT_FALSE(r.segments[3].last_sequence.has_value());
  EXPECT_FALSE(r.segments[3].first_time_ns.has_value());
  EXPECT_EQ(r.totals.last_sequence, 30u);
}

TEST(JournalVerify, AMissingDirectoryIsNotFoundNamingIt) {
  TempDir dir;
  const std::string absent = dir.file("absent");
  auto report = verify(absent);
  ASSERT_FALSE(report.has_value());
  EXPECT_EQ(report.error().code, ErrorCode::not_found);
  EXPECT_NE(report.error().message.find(absent), std::string::npos) << report.error().message;
}

}  // namespace
}  // namespace shmbus::journal
