// Consumer groups within one process (several members are several GroupConsumer objects): each
// record to exactly one member, acks, redelivery after the ack timeout and after a member leaves,
// fencing of late acks, nacks and the dead-letter channel, the group's gate on the producers,
// settings, and garbage in the group's shared state. Multi-process behaviour (kill -9, SIGSTOP)
// is in tests/faults/group_faults_test.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ipc/channel.hpp"
#include "ipc/group_segment.hpp"
#include "shmbus/dead_letter.hpp"
#include "shmbus/group_consumer.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::ChannelGuard;
using test::unique_channel;

std::string payload_for(std::uint64_t i) { return "record-" + std::to_string(i); }

void publish_n(Publisher& pub, std::uint64_t first, std::uint64_t n) {
  for (std::uint64_t i = first; i < first + n; ++i) {
    const std::string p = payload_for(i);
    ASSERT_EQ(pub.publish(std::as_bytes(std::span(p.data(), p.size())), 2s), PublishStatus::ok);
  }
}

std::string text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

struct Got {
  std::uint64_t sequence;
  std::string payload;
  bool redelivered;
  std::uint32_t attempt;
};

// Polls until `want` records arrived or `timeout` passed; does not ack.
std::vector<Got> take(GroupConsumer& g, std::size_t want, std::chrono::milliseconds timeout = 5s) {
  std::vector<Got> got;
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (got.size() < want && std::chrono::steady_clock::now() < until) {
    const std::size_t n = g.poll(
        [&](const GroupMessage& m) {
          got.push_back({m.sequence, text(m.payload), m.redelivered, m.attempt});
        },
        want - got.size());
    if (n == 0) g.wait(10ms);
  }
  return got;
}

GroupOptions fast_options() {
  GroupOptions o;
  o.ack_timeout = 200ms;
  o.max_attempts = 3;
  o.window = 256;
  return o;
}

TEST(Group, OneMemberGetsEveryRecordInOrderAndAcksRetireThem) {
  ChannelGuard ch(unique_channel("grp1"));
  auto pub = Publisher::open(ch.name(), test::small_options()).value();
  auto g = GroupConsumer::open(ch.name(), "workers", fast_options()).value();
  publish_n(pub, 0, 100);
  const auto got = take(g, 100);
  ASSERT_EQ(got.size(), 100u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].sequence, i + 1);
    EXPECT_EQ(got[i].payload, payload_for(i));
    EXPECT_FALSE(got[i].redelivered);
    EXPECT_EQ(got[i].attempt, 1u);
  }
  EXPECT_EQ(g.held(), 100u);
  for (const Got& r : got) EXPECT_EQ(g.ack(r.sequence), AckStatus::ok);
  EXPECT_EQ(g.held(), 0u);
  EXPECT_EQ(g.retired_through(), 101u);
  EXPECT_EQ(g.ack(5), AckStatus::not_held);
  auto stats = read_group_stats(ch.name()).value();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].group, "workers");
  EXPECT_EQ(stats[0].acked, 100u);
  EXPECT_EQ(stats[0].in_flight, 0u);
  EXPECT_EQ(stats[0].retired_through, 101u);
  ASSERT_EQ(stats[0].members.size(), 1u);
  EXPECT_TRUE(stats[0].members[0].alive);
}

TEST(Group, TwoMembersShareTheStreamEachRecordToExactlyOne) {
  ChannelGuard ch(unique_channel("grp2"));
  auto pub = Publisher::open(ch.name(), test::small_options()).value();
  auto a = GroupConsumer::open(ch.name(), "w", fast_options()).value();
  auto b = GroupConsumer::open(ch.name(), "w", fast_options()).value();
  EXPECT_NE(a.member_index(), b.member_index());
  std::map<std::uint64_t, std::string> seen;
  std::size_t by_a = 0;
  std::size_t by_b = 0;
  for (int round = 0; round < 20; ++round) {
    publish_n(pub, round * 50, 50);
    for (int turn = 0; turn < 100 && seen.size() < std::size_t(round + 1) * 50; ++turn) {
      by_a += a.poll([&](const GroupMessage& m) {
        EXPECT_TRUE(seen.emplace(m.sequence, text(m.payload)).second) << m.sequence;
        EXPECT_EQ(a.ack(m.sequence), AckStatus::ok);
      }, 7);
      by_b += b.poll([&](const GroupMessage& m) {
        EXPECT_TRUE(seen.emplace(m.sequence, text(m.payload)).second) << m.sequence;
        EXPECT_EQ(b.ack(m.sequence), AckStatus::ok);
      }, 5);
    }
  }
  ASSERT_EQ(seen.size(), 1000u);
  for (const auto& [seq, p] : seen) EXPECT_EQ(p, payload_for(seq - 1));
  EXPECT_GT(by_a, 0u);
  EXPECT_GT(by_b, 0u);
  EXPECT_EQ(a.retired_through(), 1001u);
}

