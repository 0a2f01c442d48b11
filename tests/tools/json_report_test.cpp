// The --json reports of `shmbus rm`, `gc` and `record`, parsed and checked against what happened:
// which objects went, who was attached, what was recorded, and the error when it failed.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <initializer_list>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "shmbus/shmbus.hpp"
#include "shmbus/stats.hpp"
#include "tests/support/command.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/process.hpp"
#include "tests/support/shmbus_cli.hpp"

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using shmbus::test::channel_objects;
using shmbus::test::ChannelGuard;
using shmbus::test::Child;
using shmbus::test::RunResult;
using shmbus::test::run_command;
using shmbus::test::run_shmbus;
using shmbus::test::TempDir;
using shmbus::test::unique_channel;

// Creates `channel` from a process that is gone, so that nobody is attached; `mode` is the ring's.
void create_abandoned(const std::string& channel, unsigned mode = 0660) {
  Child creator = Child::fork([&] {
    shmbus::ChannelOptions options;
    options.mode = mode;
    return shmbus::Publisher::open(channel, options) ? 0 : 1;
  });
  const auto created = creator.wait(10s);
  ASSERT_TRUE(created && created->ok());
}

TEST(RmJson, ReportsEveryObjectRemovedThenNotFoundTheSecondTime) {
  ChannelGuard channel(unique_channel("rmjson"));
  create_abandoned(channel.name());
  const std::vector<std::string> objects = channel_objects(channel.name());
  ASSERT_EQ(objects.size(), 4u);

  const RunResult r = run_shmbus({"rm", channel.name(), "--json"});
  EXPECT_EQ(r.status.code, 0) << r.out;
  const json doc = json::parse(r.out);
  EXPECT_EQ(doc.at("channel"), channel.name());
  EXPECT_EQ(doc.at("removed"), true);
  EXPECT_EQ(doc.at("refused"), false);
  EXPECT_EQ(doc.at("live_processes").size(), 0u);
  EXPECT_TRUE(doc.at("unreadable").is_null());
  EXPECT_TRUE(doc.at("error").is_null());
  ASSERT_EQ(doc.at("objects").size(), objects.size()) << r.out;
  for (const json& object : doc.at("objects")) {
    EXPECT_EQ(object.at("removed"), true) << object;
    EXPECT_TRUE(object.at("error").is_null()) << object;
    const std::string name = object.at("object").get<std::string>();
    EXPECT_NE(std::find(objects.begin(), objects.end(), name), objects.end()) << name;
  }
  EXPECT_TRUE(channel_objects(channel.name()).empty());

  const RunResult again = run_shmbus({"rm", channel.name(), "--json"});
  EXPECT_EQ(again.status.code, 1) << again.out;
  const json missing = json::parse(again.out);
  EXPECT_EQ(missing.at("removed"), false);
  EXPECT_EQ(missing.at("error").at("code"), "not_found");
  EXPECT_NE(missing.at("error").at("message").get<std::string>().find(channel.name()),
            std::string::npos);
  EXPECT_EQ(missing.at("objects").size(), 0u);
}

TEST(RmJson, NamesTheLiveProducerWhenRefusingAndWhenForced) {
  ChannelGuard channel(unique_channel("rmjson-live"));
  auto publisher = shmbus::Publisher::open(channel.name(), shmbus::ChannelOptions{});
  ASSERT_TRUE(publisher) << publisher.error().message;
  const auto names_this_producer = [](const json& doc) {
    for (const json& p : doc.at("live_processes")) {
      if (p.at("pid") == ::getpid() && p.at("role") == "producer") return true;
    }
    return false;
  };

  const RunResult refused = run_shmbus({"rm", channel.name(), "--json"});
  EXPECT_EQ(refused.status.code, 1) << refused.out;
  const json no = json::parse(refused.out);
  EXPECT_EQ(no.at("refused"), true);
  EXPECT_EQ(no.at("removed"), false);
  EXPECT_TRUE(no.at("error").is_null());
  EXPECT_EQ(no.at("objects").size(), 0u);
  EXPECT_TRUE(names_this_producer(no)) << refused.out;
  EXPECT_FALSE(channel_objects(channel.name()).empty());

  const RunResult forced = run_shmbus({"rm", channel.name(), "--force", "--json"});
  EXPECT_EQ(forced.status.code, 0) << forced.out;
  const json yes = json::parse(forced.out);
  EXPECT_EQ(yes.at("refused"), false);
  EXPECT_EQ(yes.at("removed"), true);
  EXPECT_TRUE(names_this_producer(yes)) << forced.out;
  EXPECT_TRUE(channel_objects(channel.name()).empty());
}

// A dry run only: a real gc would remove the abandoned channels of tests running concurrently.
TEST(GcJson, DryRunListsAnAbandonedChannelButNotALiveOneAndRemovesNothing) {
  ChannelGuard abandoned(unique_channel("gcjson-gone"));
  ChannelGuard live(unique_channel("gcjson-live"));
  create_abandoned(abandoned.name());
  auto publisher = shmbus::Publisher::open(live.name(), shmbus::ChannelOptions{});
  ASSERT_TRUE(publisher) << publisher.error().message;

  const RunResult r = run_shmbus({"gc", "--dry-run", "--json"});
  ASSERT_EQ(r.status.code, 0) << r.out;
  const json doc = json::parse(r.out);
  EXPECT_EQ(doc.at("dry_run"), true);
  const json& channels = doc.at("channels");
  EXPECT_NE(std::find(channels.begin(), channels.end(), abandoned.name()), channels.end()) << r.out;
  EXPECT_EQ(std::find(channels.begin(), channels.end(), live.name()), channels.end()) << r.out;
  EXPECT_TRUE(doc.at("leftovers").is_array());
  EXPECT_TRUE(doc.at("skipped").is_array());
  EXPECT_EQ(doc.at("failures").size(), 0u) << r.out;
  EXPECT_EQ(channel_objects(abandoned.name()).size(), 4u);  // still there
}

