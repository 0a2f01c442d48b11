// `shmbus bench` and `shmbus demo` on the command line, run as the built binary (SHMBUS_CLI): their
// --help, the completion of bench's benchmark names, and each benchmark's JSON output with tiny
// counts (pingpong, throughput with its raw-seq ratios, fanout, group). Apart from the other
// command-line tests because these subcommands and the bench/ harness they drive are built only
// where timings mean something: the sanitizer builds of the test command leave them out
// (SHMBUS_BENCH, CMakeLists.txt), and the Release build runs this program (tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/command.hpp"

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using shmbus::test::lines_of;
using shmbus::test::RunResult;
using shmbus::test::run_command;
using shmbus::test::with_stderr_captured;

// `shmbus ARGS...`, capturing stdout.
RunResult cli(std::initializer_list<std::string> args, std::chrono::milliseconds timeout = 10s) {
  std::vector<std::string> argv{SHMBUS_CLI};
  argv.insert(argv.end(), args);
  return run_command(argv, timeout);
}

// `shmbus ARGS...`, capturing stderr (stdout is discarded).
RunResult cli_stderr(std::initializer_list<std::string> args,
                     std::chrono::milliseconds timeout = 10s) {
  std::vector<std::string> argv{SHMBUS_CLI};
  argv.insert(argv.end(), args);
  return run_command(with_stderr_captured(argv), timeout);
}

TEST(Cli, HelpOfBenchAndDemoExitsZeroWithUsageOnStdout) {
  for (const char* sub : {"bench", "demo"}) {
    SCOPED_TRACE(sub);
    const RunResult r = cli({sub, "--help"});
    EXPECT_TRUE(r.status.ok()) << r.status.describe();
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(std::string("shmbus ") + sub), std::string::npos) << r.out;
  }
}

// bench's benchmark is an argument with listed choices: the script `shmbus completion bash` prints
// completes it (COMP_WORDS and COMP_CWORD set as bash sets them before it calls _shmbus).
TEST(CliCompletion, CompletesTheBenchmarkNamesOfBench) {
  const RunResult r = run_command(
      {"/bin/bash", "-c",
       "source <(\"$1\" completion bash) || exit 9; COMP_WORDS=(shmbus bench pi); COMP_CWORD=2; "
       "COMP_LINE=\"shmbus bench pi\"; COMP_POINT=${#COMP_LINE}; _shmbus; "
       "printf '%s\\n' \"${COMPREPLY[@]}\"",
       "bash", SHMBUS_CLI},
      10s);
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << r.out;
  EXPECT_EQ(lines_of(r.out), std::vector<std::string>{"pingpong"}) << r.out;
}

void expect_bench_results(const nlohmann::json& doc,
                          const std::function<void(const nlohmann::json&)>& check_row) {
  ASSERT_TRUE(doc.contains("results")) << doc.dump();
  ASSERT_TRUE(doc.at("results").is_array()) << doc.dump();
  bool saw_shmbus = false;
  bool saw_raw = false;
  for (const auto& row : doc.at("results")) {
    ASSERT_TRUE(row.is_object()) << row.dump();
    const auto transport = row.at("transport").get<std::string>();
    SCOPED_TRACE(transport);
    if (transport == "shmbus") saw_shmbus = true;
    if (transport == "raw-shm") saw_raw = true;
    if (transport == "shmbus" || transport == "raw-shm") check_row(row);
  }
  EXPECT_TRUE(saw_shmbus) << doc.dump();
  EXPECT_TRUE(saw_raw) << doc.dump();
}

// `shmbus bench ARGS... --json`: its one JSON document, or null after a test failure saying why.
nlohmann::json bench_json(std::initializer_list<std::string> args) {
  std::vector<std::string> argv{SHMBUS_CLI, "bench"};
  argv.insert(argv.end(), args);
  argv.push_back("--json");
  const RunResult r = run_command(argv, 60s);
  if (!r.status.ok()) {
    ADD_FAILURE() << r.status.describe() << "\n" << r.out;
    return nullptr;
  }
  const auto lines = lines_of(r.out);
  if (lines.size() != 1) {
    ADD_FAILURE() << "expected one line of JSON, got:\n" << r.out;
    return nullptr;
  }
  return nlohmann::json::parse(lines[0]);
}

// Throughput rows: exactly the transports named, in that order, each with a positive count and
// positive ratios to both raw baselines; raw-seq's own ratio to itself is 1.
void expect_throughput_rows_rated_against_both_baselines(
    const nlohmann::json& doc, const std::vector<std::string>& transports) {
  const auto& results = doc.at("results");
  ASSERT_EQ(results.size(), transports.size()) << doc.dump();
  for (std::size_t i = 0; i < transports.size(); ++i) {
    const nlohmann::json& row = results.at(i);
    SCOPED_TRACE(row.dump());
    EXPECT_EQ(row.at("transport"), transports[i]);
    EXPECT_GT(row.at("count").get<std::uint64_t>(), 0u);
    EXPECT_GT(row.at("ratio_to_raw").get<double>(), 0.0);
    EXPECT_GT(row.at("ratio_to_raw_seq").get<double>(), 0.0);
    if (transports[i] == "raw-seq") {
      EXPECT_DOUBLE_EQ(row.at("ratio_to_raw_seq").get<double>(), 1.0);
    }
  }
}