TEST(Group, UnackedRecordsAreRedeliveredAfterTheTimeoutAndLateAcksAreFenced) {
  ChannelGuard ch(unique_channel("grp3"));
  auto pub = Publisher::open(ch.name(), test::small_options()).value();
  auto slow = GroupConsumer::open(ch.name(), "w", fast_options()).value();
  auto fast = GroupConsumer::open(ch.name(), "w", fast_options()).value();
  publish_n(pub, 0, 10);
  const auto held = take(slow, 10);
  ASSERT_EQ(held.size(), 10u);
  const auto again = take(fast, 10, 5s);  // after the 200 ms timeout
  ASSERT_EQ(again.size(), 10u);
  std::set<std::uint64_t> seqs;
  for (const Got& r : again) {
    EXPECT_TRUE(r.redelivered);
    EXPECT_EQ(r.attempt, 2u);
    EXPECT_EQ(r.payload, payload_for(r.sequence - 1));
    seqs.insert(r.sequence);
  }
  EXPECT_EQ(seqs.size(), 10u);
  EXPECT_EQ(slow.ack(held[0].sequence), AckStatus::fenced);
  EXPECT_EQ(slow.fenced(), 1u);
  for (const Got& r : again) EXPECT_EQ(fast.ack(r.sequence), AckStatus::ok);
  EXPECT_EQ(fast.retired_through(), 11u);
  // The rest of the stalled member's acks are refused too.
  EXPECT_EQ(slow.ack_through(10), 0u);
  EXPECT_EQ(slow.held(), 0u);
}

TEST(Group, ALeavingMemberGivesItsRecordsBackAtOnce) {
  ChannelGuard ch(unique_channel("grp4"));
  auto pub = Publisher::open(ch.name(), test::small_options()).value();
  GroupOptions o = fast_options();
  o.ack_timeout = 60s;  // only the departure can free them
  auto stay = GroupConsumer::open(ch.name(), "w", o).value();
  publish_n(pub, 0, 5);
  {
    auto leave = GroupConsumer::open(ch.name(), "w", o).value();
    ASSERT_EQ(take(leave, 5).size(), 5u);
  }
  const auto got = take(stay, 5, 2s);
  ASSERT_EQ(got.size(), 5u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].sequence, i + 1);
    EXPECT_TRUE(got[i].redelivered);
  }
}

