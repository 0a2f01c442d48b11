// The pure parts behind `shmbus bench --json`'s trust fields: each figure's spread over the rounds
// and the warnings it raises, the HdrHistogram-style percentile lines of a latency distribution,
// and the run's metadata (bench/harness/round_spread.hpp, latency_distribution.hpp,
// run_metadata.hpp, bench/run_record.hpp).
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/harness/latency_distribution.hpp"
#include "bench/harness/round_spread.hpp"
#include "bench/harness/run_metadata.hpp"
#include "bench/harness/stats.hpp"
#include "bench/run_record.hpp"
#include "tests/tools/bench_field_shapes.hpp"

namespace {

using namespace shmbus::bench;

TEST(RoundSpread, IsTheRangeOverTheMedian) {
  const std::vector<double> rounds{120, 90, 100};
  const FigureSpread s = spread_of("p50_ns", rounds);
  EXPECT_EQ(s.figure, "p50_ns");
  EXPECT_DOUBLE_EQ(s.min, 90);
  EXPECT_DOUBLE_EQ(s.median, 100);
  EXPECT_DOUBLE_EQ(s.max, 120);
  EXPECT_DOUBLE_EQ(s.spread, 0.3);
}

TEST(RoundSpread, IsZeroForOneRoundNoRoundOrAZeroMedian) {
  EXPECT_DOUBLE_EQ(spread_of("x", std::vector<double>{42}).spread, 0);
  EXPECT_DOUBLE_EQ(spread_of("x", std::vector<double>{}).spread, 0);
  EXPECT_DOUBLE_EQ(spread_of("x", std::vector<double>{0, 0, 5}).spread, 0);
}

TEST(RoundSpread, EvenRoundCountsTakeTheMeanOfTheMiddleTwo) {
  const FigureSpread s = spread_of("msgs_per_s", std::vector<double>{100, 300});
  EXPECT_DOUBLE_EQ(s.median, 200);
  EXPECT_DOUBLE_EQ(s.spread, 1.0);
}

TEST(RoundSpread, LatencySpreadsCoverTheFiveFiguresInOrder) {
  const std::vector<LatencyStats> rounds{{100, 200, 300, 400, 500}, {110, 200, 330, 400, 1500}};
  const std::vector<FigureSpread> spreads = latency_spreads(rounds);
  ASSERT_EQ(spreads.size(), 5u);
  const char* names[] = {"p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"};
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(spreads[i].figure, names[i]);
  EXPECT_DOUBLE_EQ(spreads[1].spread, 0);
  EXPECT_DOUBLE_EQ(spreads[2].spread, 30.0 / 315.0);
  EXPECT_DOUBLE_EQ(spreads[4].spread, 1.0);
}

TEST(SpreadWarnings, NameEachFigureAboveTheLimitOnceLinePerMeasuredThing) {
  const std::vector<LabelledSpreads> measured{
      {"pingpong shmbus",
       {spread_of("p50_ns", std::vector<double>{100, 101}),
        spread_of("p99_ns", std::vector<double>{100, 200}),
        spread_of("p999_ns", std::vector<double>{1000, 3000})}},
      {"pingpong raw-shm", {spread_of("p50_ns", std::vector<double>{100, 102})}}};
  const std::vector<std::string> warnings = spread_warnings(measured, 0.25);
  ASSERT_EQ(warnings.size(), 1u);
  const std::string& w = warnings[0];
  EXPECT_EQ(w.rfind("pingpong shmbus: ", 0), 0u) << w;
  EXPECT_NE(w.find("p99_ns 67% (min 100, median 150, max 200)"), std::string::npos) << w;
  EXPECT_NE(w.find("p999_ns 100% (min 1000, median 2000, max 3000)"), std::string::npos) << w;
  EXPECT_EQ(w.find("p50_ns"), std::string::npos) << w;
  EXPECT_NE(w.find("25%"), std::string::npos) << w;
}

TEST(SpreadWarnings, NeverWarnOnTheMaximumNorOnASpreadAtTheLimit) {
  const std::vector<LabelledSpreads> measured{
      {"fanout block, 8 subscriber(s)",
       {spread_of("max_ns", std::vector<double>{10, 10000}),
        spread_of("publisher_msgs_per_s", std::vector<double>{100, 125, 75})}}};
  EXPECT_TRUE(spread_warnings(measured, 0.5).empty());
  EXPECT_EQ(spread_warnings(measured, 0.49).size(), 1u);
}

TEST(SpreadJson, MapsEachFigureToItsSpreadInOrder) {
  const std::vector<FigureSpread> spreads{spread_of("p50_ns", std::vector<double>{100, 300}),
                                          spread_of("max_ns", std::vector<double>{5})};
  EXPECT_EQ(to_json(spreads).dump(), R"({"p50_ns":1.0,"max_ns":0.0})");
}

// 1..n nanoseconds, once each.
std::vector<std::uint64_t> ramp(std::uint64_t n) {
  std::vector<std::uint64_t> samples(n);
  std::iota(samples.begin(), samples.end(), std::uint64_t{1});
  return samples;
}

TEST(PercentileLines, StepLikeHdrHistogramAndCloseWithTheExactMaximum) {
  std::vector<std::uint64_t> samples = ramp(1000);
  const LatencyRound round = measure_latency(samples);
  const std::vector<PercentileLine> lines = percentile_lines(round.histogram);
  ASSERT_GE(lines.size(), 12u);
  // Ten-percent steps up to the median, then five per halving of the distance to 100%.
  const double expected[] = {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.775};
  for (std::size_t i = 0; i < std::size(expected); ++i) {
    EXPECT_NEAR(lines[i].percentile, expected[i], 1e-12) << i;
  }
  EXPECT_EQ(lines[0].value_ns, 1u);
  EXPECT_EQ(lines[0].count, 1u);
  EXPECT_NEAR(double(lines[5].value_ns), 500.0, 500.0 / 64 + 1);
  EXPECT_GE(lines[5].count, 500u);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    EXPECT_GT(lines[i].percentile, lines[i - 1].percentile) << i;
    EXPECT_GE(lines[i].value_ns, lines[i - 1].value_ns) << i;
    EXPECT_GE(lines[i].count, lines[i - 1].count) << i;
  }
  const PercentileLine& last = lines.back();
  EXPECT_EQ(last.percentile, 1.0);
  EXPECT_EQ(last.value_ns, 1000u);
  EXPECT_EQ(last.count, 1000u);
  EXPECT_EQ(lines[lines.size() - 2].count, 1000u) << "the line before the close reaches the last sample";
}

