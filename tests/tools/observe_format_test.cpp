// What `shmbus ls`, `stat` and `inspect` print, on hand-built ChannelStats: the JSON fields and
// values users' scripts read, the Prometheus exposition (parsed line by line), the human tables'
// alignment and units, and rates over two reads, including a channel re-created between them.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/command.hpp"
#include "tests/tools/exposition_parser.hpp"
#include "tests/tools/latency_samples.hpp"
#include "tools/format.hpp"
#include "tools/observe_format.hpp"

namespace {

using namespace shmbus;
using Json = nlohmann::json;
using tools::Align;
using tools::average_rate;
using tools::ChannelRates;
using tools::escape_label_value;
using tools::human_age;
using tools::human_bytes;
using tools::human_duration_ns;
using tools::human_rate;
using tools::journal_lag;
using tools::journal_status;
using tools::live_processes;
using tools::ls_json;
using tools::ls_text;
using tools::LsEntry;
using tools::measure_rates;
using tools::record_type_name;
using tools::render_table;
using tools::stat_json;
using tools::stat_prometheus;
using tools::stat_text;
using tools::walk_verdict;

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kNow = 1'800'000'000 * kSecond;  // CLOCK_REALTIME of the later read

core::LatencySnapshot snapshot_of(const std::vector<std::uint64_t>& values) {
  return shmbus::test::latency_snapshot_of(values);
}

// A channel with one producer, a named block subscriber that records latency, an anonymous drop
// subscriber that lags, and a journaler; read at kNow (monotonic 10 s).
ChannelStats sample_channel() {
  ChannelStats s;
  s.name = "md.eurusd";
  s.incarnation = 0x00ab'cdef'0123'4567;
  s.capacity = 1 << 20;
  s.max_message = 4096;
  s.single_producer = true;
  s.created_ns = kNow - 100 * kSecond;
  s.creator_pid = 100;
  s.creator_alive = true;
  s.head_position = 5'000'000;
  s.head_sequence = 50'000;
  s.published_messages = 50'000;
  s.published_bytes = 3'200'000;
  s.back_pressure_events = 7;
  s.evictions = 1;
  s.abandoned_repaired = 2;

  ProducerStats p;
  p.slot = 0;
  p.pid = 101;
  p.start_time = 11;
  p.alive = true;
  p.attached_ns = kNow - 50 * kSecond;
  p.published = 40'000;
  p.published_bytes = 2'560'000;
  p.claim_in_flight = true;
  s.producers.push_back(p);

  SubscriberStats a;
  a.slot = 0;
  a.name = "risk";
  a.pid = 102;
  a.start_time = 12;
  a.alive = true;
  a.policy = Policy::block;
  a.state = SubscriberState::alive;
  a.attached_ns = kNow - 20 * kSecond;
  a.heartbeat_ns = kNow - 300'000'000;
  a.position = 4'999'936;
  a.next_sequence = 49'999;
  a.lag_messages = 2;
  a.lag_bytes = 64;
  a.received = 20'000;
  a.latency = snapshot_of({1000, 2000, 3000, 12'500, 1'000'000});
  s.subscribers.push_back(a);

  SubscriberStats b;
  b.slot = 3;
  b.pid = 103;
  b.start_time = 13;
  b.alive = true;
  b.policy = Policy::drop;
  b.state = SubscriberState::lagging;
  b.attached_ns = kNow - 10 * kSecond;
  b.heartbeat_ns = kNow - 2 * kSecond;
  b.position = 4'400'000;
  b.next_sequence = 44'000;
  b.lag_messages = 6'000;
  b.lag_bytes = 600'000;
  b.received = 9'000;
  b.lost = 17;
  b.spilled = 0;
  b.evictions = 0;
  s.subscribers.push_back(b);

  JournalStats j;
  j.pid = 104;
  j.alive = true;
  j.dir = "/var/lib/shmbus/md.eurusd";
  j.written_sequence = 49'990;
  j.durable_sequence = 49'900;
  j.heartbeat_ns = kNow - 100'000'000;
  s.journal = j;

  s.sampled_ns = kNow;
  s.sampled_monotonic_ns = 10 * kSecond;
  return s;
}

// The same channel half a second earlier: 1000 fewer messages published, 500 fewer received by
// each subscriber, two fewer latency samples.
ChannelStats earlier_read() {
  ChannelStats s = sample_channel();
  s.published_messages -= 1000;
  s.published_bytes -= 64'000;
  s.producers[0].published -= 1000;
  s.subscribers[0].received -= 500;
  s.subscribers[1].received -= 500;
  s.subscribers[0].latency = snapshot_of({1000, 2000, 3000});
  s.sampled_ns -= kSecond / 2;
  s.sampled_monotonic_ns -= kSecond / 2;
  return s;
}

// --- rates --------------------------------------------------------------------------------------

TEST(ObserveRates, AreCounterDeltasOverTheMonotonicInterval) {
  const ChannelStats before = earlier_read();
  const ChannelStats after = sample_channel();
  const ChannelRates r = measure_rates(&before, after);
  EXPECT_TRUE(r.measured);
  EXPECT_FALSE(r.incarnation_changed);
  EXPECT_DOUBLE_EQ(r.interval_s, 0.5);
  EXPECT_DOUBLE_EQ(r.messages_per_s, 2000);
  EXPECT_DOUBLE_EQ(r.bytes_per_s, 128'000);
  ASSERT_EQ(r.producer_messages_per_s.size(), 1u);
  EXPECT_DOUBLE_EQ(r.producer_messages_per_s[0], 2000);
  ASSERT_EQ(r.subscriber_messages_per_s.size(), 2u);
  EXPECT_DOUBLE_EQ(r.subscriber_messages_per_s[0], 1000);
  EXPECT_DOUBLE_EQ(r.subscriber_messages_per_s[1], 1000);
}

TEST(ObserveRates, AreZeroWhenTheChannelWasRecreatedBetweenTheReads) {
  ChannelStats before = earlier_read();
  before.incarnation = 0x1111;
  before.published_messages = 10;  // another incarnation's counters: not comparable
  const ChannelRates r = measure_rates(&before, sample_channel());
  EXPECT_FALSE(r.measured);
  EXPECT_TRUE(r.incarnation_changed);
  EXPECT_EQ(r.messages_per_s, 0);
  EXPECT_EQ(r.bytes_per_s, 0);
  EXPECT_EQ(r.producer_messages_per_s, std::vector<double>(1, 0.0));
  EXPECT_EQ(r.subscriber_messages_per_s, std::vector<double>(2, 0.0));
  EXPECT_FALSE(r.subscriber_latency[0].has_value());

  // The JSON shows the newer read with zero rates, and says why.
  const Json j = Json::parse(stat_json(sample_channel(), r));
  EXPECT_EQ(j["published_messages"], 50'000);
  EXPECT_EQ(j["incarnation"], "00abcdef01234567");
  EXPECT_EQ(j["messages_per_s"], 0.0);
  EXPECT_EQ(j["incarnation_changed"], true);
  EXPECT_EQ(j["rates_measured"], false);
}

TEST(ObserveRates, OfASlotWithANewOccupantAreZero) {
  ChannelStats before = earlier_read();
  before.subscribers[1].pid = 999;              // slot 3 held another process then
  before.producers[0].attached_ns -= kSecond;  // the producer slot was re-taken
  const ChannelRates r = measure_rates(&before, sample_channel());
  EXPECT_TRUE(r.measured);
  EXPECT_DOUBLE_EQ(r.subscriber_messages_per_s[0], 1000);
  EXPECT_EQ(r.subscriber_messages_per_s[1], 0);
  EXPECT_EQ(r.producer_messages_per_s[0], 0);
}

TEST(ObserveRates, WithoutAnEarlierReadAreZeroAndNotMeasured) {
  const ChannelRates r = measure_rates(nullptr, sample_channel());
  EXPECT_FALSE(r.measured);
  EXPECT_EQ(r.interval_s, 0);
  EXPECT_EQ(r.messages_per_s, 0);
  EXPECT_EQ(r.subscriber_messages_per_s.size(), 2u);
  EXPECT_EQ(r.subscriber_latency.size(), 2u);
}

TEST(ObserveRates, CountersThatWentBackwardsGiveZeroNotHuge) {
  ChannelStats before = earlier_read();
  before.published_messages += 5000;  // above the later read
  const ChannelRates r = measure_rates(&before, sample_channel());
  EXPECT_EQ(r.messages_per_s, 0);
}

TEST(ObserveRates, IntervalLatencyIsWhatWasRecordedBetweenTheReads) {
  const ChannelStats before = earlier_read();
  const ChannelRates r = measure_rates(&before, sample_channel());
  ASSERT_TRUE(r.subscriber_latency[0].has_value());
  EXPECT_EQ(r.subscriber_latency[0]->count, 2u);
  EXPECT_EQ(r.subscriber_latency[0]->sum_ns, 12'500u + 1'000'000u);
  EXPECT_EQ(r.subscriber_latency[0]->max_ns, 1'000'000u);
  EXPECT_FALSE(r.subscriber_latency[1].has_value());  // it records none
}

TEST(ObserveRates, AverageRateIsCountOverTheSpan) {
  EXPECT_DOUBLE_EQ(average_rate(1000, kNow - 2 * kSecond, kNow), 500);
  EXPECT_EQ(average_rate(1000, 0, kNow), 0);     // no start time
  EXPECT_EQ(average_rate(1000, kNow, kNow), 0);  // no span
}

// --- stat --json --------------------------------------------------------------------------------

TEST(ObserveStatJson, HasEveryContractFieldWithItsValue) {
  const ChannelStats before = earlier_read();
  const ChannelStats s = sample_channel();
  const Json j = Json::parse(stat_json(s, measure_rates(&before, s)));

  EXPECT_EQ(j["channel"], "md.eurusd");
  EXPECT_EQ(j["incarnation"], "00abcdef01234567");
  EXPECT_EQ(j["capacity"], 1 << 20);
  EXPECT_EQ(j["max_message"], 4096);
  EXPECT_EQ(j["single_producer"], true);
  EXPECT_EQ(j["created_ns"], kNow - 100 * kSecond);
  EXPECT_EQ(j["creator_pid"], 100);
  EXPECT_EQ(j["head_sequence"], 50'000);
  EXPECT_EQ(j["head_position"], 5'000'000);
  EXPECT_EQ(j["published_messages"], 50'000);
  EXPECT_EQ(j["published_bytes"], 3'200'000);
  EXPECT_EQ(j["back_pressure_events"], 7);
  EXPECT_EQ(j["evictions"], 1);
  EXPECT_EQ(j["abandoned_repaired"], 2);
  EXPECT_EQ(j["producers_attached"], 1);
  EXPECT_EQ(j["abandoned"], false);
  EXPECT_EQ(j["corrupt_slots"], 0);
  EXPECT_EQ(j["sampled_ns"], kNow);
  EXPECT_DOUBLE_EQ(j["interval_s"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["messages_per_s"].get<double>(), 2000);
  EXPECT_DOUBLE_EQ(j["bytes_per_s"].get<double>(), 128'000);

  const Json& jr = j["journal"];
  EXPECT_EQ(jr["pid"], 104);
  EXPECT_EQ(jr["alive"], true);
  EXPECT_EQ(jr["dir"], "/var/lib/shmbus/md.eurusd");
  EXPECT_EQ(jr["written_sequence"], 49'990);
  EXPECT_EQ(jr["durable_sequence"], 49'900);
  EXPECT_EQ(jr["heartbeat_ns"], kNow - 100'000'000);
  EXPECT_EQ(jr["lag_messages"], 10);

  ASSERT_EQ(j["producers"].size(), 1u);
  const Json& p = j["producers"][0];
  EXPECT_EQ(p["slot"], 0);
  EXPECT_EQ(p["pid"], 101);
  EXPECT_EQ(p["alive"], true);
  EXPECT_EQ(p["attached_ns"], kNow - 50 * kSecond);
  EXPECT_EQ(p["published"], 40'000);
  EXPECT_EQ(p["published_bytes"], 2'560'000);
  EXPECT_EQ(p["claim_in_flight"], true);
  EXPECT_DOUBLE_EQ(p["messages_per_s"].get<double>(), 2000);

  ASSERT_EQ(j["subscribers"].size(), 2u);
  const Json& a = j["subscribers"][0];
  EXPECT_EQ(a["slot"], 0);
  EXPECT_EQ(a["name"], "risk");
  EXPECT_EQ(a["pid"], 102);
  EXPECT_EQ(a["alive"], true);
  EXPECT_EQ(a["state"], "alive");
  EXPECT_EQ(a["policy"], "block");
  EXPECT_EQ(a["attached_ns"], kNow - 20 * kSecond);
  EXPECT_EQ(a["heartbeat_ns"], kNow - 300'000'000);
  EXPECT_EQ(a["position"], 4'999'936);
  EXPECT_EQ(a["next_sequence"], 49'999);
  EXPECT_EQ(a["lag_messages"], 2);
  EXPECT_EQ(a["lag_bytes"], 64);
  EXPECT_EQ(a["received"], 20'000);
  EXPECT_EQ(a["lost"], 0);
  EXPECT_EQ(a["spilled"], 0);
  EXPECT_EQ(a["evictions"], 0);
  EXPECT_DOUBLE_EQ(a["messages_per_s"].get<double>(), 1000);
  const Json& l = a["latency"];
  EXPECT_EQ(l["count"], 5);
  EXPECT_EQ(l["sum_ns"], 1000 + 2000 + 3000 + 12'500 + 1'000'000);
  EXPECT_EQ(l["max_ns"], 1'000'000);
  const core::LatencySnapshot& snap = *s.subscribers[0].latency;
  EXPECT_EQ(l["p50_ns"], core::latency_percentile(snap, 0.5));
  EXPECT_EQ(l["p99_ns"], core::latency_percentile(snap, 0.99));
  EXPECT_EQ(l["p999_ns"], core::latency_percentile(snap, 0.999));
  // p50 of {1000, 2000, 3000, 12500, 1e6} is 3000, within the histogram's precision.
  EXPECT_NEAR(l["p50_ns"].get<double>(), 3000, 3000 * core::kLatencyRelativeError + 1);
  EXPECT_EQ(a["latency_interval"]["count"], 2);

  const Json& b = j["subscribers"][1];
  EXPECT_EQ(b["slot"], 3);
  EXPECT_EQ(b["name"], "");
  EXPECT_EQ(b["state"], "lagging");
  EXPECT_EQ(b["policy"], "drop");
  EXPECT_EQ(b["lost"], 17);
  EXPECT_TRUE(b["latency"].is_null());
  EXPECT_TRUE(b["latency_interval"].is_null());
}

TEST(ObserveStatJson, JournalIsNullWithoutAJournaler) {
  ChannelStats s = sample_channel();
  s.journal.reset();
  s.abandoned = true;
  const Json j = Json::parse(stat_json(s, measure_rates(nullptr, s)));
  EXPECT_TRUE(j["journal"].is_null());
  EXPECT_EQ(j["abandoned"], true);
  EXPECT_EQ(j["interval_s"], 0.0);
  EXPECT_EQ(j["messages_per_s"], 0.0);
}

TEST(ObserveStatJson, IsOneLine) {
  const ChannelStats s = sample_channel();
  EXPECT_EQ(stat_json(s, measure_rates(nullptr, s)).find('\n'), std::string::npos);
}

TEST(ObserveStatJson, NamesEveryState) {
  ChannelStats s = sample_channel();
  const std::vector<std::pair<SubscriberState, const char*>> states{
      {SubscriberState::alive, "alive"},     {SubscriberState::lagging, "lagging"},
      {SubscriberState::lapped, "lapped"},   {SubscriberState::dead, "dead"},
      {SubscriberState::evicted, "evicted"}, {SubscriberState::detached, "detached"}};
  for (const auto& [state, word] : states) {
    s.subscribers[1].state = state;
    const Json j = Json::parse(stat_json(s, measure_rates(nullptr, s)));
    EXPECT_EQ(j["subscribers"][1]["state"], word);
  }
  s.subscribers[1].policy = Policy::spill;
  EXPECT_EQ(Json::parse(stat_json(s, measure_rates(nullptr, s)))["subscribers"][1]["policy"],
            "spill");
}

// --- stat --prometheus --------------------------------------------------------------------------

using shmbus::test::parse_exposition;
using shmbus::test::ParsedExposition;
using shmbus::test::Sample;
using shmbus::test::samples_named;

TEST(ObservePrometheus, TheTestsParserRejectsMalformedLines) {
  EXPECT_NONFATAL_FAILURE(parse_exposition("x{channel=\"a} 1\n"), "bad labels");
  EXPECT_NONFATAL_FAILURE(parse_exposition("x{channel=\"a\"} 1 2\n"), "bad value");
  EXPECT_NONFATAL_FAILURE(parse_exposition("x 1\n"), "not an exposition line");
  EXPECT_NONFATAL_FAILURE(parse_exposition("# TYPE x histogram\n"), "# TYPE x histogram");
  const ParsedExposition ok =
      parse_exposition("# HELP x A help.\n# TYPE x gauge\nx{a=\"q\\\"\\n\",b=\"\"} 1.5e-05\n");
  ASSERT_EQ(ok.samples.size(), 1u);
  EXPECT_EQ(ok.samples[0].labels.at("a"), "q\"\n");
  EXPECT_EQ(ok.samples[0].labels.at("b"), "");
  EXPECT_DOUBLE_EQ(ok.samples[0].value, 1.5e-05);
}

TEST(ObservePrometheus, EverySampleBelongsToAFamilyWithHelpAndTypeDeclaredFirst) {
  const std::string text = stat_prometheus(sample_channel());
  ASSERT_FALSE(text.empty());
  const ParsedExposition e = shmbus::test::parse_well_formed_exposition(text);
  ASSERT_FALSE(e.samples.empty());
  for (const Sample& s : e.samples) EXPECT_EQ(s.labels.at("channel"), "md.eurusd") << s.name;
}

// Without a channel: one exposition for all of them, each family declared once, each sample
// labelled with its channel (escaped), a family left out only when no channel has a sample.
TEST(ObservePrometheus, AllChannelsShareEachFamilysHelpAndTypeAndLabelEverySample) {
  ChannelStats quiet = sample_channel();
  quiet.name = "odd\"name\\";
  quiet.published_messages = 7;
  quiet.subscribers.resize(1);
  quiet.journal.reset();
  const std::string text = tools::stat_prometheus_all({sample_channel(), quiet});
  const ParsedExposition e = shmbus::test::parse_well_formed_exposition(text);
  const auto published = samples_named(e, "shmbus_published_messages_total");
  ASSERT_EQ(published.size(), 2u);
  EXPECT_EQ(published[0].labels.at("channel"), "md.eurusd");
  EXPECT_EQ(published[0].value, 50'000);
  EXPECT_EQ(published[1].labels.at("channel"), "odd\"name\\");
  EXPECT_EQ(published[1].value, 7);
  EXPECT_EQ(samples_named(e, "shmbus_subscriber_received_total").size(), 3u);
  EXPECT_EQ(samples_named(e, "shmbus_journal_written_sequence").size(), 1u);
  // One channel alone is exactly the single-channel output.
  EXPECT_EQ(tools::stat_prometheus_all({quiet}), stat_prometheus(quiet));
  EXPECT_EQ(tools::stat_prometheus_all({}), "");
}

TEST(ObservePrometheus, ChannelMetricsHaveTheContractNamesAndValues) {
  const ParsedExposition e = parse_exposition(stat_prometheus(sample_channel()));
  const std::map<std::string, double> expected{
      {"shmbus_published_messages_total", 50'000}, {"shmbus_published_bytes_total", 3'200'000},
      {"shmbus_head_sequence", 50'000},            {"shmbus_back_pressure_events_total", 7},
      {"shmbus_evictions_total", 1},               {"shmbus_producers", 1},
      {"shmbus_journal_written_sequence", 49'990}, {"shmbus_journal_durable_sequence", 49'900},
      {"shmbus_journal_alive", 1}};
  for (const auto& [name, value] : expected) {
    const auto s = samples_named(e, name);
    ASSERT_EQ(s.size(), 1u) << name;
    EXPECT_EQ(s[0].value, value) << name;
    EXPECT_EQ(s[0].labels.size(), 1u) << name;  // channel only
  }
  EXPECT_EQ(e.type.at("shmbus_published_messages_total"), "counter");
  EXPECT_EQ(e.type.at("shmbus_head_sequence"), "gauge");
  EXPECT_EQ(e.type.at("shmbus_producers"), "gauge");
}

TEST(ObservePrometheus, SubscriberMetricsAreLabelledBySlotNameAndPolicy) {
  ChannelStats s = sample_channel();
  s.subscribers[1].state = SubscriberState::dead;
  s.subscribers[1].alive = false;
  const ParsedExposition e = parse_exposition(stat_prometheus(s));
  const std::map<std::string, std::pair<double, double>> expected{
      {"shmbus_subscriber_received_total", {20'000, 9'000}},
      {"shmbus_subscriber_lost_total", {0, 17}},
      {"shmbus_subscriber_spilled_total", {0, 0}},
      {"shmbus_subscriber_lag_messages", {2, 6'000}},
      {"shmbus_subscriber_lag_bytes", {64, 600'000}},
      {"shmbus_subscriber_alive", {1, 0}}};
  for (const auto& [name, values] : expected) {
    const auto samples = samples_named(e, name);
    ASSERT_EQ(samples.size(), 2u) << name;
    EXPECT_EQ(samples[0].labels.at("slot"), "0");
    EXPECT_EQ(samples[0].labels.at("name"), "risk");
    EXPECT_EQ(samples[0].labels.at("policy"), "block");
    EXPECT_EQ(samples[0].value, values.first) << name;
    EXPECT_EQ(samples[1].labels.at("slot"), "3");
    EXPECT_EQ(samples[1].labels.at("name"), "");
    EXPECT_EQ(samples[1].labels.at("policy"), "drop");
    EXPECT_EQ(samples[1].value, values.second) << name;
  }
}

TEST(ObservePrometheus, LatencyIsASummaryInSecondsWithQuantilesSumAndCount) {
  const ChannelStats s = sample_channel();
  const ParsedExposition e = parse_exposition(stat_prometheus(s));
  EXPECT_EQ(e.type.at("shmbus_subscriber_latency_seconds"), "summary");
  const auto quantiles = samples_named(e, "shmbus_subscriber_latency_seconds");
  ASSERT_EQ(quantiles.size(), 4u);  // only the subscriber that records latency
  const core::LatencySnapshot& snap = *s.subscribers[0].latency;
  const std::map<std::string, double> expected{
      {"0.5", core::latency_percentile(snap, 0.5) / 1e9},
      {"0.99", core::latency_percentile(snap, 0.99) / 1e9},
      {"0.999", core::latency_percentile(snap, 0.999) / 1e9},
      {"1", 1'000'000 / 1e9}};
  for (const Sample& q : quantiles) {
    EXPECT_EQ(q.labels.at("slot"), "0");
    EXPECT_EQ(q.labels.at("name"), "risk");
    EXPECT_DOUBLE_EQ(q.value, expected.at(q.labels.at("quantile"))) << q.labels.at("quantile");
  }
  const auto sum = samples_named(e, "shmbus_subscriber_latency_seconds_sum");
  const auto count = samples_named(e, "shmbus_subscriber_latency_seconds_count");
  ASSERT_EQ(sum.size(), 1u);
  ASSERT_EQ(count.size(), 1u);
  EXPECT_DOUBLE_EQ(sum[0].value, (1000 + 2000 + 3000 + 12'500 + 1'000'000) / 1e9);
  EXPECT_EQ(count[0].value, 5);
  EXPECT_EQ(count[0].labels.count("quantile"), 0u);
}

TEST(ObservePrometheus, LeavesOutJournalAndLatencyFamiliesWithoutSamples) {
  ChannelStats s = sample_channel();
  s.journal.reset();
  s.subscribers[0].latency.reset();
  const std::string text = stat_prometheus(s);
  EXPECT_EQ(text.find("shmbus_journal"), std::string::npos);
  EXPECT_EQ(text.find("shmbus_subscriber_latency_seconds"), std::string::npos);
  parse_exposition(text);
}

TEST(ObservePrometheus, EscapesLabelValues) {
  EXPECT_EQ(escape_label_value(R"(a"b\c)"), R"(a\"b\\c)");
  EXPECT_EQ(escape_label_value("x\ny"), "x\\ny");
  ChannelStats s = sample_channel();
  s.subscribers[0].name = "we\"ird\\na\nme";
  const ParsedExposition e = parse_exposition(stat_prometheus(s));
  const auto samples = samples_named(e, "shmbus_subscriber_received_total");
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].labels.at("name"), "we\"ird\\na\nme");
}

// --- human output -------------------------------------------------------------------------------

// The column at which `word` starts in `line`.
std::size_t column_of(const std::string& line, const std::string& word) {
  const std::size_t at = line.find(word);
  EXPECT_NE(at, std::string::npos) << "'" << word << "' not in '" << line << "'";
  return at;
}

using shmbus::test::lines_of;

TEST(ObserveHuman, RenderTableAlignsColumnsAndLeavesNoTrailingSpaces) {
  const std::string t =
      render_table({{"NAME", "COUNT", "NOTE"}, {"a", "12345", ""}, {"longer", "7", "x"}},
                   {Align::left, Align::right, Align::left}, "  ");
  EXPECT_EQ(t,
            "  NAME    COUNT  NOTE\n"
            "  a       12345\n"
            "  longer      7  x\n");
}

TEST(ObserveHuman, UnitsAgesAndRates) {
  EXPECT_EQ(human_rate(1'234'567), "1.23 M msg/s");
  EXPECT_EQ(human_rate(950), "950 msg/s");
  EXPECT_EQ(human_rate(2048, "B"), "2.05 k B/s");
  EXPECT_EQ(human_age(kNow, kNow - 300'000'000), "0.3 s ago");
  EXPECT_EQ(human_age(kNow, kNow - 90 * kSecond), "1.5 min ago");
  EXPECT_EQ(human_age(kNow, kNow - 3 * 3600 * kSecond), "3.0 h ago");
  EXPECT_EQ(human_age(kNow, kNow - 3 * 86400 * kSecond), "3.0 d ago");
  EXPECT_EQ(human_age(kNow, kNow + 1000), "0.0 s ago");  // another process's clock ran ahead
  EXPECT_EQ(human_age(kNow, 0), "never");
  EXPECT_EQ(human_duration_ns(12'500), "12.5 us");
  EXPECT_EQ(human_bytes(3.4 * 1024 * 1024), "3.40 MiB");
}

TEST(ObserveHuman, StatTextShowsStatesUnitsAndAlignedSubscriberRows) {
  const ChannelStats before = earlier_read();
  const ChannelStats s = sample_channel();
  const std::string text = stat_text(s, measure_rates(&before, s), false);
  EXPECT_NE(text.find("channel md.eurusd  incarnation 00abcdef01234567"), std::string::npos);
  EXPECT_NE(text.find("capacity 1.00 MiB"), std::string::npos);
  EXPECT_NE(text.find("2.00 k msg/s"), std::string::npos);
  EXPECT_NE(text.find("over 0.50 s"), std::string::npos);
  EXPECT_NE(text.find("journal    recording: pid 104"), std::string::npos);
  EXPECT_NE(text.find("heartbeat 0.1 s ago"), std::string::npos);
  EXPECT_NE(text.find("(10 behind)"), std::string::npos);
  EXPECT_EQ(text.find("ABANDONED"), std::string::npos);

  const auto lines = lines_of(text);
  std::size_t header = lines.size();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find("SLOT  NAME") != std::string::npos &&
        lines[i].find("POLICY") != std::string::npos) {
      header = i;
    }
  }
  ASSERT_LT(header + 2, lines.size()) << text;
  const std::string& h = lines[header];
  const std::string& risk = lines[header + 1];
  const std::string& anon = lines[header + 2];
  // Left-aligned columns start under their heading.
  EXPECT_EQ(column_of(risk, "risk"), column_of(h, "NAME"));
  EXPECT_EQ(column_of(risk, "alive"), column_of(h, "STATE"));
  EXPECT_EQ(column_of(anon, "lagging"), column_of(h, "STATE"));
  EXPECT_EQ(column_of(anon, "drop"), column_of(h, "POLICY"));
  EXPECT_EQ(column_of(risk, "0.3 s ago"), column_of(h, "HEARTBEAT"));
  // Right-aligned numbers end under the end of their heading.
  EXPECT_EQ(column_of(anon, "6.00 k") + 6, column_of(h, "LAG") + 3);
  EXPECT_EQ(column_of(anon, "585.94 KiB") + 10, column_of(h, "LAG BYTES") + 9);
  EXPECT_EQ(column_of(risk, "20.00 k") + 7, column_of(h, "RECEIVED") + 8);

  // The latency table: p50 within 1/64 of 3000 ns, max exact.
  EXPECT_NE(text.find("since attach"), std::string::npos);
  EXPECT_NE(text.find("1.00 ms"), std::string::npos);
  EXPECT_EQ(text.find("last 0.5 s"), std::string::npos);  // only with --watch
  EXPECT_NE(stat_text(s, measure_rates(&before, s), true).find("last 0.5 s"), std::string::npos);
}

TEST(ObserveHuman, StatTextSaysWhyThereAreNoRates) {
  ChannelStats before = earlier_read();
  before.incarnation = 1;
  const ChannelStats s = sample_channel();
  EXPECT_NE(stat_text(s, measure_rates(&before, s), false).find("re-created"), std::string::npos);
  EXPECT_NE(stat_text(s, measure_rates(nullptr, s), false).find("no rates"), std::string::npos);
  ChannelStats idle = s;
  idle.producers.clear();
  idle.subscribers.clear();
  idle.journal.reset();
  idle.abandoned = true;
  const std::string text = stat_text(idle, measure_rates(nullptr, idle), false);
  EXPECT_NE(text.find("producers: none attached"), std::string::npos);
  EXPECT_NE(text.find("subscribers: none"), std::string::npos);
  EXPECT_NE(text.find("journal    none"), std::string::npos);
  EXPECT_NE(text.find("ABANDONED"), std::string::npos);
  EXPECT_EQ(text.find("CORRUPT"), std::string::npos);
  idle.corrupt_slots = 2;
  EXPECT_NE(stat_text(idle, measure_rates(nullptr, idle), false).find("CORRUPT    2 slots"),
            std::string::npos);
}

// --- ls -----------------------------------------------------------------------------------------

std::vector<LsEntry> sample_listing() {
  std::vector<LsEntry> entries(3);
  const ChannelStats before = earlier_read();
  entries[0].name = "md.eurusd";
  entries[0].stats = sample_channel();
  entries[0].rates = measure_rates(&before, *entries[0].stats);
  entries[1].name = "old";
  ChannelStats old;
  old.name = "old";
  old.capacity = 4096;
  old.head_sequence = 3;
  old.published_messages = 3;
  old.abandoned = true;
  SubscriberStats gone;
  gone.state = SubscriberState::dead;
  old.subscribers.push_back(gone);
  old.journal = JournalStats{};  // a journaler that stopped
  old.journal->durable_sequence = 3;
  entries[1].stats = old;
  entries[1].rates = measure_rates(nullptr, old);
  entries[2].name = "v0";
  entries[2].error = "channel 'v0': layout version 0, expected 1";
  return entries;
}

TEST(ObserveLs, JsonListsEveryChannelAndAnErrorForAnUnreadableOne) {
  const Json j = Json::parse(ls_json(sample_listing()));
  ASSERT_EQ(j["channels"].size(), 3u);
  const Json& c = j["channels"][0];
  EXPECT_EQ(c["name"], "md.eurusd");
  EXPECT_EQ(c["capacity"], 1 << 20);
  EXPECT_EQ(c["producers"], 1);
  EXPECT_EQ(c["subscribers"], 2);
  EXPECT_EQ(c["head_sequence"], 50'000);
  EXPECT_EQ(c["published_messages"], 50'000);
  EXPECT_DOUBLE_EQ(c["messages_per_s"].get<double>(), 2000);
  EXPECT_EQ(c["journal"], "recording");
  EXPECT_EQ(c["journal_durable_sequence"], 49'900);
  EXPECT_EQ(c["abandoned"], false);
  EXPECT_FALSE(c.contains("error"));

  const Json& old = j["channels"][1];
  EXPECT_EQ(old["producers"], 0);
  EXPECT_EQ(old["subscribers"], 1);
  EXPECT_EQ(old["journal"], "stopped");
  EXPECT_EQ(old["journal_durable_sequence"], 3);
  EXPECT_EQ(old["abandoned"], true);
  EXPECT_EQ(old["messages_per_s"], 0.0);

  const Json& bad = j["channels"][2];
  EXPECT_EQ(bad["name"], "v0");
  EXPECT_EQ(bad["error"], "channel 'v0': layout version 0, expected 1");
  EXPECT_FALSE(bad.contains("capacity"));
}

TEST(ObserveLs, JsonJournalIsNoneWithANullSequenceWithoutAJournaler) {
  std::vector<LsEntry> entries = sample_listing();
  entries[0].stats->journal.reset();
  const Json j = Json::parse(ls_json(entries));
  EXPECT_EQ(j["channels"][0]["journal"], "none");
  EXPECT_TRUE(j["channels"][0]["journal_durable_sequence"].is_null());
  EXPECT_EQ(Json::parse(ls_json({})), Json::parse(R"({"channels":[]})"));
}

TEST(ObserveLs, TextIsAnAlignedTableWithUnitsAndStatus) {
  const auto lines = lines_of(ls_text(sample_listing()));
  ASSERT_EQ(lines.size(), 4u);
  const std::string& h = lines[0];
  EXPECT_EQ(h.rfind("NAME", 0), 0u);
  // CAPACITY is right-aligned: "1.00 MiB" ends where the heading ends.
  EXPECT_EQ(column_of(lines[1], "1.00 MiB") + 8, column_of(h, "CAPACITY") + 8);
  EXPECT_EQ(column_of(lines[2], "4.00 KiB") + 8, column_of(h, "CAPACITY") + 8);
  EXPECT_EQ(column_of(lines[1], "recording"), column_of(h, "JOURNAL"));
  EXPECT_EQ(column_of(lines[2], "stopped"), column_of(h, "JOURNAL"));
  EXPECT_EQ(column_of(lines[1], "in use"), column_of(h, "STATUS"));
  EXPECT_EQ(column_of(lines[2], "abandoned"), column_of(h, "STATUS"));
  EXPECT_NE(lines[1].find("2.00 k msg/s"), std::string::npos);
  EXPECT_EQ(column_of(lines[3], "unreadable: channel 'v0'"), column_of(h, "STATUS"));
  EXPECT_EQ(ls_text({}), "no channels\n");
}

// --- words shared by rm, gc and inspect ---------------------------------------------------------

TEST(ObserveWords, LiveProcessesNameEveryRunningRoleAndSkipDetachedSlots) {
  ChannelStats s = sample_channel();
  SubscriberStats detached;
  detached.pid = 200;
  detached.alive = true;  // the process runs, but its subscriber closed
  detached.state = SubscriberState::detached;
  s.subscribers.push_back(detached);
  const auto live = live_processes(s);
  ASSERT_EQ(live.size(), 5u);
  EXPECT_EQ(live[0].pid, 101u);
  EXPECT_EQ(live[0].role, "producer");
  EXPECT_EQ(live[1].role, "subscriber 'risk'");
  EXPECT_EQ(live[2].role, "subscriber");
  EXPECT_EQ(live[3].pid, 104u);
  EXPECT_EQ(live[3].role, "journaler");
  EXPECT_EQ(live[4].pid, 100u);
  EXPECT_EQ(live[4].role, "creator");

  s.producers[0].alive = false;
  s.creator_alive = false;
  s.journal->alive = false;
  for (auto& sub : s.subscribers) sub.alive = false;
  EXPECT_TRUE(live_processes(s).empty());
}

TEST(ObserveWords, JournalStatusAndLag) {
  ChannelStats s = sample_channel();
  EXPECT_STREQ(journal_status(s), "recording");
  EXPECT_EQ(journal_lag(s), 10u);
  s.journal->alive = false;
  EXPECT_STREQ(journal_status(s), "stopped");
  s.journal->written_sequence = s.head_sequence + 5;  // read a moment apart: never negative
  EXPECT_EQ(journal_lag(s), 0u);
  ChannelStats none;  // no journaler ever attached
  none.head_sequence = 10;
  EXPECT_STREQ(journal_status(none), "none");
  EXPECT_EQ(journal_lag(none), 0u);
}

TEST(ObserveWords, WalkVerdictSaysOkOrListsEachProblem) {
  core::RingWalk walk;
  walk.data_records = 120;
  walk.first_sequence = 5;
  walk.last_sequence = 124;
  EXPECT_EQ(walk_verdict(walk),
            std::vector<std::string>{"walk: OK, 120 records from seq 5 to 124"});
  EXPECT_EQ(walk_verdict(core::RingWalk{}), std::vector<std::string>{"walk: OK, 0 records"});
  walk.problems.push_back({4096, "record length 9999999 exceeds max_message 4096"});
  walk.problems.push_back({8192, "sequence 77 follows 75"});
  EXPECT_EQ(walk_verdict(walk),
            (std::vector<std::string>{
                "PROBLEM at position 4096: record length 9999999 exceeds max_message 4096",
                "PROBLEM at position 8192: sequence 77 follows 75"}));
  EXPECT_EQ(record_type_name(1), "data");
  EXPECT_EQ(record_type_name(2), "padding");
  EXPECT_EQ(record_type_name(3), "abandoned");
  EXPECT_EQ(record_type_name(9), "unknown(9)");
}

// A walk that stopped at an uncommitted claim says so in a note when later records are committed
// (a slow or dead producer, or a damaged header), and stays OK; at the head it says nothing.
TEST(ObserveWords, WalkVerdictNotesAClaimWithCommittedRecordsBeyondIt) {
  core::RingWalk walk;
  walk.data_records = 6;
  walk.first_sequence = 1;
  walk.last_sequence = 6;
  walk.pending_records = 1;
  walk.stopped_at_pending = 416;
  EXPECT_EQ(walk_verdict(walk), std::vector<std::string>{"walk: OK, 6 records from seq 1 to 6"});
  walk.committed_beyond_pending = true;
  EXPECT_EQ(walk_verdict(walk),
            (std::vector<std::string>{
                "walk: OK, 6 records from seq 1 to 6",
                "note: claim at position 416 is not committed while later records are: a "
                "producer is slow or died mid-message (readers mark it abandoned after their "
                "abandon_timeout), or its header was damaged"}));
  // A sequence break before it: the problem, then the note.
  walk.problems.push_back({96, "record at position 96 has sequence 9 where 3 was expected"});
  const std::vector<std::string> lines = walk_verdict(walk);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "PROBLEM at position 96: record at position 96 has sequence 9 where 3 was "
                      "expected");
  EXPECT_EQ(lines[1].rfind("note: claim at position 416 ", 0), 0u) << lines[1];
}

}  // namespace
