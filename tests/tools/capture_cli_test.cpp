// Captures of `shmbus tail`/`replay` republished by `shmbus pub`, run as subprocesses: raw and
// json round trips compared byte for byte by sequence, replay --count and --follow, pub's JSON
// report, and the errors of bad captures and options.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/command.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/process.hpp"
#include "tools/format.hpp"
#include "tools/record_format.hpp"

namespace {

using namespace std::chrono_literals;
using shmbus::test::ChannelGuard;
using shmbus::test::Child;
using shmbus::test::journal_payload;
using shmbus::test::lines_of;
using shmbus::test::read_whole_file;
using shmbus::test::run_command;
using shmbus::test::RunResult;
using shmbus::test::SegmentBuilder;
using shmbus::test::TempDir;
using shmbus::test::unique_channel;
using shmbus::test::write_whole_file;

// `shmbus ARGS...` through /bin/sh: stdin from `in` (or /dev/null), stdout to `out` if given
// (else captured), stderr captured into `err` if given.
struct Shell {
  std::string in = "/dev/null";
  std::string out;
  std::string err;
};
RunResult shmbus_cli(const std::vector<std::string>& args, const Shell& shell = {}) {
  std::string script = "exec \"$0\" \"$@\" <'" + shell.in + "'";
  if (!shell.out.empty()) script += " >'" + shell.out + "'";
  if (!shell.err.empty()) script += " 2>'" + shell.err + "'";
  std::vector<std::string> argv{"/bin/sh", "-c", script, SHMBUS_CLI};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

// The file's contents; empty if it does not exist (yet: the shell creates it as the child starts).
std::string file_text(const std::string& path) {
  if (!std::filesystem::exists(path)) return {};
  const auto bytes = read_whole_file(path);
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::vector<std::byte> bytes_of(std::string_view text) {
  const auto* p = reinterpret_cast<const std::byte*>(text.data());
  return {p, p + text.size()};
}

// Payloads no line format could carry: empty, newlines, NUL, invalid UTF-8, text, 3000 bytes.
std::vector<std::vector<std::byte>> awkward_payloads() {
  return {{},
          bytes_of(std::string_view("a\nb\r\n\0z", 7)),
          bytes_of("\xff\xfe"
                   "SBRD"),
          bytes_of("w\xc3\xb6rld \"quoted\" \\"),
          journal_payload(4, 3000),
          bytes_of("\n")};
}

// Every record of channel `name` from its first, as {seq, payload} from tail's json lines.
std::vector<std::pair<std::uint64_t, std::vector<std::byte>>> channel_records(
    const std::string& name, std::size_t count) {
  const RunResult tail = shmbus_cli({"tail", name, "--from", "earliest", "--count",
                                     std::to_string(count), "--json", "--timeout-ms", "3000"});
  EXPECT_TRUE(tail.status.ok()) << tail.status.describe() << "\n" << tail.out;
  std::vector<std::pair<std::uint64_t, std::vector<std::byte>>> records;
  for (const auto& line : lines_of(tail.out)) {
    const auto j = nlohmann::json::parse(line);
    const auto hex = j.at("payload_hex").get<std::string>();
    std::vector<std::byte> payload(hex.size() / 2);
    for (std::size_t i = 0; i < payload.size(); ++i) {
      payload[i] = static_cast<std::byte>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
    }
    records.emplace_back(j.at("seq").get<std::uint64_t>(), std::move(payload));
  }
  return records;
}

void expect_records(const std::vector<std::pair<std::uint64_t, std::vector<std::byte>>>& got,
                    std::uint64_t first_sequence, const std::vector<std::vector<std::byte>>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].first, first_sequence + i);
    EXPECT_EQ(got[i].second, want[i]) << "record " << i;
  }
}

