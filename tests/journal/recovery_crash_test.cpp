// Recovery killed (SIGKILL, a real process) at random moments while it repairs a journal that a
// crash left with every artefact recovery handles: a durable prefix, records after it that were
// never made durable with a hole of zeros among them, a later segment beyond that hole, garbage
// at the end, an index without its segment and a segment still being created. A second recovery
// must then succeed and lose nothing that was reported durable; verify finds no damage before the
// durable point. SHMBUS_RECOVERY_CRASH_CASES sets the number of kills (default 20).
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "journal/durable_mark.hpp"
#include "journal/verify.hpp"
#include "journal/writer.hpp"
#include "tests/journal/writer_testing.hpp"
#include "tests/support/process.hpp"

namespace shmbus::journal::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using ::shmbus::test::Child;

constexpr std::uint64_t kDurable = 600;   // reported durable before the crash
constexpr std::uint64_t kInFlight = 400;  // written after, never made durable
std::size_t size_for(std::uint64_t s) { return 50 + (s * 31) % 900; }

WriterOptions options_for(const std::string& dir, FsyncPolicy policy) {
  WriterOptions o = small_options(dir);
  o.segment_bytes = 128 << 10;
  o.fsync = policy;
  return o;
}

// The journal a crash left (see the file comment), built once and copied for every case.
void build_crashed_journal(const std::string& dir) {
  {
    auto w = JournalWriter::open(options_for(dir, FsyncPolicy::batch));
    ASSERT_TRUE(w) << w.error().message;
    for (std::uint64_t s = 1; s <= kDurable; ++s) append_or_wait(*w, s, 1, payload_for(s, size_for(s)));
    ASSERT_TRUE(w->drain());
    ASSERT_EQ(w->durable_sequence(), kDurable);
  }
  const std::string durable_segment = segment_paths(dir).back();
  const std::uint64_t durable_end = size_of(durable_segment);
  {
    auto w = JournalWriter::open(options_for(dir, FsyncPolicy::never));
    ASSERT_TRUE(w) << w.error().message;
    for (std::uint64_t s = kDurable + 1; s <= kDurable + kInFlight; ++s) {
      append_or_wait(*w, s, 1, payload_for(s, size_for(s)));
    }
    ASSERT_TRUE(w->drain());
  }
  const auto segments = segment_paths(dir);
  ASSERT_GE(segments.size(), 2u);
  // A hole of zeros among the bytes never made durable, with a segment after it: writes
  // completed out of order.
  const std::string holed = segments[segments.size() - 2];
  ASSERT_GE(holed, durable_segment);
  std::vector<std::byte> holed_bytes = read_file(holed);
  const std::uint64_t past = std::max<std::uint64_t>(
      holed == durable_segment ? durable_end : 0, holed_bytes.size() / 2);
  std::vector<std::uint64_t> starts;  // of the records in the holed segment past `past`
  for (const ReadRecord& r : read_journal(dir).records) {
    if (r.segment == holed && r.offset >= past) starts.push_back(r.offset);
  }
  ASSERT_GE(starts.size(), 8u);
  std::fill(holed_bytes.begin() + static_cast<std::ptrdiff_t>(starts[1]),
            holed_bytes.begin() + static_cast<std::ptrdiff_t>(starts[5]), std::byte{0});
  write_file(holed, holed_bytes);
  ::shmbus::test::append_to_file(segments.back(), std::vector<std::byte>(777, std::byte{0x3c}));
  write_file(dir + "/" + index_file_name(99'999'999), std::vector<std::byte>(32, std::byte{1}));
  write_file(dir + "/" + segment_file_name(kDurable + kInFlight + 1) + ".creating",
             std::vector<std::byte>(100, std::byte{2}));
}

void copy_dir(const std::string& from, const std::string& to) {
  for (const auto& e : std::filesystem::directory_iterator(from)) {
    if (e.path().filename() == "journal.lock") continue;
    write_file(to + "/" + e.path().filename().string(), read_file(e.path().string()));
  }
}

