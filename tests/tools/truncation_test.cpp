// A peer with write access truncates a channel's ring (ftruncate) while the `shmbus` tools read
// it. Touching a mapped page past the new end raises SIGBUS; the tools hold a MappingGuard
// (shmbus/mapping_guard.hpp), so they survive, say which channel was truncated to what size, and
// exit 1. A ring truncated before a tool opens it is caught by the size check at open.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/layout.hpp"
#include "shmbus/shmbus.hpp"
#include "shmbus/stats.hpp"
#include "tests/support/command.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr off_t kTruncatedSize = 4096;  // the ring header's page survives, the data does not

// A channel with five messages in its ring and no process attached.
void make_channel(const std::string& channel) {
  auto pub = Publisher::open(channel, small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(pub->try_publish(bytes_of(fmt::format("m{}", i))), PublishStatus::ok);
  }
}

// ftruncate from a process of its own, as a peer would.
void truncate_from_another_process(const std::string& channel, off_t bytes) {
  Child peer = Child::fork([path = ring_path(channel), bytes] {
    const int fd = ::open(path.c_str(), O_RDWR);
    if (fd < 0) return 2;
    return ::ftruncate(fd, bytes) == 0 ? 0 : 3;
  });
  const auto status = peer.wait(5s);
  ASSERT_TRUE(status && status->ok()) << (status ? status->describe() : "still running");
}

// Waits until `count` subscriber slots of `channel` are occupied.
bool wait_for_subscribers(const std::string& channel, std::size_t count) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto stats = read_channel_stats(channel);
    if (stats && stats->subscribers.size() >= count) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

std::string truncation_text(const std::string& channel) {
  return "channel '" + channel + "': its shared-memory object " + ring_path(channel) +
         " was truncated to 4096 bytes by another process";
}

// A long-running tool attached to the channel: the truncation happens while it reads.
void expect_tool_reports_truncation_while_reading(const std::string& channel,
                                                  const std::vector<std::string>& args) {
  std::vector<std::string> argv{SHMBUS_CLI};
  argv.insert(argv.end(), args.begin(), args.end());
  Child tool = Child::spawn(with_stderr_captured(argv));
  ASSERT_TRUE(wait_for_subscribers(channel, 1)) << tool.output();
  truncate_from_another_process(channel, kTruncatedSize);
  const auto status = tool.wait(10s);
  ASSERT_TRUE(status) << "still running: " << tool.output();
  EXPECT_TRUE(status->exited) << status->describe() << "\n" << tool.output();
  EXPECT_EQ(status->code, 1) << tool.output();
  EXPECT_NE(tool.output().find(truncation_text(channel)), std::string::npos) << tool.output();
}

TEST(Truncation, TailSurvivesTheRingTruncatedWhileItReadsAndSaysSo) {
  for (const char* policy : {"drop", "block"}) {
    ChannelGuard ch(unique_channel("trunc-tail"));
    make_channel(ch.name());
    expect_tool_reports_truncation_while_reading(
        ch.name(), {"tail", ch.name(), "--policy", policy, "--from", "earliest"});
  }
}

TEST(Truncation, RecordSurvivesTheRingTruncatedWhileItRecordsAndSaysSo) {
  ChannelGuard ch(unique_channel("trunc-record"));
  make_channel(ch.name());
  const std::string dir = ::testing::TempDir() + "/" + ch.name();
  expect_tool_reports_truncation_while_reading(ch.name(), {"record", ch.name(), "--dir", dir});
}

TEST(Truncation, ToolsOpeningATruncatedRingSayItWasTruncated) {
  ChannelGuard ch(unique_channel("trunc-open"));
  make_channel(ch.name());
  truncate_from_another_process(ch.name(), kTruncatedSize);
  for (const char* command : {"inspect", "stat"}) {
    const RunResult r = run_command(with_stderr_captured({SHMBUS_CLI, command, ch.name()}));
    EXPECT_TRUE(r.status.exited) << command << ": " << r.status.describe();
    EXPECT_EQ(r.status.code, 1) << command << ": " << r.out;
    EXPECT_NE(r.out.find("truncated"), std::string::npos) << command << ": " << r.out;
  }
  // ls lists every channel; one that cannot be read is listed with the reason.
  const RunResult ls = run_command({SHMBUS_CLI, "ls", "--json", "--interval-ms", "0"});
  ASSERT_TRUE(ls.status.ok()) << ls.status.describe();
  bool listed = false;
  const json listing = json::parse(ls.out);
  for (const json& c : listing["channels"]) {
    if (c["name"] != ch.name()) continue;
    listed = true;
    ASSERT_TRUE(c.contains("error")) << c.dump();
    EXPECT_NE(c["error"].get<std::string>().find("truncated"), std::string::npos) << c.dump();
  }
  EXPECT_TRUE(listed) << ls.out;
}

// The race the size check at open cannot close: the ring shrinks and grows back (its data now
// zeros) while inspect and stat read it. No run may end by a signal; a run that caught the
// truncation says so. The toggling goes on until the commands have run kRuns times (however slow
// they are in this build), within a minute.
TEST(Truncation, InspectAndStatNeverDieWhileThePeerTruncatesTheRingUnderThem) {
  constexpr int kRuns = 8;
  ChannelGuard ch(unique_channel("trunc-race"));
  make_channel(ch.name());
  const off_t full = static_cast<off_t>(core::ring_segment_size(small_options().capacity));
  // The test's word to the toggler to stop, in memory both processes share after the fork.
  void* shared = ::mmap(nullptr, sizeof(std::atomic<bool>), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(shared, MAP_FAILED);
  auto* stop = new (shared) std::atomic<bool>(false);
  Child toggler = Child::fork([path = ring_path(ch.name()), full, stop] {
    const int fd = ::open(path.c_str(), O_RDWR);
    if (fd < 0) return 2;
    const auto until = std::chrono::steady_clock::now() + 60s;
    // relaxed: a stop request only; no other data passes between the processes through it.
    while (!stop->load(std::memory_order_relaxed) && std::chrono::steady_clock::now() < until) {
      if (::ftruncate(fd, kTruncatedSize) != 0) return 3;
      ::usleep(200);
      if (::ftruncate(fd, full) != 0) return 3;
      ::usleep(300);
    }
    return 0;
  });
  int runs = 0;
  int caught_at_open = 0;   // the size check at open
  int caught_reading = 0;   // the guard, during the read
  while (runs < kRuns && toggler.running()) {
    for (const char* command : {"inspect", "stat"}) {
      const RunResult r = run_command(with_stderr_captured({SHMBUS_CLI, command, ch.name()}));
      ++runs;
      EXPECT_TRUE(r.status.exited) << command << ": " << r.status.describe() << "\n" << r.out;
      if (r.out.find("its shared-memory object") != std::string::npos) ++caught_reading;
      if (r.out.find("truncated (or extended)") != std::string::npos) ++caught_at_open;
    }
  }
  stop->store(true, std::memory_order_relaxed);  // relaxed: as the toggler's load
  const auto status = toggler.wait(5s);
  ::munmap(shared, sizeof(std::atomic<bool>));
  ASSERT_TRUE(status && status->ok()) << (status ? status->describe() : "still running");
  EXPECT_GE(runs, kRuns) << "the toggler stopped before the commands ran " << kRuns << " times";
  RecordProperty("runs", runs);
  RecordProperty("caught_at_open", caught_at_open);
  RecordProperty("caught_reading", caught_reading);
}

}  // namespace
}  // namespace shmbus
