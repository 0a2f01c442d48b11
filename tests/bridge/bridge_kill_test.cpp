// kill -9 of `shmbus bridge out` five times and of `shmbus bridge in` five times, at random moments
// of a stream of records (200,000 at SHMBUS_BRIDGE_RECORDS' default), each restarted: the
// destination still gets every record exactly once, in order, byte for byte. Bridge out resumes
// after the stream's last record (its named subscriber kept the rest in the ring); bridge in
// applies what the consumer redelivers once, by its persisted applied position.
//
// The one loss a local subscriber may see is the documented cost of killing bridge in between a
// claim and its commit: that local sequence is abandoned (the record itself is applied again right
// after), so the destination's lost_before total must equal its abandoned_repaired count.
#include <random>

#include <gtest/gtest.h>

#include "tests/bridge/bridge_testing.hpp"

namespace shmbus::test::bridge {
namespace {

std::uint64_t seed_for_run() {
  if (const char* v = std::getenv("SHMBUS_BRIDGE_SEED"); v != nullptr && *v != '\0') {
    return std::strtoull(v, nullptr, 10);
  }
  return std::random_device{}();
}

TEST(BridgeKill, EveryRecordOnceInOrderThroughKillsOfEitherBridge) {
  const std::uint64_t count = scaled_records(200'000, 10'000);
  const std::uint64_t seed = seed_for_run();
  std::printf("[ bridge ] %llu records, seed %llu (SHMBUS_BRIDGE_SEED repeats it)\n",
              static_cast<unsigned long long>(count), static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);

  NatsServer server;
  TempDir logs{"bridge-kill"};
  ChannelGuard a{unique_channel("kill-a")};
  ChannelGuard b{unique_channel("kill-b")};
  const BridgePair pair{a.name(), b.name(), "KILL"};
  // A small ring: while bridge out is dead, the producer is soon gated by its subscriber.
  create_channel(a.name(), 1 << 20);
  BridgeProcess out = bridge_out(server, pair, logs, {"--ack-timeout", "1000"});
  out.start();
  // A short ack wait: what a killed bridge in fetched and never acked comes again soon.
  BridgeProcess in = bridge_in(server, pair, logs,
                               {"--capacity", std::to_string(1 << 20), "--ack-wait", "2000"});
  in.start();

  const SizeRule sizes{5, 64, 64};
  Destination dest(b.name(), sizes);
  Child producer = produce(a.name(), count, sizes);

  // Ten kills, five of each bridge in a random order, at random points of the stream.
  std::vector<bool> kill_out{true, true, true, true, true, false, false, false, false, false};
  std::shuffle(kill_out.begin(), kill_out.end(), rng);
  for (std::size_t i = 0; i < kill_out.size(); ++i) {
    std::uniform_int_distribution<std::uint64_t> jitter(0, count / 24);
    const std::uint64_t at = count * (i + 1) / 12 + jitter(rng);
    ASSERT_TRUE(dest.wait_for(at)) << "before kill " << i << ": " << dest.summary()
                                   << "\nbridge out:\n" << out.log() << "bridge in:\n" << in.log();
    BridgeProcess& victim = kill_out[i] ? out : in;
    victim.kill9();
    // Down for a random while, the destination read meanwhile.
    dest.drain_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 300)(rng)));
    victim.start();
  }

  ASSERT_TRUE(dest.wait_for(count)) << dest.summary() << "\nbridge out:\n" << out.log()
                                    << "bridge in:\n" << in.log();
  const PeerOutcome p = finish_peer(producer);
  ASSERT_TRUE(p.status.ok()) << p.output;
  EXPECT_EQ(dest.drain_for(500ms), 0u) << "records after the last one: " << dest.summary();

  EXPECT_EQ(out.starts(), 6);
  EXPECT_EQ(in.starts(), 6);
  EXPECT_EQ(dest.error_count(), 0u) << dest.summary();
  EXPECT_EQ(dest.received(), count);
  EXPECT_EQ(dest.next_counter(), count);
  const nlohmann::json stats = channel_stats(b.name());
  EXPECT_EQ(dest.lost_total(), stats.value("abandoned_repaired", std::uint64_t{0}))
      << dest.summary() << "\n" << stats.dump();

  EXPECT_TRUE(in.stop().ok()) << in.log();
  EXPECT_TRUE(out.stop().ok()) << out.log();
}

}  // namespace
}  // namespace shmbus::test::bridge
