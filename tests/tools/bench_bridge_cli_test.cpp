// `shmbus bench bridge` run as the built binary (SHMBUS_CLI) on a tiny configuration: it starts its
// own nats-server, carries 2000 records of 64 bytes through bridge out, JetStream and bridge in, and
// reports the throughput and paced runs; the test checks the report's fields, that every record
// arrived (the paced run's latency distribution holds one sample per record: the bench verifies
// each one's sequence and content, and fails the run on anything lost, repeated or out of order),
// and that it leaves no channel behind. The record check itself is tested directly, on records
// altered in each way it must catch. Built and run only with SHMBUS_BENCH (tests/CMakeLists.txt).
#include <signal.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bridge/bridge_run.hpp"
#include "tests/support/command.hpp"

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using shmbus::test::lines_of;
using shmbus::test::RunResult;
using shmbus::test::run_command;
using shmbus::test::with_stderr_captured;

// The shared-memory objects of bench bridge's channels (shmbus.bench.bridge.<a|b>.<pid>...) whose
// bench process has ended: another test of this program may run a bench at the same time
// (ctest -j2), and its objects are not left behind while it runs.
std::set<std::string> bench_bridge_objects() {
  std::set<std::string> names;
  constexpr std::string_view kPrefix = "shmbus.bench.bridge.";
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(kPrefix) || name.size() < kPrefix.size() + 3) continue;
    const std::string rest = name.substr(kPrefix.size() + 2);  // after "a." or "b."
    const long pid = std::strtol(rest.c_str(), nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) == 0) continue;  // still running
    names.insert(name);
  }
  return names;
}

// The samples of a distribution: the count of its last line (samples at or below the maximum).
std::uint64_t samples_of(const json& distribution) {
  if (!distribution.is_array() || distribution.empty()) return 0;
  return distribution.back().at("count").get<std::uint64_t>();
}

TEST(BenchBridgeCli, CarriesEveryRecordThroughBothBridgesAndReportsThroughputAndLatency) {
  const std::set<std::string> before = bench_bridge_objects();
  const RunResult r = run_command({SHMBUS_CLI, "bench", "bridge", "--count", "2000", "--size",
                                   "64", "--rounds", "1", "--rate", "20000", "--json"},
                                  180s);
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << "\n" << r.out;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  const json doc = json::parse(lines[0]);
  EXPECT_EQ(doc.at("bench"), "bridge");
  EXPECT_EQ(doc.at("nats"), "started");
  EXPECT_EQ(doc.at("url").get<std::string>().rfind("nats://127.0.0.1:", 0), 0u) << doc.at("url");
  EXPECT_EQ(doc.at("count"), 2000);
  EXPECT_EQ(doc.at("rate"), 20000.0);
  EXPECT_EQ(doc.at("rounds"), 1);
  EXPECT_EQ(doc.at("actors"), 5);
  EXPECT_GE(doc.at("cpus").get<unsigned>(), 1u);
  EXPECT_NE(doc.at("note").get<std::string>().find("nats-server"), std::string::npos);
  ASSERT_TRUE(doc.contains("metadata"));
  ASSERT_TRUE(doc.at("warnings").is_array());

  ASSERT_EQ(doc.at("results").size(), 1u) << lines[0];
  const json& row = doc.at("results")[0];
  SCOPED_TRACE(row.dump());
  EXPECT_EQ(row.at("size"), 64);
  EXPECT_EQ(row.at("records"), 2000);
  const json& throughput = row.at("throughput");
  EXPECT_GT(throughput.at("records_per_s").get<double>(), 0);
  EXPECT_DOUBLE_EQ(throughput.at("mb_per_s").get<double>(),
                   throughput.at("records_per_s").get<double>() * 64 / 1e6);
  const json& paced = row.at("paced");
  EXPECT_EQ(paced.at("rate"), 20000.0);
  EXPECT_GT(paced.at("records_per_s").get<double>(), 0);
  const auto p50 = paced.at("p50_ns").get<std::uint64_t>();
  const auto p99 = paced.at("p99_ns").get<std::uint64_t>();
  const auto p999 = paced.at("p999_ns").get<std::uint64_t>();
  const auto max = paced.at("max_ns").get<std::uint64_t>();
  EXPECT_GT(p50, 0u);
  EXPECT_LE(p50, p99);
  EXPECT_LE(p99, p999);
  EXPECT_LE(p999, max);
  // One latency sample per record received and checked.
  EXPECT_EQ(samples_of(paced.at("distribution")), 2000u);

  // Both channels of every run are removed (the server and its directory go with the command).
  const std::set<std::string> after = bench_bridge_objects();
  for (const std::string& name : after) {
    EXPECT_TRUE(before.count(name) == 1) << "left behind: /dev/shm/" << name;
  }
}

