// Processes in another pid namespace (a container sharing /dev/shm with the host).
//
// A slot names its process by pid and start time (/proc/PID/stat field 22), both as the process
// sees them: inside `unshare -fp --mount-proc` the pid is 1. The start time counts clock ticks
// since boot in every namespace, but the pid is the namespace's own, so a process outside reads
// /proc/1 (its own init, started at another time) and judges the subscriber dead. shmbus cannot
// tell the two cases apart from a pid and a start time: keep every process of a channel in one
// pid namespace (share the host's, or run them all in the same container).
//
// What these tests pin: the misjudgment is visible (the stats show the subscriber dead), and the
// misjudged subscriber, once evicted, finds out (PollStatus::evicted) and leaves the slot, which
// a host process holds by then, alone. It was idle when evicted, so it read nothing stale.
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/faults/faults_testing.hpp"
#include "tests/support/inprocess.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using namespace shmbus::test::faults;

bool can_unshare() {
  Child probe = Child::spawn({"/usr/bin/unshare", "-fp", "--mount-proc", "/bin/true"});
  auto st = probe.wait(10s);
  return st && st->ok();
}

class PidNamespace : public ::testing::TestWithParam<Policy> {};

TEST_P(PidNamespace, SubscriberInAnotherPidNamespaceLooksDeadToTheHostAndLearnsItWasEvicted) {
  if (!can_unshare()) GTEST_SKIP() << "unshare -fp --mount-proc is not permitted here";
  const Policy policy = GetParam();
  ChannelGuard ch(unique_channel("pidns"));
  Publisher pub = Publisher::open(ch.name(), small_channel(1)).value();
  Child contained = start_peer(
      std::vector<std::string>{"consume", "--channel", ch.name(), "--policy", to_string(policy),
                               "--liveness-ms", "100", "--until-seq", str(UINT32_MAX),
                               "--idle-timeout-ms", "60000"} +
          rule_args(kRule),
      {"/usr/bin/unshare", "-fp", "--mount-proc"});
  ASSERT_EQ(publish_counted(pub, 1, 0, 10, kRule, 5s), 10u);

  // Its slot says pid 1: the host's init, which started at another time.
  auto stats = read_channel_stats(ch.name());
  ASSERT_TRUE(stats);
  ASSERT_EQ(stats->subscribers.size(), 1u);
  EXPECT_EQ(stats->subscribers[0].pid, 1u);
  EXPECT_FALSE(stats->subscribers[0].alive);
  EXPECT_EQ(stats->subscribers[0].state, SubscriberState::dead);

  // The table is full, so a host subscriber's open looks for dead ones and takes the slot.
  SubscriberOptions mine = sub_options(policy == Policy::spill ? Policy::drop : policy);
  Subscriber host = Subscriber::open(ch.name(), mine).value();
  const auto self = static_cast<std::uint32_t>(::getpid());
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  detail::SubscriberSlot& slot = files->subscriber_slots()[0];
  ASSERT_EQ(slot.pid, self);

  const PeerOutcome o = finish_peer(contained, 20s);
  EXPECT_EQ(o.status.code, 1) << o.status.describe() << "\n" << o.output;
  EXPECT_NE(o.output.find("ERROR poll status evicted"), std::string::npos) << o.output;
  ASSERT_FALSE(o.result.empty()) << o.output;
  EXPECT_EQ(o.result.at("errors"), "1") << o.output;
  EXPECT_EQ(o.result.at("received"), "10") << o.output;
  EXPECT_EQ(slot.owner.load(), detail::owner_word(self, detail::SlotState::active))
      << "the contained process touched the slot after it was evicted";
  ASSERT_EQ(publish_counted(pub, 1, 10, 50, kRule, 5s), 50u);
  const std::vector<Received> got = receive_messages(host, 50);
  ASSERT_EQ(got.size(), 50u);
  EXPECT_EQ(got.front().sequence, 11u);
}

INSTANTIATE_TEST_SUITE_P(BlockAndDrop, PidNamespace,
                         ::testing::Values(Policy::block, Policy::drop),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace shmbus
