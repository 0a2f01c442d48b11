// JournalReader: reading in order across segments and gaps, seeks by sequence and by time with
// good, missing, damaged and lagging index files, end versus damaged, and refresh() seeing what was
// appended or removed since.
#include "shmbus/journal_reader.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/support/journal_files.hpp"

namespace {

using namespace shmbus;
using namespace shmbus::journal;
using shmbus::test::BuiltRecord;
using shmbus::test::SegmentBuilder;
using shmbus::test::TempDir;
using shmbus::test::journal_payload;

// A journal of three segments built in memory and on disk:
//   segment 1:   sequences 1..299 (~1 KiB payloads, so the index has entries), a gap 300..309
//   segment 310: sequences 310..609
//   segment 610: sequences 610..909
// Data record s has timestamp 10 * s (so times 3000..3090 fall into the gap: no data record).
struct Journal {
  TempDir dir;
  std::vector<SegmentBuilder> segments;
  std::vector<BuiltRecord> records;  // every record, in order

  Journal() {
    std::uint64_t s = 1;
    for (std::uint64_t seg = 0; seg < 3; ++seg) {
      SegmentBuilder b(dir.path(), s, seg);
      const std::uint64_t end = s + 300;
      for (; s < end; ++s) {
        if (s == 300) {
          b.gap(300, 10, 2999);
          s = 309;
          continue;
        }
        b.data(s, static_cast<std::int64_t>(10 * s), journal_payload(s, 900 + s % 200));
      }
      segments.push_back(std::move(b));
    }
    for (const auto& b : segments) {
      b.write();
      b.write_index();
      records.insert(records.end(), b.records().begin(), b.records().end());
    }
  }

  // The built record that holds `sequence` (a gap record for a lost one).
  const BuiltRecord& holding(std::uint64_t sequence) const {
    for (const auto& r : records) {
      const std::uint64_t next = r.type == RecordType::gap ? r.sequence + r.gap_count : r.sequence + 1;
      if (sequence >= r.sequence && sequence < next) return r;
    }
    throw std::out_of_range("no record holds " + std::to_string(sequence));
  }
};

JournalReader open_reader(const std::string& dir) {
  auto r = JournalReader::open(dir);
  EXPECT_TRUE(r.has_value()) << r.error().message;
  return std::move(*r);
}

void expect_record(const JournalRecord& got, const BuiltRecord& want) {
  EXPECT_EQ(got.sequence, want.sequence);
  EXPECT_EQ(got.type, want.type);
  EXPECT_EQ(got.timestamp_ns, want.timestamp_ns);
  EXPECT_EQ(got.offset, want.offset);
  if (want.type == RecordType::gap) {
    EXPECT_EQ(got.gap_count, want.gap_count);
    EXPECT_TRUE(got.payload.empty());
  } else {
    ASSERT_EQ(got.payload.size(), want.payload.size());
    EXPECT_EQ(std::memcmp(got.payload.data(), want.payload.data(), want.payload.size()), 0);
  }
}

// Reads to the end; returns the sequences read and checks each against the built records.
std::vector<std::uint64_t> read_all(JournalReader& reader, const Journal* j = nullptr) {
  std::vector<std::uint64_t> seen;
  JournalRecord r;
  ReadStatus st;
  while ((st = reader.next(r)) == ReadStatus::record) {
    seen.push_back(r.sequence);
    if (j != nullptr) expect_record(r, j->holding(r.sequence));
  }
  EXPECT_EQ(st, ReadStatus::end) << reader.last_error();
  return seen;
}

TEST(JournalReader, ReadsEveryRecordInOrderAcrossSegmentsIncludingGaps) {
  Journal j;
  JournalReader reader = open_reader(j.dir.path());
  ASSERT_EQ(reader.segments().size(), 3u);
  EXPECT_EQ(reader.first_sequence(), 1u);
  EXPECT_EQ(reader.segments()[1].first_sequence, 310u);
  const auto seen = read_all(reader, &j);
  ASSERT_EQ(seen.size(), j.records.size());
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], j.records[i].sequence);
}

TEST(JournalReader, EmptyDirectoryIsAnEmptyJournal) {
  TempDir dir;
  JournalReader reader = open_reader(dir.path());
  EXPECT_TRUE(reader.segments().empty());
  EXPECT_EQ(reader.first_sequence(), 0u);
  JournalRecord r;
  EXPECT_EQ(reader.next(r), ReadStatus::end);
  EXPECT_TRUE(reader.seek_sequence(5).has_value());
  EXPECT_TRUE(reader.seek_time(5).has_value());
  EXPECT_EQ(reader.next(r), ReadStatus::end);
}

