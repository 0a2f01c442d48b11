// The journal section of the control segment (ipc/journal_link.hpp): attaching a journaler, one
// live journaler per channel, taking over from a dead one, progress reports as publishers and
// tools see them, detaching.
#include <unistd.h>

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "ipc/channel.hpp"
#include "ipc/journal_link.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using detail::ChannelMapping;

std::shared_ptr<ChannelMapping> map_channel(const std::string& name) {
  auto m = ChannelMapping::open(name, true, std::chrono::milliseconds(500));
  if (!m) throw std::runtime_error(m.error().message);
  return *m;
}

// A child process that attaches as the channel's journaler and then waits to be killed.
Child journaler_child(const std::string& channel, const std::string& dir) {
  Child c = Child::fork([channel, dir] {
    auto m = ChannelMapping::open(channel, true, std::chrono::milliseconds(500));
    if (!m || !detail::claim_journal(**m, dir)) return 1;
    detail::publish_journal_progress(**m, 42, 40);
    const char line[] = "READY\n";
    if (::write(1, line, sizeof line - 1) < 0) return 2;
    for (;;) ::pause();
  });
  if (!c.wait_for_line("READY", std::chrono::seconds(10))) {
    throw std::runtime_error("the journaler child did not attach: " + c.output());
  }
  return c;
}

