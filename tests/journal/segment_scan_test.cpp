// scan_segment: counts and times of a clean segment, torn tails (every cut point, zeros, garbage)
// told apart from damage in the middle (named by offset and expected sequence), header errors,
// and hostile bytes that must never crash it.
#include "journal/segment_scan.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/support/journal_files.hpp"

namespace {

using namespace shmbus;
using namespace shmbus::journal;
using shmbus::test::SegmentBuilder;
using shmbus::test::TempDir;
using shmbus::test::journal_payload;

struct Visited {
  std::uint64_t sequence;
  std::uint64_t offset;
  std::vector<std::byte> payload;
};

struct ScanResult {
  SegmentScan scan;
  std::vector<Visited> visited;
};

ScanResult scan_ok(const std::string& path) {
  ScanResult r;
  auto scan = scan_segment(path, [&](const RecordHeader& h, std::span<const std::byte> payload,
                                     std::uint64_t offset) {
    r.visited.push_back({h.sequence, offset, {payload.begin(), payload.end()}});
  });
  EXPECT_TRUE(scan.has_value()) << scan.error().message;
  if (scan) r.scan = *scan;
  return r;
}

// Five data records of different sizes (sequences 10..14), times 1000, 2000, ...
SegmentBuilder five_records(const std::string& dir) {
  SegmentBuilder b(dir, 10);
  for (std::uint64_t i = 0; i < 5; ++i) {
    b.data(10 + i, static_cast<std::int64_t>(1000 * (i + 1)), journal_payload(10 + i, 3 + 17 * i));
  }
  return b;
}

TEST(SegmentScan, CleanSegmentReportsEveryRecordCountsAndTimes) {
  TempDir dir;
  SegmentBuilder b(dir.path(), 1);
  b.data(1, 500, "first");
  b.data(2, 400, "older clock");
  b.gap(3, 4, 450);
  b.data(7, 900, "");
  b.data(8, 800, "last");
  b.write();

  const auto [scan, visited] = scan_ok(b.path());
  EXPECT_EQ(scan.file_bytes, b.size());
  EXPECT_EQ(scan.valid_end, b.size());
  EXPECT_EQ(scan.last_record_end, b.size());
  EXPECT_FALSE(scan.torn_tail);
  EXPECT_TRUE(scan.damage.empty());
  EXPECT_EQ(scan.data_records, 4u);
  EXPECT_EQ(scan.gap_records, 1u);
  EXPECT_EQ(scan.lost_sequences, 4u);
  EXPECT_EQ(scan.next_sequence, 9u);
  EXPECT_EQ(scan.end_sequence, 9u);
  EXPECT_EQ(scan.first_time_ns, 500);
  EXPECT_EQ(scan.last_time_ns, 800);
  EXPECT_EQ(scan.max_time_ns, 900);
  EXPECT_EQ(scan.header.first_sequence, 1u);
  EXPECT_STREQ(scan.header.channel, "test.channel");

  ASSERT_EQ(visited.size(), b.records().size());
  for (std::size_t i = 0; i < visited.size(); ++i) {
    EXPECT_EQ(visited[i].sequence, b.records()[i].sequence);
    EXPECT_EQ(visited[i].offset, b.records()[i].offset);
    if (b.records()[i].type == RecordType::data) {
      EXPECT_EQ(visited[i].payload, b.records()[i].payload);
    }
  }
}

TEST(SegmentScan, EmptySegmentContinuesAtItsFirstSequence) {
  TempDir dir;
  SegmentBuilder b(dir.path(), 42);
  b.write();
  const auto [scan, visited] = scan_ok(b.path());
  EXPECT_EQ(scan.valid_end, kSegmentHeaderSize);
  EXPECT_EQ(scan.next_sequence, 42u);
  EXPECT_EQ(scan.data_records, 0u);
  EXPECT_EQ(scan.first_time_ns, 0);
  EXPECT_FALSE(scan.torn_tail);
  EXPECT_TRUE(visited.empty());
}

TEST(SegmentScan, CutAtEveryOffsetIsATornTailKeepingEveryWholeRecord) {
  TempDir dir;
  const SegmentBuilder b = five_records(dir.path());
  for (std::uint64_t cut = kSegmentHeaderSize; cut <= b.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    shmbus::test::write_whole_file(b.path(), std::span(b.bytes()).first(cut));
    std::uint64_t whole_end = kSegmentHeaderSize;
    std::uint64_t next = 10;
    std::size_t whole = 0;
    for (const auto& r : b.records()) {
      if (r.offset + r.size > cut) break;
      whole_end = r.offset + r.size;
      next = r.sequence + 1;
      ++whole;
    }
    const auto [scan, visited] = scan_ok(b.path());
    EXPECT_TRUE(scan.damage.empty()) << scan.damage.front().what;
    EXPECT_EQ(scan.valid_end, whole_end);
    EXPECT_EQ(scan.next_sequence, next);
    EXPECT_EQ(scan.torn_tail, cut != whole_end);
    EXPECT_EQ(scan.data_records, whole);
    ASSERT_EQ(visited.size(), whole);
    for (std::size_t i = 0; i < whole; ++i) {
      EXPECT_EQ(visited[i].sequence, b.records()[i].sequence);
      EXPECT_EQ(visited[i].payload, b.records()[i].payload);
    }
  }
}

TEST(SegmentScan, FileCutInsideTheHeaderPageIsAnError) {
  TempDir dir;
  const SegmentBuilder b = five_records(dir.path());
  for (std::uint64_t cut : {0ull, 100ull, 184ull, 4095ull}) {
    shmbus::test::write_whole_file(b.path(), std::span(b.bytes()).first(cut));
    auto scan = scan_segment(b.path());
    ASSERT_FALSE(scan.has_value()) << "cut " << cut;
    EXPECT_EQ(scan.error().code, ErrorCode::corrupt);
    EXPECT_NE(scan.error().message.find(b.path()), std::string::npos) << scan.error().message;
  }
}

TEST(SegmentScan, FlippedPayloadByteIsDamageNamingThatRecordsOffsetAndSequence) {
  TempDir dir;
  const SegmentBuilder b = five_records(dir.path());
  // Every record but the last (a bad last record is indistinguishable from a torn write).
  for (std::size_t i = 0; i + 1 < b.records().size(); ++i) {
    const auto& r = b.records()[i];
    SCOPED_TRACE("record " + std::to_string(r.sequence));
    b.write();
    shmbus::test::flip_byte(b.path(), r.offset + kRecordHeaderSize);  // first payload byte
    const auto [scan, visited] = scan_ok(b.path());
    ASSERT_EQ(scan.damage.size(), 1u);
    EXPECT_EQ(scan.damage[0].offset, r.offset);
    EXPECT_EQ(scan.damage[0].expected_sequence, r.sequence);
    EXPECT_EQ(scan.damage[0].what, "checksum mismatch");
    EXPECT_EQ(scan.valid_end, r.offset);
    EXPECT_EQ(scan.next_sequence, r.sequence);
    EXPECT_FALSE(scan.torn_tail);
    EXPECT_EQ(scan.last_record_end, b.size());
    // Every other record is still read.
    ASSERT_EQ(visited.size(), b.records().size() - 1);
    EXPECT_EQ(visited.back().sequence, 14u);
  }
}

TEST(SegmentScan, FlippedLengthFieldIsFoundAsDamageByTheForwardSearch) {
  TempDir dir;
  const SegmentBuilder b = five_records(dir.path());
  b.write();
  const auto& r = b.records()[1];
  shmbus::test::flip_byte(b.path(), r.offset + offsetof(RecordHeader, length), 0x01);
  const auto [scan, visited] = scan_ok(b.path());
  ASSERT_EQ(scan.damage.size(), 1u);
  EXPECT_EQ(scan.damage[0].offset, r.offset);
  EXPECT_EQ(scan.damage[0].expected_sequence, 11u);
  EXPECT_EQ(scan.valid_end, r.offset);
  ASSERT_EQ(visited.size(), 4u);
  EXPECT_EQ(visited[1].sequence, 12u);
}

TEST(SegmentScan, FlippedByteInTheLastRecordIsATornTail) {
  TempDir dir;
  const SegmentBuilder b = five_records(dir.path());
  b.write();
  const auto& last = b.records().back();
  shmbus::test::flip_byte(b.path(), last.offset + kRecordHeaderSize + 1);
  const auto [scan, visited] = scan_ok(b.path());
  EXPECT_TRUE(scan.damage.empty());
  EXPECT_TRUE(scan.torn_tail);
  EXPECT_EQ(scan.valid_end, last.offset);
  EXPECT_EQ(scan.next_sequence, last.sequence);
}

TEST(SegmentScan, ZerosAfterTheLastRecordAreATornTail) {
  TempDir dir;
  SegmentBuilder b = five_records(dir.path());
  const std::uint64_t end = b.size();
  b.zeros(3 * 4096 + 8);  // preallocation or O_DIRECT block padding
  b.write();
  const auto [scan, visited] = scan_ok(b.path());
  EXPECT_TRUE(scan.damage.empty());
  EXPECT_TRUE(scan.torn_tail);
  EXPECT_EQ(scan.valid_end, end);
  EXPECT_EQ(scan.next_sequence, 15u);
  EXPECT_EQ(visited.size(), 5u);
}

// Space allocated past the data (as an O_DIRECT journal writer preallocates ahead of its writes):
// the file is longer, the bytes are zeros no write reached. False if the filesystem cannot.
bool allocate_past_end(const std::string& path, std::uint64_t from, std::uint64_t bytes) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fallocate(fd, 0, static_cast<off_t>(from), static_cast<off_t>(bytes)) == 0;
  ::close(fd);
  return ok;
}