TEST(PercentileLines, AreEmptyForAnEmptyHistogram) {
  EXPECT_TRUE(percentile_lines(shmbus::core::LatencySnapshot{}).empty());
  EXPECT_EQ(distribution_json(shmbus::core::LatencySnapshot{}).dump(), "[]");
}

TEST(PercentileLines, AsJsonCarryPercentileValueAndCount) {
  shmbus::core::LatencySnapshot histogram;
  add_sample(histogram, 40);
  const nlohmann::ordered_json lines = distribution_json(histogram);
  EXPECT_EQ(lines.dump(),
            R"([{"percentile":0.0,"value_ns":40,"count":1},{"percentile":1.0,"value_ns":40,"count":1}])");
}

TEST(LatencySummary, MergesEveryRoundsSamplesAndTakesEachFiguresMedian) {
  std::vector<std::uint64_t> first = ramp(100);
  std::vector<std::uint64_t> second = ramp(300);
  const std::vector<LatencyRound> rounds{measure_latency(first), measure_latency(second)};
  const LatencySummary summary = summarize(rounds);
  EXPECT_EQ(summary.detail.distribution.count, 400u);
  EXPECT_EQ(summary.detail.distribution.max_ns, 300u);
  EXPECT_EQ(summary.median.p50_ns, (50u + 150u) / 2);
  EXPECT_EQ(summary.median.max_ns, (100u + 300u) / 2);
  ASSERT_EQ(summary.detail.spread.size(), 5u);
  EXPECT_DOUBLE_EQ(summary.detail.spread[0].spread, 1.0);  // p50: (150 - 50) / 100
}

