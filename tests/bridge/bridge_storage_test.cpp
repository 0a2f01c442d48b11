// A JetStream store too small for the stream (the server's own limit, `jetstream {
// max_file_store: 3MB }`; a filesystem filled behind the server's back would wedge it): bridge out
// holds back — its state says so and its stderr names the server's refusal (10023, insufficient
// resources) — its block subscriber gates the producer, and nothing is dropped. Restarted with a
// larger limit, the server takes the rest and every record arrives, in order.
#include <gtest/gtest.h>

#include "tests/bridge/bridge_testing.hpp"

namespace shmbus::test::bridge {
namespace {

TEST(BridgeStorage, AFullStoreHoldsBridgeOutBackAndDropsNothing) {
  NatsServer server(NatsServerOptions{.max_file_store = "3MB"});
  TempDir logs{"bridge-store"};
  ChannelGuard a{unique_channel("store-a")};
  ChannelGuard b{unique_channel("store-b")};
  const BridgePair pair{a.name(), b.name(), "STORE"};
  create_channel(a.name(), 1 << 20);
  BridgeProcess out = bridge_out(server, pair, logs, {"--ack-timeout", "1000"});
  out.start();
  BridgeProcess in = bridge_in(server, pair, logs, {"--capacity", std::to_string(4 << 20)});
  in.start();
  const SizeRule sizes{19, 1024, 1024};
  Destination dest(b.name(), sizes);
  auto context = [&] {
    return dest.summary() + "\nbridge out:\n" + out.log() + "bridge in:\n" + in.log() +
           "nats-server:\n" + server.log();
  };

  // 8 MB of records for a 3 MB store.
  constexpr std::uint64_t kCount = 8000;
  Child producer = produce(a.name(), kCount, sizes, 0, /*timeout_ms=*/120000);

  // Bridge out holds back: its state, and its stderr names the refusal.
  nlohmann::json stats;
  const bool holding = eventually(
      [&] {
        dest.poll();
        stats = bridge_stats(a.name(), "out");
        return stats.is_object() && stats.value("state", "") == "holding back";
      },
      30s);
  ASSERT_TRUE(holding) << stats.dump() << "\n" << context();
  EXPECT_NE(stats.value("last_error", "").find("10023"), std::string::npos) << stats.dump();
  EXPECT_NE(out.log().find("10023"), std::string::npos) << out.log();

  // Stuck, not dropping: the destination stops short, the producer is gated by the ring.
  dest.drain_for(1s);
  const std::uint64_t stuck_at = dest.received();
  EXPECT_EQ(dest.drain_for(1s), 0u) << "records still arrive from a full store: " << dest.summary();
  EXPECT_LT(stuck_at, kCount);
  EXPECT_TRUE(producer.running()) << "the producer was not held back: " << producer.output();
  EXPECT_EQ(dest.error_count(), 0u) << dest.summary();
  EXPECT_EQ(dest.lost_total(), 0u) << dest.summary();

  // More room: everything arrives.
  server.terminate();
  server.restart(NatsServerOptions{.max_file_store = "64MB"});
  ASSERT_TRUE(dest.wait_for(kCount)) << context();
  const PeerOutcome p = finish_peer(producer);
  ASSERT_TRUE(p.status.ok()) << p.output;
  EXPECT_EQ(dest.drain_for(300ms), 0u) << dest.summary();
  EXPECT_EQ(dest.error_count(), 0u) << dest.summary();
  EXPECT_EQ(dest.next_counter(), kCount);
  EXPECT_EQ(dest.lost_total(), 0u) << dest.summary();
  EXPECT_EQ(dest.subscriber().next_sequence(), kCount + 1);
  EXPECT_TRUE(eventually([&] { return bridge_stats(a.name(), "out").value("state", "") == "running"; },
                         10s))
      << bridge_stats(a.name(), "out").dump();

  EXPECT_TRUE(in.stop().ok()) << in.log();
  EXPECT_TRUE(out.stop().ok()) << out.log();
}

}  // namespace
}  // namespace shmbus::test::bridge
