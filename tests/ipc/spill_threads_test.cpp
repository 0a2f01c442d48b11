// The spill policy with a journaler thread beside it (runs under ThreadSanitizer too): a spill
// subscriber that is lapped again and again never slows the producer and still receives every
// sequence once, in order, with the right payload, from the journal and then from the ring.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/layout.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/payload.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;

constexpr std::uint64_t kCapacity = 64 << 10;
const SizeRule kSizes{7, kPayloadIdBytes, 400};

// Publishes messages 1..count (sequence s carries PayloadId{1, s - 1}) without ever waiting for
// the ring: try_publish only. It keeps within half a lap of what the journaler has released, so
// the only gate on the channel (the journaler's) never closes; a spill subscriber has none.
// Returns how many try_publish calls were refused (must be none); throws if the journaler stops
// releasing for 30 s.
std::uint64_t publish_paced(Publisher& pub, const ChannelFiles& files,
                            const TestJournaler& journaler, std::uint64_t first,
                            std::uint64_t last) {
  std::uint64_t refused = 0;
  std::vector<std::byte> buf(kSizes.max_size);
  for (std::uint64_t seq = first; seq <= last; ++seq) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      const std::uint64_t tail = __atomic_load_n(&files.ring().tail.position, __ATOMIC_ACQUIRE);
      if (tail < journaler.released_position() + kCapacity / 2) break;
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("the journaler released nothing for 30 s at sequence " +
                                 std::to_string(seq));
      }
      std::this_thread::yield();
    }
    const PayloadId id{1, seq - 1};
    const std::uint32_t len = payload_length(kSizes, id);
    fill_payload({buf.data(), len}, id);
    if (pub.try_publish({buf.data(), len}) != PublishStatus::ok) ++refused;
  }
  return refused;
}

// Checks what a subscriber received: every sequence from `first` on, once, in order, none lost,
// each with its own payload. Returns the first problem, or nothing.
class Expectation {
 public:
  explicit Expectation(std::uint64_t first) : next_(first) {}
  void operator()(const Message& m) {
    if (!problem_.empty()) return;
    if (m.sequence != next_) {
      problem_ = "got sequence " + std::to_string(m.sequence) + ", expected " +
                 std::to_string(next_);
    } else if (m.lost_before != 0) {
      problem_ = "sequence " + std::to_string(m.sequence) + " reports " +
                 std::to_string(m.lost_before) + " lost";
    } else {
      const PayloadId id{1, m.sequence - 1};
      std::vector<std::byte> want(payload_length(kSizes, id));
      fill_payload(want, id);
      if (m.payload.size() != want.size() ||
          !std::equal(want.begin(), want.end(), m.payload.begin())) {
        problem_ = "sequence " + std::to_string(m.sequence) + " has the wrong payload";
      }
    }
    ++next_;
  }
  std::uint64_t next() const { return next_; }
  const std::string& problem() const { return problem_; }

 private:
  std::uint64_t next_;
  std::string problem_;
};

// Polls until everything up to `last` arrived (or `timeout`).
void drain(Subscriber& sub, Expectation& expect, std::uint64_t last,
           std::chrono::seconds timeout = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (expect.next() <= last && expect.problem().empty() &&
         std::chrono::steady_clock::now() < deadline) {
    if (sub.poll(std::ref(expect)) == 0) sub.wait(std::chrono::milliseconds(5));
  }
}

// How many messages make `laps` ring capacities (frames only; padding adds a little more).
std::uint64_t messages_for_laps(std::uint64_t laps) {
  std::uint64_t bytes = 0, n = 0;
  while (bytes < laps * kCapacity) bytes += core::frame_size(payload_length(kSizes, {1, n++}));
  return n;
}

// The test: the subscriber sleeps while the producer publishes five ring capacities,
// then receives all of it, then keeps up with a producer publishing five more while it reads.
TEST(SpillThreads, SubscriberLappedFiveTimesReceivesEverySequenceOnceWithoutSlowingTheProducer) {
  ChannelGuard ch(unique_channel("spill5"));
  TempDir dir("spill5");
  ChannelOptions co;
  co.capacity = kCapacity;
  co.max_message = 1024;
  auto pub = Publisher::open(ch.name(), co);
  ASSERT_TRUE(pub);
  JournalerThread journaler(TestJournalerOptions{ch.name(), dir.path()});
  ASSERT_FALSE(journaler.open_error()) << *journaler.open_error();
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::spill));
  ASSERT_TRUE(sub) << sub.error().message;
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);

  // 1. The subscriber does not poll at all while five capacities go by.
  const std::uint64_t n1 = messages_for_laps(5);
  try {
    EXPECT_EQ(publish_paced(*pub, *files, *journaler.journaler(), 1, n1), 0u);
  } catch (const std::exception& e) {
    FAIL() << e.what() << "; the journaler says: " << journaler.stop().value_or("nothing");
  }
  Expectation expect(1);
  drain(*sub, expect, n1);
  EXPECT_EQ(expect.problem(), "");
  EXPECT_EQ(expect.next(), n1 + 1);
  EXPECT_GT(sub->spilled(), n1 / 2) << "most of it can only have come from the journal";

  // 2. Five more capacities while it reads (and is lapped again whenever it falls behind).
  const std::uint64_t n2 = n1 + messages_for_laps(5);
  std::atomic<std::uint64_t> refused{0};
  std::string producer_error;
  std::thread producer([&] {
    try {
      refused = publish_paced(*pub, *files, *journaler.journaler(), n1 + 1, n2);
    } catch (const std::exception& e) {
      producer_error = e.what();
    }
  });
  drain(*sub, expect, n2);
  producer.join();
  EXPECT_EQ(producer_error, "");
  EXPECT_EQ(refused.load(), 0u);
  EXPECT_EQ(expect.problem(), "");
  EXPECT_EQ(expect.next(), n2 + 1);

  EXPECT_EQ(sub->lost(), 0u);
  EXPECT_EQ(sub->received(), n2);
  EXPECT_EQ(sub->status(), PollStatus::ok) << sub->last_error();
  // The producer was never back-pressured, by anyone.
  EXPECT_EQ(files->control().back_pressure_events.load(), 0u);
  // Caught up: it reads the ring again.
  ASSERT_EQ(pub->try_publish(bytes_of("live")), PublishStatus::ok);
  const auto got = receive_messages(*sub, 1, std::chrono::seconds(10));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "live");
  EXPECT_FALSE(sub->catching_up());
  EXPECT_EQ(journaler.stop(), std::nullopt);
}

}  // namespace
}  // namespace shmbus
