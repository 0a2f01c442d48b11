// JournalWriter: appending, flushing, rolling, the index, O_DIRECT, fsync policies and retention.
// Recovery is in writer_recovery_test.cpp, write failures in writer_faults_test.cpp.
#include "journal/writer.hpp"

#include <algorithm>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "journal/aligned_buffer.hpp"
#include "tests/journal/writer_testing.hpp"

namespace shmbus::journal::test {
namespace {

using namespace std::chrono_literals;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Sizes from 0 to past a buffer (16 KiB in small_options), fixed per sequence.
std::size_t random_size(std::uint64_t seq) {
  std::mt19937_64 rng(seq);
  const auto r = rng() % 100;
  if (r < 3) return 16'000 + rng() % 30'000;  // larger than a buffer: the slow path
  if (r < 10) return rng() % 8;
  return rng() % 3000;
}

void round_trip(WriterOptions o, std::uint64_t first, std::uint64_t count, int flush_every) {
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ(w->next_sequence(), 0u);
  for (std::uint64_t s = first; s < first + count; ++s) {
    append_or_wait(*w, s, static_cast<std::int64_t>(s) * 1000, payload_for(s, random_size(s)));
    if (flush_every > 0 && s % flush_every == 0) {
      ASSERT_TRUE(w->flush());
    }
    ASSERT_TRUE(w->reap(false)) << w->last_error();
  }
  ASSERT_TRUE(w->drain()) << w->last_error();
  EXPECT_EQ(w->written_sequence(), first + count - 1);
  EXPECT_EQ(w->next_sequence(), first + count);
  EXPECT_FALSE(w->blocked());
  EXPECT_EQ(w->stats().records, count);
  EXPECT_EQ(w->stats().write_errors, 0u);
  const ReadJournal j = read_journal(o.dir);
  EXPECT_TRUE(no_damage(j));
  expect_records(j, first, first + count - 1, random_size);
  for (const ReadRecord& r : j.records) ASSERT_EQ(r.timestamp_ns, static_cast<std::int64_t>(r.sequence) * 1000);
}

TEST(JournalWriter, AppendFlushDrainRoundTripsRandomSizesByteForByte) {
  TempDir dir;
  round_trip(small_options(dir.path()), 1, 3000, 37);
}

TEST(JournalWriter, RoundTripsWithoutFlushesWhenOnlyFullBuffersAreWritten) {
  TempDir dir;
  round_trip(small_options(dir.path()), 500, 2000, 0);
}

TEST(JournalWriter, DirectModeRoundTripsRandomSizesAndFlushes) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.direct = true;
  round_trip(o, 1, 2000, 5);
}

TEST(JournalWriter, DirectModeRewritesTheTailBlockAfterEachFlush) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.direct = true;
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w) << w.error().message;
  // Every record is smaller than a block, so each drain writes the same partial block again with
  // one more record in it; every earlier record must survive each rewrite.
  for (std::uint64_t s = 1; s <= 40; ++s) {
    ASSERT_TRUE(w->append(s, 1, payload_for(s, 300)));
    ASSERT_TRUE(w->drain()) << w->last_error();
    EXPECT_EQ(w->written_sequence(), s);
    const ReadJournal j = read_journal(dir.path());
    ASSERT_EQ(j.scans.size(), 1u);
    // While the writer is open the block's zero padding is on disk: a clean tail to the scanner.
    EXPECT_EQ(j.scans[0].file_bytes % 4096, 0u);
    EXPECT_TRUE(no_damage(j));
    expect_records(j, 1, s, [](std::uint64_t) { return 300; });
  }
  const std::uint64_t end = read_journal(dir.path()).scans[0].valid_end;
  w = tl::unexpected(Error{});  // closes the writer
  const std::string segment = segment_paths(dir.path())[0];
  EXPECT_EQ(size_of(segment), end) << "closing cuts the zero padding of the last block";
}