TEST(SegmentScan, AMegabytesLongPreallocatedTailIsATornTail) {
  TempDir dir;
  const SegmentBuilder b = five_records(dir.path());
  b.write();
  const std::uint64_t end = b.size();
  if (!allocate_past_end(b.path(), end, 64 << 20)) GTEST_SKIP() << "no fallocate here";
  const auto [scan, visited] = scan_ok(b.path());
  EXPECT_EQ(scan.file_bytes, end + (64 << 20));
  EXPECT_TRUE(scan.damage.empty());
  EXPECT_TRUE(scan.torn_tail);
  EXPECT_EQ(scan.valid_end, end);
  EXPECT_EQ(scan.next_sequence, 15u);
  EXPECT_EQ(visited.size(), 5u);
}

TEST(SegmentScan, RecordsAfterAHoleInTheFileAreFoundAsDamage) {
  TempDir dir;
  SegmentBuilder b = five_records(dir.path());
  const std::uint64_t end = b.size();
  b.zeros(3 * 4096 - end % 4096 + (1 << 20));  // a whole MiB of blocks to punch, then more
  const std::uint64_t after = b.data(15, 6000, "after the hole");
  b.write();
  const int fd = ::open(b.path().c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const std::uint64_t hole = (end + 4095) / 4096 * 4096;
  const bool punched = ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                   static_cast<off_t>(hole), 1 << 20) == 0;
  ::close(fd);
  if (!punched) GTEST_SKIP() << "no hole punching here";
  const auto [scan, visited] = scan_ok(b.path());
  ASSERT_EQ(scan.damage.size(), 1u);
  EXPECT_EQ(scan.damage[0].offset, end);
  EXPECT_EQ(scan.damage[0].expected_sequence, 15u);
  ASSERT_EQ(visited.size(), 6u);
  EXPECT_EQ(visited.back().sequence, 15u);
  EXPECT_EQ(visited.back().offset, after);
  EXPECT_FALSE(scan.torn_tail);
}

