// The journal commands of the `shmbus` binary (SHMBUS_CLI), run as subprocesses over journals
// built byte by byte: journal info/verify/dump and replay to stdout and into a channel.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/command.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/process.hpp"

namespace {

using namespace std::chrono_literals;
using namespace shmbus::journal;
using shmbus::test::ChannelGuard;
using shmbus::test::Child;
using shmbus::test::ExitStatus;
using shmbus::test::SegmentBuilder;
using shmbus::test::TempDir;
using shmbus::test::lines_of;
using shmbus::test::RunResult;
using shmbus::test::run_command;
using shmbus::test::with_stderr_captured;
using shmbus::test::journal_payload;
using shmbus::test::unique_channel;

RunResult cli(std::vector<std::string> args) {
  args.insert(args.begin(), SHMBUS_CLI);
  return run_command(args);
}

// stderr only (stdout discarded).
RunResult cli_stderr(std::vector<std::string> args) {
  args.insert(args.begin(), SHMBUS_CLI);
  return run_command(with_stderr_captured(args));
}

std::string hex(const std::vector<std::byte>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::byte b : bytes) {
    out += kDigits[static_cast<unsigned>(b) >> 4];
    out += kDigits[static_cast<unsigned>(b) & 0xf];
  }
  return out;
}

std::string hex_u64_le(std::uint64_t v) {
  std::vector<std::byte> b(8);
  for (int i = 0; i < 8; ++i) b[i] = static_cast<std::byte>(v >> (8 * i));
  return hex(b);
}

// 2026-11-27T10:00:00Z in ns since the epoch; record s is stamped kBase + s * 1 ms.
constexpr std::int64_t kBase = 1'795'773'600'000'000'000;

// Two segments: 1..10 with a gap 6..7 (records 1-5, gap, 8-10), then 11..20.
struct CliJournal {
  TempDir dir{"journal-cli"};
  std::vector<SegmentBuilder> segments;

  CliJournal() {
    SegmentBuilder a(dir.path(), 1, 0);
    for (std::uint64_t s = 1; s <= 10; ++s) {
      if (s == 6) {
        a.gap(6, 2, kBase + 6'000'000);
        s = 7;
        continue;
      }
      a.data(s, kBase + static_cast<std::int64_t>(s) * 1'000'000, journal_payload(s, 24));
    }
    SegmentBuilder b(dir.path(), 11, 1);
    for (std::uint64_t s = 11; s <= 20; ++s) {
      b.data(s, kBase + static_cast<std::int64_t>(s) * 1'000'000, journal_payload(s, 24));
    }
    for (auto* seg : {&a, &b}) {
      seg->write();
      seg->write_index();
    }
    segments.push_back(std::move(a));
    segments.push_back(std::move(b));
  }
};

