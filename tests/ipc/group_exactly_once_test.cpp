// The proof of the exactly-once helper (include/shmbus/exactly_once.hpp) over a real consumer
// group: four member processes (tests/ipc/group_exactly_once_member.cpp) fold a stream into
// checkpointed states while the test kills them with kill -9 at random moments and restarts them
// under the same names, and stops them (SIGSTOP) past the ack timeout. When the group has retired
// every record, the sum of the members' checkpointed states equals the sequential fold over the
// stream (count, sum of values, XOR of a per-record hash) and no sequence is listed as applied by
// two members.
//
// SHMBUS_GROUP_RECORDS sets the stream's length (default 1,000,000: about 10 s on 2 cores).
#include <signal.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "shmbus/exactly_once.hpp"
#include "shmbus/group_consumer.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/ipc/group_exactly_once_fold.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/process.hpp"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace eo = test::eo;

std::string member_program() {
  return std::filesystem::path(SHMBUS_TEST_PEER).parent_path() / "shmbus_group_eo_member";
}

std::uint64_t records_to_send() {
  const char* env = std::getenv("SHMBUS_GROUP_RECORDS");
  if (env != nullptr && *env != '\0') return std::strtoull(env, nullptr, 10);
  return 1'000'000;
}

constexpr int kMembers = 4;
constexpr std::int64_t kAckTimeoutMs = 300;

struct Member {
  std::string name;
  test::Child process;
  int incarnations = 0;
};

