// JournalWriter when writes fail: errors injected through the completion hook (io_uring bypasses
// LD_PRELOAD fault injectors), a really full file system, a file size limit and hard errors.
#include <sys/mount.h>
#include <sys/resource.h>

#include <csignal>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "journal/writer.hpp"
#include "tests/journal/writer_testing.hpp"
#include "tests/support/process.hpp"

namespace shmbus::journal::test {
namespace {

using namespace std::chrono_literals;

// Turns chosen write completions into errors or short counts. fdatasync completions (result 0)
// and real errors pass unchanged.
struct Faults {
  int skip = 0;          // successful writes to let through first
  int fail = 0;          // then this many become `error`
  int error = -ENOSPC;
  int shorten = 0;       // then this many become half as long
  int seen = 0;
};

int inject(void* context, int result) {
  Faults& f = *static_cast<Faults*>(context);
  ++f.seen;
  if (result <= 0) return result;
  if (f.skip > 0) {
    --f.skip;
    return result;
  }
  if (f.fail > 0) {
    --f.fail;
    return f.error;
  }
  if (f.shorten > 0 && result > 1) {
    --f.shorten;
    return result / 2;
  }
  return result;
}

std::size_t size_for(std::uint64_t s) { return 100 + (s * 53) % 1500; }

// Every record up to written_sequence() is in the files, whole and in order.
void expect_written_records_on_disk(const std::string& dir, std::uint64_t written) {
  const ReadJournal j = read_journal(dir);
  EXPECT_TRUE(no_damage(j));
  ASSERT_GE(j.records.size(), written);
  for (std::uint64_t s = 1; s <= written; ++s) {
    ASSERT_EQ(j.records[s - 1].sequence, s);
    ASSERT_EQ(j.records[s - 1].payload, payload_for(s, size_for(s)));
  }
}

class JournalWriterFaults : public ::testing::TestWithParam<bool> {
 protected:
  WriterOptions options(const std::string& dir) const {
    WriterOptions o = small_options(dir);
    o.direct = GetParam();
    return o;
  }
};

TEST_P(JournalWriterFaults, InjectedEnospcKeepsTheBytesBlocksRetriesAndResumes) {
  TempDir dir;
  Faults faults;
  auto w = JournalWriter::open(options(dir.path()));
  ASSERT_TRUE(w) << w.error().message;
  faults.fail = 1'000'000;
  w->set_completion_hook(inject, &faults);

  std::uint64_t s = 1;
  Result<void> refused;
  for (; s < 10'000; ++s) {
    refused = w->append(s, 5, payload_for(s, size_for(s)));
    if (!refused && refused.error().code != ErrorCode::busy) break;
    if (!refused) {  // in flight, not failed yet
      ASSERT_TRUE(w->reap(true)) << w->last_error();
      --s;
      continue;
    }
    ASSERT_TRUE(w->reap(false)) << w->last_error();
  }
  ASSERT_FALSE(refused) << "the pool never filled";
  EXPECT_EQ(refused.error().code, ErrorCode::no_space) << refused.error().message;
  EXPECT_EQ(w->next_sequence(), s) << "a refused append appends nothing";
  EXPECT_TRUE(w->blocked());
  EXPECT_NE(w->last_error().find("No space left on device"), std::string::npos) << w->last_error();
  EXPECT_NE(w->last_error().find(dir.path()), std::string::npos) << w->last_error();
  EXPECT_EQ(w->written_sequence(), 0u);
  EXPECT_GT(w->stats().write_errors, 0u);

  // Still failing: retried every retry_interval, nothing lost, nothing written.
  const auto errors = w->stats().write_errors;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(w->reap(true));
  EXPECT_GT(w->stats().retried_writes, 0u);
  EXPECT_GT(w->stats().write_errors, errors);
  EXPECT_EQ(w->written_sequence(), 0u);

  faults.fail = 0;  // space is back
  ASSERT_TRUE(w->drain()) << w->last_error();
  EXPECT_FALSE(w->blocked());
  EXPECT_EQ(w->written_sequence(), s - 1);
  for (std::uint64_t t = s; t < s + 100; ++t) append_or_wait(*w, t, 5, payload_for(t, size_for(t)));
  ASSERT_TRUE(w->drain());
  const ReadJournal j = read_journal(dir.path());
  EXPECT_TRUE(no_damage(j));
  expect_records(j, 1, s + 99, size_for);
}

// Fails the write whose result is `length` bytes, once.
struct FailOneWrite {
  int length = 0;
  bool done = false;
};
int fail_one_write(void* context, int result) {
  auto& f = *static_cast<FailOneWrite*>(context);
  if (!f.done && result == f.length) {
    f.done = true;
    return -EIO;
  }
  return result;
}

// The first write (record 1 alone, flushed) fails while the later ones, already in flight,
// succeed: the later records are in the file, but written_sequence() must wait for record 1.
TEST(JournalWriterFailures, WrittenSequenceNeverPassesAFailedWrite) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.retry_interval = std::chrono::milliseconds(300);
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w) << w.error().message;
  FailOneWrite fault{static_cast<int>(padded_record_size(1000)), false};
  w->set_completion_hook(fail_one_write, &fault);
  ASSERT_TRUE(w->append(1, 5, payload_for(1, 1000)));
  ASSERT_TRUE(w->flush());
  std::uint64_t s = 2;
  for (int batch = 0; batch < 8; ++batch) {  // writes of 3 records of 100 bytes: 408 bytes each
    for (int k = 0; k < 3; ++k, ++s) ASSERT_TRUE(w->append(s, 5, payload_for(s, 100)));
    ASSERT_TRUE(w->flush());
  }
  const auto deadline = std::chrono::steady_clock::now() + 200ms;  // before the retry
  while (std::chrono::steady_clock::now() < deadline) ASSERT_TRUE(w->reap(false));
  ASSERT_TRUE(fault.done);
  EXPECT_TRUE(w->blocked());
  EXPECT_EQ(w->written_sequence(), 0u);
  EXPECT_NE(w->last_error().find("Input/output error"), std::string::npos) << w->last_error();
  ASSERT_TRUE(w->drain()) << w->last_error();
  EXPECT_EQ(w->written_sequence(), s - 1);
  EXPECT_EQ(w->stats().write_errors, 1u);
  EXPECT_EQ(w->stats().retried_writes, 1u);
  expect_records(read_journal(dir.path()), 1, s - 1,
                 [](std::uint64_t t) -> std::size_t { return t == 1 ? 1000 : 100; });
}

