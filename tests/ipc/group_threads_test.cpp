// A consumer group's members as threads of one process (runs under ThreadSanitizer): three
// member threads, each with its own GroupConsumer, a publisher thread and a thread whose member
// joins, takes a few records and leaves, over and over; every record must be acked exactly once,
// checked by sequence and content, with a few nacked once and redelivered.
// Multi-process behaviour (kill -9, SIGSTOP, garbage) is in tests/faults/group_faults_test.cpp.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "shmbus/dead_letter.hpp"
#include "shmbus/group_consumer.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/payload.hpp"
#include "tests/support/process.hpp"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using namespace shmbus::test;

constexpr SizeRule kRule{5, static_cast<std::uint32_t>(kPayloadIdBytes), 64};
constexpr std::uint32_t kProducer = 3;

// Record s carries counter s - 1 of kProducer (one publisher, a new channel).
bool is_payload_of(std::uint64_t sequence, std::span<const std::byte> payload,
                   std::vector<std::byte>& scratch) {
  const PayloadId id{kProducer, sequence - 1};
  const std::uint32_t len = payload_length(kRule, id);
  if (sequence == 0 || payload.size() != len) return false;
  scratch.resize(len);
  fill_payload(scratch, id);
  return std::memcmp(scratch.data(), payload.data(), len) == 0;
}

// The records nacked at their first delivery (and acked at their second).
bool nacked_once(std::uint64_t sequence) { return sequence % 1000 == 7; }

TEST(GroupThreads, ThreeMemberThreadsAckEveryRecordExactlyOnceWithTheRightContent) {
  constexpr std::uint64_t kRecords = 200'000;
  constexpr int kMembers = 3;
  ChannelGuard ch(unique_channel("grpthr"));
  ChannelGuard dlq(dead_letter_channel(ch.name()));
  ChannelOptions co;
  co.capacity = 256 << 10;
  co.max_message = 1024;
  auto pub = Publisher::open(ch.name(), co);
  ASSERT_TRUE(pub) << pub.error().message;

  GroupOptions go;
  go.ack_timeout = 30s;  // nothing is taken back for slowness, even under the sanitizer
  go.max_attempts = 1000;  // records the churning member gives back come again, never dead
  go.window = 1024;

  // Per sequence: the attempts it was delivered at (bit a - 1), and its ok acks.
  std::vector<std::atomic<std::uint32_t>> attempts(kRecords + 1);
  std::vector<std::atomic<std::uint32_t>> acks(kRecords + 1);
  std::atomic<std::uint64_t> wrong_content{0}, wrong_flag{0}, refused{0}, out_of_range{0};
  std::vector<std::uint64_t> delivered_by(kMembers, 0);
  // Joined one after the other (concurrent opens are the next test's subject), each then used by
  // its thread alone. Records published before the group's first gate exists would not be
  // protected from being overwritten, so the members join before anything is published.
  std::vector<std::optional<GroupConsumer>> consumers(kMembers);
  for (int i = 0; i < kMembers; ++i) {
    auto g = GroupConsumer::open(ch.name(), "workers", go);
    ASSERT_TRUE(g) << g.error().message;
    consumers[i].emplace(std::move(*g));
  }

  auto member = [&](int me) {
    std::optional<GroupConsumer>& g = consumers[me];
    std::vector<std::byte> scratch;
    std::vector<std::pair<std::uint64_t, std::uint32_t>> batch;
    while (g->retired_through() < kRecords + 1) {
      batch.clear();
      const std::size_t n = g->poll(
          [&](const GroupMessage& m) {
            if (m.sequence == 0 || m.sequence > kRecords) {
              out_of_range.fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
              return;
            }
            if (!is_payload_of(m.sequence, m.payload, scratch)) {
              wrong_content.fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
            }
            if (m.redelivered != (m.attempt > 1) || m.attempt == 0 || m.attempt > 32) {
              wrong_flag.fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
            } else {
              // relaxed: a tally, read after the threads are joined.
              attempts[m.sequence].fetch_or(1U << (m.attempt - 1), std::memory_order_relaxed);
            }
            batch.emplace_back(m.sequence, m.attempt);
          },
          32);
      delivered_by[me] += n;
      for (const auto& [seq, attempt] : batch) {
        const AckStatus st = nacked_once(seq) && attempt == 1 ? g->nack(seq, "first try fails")
                                                             : g->ack(seq);
        if (st != AckStatus::ok) {
          refused.fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
        } else if (!(nacked_once(seq) && attempt == 1)) {
          acks[seq].fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
        }
      }
      if (n == 0) g->wait(1ms);
    }
    EXPECT_EQ(g->status(), GroupStatus::ok) << g->last_error();
    EXPECT_EQ(g->last_error(), "") << "member " << me;
  };

  std::vector<std::thread> threads;
  for (int i = 0; i < kMembers; ++i) threads.emplace_back(member, i);
  std::thread publisher([&] {
    std::vector<std::byte> buf(kRule.max_size);
    for (std::uint64_t i = 0; i < kRecords; ++i) {
      const PayloadId id{kProducer, i};
      const std::uint32_t len = payload_length(kRule, id);
      fill_payload({buf.data(), len}, id);
      ASSERT_EQ(pub->publish({buf.data(), len}, 30s), PublishStatus::ok) << "record " << i;
    }
  });
  // Meanwhile members come and go: joins, a few records acked, leaves (slot reuse, gate
  // raising against a leaving member, records given back on leaving).
  std::atomic<bool> stop_churn{false};
  std::atomic<std::uint64_t> churn_joins{0};
  std::thread churn([&] {
    std::vector<std::byte> scratch;
    while (!stop_churn.load()) {  // seq_cst: test bookkeeping
      auto g = GroupConsumer::open(ch.name(), "workers", go);
      if (!g) continue;
      churn_joins.fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
      for (int k = 0; k < 5; ++k) {
        g->poll(
            [&](const GroupMessage& m) {
              if (m.sequence == 0 || m.sequence > kRecords) return;
              if (!is_payload_of(m.sequence, m.payload, scratch)) {
                wrong_content.fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
              }
              // relaxed: a tally, read after the threads are joined.
              if (m.attempt >= 1 && m.attempt <= 32) {
                attempts[m.sequence].fetch_or(1U << (m.attempt - 1), std::memory_order_relaxed);  // relaxed: see above
              }
              // Acks every other record; the rest go back when it leaves.
              if (m.sequence % 2 == 0 && !nacked_once(m.sequence) &&
                  g->ack(m.sequence) == AckStatus::ok) {
                acks[m.sequence].fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
              }
            },
            4);
      }
    }
  });
  publisher.join();
  for (std::thread& t : threads) t.join();
  stop_churn.store(true);  // seq_cst: test bookkeeping
  churn.join();
  EXPECT_GT(churn_joins.load(), 0u);

  EXPECT_EQ(wrong_content.load(), 0u);
  EXPECT_EQ(wrong_flag.load(), 0u);
  EXPECT_EQ(refused.load(), 0u);
  EXPECT_EQ(out_of_range.load(), 0u);
  std::uint64_t bad = 0;
  for (std::uint64_t s = 1; s <= kRecords; ++s) {
    // Attempt 1 always; a nacked one at least twice; records a leaving member gave back again.
    const std::uint32_t mask = attempts[s].load();
    const bool attempts_ok = (mask & 1) != 0 && (!nacked_once(s) || (mask & 2) != 0) &&
                             (mask & (mask + 1)) == 0;  // attempts 1..k, none skipped
    if (acks[s].load() != 1 || !attempts_ok) {
      if (++bad <= 10) {
        ADD_FAILURE() << "sequence " << s << ": acked " << acks[s].load()
                      << " times, delivered at attempts mask " << attempts[s].load();
      }
    }
  }
  EXPECT_EQ(bad, 0u);
  for (int i = 0; i < kMembers; ++i) EXPECT_GT(delivered_by[i], 0u) << "member " << i << " idled";
  auto stats = read_group_stats(ch.name());
  ASSERT_TRUE(stats) << stats.error().message;
  ASSERT_EQ(stats->size(), 1u);
  EXPECT_EQ((*stats)[0].acked, kRecords);
  EXPECT_EQ((*stats)[0].retired_through, kRecords + 1);
  EXPECT_GE((*stats)[0].redelivered, kRecords / 1000);
  EXPECT_EQ((*stats)[0].dead_lettered, 0u);
  EXPECT_EQ((*stats)[0].lost, 0u);
}

