// Publisher::wait_durable and friends without concurrency: what they answer with no journaler,
// with one that is behind, after it detached. (The waiting itself: durability_threads_test.cpp;
// a dead journaler: journal_link_test.cpp.)
#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "ipc/channel.hpp"
#include "ipc/journal_link.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using Clock = std::chrono::steady_clock;

std::shared_ptr<detail::ChannelMapping> map_channel(const std::string& name) {
  auto m = detail::ChannelMapping::open(name, true, std::chrono::milliseconds(500));
  if (!m) throw std::runtime_error(m.error().message);
  return *m;
}

TEST(Durability, WithoutAJournalerNothingBecomesDurableAndWaitingFailsAtOnce) {
  ChannelGuard ch(unique_channel("nodur"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  ASSERT_EQ(pub->try_publish(bytes_of("x")), PublishStatus::ok);
  const auto start = Clock::now();
  EXPECT_FALSE(pub->wait_durable(1, std::chrono::seconds(30)));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(1));
  EXPECT_EQ(pub->durable_sequence(), 0u);
  EXPECT_EQ(pub->journaled_sequence(), 0u);
}

TEST(Durability, ASequenceAlreadyDurableNeedsNoWait) {
  ChannelGuard ch(unique_channel("durnow"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto m = map_channel(ch.name());
  ASSERT_TRUE(detail::claim_journal(*m, "/j"));
  detail::publish_journal_progress(*m, 9, 5);
  EXPECT_TRUE(pub->wait_durable(5, std::chrono::nanoseconds(0)));
  EXPECT_TRUE(pub->wait_durable(1, std::chrono::nanoseconds(0)));
  EXPECT_EQ(pub->journaled_sequence(), 9u);
  detail::release_journal(*m);
}

TEST(Durability, WaitingOnALiveJournalerThatIsBehindTimesOut) {
  ChannelGuard ch(unique_channel("durlag"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto m = map_channel(ch.name());
  ASSERT_TRUE(detail::claim_journal(*m, "/j"));
  detail::publish_journal_progress(*m, 9, 5);
  const auto start = Clock::now();
  EXPECT_FALSE(pub->wait_durable(6, std::chrono::milliseconds(50)));
  const auto waited = Clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(50));
  EXPECT_LT(waited, std::chrono::seconds(5));
  detail::release_journal(*m);
}

TEST(Durability, AfterTheJournalerDetachesWaitingFailsAtOnceButKeepsWhatWasDurable) {
  ChannelGuard ch(unique_channel("durgone"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto m = map_channel(ch.name());
  ASSERT_TRUE(detail::claim_journal(*m, "/j"));
  detail::publish_journal_progress(*m, 9, 9);
  detail::release_journal(*m);
  EXPECT_TRUE(pub->wait_durable(9, std::chrono::seconds(30)));
  const auto start = Clock::now();
  EXPECT_FALSE(pub->wait_durable(10, std::chrono::seconds(30)));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(1));
  EXPECT_EQ(pub->durable_sequence(), 9u);
}

}  // namespace
}  // namespace shmbus
