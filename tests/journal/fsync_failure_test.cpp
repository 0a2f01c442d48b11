// A failed fdatasync (EIO) is never retried and continued: the writer stops, reports it, and
// nothing after it is ever called durable: not by durable_sequence(), not by the durable mark
// that verify and recovery read. A failed write of the mark itself stops the writer the same way.
// After reopening, recovery keeps every record that was reported durable.
#include <cerrno>
#include <chrono>

#include <gtest/gtest.h>

#include "journal/durable_mark.hpp"
#include "journal/writer.hpp"
#include "tests/journal/writer_testing.hpp"

namespace shmbus::journal::test {
namespace {

using namespace std::chrono_literals;

// Counts fdatasync completions (result 0: a write of n > 0 bytes never completes with 0) and
// turns them into EIO.
struct FsyncFaults {
  int fsyncs_seen = 0;
  bool fail_mark_writes = false;  // instead: the durable mark's write (32 bytes, after a fsync)
  bool fsync_completed = false;
};
int fail_syncs(void* context, int result) {
  auto& f = *static_cast<FsyncFaults*>(context);
  if (result == 0) {
    ++f.fsyncs_seen;
    f.fsync_completed = true;
    return f.fail_mark_writes ? 0 : -EIO;
  }
  if (f.fail_mark_writes && f.fsync_completed && result == static_cast<int>(sizeof(DurableMark))) {
    return -EIO;
  }
  return result;
}

WriterOptions batch_options(const std::string& dir) {
  WriterOptions o = small_options(dir);
  o.fsync = FsyncPolicy::batch;
  return o;
}

void expect_stopped_at_one(JournalWriter& w, const std::string& why) {
  auto drained = w.drain(2s);
  ASSERT_FALSE(drained);
  EXPECT_NE(drained.error().message.find(why), std::string::npos) << drained.error().message;
  EXPECT_EQ(w.durable_sequence(), 1u);
}

TEST(JournalFsyncFailure, AnFdatasyncEioIsNeverRetriedAndNothingAfterItBecomesDurable) {
  TempDir dir;
  FsyncFaults faults;
  {
    auto w = JournalWriter::open(batch_options(dir.path()));
    ASSERT_TRUE(w) << w.error().message;
    ASSERT_TRUE(w->append(1, 1, payload_for(1, 100)));
    ASSERT_TRUE(w->drain());
    ASSERT_EQ(w->durable_sequence(), 1u);
    w->set_completion_hook(fail_syncs, &faults);
    for (std::uint64_t s = 2; s <= 50; ++s) append_or_wait(*w, s, 1, payload_for(s, 100));
    expect_stopped_at_one(*w, "fdatasync");
    EXPECT_EQ(read_durable_mark(dir.path()).durable_sequence, 1u) << "no mark after the failure";
    const int seen = faults.fsyncs_seen;
    EXPECT_GE(seen, 1);
    for (int i = 0; i < 5; ++i) {
      EXPECT_FALSE(w->reap(true));
      EXPECT_FALSE(w->flush());
      EXPECT_FALSE(w->drain(20ms));
    }
    EXPECT_EQ(faults.fsyncs_seen, seen) << "no fdatasync is issued after the failed one";
    EXPECT_EQ(w->durable_sequence(), 1u);
    EXPECT_EQ(read_durable_mark(dir.path()).durable_sequence, 1u);
  }
  auto reopened = JournalWriter::open(batch_options(dir.path()));
  ASSERT_TRUE(reopened) << reopened.error().message;
  EXPECT_GE(reopened->next_sequence(), 2u);
  const ReadJournal j = read_journal(dir.path());
  ASSERT_GE(j.records.size(), 1u);
  EXPECT_EQ(j.records[0].payload, payload_for(1, 100));
}

TEST(JournalFsyncFailure, AFailedWriteOfTheDurableMarkStopsTheWriterWithoutCallingTheRoundDurable) {
  TempDir dir;
  FsyncFaults faults;
  faults.fail_mark_writes = true;
  auto w = JournalWriter::open(batch_options(dir.path()));
  ASSERT_TRUE(w) << w.error().message;
  ASSERT_TRUE(w->append(1, 1, payload_for(1, 100)));
  ASSERT_TRUE(w->drain());
  w->set_completion_hook(fail_syncs, &faults);
  ASSERT_TRUE(w->append(2, 1, payload_for(2, 100)));
  // The hook fails the completion of a write the kernel did make, so the mark on disk may say 2:
  // true (its fdatasync succeeded), but the writer, told the write failed, does not report it.
  expect_stopped_at_one(*w, "durable mark");
  EXPECT_FALSE(w->append(3, 1, payload_for(3, 100)));
}

}  // namespace
}  // namespace shmbus::journal::test