TEST(JournalReader, MissingDirectoryIsNotFound) {
  TempDir dir;
  auto r = JournalReader::open(dir.file("nope"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::not_found);
  EXPECT_NE(r.error().message.find("nope"), std::string::npos);
}

// Seeks to every sequence and checks the record it lands on and the one after.
void expect_every_sequence_seek_lands(const Journal& j, JournalReader& reader) {
  for (std::uint64_t s = 1; s <= 909; ++s) {
    SCOPED_TRACE("seek_sequence(" + std::to_string(s) + ")");
    ASSERT_TRUE(reader.seek_sequence(s).has_value());
    JournalRecord r;
    ASSERT_EQ(reader.next(r), ReadStatus::record) << reader.last_error();
    expect_record(r, j.holding(s));
    const std::uint64_t after = r.next_sequence();
    if (after <= 909) {
      ASSERT_EQ(reader.next(r), ReadStatus::record) << reader.last_error();
      EXPECT_EQ(r.sequence, after);
    }
  }
}

TEST(JournalReader, SeekSequenceLandsOnTheRecordHoldingIt) {
  Journal j;
  JournalReader reader = open_reader(j.dir.path());
  expect_every_sequence_seek_lands(j, reader);
}

TEST(JournalReader, SeekSequenceWorksWithoutIndexFiles) {
  Journal j;
  for (const auto& b : j.segments) ASSERT_EQ(::unlink(b.index_path().c_str()), 0);
  JournalReader reader = open_reader(j.dir.path());
  expect_every_sequence_seek_lands(j, reader);
}

TEST(JournalReader, SeekSequenceSurvivesDamagedLaggingAndLyingIndexFiles) {
  Journal j;
  // Segment 1: a flipped byte in an entry. Segment 310: an index that stops half way (the
  // journaler is behind). Segment 610: entries with valid checksums pointing at wrong offsets.
  j.segments[0].write_index();
  shmbus::test::flip_byte(j.segments[0].index_path(), sizeof(IndexHeader) + sizeof(IndexEntry) + 3);
  j.segments[1].write_index_up_to(j.segments[1].size() / 2);
  {
    IndexHeader h;
    make_index_header(h, 610);
    std::vector<std::byte> out(sizeof h);
    std::memcpy(out.data(), &h, sizeof h);
    for (const auto& e : j.segments[2].index_entries()) {
      IndexEntry lie;
      make_index_entry(lie, e.sequence, e.max_timestamp_ns, e.offset + 8);
      const auto* p = reinterpret_cast<const std::byte*>(&lie);
      out.insert(out.end(), p, p + sizeof lie);
    }
    shmbus::test::write_whole_file(j.segments[2].index_path(), out);
  }
  JournalReader reader = open_reader(j.dir.path());
  expect_every_sequence_seek_lands(j, reader);
}

TEST(JournalReader, SeekSequenceIndexWithGarbageHeaderIsIgnored) {
  Journal j;
  shmbus::test::write_whole_file(j.segments[1].index_path(), journal_payload(1, 1000));
  JournalReader reader = open_reader(j.dir.path());
  expect_every_sequence_seek_lands(j, reader);
}

TEST(JournalReader, SeekBeforeTheFirstRetainedSequenceLandsOnTheFirstRecord) {
  TempDir dir;
  SegmentBuilder b(dir.path(), 50);
  b.data(50, 1, "fifty");
  b.data(51, 2, "fifty-one");
  b.write();
  JournalReader reader = open_reader(dir.path());
  ASSERT_TRUE(reader.seek_sequence(3).has_value());
  JournalRecord r;
  ASSERT_EQ(reader.next(r), ReadStatus::record);
  EXPECT_EQ(r.sequence, 50u);
}

TEST(JournalReader, SeekPastTheEndIsTheEndAndThenSeesAppendedRecords) {
  TempDir dir;
  SegmentBuilder b(dir.path(), 1);
  b.data(1, 1, "one");
  b.data(2, 2, "two");
  b.write();
  JournalReader reader = open_reader(dir.path());
  ASSERT_TRUE(reader.seek_sequence(1000).has_value());
  JournalRecord r;
  EXPECT_EQ(reader.next(r), ReadStatus::end);
  b.data(3, 3, "three");
  b.write();
  ASSERT_TRUE(reader.refresh().has_value());
  ASSERT_EQ(reader.next(r), ReadStatus::record) << reader.last_error();
  EXPECT_EQ(r.sequence, 3u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(r.payload.data()), r.payload.size()), "three");
}