// Under O_DIRECT each segment is preallocated to its size limit (so that writes do not extend the
// file): while the writer is open the file is longer than its records, the rest zeros that
// readers take for a clean tail; finishing a segment and closing cut it.
TEST(JournalWriter, DirectModePreallocatesEachSegmentAndCutsThatAtTheEnd) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());  // 256 KiB segments
  o.direct = true;
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w) << w.error().message;
  for (std::uint64_t s = 1; s <= 100; ++s) append_or_wait(*w, s, 1, payload_for(s, 500));
  ASSERT_TRUE(w->drain()) << w->last_error();
  const std::string first = segment_paths(dir.path())[0];
  {
    const ReadJournal j = read_journal(dir.path());
    ASSERT_EQ(j.scans.size(), 1u);
    EXPECT_TRUE(no_damage(j));
    expect_records(j, 1, 100, [](std::uint64_t) { return 500; });
    // The whole segment, unless the filesystem has no fallocate.
    const std::uint64_t file_bytes = j.scans[0].file_bytes;
    if (file_bytes != align_up(j.scans[0].valid_end)) {
      EXPECT_EQ(file_bytes, o.segment_bytes);
      EXPECT_TRUE(j.scans[0].torn_tail);
    }
  }
  // Past the segment limit: the first segment is finished and cut to its records.
  for (std::uint64_t s = 101; s <= 700; ++s) append_or_wait(*w, s, 1, payload_for(s, 500));
  ASSERT_TRUE(w->drain()) << w->last_error();
  ASSERT_TRUE(w->reap(false));  // closes the finished segment
  ReadJournal j = read_journal(dir.path());
  ASSERT_GE(j.scans.size(), 2u);
  EXPECT_EQ(j.scans[0].file_bytes, j.scans[0].valid_end);
  EXPECT_FALSE(j.scans[0].torn_tail);
  const std::string newest = j.segments.back();
  const std::uint64_t end = j.scans.back().valid_end;
  w = tl::unexpected(Error{});  // closes the writer
  EXPECT_EQ(size_of(newest), end) << "closing cuts what was preallocated";
  j = read_journal(dir.path());
  EXPECT_TRUE(no_damage(j));
  expect_records(j, 1, 700, [](std::uint64_t) { return 500; });
  EXPECT_EQ(size_of(first), j.scans[0].valid_end);
}

TEST(JournalWriter, DirectModeWithoutPreallocationGrowsTheFileWithItsWrites) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.direct = true;
  o.preallocate = false;
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w) << w.error().message;
  for (std::uint64_t s = 1; s <= 100; ++s) append_or_wait(*w, s, 1, payload_for(s, 500));
  ASSERT_TRUE(w->drain()) << w->last_error();
  const ReadJournal j = read_journal(dir.path());
  ASSERT_EQ(j.scans.size(), 1u);
  EXPECT_TRUE(no_damage(j));
  expect_records(j, 1, 100, [](std::uint64_t) { return 500; });
  EXPECT_EQ(j.scans[0].file_bytes, align_up(j.scans[0].valid_end));  // block padding only
}

TEST(JournalWriter, SequencesMustFollowOnWithoutHolesOrRepeats) {
  TempDir dir;
  auto w = JournalWriter::open(small_options(dir.path()));
  ASSERT_TRUE(w) << w.error().message;
  auto zero = w->append(0, 1, payload_for(0, 10));
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, ErrorCode::invalid_argument);
  ASSERT_TRUE(w->append(100, 1, payload_for(100, 10)));  // an empty journal starts anywhere
  EXPECT_EQ(w->next_sequence(), 101u);
  for (std::uint64_t bad : {100u, 102u, 99u}) {
    auto r = w->append(bad, 1, payload_for(bad, 10));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
    EXPECT_NE(r.error().message.find("101"), std::string::npos) << r.error().message;
  }
  ASSERT_TRUE(w->append_gap(101, 5, 2));
  EXPECT_EQ(w->next_sequence(), 106u);
  EXPECT_FALSE(w->append_gap(106, 0, 2));
  ASSERT_TRUE(w->append(106, 3, payload_for(106, 10)));
  ASSERT_TRUE(w->drain());
  EXPECT_EQ(w->written_sequence(), 106u);
  EXPECT_EQ(w->stats().records, 2u);
  EXPECT_EQ(w->stats().gap_records, 1u);
  const ReadJournal j = read_journal(dir.path());
  ASSERT_EQ(j.records.size(), 3u);
  EXPECT_EQ(j.records[0].sequence, 100u);
  EXPECT_EQ(j.records[1].type, RecordType::gap);
  EXPECT_EQ(j.records[1].sequence, 101u);
  EXPECT_EQ(j.scans[0].lost_sequences, 5u);
  EXPECT_EQ(j.records[2].sequence, 106u);
}

