// Many producers, gating readers and a non-gating reader on one ring, in threads of one process;
// a third of the single records are tagged (key and message type checked by every reader).
// Also run under ThreadSanitizer (tests/CMakeLists.txt builds *_threads_test with it).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "tests/core/ring_testing.hpp"

namespace shmbus::core {
namespace {

using ringtest::TestRing;

#if defined(__SANITIZE_THREAD__)
constexpr std::uint64_t kTotal = 60'000;  // TSan runs each access many times slower
#else
constexpr std::uint64_t kTotal = 200'000;
#endif
constexpr int kMaxProducers = 4;
constexpr int kGating = 2;
constexpr std::uint64_t kCapacity = 1 << 16;
constexpr std::uint32_t kMax = 512;

// A payload names its producer and that producer's counter in the tag (see fill_payload).
constexpr std::uint64_t tag_of(std::uint64_t producer, std::uint64_t counter) {
  return producer << 48 | counter;
}
std::uint64_t tag_in(const RecordView& v) {
  std::uint64_t tag = 0;
  std::memcpy(&tag, v.payload, sizeof tag);
  return tag;
}

// Every third single record of a producer is tagged (core/layout.hpp): its key is the payload's
// tag (8 bytes), its message type the counter's low 16 bits. Readers check both.
constexpr std::uint32_t kKeyBytes = sizeof(std::uint64_t);
bool tagged_counter(std::uint64_t counter) { return counter % 3 == 0; }
bool tag_ok(const RecordView& v, std::uint64_t tag) {
  const std::uint64_t counter = tag & ((std::uint64_t{1} << 48) - 1);
  if (v.type != RecordType::tagged) return v.key == nullptr && v.message_type == 0;
  std::uint64_t key = 0;
  if (v.key_length != kKeyBytes) return false;
  std::memcpy(&key, v.key, kKeyBytes);
  return tagged_counter(counter) && key == tag &&
         v.message_type == static_cast<std::uint16_t>(counter);
}

// The first failure any thread saw, and a flag that stops everybody.
class Failures {
 public:
  void fail(std::string what) {
    std::lock_guard lock(mutex_);
    if (first_.empty()) first_ = std::move(what);
    stop_.store(true, std::memory_order_relaxed);  // relaxed: a flag
  }
  bool stopped() const { return stop_.load(std::memory_order_relaxed); }  // relaxed: a flag
  std::string first() {
    std::lock_guard lock(mutex_);
    return first_;
  }

