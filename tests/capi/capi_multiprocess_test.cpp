// The C API across processes: a C publisher process (tests/capi/capi_peer.c) feeding a C++
// subscriber, a C++ publisher feeding a C subscriber process, and a C subscriber killed with -9
// evicted as any other subscriber. Every record is checked by sequence and content
// (tests/capi/capi_payload.h) on the receiving side.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "shmbus/shmbus.hpp"
#include "shmbus/stats.hpp"
#include "tests/capi/capi_payload.h"
#include "tests/support/process.hpp"

namespace shmbus::test {
namespace {

using namespace std::chrono_literals;

Publisher create_channel(const std::string& name, std::uint64_t capacity) {
  ChannelOptions options;
  options.capacity = capacity;
  options.max_message = 512;
  auto pub = Publisher::open(name, options);
  if (!pub) throw std::runtime_error(pub.error().message);
  return std::move(*pub);
}

// Publishes record `sequence` of capi_payload.h, tagged as it says; timeout 0: tries once.
PublishStatus publish_record(Publisher& pub, std::uint64_t sequence,
                             std::chrono::nanoseconds timeout) {
  std::uint8_t payload[64];
  capi_payload_fill(sequence, payload);
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(payload),
                                         capi_payload_length(sequence));
  if (!capi_is_tagged(sequence)) {
    return timeout == 0ns ? pub.try_publish(bytes) : pub.publish(bytes, timeout);
  }
  char key[8];
  const std::uint32_t key_length = capi_key(sequence, key);
  const RecordTag tag{std::as_bytes(std::span<const char>(key, key_length)),
                      capi_message_type(sequence)};
  return timeout == 0ns ? pub.try_publish(bytes, tag) : pub.publish(bytes, tag, timeout);
}

TEST(CApiMultiprocess, CPublisherProcessFeedsACppSubscriber) {
  ChannelGuard ch(unique_channel("capi-cpub"));
  create_channel(ch.name(), 1 << 16);
  SubscriberOptions options;
  options.policy = Policy::block;
  options.start = StartFrom::earliest;
  auto sub = Subscriber::open(ch.name(), options);
  ASSERT_TRUE(sub) << sub.error().message;
  constexpr std::uint64_t kCount = 20000;  // about 20 laps of the ring: back-pressure included
  Child peer = Child::spawn({SHMBUS_CAPI_PEER, "publish", ch.name(), std::to_string(kCount)});
  std::uint64_t next = 1;
  std::uint64_t bad = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (next <= kCount && std::chrono::steady_clock::now() < deadline) {
    if (sub->poll([&](const Message& m) {
          if (m.sequence != next || m.lost_before != 0 ||
              !capi_payload_matches(m.sequence, m.payload.data(),
                                    static_cast<std::uint32_t>(m.payload.size()))) {
            ++bad;
          }
          next = m.sequence + 1;
        }) == 0) {
      (void)sub->wait(10ms);
    }
  }
  EXPECT_EQ(next, kCount + 1);
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(sub->lost(), 0u);
  const PeerOutcome outcome = finish_peer(peer);
  EXPECT_TRUE(outcome.status.ok()) << outcome.output;
  EXPECT_EQ(field_u64(outcome.result, "published"), kCount) << outcome.output;
  EXPECT_EQ(field_u64(outcome.result, "last"), kCount) << outcome.output;
}

TEST(CApiMultiprocess, CppPublisherFeedsACSubscriberProcess) {
  ChannelGuard ch(unique_channel("capi-csub"));
  Publisher pub = create_channel(ch.name(), 1 << 16);
  constexpr std::uint64_t kCount = 20000;
  Child peer =
      Child::spawn({SHMBUS_CAPI_PEER, "subscribe", ch.name(), std::to_string(kCount), "block",
                    "5000"});
  ASSERT_TRUE(peer.wait_for_line("READY", 10s)) << peer.output();
  for (std::uint64_t s = 1; s <= kCount; ++s) {
    ASSERT_EQ(publish_record(pub, s, 5s), PublishStatus::ok) << "record " << s;
  }
  const PeerOutcome outcome = finish_peer(peer);
  EXPECT_TRUE(outcome.status.ok()) << outcome.output;
  EXPECT_EQ(field_u64(outcome.result, "received"), kCount) << outcome.output;
  EXPECT_EQ(field_u64(outcome.result, "lost"), 0u) << outcome.output;
  EXPECT_EQ(field_u64(outcome.result, "errors"), 0u) << outcome.output;
  EXPECT_EQ(field_u64(outcome.result, "last"), kCount) << outcome.output;
}

// A C block subscriber killed with -9 gates the producer until its liveness timeout passes, then
// it is evicted, and a C++ block subscriber beside it still receives every record.
TEST(CApiMultiprocess, CSubscriberKilledWithSigkillIsEvicted) {
  ChannelGuard ch(unique_channel("capi-kill"));
  Publisher pub = create_channel(ch.name(), 4096);
  SubscriberOptions options;
  options.policy = Policy::block;
  options.start = StartFrom::earliest;
  auto survivor = Subscriber::open(ch.name(), options);
  ASSERT_TRUE(survivor) << survivor.error().message;
  Child peer = Child::spawn(
      {SHMBUS_CAPI_PEER, "subscribe", ch.name(), "1000000", "block", "300"});
  ASSERT_TRUE(peer.wait_for_line("READY", 10s)) << peer.output();
  const pid_t victim = peer.pid();
  peer.kill_hard();

  constexpr std::uint64_t kCount = 400;  // ten laps of the 4 KiB ring
  std::uint64_t next = 1;
  std::uint64_t bad = 0;
  auto drain = [&] {
    survivor->poll([&](const Message& m) {
      if (m.sequence != next || !capi_payload_matches(m.sequence, m.payload.data(),
                                                       static_cast<std::uint32_t>(m.payload.size()))) {
        ++bad;
      }
      next = m.sequence + 1;
    });
  };
  for (std::uint64_t s = 1; s <= kCount; ++s) {
    PublishStatus status;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while ((status = publish_record(pub, s, 0ns)) == PublishStatus::back_pressured &&
           std::chrono::steady_clock::now() < deadline) {
      drain();
    }
    ASSERT_EQ(status, PublishStatus::ok) << "record " << s << ": the dead subscriber still gates";
  }
  while (next <= kCount) drain();
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(survivor->lost(), 0u);

  auto stats = read_channel_stats(ch.name());
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(stats->evictions, 1u);
  bool found = false;
  for (const SubscriberStats& s : stats->subscribers) {
    if (s.pid != static_cast<std::uint32_t>(victim)) continue;
    found = true;
    EXPECT_EQ(s.state, SubscriberState::evicted);
    EXPECT_FALSE(s.alive);
  }
  EXPECT_TRUE(found) << "the killed subscriber's slot is listed";
}

}  // namespace
}  // namespace shmbus::test