// The first data record with timestamp >= t, found by brute force.
const BuiltRecord* first_at_or_after(const Journal& j, std::int64_t t) {
  for (const auto& r : j.records) {
    if (r.type == RecordType::data && r.timestamp_ns >= t) return &r;
  }
  return nullptr;
}

void expect_time_seeks_land(const Journal& j, JournalReader& reader) {
  for (std::int64_t t : {std::int64_t{-5}, std::int64_t{0}, std::int64_t{10}, std::int64_t{11},
                         std::int64_t{1234}, std::int64_t{2990}, std::int64_t{2991},
                         std::int64_t{3000}, std::int64_t{3095}, std::int64_t{3100},
                         std::int64_t{3101}, std::int64_t{6090}, std::int64_t{6100},
                         std::int64_t{6105}, std::int64_t{9090}, std::int64_t{9091},
                         std::int64_t{1'000'000}}) {
    SCOPED_TRACE("seek_time(" + std::to_string(t) + ")");
    ASSERT_TRUE(reader.seek_time(t).has_value());
    JournalRecord r;
    const BuiltRecord* want = first_at_or_after(j, t);
    const ReadStatus st = reader.next(r);
    if (want == nullptr) {
      EXPECT_EQ(st, ReadStatus::end);
      continue;
    }
    ASSERT_EQ(st, ReadStatus::record) << reader.last_error();
    expect_record(r, *want);
  }
}

TEST(JournalReader, SeekTimeLandsOnTheFirstDataRecordAtOrAfterIt) {
  Journal j;
  JournalReader reader = open_reader(j.dir.path());
  expect_time_seeks_land(j, reader);
}

TEST(JournalReader, SeekTimeWorksWithoutIndexFilesAndWithADamagedOne) {
  Journal j;
  ASSERT_EQ(::unlink(j.segments[0].index_path().c_str()), 0);
  ASSERT_EQ(::unlink(j.segments[2].index_path().c_str()), 0);
  shmbus::test::flip_byte(j.segments[1].index_path(), sizeof(IndexHeader) + 2 * sizeof(IndexEntry) + 9);
  JournalReader reader = open_reader(j.dir.path());
  expect_time_seeks_land(j, reader);
}

TEST(JournalReader, SeekTimeWithRepeatedTimestampsLandsOnTheFirstOfThem) {
  TempDir dir;
  SegmentBuilder b(dir.path(), 1);
  for (std::uint64_t s = 1; s <= 400; ++s) {
    b.data(s, static_cast<std::int64_t>(s / 100), journal_payload(s, 700));  // 100 records a tick
  }
  b.write();
  b.write_index();
  JournalReader reader = open_reader(dir.path());
  for (std::int64_t t = 1; t <= 4; ++t) {
    ASSERT_TRUE(reader.seek_time(t).has_value());
    JournalRecord r;
    ASSERT_EQ(reader.next(r), ReadStatus::record);
    EXPECT_EQ(r.sequence, static_cast<std::uint64_t>(t * 100)) << "t=" << t;
  }
}

TEST(JournalReader, TornTailOfTheNewestSegmentIsTheEnd) {
  Journal j;
  const std::string newest = j.segments[2].path();
  std::vector<std::byte> half(j.segments[2].bytes().begin(),
                              j.segments[2].bytes().begin() + j.segments[2].records()[5].offset + 40);
  shmbus::test::write_whole_file(newest, half);
  JournalReader reader = open_reader(j.dir.path());
  const auto seen = read_all(reader, &j);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), 614u);  // records 610..614 are whole, 615 is cut
  JournalRecord r;
  EXPECT_EQ(reader.next(r), ReadStatus::end);  // and stays the end
}