TEST(Group, NackRedeliversAndTheLastAttemptGoesToTheDeadLetterChannelWithItsReason) {
  ChannelGuard ch(unique_channel("grp5"));
  ChannelGuard dlq(dead_letter_channel(ch.name()));
  auto pub = Publisher::open(ch.name(), test::small_options()).value();
  auto g = GroupConsumer::open(ch.name(), "w", fast_options()).value();
  publish_n(pub, 0, 3);
  // Record 2 always fails; 1 and 3 succeed.
  std::map<std::uint64_t, std::vector<std::uint32_t>> attempts;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (g.retired_through() < 4 && std::chrono::steady_clock::now() < until) {
    g.poll([&](const GroupMessage& m) {
      attempts[m.sequence].push_back(m.attempt);
      if (m.sequence == 2) {
        EXPECT_EQ(g.nack(m.sequence, "bad price"), AckStatus::ok);
      } else {
        EXPECT_EQ(g.ack(m.sequence), AckStatus::ok);
      }
    });
    g.wait(5ms);
  }
  EXPECT_EQ(attempts[1], std::vector<std::uint32_t>{1});
  EXPECT_EQ(attempts[2], (std::vector<std::uint32_t>{1, 2, 3}));
  EXPECT_EQ(attempts[3], std::vector<std::uint32_t>{1});
  EXPECT_EQ(g.retired_through(), 4u);

  SubscriberOptions so = test::sub_options(Policy::drop, StartFrom::earliest);
  auto sub = Subscriber::open(dlq.name(), so).value();
  std::vector<std::string> letters;
  const auto got = test::receive_messages(sub, 1, 2s);
  ASSERT_EQ(got.size(), 1u);
  const auto* raw = reinterpret_cast<const std::byte*>(got[0].payload.data());
  auto letter = decode({raw, got[0].payload.size()});
  ASSERT_TRUE(letter) << letter.error().message;
  EXPECT_EQ(letter->original_sequence, 2u);
  EXPECT_EQ(letter->attempts, 3u);
  EXPECT_EQ(letter->reason_code, DeadLetterReason::rejected);
  EXPECT_EQ(letter->reason, "bad price");
  EXPECT_EQ(letter->group, "w");
  EXPECT_EQ(letter->channel, ch.name());
  EXPECT_EQ(text(letter->payload), payload_for(1));
  auto stats = read_group_stats(ch.name()).value();
  EXPECT_EQ(stats[0].dead_lettered, 1u);
  EXPECT_EQ(stats[0].acked, 2u);
}

TEST(Group, TimeoutsCountAsAttemptsAndEndInTheDeadLetterChannel) {
  ChannelGuard ch(unique_channel("grp6"));
  ChannelGuard dlq(dead_letter_channel(ch.name()));
  auto pub = Publisher::open(ch.name(), test::small_options()).value();
  GroupOptions o = fast_options();
  o.ack_timeout = 50ms;
  o.max_attempts = 2;
  auto g = GroupConsumer::open(ch.name(), "w", o).value();
  publish_n(pub, 0, 1);
  std::vector<std::uint32_t> attempts;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (g.retired_through() < 2 && std::chrono::steady_clock::now() < until) {
    g.poll([&](const GroupMessage& m) { attempts.push_back(m.attempt); });  // never acked
    g.wait(5ms);
  }
  EXPECT_EQ(attempts, (std::vector<std::uint32_t>{1, 2}));
  auto sub = Subscriber::open(dlq.name(), test::sub_options(Policy::drop, StartFrom::earliest)).value();
  const auto got = test::receive_messages(sub, 1, 2s);
  ASSERT_EQ(got.size(), 1u);
  auto letter = decode({reinterpret_cast<const std::byte*>(got[0].payload.data()),
                        got[0].payload.size()});
  ASSERT_TRUE(letter);
  EXPECT_EQ(letter->reason_code, DeadLetterReason::ack_timeout);
  EXPECT_EQ(letter->attempts, 2u);
}

TEST(Group, TheGroupGatesTheProducersAtItsOldestUnackedRecord) {
  ChannelGuard ch(unique_channel("grp7"));
  auto pub = Publisher::open(ch.name(), test::small_options()).value();  // 64 KiB ring
  GroupOptions o = fast_options();
  o.ack_timeout = 60s;
  o.window = 4096;
  auto g = GroupConsumer::open(ch.name(), "w", o).value();
  const std::string p(200, 'x');
  const auto bytes = std::as_bytes(std::span(p.data(), p.size()));
  std::uint64_t published = 0;
  while (pub.try_publish(bytes) == PublishStatus::ok) ++published;
  EXPECT_GT(published, 100u);
  EXPECT_LT(published, 400u);  // a 64 KiB ring holds about 280 of them
  // Taking records out does not free space; acking them does.
  const auto got = take(g, published);
  ASSERT_EQ(got.size(), published);
  EXPECT_EQ(pub.try_publish(bytes), PublishStatus::back_pressured);
  for (const Got& r : got) ASSERT_EQ(g.ack(r.sequence), AckStatus::ok);
  // The gate moves with the acks (raised at once or by the next housekeeping pass).
  PublishStatus st = PublishStatus::back_pressured;
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (st != PublishStatus::ok && std::chrono::steady_clock::now() < until) {
    g.poll([](const GroupMessage&) {});
    g.wait(1ms);
    st = pub.try_publish(bytes);
  }
  EXPECT_EQ(st, PublishStatus::ok);
}