TEST(CaptureCli, TailRawAndJsonCapturesRepublishByteForByte) {
  TempDir dir("capture");
  const auto payloads = awkward_payloads();
  std::string capture;
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    shmbus::tools::append_raw_data(capture, 100 + i, 1, payloads[i]);
  }
  write_whole_file(dir.file("made.bin"), bytes_of(capture));

  ChannelGuard a(unique_channel("cap-a")), b(unique_channel("cap-b")), c(unique_channel("cap-c"));
  const RunResult pub = shmbus_cli({"pub", a.name(), "--format", "raw", "--capacity", "65536"},
                                   Shell{dir.file("made.bin"), "", ""});
  ASSERT_TRUE(pub.status.ok()) << pub.status.describe();
  expect_records(channel_records(a.name(), payloads.size()), 1, payloads);

  // raw: tail -> pub -> tail
  const RunResult raw = shmbus_cli({"tail", a.name(), "--from", "earliest", "--count",
                                    std::to_string(payloads.size()), "--format", "raw"},
                                   Shell{"/dev/null", dir.file("tail.bin"), ""});
  ASSERT_TRUE(raw.status.ok()) << raw.status.describe();
  ASSERT_TRUE(shmbus_cli({"pub", b.name(), "--format", "raw", "--capacity", "65536"},
                         Shell{dir.file("tail.bin"), "", ""})
                  .status.ok());
  expect_records(channel_records(b.name(), payloads.size()), 1, payloads);

  // json: tail -> pub -> tail
  ASSERT_TRUE(shmbus_cli({"tail", b.name(), "--from", "earliest", "--count",
                          std::to_string(payloads.size()), "--format", "json"},
                         Shell{"/dev/null", dir.file("tail.json"), ""})
                  .status.ok());
  ASSERT_TRUE(shmbus_cli({"pub", c.name(), "--format", "json", "--capacity", "65536"},
                         Shell{dir.file("tail.json"), "", ""})
                  .status.ok());
  expect_records(channel_records(c.name(), payloads.size()), 1, payloads);
}

// Records 1-5, a gap of 6-7, records 8-10: payload journal_payload(s, 40 + s).
void build_journal(const std::string& dir, std::uint64_t first, std::uint64_t last,
                   std::uint64_t segment_number) {
  SegmentBuilder segment(dir, first, segment_number);
  for (std::uint64_t s = first; s <= last; ++s) {
    if (s == 6) {
      segment.gap(6, 2, 6'000'000);
      s = 7;
      continue;
    }
    segment.data(s, static_cast<std::int64_t>(s) * 1'000'000, journal_payload(s, 40 + s));
  }
  segment.write();
  segment.write_index();
}

TEST(CaptureCli, ReplayRawRepublishesTheJournalsPayloadsAndCountsItsGaps) {
  TempDir dir("capture-replay");
  build_journal(dir.path(), 1, 10, 0);
  const RunResult raw = shmbus_cli({"replay", "--dir", dir.path(), "--format", "raw"},
                                   Shell{"/dev/null", dir.file("replay.bin"), ""});
  ASSERT_TRUE(raw.status.ok()) << raw.status.describe();
  ChannelGuard channel(unique_channel("cap-replay"));
  const RunResult pub =
      shmbus_cli({"pub", channel.name(), "--format", "raw", "--json", "--capacity", "65536"},
                 Shell{dir.file("replay.bin"), "", ""});
  ASSERT_TRUE(pub.status.ok()) << pub.status.describe() << "\n" << pub.out;
  const auto report = nlohmann::json::parse(pub.out);
  EXPECT_EQ(report.at("input"), "raw");
  EXPECT_EQ(report.at("messages"), 8);
  EXPECT_EQ(report.at("first_sequence"), 1);
  EXPECT_EQ(report.at("last_sequence"), 8);
  EXPECT_EQ(report.at("capture_loss_records"), 1);
  EXPECT_EQ(report.at("capture_lost_sequences"), 2);
  EXPECT_EQ(report.at("back_pressure_waits"), 0);
  EXPECT_EQ(report.at("exit_code"), 0);
  EXPECT_FALSE(report.contains("error"));
  std::vector<std::vector<std::byte>> want;
  std::uint64_t bytes = 0;
  for (std::uint64_t s : {1, 2, 3, 4, 5, 8, 9, 10}) {
    want.push_back(journal_payload(s, 40 + s));
    bytes += 40 + s;
  }
  EXPECT_EQ(report.at("bytes"), bytes);
  expect_records(channel_records(channel.name(), want.size()), 1, want);
}