TEST(BenchBridgeCli, TableSaysTheActorsShareTheCpus) {
  const RunResult r = run_command(
      with_stderr_captured({SHMBUS_CLI, "bench", "bridge", "--count", "300", "--size", "16,100",
                            "--rounds", "1"}),
      180s);
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << "\n" << r.out;
  // stderr: one progress line per run, two runs per size.
  EXPECT_NE(r.out.find("bridge bench 16 B throughput, round 1/1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bridge bench 100 B paced at 10000/s, round 1/1"), std::string::npos)
      << r.out;
  const RunResult table = run_command({SHMBUS_CLI, "bench", "bridge", "--count", "300", "--size",
                                       "16", "--rounds", "1"},
                                      180s);
  ASSERT_TRUE(table.status.ok()) << table.status.describe() << "\n" << table.out;
  EXPECT_NE(table.out.find("5 actors (publisher, bridge out, nats-server, bridge in, subscriber)"),
            std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("p99.9 us"), std::string::npos) << table.out;
}

TEST(BenchBridgeCli, RefusesRecordsTooSmallForTheTimeAndIndexAndSizeListsElsewhere) {
  const RunResult small = run_command(
      with_stderr_captured({SHMBUS_CLI, "bench", "bridge", "--count", "10", "--size", "8"}), 30s);
  EXPECT_EQ(small.status.code, 1) << small.status.describe() << small.out;
  EXPECT_NE(small.out.find("record size 8 is out of range: 16"), std::string::npos) << small.out;
  const RunResult list = run_command(
      with_stderr_captured({SHMBUS_CLI, "bench", "group", "--size", "64,128"}), 30s);
  EXPECT_EQ(list.status.code, 2) << list.status.describe() << list.out;
  EXPECT_NE(list.out.find("--size"), std::string::npos) << list.out;
}

// The check the subscriber applies to every record catches each way a record can be wrong.
TEST(BenchBridgeRecord, CheckAcceptsTheRecordAndCatchesEveryAlteration) {
  constexpr std::size_t kSize = 64;
  std::vector<std::byte> record(kSize);
  shmbus::bench::fill_bridge_record(record.data(), kSize, 7, 123456789);
  std::int64_t send_ns = 0;
  EXPECT_EQ(shmbus::bench::check_bridge_record(record.data(), kSize, kSize, 7, &send_ns), "");
  EXPECT_EQ(send_ns, 123456789);

  EXPECT_NE(shmbus::bench::check_bridge_record(record.data(), kSize, kSize, 8, &send_ns)
                .find("record 7 arrived where 8 was due"),
            std::string::npos);
  EXPECT_NE(shmbus::bench::check_bridge_record(record.data(), kSize - 1, kSize, 7, &send_ns)
                .find("has 63 bytes, expected 64"),
            std::string::npos);
  for (const std::size_t at : {std::size_t{16}, std::size_t{40}, kSize - 1}) {
    std::vector<std::byte> altered = record;
    altered[at] ^= std::byte{0x01};
    const std::string error =
        shmbus::bench::check_bridge_record(altered.data(), kSize, kSize, 7, &send_ns);
    EXPECT_NE(error.find("payload byte " + std::to_string(at)), std::string::npos) << error;
  }
  // Another record's payload under the right index bytes is caught by its content.
  std::vector<std::byte> other(kSize);
  shmbus::bench::fill_bridge_record(other.data(), kSize, 9, 1);
  std::memcpy(other.data() + 8, record.data() + 8, 8);
  EXPECT_NE(shmbus::bench::check_bridge_record(other.data(), kSize, kSize, 7, &send_ns), "");
}

}  // namespace