TEST(GroupExactlyOnce, MembersKilledAndStoppedAtRandomFoldEveryRecordExactlyOnce) {
  const std::uint64_t records = records_to_send();
  ASSERT_GT(records, 0u);
  test::ChannelGuard ch(test::unique_channel("groupeo"));
  test::TempDir dir("groupeo");
  // A ring that holds the whole stream (a record takes at most 64 bytes): the producer never
  // waits for a lap. A killed member's block slot keeps gating the producers until the channel
  // evicts it (about 5 s, SubscriberOptions::liveness_timeout), and with a kill every 20 to 200 ms
  // a smaller ring would make this test measure that wait rather than the exactly-once protocol.
  ChannelOptions co;
  co.capacity = 1 << 20;
  while (co.capacity < records * 64) co.capacity <<= 1;
  co.max_message = 256;
  auto pub = Publisher::open(ch.name(), co);
  ASSERT_TRUE(pub) << pub.error().message;

  std::vector<Member> members(kMembers);
  const auto start = [&](Member& m) {
    m.process = test::Child::spawn(
        {member_program(), "--channel", ch.name(), "--group", "eo", "--dir", dir.path(), "--name",
         m.name, "--records", std::to_string(records), "--batch", "256", "--ack-timeout-ms",
         std::to_string(kAckTimeoutMs)});
    ++m.incarnations;
  };
  for (int i = 0; i < kMembers; ++i) {
    members[i].name = std::array<const char*, kMembers>{"m0", "m1", "m2", "m3"}[i];
    start(members[i]);
    // The first one creates the group (at the earliest record: none is published yet).
    ASSERT_TRUE(members[i].process.wait_for_line("READY", 20s)) << members[i].process.output();
  }

  // The producer: sequences 1..records, each payload its sequence's value, back-pressured by the
  // group (block policy) while it falls behind.
  std::atomic<bool> producer_failed{false};  // relaxed: read after join()
  std::thread producer([&] {
    for (std::uint64_t n = 0; n < records; ++n) {
      Claim c;
      PublishStatus st = PublishStatus::back_pressured;
      const auto deadline = Clock::now() + 60s;
      // claim() says timed_out after 100 ms of back-pressure: a stopped member holds the gate.
      while (((st = pub->claim(8, c, 100ms)) == PublishStatus::timed_out ||
              st == PublishStatus::back_pressured) &&
             Clock::now() < deadline) {
      }
      if (st != PublishStatus::ok) {
        producer_failed.store(true, std::memory_order_relaxed);  // relaxed: read after join()
        return;
      }
      const std::uint64_t v = eo::value_of(c.sequence());
      std::memcpy(c.data(), &v, sizeof v);
      if (pub->commit(c) != PublishStatus::ok) {
        producer_failed.store(true, std::memory_order_relaxed);  // relaxed: read after join()
        return;
      }
    }
  });

  // Chaos until the group has retired everything: kill -9 and restart, or stop past the ack
  // timeout and continue, a random member every 20 to 200 ms.
  std::mt19937_64 rng(20261203);
  int kills = 0;
  int stops = 0;
  const auto deadline = Clock::now() + 120s;
  std::uint64_t retired = 0;
  while (Clock::now() < deadline) {
    auto stats = read_group_stats(ch.name());
    ASSERT_TRUE(stats) << stats.error().message;
    ASSERT_EQ(stats->size(), 1u);
    ASSERT_TRUE((*stats)[0].problem.empty()) << (*stats)[0].problem;
    retired = (*stats)[0].retired_through;
    if (retired > records) break;
    // A member ends by itself only once everything is retired (which this loop may not have
    // seen yet), saying DONE.
    const auto finished = [](Member& m) {
      return !m.process.running() && m.process.output().find("DONE") != std::string::npos;
    };
    for (Member& m : members) {
      ASSERT_TRUE(m.process.running() || finished(m))
          << m.name << " ended by itself: " << m.process.output();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 45));
    Member& m = members[rng() % kMembers];
    if (finished(m)) continue;
    if (rng() % 5 == 0) {
      ::kill(m.process.pid(), SIGSTOP);
      std::this_thread::sleep_for(std::chrono::milliseconds(2 * kAckTimeoutMs));
      ::kill(m.process.pid(), SIGCONT);
      ++stops;
    } else {
      m.process.kill_hard();
      start(m);
      ++kills;
    }
  }
  producer.join();
  const auto describe = [&] {
    auto st = read_group_stats(ch.name());
    if (!st || st->empty()) return std::string("no group stats");
    const GroupStats& g = (*st)[0];
    std::string out = "next=" + std::to_string(g.next_sequence) +
                      " retired_through=" + std::to_string(g.retired_through) +
                      " in_flight=" + std::to_string(g.in_flight) +
                      " waiting_redelivery=" + std::to_string(g.waiting_redelivery) +
                      " acked=" + std::to_string(g.acked) + " redelivered=" +
                      std::to_string(g.redelivered) + " fenced=" + std::to_string(g.fenced) +
                      " lag=" + std::to_string(g.lag) + " kills=" + std::to_string(kills) +
                      " stops=" + std::to_string(stops);
    for (const GroupMemberStats& m : g.members) {
      out += "\n  member " + std::to_string(m.index) + " pid=" + std::to_string(m.pid) +
             " alive=" + std::to_string(m.alive) + " in_flight=" + std::to_string(m.in_flight) +
             " delivered=" + std::to_string(m.delivered) + " acked=" + std::to_string(m.acked);
    }
    for (Member& m : members) out += "\n  " + m.name + ": " + m.process.output();
    return out;
  };
  ASSERT_FALSE(producer_failed.load(std::memory_order_relaxed)) << describe();  // relaxed: after join()
  ASSERT_GT(retired, records) << "the group retired only up to " << retired << " in time\n"
                              << describe();

  for (Member& m : members) {
    const auto st = m.process.wait(30s);
    ASSERT_TRUE(st) << m.name << " did not finish: " << m.process.output();
    ASSERT_TRUE(st->ok()) << m.name << ": " << st->describe() << m.process.output();
    EXPECT_NE(m.process.output().find("DONE"), std::string::npos) << m.process.output();
    std::printf("%s (incarnation %d): %s", m.name.c_str(), m.incarnations,
                m.process.output().c_str());
  }
  EXPECT_GE(kills, 10);

  const auto stats = read_group_stats(ch.name()).value();
  EXPECT_EQ(stats[0].dead_lettered, 0u);
  EXPECT_EQ(stats[0].lost, 0u);
  EXPECT_GT(stats[0].redelivered, 0u) << "no kill ever caused a redelivery";

  eo::Totals sum;
  std::set<std::uint64_t> listed;
  for (const Member& m : members) {
    const auto data = read_checkpoint(dir.file(m.name + ".ckpt"));
    ASSERT_TRUE(data) << data.error().message;
    const auto t = StateCodec<eo::Totals>::decode(data->state);
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->bad, 0u) << m.name << " saw payloads that were not their sequence's value";
    eo::add(sum, *t);
    for (const std::uint64_t s : data->applied.sequences) {
      EXPECT_TRUE(listed.insert(s).second) << s << " is listed as applied by two members";
    }
  }
  const eo::Totals expected = eo::fold(1, records);
  EXPECT_EQ(sum.count, expected.count) << "records applied in all (kills: " << kills
                                       << ", stops: " << stops << ")";
  EXPECT_EQ(sum.sum, expected.sum);
  EXPECT_EQ(sum.hash_xor, expected.hash_xor);
  std::printf("records=%llu kills=%d stops=%d redelivered=%llu\n",
              static_cast<unsigned long long>(records), kills, stops,
              static_cast<unsigned long long>(stats[0].redelivered));
}

}  // namespace
}  // namespace shmbus
