// JournalWriter::begin_run/end_run (journal/record_run.hpp): records laid through runs make the
// same files, byte for byte, as records appended one at a time; a run refuses what it cannot take
// and writes nothing for it; and what a crashed process laid through runs is recovered up to at
// least what the writer had reported written.
#include "journal/record_run.hpp"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <random>

#include <gtest/gtest.h>

#include "journal/aligned_buffer.hpp"
#include "journal/writer.hpp"
#include "tests/journal/writer_testing.hpp"

namespace shmbus::journal::test {
namespace {

// Sizes from 0 to past a buffer (16 KiB in small_options), fixed per sequence.
std::size_t run_size(std::uint64_t seq) {
  std::mt19937_64 rng(seq * 7 + 3);
  const auto r = rng() % 100;
  if (r < 2) return 16'000 + rng() % 20'000;  // larger than a buffer: append() only
  if (r < 40) return 64;
  return rng() % 1500;
}

// Timestamps that go back now and then, so the index's running maximum matters.
std::int64_t run_time(std::uint64_t seq) {
  return 1'000'000 + static_cast<std::int64_t>(seq % 11 == 0 ? seq * 5 : seq);
}

// Appends `first`..`last` through runs the way the journaler does: into the open run while it
// takes them, else end it, append() that record (waiting for a buffer if need be), begin another.
// Flushes every `flush_every` records (0: never), as a journaler going idle does.
void append_through_runs(JournalWriter& w, std::uint64_t first, std::uint64_t last,
                         std::uint64_t flush_every, std::uint64_t* through_run = nullptr) {
  RecordRun run = w.begin_run();
  for (std::uint64_t s = first; s <= last; ++s) {
    const auto payload = payload_for(s, run_size(s));
    if (run.append(s, run_time(s), payload)) {
      if (through_run != nullptr) ++*through_run;
    } else {
      w.end_run(run);
      append_or_wait(w, s, run_time(s), payload);
      run = w.begin_run();
    }
    if (flush_every > 0 && s % flush_every == 0) {
      w.end_run(run);
      ASSERT_TRUE(w.flush());
      ASSERT_TRUE(w.reap(false)) << w.last_error();
      run = w.begin_run();
    }
  }
  w.end_run(run);
}

void append_one_by_one(JournalWriter& w, std::uint64_t first, std::uint64_t last,
                       std::uint64_t flush_every) {
  for (std::uint64_t s = first; s <= last; ++s) {
    append_or_wait(w, s, run_time(s), payload_for(s, run_size(s)));
    if (flush_every > 0 && s % flush_every == 0) {
      ASSERT_TRUE(w.flush());
      ASSERT_TRUE(w.reap(false)) << w.last_error();
    }
  }
}

// The files of two journals hold the same bytes: the segments from the first record on (their
// headers carry the creation time) and the index files whole.
void expect_same_files(const std::string& a, const std::string& b) {
  const auto segments_a = segment_paths(a);
  const auto segments_b = segment_paths(b);
  ASSERT_EQ(segments_a.size(), segments_b.size());
  for (std::size_t i = 0; i < segments_a.size(); ++i) {
    const std::string name = std::filesystem::path(segments_a[i]).filename().string();
    ASSERT_EQ(name, std::filesystem::path(segments_b[i]).filename().string());
    const auto bytes_a = read_file(segments_a[i]);
    const auto bytes_b = read_file(segments_b[i]);
    ASSERT_EQ(bytes_a.size(), bytes_b.size()) << name;
    ASSERT_GE(bytes_a.size(), kSegmentHeaderSize) << name;
    EXPECT_TRUE(std::equal(bytes_a.begin() + kSegmentHeaderSize, bytes_a.end(),
                           bytes_b.begin() + kSegmentHeaderSize))
        << name;
    const std::string index = index_file_name(*parse_segment_file_name(name));
    EXPECT_EQ(read_file(a + "/" + index), read_file(b + "/" + index)) << index;
  }
}

void runs_lay_the_same_bytes(bool direct, std::uint64_t flush_every) {
  TempDir one_by_one("run-single");
  TempDir through_runs("run-runs");
  constexpr std::uint64_t kLast = 6000;
  std::uint64_t taken_by_runs = 0;
  {
    WriterOptions o = small_options(one_by_one.path());
    o.direct = direct;
    auto w = JournalWriter::open(o);
    ASSERT_TRUE(w) << w.error().message;
    append_one_by_one(*w, 1, kLast, flush_every);
    ASSERT_TRUE(w->drain()) << w->last_error();
  }
  {
    WriterOptions o = small_options(through_runs.path());
    o.direct = direct;
    auto w = JournalWriter::open(o);
    ASSERT_TRUE(w) << w.error().message;
    append_through_runs(*w, 1, kLast, flush_every, &taken_by_runs);
    ASSERT_TRUE(w->drain()) << w->last_error();
    EXPECT_EQ(w->written_sequence(), kLast);
    EXPECT_EQ(w->next_sequence(), kLast + 1);
    EXPECT_EQ(w->stats().records, kLast);
  }
  // Most records went through runs; the rest (segment and index boundaries, big records, the
  // first one) through append().
  EXPECT_GT(taken_by_runs, kLast * 3 / 4);
  EXPECT_LT(taken_by_runs, kLast);
  const ReadJournal j = read_journal(through_runs.path());
  EXPECT_TRUE(no_damage(j));
  EXPECT_GT(j.segments.size(), 3u);  // rolled several times (256 KiB segments)
  expect_records(j, 1, kLast, run_size);
  for (const ReadRecord& r : j.records) ASSERT_EQ(r.timestamp_ns, run_time(r.sequence));
  expect_same_files(one_by_one.path(), through_runs.path());
}

TEST(RecordRun, RunsLayTheSameBytesAsAppendingOneRecordAtATime) {
  runs_lay_the_same_bytes(false, 0);
}

TEST(RecordRun, RunsLayTheSameBytesWithFlushesBetweenThem) { runs_lay_the_same_bytes(false, 97); }

TEST(RecordRun, RunsLayTheSameBytesUnderODirect) { runs_lay_the_same_bytes(true, 53); }

TEST(RecordRun, AnEmptyJournalGivesAnEmptyRunUntilTheFirstRecordIsAppended) {
  TempDir dir;
  auto w = JournalWriter::open(small_options(dir.path()));
  ASSERT_TRUE(w) << w.error().message;
  RecordRun run = w->begin_run();
  EXPECT_EQ(run.next_sequence(), 0u);
  EXPECT_FALSE(run.append(1, 1, payload_for(1, 8)));
  EXPECT_EQ(run.records(), 0u);
  w->end_run(run);
  ASSERT_TRUE(w->append(5, 5, payload_for(5, 8)));
  run = w->begin_run();
  EXPECT_EQ(run.next_sequence(), 6u);
  EXPECT_TRUE(run.append(6, 6, payload_for(6, 8)));
  w->end_run(run);
  EXPECT_EQ(run.records(), 0u);  // end_run leaves it empty
  EXPECT_EQ(w->next_sequence(), 7u);
  ASSERT_TRUE(w->drain());
  const ReadJournal j = read_journal(dir.path());
  ASSERT_EQ(j.records.size(), 2u);
  EXPECT_EQ(j.records[0].sequence, 5u);
  EXPECT_EQ(j.records[1].sequence, 6u);
  EXPECT_EQ(j.records[1].payload, payload_for(6, 8));
}

TEST(RecordRun, ARunRefusesRecordsOutOfSequenceOrTooBigAndWritesNothingForThem) {
  TempDir dir;
  auto w = JournalWriter::open(small_options(dir.path()));  // 16 KiB buffers
  ASSERT_TRUE(w) << w.error().message;
  ASSERT_TRUE(w->append(1, 1, payload_for(1, 8)));
  RecordRun run = w->begin_run();
  EXPECT_FALSE(run.append(3, 3, payload_for(3, 8)));  // 2 is due: a gap goes through append()
  EXPECT_FALSE(run.append(1, 1, payload_for(1, 8)));  // a repeat
  EXPECT_FALSE(run.append(2, 2, payload_for(2, 20'000)));  // larger than the buffer's room
  EXPECT_EQ(run.records(), 0u);
  EXPECT_EQ(run.next_sequence(), 2u);
  EXPECT_TRUE(run.append(2, 2, payload_for(2, 100)));
  EXPECT_EQ(run.records(), 1u);
  w->end_run(run);
  EXPECT_EQ(w->next_sequence(), 3u);
  ASSERT_TRUE(w->drain());
  const ReadJournal j = read_journal(dir.path());
  EXPECT_TRUE(no_damage(j));
  expect_records(j, 1, 2, [](std::uint64_t s) { return s == 1 ? 8 : 100; });
}

TEST(RecordRun, ARunStopsBeforeTheNextIndexBoundarySoThatRecordGetsItsEntry) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.buffer_bytes = 256 << 10;  // room past the first 64 KiB boundary in one buffer
  o.segment_bytes = 1 << 20;
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w) << w.error().message;
  ASSERT_TRUE(w->append(1, 1, payload_for(1, 1000)));  // at offset 4096: entry for boundary 0
  RecordRun run = w->begin_run();
  std::uint64_t s = 2;
  while (run.append(s, static_cast<std::int64_t>(s), payload_for(s, 1000))) ++s;
  // It took records up to the last one starting before 64 KiB, and no further.
  const std::uint64_t record = padded_record_size(1000);
  const std::uint64_t refused_at = kSegmentHeaderSize + (s - 1) * record;
  EXPECT_GE(refused_at, kIndexInterval);
  EXPECT_LT(refused_at - record, kIndexInterval);
  w->end_run(run);
  append_or_wait(*w, s, static_cast<std::int64_t>(s), payload_for(s, 1000));
  ASSERT_TRUE(w->drain());

  const auto index = read_file(dir.file(index_file_name(1)));
  ASSERT_EQ(index.size(), sizeof(IndexHeader) + 2 * sizeof(IndexEntry));
  IndexEntry second;
  std::memcpy(&second, index.data() + sizeof(IndexHeader) + sizeof(IndexEntry), sizeof second);
  EXPECT_TRUE(index_entry_valid(second));
  EXPECT_EQ(second.sequence, s);
  EXPECT_EQ(second.offset, refused_at);
  // The running maximum counts the run's records too.
  EXPECT_EQ(second.max_timestamp_ns, static_cast<std::int64_t>(s));
}

TEST(RecordRun, ARunThatFillsItsBufferHandsItToAWrite) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());  // 16 KiB buffers
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w) << w.error().message;
  ASSERT_TRUE(w->append(1, 1, {}));  // 32 bytes: the rest of the buffer is a whole number of them
  RecordRun run = w->begin_run();
  std::uint64_t s = 2;
  while (run.append(s, 1, {})) ++s;
  EXPECT_EQ((s - 1) * kRecordHeaderSize, o.buffer_bytes);  // exactly full
  const std::uint64_t writes_before = w->stats().writes;
  w->end_run(run);
  EXPECT_GT(w->stats().writes, writes_before);  // submitted without a flush
  while (w->written_sequence() < s - 1) ASSERT_TRUE(w->reap(true)) << w->last_error();
  EXPECT_EQ(w->written_sequence(), s - 1);
}