TEST(JournalWriter, RollsAtSegmentBytesWithNamesHeadersAndIndexEntries) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.segment_bytes = 200 << 10;
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w) << w.error().message;
  const std::uint64_t count = 3000;
  for (std::uint64_t s = 1; s <= count; ++s) {
    // Timestamps go back and forth so the running maximum differs from the record's own.
    const std::int64_t ts = 1'000'000 + static_cast<std::int64_t>(s % 7 == 0 ? s * 10 : s);
    append_or_wait(*w, s, ts, payload_for(s, 200 + s % 300));
  }
  ASSERT_TRUE(w->drain());
  const ReadJournal j = read_journal(dir.path());
  expect_records(j, 1, count, [](std::uint64_t s) { return 200 + s % 300; });
  ASSERT_GE(j.segments.size(), 4u);
  EXPECT_EQ(w->stats().segments_created, j.segments.size());

  std::size_t next_record = 0;
  for (std::size_t i = 0; i < j.segments.size(); ++i) {
    const SegmentScan& scan = j.scans[i];
    EXPECT_EQ(j.segments[i], dir.file(segment_file_name(scan.header.first_sequence)));
    EXPECT_EQ(scan.header.segment_number, i);
    EXPECT_STREQ(scan.header.channel, "test.channel");
    EXPECT_EQ(scan.header.channel_incarnation, 7u);
    EXPECT_LE(scan.file_bytes, o.segment_bytes);
    EXPECT_FALSE(scan.torn_tail);
    if (i + 1 < j.segments.size()) {
      // Rolled only because the next record did not fit.
      EXPECT_GT(scan.file_bytes + padded_record_size(200 + scan.next_sequence % 300), o.segment_bytes);
      EXPECT_EQ(scan.next_sequence, j.scans[i + 1].header.first_sequence);
    }

    // The index: one valid entry for the first record at or after every 64 KiB boundary.
    const auto index = read_file(dir.file(index_file_name(scan.header.first_sequence)));
    ASSERT_GE(index.size(), sizeof(IndexHeader));
    IndexHeader ih;
    std::memcpy(&ih, index.data(), sizeof ih);
    EXPECT_FALSE(check_index_header(ih));
    EXPECT_EQ(ih.first_sequence, scan.header.first_sequence);
    std::vector<IndexEntry> expected;
    std::uint64_t boundary = 0;
    std::int64_t max_ts = 0;
    for (; next_record < j.records.size() && j.records[next_record].segment == j.segments[i]; ++next_record) {
      const ReadRecord& r = j.records[next_record];
      max_ts = std::max(max_ts, r.timestamp_ns);
      if (r.offset >= boundary) {
        IndexEntry e;
        make_index_entry(e, r.sequence, max_ts, r.offset);
        expected.push_back(e);
        boundary = (r.offset / kIndexInterval + 1) * kIndexInterval;
      }
    }
    ASSERT_EQ(index.size(), sizeof(IndexHeader) + expected.size() * sizeof(IndexEntry));
    for (std::size_t k = 0; k < expected.size(); ++k) {
      IndexEntry e;
      std::memcpy(&e, index.data() + sizeof(IndexHeader) + k * sizeof e, sizeof e);
      EXPECT_TRUE(index_entry_valid(e));
      EXPECT_EQ(e.sequence, expected[k].sequence);
      EXPECT_EQ(e.offset, expected[k].offset);
      EXPECT_EQ(e.max_timestamp_ns, expected[k].max_timestamp_ns);
    }
  }
}

