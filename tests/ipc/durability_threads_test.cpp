// Publisher::wait_durable while a journaler thread reports progress (runs under ThreadSanitizer).
#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "ipc/channel.hpp"
#include "ipc/journal_link.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;

TEST(DurabilityThreads, WaitDurableReturnsOnceTheJournalerReportsTheSequence) {
  ChannelGuard ch(unique_channel("durwait"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto m = detail::ChannelMapping::open(ch.name(), true, std::chrono::milliseconds(500));
  ASSERT_TRUE(m);
  ASSERT_TRUE(detail::claim_journal(**m, "/j"));
  std::uint64_t last = 0;
  for (int i = 0; i < 100; ++i) {
    Claim c;
    ASSERT_EQ(pub->try_claim(8, c), PublishStatus::ok);
    last = c.sequence();
    ASSERT_EQ(pub->commit(c), PublishStatus::ok);
  }
  std::atomic<std::uint64_t> reported{0};
  std::thread journaler([&] {
    // Reports written first, then durable a little later, up to the last sequence.
    for (std::uint64_t s = 10; s <= last; s += 10) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      detail::publish_journal_progress(**m, s, s - 10);
      reported.store(s - 10);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    reported.store(last);
    detail::publish_journal_progress(**m, last, last);
  });
  const bool durable = pub->wait_durable(last, std::chrono::seconds(30));
  const std::uint64_t seen = reported.load();
  journaler.join();
  EXPECT_TRUE(durable);
  EXPECT_EQ(seen, last) << "wait_durable returned before the journaler reported the sequence";
  EXPECT_GE(pub->durable_sequence(), last);
  detail::release_journal(**m);
}

}  // namespace
}  // namespace shmbus
