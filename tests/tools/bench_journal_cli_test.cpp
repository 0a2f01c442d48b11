// `shmbus bench journal`'s scripted contract, checked by running the built binary (SHMBUS_CLI) on a
// tiny configuration: the JSON fields (the journaler's throughput against plain O_DIRECT writes,
// the publisher's claim+commit cost with and without a journaler, the one-way latency kept from
// before) and the table's order and labels. Figures are only checked for being measured and
// consistent (percentiles ordered), never against timings.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/command.hpp"
#include "tests/support/journal_files.hpp"

namespace {

using namespace std::chrono_literals;
using shmbus::test::lines_of;
using shmbus::test::RunResult;
using shmbus::test::run_command;
using shmbus::test::TempDir;

// One round, one message size, 4 MiB of journal and 3000 paced messages: a few seconds.
RunResult tiny_bench(const std::string& dir, std::initializer_list<std::string> extra) {
  std::vector<std::string> argv{SHMBUS_CLI, "bench",   "journal", "--rounds", "1",   "--size",
                                "64",       "--bytes", "4M",      "--count",  "3000", "--dir",
                                dir};
  argv.insert(argv.end(), extra);
  return run_command(argv, 120s);
}

void expect_percentiles(const nlohmann::json& stats, const std::string& where) {
  for (const char* key : {"p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"}) {
    ASSERT_TRUE(stats.contains(key)) << key << " in " << where << ": " << stats.dump();
    ASSERT_TRUE(stats.at(key).is_number_integer()) << key << " in " << where;
  }
  const auto p50 = stats.at("p50_ns").get<std::int64_t>();
  const auto p90 = stats.at("p90_ns").get<std::int64_t>();
  const auto p99 = stats.at("p99_ns").get<std::int64_t>();
  const auto p999 = stats.at("p999_ns").get<std::int64_t>();
  const auto max = stats.at("max_ns").get<std::int64_t>();
  EXPECT_GT(p50, 0) << where << ": " << stats.dump();
  EXPECT_LE(p50, p90) << where << ": " << stats.dump();
  EXPECT_LE(p90, p99) << where << ": " << stats.dump();
  EXPECT_LE(p99, p999) << where << ": " << stats.dump();
  EXPECT_LE(p999, max) << where << ": " << stats.dump();
}

TEST(BenchJournalCli, JsonReportsThroughputPublisherCostAndTheOneWayLatency) {
  TempDir dir("bench-journal");
  const RunResult r = tiny_bench(dir.path(), {"--json"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << "\n" << r.out;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  const nlohmann::json doc = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(doc.at("bench"), "journal");
  EXPECT_EQ(doc.at("rounds"), 1);
  EXPECT_EQ(doc.at("direct_io"), true);
  EXPECT_GT(doc.at("direct_write").at("mb_per_s").get<double>(), 0.0) << doc.dump();

  const nlohmann::json& tput = doc.at("throughput");
  ASSERT_EQ(tput.size(), 1u) << doc.dump();
  EXPECT_EQ(tput[0].at("size"), 64);
  for (const char* key : {"seconds", "msgs_per_s", "mb_per_s", "payload_mb_per_s",
                          "of_direct_write"}) {
    EXPECT_GT(tput[0].at(key).get<double>(), 0.0) << key << ": " << tput[0].dump();
  }
  // 4 MiB of 96-byte records (64 B payload, 32 B header).
  EXPECT_EQ(tput[0].at("messages"), (4u << 20) / 96) << tput[0].dump();

  const nlohmann::json& publisher = doc.at("publisher");
  const std::string clock = publisher.at("clock").get<std::string>();
  EXPECT_TRUE(clock == "tsc" || clock == "clock_monotonic") << clock;
  EXPECT_EQ(publisher.at("size"), 64);
  EXPECT_EQ(publisher.at("count"), 3000);
  EXPECT_GT(publisher.at("rate").get<double>(), 0.0);
  expect_percentiles(publisher.at("without_journal"), "publisher without_journal");
  expect_percentiles(publisher.at("with_journal"), "publisher with_journal");
  EXPECT_GT(publisher.at("p99_ratio").get<double>(), 0.0) << publisher.dump();

  // The one-way figure keeps its fields (scripts read them), now labelled for what it is.
  const nlohmann::json& latency = doc.at("latency");
  EXPECT_EQ(latency.at("count"), 3000);
  expect_percentiles(latency.at("without_journal"), "latency without_journal");
  expect_percentiles(latency.at("with_journal"), "latency with_journal");
  EXPECT_GT(latency.at("p99_ratio").get<double>(), 0.0) << latency.dump();
  EXPECT_NE(latency.at("what").get<std::string>().find("scheduling noise"), std::string::npos);
}

TEST(BenchJournalCli, TableLeadsTheLatencyPartWithThePublisherCost) {
  TempDir dir("bench-journal");
  const RunResult r = tiny_bench(dir.path(), {});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << "\n" << r.out;
  const std::size_t direct = r.out.find("plain O_DIRECT sequential write:");
  const std::size_t publisher = r.out.find("publisher cost: try_claim..commit per message");
  const std::size_t one_way = r.out.find("one-way latency");
  ASSERT_NE(direct, std::string::npos) << r.out;
  ASSERT_NE(publisher, std::string::npos) << r.out;
  ASSERT_NE(one_way, std::string::npos) << r.out;
  EXPECT_LT(direct, publisher) << r.out;
  EXPECT_LT(publisher, one_way) << r.out;
  EXPECT_NE(r.out.find("scheduling noise dominates", one_way), std::string::npos) << r.out;
  // Both sections end in their p99 ratio.
  const std::size_t first_ratio = r.out.find("p99 with / without:", publisher);
  ASSERT_NE(first_ratio, std::string::npos) << r.out;
  EXPECT_LT(first_ratio, one_way) << r.out;
  EXPECT_NE(r.out.find("p99 with / without:", one_way), std::string::npos) << r.out;
}

}  // namespace