// Run by a user who may not unlink root's objects (/dev/shm is sticky), gc fails on the channel
// and says so in `failures`, exiting 1. It can remove nothing of anyone's, so it runs for real.
TEST(GcJson, AChannelThatCannotBeRemovedIsAFailureNamingIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to act as another user";
  ChannelGuard channel(unique_channel("gcjson-perm"));
  create_abandoned(channel.name(), 0666);  // nobody may read it, and so get as far as the unlink
  const RunResult r = run_command(
      {"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", SHMBUS_CLI, "gc",
       "--json"},
      10s);
  EXPECT_EQ(r.status.code, 1) << r.out;
  const json doc = json::parse(r.out);
  EXPECT_EQ(doc.at("dry_run"), false);
  bool named = false;
  for (const json& failure : doc.at("failures")) {
    named = named || failure.at("name") == channel.name();
  }
  EXPECT_TRUE(named) << r.out;
  const json& channels = doc.at("channels");
  EXPECT_EQ(std::find(channels.begin(), channels.end(), channel.name()), channels.end()) << r.out;
  EXPECT_EQ(channel_objects(channel.name()).size(), 4u);
}

// Waits until the channel's journaler has written `sequence` (the journal files hold it).
bool wait_until_written(const std::string& channel, std::uint64_t sequence) {
  for (int i = 0; i < 500; ++i) {
    auto stats = shmbus::read_channel_stats(channel);
    if (stats && stats->journal && stats->journal->written_sequence >= sequence) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// `record --json` stopped by SIGINT, twice on one directory; the report of the run.
json record_until_written(const std::string& channel, const std::string& dir,
                          std::uint64_t sequence) {
  Child record = Child::spawn(
      {SHMBUS_CLI, "record", channel, "--dir", dir, "--fsync", "batch", "--quiet", "--json"});
  EXPECT_TRUE(wait_until_written(channel, sequence));
  ::kill(record.pid(), SIGINT);
  const auto status = record.wait(10s);
  EXPECT_TRUE(status && status->ok()) << record.output();
  return json::parse(record.output());
}

TEST(RecordJson, ReportsWhatWasRecordedAndWhereTheNextRunContinues) {
  ChannelGuard channel(unique_channel("recjson"));
  TempDir dir("recjson");
  ASSERT_TRUE(run_shmbus({"pub", channel.name(), "--count", "5", "--quiet"}).status.ok());

  const json first = record_until_written(channel.name(), dir.path(), 5);
  EXPECT_EQ(first.at("channel"), channel.name());
  EXPECT_EQ(first.at("dir"), dir.path());
  EXPECT_EQ(first.at("outcome"), "stopped");
  EXPECT_TRUE(first.at("error").is_null());
  EXPECT_EQ(first.at("recovery").at("next_sequence"), 0);  // a new journal
  EXPECT_EQ(first.at("recovery").at("segments"), 0);
  EXPECT_EQ(first.at("stats").at("recorded"), 5);
  EXPECT_EQ(first.at("stats").at("gap_records"), 0);
  EXPECT_EQ(first.at("stats").at("written_sequence"), 5);
  EXPECT_EQ(first.at("stats").at("durable_sequence"), 5);  // drained with fsync batch
  EXPECT_EQ(first.at("stats").at("blocked"), false);

  ASSERT_TRUE(run_shmbus({"pub", channel.name(), "--count", "3", "--quiet"}).status.ok());
  const json second = record_until_written(channel.name(), dir.path(), 8);
  EXPECT_EQ(second.at("recovery").at("next_sequence"), 6);  // continues after what it has
  EXPECT_EQ(second.at("recovery").at("segments"), 1);
  EXPECT_EQ(second.at("recovery").at("truncated_bytes"), 0);
  EXPECT_EQ(second.at("recovery").at("damage").size(), 0u);
  EXPECT_EQ(second.at("stats").at("recorded"), 3);
  EXPECT_EQ(second.at("stats").at("written_sequence"), 8);
}

TEST(RecordJson, AChannelThatDoesNotExistIsAFailedOutcomeWithTheError) {
  const std::string missing = unique_channel("recjson-missing");
  TempDir dir("recjson");
  const RunResult r = run_shmbus({"record", missing, "--dir", dir.path(), "--quiet", "--json"});
  EXPECT_EQ(r.status.code, 1) << r.out;
  const json doc = json::parse(r.out);
  EXPECT_EQ(doc.at("outcome"), "failed");
  EXPECT_NE(doc.at("error").get<std::string>().find(missing), std::string::npos) << r.out;
  EXPECT_TRUE(doc.at("recovery").is_null());
  EXPECT_TRUE(doc.at("stats").is_null());
}

}  // namespace
