// The command line's side of consumer groups, run as the built binary (SHMBUS_CLI): `stat` shows a
// real group with known counts in text, JSON and Prometheus, and a damaged one as damaged;
// `tail --group` members print every record exactly once between them, json lines say how each
// was delivered, and a member killed with -9 has its records printed again by another, marked
// redelivered. (`bench group`: bench_cli_test.cpp.)
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "ipc/channel.hpp"
#include "ipc/group_segment.hpp"
#include "shmbus/group_consumer.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/command.hpp"
#include "tests/support/process.hpp"
#include "tests/tools/exposition_parser.hpp"
#include "tools/format.hpp"

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using shmbus::test::ChannelGuard;
using shmbus::test::Child;
using shmbus::test::lines_of;
using shmbus::test::RunResult;
using shmbus::test::run_command;
using shmbus::test::unique_channel;

RunResult cli(std::initializer_list<std::string> args, std::chrono::milliseconds timeout = 20s) {
  std::vector<std::string> argv{SHMBUS_CLI};
  argv.insert(argv.end(), args);
  return run_command(argv, timeout);
}

std::string record_payload(std::uint64_t i) { return "job-" + std::to_string(i); }

void publish_jobs(shmbus::Publisher& pub, std::uint64_t n, std::size_t pad = 0) {
  for (std::uint64_t i = 1; i <= n; ++i) {
    std::string p = record_payload(i);
    p.append(pad, '.');
    ASSERT_EQ(pub.publish(std::as_bytes(std::span(p.data(), p.size())), 5s),
              shmbus::PublishStatus::ok);
  }
}

const shmbus::test::Sample* find_sample(const shmbus::test::ParsedExposition& e,
                                        const std::string& name,
                                        const std::map<std::string, std::string>& labels) {
  for (const auto& s : e.samples) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [k, v] : labels) {
      const auto it = s.labels.find(k);
      all = all && it != s.labels.end() && it->second == v;
    }
    if (all) return &s;
  }
  return nullptr;
}

// One member of group "w" holding known counts: of records 1..10 it acked 1..6, nacked 7 (given
// back, waiting for redelivery) and holds 8..10; records 11 and 12 are published and not handed
// out.
class StatGroup : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pub = shmbus::Publisher::open(ch_.name());
    ASSERT_TRUE(pub) << pub.error().message;
    shmbus::GroupOptions o;
    o.ack_timeout = 60s;  // nothing is taken back while the test reads
    o.max_attempts = 4;
    o.window = 256;
    auto g = shmbus::GroupConsumer::open(ch_.name(), "w", o);
    ASSERT_TRUE(g) << g.error().message;
    member_.emplace(std::move(*g));
    publish_jobs(*pub, 10);
    std::vector<std::uint64_t> got;
    for (int i = 0; i < 200 && got.size() < 10; ++i) {
      member_->poll([&](const shmbus::GroupMessage& m) { got.push_back(m.sequence); },
                    10 - got.size());
      if (got.size() < 10) member_->wait(10ms);
    }
    ASSERT_EQ(got, (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
    for (std::uint64_t s = 1; s <= 6; ++s) ASSERT_EQ(member_->ack(s), shmbus::AckStatus::ok);
    ASSERT_EQ(member_->nack(7, "try again"), shmbus::AckStatus::ok);
    publish_jobs(*pub, 2);
  }

  ChannelGuard ch_{unique_channel("grpstat")};
  std::optional<shmbus::GroupConsumer> member_;
};