TEST(Group, JoiningWithOtherSettingsIsRefusedUnlessAccepted) {
  ChannelGuard ch(unique_channel("grp8"));
  auto pub = Publisher::open(ch.name(), test::small_options()).value();
  auto g = GroupConsumer::open(ch.name(), "w", fast_options()).value();
  GroupOptions other = fast_options();
  other.max_attempts = 9;
  auto refused = GroupConsumer::open(ch.name(), "w", other);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(refused.error().message.find("max attempts 3"), std::string::npos)
      << refused.error().message;
  other.accept_existing = true;
  auto joined = GroupConsumer::open(ch.name(), "w", other);
  ASSERT_TRUE(joined) << joined.error().message;
  EXPECT_EQ(joined->settings().max_attempts, 3u);
  EXPECT_FALSE(GroupConsumer::open(ch.name(), "bad/name", fast_options()));
  GroupOptions bad = fast_options();
  bad.window = 100;
  EXPECT_FALSE(GroupConsumer::open(ch.name(), "w2", bad));
}

TEST(Group, GroupsAndPlainSubscribersEachSeeTheWholeStream) {
  ChannelGuard ch(unique_channel("grp9"));
  auto pub = Publisher::open(ch.name(), test::small_options()).value();
  auto g1 = GroupConsumer::open(ch.name(), "one", fast_options()).value();
  auto g2 = GroupConsumer::open(ch.name(), "two", fast_options()).value();
  auto sub = Subscriber::open(ch.name(), test::sub_options(Policy::block)).value();
  publish_n(pub, 0, 50);
  auto r1 = take(g1, 50);
  auto r2 = take(g2, 50);
  auto rs = test::receive_messages(sub, 50);
  ASSERT_EQ(r1.size(), 50u);
  ASSERT_EQ(r2.size(), 50u);
  ASSERT_EQ(rs.size(), 50u);
  for (std::size_t i = 0; i < 50; ++i) {
    EXPECT_EQ(r1[i].sequence, i + 1);
    EXPECT_EQ(r2[i].sequence, i + 1);
    EXPECT_EQ(r1[i].payload, rs[i].payload);
  }
  auto stats = read_group_stats(ch.name()).value();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].in_flight, 50u);
}

TEST(Group, GarbageInTheGroupObjectIsReportedNeverTrusted) {
  ChannelGuard ch(unique_channel("grp10"));
  auto pub = Publisher::open(ch.name(), test::small_options()).value();
  { auto g = GroupConsumer::open(ch.name(), "w", fast_options()).value(); }
  auto mapping = detail::ChannelMapping::open(ch.name(), false, 0ms, false).value();
  const std::string object =
      detail::group_object_name(ch.name(), mapping->info().incarnation, "w");
  auto seg = detail::ShmSegment::open(object, true).value();
  auto& h = detail::group_header(seg.base());
  // Hostile entries and member words: a member still runs, and reports nothing it cannot know.
  std::memset(static_cast<void*>(detail::group_entries(seg.base())), 0xa5, sizeof(detail::GroupEntry) * 256);
  std::memset(static_cast<void*>(detail::group_members(seg.base())), 0x5a,
              sizeof(detail::GroupMember) * 4);
  {
    auto g = GroupConsumer::open(ch.name(), "w", fast_options());
    if (g) {
      publish_n(pub, 0, 5);
      for (int i = 0; i < 20; ++i) {
        g->poll([&](const GroupMessage& m) { (void)g->ack(m.sequence); });
        g->wait(1ms);
      }
      auto stats = read_group_stats(ch.name());
      ASSERT_TRUE(stats);
    }
  }
  // A bad window, then a bad magic: refused with a clear error.
  h.window = 12345;
  auto refused = GroupConsumer::open(ch.name(), "w", fast_options());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::corrupt);
  auto stats = read_group_stats(ch.name()).value();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_FALSE(stats[0].problem.empty());
  h.magic = 42;
  refused = GroupConsumer::open(ch.name(), "w", fast_options());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::corrupt);
  EXPECT_NE(refused.error().message.find("magic"), std::string::npos);
}

}  // namespace
}  // namespace shmbus