TEST(JournalReader, DamageInTheMiddleIsReportedWithSegmentOffsetAndSequenceAndNotSkipped) {
  Journal j;
  const auto& bad = j.segments[1].records()[7];  // sequence 317
  shmbus::test::flip_byte(j.segments[1].path(), bad.offset + kRecordHeaderSize + 10);
  JournalReader reader = open_reader(j.dir.path());
  JournalRecord r;
  std::uint64_t last = 0;
  ReadStatus st;
  while ((st = reader.next(r)) == ReadStatus::record) last = r.sequence;
  ASSERT_EQ(st, ReadStatus::damaged);
  EXPECT_EQ(last, 316u);
  const std::string& e = reader.last_error();
  EXPECT_NE(e.find(j.segments[1].path()), std::string::npos) << e;
  EXPECT_NE(e.find("offset " + std::to_string(bad.offset)), std::string::npos) << e;
  EXPECT_NE(e.find("expected sequence 317"), std::string::npos) << e;
  EXPECT_EQ(reader.next(r), ReadStatus::damaged);  // the reader stays before it
  // Skipping the damage reads on at the next valid record.
  ASSERT_TRUE(reader.skip_damage());
  ASSERT_EQ(reader.next(r), ReadStatus::record) << reader.last_error();
  EXPECT_EQ(r.sequence, 318u);
  // A seek to a record past the damage lands on it; a seek to the damaged one stops before it.
  ASSERT_TRUE(reader.seek_sequence(320).has_value());
  ASSERT_EQ(reader.next(r), ReadStatus::record) << reader.last_error();
  EXPECT_EQ(r.sequence, 320u);
  ASSERT_TRUE(reader.seek_sequence(317).has_value());
  EXPECT_EQ(reader.next(r), ReadStatus::damaged);
}

TEST(JournalReader, SkipDamageMovesToTheNextSegmentThatDoesNotContinueTheSequence) {
  Journal j;
  SegmentBuilder far(j.dir.path(), 2000, 3);
  far.data(2000, 20000, "far");
  far.write();
  JournalReader reader = open_reader(j.dir.path());
  ASSERT_TRUE(reader.seek_sequence(909).has_value());
  JournalRecord r;
  ASSERT_EQ(reader.next(r), ReadStatus::record);
  ASSERT_EQ(reader.next(r), ReadStatus::damaged);
  ASSERT_TRUE(reader.skip_damage());
  ASSERT_EQ(reader.next(r), ReadStatus::record) << reader.last_error();
  EXPECT_EQ(r.sequence, 2000u);
  EXPECT_EQ(reader.next(r), ReadStatus::end);
  EXPECT_FALSE(reader.skip_damage());
}

TEST(JournalReader, DamagedTailOfAnOlderSegmentIsDamageWhenTheNextSegmentDoesNotContinue) {
  Journal j;
  // Cut segment 310 in its last record: 609 is lost, and segment 610 cannot make up for it.
  const auto& last = j.segments[1].records().back();
  shmbus::test::truncate_file(j.segments[1].path(), last.offset + 20);
  JournalReader reader = open_reader(j.dir.path());
  ASSERT_TRUE(reader.seek_sequence(600).has_value());
  JournalRecord r;
  ReadStatus st;
  std::uint64_t seen = 0;
  while ((st = reader.next(r)) == ReadStatus::record) seen = r.sequence;
  ASSERT_EQ(st, ReadStatus::damaged);
  EXPECT_EQ(seen, 608u);
  EXPECT_NE(reader.last_error().find("expected sequence 609"), std::string::npos) << reader.last_error();
  EXPECT_NE(reader.last_error().find(j.segments[2].path()), std::string::npos) << reader.last_error();
}

TEST(JournalReader, TornTailOfAnOlderSegmentIsSkippedWhenTheNextSegmentContinues) {
  Journal j;
  // Zeros after segment 310's last record (a crash after preallocation); 610 continues at 610.
  std::vector<std::byte> zeros(8192);
  shmbus::test::append_to_file(j.segments[1].path(), zeros);
  JournalReader reader = open_reader(j.dir.path());
  const auto seen = read_all(reader, &j);
  EXPECT_EQ(seen.size(), j.records.size());
}

TEST(JournalReader, MissingSequencesBetweenSegmentsAreDamage) {
  Journal j;
  SegmentBuilder far(j.dir.path(), 2000, 3);
  far.data(2000, 20000, "far");
  far.write();
  JournalReader reader = open_reader(j.dir.path());
  ASSERT_TRUE(reader.seek_sequence(905).has_value());
  JournalRecord r;
  ReadStatus st;
  while ((st = reader.next(r)) == ReadStatus::record) {
  }
  ASSERT_EQ(st, ReadStatus::damaged);
  EXPECT_NE(reader.last_error().find("begins at sequence 2000, but sequence 910 was expected"),
            std::string::npos)
      << reader.last_error();
}

