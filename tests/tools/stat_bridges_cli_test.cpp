// `shmbus stat` shows a channel's NATS JetStream bridges, run as the built binary (SHMBUS_CLI): the
// bridge objects are made here with BridgeSegment and given known counters and states, and every
// format (text, JSON, Prometheus) must show those values; a damaged object is shown as such.
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ipc/bridge_segment.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/command.hpp"
#include "tests/support/process.hpp"
#include "tests/tools/exposition_parser.hpp"

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using shmbus::detail::BridgeRole;
using shmbus::detail::BridgeSegment;
using shmbus::detail::BridgeSettings;
using shmbus::detail::BridgeState;
using shmbus::test::ChannelGuard;
using shmbus::test::RunResult;
using shmbus::test::run_command;
using shmbus::test::unique_channel;

RunResult cli(std::initializer_list<std::string> args) {
  std::vector<std::string> argv{SHMBUS_CLI};
  argv.insert(argv.end(), args);
  return run_command(argv, 20s);
}

const shmbus::test::Sample* find_sample(const shmbus::test::ParsedExposition& e,
                                        const std::string& name,
                                        const std::map<std::string, std::string>& labels) {
  for (const auto& s : e.samples) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [k, v] : labels) {
      const auto it = s.labels.find(k);
      all = all && it != s.labels.end() && it->second == v;
    }
    if (all) return &s;
  }
  return nullptr;
}

// A bridge out and a bridge in on one channel, each with its own known counters.
class StatBridges : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pub = shmbus::Publisher::open(ch_.name());
    ASSERT_TRUE(pub) << pub.error().message;
    pub_.emplace(std::move(*pub));
    auto out = BridgeSegment::open_owned(
        pub_->info(), BridgeSettings{BridgeRole::out, "ORDERS", "shmbus.orders",
                                     "nats://127.0.0.1:4222", "hostA"});
    ASSERT_TRUE(out) << out.error().message;
    out_.emplace(std::move(*out));
    auto& c = out_->counters();
    // relaxed (all): the command reads them after it starts, in another process.
    c.published_or_applied.store(901, std::memory_order_relaxed);
    c.acked_through.store(900, std::memory_order_relaxed);   // relaxed: see above
    c.in_flight.store(17, std::memory_order_relaxed);        // relaxed: see above
    c.window.store(512, std::memory_order_relaxed);          // relaxed: see above
    c.resends.store(3, std::memory_order_relaxed);           // relaxed: see above
    c.recoveries.store(2, std::memory_order_relaxed);        // relaxed: see above
    c.gaps.store(1, std::memory_order_relaxed);              // relaxed: see above
    c.gap_sequences.store(250, std::memory_order_relaxed);   // relaxed: see above
    c.lag_records.store(17, std::memory_order_relaxed);      // relaxed: see above
    c.lag_ns.store(1'500'000'000, std::memory_order_relaxed);  // relaxed: see above
    c.head_sequence.store(917, std::memory_order_relaxed);   // relaxed: see above
    out_->set_state(BridgeState::holding_back, "insufficient resources (10023)");

    auto in = BridgeSegment::open_owned(
        pub_->info(), BridgeSettings{BridgeRole::in, "QUOTES", "shmbus.quotes",
                                     "nats://10.0.0.2:4222", "hostB"});
    ASSERT_TRUE(in) << in.error().message;
    in_.emplace(std::move(*in));
    auto& d = in_->counters();
    d.published_or_applied.store(640, std::memory_order_relaxed);  // relaxed: see above
    d.duplicates.store(12, std::memory_order_relaxed);             // relaxed: see above
    d.own_skipped.store(5, std::memory_order_relaxed);             // relaxed: see above
    d.stream_gaps.store(4, std::memory_order_relaxed);             // relaxed: see above
    d.invalid.store(2, std::memory_order_relaxed);                 // relaxed: see above
    d.gaps.store(2, std::memory_order_relaxed);                    // relaxed: see above
    d.gap_sequences.store(30, std::memory_order_relaxed);          // relaxed: see above
    d.lag_records.store(8, std::memory_order_relaxed);             // relaxed: see above
    d.origin_incarnation.store(0xabcdef0123456789ULL, std::memory_order_relaxed);  // relaxed
    d.origin_seq.store(700, std::memory_order_relaxed);            // relaxed: see above
    d.stream_seq.store(655, std::memory_order_relaxed);            // relaxed: see above
    in_->set_state(BridgeState::running);
  }

  ChannelGuard ch_{unique_channel("brstat")};
  std::optional<shmbus::Publisher> pub_;
  std::optional<BridgeSegment> out_;
  std::optional<BridgeSegment> in_;
};