TEST(JournalCli, VerifyOfAnIntactJournalExitsZeroAndSaysNoDamage) {
  CliJournal j;
  const RunResult text = cli({"journal", "verify", "--dir", j.dir.path()});
  EXPECT_TRUE(text.status.ok()) << text.status.describe() << "\n" << text.out;
  EXPECT_NE(text.out.find("no damage"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("sequences 1..20"), std::string::npos) << text.out;

  const RunResult json = cli({"journal", "verify", "--dir", j.dir.path(), "--json"});
  ASSERT_TRUE(json.status.ok()) << json.status.describe();
  const auto v = nlohmann::json::parse(json.out);
  EXPECT_TRUE(v.at("ok").get<bool>());
  EXPECT_TRUE(v.at("damage").empty());
  EXPECT_EQ(v.at("last_sequence").get<std::uint64_t>(), 20u);
}

TEST(JournalCli, VerifyReportsEachDamageWithSegmentOffsetAndSequenceAndExitsOne) {
  CliJournal j;
  const auto& bad = j.segments[0].records()[2];  // sequence 3
  shmbus::test::flip_byte(j.segments[0].path(), bad.offset + kRecordHeaderSize + 4);
  const RunResult text = cli({"journal", "verify", "--dir", j.dir.path()});
  EXPECT_TRUE(text.status.exited && text.status.code == 1) << text.status.describe();
  const std::string want = "DAMAGE " + j.segments[0].path() + " offset " +
                           std::to_string(bad.offset) + " expected sequence 3: checksum mismatch";
  EXPECT_NE(text.out.find(want), std::string::npos) << text.out;

  const RunResult json = cli({"journal", "verify", "--dir", j.dir.path(), "--json"});
  EXPECT_EQ(json.status.code, 1);
  const auto v = nlohmann::json::parse(json.out);
  EXPECT_FALSE(v.at("ok").get<bool>());
  ASSERT_EQ(v.at("damage").size(), 1u);
  EXPECT_EQ(v.at("damage")[0].at("offset").get<std::uint64_t>(), bad.offset);
  EXPECT_EQ(v.at("damage")[0].at("expected_sequence").get<std::uint64_t>(), 3u);
}

TEST(JournalCli, VerifyReportsMissingSequencesBetweenSegmentsAsDamage) {
  CliJournal j;
  SegmentBuilder far(j.dir.path(), 30, 2);
  far.data(30, kBase + 30'000'000, "thirty");
  far.write();
  const RunResult text = cli({"journal", "verify", "--dir", j.dir.path()});
  EXPECT_EQ(text.status.code, 1) << text.out;
  EXPECT_NE(text.out.find("expected sequence 21: the segment begins at sequence 30"),
            std::string::npos)
      << text.out;
}

TEST(JournalCli, VerifyCallsATornTailOfTheNewestSegmentNotDamage) {
  CliJournal j;
  const std::uint64_t end = j.segments[1].size();
  shmbus::test::append_to_file(j.segments[1].path(), journal_payload(99, 20));
  const RunResult text = cli({"journal", "verify", "--dir", j.dir.path()});
  EXPECT_TRUE(text.status.ok()) << text.status.describe() << "\n" << text.out;
  EXPECT_NE(text.out.find("torn tail " + j.segments[1].path() + " offset " + std::to_string(end) +
                          " (20 bytes)"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("not damage"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("no damage"), std::string::npos) << text.out;
}

TEST(JournalCli, InfoJsonListsEverySegmentWithSequencesTimesRecordsAndGaps) {
  CliJournal j;
  const RunResult r = cli({"journal", "info", "--dir", j.dir.path(), "--json"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << "\n" << r.out;
  const auto v = nlohmann::json::parse(r.out);
  ASSERT_EQ(v.at("segments").size(), 2u);
  const auto& a = v.at("segments")[0];
  EXPECT_EQ(a.at("file").get<std::string>(), segment_file_name(1));
  EXPECT_EQ(a.at("first_sequence").get<std::uint64_t>(), 1u);
  EXPECT_EQ(a.at("last_sequence").get<std::uint64_t>(), 10u);
  EXPECT_EQ(a.at("records").get<std::uint64_t>(), 8u);
  EXPECT_EQ(a.at("gap_records").get<std::uint64_t>(), 1u);
  EXPECT_EQ(a.at("lost_sequences").get<std::uint64_t>(), 2u);
  EXPECT_EQ(a.at("first_time_ns").get<std::int64_t>(), kBase + 1'000'000);
  EXPECT_EQ(a.at("last_time_ns").get<std::int64_t>(), kBase + 10'000'000);
  EXPECT_EQ(a.at("bytes").get<std::uint64_t>(), j.segments[0].size());
  const auto& t = v.at("totals");
  EXPECT_EQ(t.at("segments").get<std::uint64_t>(), 2u);
  EXPECT_EQ(t.at("first_sequence").get<std::uint64_t>(), 1u);
  EXPECT_EQ(t.at("last_sequence").get<std::uint64_t>(), 20u);
  EXPECT_EQ(t.at("records").get<std::uint64_t>(), 18u);

  const RunResult text = cli({"journal", "info", "--dir", j.dir.path()});
  ASSERT_TRUE(text.status.ok());
  EXPECT_NE(text.out.find("seq 11..20"), std::string::npos) << text.out;
}

TEST(JournalCli, InfoTextIsASummaryLineAndOneLinePerSegmentWithItsTornTail) {
  CliJournal j;
  const auto& last = j.segments[0].records().back();  // sequence 10
  shmbus::test::truncate_file(j.segments[0].path(), last.offset + 20);
  const RunResult r = cli({"journal", "info", "--dir", j.dir.path()});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << "\n" << r.out;
  EXPECT_EQ(r.out,
            "journal " + j.dir.path() +
                ": 2 segments, sequences 1..20, 17 records, 1 gap records (2 sequences lost), "
                "8.99 KiB\n"
                "  00000000000000000001.journal  seq 1..9  2026-11-27T10:00:00.001000000Z .. "
                "2026-11-27T10:00:00.009000000Z  4.44 KiB  7 records  1 gaps (2 lost)  torn tail "
                "20 bytes\n"
                "  00000000000000000011.journal  seq 11..20  2026-11-27T10:00:00.011000000Z .. "
                "2026-11-27T10:00:00.020000000Z  4.55 KiB  10 records  0 gaps (0 lost)\n");
}

TEST(JournalCli, AnUnreadableSegmentIsSaidByInfoAndIsDamageToVerifyWithoutBlamingTheNext) {
  CliJournal j;
  SegmentBuilder c(j.dir.path(), 21, 2);
  c.data(21, kBase + 21'000'000, "x");
  c.write();
  shmbus::test::flip_byte(j.segments[1].path(), 3);  // the magic
  const std::string why =
      "journal segment '" + j.segments[1].path() + "': not a shmbus journal segment (bad magic)";

  const RunResult info = cli({"journal", "info", "--dir", j.dir.path(), "--json"});
  ASSERT_TRUE(info.status.ok()) << info.status.describe() << "\n" << info.out;
  const auto v = nlohmann::json::parse(info.out);
  ASSERT_EQ(v.at("segments").size(), 3u);
  EXPECT_EQ(v.at("segments")[1].dump(),
            nlohmann::json({{"bytes", j.segments[1].size()},
                            {"error", why},
                            {"file", segment_file_name(11)}})
                .dump());
  EXPECT_EQ(v.at("totals").at("records").get<std::uint64_t>(), 9u);
  EXPECT_EQ(v.at("totals").at("last_sequence").get<std::uint64_t>(), 21u);

  const RunResult verify = cli({"journal", "verify", "--dir", j.dir.path(), "--json"});
  EXPECT_EQ(verify.status.code, 1);
  EXPECT_EQ(verify.out, "{\"dir\":\"" + j.dir.path() +
                            "\",\"ok\":false,\"segments\":3,\"first_sequence\":1,\"last_sequence\":21,"
                            "\"damage\":[{\"segment\":\"" + j.segments[1].path() +
                            "\",\"offset\":0,\"expected_sequence\":11,\"what\":\"" + why +
                            "\"}],\"torn_tails\":[]}\n");
}

// Checks one JSON line of a data record against what the builder wrote.
void expect_data_line(const nlohmann::json& line, std::uint64_t seq) {
  EXPECT_EQ(line.at("seq").get<std::uint64_t>(), seq);
  EXPECT_EQ(line.at("time_ns").get<std::int64_t>(), kBase + static_cast<std::int64_t>(seq) * 1'000'000);
  EXPECT_EQ(line.at("size").get<std::uint64_t>(), 24u);
  EXPECT_EQ(line.at("payload_hex").get<std::string>(), hex(journal_payload(seq, 24)));
}

TEST(JournalCli, DumpJsonPrintsRecordsFromASequenceWithGapLines) {
  CliJournal j;
  const RunResult r =
      cli({"journal", "dump", "--dir", j.dir.path(), "--from", "4", "--count", "6", "--format", "json"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << "\n" << r.out;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 6u) << r.out;
  expect_data_line(nlohmann::json::parse(lines[0]), 4);
  expect_data_line(nlohmann::json::parse(lines[1]), 5);
  const auto gap = nlohmann::json::parse(lines[2]);
  EXPECT_EQ(gap.at("type").get<std::string>(), "gap");
  EXPECT_EQ(gap.at("seq").get<std::uint64_t>(), 6u);
  EXPECT_EQ(gap.at("count").get<std::uint64_t>(), 2u);
  expect_data_line(nlohmann::json::parse(lines[3]), 8);
  expect_data_line(nlohmann::json::parse(lines[5]), 10);
}

TEST(JournalCli, DumpReportsDamageOnStderrSkipsItAndExitsOne) {
  CliJournal j;
  shmbus::test::flip_byte(j.segments[1].path(), j.segments[1].records()[3].offset + kRecordHeaderSize);
  const RunResult out = cli({"journal", "dump", "--dir", j.dir.path(), "--format", "json"});
  EXPECT_EQ(out.status.code, 1);
  EXPECT_EQ(lines_of(out.out).size(), 18u) << out.out;  // 19 records (gap included) but one
  const RunResult err = cli_stderr({"journal", "dump", "--dir", j.dir.path()});
  EXPECT_NE(err.out.find("shmbus journal dump: damage: journal segment '" + j.segments[1].path()),
            std::string::npos)
      << err.out;
  EXPECT_NE(err.out.find("expected sequence 14"), std::string::npos) << err.out;
}

TEST(JournalCli, MissingDirectoryFailsWithTheCommandPrefix) {
  TempDir dir;
  const RunResult r = cli_stderr({"journal", "verify", "--dir", dir.file("absent")});
  EXPECT_EQ(r.status.code, 1);
  EXPECT_EQ(r.out.rfind("shmbus journal verify: ", 0), 0u) << r.out;
}

TEST(JournalCli, ReplayJsonPrintsTheSequenceRangeWithOriginalSequencesAndTimes) {
  CliJournal j;
  const RunResult r = cli({"replay", "--dir", j.dir.path(), "--from", "9", "--to", "12", "--format", "json"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << "\n" << r.out;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  for (std::size_t i = 0; i < 4; ++i) expect_data_line(nlohmann::json::parse(lines[i]), 9 + i);
}

TEST(JournalCli, ReplayTimeRangeAcceptsIsoAndNanosecondsAndPrintsGaps) {
  CliJournal j;
  // From 10:00:00.004500Z (between records 4 and 5) to record 8's exact time in ns.
  const RunResult r = cli({"replay", "--dir", j.dir.path(), "--from-time",
                           "2026-11-27T10:00:00.0045Z", "--to-time",
                           std::to_string(kBase + 8'000'000), "--format", "json"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << "\n" << r.out;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  expect_data_line(nlohmann::json::parse(lines[0]), 5);
  EXPECT_EQ(nlohmann::json::parse(lines[1]).at("type").get<std::string>(), "gap");
  expect_data_line(nlohmann::json::parse(lines[2]), 8);

  const RunResult bad = cli_stderr({"replay", "--dir", j.dir.path(), "--from-time", "yesterday"});
  EXPECT_EQ(bad.status.code, 2) << bad.out;
}

TEST(JournalCli, ReplaySpeedKeepsTheOriginalSpacingDividedByN) {
  TempDir dir;
  SegmentBuilder a(dir.path(), 1);
  for (std::uint64_t s = 1; s <= 3; ++s) a.data(s, static_cast<std::int64_t>(s) * 300'000'000, "x");
  a.write();
  const auto start = std::chrono::steady_clock::now();
  const RunResult r = cli({"replay", "--dir", dir.path(), "--speed", "2"});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.status.ok()) << r.status.describe();
  EXPECT_EQ(lines_of(r.out).size(), 3u);
  EXPECT_GE(elapsed, 300ms);  // 600 ms of original spacing at twice the speed
  EXPECT_LT(elapsed, 5s);
}

TEST(JournalCli, ReplayToChannelRepublishesPayloadsWithTheOriginalSequenceEnvelope) {
  CliJournal j;
  ChannelGuard channel(unique_channel("replay"));
  const RunResult r = cli({"replay", "--dir", j.dir.path(), "--from", "8", "--to", "12",
                           "--to-channel", channel.name(), "--envelope", "--capacity", "65536"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe();
  const RunResult tail = cli({"tail", channel.name(), "--from", "earliest", "--count", "5",
                              "--format", "json", "--timeout-ms", "2000"});
  ASSERT_TRUE(tail.status.ok()) << tail.status.describe() << "\n" << tail.out;
  const auto lines = lines_of(tail.out);
  ASSERT_EQ(lines.size(), 5u) << tail.out;
  for (std::size_t i = 0; i < 5; ++i) {
    const auto line = nlohmann::json::parse(lines[i]);
    const std::uint64_t seq = 8 + i;
    EXPECT_EQ(line.at("seq").get<std::uint64_t>(), i + 1);  // the channel's own sequence
    EXPECT_EQ(line.at("payload_hex").get<std::string>(),
              hex_u64_le(seq) + hex_u64_le(static_cast<std::uint64_t>(kBase) + seq * 1'000'000) +
                  hex(journal_payload(seq, 24)));
  }
}

TEST(JournalCli, ReplayStopsAtDamageAndExitsOne) {
  CliJournal j;
  shmbus::test::flip_byte(j.segments[0].path(), j.segments[0].records()[1].offset + kRecordHeaderSize);
  const RunResult r = cli({"replay", "--dir", j.dir.path(), "--format", "json"});
  EXPECT_EQ(r.status.code, 1);
  ASSERT_EQ(lines_of(r.out).size(), 1u) << r.out;
  expect_data_line(nlohmann::json::parse(lines_of(r.out)[0]), 1);
}

TEST(JournalCli, HelpOfTheJournalCommandsExitsZero) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"journal", "--help"}, {"journal", "verify", "--help"}, {"journal", "info", "--help"},
           {"journal", "dump", "--help"}, {"replay", "--help"}}) {
    const RunResult r = cli(args);
    EXPECT_TRUE(r.status.ok()) << args.back();
    EXPECT_FALSE(r.out.empty());
  }
  const RunResult replay = cli({"replay", "--help"});
  EXPECT_NE(replay.out.find("assigns its own sequences"), std::string::npos) << replay.out;
}

}  // namespace
