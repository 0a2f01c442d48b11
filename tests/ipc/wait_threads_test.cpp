// Subscriber::wait and the producers' wake-up: a sleeper is woken by the next commit, and a
// stream costs the producers one wake-up per sleep (the armed `waiters` flag), not one per message.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"

namespace shmbus::test {
namespace {

using namespace std::chrono_literals;

std::uint32_t wake_word(const ChannelFiles& files) {
  // acquire: only a value to compare; the test's own calls ordered it.
  return files.control().wake_word.load(std::memory_order_acquire);
}

TEST(WaitThreads, ASleepingSubscriberWakesForTheNextMessage) {
  ChannelGuard ch(unique_channel("waitwake"));
  auto pub = Publisher::open(ch.name());
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name());
  ASSERT_TRUE(sub);
  std::atomic<bool> woke{false};
  std::thread sleeper([&] {
    // spin 0: straight to the futex. The timeout is far above the test's run time, so returning
    // true means the message woke it.
    woke.store(sub->wait(60s, 0ns), std::memory_order_release);  // release: read after join
  });
  std::this_thread::sleep_for(20ms);
  ASSERT_EQ(pub->try_publish(bytes_of("wake up")), PublishStatus::ok);
  sleeper.join();
  EXPECT_TRUE(woke.load(std::memory_order_acquire));  // acquire: pairs with the store above
  std::string got;
  std::uint64_t sequence = 0;
  ASSERT_EQ(sub->poll([&](const Message& m) {
    sequence = m.sequence;
    got.assign(reinterpret_cast<const char*>(m.payload.data()), m.payload.size());
  }), 1u);
  EXPECT_EQ(sequence, 1u);
  EXPECT_EQ(got, "wake up");
}

TEST(WaitThreads, ProducersWakeOncePerSleepNotOncePerMessage) {
  ChannelGuard ch(unique_channel("waitonce"));
  ChannelOptions options;
  options.capacity = 1 << 20;
  auto pub = Publisher::open(ch.name(), options);
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name());
  ASSERT_TRUE(sub);
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);

  // Nobody has slept: a stream makes no wake-up at all.
  const std::uint32_t start = wake_word(*files);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(pub->try_publish(bytes_of("quiet")), PublishStatus::ok);
  EXPECT_EQ(wake_word(*files), start);
  std::uint64_t received = 0;
  while (sub->poll([&](const Message& m) { received += m.sequence == received + 1 ? 1 : 0; }) > 0) {
  }
  ASSERT_EQ(received, 1000u);

  // One sleep (it times out, nothing is published meanwhile): the next stream wakes once.
  EXPECT_FALSE(sub->wait(2ms, 0ns));
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(pub->try_publish(bytes_of("loud")), PublishStatus::ok);
  EXPECT_EQ(wake_word(*files), start + 1) << "one wake-up for the one sleep";
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(pub->try_publish(bytes_of("loud")), PublishStatus::ok);
  EXPECT_EQ(wake_word(*files), start + 1) << "the flag was taken: no more wake-ups";
  while (sub->poll([&](const Message& m) { received += m.sequence == received + 1 ? 1 : 0; }) > 0) {
  }
  EXPECT_EQ(received, 3000u);
}

}  // namespace
}  // namespace shmbus::test
