// "No allocation, no lock, no system call" on the hot path (claim, write_header, commit,
// poll_inplace, poll_copy; and Publisher::try_claim/commit, Subscriber::poll above them), proven
// by counting: every allocation through a replaced operator new (and malloc), every system call
// of a child process traced with ptrace between two marker calls. A lock that is never contended
// costs no system call, so the allocation and syscall counts are what can be measured; there is
// no lock in the code under test to take.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>
#include <string>
#include <vector>

#include "ipc/journal_link.hpp"
#include "shmbus/group_consumer.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/core/ring_testing.hpp"
#include "tests/support/syscall_trace.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SHMBUS_TEST_SANITIZED 1
#endif

// ---- Counting allocations -----------------------------------------------------------------------

namespace {
std::atomic<bool> g_counting{false};
std::atomic<std::uint64_t> g_allocations{0};

void note_allocation() noexcept {
  // relaxed: read after the counted loop by the same thread.
  if (g_counting.load(std::memory_order_relaxed)) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);  // relaxed: a count
  }
}

void* counted(std::size_t n) {
  note_allocation();
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* counted(std::size_t n, std::align_val_t al) {
  note_allocation();
  const auto a = static_cast<std::size_t>(al);
  if (void* p = std::aligned_alloc(a, (n + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return counted(n); }
void* operator new[](std::size_t n) { return counted(n); }
void* operator new(std::size_t n, std::align_val_t a) { return counted(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted(n, a); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  note_allocation();
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  note_allocation();
  return std::malloc(n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

#if !defined(SHMBUS_TEST_SANITIZED) && defined(__GLIBC__)
// malloc itself, for C-level allocations (the sanitizers own malloc, so only in plain builds).
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* malloc(std::size_t n) noexcept {
  note_allocation();
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) noexcept {
  note_allocation();
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) noexcept {
  note_allocation();
  return __libc_realloc(p, n);
}
}
#define SHMBUS_TEST_COUNTS_MALLOC 1
#endif

namespace shmbus::core {
namespace {

using ringtest::TestRing;

// The hot loop shared by the tests: claims, writes and commits `count` records of sizes from a
// fixed table, polling with an in-place and a copying reader (both gating) every few records.
// Allocates nothing itself. Returns false if any record came back wrong.
class HotLoop {
 public:
  HotLoop(RingRef ring, bool exclusive, std::byte* copy_buffer, std::size_t copy_size)
      : writer_(ring, 7, exclusive),
        in_place_(ring, 0, 1),
        copying_(ring, 0, 1),
        buffer_(copy_buffer),
        buffer_size_(copy_size) {
    for (std::size_t i = 0; i < sizeof source_; ++i) source_[i] = static_cast<std::byte>(i * 7);
  }

  bool run(std::uint64_t count) noexcept {
    static constexpr std::uint32_t kSizes[] = {0, 8, 24, 64, 100, 200, 333, 512};
    for (std::uint64_t i = 0; i < count; ++i) {
      // Mostly single messages (claim and commit, or try_publish); every 16th a batch of three.
      static constexpr std::uint32_t kBatch[] = {8, 24, 64};
      const std::span<const std::uint32_t> lengths =
          i % 16 == 15 ? std::span<const std::uint32_t>(kBatch)
                       : std::span<const std::uint32_t>(&kSizes[i % 8], 1);
      ClaimTicket t[3];
      ClaimStatus st;
      if (i % 8 == 5) {  // a tagged record: key and message type before the payload
        if (!publish_tagged(lengths[0])) return false;
        if (i % 4 == 3) poll();
        continue;
      }
      while ((st = writer_.try_claim_batch(lengths, floor(), t)) == ClaimStatus::back_pressured) {
        poll();
      }
      if (st != ClaimStatus::ok) return false;
      for (std::size_t k = 0; k < lengths.size(); ++k) {
        writer_.write_header(t[k], static_cast<std::int64_t>(t[k].sequence));
        std::memcpy(t[k].payload, source_, t[k].length);
        if (writer_.commit(t[k]) != CommitStatus::ok) return false;
        ++published_;
      }
      if (i % 4 == 3) poll();
    }
    poll();
    return ok_ && in_place_seen_ == published_ && copied_seen_ == published_;
  }

 private:
  std::uint64_t floor() const noexcept {
    return std::min(in_place_.position(), copying_.position());
  }
  static constexpr char kKey[] = "hot-key";  // 7 bytes: the tag pads it to 8
  bool publish_tagged(std::uint32_t length) noexcept {
    const auto key = std::as_bytes(std::span(kKey, sizeof kKey - 1));
    const std::uint32_t tag = tag_size(static_cast<std::uint32_t>(key.size()));
    ClaimTicket t;
    ClaimStatus st;
    while ((st = writer_.try_claim(tag + length, floor(), t)) == ClaimStatus::back_pressured) poll();
    if (st != ClaimStatus::ok) return false;
    t.type = RecordType::tagged;
    writer_.begin(t, static_cast<std::int64_t>(t.sequence));
    write_tag(t.payload, key, 3);
    std::memcpy(t.payload + tag, source_, length);
    ++published_;
    return writer_.commit_with_header(t, static_cast<std::int64_t>(t.sequence)) ==
           CommitStatus::ok;
  }
  void check(const RecordView& v, std::uint64_t& seen) noexcept {
    const bool tagged = v.type == RecordType::tagged;
    if (tagged != (v.key_length != 0) ||
        (tagged && (v.message_type != 3 || v.key_length != sizeof kKey - 1 ||
                    std::memcmp(v.key, kKey, v.key_length) != 0))) {
      ok_ = false;
    }
    if (v.sequence != seen + 1 || v.lost_before != 0 ||
        v.timestamp_ns != static_cast<std::int64_t>(v.sequence) ||
        std::memcmp(v.payload, source_, v.length) != 0) {
      ok_ = false;
    }
    seen = v.sequence;
  }
  void poll() noexcept {
    std::size_t n = 0;
    if (in_place_.poll_inplace([&](const RecordView& v) { check(v, in_place_seen_); }, 64, n) ==
        ReadState::corrupt) {
      ok_ = false;
    }
    const ReadState st = copying_.poll_copy([&](const RecordView& v) { check(v, copied_seen_); },
                                            64, buffer_, buffer_size_, n);
    if (st == ReadState::corrupt || st == ReadState::lapped) ok_ = false;
  }

  RingWriter writer_;
  RingReader in_place_;
  RingReader copying_;
  std::byte* buffer_;
  std::size_t buffer_size_;
  std::byte source_[512];
  std::uint64_t published_ = 0;
  std::uint64_t in_place_seen_ = 0;
  std::uint64_t copied_seen_ = 0;
  bool ok_ = true;
};

constexpr std::uint64_t kCapacity = 1 << 16;
constexpr std::uint32_t kMax = 1024;
constexpr std::uint64_t kIterations = 100'000;

TEST(HotPath, ClaimCommitAndPollAllocateNothing) {
  for (const bool exclusive : {false, true}) {
    SCOPED_TRACE(exclusive ? "exclusive writer" : "shared writer");
    TestRing ring(kCapacity, kMax);
    std::vector<std::byte> buffer(2 * frame_size(kMax));
    HotLoop loop(ring.ref(), exclusive, buffer.data(), buffer.size());
    ASSERT_TRUE(loop.run(100));  // warm up outside the count
    g_allocations.store(0);
    g_counting.store(true);
    const bool ok = loop.run(kIterations);
    g_counting.store(false);
    EXPECT_TRUE(ok);
    EXPECT_EQ(g_allocations.load(), 0u) << "allocations during " << kIterations << " records";
  }
}

TEST(HotPath, AllocationCounterSeesAllocations) {
  // The counter itself works (or the test above proves nothing).
  g_allocations.store(0);
  g_counting.store(true);
  auto* p = new std::uint64_t[4];
  std::string s(100, 'x');
#if defined(SHMBUS_TEST_COUNTS_MALLOC)
  void* m = std::malloc(10);
  std::free(m);
#endif
  g_counting.store(false);
  delete[] p;
#if defined(SHMBUS_TEST_COUNTS_MALLOC)
  EXPECT_GE(g_allocations.load(), 3u);
#else
  EXPECT_GE(g_allocations.load(), 2u);
#endif
  EXPECT_EQ(s.size(), 100u);
}

// ---- Counting system calls ----------------------------------------------------------------------

#if defined(__x86_64__) && !defined(SHMBUS_TEST_SANITIZED)

using shmbus::test::describe;
using shmbus::test::marker;
using shmbus::test::Trace;
using shmbus::test::trace_clock;
using shmbus::test::trace_syscalls;

TEST(HotPath, TracingSeesTheSystemCallsOfTheChild) {
  // The tracer itself works (or the zero counts below prove nothing).
  const Trace t = trace_syscalls([] {
    marker();
    (void)::getpid();
    (void)::syscall(SYS_getuid);
    marker();
    return 0;
  });
  if (!t.skip.empty()) GTEST_SKIP() << t.skip;
  EXPECT_EQ(t.exit_code, 0);
  EXPECT_EQ(t.markers, 2);
  EXPECT_EQ(t.calls, (std::vector<long>{SYS_getpid, SYS_getuid}));
}

TEST(HotPath, RingClaimCommitAndPollMakeNoSystemCall) {
  for (const bool exclusive : {false, true}) {
    SCOPED_TRACE(exclusive ? "exclusive writer" : "shared writer");
    const Trace t = trace_syscalls([exclusive] {
      // A shared mapping, as a channel has.
      void* mem = ::mmap(nullptr, ring_segment_size(kCapacity), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
      if (mem == MAP_FAILED) return 2;
      format_ring(mem, ringtest::params(kCapacity, kMax));
      std::vector<std::byte> buffer(2 * frame_size(kMax));
      HotLoop loop(RingRef::attach(mem), exclusive, buffer.data(), buffer.size());
      if (!loop.run(100)) return 3;
      marker();
      const bool ok = loop.run(kIterations);
      marker();
      return ok ? 0 : 1;
    });
    if (!t.skip.empty()) GTEST_SKIP() << t.skip;
    EXPECT_EQ(t.exit_code, 0) << "the child's own checks failed";
    EXPECT_EQ(t.markers, 2);
    EXPECT_TRUE(t.calls.empty()) << t.calls.size() << " during " << kIterations
                                 << " records: " << describe(t.calls);
  }
}

// Publisher::try_claim + commit and Subscriber::poll (a block, a drop recording its latency
// histogram, a manual-release block subscriber releasing after each poll, and a spill subscriber
// on the ring) over a real channel in POSIX shared memory.
int publish_and_poll(const std::string& name, bool single_producer) {
  (void)shmbus::remove_channel(name);
  shmbus::ChannelOptions options;
  options.capacity = 1 << 20;
  options.max_message = kMax;
  options.single_producer = single_producer;
  auto pub = shmbus::Publisher::open(name, options);
  if (!pub) return 2;
  shmbus::SubscriberOptions block_options;
  block_options.policy = shmbus::Policy::block;
  shmbus::SubscriberOptions drop_options;
  drop_options.policy = shmbus::Policy::drop;
  drop_options.latency_histogram = true;
  auto block = shmbus::Subscriber::open(name, block_options);
  auto drop = shmbus::Subscriber::open(name, drop_options);
  if (!block || !drop) return 3;
  shmbus::SubscriberOptions manual_options = block_options;
  manual_options.manual_release = true;
  auto manual = shmbus::Subscriber::open(name, manual_options);
  // A spill subscriber needs a journaler attached; this one only has to exist (the spill reader
  // is never lapped here, so it never opens the journal).
  auto journal_side = shmbus::detail::ChannelMapping::open(name, false, std::chrono::seconds(1));
  if (!manual || !journal_side || !shmbus::detail::claim_journal(**journal_side, "/none")) {
    return 3;
  }
  shmbus::SubscriberOptions spill_options;
  spill_options.policy = shmbus::Policy::spill;
  auto spill = shmbus::Subscriber::open(name, spill_options);
  if (!spill) return 3;
  // Filtered: only the tagged messages (key "hot", type 3); the others are skipped in poll.
  shmbus::SubscriberOptions filtered_options;
  filtered_options.policy = shmbus::Policy::drop;
  filtered_options.filter.key = "hot";
  filtered_options.filter.message_types = {3};
  auto filtered = shmbus::Subscriber::open(name, filtered_options);
  if (!filtered) return 3;
  static constexpr char kHot[] = "hot";
  const shmbus::RecordTag tag{std::as_bytes(std::span(kHot, 3)), 3};
  std::uint64_t tagged_published = 0;
  std::uint64_t filtered_seen = 0;
  std::byte source[512] = {};
  std::uint64_t published = 0;
  std::uint64_t last_block = 0;
  std::uint64_t last_drop = 0;
  std::uint64_t last_manual = 0;
  std::uint64_t last_spill = 0;
  bool ok = true;
  auto on_block = [&](const shmbus::Message& m) {
    if (m.sequence != last_block + 1 || m.lost_before != 0) ok = false;
    last_block = m.sequence;
  };
  auto on_drop = [&](const shmbus::Message& m) {
    if (m.sequence <= last_drop) ok = false;
    last_drop = m.sequence;
  };
  auto on_manual = [&](const shmbus::Message& m) {
    if (m.sequence != last_manual + 1 || m.lost_before != 0) ok = false;
    last_manual = m.sequence;
  };
  auto on_spill = [&](const shmbus::Message& m) {
    if (m.sequence <= last_spill) ok = false;
    last_spill = m.sequence;
  };
  auto on_filtered = [&](const shmbus::Message& m) {
    if (m.message_type != 3 || m.key.size() != 3 || std::memcmp(m.key.data(), kHot, 3) != 0) {
      ok = false;
    }
    ++filtered_seen;
  };
  auto poll_gating = [&] {
    block->poll(on_block);
    manual->poll(on_manual);
    manual->release(manual->cursor());
  };
  auto round = [&](std::uint64_t count) {
    static constexpr std::uint32_t kSizes[] = {0, 8, 24, 64, 100, 200, 333, 512};
    static constexpr std::uint32_t kBatch[] = {8, 24, 64};
    for (std::uint64_t i = 0; i < count; ++i) {
      // Mostly single messages (claim and commit, or try_publish); every 16th a batch of three.
      const std::span<const std::uint32_t> sizes =
          i % 16 == 15 ? std::span<const std::uint32_t>(kBatch)
                       : std::span<const std::uint32_t>(&kSizes[i % 8], 1);
      shmbus::PublishStatus st;
      if (i % 3 == 1 && sizes.size() == 1) {
        // The copying single-message call, which has its own straight path.
        const std::span<const std::byte> payload(source, sizes[0]);
        const bool tagged = i % 2 == 0;
        while ((st = tagged ? pub->try_publish(payload, tag) : pub->try_publish(payload)) ==
               shmbus::PublishStatus::back_pressured) {
          poll_gating();
        }
        if (st != shmbus::PublishStatus::ok) ok = false;
        if (st != shmbus::PublishStatus::ok) return;
        ++published;
        tagged_published += tagged ? 1 : 0;
      } else if (i % 3 == 2 && sizes.size() == 1) {
        shmbus::Claim c;
        const bool tagged = i % 2 == 0;
        while ((st = tagged ? pub->try_claim(sizes[0], c, tag) : pub->try_claim(sizes[0], c)) ==
               shmbus::PublishStatus::back_pressured) {
          poll_gating();
        }
        if (st != shmbus::PublishStatus::ok) ok = false;
        if (st != shmbus::PublishStatus::ok) return;
        std::memcpy(c.data(), source, c.size());
        if (pub->commit(c) != shmbus::PublishStatus::ok) ok = false;
        ++published;
        tagged_published += tagged ? 1 : 0;
      } else {
        shmbus::Claim c[3];
        while ((st = pub->try_claim_batch(sizes, c)) == shmbus::PublishStatus::back_pressured) {
          poll_gating();
        }
        if (st != shmbus::PublishStatus::ok) ok = false;
        if (st != shmbus::PublishStatus::ok) return;
        for (std::size_t k = 0; k < sizes.size(); ++k) {
          std::memcpy(c[k].data(), source, c[k].size());
          if (pub->commit(c[k]) != shmbus::PublishStatus::ok) ok = false;
          ++published;
        }
      }
      if (i % 4 == 3) {
        poll_gating();
        drop->poll(on_drop);
        spill->poll(on_spill);
        filtered->poll(on_filtered);
      }
    }
    // Drain, including polls that find nothing (the subscribers' idle bookkeeping).
    for (int i = 0; i < 3000; ++i) {
      poll_gating();
      drop->poll(on_drop);
      spill->poll(on_spill);
      filtered->poll(on_filtered);
    }
  };
  round(3000);  // warm up: registration, gate caches, first stall checks
  marker();
  round(kIterations);
  marker();
  ok = ok && last_block == published && last_drop == published && last_manual == published &&
       last_spill == published && spill->spilled() == 0 && filtered_seen == tagged_published &&
       filtered->filtered() + filtered_seen == published && filtered->lost() == 0 &&
       block->status() == shmbus::PollStatus::ok && drop->status() == shmbus::PollStatus::ok &&
       manual->status() == shmbus::PollStatus::ok && spill->status() == shmbus::PollStatus::ok;
  const bool removed = shmbus::remove_channel(name).has_value();
  return ok && removed ? 0 : 1;
}

// A consumer group's member while records flow: poll hands out records (the entry claim, the
// cursor move, the copy) and ack retires them (the floor, the gate raise every quarter ring), a
// keyed group included. Idle polls run the group's housekeeping, which reads /proc: each round
// polls only the records it published, so no poll here finds nothing.
int group_poll_and_ack(const std::string& name) {
  (void)shmbus::remove_channel(name);
  shmbus::ChannelOptions options;
  options.capacity = 1 << 20;
  options.max_message = kMax;
  auto pub = shmbus::Publisher::open(name, options);
  if (!pub) return 2;
  shmbus::GroupOptions plain;
  plain.window = 1024;
  shmbus::GroupOptions keyed = plain;
  keyed.keyed = true;
  auto group = shmbus::GroupConsumer::open(name, "hot", plain);
  auto keyed_group = shmbus::GroupConsumer::open(name, "hotkeyed", keyed);
  if (!group || !keyed_group) return 3;
  static constexpr char kKeys[] = "abcdefgh";
  std::byte source[256] = {};
  std::uint64_t next = 1;
  std::uint64_t keyed_next = 1;
  bool ok = true;
  auto round = [&](std::uint64_t count) {
    for (std::uint64_t r = 0; r < count; ++r) {
      for (int i = 0; i < 64; ++i) {
        const shmbus::RecordTag tag{std::as_bytes(std::span(&kKeys[i % 8], 1)), 0};
        if (pub->try_publish(std::span(source, 64 + i), tag) != shmbus::PublishStatus::ok) {
          ok = false;
          return;
        }
      }
      std::size_t got = 0;
      while (got < 64 && ok) {
        const std::size_t n = group->poll(
            [&](const shmbus::GroupMessage& m) {
              if (m.sequence != next++ || group->ack(m.sequence) != shmbus::AckStatus::ok) {
                ok = false;
              }
            },
            64 - got);
        if (n == 0) ok = false;
        got += n;
      }
      // The keyed member acks each record at once, so no key ever waits: 64 records per round.
      got = 0;
      while (got < 64 && ok) {
        const std::size_t n = keyed_group->poll(
            [&](const shmbus::GroupMessage& m) {
              if (m.sequence != keyed_next++ || m.key.size() != 1 ||
                  keyed_group->ack(m.sequence) != shmbus::AckStatus::ok) {
                ok = false;
              }
            },
            64 - got);
        if (n == 0) ok = false;
        got += n;
      }
    }
  };
  round(50);  // warm up: the dead-letter-free first pass, gate raises, page faults
  marker();
  round(1000);
  marker();
  ok = ok && group->status() == shmbus::GroupStatus::ok && group->fenced() == 0;
  group = tl::unexpected(shmbus::Error{});
  keyed_group = tl::unexpected(shmbus::Error{});
  const bool removed = shmbus::remove_channel(name).has_value();
  return ok && removed ? 0 : 1;
}

TEST(HotPath, GroupPollAndAckMakeNoSystemCallWhileRecordsFlow) {
  const Trace clock = trace_clock();
  if (!clock.skip.empty()) GTEST_SKIP() << clock.skip;
  const std::string name = "hotpath.group." + std::to_string(::getpid());
  const Trace t = trace_syscalls([&] { return group_poll_and_ack(name); });
  (void)shmbus::remove_channel(name);
  if (!t.skip.empty()) GTEST_SKIP() << t.skip;
  EXPECT_EQ(t.exit_code, 0) << "the child's own checks failed";
  EXPECT_EQ(t.markers, 2);
  EXPECT_TRUE(t.calls.empty()) << t.calls.size() << " during 128,000 group records: "
                               << describe(t.calls);
}

TEST(HotPath, PublisherAndSubscriberHotPathsMakeNoSystemCall) {
  const Trace clock = trace_clock();
  if (!clock.skip.empty()) GTEST_SKIP() << clock.skip;
  if (!clock.calls.empty()) {
    GTEST_SKIP() << "clock_gettime is a system call on this machine (no vDSO clock: "
                 << describe(clock.calls) << "), so the publish path cannot avoid one";
  }
  for (const bool single_producer : {false, true}) {
    SCOPED_TRACE(single_producer ? "single-producer channel" : "multi-producer channel");
    const std::string name =
        "hotpath." + std::to_string(::getpid()) + (single_producer ? ".sp" : ".mp");
    const Trace t = trace_syscalls([&] { return publish_and_poll(name, single_producer); });
    (void)shmbus::remove_channel(name);  // in case the child died before removing it
    if (!t.skip.empty()) GTEST_SKIP() << t.skip;
    EXPECT_EQ(t.exit_code, 0) << "the child's own checks failed";
    EXPECT_EQ(t.markers, 2);
    EXPECT_TRUE(t.calls.empty()) << t.calls.size() << " during " << kIterations
                                 << " messages: " << describe(t.calls);
  }
}

#else

TEST(HotPath, RingClaimCommitAndPollMakeNoSystemCall) {
#if defined(SHMBUS_TEST_SANITIZED)
  GTEST_SKIP() << "sanitizer builds intercept calls and add their own system calls (shadow "
                  "memory, reports), and ptrace under them is unreliable; the plain build runs "
                  "this check";
#else
  GTEST_SKIP() << "the syscall trace reads x86-64 registers";
#endif
}

TEST(HotPath, PublisherAndSubscriberHotPathsMakeNoSystemCall) {
#if defined(SHMBUS_TEST_SANITIZED)
  GTEST_SKIP() << "sanitizer builds intercept calls and add their own system calls (shadow "
                  "memory, reports), and ptrace under them is unreliable; the plain build runs "
                  "this check";
#else
  GTEST_SKIP() << "the syscall trace reads x86-64 registers";
#endif
}

#endif

}  // namespace
}  // namespace shmbus::core
