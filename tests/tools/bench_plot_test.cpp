// `shmbus bench --json`'s trust fields on a real run, and bench/plot_bench.py turning real reports
// into PNG and SVG files. The runs are tiny (2000 round trips, 50 ms streams): a second or two.
// Figures are checked for shape and consistency only, never against timings.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/command.hpp"
#include "tests/tools/bench_field_shapes.hpp"
#include "tests/support/journal_files.hpp"

namespace {

using namespace std::chrono_literals;
using shmbus::test::lines_of;
using shmbus::test::RunResult;
using shmbus::test::run_command;
using shmbus::test::TempDir;

constexpr std::uint64_t kRoundTrips = 2000;
constexpr int kRounds = 2;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs `shmbus bench <args> --json`: the document on stdout, and stderr kept in `stderr_path`.
nlohmann::json bench_json(std::initializer_list<std::string> args, const std::string& stderr_path) {
  std::vector<std::string> argv{"/bin/sh", "-c", "err=$1; shift; exec \"$0\" \"$@\" 2>\"$err\"",
                                SHMBUS_CLI, stderr_path, "bench"};
  argv.insert(argv.end(), args);
  argv.push_back("--json");
  const RunResult r = run_command(argv, 120s);
  EXPECT_TRUE(r.status.ok()) << r.status.describe() << "\n" << read_text(stderr_path);
  const auto lines = lines_of(r.out);
  EXPECT_EQ(lines.size(), 1u) << r.out;
  return lines.empty() ? nlohmann::json{} : nlohmann::json::parse(lines[0]);
}

// The runs the tests below share, each made on first use: ctest runs every test in a process of
// its own, so a test pays only for the runs it reads.
class BenchReport : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    delete pingpong_;
    delete quiet_pingpong_;
    delete dir_;
  }
  static TempDir& dir() {
    if (dir_ == nullptr) dir_ = new TempDir("bench-plot");
    return *dir_;
  }
  // shmbus and raw-shm, two rounds, the default --max-spread; stderr in pingpong.err.
  static const nlohmann::json& pingpong() {
    if (pingpong_ == nullptr) {
      pingpong_ = new nlohmann::json(bench_json(
          {"pingpong", "--only", "shmbus", "--count", std::to_string(kRoundTrips), "--rounds",
           std::to_string(kRounds)},
          dir().file("pingpong.err")));
    }
    return *pingpong_;
  }
  // Two rounds: a spread ((max - min) / median) of two values is at most 2, so --max-spread 2 can
  // never warn, whatever the machine does. stderr in quiet.err.
  static const nlohmann::json& quiet_pingpong() {
    if (quiet_pingpong_ == nullptr) {
      quiet_pingpong_ = new nlohmann::json(bench_json(
          {"pingpong", "--only", "shmbus", "--count", "500", "--rounds", "2", "--max-spread", "2"},
          dir().file("quiet.err")));
    }
    return *quiet_pingpong_;
  }

 private:
  static TempDir* dir_;
  static nlohmann::json* pingpong_;
  static nlohmann::json* quiet_pingpong_;
};
TempDir* BenchReport::dir_ = nullptr;
nlohmann::json* BenchReport::pingpong_ = nullptr;
nlohmann::json* BenchReport::quiet_pingpong_ = nullptr;

TEST_F(BenchReport, MetadataNamesTheBuildTheMachineAndTheRun) {
  const nlohmann::json& m = pingpong().at("metadata");
  EXPECT_TRUE(shmbus::test::is_version(m.at("shmbus_version").get<std::string>()))
      << m.dump();
  EXPECT_FALSE(m.at("git_commit").get<std::string>().empty());
  EXPECT_FALSE(m.at("cpu_model").get<std::string>().empty());
  const auto cpus = m.at("cpus").get<int>();
  EXPECT_GE(cpus, 1);
  for (const auto& cpu : m.at("cpus_used")) {
    EXPECT_GE(cpu.get<int>(), 0);
    EXPECT_LT(cpu.get<int>(), cpus);
  }
  EXPECT_EQ(m.at("cpus_used").size(), pingpong().at("initiator_cpu").get<int>() < 0 ? 0u : 2u);
  EXPECT_EQ(m.at("kernel").get<std::string>().rfind("Linux ", 0), 0u) << m.dump();
  EXPECT_TRUE(shmbus::test::is_utc_date(m.at("date_utc").get<std::string>()))
      << m.dump();
  EXPECT_EQ(m.at("rounds"), kRounds);
  EXPECT_EQ(m.at("max_spread"), 0.25) << "the documented default";
}