TEST(SegmentScan, ARecordAfterLongWrittenZerosIsFoundAsDamage) {
  // Zeros that were written (not a hole): the search skips them a word at a time and must stop
  // exactly at the record after them, wherever it lies relative to its 64 KiB read pieces.
  for (const std::size_t zeros : {std::size_t{8}, std::size_t{65'536 - 40}, std::size_t{200'008}}) {
    TempDir dir;
    SegmentBuilder b = five_records(dir.path());
    const std::uint64_t end = b.size();
    b.zeros(zeros);
    const std::uint64_t after = b.data(15, 6000, "after the zeros");
    b.write();
    const auto [scan, visited] = scan_ok(b.path());
    ASSERT_EQ(scan.damage.size(), 1u) << zeros;
    EXPECT_EQ(scan.damage[0].offset, end);
    ASSERT_EQ(visited.size(), 6u) << zeros;
    EXPECT_EQ(visited.back().offset, after) << zeros;
    EXPECT_FALSE(scan.torn_tail);
  }
}

TEST(SegmentScan, GarbageAfterTheLastRecordIsATornTail) {
  TempDir dir;
  SegmentBuilder b = five_records(dir.path());
  const std::uint64_t end = b.size();
  std::mt19937_64 rng(7);
  std::vector<std::byte> junk(5000);
  for (auto& x : junk) x = static_cast<std::byte>(rng());
  b.raw(junk);
  b.write();
  const auto [scan, visited] = scan_ok(b.path());
  EXPECT_TRUE(scan.damage.empty());
  EXPECT_TRUE(scan.torn_tail);
  EXPECT_EQ(scan.valid_end, end);
}