TEST(JournalWriter, ARecordLargerThanASegmentGetsASegmentOfItsOwn) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.segment_bytes = 64 << 10;
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w) << w.error().message;
  // A roll waits for the previous segment's writes: append says busy until they completed.
  append_or_wait(*w, 1, 1, payload_for(1, 100));
  append_or_wait(*w, 2, 1, payload_for(2, 100'000));
  append_or_wait(*w, 3, 1, payload_for(3, 100));
  ASSERT_TRUE(w->drain());
  const ReadJournal j = read_journal(dir.path());
  ASSERT_EQ(j.segments.size(), 3u);
  expect_records(j, 1, 3, [](std::uint64_t s) { return s == 2 ? 100'000 : 100; });
}

TEST(JournalWriter, FsyncNeverLeavesDurableSequenceAtZero) {
  TempDir dir;
  auto w = JournalWriter::open(small_options(dir.path()));
  ASSERT_TRUE(w);
  for (std::uint64_t s = 1; s <= 50; ++s) ASSERT_TRUE(w->append(s, 1, payload_for(s, 100)));
  ASSERT_TRUE(w->drain());
  EXPECT_EQ(w->written_sequence(), 50u);
  EXPECT_EQ(w->durable_sequence(), 0u);
  EXPECT_EQ(w->stats().fsyncs, 0u);
}

TEST(JournalWriter, FsyncBatchMakesEachFlushedBatchDurable) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.fsync = FsyncPolicy::batch;
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w);
  std::uint64_t s = 1;
  for (int batch = 0; batch < 5; ++batch) {
    for (int k = 0; k < 20; ++k, ++s) ASSERT_TRUE(w->append(s, 1, payload_for(s, 100)));
    EXPECT_LT(w->durable_sequence(), s - 1) << "nothing is durable before its flush";
    ASSERT_TRUE(w->flush());
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (w->durable_sequence() < s - 1 && std::chrono::steady_clock::now() < deadline) {
      ASSERT_TRUE(w->reap(true)) << w->last_error();
    }
    EXPECT_EQ(w->durable_sequence(), s - 1);
    EXPECT_LE(w->durable_sequence(), w->written_sequence());
  }
  EXPECT_GE(w->stats().fsyncs, 5u);
}

TEST(JournalWriter, FsyncIntervalMakesWrittenRecordsDurableWithinTheInterval) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.fsync = FsyncPolicy::interval;
  o.fsync_interval = 30ms;
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w);
  for (std::uint64_t s = 1; s <= 30; ++s) ASSERT_TRUE(w->append(s, 1, payload_for(s, 100)));
  ASSERT_TRUE(w->flush());
  const auto start = std::chrono::steady_clock::now();
  while (w->durable_sequence() < 30 && std::chrono::steady_clock::now() < start + 5s) {
    ASSERT_TRUE(w->reap(true));
    EXPECT_LE(w->durable_sequence(), w->written_sequence());
  }
  EXPECT_EQ(w->durable_sequence(), 30u);
  EXPECT_GE(w->stats().fsyncs, 1u);
  // Nothing new to sync: reaping for longer than the interval issues no fdatasync.
  const auto fsyncs = w->stats().fsyncs;
  std::this_thread::sleep_for(70ms);
  ASSERT_TRUE(w->reap(false));
  ASSERT_TRUE(w->reap(false));
  EXPECT_EQ(w->stats().fsyncs, fsyncs);
}

// The hook sees fdatasync completions as result 0 (a write of n > 0 bytes never returns 0).
int fail_fsyncs(void*, int result) { return result == 0 ? -EIO : result; }

TEST(JournalWriter, AFailedFdatasyncStopsDurabilityAndTheWriterForGood) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.fsync = FsyncPolicy::batch;
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->append(1, 1, payload_for(1, 100)));
  ASSERT_TRUE(w->drain());
  EXPECT_EQ(w->durable_sequence(), 1u);
  w->set_completion_hook(fail_fsyncs, nullptr);
  ASSERT_TRUE(w->append(2, 1, payload_for(2, 100)));
  auto drained = w->drain(2s);
  ASSERT_FALSE(drained);
  EXPECT_NE(drained.error().message.find("fdatasync"), std::string::npos) << drained.error().message;
  EXPECT_EQ(w->durable_sequence(), 1u);
  EXPECT_FALSE(w->reap(false)) << "the error stays";
  EXPECT_FALSE(w->append(3, 1, payload_for(3, 100))) << "no appending after an fsync failure";
  w->set_completion_hook(nullptr, nullptr);
  EXPECT_FALSE(w->drain(100ms));
  EXPECT_EQ(w->durable_sequence(), 1u);
}