TEST(CaptureCli, ReplayCountStopsAfterNDataRecordsAndJsonIsItsFormatSynonym) {
  TempDir dir("capture-count");
  build_journal(dir.path(), 1, 10, 0);
  const RunResult r =
      shmbus_cli({"replay", "--dir", dir.path(), "--from", "4", "--count", "3", "--json"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe();
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;  // 4, 5, the gap, 8
  EXPECT_EQ(nlohmann::json::parse(lines[0]).at("seq"), 4);
  EXPECT_EQ(nlohmann::json::parse(lines[2]).at("type"), "gap");
  EXPECT_EQ(nlohmann::json::parse(lines[3]).at("seq"), 8);

  const RunResult both = shmbus_cli({"replay", "--dir", dir.path(), "--json", "--format", "text"},
                                    Shell{"/dev/null", "/dev/null", dir.file("err")});
  EXPECT_EQ(both.status.code, 2);
  EXPECT_NE(file_text(dir.file("err")).find("--format excludes --json"), std::string::npos)
      << file_text(dir.file("err"));
}

TEST(CaptureCli,
     ReplayFollowPrintsWhatTheJournalerAppendsEndsCleanlyOnSigtermAndShowsNoProgressOnAPipe) {
  TempDir dir("capture-follow");
  build_journal(dir.path(), 1, 5, 0);
  const std::string out = dir.file("out.json");
  // stdout to a file, stderr on the pipe the test reads: a progress line would show there.
  Child replay = Child::spawn({"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1 >'" + out + "'",
                               SHMBUS_CLI, "replay", "--dir", dir.path(), "--follow", "--json"});
  const auto wait_for_lines = [&](std::size_t n) {
    for (int i = 0; i < 250 && lines_of(file_text(out)).size() < n; ++i) {
      std::this_thread::sleep_for(20ms);
    }
    return lines_of(file_text(out)).size();
  };
  ASSERT_EQ(wait_for_lines(5), 5u);
  // Past the progress line's first second, then the journaler rolls to a new segment.
  std::this_thread::sleep_for(1100ms);
  SegmentBuilder next(dir.path(), 6, 1);
  for (std::uint64_t s = 6; s <= 8; ++s) {
    next.data(s, static_cast<std::int64_t>(s) * 1'000'000, journal_payload(s, 40 + s));
  }
  next.write();
  ASSERT_EQ(wait_for_lines(8), 8u) << file_text(out);
  const auto lines = lines_of(file_text(out));
  for (std::uint64_t s = 1; s <= 8; ++s) {
    const auto j = nlohmann::json::parse(lines[s - 1]);
    EXPECT_EQ(j.at("seq"), s);
    EXPECT_EQ(j.at("payload_hex"), shmbus::tools::to_hex(journal_payload(s, 40 + s)));
  }
  ASSERT_EQ(::kill(replay.pid(), SIGTERM), 0);
  const auto status = replay.wait(5s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok()) << status->describe();
  EXPECT_EQ(replay.output(), "");  // nothing on stderr: not a terminal
}

TEST(CaptureCli, BadCapturesAreRefusedNamingTheLineOrRecord) {
  TempDir dir("capture-bad");
  ChannelGuard channel(unique_channel("cap-bad"));
  write_whole_file(dir.file("bad.json"),
                   bytes_of("{\"seq\":1,\"payload_hex\":\"6869\"}\nseq=2 hello\n"));
  const RunResult json =
      shmbus_cli({"pub", channel.name(), "--format", "json", "--json", "--capacity", "65536"},
                 Shell{dir.file("bad.json"), "", dir.file("err")});
  EXPECT_EQ(json.status.code, 1);
  const auto report = nlohmann::json::parse(json.out);
  EXPECT_EQ(report.at("messages"), 1);
  EXPECT_EQ(report.at("exit_code"), 1);
  EXPECT_NE(report.at("error").get<std::string>().find("stdin line 2: not valid JSON"),
            std::string::npos);
  EXPECT_NE(file_text(dir.file("err")).find("shmbus pub: stdin line 2: not valid JSON"),
            std::string::npos);

  write_whole_file(dir.file("bad.bin"), bytes_of("hello world, not frames at all\n"));
  const RunResult raw = shmbus_cli({"pub", channel.name(), "--format", "raw"},
                                   Shell{dir.file("bad.bin"), "", dir.file("err")});
  EXPECT_EQ(raw.status.code, 1);
  EXPECT_NE(file_text(dir.file("err")).find("raw record 1 (at byte 0) begins with 'hell'"),
            std::string::npos)
      << file_text(dir.file("err"));

  const RunResult both = shmbus_cli({"pub", channel.name(), "--format", "raw", "--count", "3"},
                                    Shell{"/dev/null", "", dir.file("err")});
  EXPECT_EQ(both.status.code, 2);
}

}  // namespace