TEST_F(StatBridges, JsonListsEachBridgeWithItsValues) {
  const RunResult r = cli({"stat", ch_.name(), "--json", "--interval-ms", "0"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << r.out;
  const json doc = json::parse(r.out);
  ASSERT_EQ(doc["bridges"].size(), 2u) << r.out;
  const json& in = doc["bridges"][0];  // sorted by role: in, then out
  const json& out = doc["bridges"][1];
  const std::map<std::string, json> want_out{
      {"role", "out"}, {"name", "ORDERS"}, {"stream", "ORDERS"}, {"subject", "shmbus.orders"},
      {"url", "nats://127.0.0.1:4222"}, {"host", "hostA"}, {"state", "holding back"},
      {"last_error", "insufficient resources (10023)"}, {"pid", ::getpid()}, {"alive", true},
      {"window", 512}, {"in_flight", 17}, {"acked_through", 900}, {"head_sequence", 917},
      {"published", 901}, {"applied", 0}, {"resends", 3}, {"recoveries", 2}, {"gaps", 1},
      {"gap_sequences", 250}, {"duplicates", 0}, {"own_skipped", 0}, {"stream_gaps", 0},
      {"invalid", 0}, {"lag_records", 17}, {"lag_ns", 1'500'000'000}, {"origin_incarnation", 0},
      {"origin_seq", 0}, {"stream_seq", 0}, {"problem", nullptr}};
  for (const auto& [key, value] : want_out) {
    ASSERT_TRUE(out.contains(key)) << key << "\n" << r.out;
    EXPECT_EQ(out[key], value) << key;
  }
  const std::map<std::string, json> want_in{
      {"role", "in"}, {"name", "QUOTES"}, {"stream", "QUOTES"}, {"subject", "shmbus.quotes"},
      {"url", "nats://10.0.0.2:4222"}, {"host", "hostB"}, {"state", "running"},
      {"last_error", ""}, {"pid", ::getpid()}, {"alive", true}, {"published", 0},
      {"applied", 640}, {"duplicates", 12}, {"own_skipped", 5}, {"stream_gaps", 4},
      {"invalid", 2}, {"gaps", 2}, {"gap_sequences", 30}, {"lag_records", 8},
      {"origin_incarnation", 0xabcdef0123456789ULL}, {"origin_seq", 700}, {"stream_seq", 655},
      {"problem", nullptr}};
  for (const auto& [key, value] : want_in) {
    ASSERT_TRUE(in.contains(key)) << key << "\n" << r.out;
    EXPECT_EQ(in[key], value) << key;
  }
  EXPECT_GT(out["heartbeat_ns"].get<std::int64_t>(), 0);
}

TEST_F(StatBridges, TextShowsABridgesSectionLast) {
  const RunResult r = cli({"stat", ch_.name(), "--interval-ms", "0"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << r.out;
  const std::size_t subscribers = r.out.find("\nsubscribers");
  const std::size_t section = r.out.find("\nbridges (2)\n  bridge in 'QUOTES'\n");
  ASSERT_NE(section, std::string::npos) << r.out;
  EXPECT_LT(subscribers, section);
  const std::string text = r.out.substr(section);
  const std::size_t out_at = text.find("  bridge out 'ORDERS'\n");
  ASSERT_NE(out_at, std::string::npos) << r.out;
  const std::string in_block = text.substr(0, out_at);
  const std::string out_block = text.substr(out_at);
  const std::string pid = std::to_string(::getpid());
  for (const std::string& part :
       {std::string("state      running\n"), "process    pid " + pid + ", alive, last heartbeat ",
        std::string("nats       nats://10.0.0.2:4222, stream QUOTES, subject shmbus.quotes, "
                    "host hostB\n"),
        std::string("progress   640 applied, last origin abcdef0123456789 seq 700, stream seq "
                    "655\n"),
        std::string("skipped    12 duplicates, 5 from this host, 2 invalid\n"),
        std::string("losses     2 gaps (30 sequences), 4 discarded by the stream\n"),
        std::string("lag        8 records, 0 ns\n")}) {
    EXPECT_NE(in_block.find(part), std::string::npos) << part << "\n" << r.out;
  }
  for (const std::string& part :
       {std::string("state      holding back, last error: insufficient resources (10023)\n"),
        "process    pid " + pid + ", alive, last heartbeat ",
        std::string("nats       nats://127.0.0.1:4222, stream ORDERS, subject shmbus.orders, "
                    "host hostA\n"),
        std::string("progress   acked through seq 900, head seq 917, 901 published, 17 in flight "
                    "of a window of 512\n"),
        std::string("recovery   3 resends, 2 recoveries, 1 gaps (250 sequences)\n"),
        std::string("lag        17 records, 1.500 s\n")}) {
    EXPECT_NE(out_block.find(part), std::string::npos) << part << "\n" << r.out;
  }
}

TEST_F(StatBridges, PrometheusExportsEachBridgeWithChannelRoleAndStreamLabels) {
  const RunResult r = cli({"stat", ch_.name(), "--prometheus"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << r.out;
  const auto e = shmbus::test::parse_exposition(r.out);
  const std::map<std::string, std::string> out_labels{
      {"channel", ch_.name()}, {"role", "out"}, {"stream", "ORDERS"}};
  const std::map<std::string, double> want_out{
      {"shmbus_bridge_damaged", 0},        {"shmbus_bridge_alive", 1},
      {"shmbus_bridge_window", 512},       {"shmbus_bridge_in_flight", 17},
      {"shmbus_bridge_acked_through", 900}, {"shmbus_bridge_head_sequence", 917},
      {"shmbus_bridge_published_total", 901}, {"shmbus_bridge_resends_total", 3},
      {"shmbus_bridge_recoveries_total", 2}, {"shmbus_bridge_gaps_total", 1},
      {"shmbus_bridge_gap_sequences_total", 250}, {"shmbus_bridge_lag_records", 17},
      {"shmbus_bridge_lag_seconds", 1.5},  {"shmbus_bridge_info", 1}};
  for (const auto& [name, value] : want_out) {
    const auto* s = find_sample(e, name, out_labels);
    ASSERT_NE(s, nullptr) << name << "\n" << r.out;
    EXPECT_EQ(s->value, value) << name;
  }
  const std::map<std::string, std::string> in_labels{
      {"channel", ch_.name()}, {"role", "in"}, {"stream", "QUOTES"}};
  const std::map<std::string, double> want_in{
      {"shmbus_bridge_applied_total", 640},     {"shmbus_bridge_duplicates_total", 12},
      {"shmbus_bridge_own_skipped_total", 5},   {"shmbus_bridge_stream_gaps_total", 4},
      {"shmbus_bridge_invalid_total", 2},       {"shmbus_bridge_gap_sequences_total", 30},
      {"shmbus_bridge_origin_sequence", 700},   {"shmbus_bridge_stream_sequence", 655},
      {"shmbus_bridge_lag_records", 8}};
  for (const auto& [name, value] : want_in) {
    const auto* s = find_sample(e, name, in_labels);
    ASSERT_NE(s, nullptr) << name << "\n" << r.out;
    EXPECT_EQ(s->value, value) << name;
  }
  const auto* info = find_sample(e, "shmbus_bridge_info", out_labels);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->labels.at("state"), "holding back");
  EXPECT_EQ(info->labels.at("subject"), "shmbus.orders");
  EXPECT_EQ(info->labels.at("url"), "nats://127.0.0.1:4222");
  EXPECT_EQ(info->labels.at("host"), "hostA");
  EXPECT_EQ(e.type.at("shmbus_bridge_resends_total"), "counter");
  EXPECT_EQ(e.type.at("shmbus_bridge_in_flight"), "gauge");

  // Every channel at once (no channel named) carries the same samples.
  const RunResult all = cli({"stat", "--prometheus"});
  ASSERT_TRUE(all.status.ok()) << all.status.describe() << all.out;
  const auto every = shmbus::test::parse_exposition(all.out);
  const auto* resends = find_sample(every, "shmbus_bridge_resends_total", out_labels);
  ASSERT_NE(resends, nullptr) << all.out;
  EXPECT_EQ(resends->value, 3);
}

// A bridge that died shows its last state and `alive` false; one that closed shows "stopped".
TEST_F(StatBridges, AClosedBridgeShowsStoppedAndNoProcess) {
  out_.reset();
  const RunResult r = cli({"stat", ch_.name(), "--json", "--interval-ms", "0"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << r.out;
  const json doc = json::parse(r.out);
  ASSERT_EQ(doc["bridges"].size(), 2u) << r.out;
  const json& out = doc["bridges"][1];
  EXPECT_EQ(out["state"], "stopped");
  EXPECT_EQ(out["last_error"], "insufficient resources (10023)");
  EXPECT_EQ(out["alive"], false);
  EXPECT_EQ(out["pid"], 0);
  EXPECT_EQ(out["published"], 901);
}

TEST(StatBridgesNone, JsonHasAnEmptyBridgesArrayAndTextNoSection) {
  ChannelGuard ch(unique_channel("brnone"));
  auto pub = shmbus::Publisher::open(ch.name());
  ASSERT_TRUE(pub) << pub.error().message;
  const RunResult j = cli({"stat", ch.name(), "--json", "--interval-ms", "0"});
  ASSERT_TRUE(j.status.ok()) << j.status.describe() << j.out;
  const json doc = json::parse(j.out);
  ASSERT_TRUE(doc.contains("bridges")) << j.out;
  EXPECT_TRUE(doc["bridges"].is_array());
  EXPECT_TRUE(doc["bridges"].empty());
  const RunResult t = cli({"stat", ch.name(), "--interval-ms", "0"});
  ASSERT_TRUE(t.status.ok()) << t.out;
  EXPECT_EQ(t.out.find("bridges"), std::string::npos) << t.out;
  const RunResult p = cli({"stat", ch.name(), "--prometheus"});
  ASSERT_TRUE(p.status.ok()) << p.out;
  EXPECT_EQ(p.out.find("shmbus_bridge_"), std::string::npos) << p.out;
}

// A bridge object whose bytes fail validation is shown as damaged in every format; stat still
// exits 0 and shows the channel.
TEST(StatBridgesDamaged, ADamagedBridgeIsShownAsSuchInEveryFormat) {
  ChannelGuard ch(unique_channel("brbroken"));
  auto pub = shmbus::Publisher::open(ch.name());
  ASSERT_TRUE(pub) << pub.error().message;
  std::string object;
  {
    auto b = BridgeSegment::open_owned(
        pub->info(), BridgeSettings{BridgeRole::out, "BROKEN", "s", "nats://x", "h"});
    ASSERT_TRUE(b) << b.error().message;
    object = b->name();
  }
  {
    auto seg = shmbus::detail::ShmSegment::open(object, true).value();
    static_cast<shmbus::detail::BridgeHeader*>(seg.base())->magic = 42;
  }
  const RunResult j = cli({"stat", ch.name(), "--json", "--interval-ms", "0"});
  ASSERT_TRUE(j.status.ok()) << j.status.describe() << j.out;
  const json doc = json::parse(j.out);
  ASSERT_EQ(doc["bridges"].size(), 1u);
  EXPECT_EQ(doc["bridges"][0]["name"], "BROKEN");
  EXPECT_EQ(doc["bridges"][0]["role"], "out");
  ASSERT_TRUE(doc["bridges"][0]["problem"].is_string()) << j.out;
  EXPECT_NE(doc["bridges"][0]["problem"].get<std::string>().find("bad magic"), std::string::npos);

  const RunResult t = cli({"stat", ch.name(), "--interval-ms", "0"});
  ASSERT_TRUE(t.status.ok()) << t.out;
  EXPECT_NE(t.out.find("bridge out 'BROKEN'\n    DAMAGED"), std::string::npos) << t.out;

  const RunResult p = cli({"stat", ch.name(), "--prometheus"});
  ASSERT_TRUE(p.status.ok()) << p.out;
  const auto e = shmbus::test::parse_exposition(p.out);
  const auto* damaged = find_sample(
      e, "shmbus_bridge_damaged", {{"channel", ch.name()}, {"role", "out"}, {"stream", "BROKEN"}});
  ASSERT_NE(damaged, nullptr) << p.out;
  EXPECT_EQ(damaged->value, 1);
  EXPECT_EQ(find_sample(e, "shmbus_bridge_resends_total", {{"stream", "BROKEN"}}), nullptr);
}

}  // namespace