TEST(Cli, BenchPingpongJsonReportsLatencyPercentilesPerTransport) {
  const RunResult r = cli({"bench", "pingpong", "--count", "2000", "--rounds", "1", "--json"}, 60s);
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << "\n" << r.out;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  const nlohmann::json doc = nlohmann::json::parse(lines[0]);
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc.at("bench"), "pingpong");
  EXPECT_EQ(doc.at("size"), 64);
  EXPECT_EQ(doc.at("count"), 2000) << doc.dump();
  expect_bench_results(doc, [](const nlohmann::json& row) {
    for (const char* key : {"p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"}) {
      ASSERT_TRUE(row.contains(key)) << key << " in " << row.dump();
      EXPECT_TRUE(row.at(key).is_number_integer()) << key << " in " << row.dump();
    }
    const auto p50 = row.at("p50_ns").get<std::int64_t>();
    const auto p99 = row.at("p99_ns").get<std::int64_t>();
    const auto max = row.at("max_ns").get<std::int64_t>();
    EXPECT_GT(p50, 0) << row.dump();
    EXPECT_LE(p50, p99) << row.dump();
    EXPECT_LE(p99, max) << row.dump();
    EXPECT_FALSE(row.contains("ratio_to_raw_seq")) << "a throughput-only field: " << row.dump();
  });
}

TEST(Cli, BenchThroughputJsonReportsPositiveRatesPerTransport) {
  const RunResult r =
      cli({"bench", "throughput", "--duration", "0.2", "--rounds", "1", "--json"}, 60s);
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << "\n" << r.out;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  const nlohmann::json doc = nlohmann::json::parse(lines[0]);
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc.at("bench"), "throughput");
  expect_bench_results(doc, [](const nlohmann::json& row) {
    ASSERT_TRUE(row.contains("msgs_per_s")) << row.dump();
    ASSERT_TRUE(row.contains("mb_per_s")) << row.dump();
    EXPECT_GT(row.at("msgs_per_s").get<double>(), 0.0) << row.dump();
    EXPECT_GT(row.at("mb_per_s").get<double>(), 0.0) << row.dump();
  });
  expect_throughput_rows_rated_against_both_baselines(
      doc, {"shmbus", "shmbus-sp", "shmbus-single", "shmbus-sp-single", "raw-seq", "raw-shm",
            "pipe", "unix-socket", "boost-mq"});
}

TEST(Cli, BenchThroughputOnlyStillRunsBothRawBaselinesAtAnOddSize) {
  // 200-byte messages take four cache lines per raw-seq slot, the ready word in the first.
  const nlohmann::json doc = bench_json({"throughput", "--size", "200", "--only",
                                         "shmbus-sp-single", "--duration", "0.2", "--rounds", "1"});
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc.at("size"), 200);
  expect_throughput_rows_rated_against_both_baselines(doc,
                                                      {"shmbus-sp-single", "raw-seq", "raw-shm"});
}

// A fanout JSON document: one row per policy and subscriber count, in that order.
void expect_fanout_rows(const nlohmann::json& doc, const std::vector<std::string>& policies,
                        const std::vector<std::size_t>& subscribers) {
  EXPECT_EQ(doc.at("bench"), "fanout");
  const auto& results = doc.at("results");
  ASSERT_EQ(results.size(), policies.size() * subscribers.size()) << doc.dump();
  std::size_t i = 0;
  for (const std::string& policy : policies) {
    for (std::size_t n : subscribers) {
      const nlohmann::json& row = results.at(i++);
      SCOPED_TRACE(row.dump());
      EXPECT_EQ(row.at("policy"), policy);
      EXPECT_EQ(row.at("subscribers"), n);
      const auto published = row.at("published").get<std::uint64_t>();
      EXPECT_GT(published, 0u);
      EXPECT_GT(row.at("publisher_msgs_per_s").get<double>(), 0.0);
      const double ratio = row.at("ratio_to_one_subscriber").get<double>();
      if (n == 1) {
        EXPECT_DOUBLE_EQ(ratio, 1.0);
      } else {
        EXPECT_GT(ratio, 0.0);
      }
      const double slowest = row.at("delivered_min_msgs_per_s").get<double>();
      EXPECT_GT(slowest, 0.0);
      EXPECT_LE(slowest, row.at("delivered_median_msgs_per_s").get<double>());
      const auto lost = row.at("lost").get<std::uint64_t>();
      const double lost_fraction = row.at("lost_fraction").get<double>();
      if (policy == "block") {
        EXPECT_EQ(lost, 0u);
        EXPECT_EQ(lost_fraction, 0.0);
      } else {
        EXPECT_LT(lost, published * n);  // every subscriber receives at least the last message
        EXPECT_GE(lost_fraction, 0.0);
        EXPECT_LT(lost_fraction, 1.0);
      }
      const auto p50 = row.at("p50_ns").get<std::uint64_t>();
      const auto p99 = row.at("p99_ns").get<std::uint64_t>();
      const auto p999 = row.at("p999_ns").get<std::uint64_t>();
      const auto max = row.at("max_ns").get<std::uint64_t>();
      EXPECT_LE(p50, p99);
      EXPECT_LE(p99, p999);
      EXPECT_LE(p999, max);
      EXPECT_GT(max, 0u);
    }
  }
}

