// SegmentRoller: when a record needs a new segment, what starting one creates, retention applied
// at the next start, and when a retired segment's files are closed.
#include "journal/segment_roller.hpp"

#include <filesystem>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/journal_files.hpp"

namespace shmbus::journal {
namespace {

using ::shmbus::test::TempDir;

// A roller over a fresh directory; options() may be changed before roller() is first called.
class SegmentRollerTest : public ::testing::Test {
 protected:
  SegmentRollerTest() {
    options_.dir = dir.path();
    options_.channel = "test.channel";
    options_.segment_bytes = kSegmentHeaderSize + 1000;
  }
  WriterOptions& options() { return options_; }
  SegmentRoller& roller() {
    if (!roller_) roller_.emplace(options_, errors, stats);
    return *roller_;
  }
  bool exists(const std::string& name) const { return std::filesystem::exists(dir.file(name)); }

  TempDir dir;
  WriterErrors errors;
  WriterStats stats;

 private:
  WriterOptions options_;
  std::optional<SegmentRoller> roller_;
};

TEST_F(SegmentRollerTest, StartingASegmentCreatesItsFilesAndCountsIt) {
  EXPECT_TRUE(roller().needs_new_segment(8)) << "a new journal has no segment";
  ASSERT_TRUE(roller().start_segment(42));
  ASSERT_NE(roller().current(), nullptr);
  EXPECT_EQ(roller().current()->first_sequence, 42u);
  EXPECT_EQ(roller().current()->end_offset, kSegmentHeaderSize);
  EXPECT_TRUE(exists(segment_file_name(42)));
  EXPECT_TRUE(exists(index_file_name(42)));
  EXPECT_EQ(stats.segments_created, 1u);
  EXPECT_EQ(roller().open_segments().size(), 1u);
}

TEST_F(SegmentRollerTest, ARecordNeedsANewSegmentOnlyPastSegmentBytesAndNeverAsTheFirstRecord) {
  ASSERT_TRUE(roller().start_segment(1));
  EXPECT_FALSE(roller().needs_new_segment(5000)) << "a record larger than a segment gets its own";
  roller().current()->end_offset += 600;
  EXPECT_FALSE(roller().needs_new_segment(400)) << "exactly segment_bytes";
  EXPECT_TRUE(roller().needs_new_segment(408));
}

TEST_F(SegmentRollerTest, TheNextStartDeletesTheOldestFinishedSegmentsPastRetainBytes) {
  options().retain_bytes = 2 * (kSegmentHeaderSize + 1000);
  for (std::uint64_t first : {1, 11, 21}) {
    if (roller().current() != nullptr) roller().retire_current();
    ASSERT_TRUE(roller().start_segment(first));
    roller().current()->end_offset = kSegmentHeaderSize + 1000;  // as if full
  }
  // At the last start, finished 1 and 11 (full) and the new 21 (its header) exceed retain_bytes;
  // without 1 they do not.
  EXPECT_EQ(stats.segments_deleted, 1u);
  EXPECT_FALSE(exists(segment_file_name(1)));
  EXPECT_FALSE(exists(index_file_name(1)));
  EXPECT_TRUE(exists(segment_file_name(11)));
  EXPECT_TRUE(exists(segment_file_name(21)));
}

TEST_F(SegmentRollerTest, ARetiredSegmentStaysOpenWhileItsWritesOrFdatasyncsAreOutstanding) {
  options().fsync = FsyncPolicy::batch;
  ASSERT_TRUE(roller().start_segment(1));
  OpenSegment& first = *roller().current();
  first.writes_outstanding = 1;
  roller().retire_current();
  ASSERT_TRUE(roller().start_segment(2));
  roller().close_finished();
  EXPECT_EQ(roller().open_segments().size(), 2u) << "a write still outstanding";
  first.writes_outstanding = 0;
  first.written_since_sync = true;
  roller().close_finished();
  EXPECT_EQ(roller().open_segments().size(), 2u) << "the next fdatasync round must cover it";
  first.written_since_sync = false;
  first.syncs_in_flight = 1;
  roller().close_finished();
  EXPECT_EQ(roller().open_segments().size(), 2u) << "its fdatasync is in flight";
  first.syncs_in_flight = 0;
  roller().close_finished();
  ASSERT_EQ(roller().open_segments().size(), 1u);
  EXPECT_EQ(roller().open_segments().front().get(), roller().current());
  EXPECT_FALSE(errors.to_report);
}

}  // namespace
}  // namespace shmbus::journal
