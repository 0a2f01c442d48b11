// The `shmbus` command's scripted contract, checked by running the built binary (SHMBUS_CLI) as a
// subprocess: pub/tail round trips (generated payloads and stdin lines), --help and argument
// errors, tail of a missing channel. `shmbus bench` and `demo` are in bench_cli_test.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/command.hpp"
#include "tests/support/process.hpp"

namespace {

using namespace std::chrono_literals;
using shmbus::test::ChannelGuard;
using shmbus::test::Child;
using shmbus::test::ExitStatus;
using shmbus::test::lines_of;
using shmbus::test::RunResult;
using shmbus::test::run_command;
using shmbus::test::with_stderr_captured;
using shmbus::test::unique_channel;

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

unsigned hex_byte(const std::string& hex, std::size_t index) {
  return static_cast<unsigned>(std::stoul(hex.substr(2 * index, 2), nullptr, 16));
}

std::uint64_t hex_u64_le(const std::string& hex) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v |= std::uint64_t{hex_byte(hex, i)} << (8 * i);
  return v;
}

TEST(Cli, PubCountCreatesChannelAndTailJsonPrintsEveryGeneratedRecord) {
  ChannelGuard channel(unique_channel("cli-json"));
  const RunResult pub = cli({"pub", channel.name(), "--count", "50", "--size", "64"});
  ASSERT_TRUE(pub.status.ok()) << pub.status.describe();

  const RunResult tail = cli(
      {"tail", channel.name(), "--from", "earliest", "--count", "50", "--format", "json"});
  ASSERT_TRUE(tail.status.ok()) << tail.status.describe() << "\n" << tail.out;
  const auto lines = lines_of(tail.out);
  ASSERT_EQ(lines.size(), 50u) << tail.out;

  std::int64_t last_time = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE("line " + std::to_string(i + 1) + ": " + lines[i]);
    const nlohmann::json j = nlohmann::json::parse(lines[i]);  // throws (test fails) if not JSON
    ASSERT_TRUE(j.is_object());
    const std::uint64_t seq = i + 1;
    EXPECT_EQ(j.at("seq").get<std::uint64_t>(), seq);
    const auto time_ns = j.at("time_ns").get<std::int64_t>();
    EXPECT_GT(time_ns, 0);
    EXPECT_GE(time_ns, last_time);
    last_time = time_ns;
    EXPECT_EQ(j.at("size").get<std::uint64_t>(), 64u);
    const auto hex = j.at("payload_hex").get<std::string>();
    ASSERT_EQ(hex.size(), 128u);
    EXPECT_EQ(hex_u64_le(hex), seq);  // bytes 0-7: the counter, little endian
    for (std::size_t b : {std::size_t{8}, std::size_t{9}, std::size_t{40}, std::size_t{63}}) {
      EXPECT_EQ(hex_byte(hex, b), (seq + b) % 256) << "byte " << b;
    }
  }
}

TEST(Cli, PubPublishesStdinLinesAndTailTextShowsThemInOrder) {
  ChannelGuard channel(unique_channel("cli-lines"));
  const RunResult pub =
      run_command({"/bin/sh", "-c", "printf 'hello\\nworld\\n' | \"$0\" pub \"$1\"", SHMBUS_CLI,
           channel.name()});
  ASSERT_TRUE(pub.status.ok()) << pub.status.describe();

  const RunResult tail = cli({"tail", channel.name(), "--from", "earliest", "--count", "2"});
  ASSERT_TRUE(tail.status.ok()) << tail.status.describe() << "\n" << tail.out;
  const auto lines = lines_of(tail.out);
  ASSERT_EQ(lines.size(), 2u) << tail.out;
  EXPECT_NE(lines[0].find("seq=1 "), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("size=5"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("hello"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("seq=2 "), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("world"), std::string::npos) << lines[1];
}

TEST(Cli, HelpOnEverySubcommandExitsZeroWithUsageOnStdout) {
  for (const char* sub : {"pub", "tail"}) {  // bench and demo: bench_cli_test.cpp
    SCOPED_TRACE(sub);
    const RunResult r = cli({sub, "--help"});
    EXPECT_TRUE(r.status.ok()) << r.status.describe();
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(std::string("shmbus ") + sub), std::string::npos) << r.out;
  }
  const RunResult top = cli({"--help"});
  EXPECT_TRUE(top.status.ok()) << top.status.describe();
  EXPECT_NE(top.out.find("Usage:"), std::string::npos) << top.out;
}

TEST(Cli, UnknownSubcommandExitsNonZeroWithMessageOnStderr) {
  const RunResult r = cli_stderr({"frobnicate"});
  EXPECT_TRUE(r.status.exited);
  EXPECT_NE(r.status.code, 0);
  EXPECT_NE(r.out.find("frobnicate"), std::string::npos) << r.out;

  // And nothing on stdout.
  const RunResult out = cli({"frobnicate"});
  EXPECT_FALSE(out.status.ok());
  EXPECT_EQ(out.out, "");
}

TEST(Cli, BadFlagValueExitsNonZeroWithMessageOnStderr) {
  const RunResult r = cli_stderr({"tail", "some-channel", "--policy", "bogus"});
  EXPECT_TRUE(r.status.exited);
  EXPECT_NE(r.status.code, 0);
  EXPECT_NE(r.out.find("--policy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bogus"), std::string::npos) << r.out;

  const RunResult out = cli({"tail", "some-channel", "--policy", "bogus"});
  EXPECT_FALSE(out.status.ok());
  EXPECT_EQ(out.out, "");
}

TEST(Cli, TailOfMissingChannelFailsPromptlyNamingTheChannel) {
  // The channel is never created; Subscriber::open gives up after its open timeout (2 s).
  ChannelGuard channel(unique_channel("cli-missing"));
  const auto start = std::chrono::steady_clock::now();
  const RunResult r = cli_stderr({"tail", channel.name(), "--timeout-ms", "500"}, 15s);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.status.exited) << r.status.describe();
  EXPECT_NE(r.status.code, 0);
  EXPECT_NE(r.out.find("'" + channel.name() + "'"), std::string::npos) << r.out;
  EXPECT_LT(elapsed, 10s);
}

}  // namespace
