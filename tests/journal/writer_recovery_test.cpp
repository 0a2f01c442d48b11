// JournalWriter::open(): continuing a journal, torn tails, damage, crash leftovers, the directory
// lock and directory errors.
#include <sys/stat.h>
#include <unistd.h>

#include <random>

#include <gtest/gtest.h>

#include "journal/writer.hpp"
#include "tests/journal/writer_testing.hpp"
#include "tests/support/process.hpp"

namespace shmbus::journal::test {
namespace {

using namespace std::chrono_literals;

std::size_t size_for(std::uint64_t s) { return 50 + (s * 37) % 700; }

// A closed journal holding records first..last in one segment (or more with small segments).
void write_journal(const WriterOptions& o, std::uint64_t first, std::uint64_t last) {
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w) << w.error().message;
  for (std::uint64_t s = first; s <= last; ++s) append_or_wait(*w, s, 10, payload_for(s, size_for(s)));
  ASSERT_TRUE(w->drain());
}

TEST(JournalWriterRecovery, ReopenContinuesAtTheNextSequenceInTheSameSegment) {
  TempDir dir;
  const WriterOptions o = small_options(dir.path());
  write_journal(o, 1, 100);
  RecoveryReport report;
  auto w = JournalWriter::open(o, &report);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ(report.segments, 1u);
  EXPECT_EQ(report.next_sequence, 101u);
  EXPECT_EQ(report.truncated_bytes, 0u);
  EXPECT_TRUE(report.damage.empty());
  EXPECT_TRUE(report.removed.empty());
  EXPECT_EQ(w->next_sequence(), 101u);
  EXPECT_EQ(w->written_sequence(), 100u);
  EXPECT_FALSE(w->append(100, 10, payload_for(100, 10)));
  for (std::uint64_t s = 101; s <= 200; ++s) append_or_wait(*w, s, 10, payload_for(s, size_for(s)));
  ASSERT_TRUE(w->drain());
  const ReadJournal j = read_journal(dir.path());
  EXPECT_EQ(j.segments.size(), 1u);
  EXPECT_TRUE(no_damage(j));
  expect_records(j, 1, 200, size_for);
}

TEST(JournalWriterRecovery, DirectModeReopenContinuesInsideThePartialLastBlock) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.direct = true;
  for (std::uint64_t round = 0; round < 5; ++round) {
    write_journal(o, 1 + round * 30, 30 + round * 30);
    const ReadJournal j = read_journal(dir.path());
    EXPECT_TRUE(no_damage(j));
    EXPECT_FALSE(j.scans.back().torn_tail) << "closing cut the padding";
    expect_records(j, 1, 30 + round * 30, size_for);
  }
}

// Record ends of the journal's only segment, for choosing cut points.
std::vector<std::uint64_t> record_ends(const std::string& dir) {
  const ReadJournal j = read_journal(dir);
  std::vector<std::uint64_t> ends;
  for (const ReadRecord& r : j.records) ends.push_back(r.offset + padded_record_size(r.payload.size()));
  return ends;
}

TEST(JournalWriterRecovery, TornTailsAreCutAndReported) {
  std::mt19937_64 rng(42);
  for (int trial = 0; trial < 24; ++trial) {
    TempDir dir;
    const WriterOptions o = small_options(dir.path());
    write_journal(o, 1, 60);
    const std::string segment = segment_paths(dir.path())[0];
    const std::vector<std::uint64_t> ends = record_ends(dir.path());
    std::vector<std::byte> bytes = read_file(segment);
    const int kind = trial % 3;
    std::uint64_t keep = 0;  // records expected to survive
    if (kind == 0) {
      // A crash in the middle of a record: cut anywhere in the last 20 records.
      const std::uint64_t cut = ends[39] + rng() % (bytes.size() - ends[39]);
      bytes.resize(cut);
      keep = static_cast<std::uint64_t>(std::upper_bound(ends.begin(), ends.end(), cut) - ends.begin());
    } else if (kind == 1) {
      for (int i = 0; i < 1000 + trial; ++i) bytes.push_back(static_cast<std::byte>(rng()));
      keep = 60;
    } else {
      bytes.resize(bytes.size() + 4096 + trial * 8);  // zeros: an O_DIRECT padded tail
      keep = 60;
    }
    write_file(segment, bytes);
    const std::uint64_t valid_end = keep == 0 ? kSegmentHeaderSize : ends[keep - 1];

    RecoveryReport report;
    auto w = JournalWriter::open(o, &report);
    ASSERT_TRUE(w) << w.error().message;
    // Counted up to the last nonzero byte: zeros after it were never data.
    std::uint64_t nonzero_end = valid_end;
    for (std::uint64_t i = valid_end; i < bytes.size(); ++i) {
      if (bytes[i] != std::byte{0}) nonzero_end = i + 1;
    }
    EXPECT_EQ(report.truncated_bytes, nonzero_end - valid_end) << "trial " << trial;
    EXPECT_EQ(report.truncated_segment, nonzero_end > valid_end ? segment : std::string());
    if (kind == 2) {
      EXPECT_EQ(report.truncated_bytes, 0u) << "a tail of zeros held no data";
    }
    EXPECT_TRUE(report.damage.empty()) << report.damage[0];
    EXPECT_EQ(report.next_sequence, keep + 1);
    EXPECT_EQ(w->next_sequence(), keep + 1);
    EXPECT_EQ(size_of(segment), valid_end);
    for (std::uint64_t s = keep + 1; s <= 70; ++s) append_or_wait(*w, s, 10, payload_for(s, size_for(s)));
    ASSERT_TRUE(w->drain());
    const ReadJournal j = read_journal(dir.path());
    EXPECT_TRUE(no_damage(j));
    expect_records(j, 1, 70, size_for);
  }
}

