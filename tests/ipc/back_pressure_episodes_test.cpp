// back_pressure_events counts episodes, as docs/observability.md says ("times a producer found the
// ring full"): one per transition of a producer from a claim that succeeded (or none) to one that
// found the ring full. The retries of one episode, however many, are not counted again.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "shmbus/shmbus.hpp"
#include "shmbus/stats.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;

std::uint64_t back_pressure_events(const std::string& channel) {
  auto stats = read_channel_stats(channel);
  EXPECT_TRUE(stats) << (stats ? "" : stats.error().message);
  return stats ? stats->back_pressure_events : UINT64_MAX;
}

// Publishes until the ring is full, then retries `retries` more times; returns what it published.
int fill_and_retry(Publisher& pub, const std::vector<std::byte>& payload, int retries) {
  int published = 0;
  while (published < 10000 && pub.try_publish(payload) == PublishStatus::ok) ++published;
  for (int i = 0; i < retries; ++i) {
    EXPECT_EQ(pub.try_publish(payload), PublishStatus::back_pressured);
  }
  return published;
}

TEST(BackPressureEpisodes, RetriesBehindAStoppedSubscriberCountOneEpisodeEachTimeTheRingFills) {
  ChannelGuard ch(unique_channel("bpepisodes"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::block));
  ASSERT_TRUE(sub);
  const std::vector<std::byte> payload(100);
  EXPECT_GT(fill_and_retry(*pub, payload, 5000), 300);
  EXPECT_EQ(back_pressure_events(ch.name()), 1u);

  // The subscriber reads: the producer's next claims succeed (ending the episode) until the ring
  // is full again, which starts a second one.
  const auto got = receive_messages(*sub, 200);
  ASSERT_EQ(got.size(), 200u);
  EXPECT_EQ(got.front().sequence, 1u);
  EXPECT_EQ(got.back().sequence, 200u);
  EXPECT_GT(fill_and_retry(*pub, payload, 5000), 100);
  EXPECT_EQ(back_pressure_events(ch.name()), 2u);
}

TEST(BackPressureEpisodes, BlockingPublishThatTimesOutIsOneEpisode) {
  ChannelGuard ch(unique_channel("bptimeout"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::block));
  ASSERT_TRUE(sub);
  const std::vector<std::byte> payload(100);
  fill_and_retry(*pub, payload, 0);
  EXPECT_EQ(pub->publish(payload, std::chrono::milliseconds(50)), PublishStatus::timed_out);
  EXPECT_EQ(back_pressure_events(ch.name()), 1u);
}

TEST(BackPressureEpisodes, EachProducerCountsItsOwnEpisode) {
  ChannelGuard ch(unique_channel("bpproducers"));
  auto a = Publisher::open(ch.name(), small_options());
  auto b = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(a && b);
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::block));
  ASSERT_TRUE(sub);
  const std::vector<std::byte> payload(100);
  fill_and_retry(*a, payload, 1000);
  fill_and_retry(*b, payload, 1000);
  EXPECT_EQ(back_pressure_events(ch.name()), 2u);
}

}  // namespace
}  // namespace shmbus
