// The nats-server failing under running bridges: killed with -9 and restarted (same port, same
// store) mid-stream, and stopped (SIGSTOP) for 1.5 s while bridge out's acks time out after
// 500 ms. The destination still gets every record exactly once, in order, byte for byte: bridge
// out re-chains and resends from the stream's last record, and bridge in's consumer redelivers
// what it had not acked, applied once.
#include <gtest/gtest.h>

#include "tests/bridge/bridge_testing.hpp"

namespace shmbus::test::bridge {
namespace {

struct FaultRun {
  NatsServer server;
  TempDir logs{"bridge-faults"};
  ChannelGuard a{unique_channel("fault-a")};
  ChannelGuard b{unique_channel("fault-b")};
  BridgePair pair{a.name(), b.name(), "FAULTS"};
  SizeRule sizes{9, 64, 64};
  std::uint64_t count = scaled_records(100'000, 10'000);
  std::optional<BridgeProcess> out;
  std::optional<BridgeProcess> in;

  void start(std::vector<std::string> out_extra) {
    create_channel(a.name(), 4 << 20);
    out.emplace(bridge_out(server, pair, logs, std::move(out_extra)));
    out->start();
    in.emplace(bridge_in(server, pair, logs,
                         {"--capacity", std::to_string(4 << 20), "--ack-wait", "2000"}));
    in->start();
  }

  std::string context(const Destination& dest) {
    return dest.summary() + "\nbridge out:\n" + out->log() + "bridge in:\n" + in->log() +
           "nats-server:\n" + server.log();
  }

  // Everything arrived once, in order; the bridges stop cleanly.
  void finish(Destination& dest, Child& producer) {
    ASSERT_TRUE(dest.wait_for(count)) << context(dest);
    const PeerOutcome p = finish_peer(producer);
    ASSERT_TRUE(p.status.ok()) << p.output;
    EXPECT_EQ(dest.drain_for(500ms), 0u) << "records after the last one: " << dest.summary();
    EXPECT_EQ(dest.error_count(), 0u) << dest.summary();
    EXPECT_EQ(dest.received(), count);
    EXPECT_EQ(dest.next_counter(), count);
    EXPECT_EQ(dest.lost_total(), 0u) << dest.summary();
    EXPECT_EQ(dest.subscriber().next_sequence(), count + 1);
  }
};

TEST(BridgeServerFaults, KillNineAndRestartOfTheServerMidStreamLosesAndRepeatsNothing) {
  FaultRun run;
  run.start({"--ack-timeout", "1000"});
  Destination dest(run.b.name(), run.sizes);
  Child producer = produce(run.a.name(), run.count, run.sizes);

  ASSERT_TRUE(dest.wait_for(run.count / 3)) << run.context(dest);
  run.server.kill9();
  // Down for a while: bridge out's window fills and the producer is gated by its ring.
  dest.drain_for(700ms);
  run.server.restart();
  run.finish(dest, producer);

  // Bridge out noticed: it went through recovery at least once.
  const nlohmann::json stats = bridge_stats(run.a.name(), "out");
  EXPECT_GT(bridge_counter(stats, "recoveries"), 0u) << stats.dump();
  EXPECT_TRUE(run.in->stop().ok()) << run.in->log();
  EXPECT_TRUE(run.out->stop().ok()) << run.out->log();
}

TEST(BridgeServerFaults, StoppedServerTimesOutAcksAndBridgeOutResendsWithoutDuplicates) {
  FaultRun run;
  run.start({"--ack-timeout", "500"});
  Destination dest(run.b.name(), run.sizes);
  Child producer = produce(run.a.name(), run.count, run.sizes);

  ASSERT_TRUE(dest.wait_for(run.count / 3)) << run.context(dest);
  run.server.stop();
  dest.drain_for(1500ms);
  run.server.cont();
  run.finish(dest, producer);

  // The acks that timed out made bridge out recover and resend; the stream refused the copies
  // it already had, so nothing arrived twice (checked above).
  const nlohmann::json stats = bridge_stats(run.a.name(), "out");
  EXPECT_GT(bridge_counter(stats, "recoveries"), 0u) << stats.dump();
  EXPECT_TRUE(run.in->stop().ok()) << run.in->log();
  EXPECT_TRUE(run.out->stop().ok()) << run.out->log();
}

}  // namespace
}  // namespace shmbus::test::bridge
