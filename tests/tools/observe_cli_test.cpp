// The observability commands end to end (`shmbus ls`, `stat`, `inspect`, `gc`, `rm`), run as the
// built binary (SHMBUS_CLI) against a scripted scenario of real processes: known counts published
// by `shmbus pub`, a drop subscriber lapped while it slept, a block subscriber killed with SIGKILL.
// Every field the scenario determines is checked by value.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/layout.hpp"
#include "shmbus/shmbus.hpp"
#include "shmbus/stats.hpp"
#include "tests/support/command.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"

namespace {

using namespace std::chrono_literals;
using shmbus::test::ChannelGuard;
using shmbus::test::Child;
using shmbus::test::ExitStatus;
using shmbus::test::lines_of;
using shmbus::test::RunResult;
using shmbus::test::run_command;
using shmbus::test::unique_channel;
using json = nlohmann::json;

RunResult cli(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 20s) {
  std::vector<std::string> argv{SHMBUS_CLI};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, timeout);
}

constexpr std::uint64_t kCount = 5000;  // about ten laps of the 64 KiB ring
constexpr std::uint64_t kSize = 100;

// One Prometheus sample: metric name, labels, value.
struct Sample {
  std::string metric;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Parses the text exposition format's sample lines (comments skipped). Label values here hold no
// escaped quotes, which the scenario's names guarantee.
std::vector<Sample> parse_prometheus(const std::string& text) {
  std::vector<Sample> out;
  for (const std::string& line : lines_of(text)) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    const auto brace = line.find('{');
    const auto space = line.rfind(' ');
    if (brace != std::string::npos && brace < space) {
      s.metric = line.substr(0, brace);
      const auto close = line.find('}', brace);
      std::string labels = line.substr(brace + 1, close - brace - 1);
      std::size_t pos = 0;
      while (pos < labels.size()) {
        const auto eq = labels.find('=', pos);
        const auto q1 = labels.find('"', eq);
        const auto q2 = labels.find('"', q1 + 1);
        s.labels[labels.substr(pos, eq - pos)] = labels.substr(q1 + 1, q2 - q1 - 1);
        pos = q2 + 1;
        if (pos < labels.size() && labels[pos] == ',') ++pos;
      }
    } else {
      s.metric = line.substr(0, space);
    }
    s.value = std::stod(line.substr(space + 1));
    out.push_back(s);
  }
  return out;
}

const Sample* find_sample(const std::vector<Sample>& samples, const std::string& metric,
                          const std::map<std::string, std::string>& want = {}) {
  for (const Sample& s : samples) {
    if (s.metric != metric) continue;
    bool match = true;
    for (const auto& [k, v] : want) {
      auto it = s.labels.find(k);
      match = match && it != s.labels.end() && it->second == v;
    }
    if (match) return &s;
  }
  return nullptr;
}

const json* find_named(const json& array, const std::string& key, const std::string& value) {
  for (const json& e : array) {
    if (e.contains(key) && e[key] == value) return &e;
  }
  return nullptr;
}

