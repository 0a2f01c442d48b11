// Creating a channel that another process creates at the same moment with other options: by
// default the loser is refused with both configurations named; with accept_existing it gets the
// winner's. Real processes race (fork), released together through a pipe.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "shmbus/shmbus.hpp"
#include "tests/support/command.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using namespace std::chrono_literals;

constexpr int kRounds = 8;

// Forks one racer per options, each blocked on a pipe until all are forked, then opening a
// publisher with its options. Each prints "OK <incarnation> <capacity>" or "REFUSED <code>
// <message>". Returns their first lines.
std::vector<std::string> race(const std::string& channel,
                              const std::vector<ChannelOptions>& racers) {
  int gate[2];
  if (::pipe(gate) != 0) return {};
  std::vector<Child> children;
  for (const ChannelOptions& options : racers) {
    children.push_back(Child::fork([&, options] {
      ::close(gate[1]);
      char go = 0;
      if (::read(gate[0], &go, 1) != 1) return 1;
      auto pub = Publisher::open(channel, options);
      if (pub) {
        std::printf("OK %llu %llu\n", static_cast<unsigned long long>(pub->info().incarnation),
                    static_cast<unsigned long long>(pub->info().capacity));
      } else {
        std::printf("REFUSED %d %s\n", static_cast<int>(pub.error().code),
                    pub.error().message.c_str());
      }
      std::fflush(stdout);
      return 0;
    }));
  }
  ::close(gate[0]);
  const std::string go(racers.size(), 'g');
  EXPECT_EQ(::write(gate[1], go.data(), go.size()), static_cast<ssize_t>(go.size()));
  ::close(gate[1]);
  std::vector<std::string> lines;
  for (Child& c : children) {
    auto line = c.read_line(10s);
    lines.push_back(line.value_or("NOTHING " + c.output()));
    auto st = c.wait(10s);
    EXPECT_TRUE(st && st->ok()) << (st ? st->describe() : "still running");
  }
  return lines;
}

ChannelOptions with_capacity(std::uint64_t capacity) {
  ChannelOptions o = small_options();
  o.capacity = capacity;
  return o;
}

TEST(CreateRace, TwoProcessesWithOtherCapacitiesOneWinsTheOtherIsRefusedNamingBoth) {
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    ChannelGuard ch(unique_channel("race-cap"));
    const auto lines = race(ch.name(), {with_capacity(64 << 10), with_capacity(128 << 10)});
    ASSERT_EQ(lines.size(), 2u);
    int ok = 0;
    for (const std::string& line : lines) {
      if (line.starts_with("OK ")) {
        ++ok;
        continue;
      }
      ASSERT_TRUE(line.starts_with("REFUSED ")) << line;
      EXPECT_TRUE(line.starts_with(fmt::format("REFUSED {} ",
                                               static_cast<int>(ErrorCode::invalid_argument))))
          << line;
      EXPECT_NE(line.find("capacity 65536"), std::string::npos) << line;
      EXPECT_NE(line.find("capacity 131072"), std::string::npos) << line;
      EXPECT_NE(line.find("accept_existing"), std::string::npos) << line;
    }
    EXPECT_EQ(ok, 1) << lines[0] << "\n" << lines[1];
  }
}

TEST(CreateRace, WithAcceptExistingBothProcessesOpenTheWinnersConfiguration) {
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    ChannelGuard ch(unique_channel("race-accept"));
    ChannelOptions small = with_capacity(64 << 10);
    ChannelOptions large = with_capacity(128 << 10);
    small.accept_existing = large.accept_existing = true;
    const auto lines = race(ch.name(), {small, large});
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_TRUE(lines[0].starts_with("OK ")) << lines[0];
    EXPECT_EQ(lines[0], lines[1]);  // one incarnation, one capacity
  }
}

TEST(CreateRace, TwoProcessesWithTheSameConfigurationBothOpenOneIncarnation) {
  ChannelGuard ch(unique_channel("race-same"));
  const auto lines = race(ch.name(), {small_options(), small_options()});
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(lines[0].starts_with("OK ")) << lines[0];
  EXPECT_EQ(lines[0], lines[1]);
}

// Every part of the configuration is compared, and the message names both values.
TEST(CreateRace, EveryConfigurationFieldIsComparedAndNamed) {
  ChannelGuard ch(unique_channel("race-fields"));
  auto first = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(first) << first.error().message;
  struct Variant {
    const char* what;
    ChannelOptions options;
    std::string existing;
    std::string asked;
  };
  std::vector<Variant> variants;
  auto add = [&](const char* what, auto change, std::string existing, std::string asked) {
    ChannelOptions o = small_options();
    change(o);
    variants.push_back({what, o, std::move(existing), std::move(asked)});
  };
  add("capacity", [](ChannelOptions& o) { o.capacity = 1 << 20; }, "capacity 65536",
      "capacity 1048576");
  add("max_message", [](ChannelOptions& o) { o.max_message = 512; }, "max message 1024",
      "max message 512");
  add("single_producer", [](ChannelOptions& o) { o.single_producer = true; }, "multi-producer",
      "single producer");
  add("subscriber_slots", [](ChannelOptions& o) { o.subscriber_slots = 8; },
      "64 subscriber slots", "8 subscriber slots");
  add("producer_slots", [](ChannelOptions& o) { o.producer_slots = 2; }, "32 producer slots",
      "2 producer slots");
  for (Variant& v : variants) {
    SCOPED_TRACE(v.what);
    auto refused = Publisher::open(ch.name(), v.options);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::invalid_argument);
    const std::string& m = refused.error().message;
    const auto exists = m.find("exists with");
    const auto asked = m.find("asked for");
    ASSERT_NE(exists, std::string::npos) << m;
    ASSERT_NE(asked, std::string::npos) << m;
    EXPECT_NE(m.find(v.existing, exists), std::string::npos) << m;
    EXPECT_LT(m.find(v.existing, exists), asked) << m;
    EXPECT_NE(m.find(v.asked, asked), std::string::npos) << m;
    v.options.accept_existing = true;
    auto accepted = Publisher::open(ch.name(), v.options);
    if (!v.options.single_producer) {
      ASSERT_TRUE(accepted) << accepted.error().message;
      EXPECT_EQ(accepted->info().incarnation, first->info().incarnation);
      EXPECT_EQ(accepted->info().capacity, 64u << 10);
    }
  }
}

// The command: asking for a configuration (--capacity) that differs from the existing channel's
// fails (exit 1, both named) unless --accept-existing; asking for nothing accepts what exists.
TEST(CreateRace, PubWithAnotherCapacityFailsUnlessAcceptExisting) {
  ChannelGuard ch(unique_channel("race-cli"));
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv{SHMBUS_CLI, "pub", ch.name(), "--count", "1", "-q"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_command(with_stderr_captured(argv));
  };
  ASSERT_TRUE(run({"--capacity", "65536"}).status.ok());
  const RunResult refused = run({"--capacity", "131072"});
  EXPECT_EQ(refused.status.code, 1) << refused.out;
  EXPECT_NE(refused.out.find("capacity 65536"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("capacity 131072"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("--accept-existing"), std::string::npos) << refused.out;
  EXPECT_TRUE(run({"--capacity", "131072", "--accept-existing"}).status.ok());
  EXPECT_TRUE(run({}).status.ok());
  const RunResult bad_mode = run({"--mode", "0755"});
  EXPECT_EQ(bad_mode.status.code, 2) << bad_mode.out;
}

}  // namespace
}  // namespace shmbus