TEST_P(JournalWriterFaults, ShortWritesAreCompletedWithoutCorruption) {
  TempDir dir;
  Faults faults;
  faults.skip = 1;
  faults.shorten = 40;
  auto w = JournalWriter::open(options(dir.path()));
  ASSERT_TRUE(w) << w.error().message;
  w->set_completion_hook(inject, &faults);
  for (std::uint64_t s = 1; s <= 600; ++s) {
    append_or_wait(*w, s, 5, payload_for(s, size_for(s)));
    if (s % 50 == 0) {
      ASSERT_TRUE(w->flush());
    }
    ASSERT_TRUE(w->reap(false));
  }
  ASSERT_TRUE(w->drain()) << w->last_error();
  EXPECT_EQ(faults.shorten, 0);
  EXPECT_GE(w->stats().write_errors, 40u);
  EXPECT_GE(w->stats().retried_writes, 40u);
  EXPECT_NE(w->last_error().find("short write"), std::string::npos) << w->last_error();
  const ReadJournal j = read_journal(dir.path());
  EXPECT_TRUE(no_damage(j));
  expect_records(j, 1, 600, size_for);
}

TEST_P(JournalWriterFaults, HardWriteErrorsComeBackFromReapAndStopTheWriter) {
  TempDir dir;
  Faults faults;
  faults.fail = 1'000'000;
  faults.error = -EROFS;
  auto w = JournalWriter::open(options(dir.path()));
  ASSERT_TRUE(w) << w.error().message;
  w->set_completion_hook(inject, &faults);
  ASSERT_TRUE(w->append(1, 5, payload_for(1, 100)));
  auto drained = w->drain(2s);
  ASSERT_FALSE(drained);
  EXPECT_EQ(drained.error().code, ErrorCode::permission_denied) << drained.error().message;
  EXPECT_NE(drained.error().message.find("Read-only file system"), std::string::npos);
  EXPECT_NE(drained.error().message.find(dir.path()), std::string::npos);
  EXPECT_FALSE(w->reap(false));
  EXPECT_FALSE(w->append(2, 5, payload_for(2, 100)));
  EXPECT_EQ(w->written_sequence(), 0u);
}