// A child process lays records through runs (O_DIRECT, several writes in flight) and dies at a
// random moment without closing the writer. Recovery must find every record up to the last one
// the writer reported written before the death, no damage, and continue after what it found.
TEST(RecordRun, AProcessKilledWhileLayingRunsLosesNothingItWasToldWasWritten) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    TempDir dir("run-crash");
    WriterOptions o = small_options(dir.path());
    o.direct = true;
    auto* written = static_cast<std::atomic<std::uint64_t>*>(
        ::mmap(nullptr, sizeof(std::atomic<std::uint64_t>), PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(written, MAP_FAILED);
    new (written) std::atomic<std::uint64_t>(0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto w = JournalWriter::open(o);
      if (!w) ::_exit(2);
      RecordRun run = w->begin_run();
      for (std::uint64_t s = 1;; ++s) {
        const auto payload = payload_for(s, run_size(s) % 2000);
        if (!run.append(s, run_time(s), payload)) {
          w->end_run(run);
          for (;;) {
            auto r = w->append(s, run_time(s), payload);
            if (r) break;
            if (r.error().code != ErrorCode::busy || !w->reap(true)) ::_exit(3);
          }
          run = w->begin_run();
        }
        if (s % 64 == 0) {
          w->end_run(run);
          if (!w->reap(false)) ::_exit(4);
          // release: the parent reads it after the child is dead (waitpid orders it anyway).
          written->store(w->written_sequence(), std::memory_order_release);
          run = w->begin_run();
        }
      }
    }
    std::mt19937_64 rng(std::random_device{}());
    ::usleep(static_cast<useconds_t>(20'000 + rng() % 80'000));
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child exited early with " << WEXITSTATUS(status);
    // acquire: pairs with the child's release store.
    const std::uint64_t reported = written->load(std::memory_order_acquire);
    ::munmap(written, sizeof(std::atomic<std::uint64_t>));

    RecoveryReport report;
    auto w = JournalWriter::open(o, &report);
    ASSERT_TRUE(w) << w.error().message;
    EXPECT_TRUE(report.damage.empty()) << report.damage.front();
    // The torn tail counts what writes in flight reached, at most the pool (and the block they
    // rewrote), not the space preallocated after them.
    EXPECT_LE(report.truncated_bytes, o.buffers * o.buffer_bytes + kPageSize);
    // An empty journal (killed before its first write) continues at any sequence: 1 here.
    const std::uint64_t next = std::max<std::uint64_t>(w->next_sequence(), 1);
    ASSERT_GT(next, reported) << "recovery found less than the writer had reported written";
    {
      const ReadJournal j = read_journal(dir.path());
      EXPECT_TRUE(no_damage(j));
      expect_records(j, 1, next - 1, [](std::uint64_t s) { return run_size(s) % 2000; });
    }
    // And appending goes on right after what was recovered.
    append_through_runs(*w, next, next + 500, 0);
    ASSERT_TRUE(w->drain()) << w->last_error();
    const ReadJournal j = read_journal(dir.path());
    EXPECT_TRUE(no_damage(j));
    ASSERT_EQ(j.records.size(), next + 500);
    EXPECT_EQ(j.records.back().sequence, next + 500);
    EXPECT_EQ(j.records.back().payload, payload_for(next + 500, run_size(next + 500)));
  }
}

}  // namespace
}  // namespace shmbus::journal::test