// Threads of one process opening the same new group at once all join one group object. Each
// open that finds no group builds one under a staging name and links it into place; the
// staging name must differ between the threads, or one thread's clean-up removes another's
// staging object before it is linked (that open fails), or a thread links a staging object
// another thread made and keeps a mapping no other member shares.
TEST(GroupThreads, ThreadsOpeningANewGroupAtOnceAllJoinTheSameGroupObject) {
  ChannelGuard ch(unique_channel("grpopen"));
  auto pub = Publisher::open(ch.name(), ChannelOptions{});
  ASSERT_TRUE(pub) << pub.error().message;
  constexpr int kThreads = 6;
  for (int round = 0; round < 20; ++round) {
    std::string group = "g";
    group += std::to_string(round);
    std::atomic<int> ready{0};
    std::vector<std::optional<GroupConsumer>> members(kThreads);
    std::vector<std::string> errors(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        ready.fetch_add(1);  // seq_cst: a start line for all threads
        while (ready.load() < kThreads) {
        }
        auto g = GroupConsumer::open(ch.name(), group);
        if (g) {
          members[i].emplace(std::move(*g));
        } else {
          errors[i] = g.error().message;
        }
      });
    }
    for (std::thread& t : threads) t.join();
    for (int i = 0; i < kThreads; ++i) {
      EXPECT_EQ(errors[i], "") << "round " << round << ", thread " << i;
    }
    // This round's record, given to exactly one of them: members of one object share it.
    std::string p = "r";
    p += std::to_string(round);
    ASSERT_EQ(pub->publish(std::as_bytes(std::span(p.data(), p.size())), 1s), PublishStatus::ok);
    int got = 0;
    for (int turn = 0; turn < 50; ++turn) {
      for (auto& m : members) {
        if (!m) continue;
        m->poll([&](const GroupMessage& msg) {
          // Each new group starts at the earliest record: count this round's only.
          const std::string body(reinterpret_cast<const char*>(msg.payload.data()),
                                 msg.payload.size());
          if (body == p) ++got;
          (void)m->ack(msg.sequence);
        });
      }
    }
    EXPECT_EQ(got, 1) << "round " << round << ": members of one group got one record "
                      << got << " times";
    auto stats = read_group_stats(ch.name());
    ASSERT_TRUE(stats);
    for (const GroupStats& g : *stats) {
      if (g.group == group) {
        std::size_t opened = 0;
        for (auto& m : members) opened += m ? 1 : 0;
        EXPECT_EQ(g.members.size(), opened) << "round " << round;
      }
    }
  }
}

}  // namespace
}  // namespace shmbus