TEST_F(BenchReport, EveryResultKeepsItsFiguresAndGainsSpreadsAndAWholeDistribution) {
  const nlohmann::json& results = pingpong().at("results");
  ASSERT_EQ(results.size(), 2u) << pingpong().dump();
  for (const nlohmann::json& row : results) {
    for (const char* key : {"transport", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns",
                            "ratio_p50_to_raw", "ratio_p999_to_raw"}) {
      EXPECT_TRUE(row.contains(key)) << key << ": " << row.dump();
    }
    const nlohmann::json& spread = row.at("spread");
    for (const char* key : {"p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"}) {
      ASSERT_TRUE(spread.contains(key)) << key << ": " << spread.dump();
      EXPECT_GE(spread.at(key).get<double>(), 0.0);
      EXPECT_LE(spread.at(key).get<double>(), 2.0) << "two rounds cannot spread further";
    }
    const nlohmann::json& lines = row.at("distribution");
    ASSERT_GE(lines.size(), 10u) << row.dump();
    EXPECT_EQ(lines.front().at("percentile"), 0.0);
    for (std::size_t i = 1; i < lines.size(); ++i) {
      EXPECT_GT(lines[i].at("percentile").get<double>(), lines[i - 1].at("percentile").get<double>());
      EXPECT_GE(lines[i].at("value_ns").get<std::uint64_t>(),
                lines[i - 1].at("value_ns").get<std::uint64_t>());
      EXPECT_GE(lines[i].at("count").get<std::uint64_t>(),
                lines[i - 1].at("count").get<std::uint64_t>());
    }
    // Every timed round trip of every round, closed by the largest of them.
    EXPECT_EQ(lines.back().at("percentile"), 1.0);
    EXPECT_EQ(lines.back().at("count"), kRoundTrips * kRounds) << row.at("transport");
    EXPECT_GE(lines.back().at("value_ns").get<std::uint64_t>(), row.at("max_ns").get<std::uint64_t>());
  }
}

TEST_F(BenchReport, WarningsInTheJsonAreTheOnesOnStderr) {
  const nlohmann::json& report = pingpong();  // runs the bench, which writes pingpong.err
  std::vector<std::string> on_stderr;
  for (const std::string& line : lines_of(read_text(dir().file("pingpong.err")))) {
    const std::string prefix = "shmbus bench: warning: ";
    if (line.rfind(prefix, 0) == 0) on_stderr.push_back(line.substr(prefix.size()));
  }
  EXPECT_EQ(report.at("warnings").get<std::vector<std::string>>(), on_stderr);
  const nlohmann::json& quiet = quiet_pingpong();
  EXPECT_EQ(quiet.at("metadata").at("max_spread"), 2.0);
  EXPECT_TRUE(quiet.at("warnings").empty()) << quiet.at("warnings").dump();
  EXPECT_EQ(read_text(dir().file("quiet.err")).find("warning"), std::string::npos);
}

// Debian's interpreter, where python3-matplotlib installs; any python3 on PATH otherwise.
std::string python() { return ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3"; }

TEST_F(BenchReport, PlotScriptWritesNonEmptyPngAndSvgFiles) {
  const nlohmann::json throughput = bench_json(
      {"throughput", "--only", "shmbus", "--duration", "0.05", "--rounds", "1"},
      dir().file("throughput.err"));
  ASSERT_EQ(throughput.at("bench"), "throughput");
  std::ofstream(dir().file("pingpong.json")) << pingpong().dump();
  std::ofstream(dir().file("throughput.json")) << throughput.dump();
  const std::string out = dir().file("plots");
  const RunResult r = run_command({python(), std::string(SHMBUS_SOURCE_DIR) + "/bench/plot_bench.py",
                                   dir().file("pingpong.json"), dir().file("throughput.json"),
                                   "--out", out},
                                  120s);
  if (r.status.exited && r.status.code == 2) {
    GTEST_SKIP() << "matplotlib is missing (scripts/setup.sh installs python3-matplotlib)";
  }
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << "\n" << r.out;
  const std::vector<std::string> expected{"pingpong-latency.png", "pingpong-latency.svg",
                                          "throughput.png", "throughput.svg"};
  std::vector<std::string> printed;
  for (const std::string& line : lines_of(r.out)) {
    printed.push_back(std::filesystem::path(line).filename().string());
  }
  EXPECT_EQ(printed, expected);
  for (const std::string& name : expected) {
    const std::string text = read_text(out + "/" + name);
    ASSERT_GT(text.size(), 1000u) << name;
    if (name.ends_with(".png")) {
      EXPECT_EQ(text.substr(1, 3), "PNG") << name;
    } else {
      EXPECT_NE(text.find("<svg"), std::string::npos) << name;
      EXPECT_NE(text.find("shmbus"), std::string::npos) << name << ": the title names the run";
    }
  }
}

TEST(BenchPlotScript, RefusesAFileThatIsNotABenchReport) {
  TempDir dir("bench-plot-bad");
  std::ofstream(dir.file("other.json")) << R"({"not":"a report"})";
  const RunResult r = run_command(
      {python(), std::string(SHMBUS_SOURCE_DIR) + "/bench/plot_bench.py", dir.file("other.json"),
       "--out", dir.path()},
      60s);
  // Refused before matplotlib is loaded, so this holds with or without it.
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.status.describe();
}

}  // namespace