TEST(SegmentScan, ValidRecordWithUnexpectedSequenceIsDamageNamingBothSequences) {
  TempDir dir;
  SegmentBuilder b(dir.path(), 1);
  b.data(1, 1, "a");
  b.data(2, 2, "b");
  const std::uint64_t bad = b.data(5, 3, "e");
  b.data(6, 4, "f");
  b.write();
  const auto [scan, visited] = scan_ok(b.path());
  ASSERT_EQ(scan.damage.size(), 1u);
  EXPECT_EQ(scan.damage[0].offset, bad);
  EXPECT_EQ(scan.damage[0].expected_sequence, 3u);
  EXPECT_EQ(scan.damage[0].what, "sequence 5 (expected 3)");
  EXPECT_EQ(scan.valid_end, bad);
  EXPECT_EQ(scan.next_sequence, 3u);
  EXPECT_EQ(scan.end_sequence, 7u);
  EXPECT_EQ(visited.size(), 4u);
}

TEST(SegmentScan, FirstRecordMustCarryTheHeadersFirstSequence) {
  TempDir dir;
  SegmentBuilder b(dir.path(), 100);
  b.data(101, 1, "a");
  b.write();
  const auto [scan, visited] = scan_ok(b.path());
  ASSERT_EQ(scan.damage.size(), 1u);
  EXPECT_EQ(scan.damage[0].offset, kSegmentHeaderSize);
  EXPECT_EQ(scan.damage[0].expected_sequence, 100u);
}

TEST(SegmentScan, EveryDamagedRecordIsReportedAndATornTailAfterThemToo) {
  TempDir dir;
  SegmentBuilder b(dir.path(), 1);
  for (std::uint64_t s = 1; s <= 8; ++s) b.data(s, static_cast<std::int64_t>(s), journal_payload(s, 40));
  const std::uint64_t end = b.size();
  b.raw(journal_payload(99, 20));  // 20 bytes, less than a record header: a torn write
  b.write();
  shmbus::test::flip_byte(b.path(), b.records()[2].offset + kRecordHeaderSize + 5);
  shmbus::test::flip_byte(b.path(), b.records()[5].offset + offsetof(RecordHeader, sequence));
  const auto [scan, visited] = scan_ok(b.path());
  ASSERT_EQ(scan.damage.size(), 2u);
  EXPECT_EQ(scan.damage[0].offset, b.records()[2].offset);
  EXPECT_EQ(scan.damage[0].expected_sequence, 3u);
  EXPECT_EQ(scan.damage[1].offset, b.records()[5].offset);
  EXPECT_EQ(scan.damage[1].expected_sequence, 6u);
  EXPECT_EQ(scan.valid_end, b.records()[2].offset);
  EXPECT_EQ(scan.next_sequence, 3u);
  EXPECT_EQ(scan.last_record_end, end);
  EXPECT_EQ(scan.end_sequence, 9u);
  EXPECT_TRUE(scan.torn_tail);
  EXPECT_EQ(visited.size(), 6u);
}

