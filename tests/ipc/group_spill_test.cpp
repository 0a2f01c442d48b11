// Spill groups: a group that never slows the producers. What the ring overwrote before the group
// handed it out, or before a redelivery, is read back from the channel's journal (a journaler in
// a child process), so every record still goes to exactly one member, with its content.
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "shmbus/group_consumer.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/process.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using namespace std::chrono_literals;

constexpr std::uint64_t kCapacity = 64 << 10;
constexpr std::uint64_t kPerLap = kCapacity / 256;  // a 200-byte record takes a 256-byte frame

std::string numbered(std::uint64_t i) {
  std::string s = "g";
  s += std::to_string(i);
  s.resize(200, '.');
  return s;
}

Child journaler_process(const TestJournalerOptions& options) {
  Child c = Child::fork([options] {
    auto j = TestJournaler::open(options);
    if (!j) return 1;
    (void)::write(1, "READY\n", 6);
    const std::atomic<bool> never{false};
    (void)(*j)->run(never);
    return 2;
  });
  if (!c.wait_for_line("READY", 10s)) throw std::runtime_error("journaler: " + c.output());
  return c;
}

GroupOptions spill_options() {
  GroupOptions o;
  o.policy = Policy::spill;
  o.start = StartFrom::earliest;
  o.ack_timeout = 60s;
  o.window = 1024;
  return o;
}

TEST(GroupSpill, RecordsTheRingOverwroteComeFromTheJournalEachToOneMember) {
  ChannelGuard ch(unique_channel("gspill"));
  TempDir dir("gspill");
  ChannelOptions co;
  co.capacity = kCapacity;
  co.max_message = 1024;
  auto pub = Publisher::open(ch.name(), co).value();
  Child j = journaler_process(TestJournalerOptions{ch.name(), dir.path()});
  auto a = GroupConsumer::open(ch.name(), "w", spill_options());
  ASSERT_TRUE(a) << a.error().message;
  // Three laps: the group does not gate, so only the last one is still in the ring.
  const std::uint64_t n = 3 * kPerLap;
  for (std::uint64_t i = 1; i <= n; ++i) {
    const std::string p = numbered(i);
    ASSERT_EQ(pub.publish(std::as_bytes(std::span(p.data(), p.size())), 30s), PublishStatus::ok);
  }
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (pub.journaled_sequence() < n && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_GE(pub.journaled_sequence(), n);

  // A member takes ten records from the journal's part and leaves without acking them.
  std::map<std::uint64_t, std::string> first;
  a->poll([&](const GroupMessage& m) {
    first[m.sequence] = std::string(reinterpret_cast<const char*>(m.payload.data()),
                                    m.payload.size());
  }, 10);
  ASSERT_EQ(first.size(), 10u);
  EXPECT_EQ(first.begin()->first, 1u);
  EXPECT_EQ(first.begin()->second, numbered(1));
  a.value() = GroupConsumer::open(ch.name(), "w2", spill_options()).value();  // leaves "w"

  auto b = GroupConsumer::open(ch.name(), "w", spill_options());
  ASSERT_TRUE(b) << b.error().message;
  std::map<std::uint64_t, std::pair<std::string, bool>> got;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (b->retired_through() <= n && std::chrono::steady_clock::now() < deadline) {
    const std::size_t k = b->poll([&](const GroupMessage& m) {
      EXPECT_TRUE(got.emplace(m.sequence, std::make_pair(
                                  std::string(reinterpret_cast<const char*>(m.payload.data()),
                                              m.payload.size()),
                                  m.redelivered))
                      .second)
          << "sequence " << m.sequence << " delivered twice";
      EXPECT_EQ(b->ack(m.sequence), AckStatus::ok);
    });
    if (k == 0) b->wait(5ms);
  }
  EXPECT_EQ(b->status(), GroupStatus::ok) << b->last_error();
  ASSERT_EQ(got.size(), n);
  for (const auto& [seq, v] : got) {
    EXPECT_EQ(v.first, numbered(seq)) << seq;
    EXPECT_EQ(v.second, seq <= 10) << seq;  // the departed member's ten come back redelivered
  }
  EXPECT_EQ(b->retired_through(), n + 1);
  auto stats = read_group_stats(ch.name()).value();
  ASSERT_FALSE(stats.empty());
  for (const GroupStats& g : stats) {
    if (g.group == "w") {
      EXPECT_EQ(g.lost, 0u);
      EXPECT_EQ(g.acked, n);
    }
  }
}

}  // namespace
}  // namespace shmbus