TEST(JournalWriter, RetentionDeletesTheOldestSegmentsPastRetainBytes) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.segment_bytes = 64 << 10;
  o.retain_bytes = 200 << 10;
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w);
  for (std::uint64_t s = 1; s <= 2000; ++s) append_or_wait(*w, s, 1, payload_for(s, 500));
  ASSERT_TRUE(w->drain());
  const ReadJournal j = read_journal(dir.path());
  // Retention runs at each roll, when the new segment holds only its header: then the total fit.
  std::uint64_t at_roll = kSegmentHeaderSize;
  for (std::size_t i = 0; i + 1 < j.segments.size(); ++i) at_roll += size_of(j.segments[i]);
  EXPECT_LE(at_roll, o.retain_bytes);
  EXPECT_GT(at_roll + o.segment_bytes, o.retain_bytes) << "deletes no more than it must";
  EXPECT_GT(w->stats().segments_deleted, 0u);
  EXPECT_EQ(w->stats().segments_created - w->stats().segments_deleted, j.segments.size());
  // What is left is the newest records, contiguous, and every index file has its segment.
  ASSERT_FALSE(j.records.empty());
  EXPECT_EQ(j.records.back().sequence, 2000u);
  expect_records(j, j.records.front().sequence, 2000, [](std::uint64_t) { return 500; });
  std::size_t indexes = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    indexes += e.path().extension() == ".index";
  }
  EXPECT_EQ(indexes, j.segments.size());
}

TEST(JournalWriter, RetentionDeletesSegmentsWhoseNewestRecordIsOlderThanRetainAge) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.segment_bytes = 64 << 10;
  o.retain_age = std::chrono::hours(1);
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w);
  const std::int64_t old = now_ns() - 2 * 3600 * 1'000'000'000ll;
  const std::int64_t recent = now_ns() - 60 * 1'000'000'000ll;
  std::uint64_t s = 1;
  for (; s <= 600; ++s) append_or_wait(*w, s, old, payload_for(s, 500));  // ~5 segments
  for (; s <= 1000; ++s) append_or_wait(*w, s, recent, payload_for(s, 500));
  ASSERT_TRUE(w->drain());
  const ReadJournal j = read_journal(dir.path());
  // Every segment holding only old records is gone; the one holding old and recent ones stays.
  ASSERT_FALSE(j.records.empty());
  EXPECT_GT(j.records.front().sequence, 400u);
  EXPECT_LE(j.records.front().sequence, 601u);
  EXPECT_GT(w->stats().segments_deleted, 0u);
  for (const auto& scan : j.scans) EXPECT_GE(scan.max_time_ns, recent);
}

TEST(JournalWriter, StatsCountRecordsBytesWritesAndSegments) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w);
  for (std::uint64_t s = 1; s <= 100; ++s) append_or_wait(*w, s, 1, payload_for(s, 1000));
  ASSERT_TRUE(w->append_gap(101, 9, 1));
  ASSERT_TRUE(w->drain());
  const WriterStats& st = w->stats();
  EXPECT_EQ(st.records, 100u);
  EXPECT_EQ(st.gap_records, 1u);
  EXPECT_EQ(st.bytes, 100 * padded_record_size(1000) + padded_record_size(8));
  EXPECT_GE(st.writes, st.bytes / o.buffer_bytes);
  EXPECT_EQ(st.segments_created, 1u);
  EXPECT_EQ(st.write_errors, 0u);
  EXPECT_EQ(st.retried_writes, 0u);
}

TEST(JournalWriter, FullReportsThePoolInFlightAndAppendSaysBusyWithoutAppending) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.buffers = 2;
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w);
  std::uint64_t s = 1;
  // No reaping: completions are never collected, so buffers stay in flight.
  while (!w->full()) {
    auto r = w->append(s, 1, payload_for(s, 4000));
    if (!r) break;
    ++s;
  }
  auto r = w->append(s, 1, payload_for(s, 4000));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::busy) << r.error().message;
  EXPECT_EQ(w->next_sequence(), s);
  ASSERT_TRUE(w->reap(true));
  append_or_wait(*w, s, 1, payload_for(s, 4000));
  ASSERT_TRUE(w->drain());
  expect_records(read_journal(dir.path()), 1, s, [](std::uint64_t) { return 4000; });
}

TEST(JournalWriter, ASingleBufferPoolFreesItsBufferForARecordThatDoesNotFit) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.buffers = 1;
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->append(1, 1, payload_for(1, 10'000)));
  ASSERT_TRUE(w->reap(false));
  // The second record does not fit beside the first and no write is in flight yet: busy, and
  // the reap that follows must have something to wait for.
  auto r = w->append(2, 1, payload_for(2, 10'000));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::busy);
  for (std::uint64_t s = 2; s <= 20; ++s) append_or_wait(*w, s, 1, payload_for(s, 10'000));
  ASSERT_TRUE(w->drain());
  expect_records(read_journal(dir.path()), 1, 20, [](std::uint64_t) { return 10'000; });
}

}  // namespace
}  // namespace shmbus::journal::test