TEST(Cli, BenchFanoutJsonReportsEveryPolicyAndSubscriberCount) {
  const nlohmann::json doc =
      bench_json({"fanout", "--subscribers", "1,4", "--duration", "0.2", "--rounds", "1"});
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc.at("size"), 64);
  EXPECT_EQ(doc.at("rounds"), 1);
  expect_fanout_rows(doc, {"block", "drop"}, {1, 4});
}

TEST(Cli, BenchFanoutAlwaysRunsOneSubscriberAndOnlyThePolicyAsked) {
  const nlohmann::json doc = bench_json({"fanout", "--subscribers", "2", "--policy", "drop",
                                         "--size", "100", "--duration", "0.1", "--rounds", "1"});
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc.at("size"), 100);
  expect_fanout_rows(doc, {"drop"}, {1, 2});
}

// Until channels take more than their fixed 64 subscriber slots (ChannelOptions::subscriber_slots),
// a larger fanout must fail before running anything, saying why.
TEST(Cli, BenchFanoutBeyondTheLargestSubscriberSlotCountFailsNamingTheOption) {
  const RunResult r = cli_stderr({"bench", "fanout", "--subscribers", "1,4097", "--duration",
                                  "0.1", "--rounds", "1"});
  EXPECT_TRUE(r.status.exited) << r.status.describe();
  EXPECT_NE(r.status.code, 0);
  EXPECT_NE(r.out.find("4097 subscribers"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("subscriber_slots"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("round"), std::string::npos) << "nothing should have run: " << r.out;
}

// --- bench group ----------------------------------------------------------------------------

TEST(BenchGroup, TinyCountsReportEveryConfigurationWithCountsThatAddUp) {
  const RunResult r = cli({"bench", "group", "--count", "3000", "--rounds", "1", "--json"}, 120s);
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << r.out;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  const json doc = json::parse(lines[0]);
  EXPECT_EQ(doc["bench"], "group");
  EXPECT_EQ(doc["count"], 3000);
  EXPECT_EQ(doc["rounds"], 1);
  ASSERT_TRUE(doc.contains("metadata"));
  ASSERT_TRUE(doc["warnings"].is_array());
  const std::vector<std::pair<std::string, std::size_t>> want{
      {"subscriber", 1}, {"group-1", 1}, {"group-1-ack-through", 1}, {"group-2", 2}};
  ASSERT_EQ(doc["results"].size(), want.size()) << lines[0];
  for (std::size_t i = 0; i < want.size(); ++i) {
    const json& row = doc["results"][i];
    SCOPED_TRACE(row.dump());
    EXPECT_EQ(row["consumer"], want[i].first);
    EXPECT_EQ(row["members"], want[i].second);
    EXPECT_EQ(row["records"], 3000);
    ASSERT_EQ(row["consumed_per_member"].size(), want[i].second);
    std::uint64_t sum = 0;
    for (const json& n : row["consumed_per_member"]) sum += n.get<std::uint64_t>();
    EXPECT_EQ(sum, 3000u);
    EXPECT_EQ(row["redelivered"], 0);
    EXPECT_GT(row["records_per_s"].get<double>(), 0);
    EXPECT_GT(row["ns_per_record"].get<double>(), 0);
    EXPECT_LE(row["p50_ns"].get<std::uint64_t>(), row["p99_ns"].get<std::uint64_t>());
    EXPECT_LE(row["p99_ns"].get<std::uint64_t>(), row["max_ns"].get<std::uint64_t>());
  }
  EXPECT_EQ(doc["results"][0]["ratio_to_subscriber"], 1.0);
  EXPECT_TRUE(doc["ack_cost"]["ack_each_minus_ack_through_ns_per_record"].is_number());
  EXPECT_TRUE(doc["ack_cost"]["group_minus_subscriber_ns_per_record"].is_number());
}

}  // namespace