 private:
  std::mutex mutex_;
  std::string first_;
  std::atomic<bool> stop_{false};
};

struct alignas(kCacheLine) Gate {
  std::atomic<std::uint64_t> position{0};
};

// Runs `producers` producers (exclusive: one RingWriter that owns the tail) and kGating gating
// readers on one heap ring, plus a non-gating reader if asked, and checks what each of them saw.
void run(int producers, bool exclusive, bool with_drop_reader) {
  ASSERT_LE(producers, kMaxProducers);
  ASSERT_TRUE(!exclusive || producers == 1);
  const std::uint64_t per_producer = kTotal / static_cast<std::uint64_t>(producers);
  ASSERT_EQ(per_producer * static_cast<std::uint64_t>(producers), kTotal);
  TestRing ring(kCapacity, kMax);
  const RingRef ref = ring.ref();
  Gate gates[kGating];
  Failures failures;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  auto timed_out = [&] { return std::chrono::steady_clock::now() > deadline; };

  auto producer = [&](int id) {
    RingWriter w(ref, static_cast<std::uint16_t>(id + 1), exclusive);
    std::mt19937_64 rng(static_cast<std::uint64_t>(id) + 1);
    std::uint64_t spins = 0;
    for (std::uint64_t counter = 1; counter <= per_producer;) {
      // Mostly one record per claim; one claim in eight is a batch of two (at most 2 * 256 bytes
      // of frames, within the quarter-lap limit).
      const bool batch = counter < per_producer && rng() % 8 == 0;
      std::uint32_t lengths[2];
      lengths[0] =
          static_cast<std::uint32_t>(16 + rng() % (!batch && rng() % 16 == 0 ? kMax - 15 : 200));
      lengths[1] = static_cast<std::uint32_t>(16 + rng() % 200);
      const std::uint32_t tag_bytes = tag_size(kKeyBytes);
      const bool tagged = !batch && tagged_counter(counter) && lengths[0] + tag_bytes <= kMax;
      const std::span<const std::uint32_t> claim(lengths, batch ? 2 : 1);
      ClaimTicket t[2];
      for (;;) {
        // acquire: pairs with the readers' release of their positions; what they read before it
        // is done with and may be overwritten.
        std::uint64_t floor = UINT64_MAX;
        for (const Gate& g : gates) {
          floor = std::min(floor, g.position.load(std::memory_order_acquire));  // acquire: reader is done with it
        }
        const ClaimStatus st =
            batch ? w.try_claim_batch(claim, floor, t)
                  : w.try_claim(lengths[0] + (tagged ? tag_bytes : 0), floor, t[0]);
        if (st == ClaimStatus::ok) break;
        if (st != ClaimStatus::back_pressured) return failures.fail("claim refused");
        if (failures.stopped()) return;
        if ((++spins & 1023) == 0 && timed_out()) return failures.fail("producer timed out");
        std::this_thread::yield();
      }
      for (std::size_t k = 0; k < claim.size(); ++k, ++counter) {
        const std::uint64_t tag = tag_of(static_cast<std::uint64_t>(id), counter);
        std::byte* payload = t[k].payload;
        if (tagged) {
          t[k].type = RecordType::tagged;
          write_tag(payload, std::as_bytes(std::span(&tag, 1)),
                    static_cast<std::uint16_t>(counter));
          payload += tag_bytes;
        }
        w.write_header(t[k], static_cast<std::int64_t>(counter));
        ringtest::fill_payload(payload, lengths[k], tag);
        if (w.commit(t[k]) != CommitStatus::ok) return failures.fail("commit failed");
      }
    }
  };

  // Gating readers: every sequence, once, in order; each producer's counters in order.
  std::uint64_t gating_received[kGating] = {};
  auto gating_reader = [&](int g) {
    RingReader r(ref, 0, 1);
    std::uint64_t expected = 1;
    std::uint64_t last_counter[kMaxProducers] = {};
    std::uint64_t spins = 0;
    auto on_record = [&](const RecordView& v) {
      const std::uint64_t tag = tag_in(v);
      const std::uint64_t p = tag >> 48;
      const std::uint64_t counter = tag & ((std::uint64_t{1} << 48) - 1);
      if (v.sequence != expected) {
        failures.fail("gating reader: sequence " + std::to_string(v.sequence) + ", expected " +
                      std::to_string(expected));
      } else if (v.lost_before != 0) {
        failures.fail("gating reader lost " + std::to_string(v.lost_before));
      } else if (p >= static_cast<std::uint64_t>(producers) || counter != last_counter[p] + 1) {
        failures.fail("gating reader: producer " + std::to_string(p) + " counter " +
                      std::to_string(counter) + " out of order");
      } else if (!ringtest::payload_ok(v.payload, v.length, tag) || !tag_ok(v, tag) ||
                 v.timestamp_ns != static_cast<std::int64_t>(counter)) {
        failures.fail("gating reader: torn record " + std::to_string(v.sequence));
      } else {
        last_counter[p] = counter;
      }
      ++expected;
      ++gating_received[g];
    };
    while (r.next_sequence() <= kTotal && !failures.stopped()) {
      std::size_t n = 0;
      const ReadState st = r.poll_inplace(on_record, 256, n);
      // release: we are done with everything before our position.
      gates[g].position.store(r.position(), std::memory_order_release);
      if (st == ReadState::corrupt || st == ReadState::lapped) {
        return failures.fail("gating reader: bad state at sequence " +
                             std::to_string(r.next_sequence()));
      }
      if (n == 0) {
        if ((++spins & 1023) == 0 && timed_out()) return failures.fail("gating reader timed out");
        std::this_thread::yield();
      }
    }
    for (int p = 0; p < producers && !failures.stopped(); ++p) {
      if (last_counter[p] != per_producer) failures.fail("gating reader missed a producer's tail");
    }
  };

  // The non-gating reader: strictly increasing, every gap reported exactly, nothing torn.
  std::uint64_t drop_received = 0;
  std::uint64_t drop_lost = 0;
  std::uint64_t drop_unreported = 0;
  std::uint64_t drop_lapped = 0;
  auto drop_reader = [&] {
    RingReader r(ref, 0, 1);
    std::vector<std::byte> buffer(64 << 10);
    std::uint64_t last = 0;
    std::uint64_t pending = 0;
    std::uint64_t last_counter[kMaxProducers] = {};
    std::uint64_t spins = 0;
    auto on_record = [&](const RecordView& v) {
      const std::uint64_t tag = tag_in(v);
      const std::uint64_t p = tag >> 48;
      const std::uint64_t counter = tag & ((std::uint64_t{1} << 48) - 1);
      if (v.sequence <= last || v.lost_before != v.sequence - last - 1 ||
          v.lost_before != pending) {
        failures.fail("drop reader: sequence " + std::to_string(v.sequence) + " after " +
                      std::to_string(last) + " with lost_before " + std::to_string(v.lost_before) +
                      ", skipped " + std::to_string(pending));
      } else if (p >= static_cast<std::uint64_t>(producers) || counter <= last_counter[p]) {
        failures.fail("drop reader: producer order broken");
      } else if (!ringtest::payload_ok(v.payload, v.length, tag) || !tag_ok(v, tag)) {
        failures.fail("drop reader: torn record " + std::to_string(v.sequence));
      } else {
        last_counter[p] = counter;
      }
      last = v.sequence;
      drop_lost += v.lost_before;
      pending = 0;
      ++drop_received;
    };
    while (r.next_sequence() <= kTotal && !failures.stopped()) {
      std::size_t n = 0;
      const ReadState st = r.poll_copy(on_record, 256, buffer.data(), buffer.size(), n);
      if (st == ReadState::corrupt) {
        return failures.fail("drop reader: corrupt at " + std::to_string(r.next_sequence()));
      }
      if (st == ReadState::lapped) {
        ++drop_lapped;
        const TailWord b = earliest_retained(ref, kCapacity / 8);
        if (b.next_sequence < r.next_sequence()) return failures.fail("resync went backwards");
        pending += b.next_sequence - r.next_sequence();
        r.skip_to(b);
      }
      if (n == 0) {
        if ((++spins & 1023) == 0 && timed_out()) return failures.fail("drop reader timed out");
        std::this_thread::yield();
      }
    }
    drop_unreported = pending;
  };

  std::vector<std::thread> threads;
  for (int g = 0; g < kGating; ++g) threads.emplace_back(gating_reader, g);
  if (with_drop_reader) threads.emplace_back(drop_reader);
  for (int p = 0; p < producers; ++p) threads.emplace_back(producer, p);
  for (std::thread& t : threads) t.join();

  ASSERT_EQ(failures.first(), "");
  const TailWord tail = ref.load_tail();
  EXPECT_EQ(tail.next_sequence, kTotal + 1);
  for (int g = 0; g < kGating; ++g) {
    EXPECT_EQ(gating_received[g], kTotal);
    EXPECT_EQ(gates[g].position.load(), tail.position);
  }
  if (!with_drop_reader) return;
  EXPECT_EQ(drop_received + drop_lost + drop_unreported, kTotal);
  EXPECT_GT(drop_received, 0u);
  ::testing::Test::RecordProperty("drop_reader_received", std::to_string(drop_received));
  ::testing::Test::RecordProperty("drop_reader_lost", std::to_string(drop_lost + drop_unreported));
  ::testing::Test::RecordProperty("drop_reader_lapped", std::to_string(drop_lapped));
}

// Gating readers (poll_inplace) hold the producers back: every sequence 1..N arrives at each of
// them exactly once and in order, each producer's messages in its publish order, nothing torn.
TEST(RingThreads, GatingReadersSeeEverySequenceOnceInEachProducersOrder) { run(4, false, false); }

// One exclusive producer (claims by storing the tail, no compare-and-swap) under gating readers.
TEST(RingThreads, ExclusiveProducerFeedsGatingReadersInOrder) { run(1, true, false); }

// The same with a non-gating reader (poll_copy) that the producers lap: it sees strictly
// increasing sequences, every gap is reported exactly as lost_before, and nothing torn is handed
// on; received + lost == published.
TEST(RingThreads, DropReaderCountsEveryGapWhileProducersLapIt) { run(4, false, true); }

}  // namespace
}  // namespace shmbus::core