void expect_durable_records_intact(const std::string& dir) {
  const ReadJournal j = read_journal(dir);
  ASSERT_GE(j.records.size(), kDurable);
  for (std::uint64_t s = 1; s <= kDurable; ++s) {
    ASSERT_EQ(j.records[s - 1].sequence, s);
    ASSERT_EQ(j.records[s - 1].payload, payload_for(s, size_for(s))) << "sequence " << s;
  }
  auto verdict = verify(dir);
  ASSERT_TRUE(verdict) << verdict.error().message;
  for (const DamagedPlace& d : verdict->damage) {
    EXPECT_GT(d.expected_sequence, kDurable) << d.segment << " offset " << d.offset << ": " << d.what;
  }
}

std::vector<std::byte> bytes_of_text(const std::string& text) {
  const auto* begin = reinterpret_cast<const std::byte*>(text.data());
  return std::vector<std::byte>(begin, begin + text.size());
}

std::size_t case_count() {
  const char* v = std::getenv("SHMBUS_RECOVERY_CRASH_CASES");
  return v != nullptr ? static_cast<std::size_t>(std::strtoul(v, nullptr, 10)) : 20;
}

TEST(JournalRecoveryCrash, ARecoveryKilledAtAnyMomentIsFinishedByTheNextOneLosingNothingDurable) {
  TempDir crashed("recovery-crashed");
  build_crashed_journal(crashed.path());
  if (HasFatalFailure()) return;

  // How long an uninterrupted recovery takes: the window the kills are spread over.
  Clock::duration recovery_time{};
  {
    TempDir whole("recovery-whole");
    copy_dir(crashed.path(), whole.path());
    RecoveryReport report;
    const auto started = Clock::now();
    auto w = JournalWriter::open(options_for(whole.path(), FsyncPolicy::batch), &report);
    recovery_time = Clock::now() - started;
    ASSERT_TRUE(w) << w.error().message;
    EXPECT_FALSE(report.crash_repairs.empty()) << "the hole is repaired";
    EXPECT_FALSE(report.removed.empty()) << "the leftovers are removed";
  }
  const auto window_us = std::max<std::int64_t>(
      200, 2 * std::chrono::duration_cast<std::chrono::microseconds>(recovery_time).count());

  std::mt19937_64 rng(7);
  std::size_t killed_during = 0;
  const std::size_t cases = case_count();
  for (std::size_t k = 0; k < cases; ++k) {
    SCOPED_TRACE(testing::Message() << "case " << k);
    TempDir work("recovery-kill");
    TempDir markers("recovery-markers");
    copy_dir(crashed.path(), work.path());
    const std::string dir = work.path();
    const std::string finished = markers.file("finished");  // recovery returned (then: how)
    Child child = Child::fork([dir, finished] {
      (void)::write(1, "START\n", 6);
      auto w = JournalWriter::open(options_for(dir, FsyncPolicy::batch));
      // Written aside, then renamed: a kill between the create and the write must not leave an
      // empty marker that reads as a recovery that returned nothing.
      write_file(finished + ".part", bytes_of_text(w ? "ok" : w.error().message));
      std::filesystem::rename(finished + ".part", finished);
      return w ? 0 : 1;
    });
    ASSERT_TRUE(child.wait_for_line("START", 10s)) << child.output();
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % static_cast<std::uint64_t>(window_us)));
    child.kill_hard();
    if (!std::filesystem::exists(finished)) {
      ++killed_during;
    } else {
      const std::vector<std::byte> said = read_file(finished);
      ASSERT_EQ(std::string(reinterpret_cast<const char*>(said.data()), said.size()), "ok");
    }

    {
      auto w = JournalWriter::open(options_for(dir, FsyncPolicy::batch));
      ASSERT_TRUE(w) << "the second recovery refused: " << w.error().message;
      EXPECT_GT(w->next_sequence(), kDurable);
      EXPECT_GE(w->durable_sequence(), kDurable);
    }
    expect_durable_records_intact(dir);
    if (HasFatalFailure()) return;
  }
  std::printf("recovery crash: %zu kills, %zu before recovery finished; uninterrupted recovery "
              "%lld us\n",
              cases, killed_during,
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::microseconds>(recovery_time).count()));
}

}  // namespace
}  // namespace shmbus::journal::test