TEST_F(StatGroup, JsonListsTheGroupWithItsCountsSettingsAndMember) {
  const RunResult r = cli({"stat", ch_.name(), "--json", "--interval-ms", "0"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << r.out;
  const json doc = json::parse(r.out);
  ASSERT_EQ(doc["groups"].size(), 1u) << r.out;
  const json& g = doc["groups"][0];
  EXPECT_EQ(g["group"], "w");
  EXPECT_TRUE(g["problem"].is_null());
  EXPECT_EQ(g["policy"], "block");
  EXPECT_EQ(g["keyed"], false);
  EXPECT_EQ(g["ack_timeout_ns"], 60'000'000'000);
  EXPECT_EQ(g["max_attempts"], 4);
  EXPECT_EQ(g["window"], 256);
  EXPECT_EQ(g["dead_letter_channel"], ch_.name() + ".dlq");
  EXPECT_EQ(g["next_sequence"], 11);
  EXPECT_EQ(g["retired_through"], 7);
  EXPECT_EQ(g["in_flight"], 3);
  EXPECT_EQ(g["waiting_redelivery"], 1);
  EXPECT_EQ(g["acked"], 6);
  EXPECT_EQ(g["redelivered"], 0);
  EXPECT_EQ(g["dead_lettered"], 0);
  EXPECT_EQ(g["lost"], 0);
  EXPECT_EQ(g["fenced"], 0);
  EXPECT_EQ(g["lag"], 2);
  EXPECT_GT(g["oldest_unacked_age_ns"].get<std::int64_t>(), 0);
  EXPECT_LT(g["oldest_unacked_age_ns"].get<std::int64_t>(), 60'000'000'000);
  ASSERT_EQ(g["members"].size(), 1u);
  const json& m = g["members"][0];
  EXPECT_EQ(m["index"], member_->member_index());
  EXPECT_EQ(m["pid"], ::getpid());
  EXPECT_EQ(m["alive"], true);
  EXPECT_GT(m["joined_ns"].get<std::int64_t>(), 0);
  EXPECT_EQ(m["delivered"], 10);
  EXPECT_EQ(m["acked"], 6);
  EXPECT_EQ(m["nacked"], 1);
  EXPECT_EQ(m["redelivered"], 0);
  EXPECT_EQ(m["fenced"], 0);
  EXPECT_EQ(m["in_flight"], 3);
}

TEST_F(StatGroup, TextShowsAGroupsSectionAfterTheSubscribers) {
  const RunResult r = cli({"stat", ch_.name(), "--interval-ms", "0"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << r.out;
  const std::size_t subscribers = r.out.find("\nsubscribers");
  const std::size_t groups = r.out.find("\ngroups (1)\n  group 'w'\n");
  ASSERT_NE(groups, std::string::npos) << r.out;
  EXPECT_LT(subscribers, groups) << r.out;
  const std::string section = r.out.substr(groups);
  for (const char* part :
       {"policy block, ack timeout 60.000 s, max attempts 4, window 256, dead letters to '",
        "members    1 (1 alive)",
        "3 in flight, 1 waiting redelivery, 6 acked, 0 redelivered, 0 dead-lettered, 0 lost, "
        "0 fenced",
        "lag 2, oldest unacked ", "retired through seq 7, next seq 11", "MEMBER", "IN FLIGHT"}) {
    EXPECT_NE(section.find(part), std::string::npos) << part << "\n" << r.out;
  }
  std::string row(" ");  // (built in steps: GCC 12 warns wrongly on " " + std::string)
  row += std::to_string(::getpid());
  row += "  alive";
  EXPECT_NE(section.find(row), std::string::npos) << r.out;
}

TEST_F(StatGroup, PrometheusExportsTheGroupAndItsMemberWithChannelAndGroupLabels) {
  const RunResult r = cli({"stat", ch_.name(), "--prometheus"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << r.out;
  const auto e = shmbus::test::parse_exposition(r.out);
  const std::map<std::string, std::string> labels{{"channel", ch_.name()}, {"group", "w"}};
  const std::map<std::string, double> want{
      {"shmbus_group_members", 1},          {"shmbus_group_in_flight", 3},
      {"shmbus_group_waiting_redelivery", 1}, {"shmbus_group_acked_total", 6},
      {"shmbus_group_redelivered_total", 0}, {"shmbus_group_dead_lettered_total", 0},
      {"shmbus_group_lost_total", 0},       {"shmbus_group_fenced_total", 0},
      {"shmbus_group_lag_messages", 2},     {"shmbus_group_retired_through", 7},
      {"shmbus_group_next_sequence", 11},   {"shmbus_group_max_attempts", 4},
      {"shmbus_group_window", 256},         {"shmbus_group_ack_timeout_seconds", 60},
      {"shmbus_group_damaged", 0}};
  for (const auto& [name, value] : want) {
    const auto* s = find_sample(e, name, labels);
    ASSERT_NE(s, nullptr) << name << "\n" << r.out;
    EXPECT_EQ(s->value, value) << name;
  }
  EXPECT_EQ(e.type.at("shmbus_group_acked_total"), "counter");
  EXPECT_EQ(e.type.at("shmbus_group_in_flight"), "gauge");
  const auto* age = find_sample(e, "shmbus_group_oldest_unacked_age_seconds", labels);
  ASSERT_NE(age, nullptr);
  EXPECT_GT(age->value, 0);
  auto member_labels = labels;
  member_labels["member"] = std::to_string(member_->member_index());
  for (const auto& [name, value] :
       std::map<std::string, double>{{"shmbus_group_member_alive", 1},
                                     {"shmbus_group_member_delivered_total", 10},
                                     {"shmbus_group_member_acked_total", 6},
                                     {"shmbus_group_member_nacked_total", 1},
                                     {"shmbus_group_member_in_flight", 3}}) {
    const auto* s = find_sample(e, name, member_labels);
    ASSERT_NE(s, nullptr) << name << "\n" << r.out;
    EXPECT_EQ(s->value, value) << name;
  }
  const auto* info = find_sample(e, "shmbus_group_info", labels);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->labels.at("policy"), "block");
  EXPECT_EQ(info->labels.at("dead_letter_channel"), ch_.name() + ".dlq");
}

// A group whose shared state fails validation is shown as damaged in every format; stat still
// exits 0 and shows the channel.
TEST(StatGroupDamaged, ADamagedGroupIsShownAsSuchInEveryFormat) {
  ChannelGuard ch(unique_channel("grpbad"));
  auto pub = shmbus::Publisher::open(ch.name());
  ASSERT_TRUE(pub) << pub.error().message;
  { ASSERT_TRUE(shmbus::GroupConsumer::open(ch.name(), "broken")); }
  {
    auto mapping =
        shmbus::detail::ChannelMapping::open(ch.name(), false, 0ms, false).value();
    auto seg = shmbus::detail::ShmSegment::open(
                   shmbus::detail::group_object_name(ch.name(), mapping->info().incarnation,
                                                     "broken"),
                   true)
                   .value();
    shmbus::detail::group_header(seg.base()).magic = 42;
  }
  const RunResult j = cli({"stat", ch.name(), "--json", "--interval-ms", "0"});
  ASSERT_TRUE(j.status.ok()) << j.status.describe() << j.out;
  const json doc = json::parse(j.out);
  ASSERT_EQ(doc["groups"].size(), 1u);
  EXPECT_EQ(doc["groups"][0]["group"], "broken");
  ASSERT_TRUE(doc["groups"][0]["problem"].is_string()) << j.out;
  EXPECT_FALSE(doc["groups"][0].contains("acked")) << j.out;

  const RunResult t = cli({"stat", ch.name(), "--interval-ms", "0"});
  ASSERT_TRUE(t.status.ok()) << t.out;
  EXPECT_NE(t.out.find("group 'broken'\n    DAMAGED"), std::string::npos) << t.out;

  const RunResult p = cli({"stat", ch.name(), "--prometheus"});
  ASSERT_TRUE(p.status.ok()) << p.out;
  const auto e = shmbus::test::parse_exposition(p.out);
  const auto* damaged =
      find_sample(e, "shmbus_group_damaged", {{"channel", ch.name()}, {"group", "broken"}});
  ASSERT_NE(damaged, nullptr) << p.out;
  EXPECT_EQ(damaged->value, 1);
  EXPECT_EQ(find_sample(e, "shmbus_group_acked_total", {{"group", "broken"}}), nullptr);
}

// --- tail --group ---------------------------------------------------------------------------

struct PrintedRecord {
  std::uint64_t seq;
  std::string payload_hex;
  bool redelivered;
  std::uint32_t attempt;
};

// The complete json lines of a tail's output: a line cut by a kill (no newline yet) is left out.
std::vector<PrintedRecord> printed_records(const std::string& out) {
  std::vector<PrintedRecord> records;
  std::vector<std::string> lines = lines_of(out);
  if (!out.empty() && out.back() != '\n' && !lines.empty()) lines.pop_back();
  for (const std::string& line : lines) {
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    records.push_back({j.at("seq").get<std::uint64_t>(), j.at("payload_hex").get<std::string>(),
                       j.at("redelivered").get<bool>(), j.at("attempt").get<std::uint32_t>()});
  }
  return records;
}

std::string hex_of(const std::string& text) {
  return shmbus::tools::to_hex(std::as_bytes(std::span(text.data(), text.size())));
}

// Waits until the channel's group `group` has `members` members; false after 10 s.
bool wait_for_members(const std::string& channel, const std::string& group, std::size_t members) {
  for (int i = 0; i < 1000; ++i) {
    auto groups = shmbus::read_group_stats(channel);
    if (groups) {
      for (const auto& g : *groups) {
        if (g.group == group && g.members.size() == members) return true;
      }
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// True once `pid` has exited (a zombie, not reaped yet); false after 10 s.
bool wait_until_zombie(pid_t pid) {
  for (int i = 0; i < 1000; ++i) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const std::size_t paren = text.rfind(')');
    if (paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z') {
      return true;
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

TEST(TailGroup, TwoMembersPrintEveryRecordExactlyOnceBetweenThem) {
  ChannelGuard ch(unique_channel("grptail"));
  auto pub = shmbus::Publisher::open(ch.name());
  ASSERT_TRUE(pub) << pub.error().message;
  Child a = Child::spawn({SHMBUS_CLI, "tail", ch.name(), "--group", "w", "--json",
                          "--timeout-ms", "1500"});
  Child b = Child::spawn({SHMBUS_CLI, "tail", ch.name(), "--group", "w", "--format", "json",
                          "--timeout-ms", "1500"});
  ASSERT_TRUE(wait_for_members(ch.name(), "w", 2));
  constexpr std::uint64_t kRecords = 2000;
  for (std::uint64_t i = 1; i <= kRecords; ++i) {
    const std::string p = record_payload(i);
    ASSERT_EQ(pub->publish(std::as_bytes(std::span(p.data(), p.size())), 5s),
              shmbus::PublishStatus::ok);
    if (i % 50 == 0) std::this_thread::sleep_for(1ms);  // both members get a share
  }
  const auto sa = a.wait(20s);
  const auto sb = b.wait(20s);
  ASSERT_TRUE(sa && sa->exited && sa->code == 3) << a.output();  // 3: --timeout-ms, idle
  ASSERT_TRUE(sb && sb->exited && sb->code == 3) << b.output();
  std::map<std::uint64_t, int> seen;
  for (const Child* c : {&a, &b}) {
    for (const PrintedRecord& r : printed_records(c->output())) {
      ++seen[r.seq];
      EXPECT_EQ(r.payload_hex, hex_of(record_payload(r.seq))) << r.seq;
      EXPECT_FALSE(r.redelivered) << r.seq;
      EXPECT_EQ(r.attempt, 1u) << r.seq;
    }
  }
  ASSERT_EQ(seen.size(), kRecords);
  for (const auto& [seq, times] : seen) {
    EXPECT_EQ(times, 1) << "seq " << seq;
    EXPECT_GE(seq, 1u);
    EXPECT_LE(seq, kRecords);
  }
  // Every record printed was acked: the group has retired them all, and both members left.
  auto groups = shmbus::read_group_stats(ch.name()).value();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].acked, kRecords);
  EXPECT_EQ(groups[0].retired_through, kRecords + 1);
  EXPECT_TRUE(groups[0].members.empty());
}

TEST(TailGroup, AMemberKilledWithNineHasItsUnprintedRecordsPrintedByAnotherAsRedelivered) {
  ChannelGuard ch(unique_channel("grpkill"));
  auto pub = shmbus::Publisher::open(ch.name());
  ASSERT_TRUE(pub) << pub.error().message;
  // The first member's output is a pipe nobody reads: once it is full the member blocks writing,
  // holding the record it is printing (and the rest of its batch), unacked.
  Child a = Child::spawn({SHMBUS_CLI, "tail", ch.name(), "--group", "w", "--json",
                          "--ack-timeout-ms", "60000"});
  ASSERT_TRUE(wait_for_members(ch.name(), "w", 1));
  constexpr std::uint64_t kRecords = 300;
  publish_jobs(*pub, kRecords, 1000);  // lines of about 2 KiB: the pipe fills in a few dozen
  // Until the member stops making progress with records still in flight.
  std::uint64_t last_acked = UINT64_MAX;
  bool stuck = false;
  for (int i = 0; i < 100 && !stuck; ++i) {
    std::this_thread::sleep_for(100ms);
    auto groups = shmbus::read_group_stats(ch.name()).value();
    ASSERT_EQ(groups.size(), 1u);
    stuck = groups[0].acked == last_acked && groups[0].in_flight > 0;
    last_acked = groups[0].acked;
  }
  ASSERT_TRUE(stuck);
  ASSERT_GT(last_acked, 0u);
  ASSERT_LT(last_acked, kRecords);
  ASSERT_EQ(::kill(a.pid(), SIGKILL), 0);
  // Dead before its pipe is read: reading would let its blocked write finish first, printing a
  // record it then dies before acking (which another member would rightly print again).
  ASSERT_TRUE(wait_until_zombie(a.pid()));
  const auto sa = a.wait(10s);  // reads what the pipe holds
  ASSERT_TRUE(sa && sa->signal == SIGKILL);

  Child b = Child::spawn({SHMBUS_CLI, "tail", ch.name(), "--group", "w", "--json",
                          "--timeout-ms", "3000"});
  const auto sb = b.wait(60s);
  ASSERT_TRUE(sb && sb->exited && sb->code == 3) << b.output();

  const auto by_a = printed_records(a.output());
  const auto by_b = printed_records(b.output());
  EXPECT_EQ(by_a.size(), last_acked);  // what a printed whole is exactly what it acked
  std::map<std::uint64_t, int> seen;
  std::set<std::uint64_t> printed_by_a;
  for (const PrintedRecord& r : by_a) {
    ++seen[r.seq];
    printed_by_a.insert(r.seq);
    EXPECT_FALSE(r.redelivered);
  }
  std::size_t redelivered = 0;
  for (const PrintedRecord& r : by_b) {
    ++seen[r.seq];
    std::string want = record_payload(r.seq);
    want.append(1000, '.');
    EXPECT_EQ(r.payload_hex, hex_of(want)) << r.seq;
    if (r.redelivered) {
      ++redelivered;
      EXPECT_EQ(r.attempt, 2u) << r.seq;
      EXPECT_EQ(printed_by_a.count(r.seq), 0u) << r.seq;
    } else {
      EXPECT_EQ(r.attempt, 1u) << r.seq;
    }
  }
  EXPECT_GT(redelivered, 0u) << b.output();
  ASSERT_EQ(seen.size(), kRecords);
  for (const auto& [seq, times] : seen) EXPECT_EQ(times, 1) << "seq " << seq;
}

}  // namespace
