// Records out of one host's channel and into another's through JetStream, as real processes:
// producer -> channel on hostA -> `shmbus bridge out` -> nats-server -> `shmbus bridge in` ->
// channel on hostB -> a named block subscriber here, which checks every record by counter and
// bytes, in order, with nothing lost and nothing twice. SHMBUS_BRIDGE_RECORDS (default 1,000,000)
// 64-byte records, 20,000 of 1 KiB, tagged records keeping key and type, and a bridge in on the
// origin's own host that applies nothing (no loops).
#include <gtest/gtest.h>

#include "tests/bridge/bridge_testing.hpp"

namespace shmbus::test::bridge {
namespace {

struct RoundTrip {
  NatsServer server;
  TempDir logs{"bridge-rt"};
  ChannelGuard a{unique_channel("rt-a")};
  ChannelGuard b{unique_channel("rt-b")};
  BridgePair pair{a.name(), b.name(), "RT"};
  std::optional<BridgeProcess> out;
  std::optional<BridgeProcess> in;

  // Bridges both ways up, before anything is published: the destination's subscriber then
  // attaches before the first record can arrive.
  void start(std::uint64_t capacity, std::uint32_t max_message) {
    create_channel(a.name(), capacity, max_message);
    out.emplace(bridge_out(server, pair, logs));
    out->start();
    in.emplace(bridge_in(server, pair, logs,
                         {"--capacity", std::to_string(capacity), "--max-message",
                          std::to_string(max_message)}));
    in->start();
  }

  void stop_bridges() {
    EXPECT_TRUE(in->stop().ok()) << in->log();
    EXPECT_TRUE(out->stop().ok()) << out->log();
  }