// Under O_DIRECT a flush writes the partial last block padded with zeros and the next flush writes
// that block again with more records in it. If the first write fails and is retried after the
// second landed, it would put the older block back: the second write must wait for it.
int fail_first_block_write(void* context, int result) {
  int& left = *static_cast<int*>(context);
  if (result == 4096 && left > 0) {
    --left;
    return -ENOSPC;
  }
  return result;
}

TEST(JournalWriterDirect, ARewriteOfTheTailBlockWaitsForTheFailedEarlierWrite) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.direct = true;
  o.retry_interval = std::chrono::milliseconds(30);
  auto w = JournalWriter::open(o);
  ASSERT_TRUE(w) << w.error().message;
  int left = 1;
  w->set_completion_hook(fail_first_block_write, &left);
  ASSERT_TRUE(w->append(1, 5, payload_for(1, 100)));
  ASSERT_TRUE(w->flush());
  for (int i = 0; i < 100 && !w->blocked(); ++i) ASSERT_TRUE(w->reap(true));
  ASSERT_TRUE(w->blocked());
  ASSERT_TRUE(w->append(2, 5, payload_for(2, 100)));
  ASSERT_TRUE(w->drain()) << w->last_error();
  EXPECT_EQ(w->written_sequence(), 2u);
  const ReadJournal j = read_journal(dir.path());
  EXPECT_TRUE(no_damage(j));
  expect_records(j, 1, 2, [](std::uint64_t) { return 100; });
}