TEST(RunMetadata, CpuModelIsTheFirstModelNameOrUnknown) {
  EXPECT_EQ(cpu_model_of("processor\t: 0\nvendor_id\t: X\nmodel name\t: Some CPU  @ 3.0GHz \n"
                         "processor\t: 1\nmodel name\t: Other\n"),
            "Some CPU  @ 3.0GHz");
  EXPECT_EQ(cpu_model_of("processor\t: 0\nmodel\t\t: 85\n"), "unknown");
  EXPECT_EQ(cpu_model_of(""), "unknown");
}

TEST(RunMetadata, NamesTheBuildTheMachineAndAUtcDate) {
  const RunMetadata m = collect_run_metadata({1, -1, 0, 1}, 3, 0.25);
  EXPECT_TRUE(shmbus::test::is_version(m.shmbus_version)) << m.shmbus_version;
  EXPECT_FALSE(m.git_commit.empty());
  EXPECT_FALSE(m.cpu_model.empty());
  EXPECT_GE(m.cpus, 1u);
  EXPECT_EQ(m.cpus_used, (std::vector<int>{1, 0})) << "not pinned (-1) and repeats are dropped";
  EXPECT_EQ(m.kernel.rfind("Linux ", 0), 0u) << m.kernel;
  EXPECT_TRUE(shmbus::test::is_utc_date(m.date_utc))
      << m.date_utc;
  const nlohmann::ordered_json j = to_json(m);
  EXPECT_EQ(j.at("rounds"), 3);
  EXPECT_EQ(j.at("max_spread"), 0.25);
  EXPECT_EQ(j.at("cpus_used").dump(), "[1,0]");
}

TEST(RunRecord, AddsMetadataAndOneWarningPerDisagreeingTransport) {
  PingPongReport report;
  report.rounds = 2;
  report.initiator_cpu = 0;
  report.responder_cpu = 1;
  PingPongResult quiet{"shmbus", {}, {}};
  quiet.detail.spread = latency_spreads(std::vector<LatencyStats>{{100, 1, 1, 1, 1}, {100, 1, 1, 1, 9}});
  PingPongResult noisy{"pipe", {}, {}};
  noisy.detail.spread = latency_spreads(std::vector<LatencyStats>{{100, 1, 1, 1, 1}, {300, 1, 1, 1, 1}});
  report.results = {quiet, noisy};
  const RunRecord record = run_record(report, 0.25);
  ASSERT_EQ(record.warnings.size(), 1u);
  EXPECT_EQ(record.warnings[0].rfind("pingpong pipe: ", 0), 0u) << record.warnings[0];
  EXPECT_EQ(record.metadata.cpus_used, (std::vector<int>{0, 1}));
  EXPECT_EQ(record.metadata.rounds, 2);

  nlohmann::json document = {{"bench", "pingpong"}};
  add_run_record(document, record);
  EXPECT_EQ(document.at("bench"), "pingpong");
  EXPECT_EQ(document.at("warnings").size(), 1u);
  EXPECT_EQ(document.at("metadata").at("cpus_used").dump(), "[0,1]");
}

}  // namespace

namespace {

TEST(BenchFieldShapes, TellVersionsAndUtcDatesFromOtherText) {
  using shmbus::test::is_utc_date;
  using shmbus::test::is_version;
  EXPECT_TRUE(is_version("0.1.0"));
  EXPECT_TRUE(is_version("10.22.333"));
  EXPECT_FALSE(is_version("0.1"));
  EXPECT_FALSE(is_version("0..1"));
  EXPECT_FALSE(is_version("0.1.0-rc1"));
  EXPECT_FALSE(is_version("unknown"));
  EXPECT_TRUE(is_utc_date("2026-12-03T21:30:00Z"));
  EXPECT_FALSE(is_utc_date("2026-12-03T21:30:00"));
  EXPECT_FALSE(is_utc_date("2026-12-03 21:30:00Z"));
  EXPECT_FALSE(is_utc_date("2026-1x-03T21:30:00Z"));
}

}  // namespace