class ObserveScenario : public ::testing::Test {
 protected:
  void SetUp() override {
    // `shmbus pub` creates the channel (and so is its creator) with one message; the drop
    // subscriber attaches; a second `shmbus pub` laps it about ten times over.
    ASSERT_TRUE(cli({"pub", ch_.name(), "--count", "1", "--size", std::to_string(kSize),
                     "--capacity", "65536", "--max-message", "1024", "--quiet"})
                    .status.ok());
    shmbus::SubscriberOptions o;
    o.policy = shmbus::Policy::drop;
    o.start = shmbus::StartFrom::earliest;
    o.name = "dropper";
    auto sub = shmbus::Subscriber::open(ch_.name(), o);
    ASSERT_TRUE(sub) << sub.error().message;
    dropper_.emplace(std::move(*sub));
    ASSERT_TRUE(cli({"pub", ch_.name(), "--count", std::to_string(kCount - 1), "--size",
                     std::to_string(kSize), "--quiet"})
                    .status.ok());
    // It reads what is left; every sequence is either delivered or counted lost.
    std::uint64_t last = 0;
    for (int polls = 0; polls < 100'000 && last < kCount; ++polls) {
      dropper_->poll([&](const shmbus::Message& m) {
        lost_ += m.lost_before;
        ++delivered_;
        last = m.sequence;
      });
    }
    ASSERT_EQ(last, kCount);
    ASSERT_EQ(delivered_ + lost_, kCount);
    ASSERT_GT(lost_, kCount / 2);
    // A block subscriber whose process is killed while attached.
    ghost_ = Child::fork([&] {
      shmbus::SubscriberOptions g;
      g.policy = shmbus::Policy::block;
      g.name = "ghost";
      g.liveness_timeout = std::chrono::seconds(600);
      auto s = shmbus::Subscriber::open(ch_.name(), g);
      if (!s) return 1;
      std::printf("READY\n");
      std::fflush(stdout);
      ::pause();
      return 0;
    });
    ASSERT_TRUE(ghost_.wait_for_line("READY", 10s)) << ghost_.output();
    ghost_pid_ = ghost_.pid();
    ghost_.kill_hard();
  }

  ChannelGuard ch_{unique_channel("obs")};
  std::optional<shmbus::Subscriber> dropper_;
  std::uint64_t delivered_ = 0;
  std::uint64_t lost_ = 0;
  Child ghost_;
  pid_t ghost_pid_ = 0;
};