TEST(SegmentScan, GapRecordAdvancesTheSequenceByItsCount) {
  TempDir dir;
  SegmentBuilder b(dir.path(), 1);
  b.data(1, 1, "a");
  b.gap(2, 1000, 5);
  b.data(1002, 6, "b");
  b.write();
  const auto [scan, visited] = scan_ok(b.path());
  EXPECT_TRUE(scan.damage.empty());
  EXPECT_EQ(scan.next_sequence, 1003u);
  EXPECT_EQ(scan.lost_sequences, 1000u);
  EXPECT_EQ(scan.gap_records, 1u);
}

TEST(SegmentScan, RecordsLargerThanTheReadChunkAreReadWhole) {
  TempDir dir;
  SegmentBuilder b(dir.path(), 1);
  b.data(1, 1, journal_payload(1, 3u << 20));
  b.data(2, 2, journal_payload(2, 10));
  b.data(3, 3, journal_payload(3, (1u << 20) + 7));
  b.write();
  const auto [scan, visited] = scan_ok(b.path());
  EXPECT_TRUE(scan.damage.empty());
  ASSERT_EQ(visited.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(visited[i].payload, b.records()[i].payload);
}

TEST(SegmentScan, BadMagicIsACorruptErrorNamingTheFile) {
  TempDir dir;
  const SegmentBuilder b = five_records(dir.path());
  b.write();
  shmbus::test::flip_byte(b.path(), 0);
  auto scan = scan_segment(b.path());
  ASSERT_FALSE(scan.has_value());
  EXPECT_EQ(scan.error().code, ErrorCode::corrupt);
  EXPECT_NE(scan.error().message.find("bad magic"), std::string::npos) << scan.error().message;
  EXPECT_NE(scan.error().message.find(b.path()), std::string::npos) << scan.error().message;
}

TEST(SegmentScan, OtherFormatVersionIsAVersionMismatchError) {
  TempDir dir;
  const SegmentBuilder b = five_records(dir.path());
  b.write();
  shmbus::test::flip_byte(b.path(), offsetof(SegmentHeader, version), 0x01);  // 2 ^ 1: version 3
  auto scan = scan_segment(b.path());
  ASSERT_FALSE(scan.has_value());
  EXPECT_EQ(scan.error().code, ErrorCode::version_mismatch);
  EXPECT_NE(scan.error().message.find("version 3"), std::string::npos) << scan.error().message;
}

TEST(SegmentScan, DamagedHeaderChecksumIsACorruptError) {
  TempDir dir;
  const SegmentBuilder b = five_records(dir.path());
  b.write();
  shmbus::test::flip_byte(b.path(), offsetof(SegmentHeader, created_ns));
  auto scan = scan_segment(b.path());
  ASSERT_FALSE(scan.has_value());
  EXPECT_EQ(scan.error().code, ErrorCode::corrupt);
  EXPECT_NE(scan.error().message.find("checksum"), std::string::npos) << scan.error().message;
}

TEST(SegmentScan, FileNameNamingAnotherFirstSequenceIsAnError) {
  TempDir dir;
  const SegmentBuilder b = five_records(dir.path());
  shmbus::test::write_whole_file(dir.file(segment_file_name(11)), b.bytes());
  auto scan = scan_segment(dir.file(segment_file_name(11)));
  ASSERT_FALSE(scan.has_value());
  EXPECT_NE(scan.error().message.find("file name says first sequence 11"), std::string::npos)
      << scan.error().message;
  // A file name that is not a segment name is not judged.
  shmbus::test::write_whole_file(dir.file("copy.bin"), b.bytes());
  EXPECT_TRUE(scan_segment(dir.file("copy.bin")).has_value());
}

TEST(SegmentScan, MissingFileIsNotFound) {
  TempDir dir;
  auto scan = scan_segment(dir.file(segment_file_name(1)));
  ASSERT_FALSE(scan.has_value());
  EXPECT_EQ(scan.error().code, ErrorCode::not_found);
}

// What must hold for any input the scanner accepts.
void expect_sane(const SegmentScan& s) {
  EXPECT_GE(s.valid_end, kSegmentHeaderSize);
  EXPECT_LE(s.valid_end, s.file_bytes);
  EXPECT_LE(s.last_record_end, s.file_bytes);
  EXPECT_GE(s.last_record_end, s.valid_end);
  EXPECT_EQ(s.valid_end % kRecordAlignment, 0u);
  std::uint64_t previous = 0;
  for (const auto& d : s.damage) {
    EXPECT_LT(d.offset, s.file_bytes);
    EXPECT_GT(d.offset + 1, previous);
    previous = d.offset;
  }
  if (s.damage.empty()) {
    EXPECT_EQ(s.torn_tail, s.valid_end < s.file_bytes);
    EXPECT_EQ(s.last_record_end, s.valid_end);
  }
}

TEST(SegmentScan, RandomBytesAfterAValidHeaderNeverCrashTheScan) {
  TempDir dir;
  std::mt19937_64 rng(12345);
  const std::string path = dir.file(segment_file_name(1));
  SegmentBuilder header_only(dir.path(), 1);
  for (int round = 0; round < 300; ++round) {
    std::vector<std::byte> bytes = header_only.bytes();
    const std::size_t extra = rng() % 4096;
    for (std::size_t i = 0; i < extra; ++i) {
      // Mostly small values, so type, flags and reserved fields often pass.
      bytes.push_back(static_cast<std::byte>(rng() % 4 == 0 ? rng() : rng() % 3));
    }
    shmbus::test::write_whole_file(path, bytes);
    auto scan = scan_segment(path, [](const RecordHeader&, std::span<const std::byte>, std::uint64_t) {});
    ASSERT_TRUE(scan.has_value()) << scan.error().message;
    expect_sane(*scan);
  }
}

TEST(SegmentScan, RandomFlipsAndCutsOfAValidSegmentNeverCrashTheScan) {
  TempDir dir;
  SegmentBuilder b(dir.path(), 1);
  for (std::uint64_t s = 1; s <= 12; ++s) {
    if (s == 6) {
      b.gap(6, 3, 6);
      s = 8;
    }
    b.data(s, static_cast<std::int64_t>(s), journal_payload(s, s * 13 % 70));
  }
  std::mt19937_64 rng(99);
  for (int round = 0; round < 2000; ++round) {
    std::vector<std::byte> bytes = b.bytes();
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      // Mostly in the records, sometimes in the header page.
      const std::size_t at = rng() % 8 == 0 ? rng() % sizeof(SegmentHeader)
                                            : kSegmentHeaderSize + rng() % (bytes.size() - kSegmentHeaderSize);
      bytes[at] ^= static_cast<std::byte>(1u << (rng() % 8));
    }
    if (rng() % 3 == 0) bytes.resize(rng() % (bytes.size() + 1));
    shmbus::test::write_whole_file(b.path(), bytes);
    auto scan = scan_segment(b.path());
    if (!scan) {
      EXPECT_FALSE(scan.error().message.empty());
      continue;
    }
    expect_sane(*scan);
  }
}

}  // namespace