INSTANTIATE_TEST_SUITE_P(BufferedAndDirect, JournalWriterFaults, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Direct" : "Buffered"; });

// A small tmpfs mounted for the test (we run as root); unmounted however the test ends.
class SmallFileSystem {
 public:
  explicit SmallFileSystem(const std::string& path) : path_(path) {
    if (::mount("tmpfs", path.c_str(), "tmpfs", 0, "size=2m") == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~SmallFileSystem() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

TEST_P(JournalWriterFaults, AFullFileSystemBlocksWritingUntilSpaceIsFreed) {
  TempDir base("tmpfs");
  SmallFileSystem fs(base.path());
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs: " << fs.error();
  const std::string filler = base.file("filler");
  write_file(filler, std::vector<std::byte>(1600 << 10, std::byte{1}));
  const std::string dir = base.file("journal");
  auto w = JournalWriter::open(options(dir));
  if (!w && GetParam()) GTEST_SKIP() << "O_DIRECT on tmpfs: " << w.error().message;
  ASSERT_TRUE(w) << w.error().message;

  std::uint64_t s = 1;
  Result<void> refused;
  for (; s < 5000; ++s) {
    refused = w->append(s, 5, payload_for(s, size_for(s)));
    if (!refused && refused.error().code != ErrorCode::busy) break;
    if (!refused) {
      ASSERT_TRUE(w->reap(true)) << w->last_error();
      --s;
      continue;
    }
    ASSERT_TRUE(w->reap(false)) << w->last_error();
  }
  ASSERT_FALSE(refused) << "the file system never filled";
  EXPECT_EQ(refused.error().code, ErrorCode::no_space) << refused.error().message;
  EXPECT_NE(refused.error().message.find("No space left on device"), std::string::npos)
      << refused.error().message;
  EXPECT_TRUE(w->blocked());
  EXPECT_LT(w->written_sequence(), s - 1);
  expect_written_records_on_disk(dir, w->written_sequence());

  std::filesystem::remove(filler);
  ASSERT_TRUE(w->drain(5s)) << w->last_error();
  EXPECT_FALSE(w->blocked());
  EXPECT_EQ(w->written_sequence(), s - 1);
  const std::uint64_t more = s + 50;
  for (; s < more; ++s) append_or_wait(*w, s, 5, payload_for(s, size_for(s)));
  ASSERT_TRUE(w->drain(5s)) << w->last_error();
  const ReadJournal j = read_journal(dir);
  EXPECT_TRUE(no_damage(j));
  expect_records(j, 1, s - 1, size_for);
}

// RLIMIT_FSIZE applies to the whole process, so it runs in a child; SIGXFSZ is ignored so that
// writes past the limit fail with EFBIG instead of killing it.
TEST_P(JournalWriterFaults, AFileSizeLimitBlocksWritingWithEfbigUntilItIsRaised) {
  TempDir dir;
  const WriterOptions o = options(dir.path());
  shmbus::test::Child child = shmbus::test::Child::fork([&] {
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{200 << 10, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 2;
    auto w = JournalWriter::open(o);
    if (!w) return 3;
    std::uint64_t s = 1;
    Result<void> refused;
    for (; s < 5000; ++s) {
      refused = w->append(s, 5, payload_for(s, size_for(s)));
      if (!refused && refused.error().code != ErrorCode::busy) break;
      if (!refused) {
        if (!w->reap(true)) return 4;
        --s;
        continue;
      }
      if (!w->reap(false)) return 5;
    }
    // The first write past the limit is short (up to the limit); its retry meets EFBIG.
    for (int i = 0; i < 100 && w->last_error().find("File too large") == std::string::npos; ++i) {
      if (!w->reap(true)) return 7;
    }
    // Reaping may have freed a buffer (the short write completed the part below the limit).
    for (int i = 0; i < 1000; ++i, ++s) {
      refused = w->append(s, 5, payload_for(s, size_for(s)));
      if (!refused) break;
    }
    std::printf("REFUSED code=%d blocked=%d written=%llu appended=%llu error=%s\n",
                refused ? -1 : static_cast<int>(refused.error().code), w->blocked() ? 1 : 0,
                static_cast<unsigned long long>(w->written_sequence()),
                static_cast<unsigned long long>(s - 1), w->last_error().c_str());
    std::fflush(stdout);
    limit.rlim_cur = RLIM_INFINITY;
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 6;
    auto drained = w->drain(5s);
    std::printf("DRAINED ok=%d written=%llu\n", drained ? 1 : 0,
                static_cast<unsigned long long>(w->written_sequence()));
    return 0;
  });
  const auto st = child.wait(25s);
  ASSERT_TRUE(st);
  ASSERT_TRUE(st->ok()) << st->describe() << child.output();
  const std::string out = child.output();
  const auto line = [&](const char* word) {
    const auto at = out.find(word);
    return at == std::string::npos ? std::string() : out.substr(at, out.find('\n', at) - at);
  };
  auto refused = shmbus::test::parse_fields(line("REFUSED"));
  EXPECT_EQ(refused["code"], std::to_string(static_cast<int>(ErrorCode::no_space))) << out;
  EXPECT_EQ(refused["blocked"], "1") << out;
  EXPECT_NE(out.find("File too large"), std::string::npos) << out;
  ASSERT_FALSE(refused["appended"].empty()) << out;
  const std::uint64_t appended = std::stoull(refused["appended"]);
  EXPECT_LT(std::stoull(refused["written"]), appended) << out;
  auto drained = shmbus::test::parse_fields(line("DRAINED"));
  EXPECT_EQ(drained["ok"], "1") << out;
  EXPECT_EQ(drained["written"], std::to_string(appended)) << out;
  const ReadJournal j = read_journal(dir.path());
  EXPECT_TRUE(no_damage(j));
  expect_records(j, 1, appended, size_for);
}

}  // namespace
}  // namespace shmbus::journal::test
