// `shmbus demo`'s closing section, the transport's own latency: run for real through the built
// binary (a short demo, then the round trip between two pinned processes), and its text built from
// made-up figures, pinned and not.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/command.hpp"
#include "tools/demo_round_trip.hpp"

namespace {

using namespace std::chrono_literals;
using shmbus::test::lines_of;
using shmbus::test::run_command;

constexpr const char* kSectionTitle = "--- the transport's own latency: a spinning round trip ---";

// A row of the round-trip table: its label, then p50, p99, p99.9, max.
struct Row {
  std::string label;
  std::vector<double> figures;
};

// The row whose label is `label` (followed by at least two spaces) after the section title;
// figures lose a trailing "x".
Row find_row(const std::vector<std::string>& lines, const std::string& label) {
  bool in_section = false;
  for (const std::string& line : lines) {
    if (line == kSectionTitle) in_section = true;
    if (!in_section || line.rfind("  " + label + "  ", 0) != 0) continue;
    Row row{label, {}};
    std::istringstream rest(line.substr(2 + label.size()));
    std::string word;
    while (rest >> word) {
      if (!word.empty() && word.back() == 'x') word.pop_back();
      row.figures.push_back(std::stod(word));
    }
    return row;
  }
  return Row{};
}

TEST(DemoCli, EndsWithTheRoundTripOfShmbusBesideRawSharedMemoryInSaneOrder) {
  // 0.5 s of messages: long enough for the half-way stat (two stats ticks) and its caveat; a
  // short round trip (the default's 100,000 per round take a second, more on a loaded machine).
  const auto r = run_command({SHMBUS_CLI, "demo", "--messages", "50000", "--rate", "100000",
                              "--round-trips", "5000"},
                             120s);
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << "\n" << r.out;
  const std::vector<std::string> lines = lines_of(r.out);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back(), "demo: PASS") << r.out;

  const std::size_t caveat = r.out.find("What these latencies include: publish to delivery");
  const std::size_t section = r.out.find(kSectionTitle);
  ASSERT_NE(caveat, std::string::npos) << r.out;
  ASSERT_NE(section, std::string::npos) << r.out;
  EXPECT_LT(caveat, section);
  EXPECT_LT(r.out.find("stat cross-check: ok"), section) << "the checks come first\n" << r.out;
  EXPECT_NE(r.out.find("5000 timed round trips after 5000 untimed, median of 3 rounds", section),
            std::string::npos)
      << r.out;
  const bool pinned = r.out.find("Pinned: the sender on CPU ") != std::string::npos;
  const bool unpinned = r.out.find("NOT pinned: this process may use only 1 CPU") != std::string::npos;
  EXPECT_NE(pinned, unpinned) << r.out;
  EXPECT_EQ(pinned, shmbus::tools::usable_cpu_count() >= 2) << r.out;

  for (const char* transport : {"shmbus", "raw shared memory"}) {
    SCOPED_TRACE(transport);
    const Row row = find_row(lines, transport);
    ASSERT_EQ(row.figures.size(), 4u) << r.out;  // p50, p99, p99.9, max
    EXPECT_GT(row.figures[0], 0);
    EXPECT_LE(row.figures[0], row.figures[1]);
    EXPECT_LE(row.figures[1], row.figures[2]);
    EXPECT_LE(row.figures[2], row.figures[3]);
  }
  const Row ratio = find_row(lines, "shmbus / raw");
  ASSERT_EQ(ratio.figures.size(), 4u) << r.out;
  for (double x : ratio.figures) EXPECT_GT(x, 0) << r.out;
}

shmbus::tools::DemoRoundTrip made_up_round_trip(int initiator_cpu, int responder_cpu) {
  shmbus::tools::DemoRoundTrip rt;
  rt.report.size = 64;
  rt.report.count = 1000;
  rt.report.warmup = 100;
  rt.report.rounds = 3;
  rt.report.initiator_cpu = initiator_cpu;
  rt.report.responder_cpu = responder_cpu;
  rt.shmbus = {300, 350, 600, 900, 5000};
  rt.raw = {150, 200, 300, 450, 4000};
  rt.report.results = {{"shmbus", rt.shmbus, {}}, {"raw-shm", rt.raw, {}}};
  rt.cpus_available = initiator_cpu >= 0 ? 2 : 1;
  return rt;
}

TEST(DemoRoundTripText, ShowsEachPercentileAndItsRatioToTheFloor) {
  const std::string text = shmbus::tools::demo_round_trip_text(made_up_round_trip(2, 5));
  const std::vector<std::string> lines = lines_of(text);
  EXPECT_NE(text.find("Pinned: the sender on CPU 2, the echoing side on CPU 5"), std::string::npos)
      << text;
  EXPECT_EQ(find_row(lines, "shmbus").figures, (std::vector<double>{300, 600, 900, 5000})) << text;
  EXPECT_EQ(find_row(lines, "raw shared memory").figures,
            (std::vector<double>{150, 300, 450, 4000}))
      << text;
  EXPECT_EQ(find_row(lines, "shmbus / raw").figures, (std::vector<double>{2, 2, 2, 1.25})) << text;
}

TEST(DemoRoundTripText, SaysSoWhenBothSidesSharedOneCpu) {
  const std::string text = shmbus::tools::demo_round_trip_text(made_up_round_trip(-1, -1));
  EXPECT_NE(text.find("NOT pinned: this process may use only 1 CPU"), std::string::npos) << text;
  EXPECT_NE(text.find("include those context switches"), std::string::npos) << text;
  EXPECT_EQ(text.find("Pinned:"), std::string::npos) << text;
}

}  // namespace
