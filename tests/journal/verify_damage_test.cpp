// Torn tail or damage, judged against what the writer reported durable (journal.durable): bytes
// the writer reported durable that are not intact are damage to journal::verify and make
// recovery refuse; only bytes after the newest segment's durable point are a torn tail. A
// segment that a later segment continues has no torn tail: bytes other than zeros after its last
// record are damage.
#include "journal/verify.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "journal/durable_mark.hpp"
#include "journal/writer.hpp"
#include "tests/journal/writer_testing.hpp"

namespace shmbus::journal::test {
namespace {

using ::shmbus::test::flip_byte;

std::size_t size_for(std::uint64_t s) { return 60 + (s * 37) % 700; }

// Writes records 1..last under `policy`, drains (durable through `last` unless never) and
// closes. Returns the records as read back.
ReadJournal write_journal(const std::string& dir, std::uint64_t last, FsyncPolicy policy,
                          std::uint64_t segment_bytes = 256 << 10) {
  WriterOptions o = small_options(dir);
  o.fsync = policy;
  o.segment_bytes = segment_bytes;
  {
    auto w = JournalWriter::open(o);
    EXPECT_TRUE(w) << w.error().message;
    if (!w) return {};
    for (std::uint64_t s = 1; s <= last; ++s) append_or_wait(*w, s, 1000 + s, payload_for(s, size_for(s)));
    EXPECT_TRUE(w->drain());
    EXPECT_EQ(w->durable_sequence(), policy == FsyncPolicy::never ? 0 : last);
  }
  return read_journal(dir);
}

JournalReport verify_ok(const std::string& dir) {
  auto report = verify(dir);
  EXPECT_TRUE(report.has_value()) << report.error().message;
  return report ? std::move(*report) : JournalReport{};
}

TEST(JournalDurableMark, TheWriterRecordsTheSequenceItReportedDurable) {
  TempDir dir;
  write_journal(dir.path(), 300, FsyncPolicy::batch);
  const DurableMarkRead mark = read_durable_mark(dir.path());
  EXPECT_FALSE(mark.problem.has_value()) << *mark.problem;
  EXPECT_EQ(mark.durable_sequence, 300u);
  EXPECT_EQ(verify_ok(dir.path()).durable_sequence, 300u);
}

TEST(JournalDurableMark, AGarbledMarkIsNotUsedAndSaysWhy) {
  TempDir dir;
  write_journal(dir.path(), 10, FsyncPolicy::batch);
  flip_byte(dir.file(kDurableMarkFileName), 16);
  const DurableMarkRead mark = read_durable_mark(dir.path());
  EXPECT_FALSE(mark.durable_sequence.has_value());
  ASSERT_TRUE(mark.problem.has_value());
  EXPECT_NE(mark.problem->find("checksum"), std::string::npos) << *mark.problem;
}

TEST(JournalVerifyDamage, AFlippedByteInTheLastRecordReportedDurableIsDamageNotATornTail) {
  TempDir dir;
  const ReadJournal j = write_journal(dir.path(), 300, FsyncPolicy::batch);
  ASSERT_EQ(j.records.size(), 300u);
  const ReadRecord& last = j.records.back();
  flip_byte(last.segment, last.offset + 40);

  const JournalReport r = verify_ok(dir.path());
  EXPECT_FALSE(r.intact());
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_EQ(r.damage[0].segment, last.segment);
  EXPECT_EQ(r.damage[0].offset, last.offset);
  EXPECT_EQ(r.damage[0].expected_sequence, 300u);
  EXPECT_NE(r.damage[0].what.find("reported durable"), std::string::npos) << r.damage[0].what;
  EXPECT_FALSE(r.segments.back().torn_tail.has_value());
}

TEST(JournalVerifyDamage, AFileCutBeforeRecordsReportedDurableIsDamage) {
  TempDir dir;
  const ReadJournal j = write_journal(dir.path(), 300, FsyncPolicy::batch);
  const ReadRecord& last = j.records.back();
  ::shmbus::test::truncate_file(last.segment, last.offset);  // record 300 gone, cleanly
  const JournalReport r = verify_ok(dir.path());
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_EQ(r.damage[0].offset, last.offset);
  EXPECT_EQ(r.damage[0].expected_sequence, 300u);
}

TEST(JournalVerifyDamage, BytesAfterTheDurablePointAreATornTail) {
  TempDir dir;
  const ReadJournal j = write_journal(dir.path(), 300, FsyncPolicy::batch);
  const std::string newest = j.segments.back();
  const std::uint64_t end = size_of(newest);
  ::shmbus::test::append_to_file(newest, payload_for(301, 50));  // a write never reported durable
  const JournalReport r = verify_ok(dir.path());
  EXPECT_TRUE(r.intact()) << r.damage[0].what;
  ASSERT_TRUE(r.segments.back().torn_tail.has_value());
  EXPECT_EQ(r.segments.back().torn_tail->offset, end);
  EXPECT_EQ(r.segments.back().torn_tail->bytes, 50u);
}

TEST(JournalVerifyDamage, WithoutADurableMarkTheLastRecordCannotBeToldFromATornTail) {
  TempDir dir;
  const ReadJournal j = write_journal(dir.path(), 50, FsyncPolicy::never);
  const ReadRecord& last = j.records.back();
  flip_byte(last.segment, last.offset + 40);
  const JournalReport r = verify_ok(dir.path());
  EXPECT_TRUE(r.intact());
  EXPECT_FALSE(r.durable_sequence.has_value());
  ASSERT_TRUE(r.segments.back().torn_tail.has_value());
  EXPECT_EQ(r.segments.back().torn_tail->offset, last.offset);
}

TEST(JournalVerifyDamage, GarbageAfterTheLastRecordOfAMiddleSegmentIsDamage) {
  TempDir dir;
  const ReadJournal j = write_journal(dir.path(), 1500, FsyncPolicy::never, 64 << 10);
  ASSERT_GE(j.segments.size(), 3u);
  const std::string middle = j.segments[1];
  const std::uint64_t end = size_of(middle);
  std::uint64_t last_in_middle = 0;
  for (const ReadRecord& rec : j.records) {
    if (rec.segment == middle) last_in_middle = rec.sequence;
  }
  std::vector<std::byte> garbage(100, std::byte{0x5a});
  ::shmbus::test::append_to_file(middle, garbage);

  const JournalReport r = verify_ok(dir.path());
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_EQ(r.damage[0].segment, middle);
  EXPECT_EQ(r.damage[0].offset, end);
  EXPECT_EQ(r.damage[0].expected_sequence, last_in_middle + 1);
  EXPECT_NE(r.damage[0].what.find("100 bytes"), std::string::npos) << r.damage[0].what;
  EXPECT_FALSE(r.segments[1].torn_tail.has_value());
}

TEST(JournalVerifyDamage, ZerosAfterTheLastRecordOfAMiddleSegmentAreNotDamage) {
  TempDir dir;
  const ReadJournal j = write_journal(dir.path(), 1500, FsyncPolicy::never, 64 << 10);
  ASSERT_GE(j.segments.size(), 3u);
  ::shmbus::test::append_to_file(j.segments[1], std::vector<std::byte>(4096));
  EXPECT_TRUE(verify_ok(dir.path()).intact());
}

TEST(JournalRecoveryDamage, RecoveryRefusesToCutARecordReportedDurableAndChangesNothing) {
  TempDir dir;
  const ReadJournal j = write_journal(dir.path(), 300, FsyncPolicy::batch);
  const ReadRecord& last = j.records.back();
  flip_byte(last.segment, last.offset + 40);
  const std::vector<std::byte> before = read_file(last.segment);

  WriterOptions o = small_options(dir.path());
  o.fsync = FsyncPolicy::batch;
  auto w = JournalWriter::open(o);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::corrupt);
  EXPECT_NE(w.error().message.find(last.segment), std::string::npos) << w.error().message;
  EXPECT_NE(w.error().message.find("up to sequence 300 were reported durable"), std::string::npos)
      << w.error().message;
  EXPECT_EQ(read_file(last.segment), before) << "recovery must not cut the damaged record";
  // Also under FsyncPolicy::never: what an earlier writer reported durable stays so.
  o.fsync = FsyncPolicy::never;
  EXPECT_FALSE(JournalWriter::open(o));
  EXPECT_EQ(read_file(last.segment), before);
}

TEST(JournalRecoveryDamage, RecoveryStillCutsATornTailAfterTheDurablePoint) {
  TempDir dir;
  const ReadJournal j = write_journal(dir.path(), 300, FsyncPolicy::batch);
  const std::string newest = j.segments.back();
  const std::uint64_t end = size_of(newest);
  ::shmbus::test::append_to_file(newest, payload_for(301, 50));
  WriterOptions o = small_options(dir.path());
  o.fsync = FsyncPolicy::batch;
  RecoveryReport report;
  {
    auto w = JournalWriter::open(o, &report);
    ASSERT_TRUE(w) << w.error().message;
    EXPECT_EQ(w->next_sequence(), 301u);
    EXPECT_EQ(w->durable_sequence(), 300u);
  }
  EXPECT_EQ(report.truncated_bytes, 50u);
  EXPECT_EQ(size_of(newest), end);
  const ReadJournal after = read_journal(dir.path());
  EXPECT_TRUE(no_damage(after));
  expect_records(after, 1, 300, size_for);
}

}  // namespace
}  // namespace shmbus::journal::test