TEST(JournalWriterRecovery, DamageInTheMiddleIsReportedKeptAndAppendingGoesOnInANewSegment) {
  TempDir dir;
  const WriterOptions o = small_options(dir.path());
  write_journal(o, 1, 60);
  const std::string segment = segment_paths(dir.path())[0];
  const ReadJournal before = read_journal(dir.path());
  std::vector<std::byte> bytes = read_file(segment);
  const std::uint64_t damaged_at = before.records[29].offset;
  bytes[damaged_at + kRecordHeaderSize + 3] ^= std::byte{0x55};  // record 30's payload
  write_file(segment, bytes);

  RecoveryReport report;
  auto w = JournalWriter::open(o, &report);
  ASSERT_TRUE(w) << w.error().message;
  ASSERT_EQ(report.damage.size(), 1u);
  EXPECT_NE(report.damage[0].find(segment), std::string::npos) << report.damage[0];
  EXPECT_NE(report.damage[0].find(std::to_string(damaged_at)), std::string::npos) << report.damage[0];
  EXPECT_EQ(report.truncated_bytes, 0u);
  EXPECT_EQ(report.next_sequence, 61u) << "the records after the damage are still there";
  EXPECT_EQ(read_file(segment), bytes) << "the damaged segment is left as it was";

  for (std::uint64_t s = 61; s <= 80; ++s) append_or_wait(*w, s, 10, payload_for(s, size_for(s)));
  ASSERT_TRUE(w->drain());
  const auto segments = segment_paths(dir.path());
  ASSERT_EQ(segments.size(), 2u);
  EXPECT_EQ(segments[1], dir.file(segment_file_name(61)));
  EXPECT_EQ(read_file(segment), bytes);
  const ReadJournal after = read_journal(dir.path());
  EXPECT_EQ(after.scans[1].header.segment_number, 1u);
  EXPECT_TRUE(after.scans[1].damage.empty());
  EXPECT_EQ(after.records.size(), 79u);  // 80 minus the damaged one
}

TEST(JournalWriterRecovery, LeftoversOfACrashedSegmentCreationAreRemoved) {
  TempDir dir;
  const WriterOptions o = small_options(dir.path());
  write_journal(o, 1, 50);
  // A crash after creating the next segment but before its header reached the disk, one with a
  // zeroed header page, and an index whose segment retention already removed.
  write_file(dir.file(segment_file_name(51)), std::vector<std::byte>(4096));
  write_file(dir.file(segment_file_name(52)), {});
  write_file(dir.file(index_file_name(52)), std::vector<std::byte>(32));
  write_file(dir.file(index_file_name(7)), std::vector<std::byte>(32));
  RecoveryReport report;
  auto w = JournalWriter::open(o, &report);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ(report.segments, 3u);
  EXPECT_EQ(report.removed.size(), 3u) << ::testing::PrintToString(report.removed);
  EXPECT_EQ(report.next_sequence, 51u);
  EXPECT_EQ(segment_paths(dir.path()).size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(dir.file(index_file_name(7))));
  EXPECT_FALSE(std::filesystem::exists(dir.file(index_file_name(52))));
  for (std::uint64_t s = 51; s <= 60; ++s) ASSERT_TRUE(w->append(s, 10, payload_for(s, size_for(s))));
  ASSERT_TRUE(w->drain());
  expect_records(read_journal(dir.path()), 1, 60, size_for);
}

TEST(JournalWriterRecovery, ASegmentWithoutAValidHeaderButWithDataIsRefusedNotDeleted) {
  TempDir dir;
  const WriterOptions o = small_options(dir.path());
  write_journal(o, 1, 50);
  const std::string segment = segment_paths(dir.path())[0];
  std::vector<std::byte> bytes = read_file(segment);
  bytes[0] = std::byte{'X'};
  write_file(segment, bytes);
  auto w = JournalWriter::open(o);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::corrupt) << w.error().message;
  EXPECT_NE(w.error().message.find(segment), std::string::npos) << w.error().message;
  EXPECT_EQ(read_file(segment), bytes);
}

