// JournalWriter::open failing part way: options beyond the writer's limits, a buffer pool that
// cannot be allocated, an io_uring the kernel refuses. Each failure is an error Result (never an
// exception, never a crash in the destructor of the half-built writer), it releases the
// directory's lock, and the journal it was about to continue is left exactly as it was.
//
// The two kernel-side failures are made real in a forked child: a cap on the address space
// (RLIMIT_AS) for the pool, a seccomp filter that fails io_uring_setup for the ring.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "journal/writer.hpp"
#include "tests/journal/writer_testing.hpp"
#include "tests/support/process.hpp"

namespace shmbus::journal::test {
namespace {

using namespace std::chrono_literals;
using ::shmbus::test::Child;

constexpr std::uint64_t kRecords = 50;

// A journal of records 1..kRecords, closed.
void write_journal(const std::string& dir) {
  auto w = JournalWriter::open(small_options(dir));
  ASSERT_TRUE(w) << w.error().message;
  for (std::uint64_t s = 1; s <= kRecords; ++s) append_or_wait(*w, s, 1, payload_for(s, 200));
  ASSERT_TRUE(w->drain()) << w->last_error();
}

// The journal still holds exactly records 1..kRecords, and a writer opens it again (the failed
// open released the lock) to continue at kRecords + 1.
void expect_journal_untouched_and_reopenable(const std::string& dir) {
  const ReadJournal j = read_journal(dir);
  EXPECT_TRUE(no_damage(j));
  expect_records(j, 1, kRecords, [](std::uint64_t) { return 200; });
  auto again = JournalWriter::open(small_options(dir));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->next_sequence(), kRecords + 1);
}

// In the child: says which error came instead (on the pipe the parent reads) and fails.
int unexpected_error(const Error& e) {
  std::printf("unexpected error: %s\n", e.message.c_str());
  std::fflush(stdout);
  return 12;
}

// Runs `body` in a forked child and expects it to exit 0 (a crash or an escaped exception fails).
void expect_child_succeeds(const std::function<int()>& body) {
  Child child = Child::fork(body);
  const auto status = child.wait(30s);
  ASSERT_TRUE(status.has_value()) << "the child did not finish";
  EXPECT_TRUE(status->ok()) << status->describe() << "\n" << child.output();
}

std::uint64_t address_space_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t pages = 0;
  statm >> pages;
  return pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// Makes io_uring_setup fail with EPERM in this process (as a container's seccomp profile does).
bool refuse_io_uring_setup() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(std::size(filter)), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) == 0;
}

TEST(JournalWriterOpenFailure, SegmentSizeBeyondTheLimitIsAnErrorNotAnAllocationFailure) {
  TempDir dir;
  write_journal(dir.path());
  WriterOptions o = small_options(dir.path());
  o.segment_bytes = std::uint64_t{1} << 62;  // its index alone would be 2^51 bytes
  Result<JournalWriter> w = tl::unexpected(Error{});
  ASSERT_NO_THROW(w = JournalWriter::open(o));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(w.error().message.find("segment_bytes 4611686018427387904"), std::string::npos)
      << w.error().message;
  expect_journal_untouched_and_reopenable(dir.path());
}

TEST(JournalWriterOpenFailure, MoreBuffersThanTheRingCanHoldAreAnInvalidArgument) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.buffers = kMaxWriteBuffers + 1;
  auto w = JournalWriter::open(o);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(w.error().message.find("journal buffers 8193 (1 .. 8192)"), std::string::npos)
      << w.error().message;
}

TEST(JournalWriterOpenFailure, AnUnallocatableBufferPoolIsAnErrorAndTheJournalIsLeftIntact) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: RLIMIT_AS cannot apply";
#endif
  TempDir dir;
  write_journal(dir.path());
  expect_child_succeeds([&] {
    // Room for what the process has and a little more, not for 8 buffers of 1 GiB.
    const rlimit cap{address_space_bytes() + (512ull << 20), RLIM_INFINITY};
    if (::setrlimit(RLIMIT_AS, &cap) != 0) return 10;
    WriterOptions o = small_options(dir.path());
    o.buffers = 8;
    o.buffer_bytes = kMaxWriteBufferBytes;
    auto w = JournalWriter::open(o);
    if (w) return 11;
    if (w.error().message.find("cannot allocate 8 write buffers of 1073741824 bytes") ==
        std::string::npos) {
      return unexpected_error(w.error());
    }
    return 0;  // and the half-built writer was destroyed without crashing
  });
  expect_journal_untouched_and_reopenable(dir.path());
}

TEST(JournalWriterOpenFailure, ARefusedIoUringIsAnErrorAndTheJournalIsLeftIntact) {
  TempDir dir;
  write_journal(dir.path());
  expect_child_succeeds([&] {
    if (!refuse_io_uring_setup()) return 10;
    auto w = JournalWriter::open(small_options(dir.path()));
    if (w) return 11;
    if (w.error().code != ErrorCode::permission_denied ||
        w.error().message.find("cannot set up an io_uring") == std::string::npos) {
      return unexpected_error(w.error());
    }
    return 0;
  });
  expect_journal_untouched_and_reopenable(dir.path());
}

}  // namespace
}  // namespace shmbus::journal::test
