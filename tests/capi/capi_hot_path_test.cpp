// The C API's hot-path calls keep the C++ guarantees: shmbus_claim, shmbus_commit, shmbus_abort,
// shmbus_publish, shmbus_poll and shmbus_poll_copy allocate nothing and make no system call,
// including when they fail (back-pressure, a record too large), which sets the per-thread error
// message. Proven as tests/core/hot_path_test.cpp does: every malloc counted, every system call of
// a traced child recorded between two markers.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "shmbus/shmbus.h"
#include "tests/capi/capi_payload.h"
#include "tests/support/syscall_trace.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SHMBUS_TEST_SANITIZED 1
#endif

// ---- Counting allocations: operator new always, malloc itself in plain glibc builds -------------

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
}  // namespace

void* operator new(std::size_t n) { return counted(n); }
void* operator new[](std::size_t n) { return counted(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

#if !defined(SHMBUS_TEST_SANITIZED) && defined(__GLIBC__)
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

namespace shmbus::test {
namespace {

// A channel with a block subscriber (callback) and a drop subscriber (copy-out), set up outside the
// measured part; round() then publishes and polls through the C calls only.
class CHotLoop {
 public:
  explicit CHotLoop(const std::string& name) : name_(name) {
    (void)shmbus_channel_remove(name_.c_str());
    shmbus_channel_options options;
    shmbus_channel_options_init(&options);
    options.capacity = 1 << 16;
    options.max_message = 1024;
    ok_ = shmbus_publisher_open(name_.c_str(), &options, &publisher_) == 0;
    shmbus_subscriber_options so;
    shmbus_subscriber_options_init(&so);
    so.policy = SHMBUS_POLICY_BLOCK;
    ok_ = ok_ && shmbus_subscriber_open(name_.c_str(), &so, &block_) == 0;
    so.policy = SHMBUS_POLICY_DROP;
    ok_ = ok_ && shmbus_subscriber_open(name_.c_str(), &so, &drop_) == 0;
  }
  ~CHotLoop() {
    shmbus_subscriber_close(block_);
    shmbus_subscriber_close(drop_);
    shmbus_publisher_close(publisher_);
    (void)shmbus_channel_remove(name_.c_str());
  }

  // Publishes `count` records (claim/commit, publish, tagged, every 64th claim aborted), fills the
  // ring until back-pressured, tries a record too large, and polls both subscribers, checking
  // each record by sequence and content. False at the first surprise.
  bool round(std::uint64_t count) noexcept {
    if (!ok_) return false;
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::uint64_t s = sequence_ + 1;
      if (i % 64 == 63) {  // aborted: the sequence is lost to both subscribers
        shmbus_claim_ticket claim;
        if (shmbus_claim(publisher_, 16, nullptr, 0, &claim) != 0) return false;
        shmbus_abort(publisher_, &claim);
        ++sequence_;
        continue;
      }
      char key[8];
      shmbus_tag tag{key, capi_key(s, key), capi_message_type(s)};
      const shmbus_tag* tagp = capi_is_tagged(s) ? &tag : nullptr;
      int rc;
      if (i % 2 == 0) {
        shmbus_claim_ticket claim;
        while ((rc = shmbus_claim(publisher_, capi_payload_length(s), tagp, 0, &claim)) == -EAGAIN) {
          if (!poll_both()) return false;
        }
        if (rc != 0 || claim.sequence != s) return false;
        capi_payload_fill(s, claim.data);
        rc = shmbus_commit(publisher_, &claim);
      } else {
        std::uint8_t payload[64];
        capi_payload_fill(s, payload);
        while ((rc = shmbus_publish(publisher_, payload, capi_payload_length(s), tagp, 0)) ==
               -EAGAIN) {
          if (!poll_both()) return false;
        }
      }
      if (rc != 0) return false;
      ++sequence_;
      if (i % 8 == 7 && !poll_both()) return false;
    }
    // The failing paths: a record above max_message (its message set on this thread).
    static std::uint8_t big[2048];
    if (shmbus_publish(publisher_, big, sizeof big, nullptr, 0) != -EMSGSIZE) return false;
    if (std::strstr(shmbus_last_error(), "max_message") == nullptr) return false;
    // Drain: the block subscriber reaches the last sequence claimed.
    for (int polls = 0; block_next_ <= sequence_; ++polls) {
      if (polls == 100'000 || !poll_both()) return false;
    }
    return poll_both();
  }

  bool filled_until_back_pressured() noexcept {
    // Publish without polling: the block subscriber stops the publisher (-EAGAIN, and a message).
    for (;;) {
      const std::uint64_t s = sequence_ + 1;
      std::uint8_t payload[64];
      capi_payload_fill(s, payload);
      const int rc = shmbus_publish(publisher_, payload, capi_payload_length(s), nullptr, 0);
      if (rc == -EAGAIN) return std::strstr(shmbus_last_error(), "back-pressured") != nullptr;
      if (rc != 0) return false;
      ++sequence_;
    }
  }

  bool ok() const noexcept { return ok_ && bad_ == 0; }
  std::uint64_t received() const noexcept { return block_received_; }

 private:
  static void on_block(const shmbus_message* m, void* context) {
    auto* self = static_cast<CHotLoop*>(context);
    if (m->sequence != self->block_next_ + m->lost_before ||
        !capi_payload_matches(m->sequence, m->payload, m->length) ||
        !capi_tag_matches(m->sequence, m->key, m->key_length, m->message_type)) {
      ++self->bad_;
    }
    self->block_next_ = m->sequence + 1;
    ++self->block_received_;
  }

  bool poll_both() noexcept {
    const std::int64_t n = shmbus_poll(block_, on_block, this, 64);
    if (n < 0) return false;
    const std::int64_t c = shmbus_poll_copy(drop_, buffer_, sizeof buffer_, records_, 64);
    if (c < 0) return false;
    for (std::int64_t i = 0; i < c; ++i) {
      const shmbus_record& r = records_[i];
      if (!capi_payload_matches(r.sequence, buffer_ + r.offset, r.length) ||
          !capi_tag_matches(r.sequence, buffer_ + r.key_offset, r.key_length, r.message_type)) {
        ++bad_;
      }
    }
    // A poll that delivered nothing with the block subscriber behind: the next record is an
    // aborted one still to be skipped, or the subscriber is stuck.
    if (n == 0 && block_next_ <= sequence_) {
      shmbus_subscriber_counters counters;
      if (shmbus_subscriber_counters_get(block_, &counters) != 0) return false;
      block_next_ = counters.next_sequence;
    }
    return true;
  }

  std::string name_;
  bool ok_ = false;
  shmbus_publisher* publisher_ = nullptr;
  shmbus_subscriber* block_ = nullptr;
  shmbus_subscriber* drop_ = nullptr;
  std::uint64_t sequence_ = 0;  // the last sequence claimed
  std::uint64_t block_next_ = 1;
  std::uint64_t block_received_ = 0;
  std::uint64_t bad_ = 0;
  alignas(8) std::uint8_t buffer_[64 * 1024];
  shmbus_record records_[64];
};

// operator new is counted in every build; malloc (what C code would call) in plain glibc ones.
TEST(CApiHotPath, ClaimCommitPublishAndPollAllocateNothing) {
  CHotLoop loop("capi.hot.alloc." + std::to_string(::getpid()));
  ASSERT_TRUE(loop.round(2000)) << shmbus_last_error();  // warm up
  g_allocations.store(0);  // seq_cst, as every access below: one thread, no ordering needed
  g_counting.store(true);  // seq_cst: the same thread reads it
  const bool ok = loop.round(50'000) && loop.filled_until_back_pressured();
  g_counting.store(false);  // seq_cst: the same thread reads it
  ASSERT_TRUE(ok) << shmbus_last_error();
  EXPECT_TRUE(loop.ok());
  EXPECT_EQ(g_allocations.load(), 0u);  // seq_cst: written by this thread only
}

TEST(CApiHotPath, AllocationCounterSeesAllocations) {
  // The counter works (or the zero above proves nothing): a failing setup call allocates its
  // error's message (a std::string), and so does a malloc where malloc is counted.
  g_allocations.store(0);  // seq_cst, as every access below: one thread, no ordering needed
  g_counting.store(true);  // seq_cst: the same thread reads it
  shmbus_publisher* publisher = nullptr;
  const int rc = shmbus_publisher_open("bad/name/that/is/long/enough/not/to/fit/in/place", nullptr,
                                       &publisher);
  const std::uint64_t by_open = g_allocations.load();  // seq_cst: this thread only
#if defined(SHMBUS_TEST_COUNTS_MALLOC)
  void* volatile p = std::malloc(16);
#endif
  g_counting.store(false);  // seq_cst: the same thread reads it
  EXPECT_EQ(rc, -EINVAL);
  EXPECT_GE(by_open, 1u);
#if defined(SHMBUS_TEST_COUNTS_MALLOC)
  std::free(p);
  EXPECT_EQ(g_allocations.load(), by_open + 1);  // seq_cst: this thread only
#endif
}

TEST(CApiHotPath, ClaimCommitPublishAndPollMakeNoSystemCall) {
#if defined(SHMBUS_TEST_SANITIZED)
  GTEST_SKIP() << "sanitizer builds add their own system calls; the plain build runs this check";
#else
  const Trace clock = trace_clock();
  if (!clock.skip.empty()) GTEST_SKIP() << clock.skip;
  if (!clock.calls.empty()) {
    GTEST_SKIP() << "clock_gettime is a system call on this machine (no vDSO clock: "
                 << describe(clock.calls) << "), so the publish path cannot avoid one";
  }
  const std::string name = "capi.hot.trace." + std::to_string(::getpid());
  const Trace t = trace_syscalls([&] {
    CHotLoop loop(name);
    if (!loop.round(2000)) return 2;  // warm up: page faults, first stall checks
    marker();
    const bool ok = loop.round(50'000) && loop.filled_until_back_pressured();
    marker();
    return ok && loop.ok() ? 0 : 1;
  });
  (void)shmbus_channel_remove(name.c_str());
  if (!t.skip.empty()) GTEST_SKIP() << t.skip;
  EXPECT_EQ(t.exit_code, 0) << "the child's own checks failed";
  EXPECT_EQ(t.markers, 2);
  EXPECT_TRUE(t.calls.empty()) << t.calls.size() << " during 50,000 records: "
                               << describe(t.calls);
#endif
}

}  // namespace
}  // namespace shmbus::test