TEST(JournalWriterRecovery, TheIndexOfTheContinuedSegmentIsRebuilt) {
  TempDir dir;
  const WriterOptions o = small_options(dir.path());
  write_journal(o, 1, 400);  // ~170 KiB: a few index entries
  const std::string index = dir.file(index_file_name(1));
  const std::vector<std::byte> good = read_file(index);
  ASSERT_GT(good.size(), sizeof(IndexHeader) + 2 * sizeof(IndexEntry));
  std::vector<std::byte> bad = good;
  bad[sizeof(IndexHeader) + 40] ^= std::byte{1};  // the second entry
  bad.resize(bad.size() - 7);
  write_file(index, bad);
  {
    auto w = JournalWriter::open(o);
    ASSERT_TRUE(w) << w.error().message;
    EXPECT_EQ(read_file(index), good);
  }
  std::filesystem::remove(index);
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ(read_file(index), good);
}

TEST(JournalWriterRecovery, ALockHeldByAnotherLiveProcessGivesBusyNamingItsPid) {
  TempDir dir;
  const WriterOptions o = small_options(dir.path());
  shmbus::test::Child holder = shmbus::test::Child::fork([&] {
    auto w = JournalWriter::open(o);
    if (!w) return 1;
    std::printf("LOCKED\n");
    std::fflush(stdout);
    ::sleep(60);
    return 0;
  });
  ASSERT_TRUE(holder.wait_for_line("LOCKED", 10s)) << holder.output();
  auto w = JournalWriter::open(o);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::busy);
  EXPECT_NE(w.error().message.find(std::to_string(holder.pid())), std::string::npos)
      << w.error().message;
  holder.kill_hard();  // the kernel drops the flock with the process
  auto again = JournalWriter::open(o);
  EXPECT_TRUE(again) << again.error().message;
}

TEST(JournalWriterRecovery, ASecondWriterInTheSameProcessIsBusyToo) {
  TempDir dir;
  auto first = JournalWriter::open(small_options(dir.path()));
  ASSERT_TRUE(first);
  auto second = JournalWriter::open(small_options(dir.path()));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::busy);
}

TEST(JournalWriterRecovery, OpenCreatesMissingDirectories) {
  TempDir dir;
  const std::string nested = dir.file("a/b/c");
  auto w = JournalWriter::open(small_options(nested));
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_TRUE(std::filesystem::is_directory(nested));
}

TEST(JournalWriterRecovery, ADirectoryPathThatIsAFileIsAClearError) {
  TempDir dir;
  const std::string file = dir.file("plain");
  write_file(file, {});
  for (const std::string& path : {file, file + "/below"}) {
    auto w = JournalWriter::open(small_options(path));
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code, ErrorCode::not_found) << w.error().message;
    EXPECT_NE(w.error().message.find(file), std::string::npos) << w.error().message;
    EXPECT_NE(w.error().message.find("Not a directory"), std::string::npos) << w.error().message;
  }
}

// Root ignores permission bits, so the checks run in a child that becomes 'nobody' first.
TEST(JournalWriterRecovery, AReadOnlyOrForbiddenDirectoryIsPermissionDenied) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged user";
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  const std::string readonly = dir.file("readonly");
  const std::string forbidden = dir.file("forbidden");
  ASSERT_EQ(::mkdir(readonly.c_str(), 0555), 0);
  ASSERT_EQ(::mkdir(forbidden.c_str(), 0700), 0);
  shmbus::test::Child child = shmbus::test::Child::fork([&] {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) return 3;
    for (const std::string& path : {readonly, forbidden + "/journal"}) {
      auto w = JournalWriter::open(small_options(path));
      std::printf("RESULT %s %s\n",
                  w ? "opened"
                    : (w.error().code == ErrorCode::permission_denied ? "permission_denied" : "other"),
                  w ? "" : w.error().message.c_str());
    }
    return 0;
  });
  const auto st = child.wait(20s);
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->ok()) << st->describe() << child.output();
  const std::string out = child.output();
  EXPECT_NE(out.find("RESULT permission_denied cannot open the journal lock " + readonly), std::string::npos) << out;
  EXPECT_NE(out.find("Permission denied"), std::string::npos) << out;
  EXPECT_NE(out.find("RESULT permission_denied cannot stat journal directory " + forbidden), std::string::npos)
      << out;
}