TEST(JournalReader, SegmentWithABadHeaderIsDamageNamingIt) {
  Journal j;
  shmbus::test::flip_byte(j.segments[1].path(), 3);
  JournalReader reader = open_reader(j.dir.path());
  ASSERT_TRUE(reader.seek_sequence(305).has_value());
  JournalRecord r;
  ReadStatus st;
  while ((st = reader.next(r)) == ReadStatus::record) {
  }
  ASSERT_EQ(st, ReadStatus::damaged);
  EXPECT_NE(reader.last_error().find(j.segments[1].path()), std::string::npos) << reader.last_error();
  EXPECT_NE(reader.last_error().find("bad magic"), std::string::npos) << reader.last_error();
}

TEST(JournalReader, RefreshSeesAppendedRecordsAndNewSegments) {
  TempDir dir;
  SegmentBuilder a(dir.path(), 1);
  a.data(1, 1, "one");
  a.write();
  JournalReader reader = open_reader(dir.path());
  EXPECT_EQ(read_all(reader), std::vector<std::uint64_t>{1});

  // Half of record 2 written: still the end after refresh.
  a.data(2, 2, "two");
  shmbus::test::write_whole_file(a.path(), std::span(a.bytes()).first(a.size() - 4));
  ASSERT_TRUE(reader.refresh().has_value());
  JournalRecord r;
  EXPECT_EQ(reader.next(r), ReadStatus::end);

  // The write completes, then a new segment follows.
  a.write();
  SegmentBuilder b(dir.path(), 3, 1);
  b.data(3, 3, "three");
  b.write();
  EXPECT_EQ(reader.next(r), ReadStatus::end);  // not listed yet
  ASSERT_TRUE(reader.refresh().has_value());
  EXPECT_EQ(reader.segments().size(), 2u);
  EXPECT_EQ(read_all(reader), (std::vector<std::uint64_t>{2, 3}));
}

TEST(JournalReader, RefreshOfAnEmptyJournalSeesItsFirstSegment) {
  TempDir dir;
  JournalReader reader = open_reader(dir.path());
  JournalRecord r;
  EXPECT_EQ(reader.next(r), ReadStatus::end);
  SegmentBuilder a(dir.path(), 7);
  shmbus::test::write_whole_file(a.path(), std::span(a.bytes()).first(100));  // being created
  ASSERT_TRUE(reader.refresh().has_value());
  EXPECT_EQ(reader.next(r), ReadStatus::end);
  a.data(7, 70, "seven");
  a.write();
  ASSERT_TRUE(reader.refresh().has_value());
  EXPECT_EQ(read_all(reader), std::vector<std::uint64_t>{7});
}

TEST(JournalReader, SegmentRemovedUnderTheReaderIsDamageNamingItUnlessNothingWasLost) {
  Journal j;
  JournalReader reader = open_reader(j.dir.path());
  JournalRecord r;
  for (int i = 0; i < 3; ++i) ASSERT_EQ(reader.next(r), ReadStatus::record);  // in segment 1
  ASSERT_EQ(::unlink(j.segments[0].path().c_str()), 0);
  ASSERT_TRUE(reader.refresh().has_value());
  ASSERT_EQ(reader.next(r), ReadStatus::damaged);
  EXPECT_NE(reader.last_error().find("was removed"), std::string::npos) << reader.last_error();
  EXPECT_NE(reader.last_error().find(j.segments[0].path()), std::string::npos) << reader.last_error();
  EXPECT_NE(reader.last_error().find("sequences 4..309 are gone"), std::string::npos)
      << reader.last_error();
  ASSERT_TRUE(reader.seek_sequence(reader.first_sequence()).has_value());
  ASSERT_EQ(reader.next(r), ReadStatus::record);
  EXPECT_EQ(r.sequence, 310u);

  // Read segment 310 to its end, then remove it: nothing unread was lost, so reading moves on.
  while (r.sequence < 609) ASSERT_EQ(reader.next(r), ReadStatus::record);
  ASSERT_EQ(::unlink(j.segments[1].path().c_str()), 0);
  ASSERT_TRUE(reader.refresh().has_value());
  ASSERT_EQ(reader.next(r), ReadStatus::record) << reader.last_error();
  EXPECT_EQ(r.sequence, 610u);
}

}  // namespace