  std::string logs_text() { return "bridge out:\n" + out->log() + "bridge in:\n" + in->log(); }
};

// `count` records of `size` bytes from a producer process, out and back in identical.
void round_trip(std::uint64_t count, std::uint32_t size, std::uint64_t capacity) {
  RoundTrip rt;
  rt.start(capacity, 64 << 10);
  const SizeRule sizes{7, size, size};
  Destination dest(rt.b.name(), sizes);
  Child producer = produce(rt.a.name(), count, sizes);

  const auto began = Clock::now();
  const bool all = dest.wait_for(count);
  const double seconds = std::chrono::duration<double>(Clock::now() - began).count();
  ASSERT_TRUE(all) << dest.summary() << "\n" << rt.logs_text();
  const PeerOutcome p = finish_peer(producer);
  ASSERT_TRUE(p.status.ok()) << p.output;

  EXPECT_EQ(dest.error_count(), 0u) << dest.summary();
  EXPECT_EQ(dest.next_counter(), count);
  EXPECT_EQ(dest.lost_total(), 0u) << dest.summary();
  // The destination's sequences are the source's: the last record is sequence `count`.
  EXPECT_EQ(dest.subscriber().next_sequence(), count + 1);
  // Nothing more comes (nothing twice).
  EXPECT_EQ(dest.drain_for(300ms), 0u) << dest.summary();
  std::printf("[ bridge ] %llu records of %u B out and back in %.2f s (%.0f records/s)\n",
              static_cast<unsigned long long>(count), size, seconds,
              static_cast<double>(count) / seconds);
  rt.stop_bridges();
}

TEST(BridgeRoundTrip, SmallRecordsArriveIdenticalInOrder) {
  round_trip(scaled_records(1'000'000), 64, 8 << 20);
}

TEST(BridgeRoundTrip, KibibyteRecordsArriveIdenticalInOrder) {
  round_trip(scaled_records(20'000), 1024, 8 << 20);
}

TEST(BridgeRoundTrip, TaggedRecordsKeepTheirKeyAndType) {
  RoundTrip rt;
  rt.start(1 << 20, 4096);
  const SizeRule sizes{3, 16, 200};
  Destination dest(rt.b.name(), sizes);
  dest.keep_tags(true);

  constexpr std::uint64_t kCount = 3000;
  auto pub = Publisher::open(rt.a.name());
  ASSERT_TRUE(pub) << pub.error().message;
  std::vector<std::byte> buf(sizes.max_size);
  auto key_of = [](std::uint64_t i) {
    // Keys of every length up to 40 bytes, empty ones (untagged records) among them, and
    // bytes that are not text.
    std::string k;
    for (std::uint64_t j = 0; j < i % 41; ++j) k.push_back(static_cast<char>((i * 31 + j) & 0xff));
    return k;
  };
  auto type_of = [](std::uint64_t i) { return static_cast<std::uint16_t>(i % 7 == 0 ? 0 : i * 13); };
  for (std::uint64_t i = 0; i < kCount; ++i) {
    const PayloadId id{kProducerId, i};
    const std::uint32_t len = payload_length(sizes, id);
    fill_payload({buf.data(), len}, id);
    const std::string key = key_of(i);
    const RecordTag tag{std::as_bytes(std::span(key.data(), key.size())), type_of(i)};
    ASSERT_EQ(pub->publish({buf.data(), len}, tag, 10s), PublishStatus::ok) << i;
  }
  ASSERT_TRUE(dest.wait_for(kCount)) << dest.summary() << "\n" << rt.logs_text();
  EXPECT_EQ(dest.error_count(), 0u) << dest.summary();
  ASSERT_EQ(dest.tags().size(), kCount);
  std::uint64_t wrong = 0;
  for (std::uint64_t i = 0; i < kCount; ++i) {
    if (dest.tags()[i].first != key_of(i) || dest.tags()[i].second != type_of(i)) {
      if (++wrong <= 5) {
        ADD_FAILURE() << "record " << i << ": key of " << dest.tags()[i].first.size()
                      << " bytes, type " << dest.tags()[i].second << "; sent a key of "
                      << key_of(i).size() << " bytes, type " << type_of(i);
      }
    }
  }
  EXPECT_EQ(wrong, 0u);
  rt.stop_bridges();
}

TEST(BridgeRoundTrip, BridgeInOnTheOriginHostAppliesNothing) {
  RoundTrip rt;
  rt.start(1 << 20, 4096);
  // A second bridge in from the same stream, on hostA (the records' origin), into channel C.
  ChannelGuard c{unique_channel("rt-c")};
  BridgeProcess loop = bridge_in(rt.server, rt.pair, rt.logs,
                                 {"--capacity", std::to_string(1 << 20)},
                                 "hostA", c.name());
  loop.start();
  SubscriberOptions o;
  o.start = StartFrom::earliest;
  o.name = "verify";
  auto on_c = Subscriber::open(c.name(), o);
  ASSERT_TRUE(on_c) << on_c.error().message;

  constexpr std::uint64_t kCount = 5000;
  const SizeRule sizes{11, 64, 64};
  Destination dest(rt.b.name(), sizes);
  Child producer = produce(rt.a.name(), kCount, sizes);
  ASSERT_TRUE(dest.wait_for(kCount)) << dest.summary() << "\n" << rt.logs_text();
  EXPECT_EQ(dest.error_count(), 0u) << dest.summary();
  ASSERT_TRUE(finish_peer(producer).status.ok());

  // hostA's bridge in saw every record (and acked it: its stats say so) and applied none.
  nlohmann::json stats;
  const bool skipped_all = eventually(
      [&] {
        stats = bridge_stats(c.name(), "in", "hostA");
        return bridge_counter(stats, "own_skipped") == kCount;
      },
      20s);
  EXPECT_TRUE(skipped_all) << stats.dump() << "\n" << loop.log();
  EXPECT_EQ(bridge_counter(stats, "applied"), 0u) << stats.dump();
  std::uint64_t on_c_count = 0;
  on_c->poll([&](const Message&) { ++on_c_count; });
  EXPECT_EQ(on_c_count, 0u);
  EXPECT_EQ(on_c->next_sequence(), 1u);
  EXPECT_TRUE(loop.stop().ok()) << loop.log();
  rt.stop_bridges();
}

}  // namespace
}  // namespace shmbus::test::bridge