TEST(JournalLink, ClaimPublishesTheDirectoryAndTheOwner) {
  ChannelGuard ch(unique_channel("jlink"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto m = map_channel(ch.name());
  EXPECT_FALSE(detail::find_journal(*m)) << "a fresh channel has no journaler";
  ASSERT_TRUE(detail::claim_journal(*m, "/var/lib/shmbus/md"));
  const auto link = detail::find_journal(*m);
  ASSERT_TRUE(link);
  EXPECT_EQ(link->dir, "/var/lib/shmbus/md");
  EXPECT_EQ(link->owner.pid, static_cast<std::uint32_t>(::getpid()));
  EXPECT_EQ(link->owner.start_time, detail::self_process().start_time);
  EXPECT_TRUE(link->alive);
  EXPECT_EQ(link->written, 0u);
  EXPECT_EQ(link->durable, 0u);
  detail::release_journal(*m);
}

TEST(JournalLink, ProgressReachesPublishersAndDurableNeverExceedsWritten) {
  ChannelGuard ch(unique_channel("jprog"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  EXPECT_EQ(pub->journaled_sequence(), 0u);
  EXPECT_EQ(pub->durable_sequence(), 0u);
  auto m = map_channel(ch.name());
  ASSERT_TRUE(detail::claim_journal(*m, "/j"));
  detail::publish_journal_progress(*m, 10, 7);
  EXPECT_EQ(pub->journaled_sequence(), 10u);
  EXPECT_EQ(pub->durable_sequence(), 7u);
  const auto link = detail::find_journal(*m);
  ASSERT_TRUE(link);
  EXPECT_EQ(link->written, 10u);
  EXPECT_EQ(link->durable, 7u);
  EXPECT_GT(m->control().journal_heartbeat_ns.load(), 0);
  detail::publish_journal_progress(*m, 12, 20);  // a caller's slip: durable is capped
  EXPECT_EQ(pub->journaled_sequence(), 12u);
  EXPECT_EQ(pub->durable_sequence(), 12u);
  detail::release_journal(*m);
}

TEST(JournalLink, SecondJournalerWhileTheFirstLivesIsBusyNamingItsPid) {
  ChannelGuard ch(unique_channel("jbusy"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  Child first = journaler_child(ch.name(), "/journal/one");
  auto m = map_channel(ch.name());
  auto second = detail::claim_journal(*m, "/journal/two");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::busy);
  EXPECT_NE(second.error().message.find("pid " + std::to_string(first.pid())), std::string::npos)
      << second.error().message;
  EXPECT_NE(second.error().message.find("/journal/one"), std::string::npos)
      << second.error().message;
  const auto link = detail::find_journal(*m);
  ASSERT_TRUE(link);
  EXPECT_EQ(link->dir, "/journal/one");
  EXPECT_EQ(link->owner.pid, static_cast<std::uint32_t>(first.pid()));
}

TEST(JournalLink, SameProcessCannotAttachTwice) {
  ChannelGuard ch(unique_channel("jtwice"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto m = map_channel(ch.name());
  ASSERT_TRUE(detail::claim_journal(*m, "/a"));
  auto again = detail::claim_journal(*m, "/b");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::busy);
  EXPECT_EQ(detail::find_journal(*m)->dir, "/a");
  detail::release_journal(*m);
}

TEST(JournalLink, DeadJournalerIsReportedDeadAndTakenOver) {
  ChannelGuard ch(unique_channel("jdead"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  Child first = journaler_child(ch.name(), "/journal/same");
  first.kill_hard();
  auto m = map_channel(ch.name());
  auto link = detail::find_journal(*m);
  ASSERT_TRUE(link);
  EXPECT_FALSE(link->alive);
  EXPECT_EQ(link->written, 42u) << "what a dead journaler wrote is still in its files";
  EXPECT_FALSE(pub->wait_durable(41, std::chrono::seconds(5)))
      << "nobody will make 41 durable any more";
  EXPECT_TRUE(pub->wait_durable(40, std::chrono::seconds(5)));
  // A restart in the same directory keeps the progress: it is still true of those files.
  ASSERT_TRUE(detail::claim_journal(*m, "/journal/same"));
  link = detail::find_journal(*m);
  ASSERT_TRUE(link);
  EXPECT_TRUE(link->alive);
  EXPECT_EQ(link->owner.pid, static_cast<std::uint32_t>(::getpid()));
  EXPECT_EQ(link->written, 42u);
  EXPECT_EQ(link->durable, 40u);
  detail::release_journal(*m);
}

TEST(JournalLink, AJournalerInAnotherDirectoryStartsFromZero) {
  ChannelGuard ch(unique_channel("jother"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  Child first = journaler_child(ch.name(), "/journal/old");
  first.kill_hard();
  auto m = map_channel(ch.name());
  ASSERT_TRUE(detail::claim_journal(*m, "/journal/new"));
  const auto link = detail::find_journal(*m);
  ASSERT_TRUE(link);
  EXPECT_EQ(link->dir, "/journal/new");
  EXPECT_EQ(link->written, 0u);
  EXPECT_EQ(link->durable, 0u);
  detail::release_journal(*m);
}

TEST(JournalLink, ReleaseDetachesOnlyItsOwnProcess) {
  ChannelGuard ch(unique_channel("jrel"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto m = map_channel(ch.name());
  ASSERT_TRUE(detail::claim_journal(*m, "/mine"));
  detail::release_journal(*m);
  EXPECT_FALSE(detail::find_journal(*m));
  Child other = journaler_child(ch.name(), "/theirs");
  detail::release_journal(*m);  // not ours: nothing happens
  const auto link = detail::find_journal(*m);
  ASSERT_TRUE(link);
  EXPECT_EQ(link->owner.pid, static_cast<std::uint32_t>(other.pid()));
  EXPECT_EQ(link->dir, "/theirs");
}

TEST(JournalLink, RelativeOrOverlongDirectoryIsInvalidArgument) {
  ChannelGuard ch(unique_channel("jdir"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto m = map_channel(ch.name());
  auto relative = detail::claim_journal(*m, "journal");
  ASSERT_FALSE(relative);
  EXPECT_EQ(relative.error().code, ErrorCode::invalid_argument);
  auto overlong = detail::claim_journal(*m, "/" + std::string(detail::kJournalDirSize, 'x'));
  ASSERT_FALSE(overlong);
  EXPECT_EQ(overlong.error().code, ErrorCode::invalid_argument);
  EXPECT_FALSE(detail::find_journal(*m)) << "a refused claim attaches nothing";
}

TEST(JournalLink, AJournalerOnItsOwnMappingIsSeenThroughEveryOtherMappingOfTheChannel) {
  ChannelGuard ch(unique_channel("jacc"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto journaler_side = ChannelMapping::open(ch.name(), false, std::chrono::seconds(1));
  ASSERT_TRUE(journaler_side);
  ChannelMapping& m = **journaler_side;
  EXPECT_EQ(m.info().incarnation, pub->info().incarnation);
  ASSERT_TRUE(detail::claim_journal(m, "/via/own/mapping"));
  // A spill subscriber (its own mapping) finds the journaler attached.
  auto spill = Subscriber::open(ch.name(), sub_options(Policy::spill));
  ASSERT_TRUE(spill) << spill.error().message;
  detail::publish_journal_progress(m, 3, 2);
  EXPECT_EQ(pub->journaled_sequence(), 3u);
  EXPECT_EQ(pub->durable_sequence(), 2u);
  detail::release_journal(m);
  EXPECT_FALSE(pub->wait_durable(3, std::chrono::milliseconds(10))) << "no journaler is attached";
}

}  // namespace
}  // namespace shmbus