// Writes completing out of order, then a crash: a stretch never written (zeros) with records
// after it. Nothing after the hole was counted written, so recovery cuts there and appending
// continues at the hole's sequence.
TEST(JournalWriterRecovery, AHoleOfZerosWithRecordsAfterItIsCutAtTheHole) {
  TempDir dir;
  const WriterOptions o = small_options(dir.path());
  write_journal(o, 1, 60);
  const std::string segment = segment_paths(dir.path())[0];
  const ReadJournal before = read_journal(dir.path());
  std::vector<std::byte> bytes = read_file(segment);
  const std::uint64_t hole_from = before.records[29].offset;  // records 30..39 never written
  const std::uint64_t hole_to = before.records[39].offset;
  std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(hole_from),
            bytes.begin() + static_cast<std::ptrdiff_t>(hole_to), std::byte{0});
  write_file(segment, bytes);

  RecoveryReport report;
  auto w = JournalWriter::open(o, &report);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_TRUE(report.damage.empty()) << ::testing::PrintToString(report.damage);
  ASSERT_EQ(report.crash_repairs.size(), 1u);
  EXPECT_NE(report.crash_repairs[0].find(std::to_string(hole_from)), std::string::npos)
      << report.crash_repairs[0];
  EXPECT_EQ(report.next_sequence, 30u);
  EXPECT_EQ(std::filesystem::file_size(segment), hole_from);
  for (std::uint64_t s = 30; s <= 70; ++s) append_or_wait(*w, s, 10, payload_for(s, size_for(s)));
  ASSERT_TRUE(w->drain());
  const ReadJournal after = read_journal(dir.path());
  EXPECT_TRUE(no_damage(after));
  expect_records(after, 1, 70, size_for);
}

// A flipped byte is not a hole: it stays reported damage, whatever follows it.
TEST(JournalWriterRecovery, NonZeroGarbageBeforeRecordsIsDamageNotAHole) {
  TempDir dir;
  const WriterOptions o = small_options(dir.path());
  write_journal(o, 1, 60);
  const std::string segment = segment_paths(dir.path())[0];
  const ReadJournal before = read_journal(dir.path());
  std::vector<std::byte> bytes = read_file(segment);
  const std::uint64_t from = before.records[29].offset;
  const std::uint64_t to = before.records[39].offset;
  std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(from),
            bytes.begin() + static_cast<std::ptrdiff_t>(to), std::byte{0});
  bytes[from + 100] = std::byte{1};
  write_file(segment, bytes);
  RecoveryReport report;
  auto w = JournalWriter::open(o, &report);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_TRUE(report.crash_repairs.empty());
  EXPECT_EQ(report.damage.size(), 1u);
  EXPECT_EQ(report.next_sequence, 61u);
  EXPECT_EQ(read_file(segment), bytes) << "damage is never cut away";
}

// A segment whose predecessor ends short (the predecessor's last writes were in flight at the
// crash) lies beyond a hole: it is set aside, not deleted, and the predecessor continues.
TEST(JournalWriterRecovery, SegmentsBeyondAShortPredecessorAreSetAsideAndWrittenAgain) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.segment_bytes = 16 << 10;
  write_journal(o, 1, 300);
  const auto segments = segment_paths(dir.path());
  ASSERT_GE(segments.size(), 4u);
  // Cut the second-to-last-but-one segment short, as if its last buffer never reached the file.
  const std::string short_one = segments[segments.size() - 3];
  const auto short_size = std::filesystem::file_size(short_one);
  std::filesystem::resize_file(short_one, short_size - 1000);

  RecoveryReport report;
  auto w = JournalWriter::open(o, &report);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_GE(report.crash_repairs.size(), 3u) << ::testing::PrintToString(report.crash_repairs);
  for (std::size_t k = segments.size() - 2; k < segments.size(); ++k) {
    EXPECT_FALSE(std::filesystem::exists(segments[k]));
    EXPECT_TRUE(std::filesystem::exists(segments[k] + ".orphaned")) << "set aside, not deleted";
  }
  const std::uint64_t resume = report.next_sequence;
  EXPECT_LT(resume, 300u);
  for (std::uint64_t s = resume; s <= 320; ++s) {
    append_or_wait(*w, s, 10, payload_for(s, size_for(s)));
  }
  ASSERT_TRUE(w->drain());
  const ReadJournal after = read_journal(dir.path());
  EXPECT_TRUE(no_damage(after));
  expect_records(after, 1, 320, size_for);
}

TEST(JournalWriterRecovery, AHalfCreatedSegmentIsRemoved) {
  TempDir dir;
  const WriterOptions o = small_options(dir.path());
  write_journal(o, 1, 20);
  write_file(dir.file(segment_file_name(21) + ".creating"), std::vector<std::byte>(100));
  RecoveryReport report;
  auto w = JournalWriter::open(o, &report);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ(report.removed.size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(dir.file(segment_file_name(21) + ".creating")));
  EXPECT_EQ(report.next_sequence, 21u);
}

}  // namespace
}  // namespace shmbus::journal::test