TEST_F(ObserveScenario, StatJsonReportsExactlyWhatHappened) {
  const RunResult r = cli({"stat", ch_.name(), "--json"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << r.out;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["channel"], ch_.name());
  EXPECT_EQ(j["capacity"], 65536);
  EXPECT_EQ(j["max_message"], 1024);
  EXPECT_EQ(j["single_producer"], false);
  EXPECT_EQ(j["head_sequence"], kCount);
  EXPECT_EQ(j["published_messages"], kCount);
  EXPECT_EQ(j["published_bytes"], kCount * kSize);
  EXPECT_EQ(j["producers_attached"], 0);
  EXPECT_EQ(j["producers"].size(), 0u);
  EXPECT_EQ(j["abandoned"], false);  // this process is attached
  EXPECT_EQ(j["journal"], nullptr);
  EXPECT_EQ(j["evictions"], 0);
  EXPECT_EQ(j["incarnation"].get<std::string>().size(), 16u);
  // Nothing is published while stat samples its rate.
  EXPECT_EQ(j["messages_per_s"], 0);
  ASSERT_EQ(j["subscribers"].size(), 2u);

  const json* d = find_named(j["subscribers"], "name", "dropper");
  ASSERT_NE(d, nullptr) << r.out;
  EXPECT_EQ((*d)["pid"], ::getpid());
  EXPECT_EQ((*d)["alive"], true);
  EXPECT_EQ((*d)["state"], "alive");
  EXPECT_EQ((*d)["policy"], "drop");
  EXPECT_EQ((*d)["received"], delivered_);
  EXPECT_EQ((*d)["lost"], lost_);
  EXPECT_EQ((*d)["spilled"], 0);
  EXPECT_EQ((*d)["next_sequence"], kCount + 1);
  EXPECT_EQ((*d)["lag_messages"], 0);
  EXPECT_EQ((*d)["lag_bytes"], 0);
  EXPECT_EQ((*d)["latency"], nullptr);

  const json* g = find_named(j["subscribers"], "name", "ghost");
  ASSERT_NE(g, nullptr) << r.out;
  EXPECT_EQ((*g)["pid"], ghost_pid_);
  EXPECT_EQ((*g)["alive"], false);
  EXPECT_EQ((*g)["state"], "dead");
  EXPECT_EQ((*g)["policy"], "block");
  EXPECT_EQ((*g)["received"], 0);
  EXPECT_EQ((*g)["lost"], 0);
  EXPECT_EQ((*g)["next_sequence"], kCount + 1);
}

TEST_F(ObserveScenario, StatHumanOutputNamesTheStates) {
  const RunResult r = cli({"stat", ch_.name()});
  ASSERT_TRUE(r.status.ok()) << r.out;
  bool dropper_row = false;
  bool ghost_row = false;
  for (const std::string& line : lines_of(r.out)) {
    if (line.find("dropper") != std::string::npos) {
      dropper_row = line.find("alive") != std::string::npos &&
                    line.find("drop") != std::string::npos;
    }
    if (line.find("ghost") != std::string::npos) {
      ghost_row = line.find("dead") != std::string::npos &&
                  line.find(std::to_string(ghost_pid_)) != std::string::npos;
    }
  }
  EXPECT_TRUE(dropper_row) << r.out;
  EXPECT_TRUE(ghost_row) << r.out;
}

TEST_F(ObserveScenario, PrometheusOutputCarriesTheSameCounts) {
  const RunResult r = cli({"stat", ch_.name(), "--prometheus"});
  ASSERT_TRUE(r.status.ok()) << r.out;
  const auto samples = parse_prometheus(r.out);
  const std::map<std::string, std::string> channel{{"channel", ch_.name()}};
  auto value = [&](const std::string& metric, std::map<std::string, std::string> labels) {
    labels.insert(channel.begin(), channel.end());
    const Sample* s = find_sample(samples, metric, labels);
    EXPECT_NE(s, nullptr) << metric << " missing in\n" << r.out;
    return s ? s->value : -1;
  };
  EXPECT_EQ(value("shmbus_published_messages_total", {}), kCount);
  EXPECT_EQ(value("shmbus_published_bytes_total", {}), kCount * kSize);
  EXPECT_EQ(value("shmbus_head_sequence", {}), kCount);
  EXPECT_EQ(value("shmbus_producers", {}), 0);
  EXPECT_EQ(value("shmbus_subscriber_received_total", {{"name", "dropper"}}), delivered_);
  EXPECT_EQ(value("shmbus_subscriber_lost_total", {{"name", "dropper"}}), lost_);
  EXPECT_EQ(value("shmbus_subscriber_lag_messages", {{"name", "dropper"}}), 0);
  EXPECT_EQ(value("shmbus_subscriber_alive", {{"name", "dropper"}}), 1);
  EXPECT_EQ(value("shmbus_subscriber_alive", {{"name", "ghost"}}), 0);
  // Every sample has a TYPE line before it.
  std::set<std::string> typed;
  for (const std::string& line : lines_of(r.out)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      typed.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    const std::string metric = line.substr(0, line.find_first_of("{ "));
    EXPECT_TRUE(typed.count(metric) || typed.count(metric.substr(0, metric.rfind('_'))))
        << "no # TYPE before " << line;
  }
}

TEST_F(ObserveScenario, LsListsTheChannelWithItsCounts) {
  const RunResult r = cli({"ls", "--json"});
  ASSERT_TRUE(r.status.ok()) << r.out;
  const json j = json::parse(r.out);
  const json* c = find_named(j["channels"], "name", ch_.name());
  ASSERT_NE(c, nullptr) << r.out;
  EXPECT_EQ((*c)["capacity"], 65536);
  EXPECT_EQ((*c)["producers"], 0);
  EXPECT_EQ((*c)["subscribers"], 2);
  EXPECT_EQ((*c)["head_sequence"], kCount);
  EXPECT_EQ((*c)["published_messages"], kCount);
  EXPECT_EQ((*c)["journal"], "none");
  EXPECT_EQ((*c)["abandoned"], false);
  EXPECT_FALSE(c->contains("error"));
}

TEST_F(ObserveScenario, InspectShowsTheLastRecordsAndAHealthyWalk) {
  const RunResult r = cli({"inspect", ch_.name(), "--records", "3", "--json"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << r.out;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["records"].size(), 3u) << r.out;
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(j["records"][i]["sequence"], kCount - 2 + i);
    EXPECT_EQ(j["records"][i]["length"], kSize);
    EXPECT_EQ(j["records"][i]["type"], "data");
  }
  EXPECT_EQ(j["walk"]["problems"].size(), 0u);
  EXPECT_EQ(j["walk"]["last_sequence"], kCount);
  const RunResult text = cli({"inspect", ch_.name(), "--records", "2"});
  ASSERT_TRUE(text.status.ok()) << text.out;
  EXPECT_NE(text.out.find("walk: OK"), std::string::npos) << text.out;
}

TEST_F(ObserveScenario, GcDryRunNamesTheChannelOnlyOnceEveryProcessIsGone) {
  RunResult r = cli({"gc", "--dry-run"});
  ASSERT_TRUE(r.status.ok()) << r.out;
  const std::string line = "would remove channel " + ch_.name();
  auto listed = [&](const std::string& out) {
    for (const std::string& l : lines_of(out)) {
      if (l == line) return true;
    }
    return false;
  };
  EXPECT_FALSE(listed(r.out)) << r.out;  // the drop subscriber (this process) is alive
  dropper_.reset();                      // now every process is gone
  r = cli({"gc", "--dry-run"});
  ASSERT_TRUE(r.status.ok()) << r.out;
  EXPECT_TRUE(listed(r.out)) << r.out;
  EXPECT_TRUE(shmbus::test::ChannelFiles::open(ch_.name()).has_value());  // still there
  // rm needs no --force now.
  r = cli({"rm", ch_.name()});
  EXPECT_TRUE(r.status.ok()) << r.out;
  EXPECT_FALSE(shmbus::test::ChannelFiles::open(ch_.name()).has_value());
}

TEST_F(ObserveScenario, RmRefusesWhileAProcessIsAttached) {
  RunResult r = cli({"rm", ch_.name()});
  EXPECT_EQ(r.status.code, 1) << r.out;
  EXPECT_TRUE(shmbus::test::ChannelFiles::open(ch_.name()).has_value());
  r = cli({"rm", ch_.name(), "--force"});
  EXPECT_TRUE(r.status.ok()) << r.out;
  EXPECT_FALSE(shmbus::test::ChannelFiles::open(ch_.name()).has_value());
}

// A committed record whose length no writer produces: inspect names its position and exits 1.
TEST(ObserveInspect, ADamagedRecordIsReportedByPosition) {
  ChannelGuard ch(unique_channel("obsbad"));
  shmbus::ChannelOptions o;
  o.capacity = 64 << 10;
  o.max_message = 1024;
  auto pub = shmbus::Publisher::open(ch.name(), o);
  ASSERT_TRUE(pub);
  std::vector<std::byte> payload(kSize);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(pub->try_publish(payload), shmbus::PublishStatus::ok);
  const std::uint64_t position = 4 * shmbus::core::frame_size(kSize);  // sequence 5
  {
    auto ring = shmbus::test::FileMapping::open(shmbus::test::ring_path(ch.name()), true);
    ASSERT_TRUE(ring);
    auto* h = reinterpret_cast<shmbus::core::RecordHeader*>(ring->data() +
                                                            shmbus::core::kRingDataOffset + position);
    ASSERT_EQ(h->sequence, 5u);
    h->length = 60000;  // above max_message
  }
  const RunResult r = cli({"inspect", ch.name()});
  EXPECT_EQ(r.status.code, 1) << r.out;
  EXPECT_NE(r.out.find("PROBLEM at position " + std::to_string(position)), std::string::npos)
      << r.out;
}

// `tail --latency-histogram` records every message it prints; stat shows the percentiles, in
// order, from the histogram the named subscriber left behind.
TEST(ObserveCli, StatShowsTheLatencyPercentilesOfAHistogramSubscriber) {
  ChannelGuard ch(unique_channel("obslat"));
  ASSERT_TRUE(cli({"pub", ch.name(), "--count", "1", "--quiet"}).status.ok());
  Child tail = Child::spawn({SHMBUS_CLI, "tail", ch.name(), "--name", "timed",
                             "--latency-histogram", "--count", "200", "--format", "json"});
  // Published once the subscriber is attached (it starts at the next message).
  for (int i = 0; i < 200; ++i) {
    auto st = shmbus::read_channel_stats(ch.name());
    if (st && !st->subscribers.empty()) break;
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(cli({"pub", ch.name(), "--count", "200", "--rate", "20000", "--quiet"}).status.ok());
  const auto status = tail.wait(10s);
  ASSERT_TRUE(status && status->ok()) << tail.output();
  const RunResult r = cli({"stat", ch.name(), "--json", "--interval-ms", "0"});
  ASSERT_TRUE(r.status.ok()) << r.out;
  const json j = json::parse(r.out);
  const json* t = find_named(j["subscribers"], "name", "timed");
  ASSERT_NE(t, nullptr) << r.out;
  EXPECT_EQ((*t)["state"], "detached");
  EXPECT_EQ((*t)["received"], 200);
  const json& lat = (*t)["latency"];
  ASSERT_TRUE(lat.is_object()) << r.out;
  EXPECT_EQ(lat["count"], 200);
  EXPECT_GT(lat["max_ns"].get<std::uint64_t>(), 0u);
  EXPECT_LE(lat["p50_ns"].get<std::uint64_t>(), lat["p99_ns"].get<std::uint64_t>());
  EXPECT_LE(lat["p99_ns"].get<std::uint64_t>(), lat["p999_ns"].get<std::uint64_t>());
  EXPECT_LE(lat["p999_ns"].get<std::uint64_t>(), lat["max_ns"].get<std::uint64_t>());
}

// --watch --json: one JSON document per refresh, rates over each interval, until SIGTERM (exit 0).
TEST(ObserveCli, StatWatchPrintsOneDocumentPerIntervalUntilTerminated) {
  ChannelGuard ch(unique_channel("obswatch"));
  ASSERT_TRUE(cli({"pub", ch.name(), "--count", "1", "--quiet"}).status.ok());
  // A publisher at 2000 msg/s for the whole watch.
  Child pub = Child::spawn({SHMBUS_CLI, "pub", ch.name(), "--count", "4000", "--rate", "2000",
                            "--quiet"});
  for (int i = 0; i < 500; ++i) {  // until it publishes
    auto st = shmbus::read_channel_stats(ch.name());
    if (st && st->published_messages > 10) break;
    std::this_thread::sleep_for(10ms);
  }
  Child watch = Child::spawn({SHMBUS_CLI, "stat", ch.name(), "--watch", "0.2", "--json",
                              "--interval-ms", "100"});
  std::vector<json> docs;
  for (int i = 0; i < 4; ++i) {
    auto line = watch.read_line(5s);
    ASSERT_TRUE(line) << watch.output();
    docs.push_back(json::parse(*line));
  }
  ASSERT_EQ(::kill(watch.pid(), SIGTERM), 0);
  const auto status = watch.wait(5s);
  ASSERT_TRUE(status && status->ok()) << (status ? status->describe() : "still running");
  // Each document's rate is its interval's messages over its interval: summed over the last three
  // they must give back the growth of published_messages between the first and the last.
  double counted = 0;
  std::uint64_t last_published = 0;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    const json& d = docs[i];
    EXPECT_EQ(d["channel"], ch.name());
    EXPECT_EQ(d["rates_measured"], true);
    EXPECT_GT(d["interval_s"].get<double>(), 0.05);
    EXPECT_GE(d["published_messages"].get<std::uint64_t>(), last_published);
    last_published = d["published_messages"].get<std::uint64_t>();
    if (i > 0) counted += d["messages_per_s"].get<double>() * d["interval_s"].get<double>();
  }
  const double grown = static_cast<double>(docs.back()["published_messages"].get<std::uint64_t>() -
                                           docs.front()["published_messages"].get<std::uint64_t>());
  EXPECT_GT(grown, 0);
  EXPECT_NEAR(counted, grown, 1.0 + grown * 1e-6);
  pub.kill_hard();
}

TEST(ObserveCli, StatOfAMissingChannelFails) {
  const RunResult r = cli({"stat", "t-no-such-" + std::to_string(::getpid())});
  EXPECT_EQ(r.status.code, 1);
}

}  // namespace
