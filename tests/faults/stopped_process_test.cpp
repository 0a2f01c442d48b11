// Processes stopped (SIGSTOP) at bad moments and continued (SIGCONT) later.
//
// Liveness in shmbus is about process existence, not progress: a peer is dead when its pid no
// longer names a process started at the time its slot records (ipc/process.hpp). A stopped
// process is alive, so it is never evicted, however long it stays stopped:
//  - a stopped block subscriber keeps gating (the producers see back-pressure) and loses nothing;
//  - a stopped drop subscriber never slows the producers and counts what it lost when it resumes;
//  - a stopped spill subscriber never slows them either and catches up from the journal.
// A process is evicted while it lives only when a peer misjudges it dead: its pid now names a
// process with another start time (simulated here by rewriting the start time, which is what a
// reused pid looks like) or it runs in another pid namespace (pid_namespace_test.cpp). Resumed,
// it must learn it was evicted and leave the slot (which another process may hold by then) alone.
//
// A producer stopped between claim and commit past the abandon timeout finds its claim marked
// abandoned when it commits; readers count that sequence lost exactly once.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/faults/faults_testing.hpp"
#include "tests/support/inprocess.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using namespace shmbus::test::faults;

std::vector<std::string> consume_args(const std::string& channel, const char* policy,
                                      std::uint64_t until_seq) {
  return std::vector<std::string>{"consume",        "--channel",     channel,   "--policy",
                                  policy,           "--liveness-ms", "100",     "--abandon-ms",
                                  "100",            "--until-seq",   str(until_seq),
                                  "--idle-timeout-ms", "20000"} +
         rule_args(kRule);
}

void expect_delivered_all(const PeerOutcome& o, std::uint64_t total) {
  EXPECT_TRUE(o.status.ok()) << o.status.describe() << "\n" << o.output;
  ASSERT_FALSE(o.result.empty()) << o.output;
  EXPECT_EQ(o.result.at("errors"), "0") << o.output;
  EXPECT_EQ(o.result.at("received"), str(total)) << o.output;
  EXPECT_EQ(o.result.at("lost"), "0") << o.output;
  EXPECT_EQ(o.result.at("first_seq"), "1") << o.output;
  EXPECT_EQ(o.result.at("last_seq"), str(total)) << o.output;
}

TEST(StoppedSubscriber, BlockSubscriberStoppedPastItsLivenessTimeoutKeepsGatingAndLosesNothing) {
  ChannelGuard ch(unique_channel("stop-block"));
  Publisher pub = Publisher::open(ch.name(), small_channel()).value();
  const std::uint64_t total = 3000;
  Child sub = start_peer(consume_args(ch.name(), "block", total));
  ASSERT_EQ(publish_counted(pub, 1, 0, 50, kRule, 5s), 50u);
  stop_process(sub.pid());

  // Five liveness timeouts of waiting: the stopped process is alive, so nobody evicts it and the
  // ring fills up behind it.
  std::uint64_t sent = 50;
  sent += publish_counted(pub, 1, sent, total - sent, kRule, 500ms);
  EXPECT_LT(sent, total) << "the producer was never held back by the stopped block subscriber";
  auto held = subscriber_of(ch.name(), sub.pid());
  ASSERT_TRUE(held) << "the stopped subscriber lost its slot";
  EXPECT_NE(held->state, SubscriberState::evicted);
  EXPECT_EQ(held->evictions, 0u);
  EXPECT_EQ(read_channel_stats(ch.name())->evictions, 0u);

  continue_process(sub.pid());
  ASSERT_EQ(publish_counted(pub, 1, sent, total - sent, kRule, 20s), total - sent);
  expect_delivered_all(finish_peer(sub), total);
}

TEST(StoppedSubscriber, DropSubscriberStoppedNeverSlowsProducersAndCountsItsLossWhenResumed) {
  ChannelGuard ch(unique_channel("stop-drop"));
  Publisher pub = Publisher::open(ch.name(), small_channel(1)).value();
  const std::uint64_t lapping = 3000, after = 200, total = lapping + after;
  Child sub = start_peer(consume_args(ch.name(), "drop", total));
  stop_process(sub.pid());

  std::vector<std::byte> buf(kRule.max_size);
  for (std::uint64_t i = 0; i < lapping; ++i) {
    const PayloadId id{1, i};
    const std::uint32_t len = payload_length(kRule, id);
    fill_payload({buf.data(), len}, id);
    ASSERT_EQ(pub.try_publish({buf.data(), len}), PublishStatus::ok) << "message " << i;
  }
  std::this_thread::sleep_for(300ms);  // three liveness timeouts
  // The only slot is the stopped one's; taking it would need it judged dead (the open looks).
  SubscriberOptions other;
  other.policy = Policy::drop;
  auto refused = Subscriber::open(ch.name(), other);
  ASSERT_FALSE(refused) << "a stopped subscriber's slot was handed to another";
  EXPECT_EQ(refused.error().code, ErrorCode::busy);

  continue_process(sub.pid());
  std::this_thread::sleep_for(100ms);  // it resumes on the ring's lap before the last messages
  ASSERT_EQ(publish_counted(pub, 1, lapping, after, kRule, 5s), after);
  const PeerOutcome o = finish_peer(sub);
  EXPECT_TRUE(o.status.ok()) << o.status.describe() << "\n" << o.output;
  ASSERT_FALSE(o.result.empty()) << o.output;
  EXPECT_EQ(o.result.at("errors"), "0") << o.output;  // no torn payload, no unreported gap
  EXPECT_EQ(o.result.at("last_seq"), str(total)) << o.output;
  const std::uint64_t received = field_u64(o.result, "received");
  const std::uint64_t lost = field_u64(o.result, "lost");
  EXPECT_GT(lost, 0u) << o.output;
  EXPECT_GE(received, after) << o.output;
  EXPECT_EQ(received + lost, total) << o.output;  // every sequence delivered or counted lost
}

TEST(StoppedSubscriber, SpillSubscriberStoppedCatchesUpFromTheJournalWhenResumed) {
  ChannelGuard ch(unique_channel("stop-spill"));
  TempDir dir("stop-spill");
  Publisher pub = Publisher::open(ch.name(), small_channel()).value();
  Child journaler = start_journaler(ch.name(), dir.str());
  const std::uint64_t total = 3000;
  Child sub = start_peer(consume_args(ch.name(), "spill", total));
  stop_process(sub.pid());
  // Fifteen laps of the ring while it is stopped; only the journaler holds the producer back.
  ASSERT_EQ(publish_counted(pub, 1, 0, total - 100, kRule, 10s), total - 100);
  std::this_thread::sleep_for(300ms);
  auto held = subscriber_of(ch.name(), sub.pid());
  ASSERT_TRUE(held) << "the stopped subscriber lost its slot";
  EXPECT_NE(held->state, SubscriberState::evicted);

  continue_process(sub.pid());
  ASSERT_EQ(publish_counted(pub, 1, total - 100, 100, kRule, 10s), 100u);
  expect_delivered_all(finish_peer(sub), total);
  ::kill(journaler.pid(), SIGTERM);
  EXPECT_TRUE(journaler.wait(20s).value_or(ExitStatus{}).ok()) << journaler.output();
}

// A process misjudged dead while it is stopped: its slot's start time no longer matches its pid
// (what a reused pid looks like). The others evict it and another subscriber takes its slot;
// continued, it reports PollStatus::evicted and never writes to the slot again.
class EvictedWhileStopped : public ::testing::TestWithParam<Policy> {};

TEST_P(EvictedWhileStopped, SubscriberLearnsItWasEvictedAndLeavesTheSlotsNewOwnerAlone) {
  const Policy policy = GetParam();
  ChannelGuard ch(unique_channel("evicted"));
  TempDir dir("evicted");
  // One slot for the subscriber (and one for the journaler): the new subscriber must reuse it.
  Publisher pub =
      Publisher::open(ch.name(), small_channel(policy == Policy::spill ? 2 : 1)).value();
  std::optional<Child> journaler;
  if (policy == Policy::spill) journaler.emplace(start_journaler(ch.name(), dir.str()));
  Child old = start_peer(consume_args(ch.name(), to_string(policy), UINT32_MAX));
  ASSERT_EQ(publish_counted(pub, 1, 0, 100, kRule, 5s), 100u);
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = subscriber_of(ch.name(), old.pid());
        return s && s->next_sequence == 101;
      },
      10s))
      << old.output();
  stop_process(old.pid());

  auto files = ChannelFiles::open(ch.name(), true);
  ASSERT_TRUE(files);
  const std::uint32_t slot_index = subscriber_of(ch.name(), old.pid())->slot;
  detail::SubscriberSlot& slot = files->subscriber_slots()[slot_index];
  slot.start_time += 1000;  // its pid now seems to name a younger process: the old one is dead

  std::uint64_t sent = 100;
  if (policy == Policy::block) {
    // The producer, held back by the "dead" subscriber, evicts it after its liveness timeout.
    sent += publish_counted(pub, 1, sent, 1000, kRule, 5s);
    ASSERT_EQ(sent, 1100u);
    EXPECT_EQ(detail::owner_state(slot.owner.load()), detail::SlotState::evicted);
  } else {
    sent += publish_counted(pub, 1, sent, 1000, kRule, 5s);
  }
  // The slot goes to a new subscriber in this process (a non-block one is freed by the open's
  // look for dead subscribers, the table being full).
  SubscriberOptions mine = sub_options(policy);
  mine.liveness_timeout = 100ms;
  Subscriber replacement = Subscriber::open(ch.name(), mine).value();
  const std::uint64_t self = static_cast<std::uint64_t>(::getpid());
  ASSERT_EQ(slot.pid, self) << "the new subscriber did not take the evicted slot";
  EXPECT_EQ(read_channel_stats(ch.name())->evictions, policy == Policy::block ? 1u : 0u);

  continue_process(old.pid());
  const PeerOutcome o = finish_peer(old, 20s);
  EXPECT_EQ(o.status.code, 1) << o.status.describe() << "\n" << o.output;
  EXPECT_NE(o.output.find("ERROR poll status evicted"), std::string::npos) << o.output;
  ASSERT_FALSE(o.result.empty()) << o.output;
  EXPECT_EQ(o.result.at("errors"), "1") << "more went wrong than the eviction:\n" << o.output;

  // The old process is gone; the slot is still the new subscriber's, with its position.
  EXPECT_EQ(detail::owner_word(static_cast<std::uint32_t>(self), detail::SlotState::active),
            slot.owner.load())
      << "the evicted process freed or rewrote the slot's owner when it left";
  ASSERT_EQ(publish_counted(pub, 1, sent, 300, kRule, 5s), 300u);
  const std::vector<Received> got = receive_messages(replacement, 300);
  ASSERT_EQ(got.size(), 300u);
  EXPECT_EQ(got.front().sequence, sent + 1);
  EXPECT_EQ(got.back().sequence, sent + 300);
  EXPECT_EQ(replacement.status(), PollStatus::ok) << replacement.last_error();
  EXPECT_EQ(replacement.lost(), 0u);
  if (journaler) {
    ::kill(journaler->pid(), SIGTERM);
    EXPECT_TRUE(journaler->wait(20s).value_or(ExitStatus{}).ok()) << journaler->output();
  }
}

INSTANTIATE_TEST_SUITE_P(AllPolicies, EvictedWhileStopped,
                         ::testing::Values(Policy::block, Policy::drop, Policy::spill),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// A producer stopped between claim and commit: readers mark its claim abandoned after their
// abandon timeout and go on; continued, its commit reports `abandoned`, and every reader counts
// that one sequence lost, once.
TEST(StoppedProducer, ClaimHeldPastTheAbandonTimeoutCommitsAsAbandonedAndIsLostOnce) {
  ChannelGuard ch(unique_channel("stop-claim"));
  Publisher pub = Publisher::open(ch.name(), small_channel()).value();
  const std::uint64_t before = 100, after = 100, last = before + 1 + after;
  std::vector<Child> subs;
  for (const char* policy : {"block", "drop"}) {
    subs.push_back(start_peer(std::vector<std::string>{
                                  "consume", "--channel", ch.name(), "--policy", policy,
                                  "--abandon-ms", "100", "--allow-lost", "1", "--until-seq",
                                  str(last)} +
                              rule_args(kRule)));
  }
  ASSERT_EQ(publish_counted(pub, 1, 0, before, kRule, 5s), before);
  Child stalled = Child::fork([&] {
    Publisher mine = Publisher::open(ch.name()).value();
    Claim claim;
    if (mine.claim(200, claim, 5s) != PublishStatus::ok) return 2;
    fill_payload(claim.span().first(100), PayloadId{9, 0});
    const std::string claimed = "CLAIMED seq=" + std::to_string(claim.sequence()) + "\n";
    if (::write(1, claimed.data(), claimed.size()) < 0) return 3;
    ::raise(SIGSTOP);
    fill_payload(claim.span(), PayloadId{9, 0});
    const std::string committed =
        std::string("COMMITTED status=") + to_string(mine.commit(claim)) + "\n";
    if (::write(1, committed.data(), committed.size()) < 0) return 3;
    return 0;
  });
  auto claimed = stalled.wait_for_line("CLAIMED", 20s);
  ASSERT_TRUE(claimed) << stalled.output();
  EXPECT_EQ(parse_fields(*claimed).at("seq"), str(before + 1));
  ASSERT_TRUE(wait_until([&] { return process_state(stalled.pid()) == 'T'; }, 5s));
  // The producer in this process goes on; the readers pass the stalled claim after 100 ms.
  ASSERT_EQ(publish_counted(pub, 1, before, after, kRule, 5s), after);
  ASSERT_TRUE(wait_until([&] { return read_channel_stats(ch.name())->abandoned_repaired == 1; },
                         10s));
  std::this_thread::sleep_for(300ms);

  continue_process(stalled.pid());
  auto committed = stalled.wait_for_line("COMMITTED", 20s);
  ASSERT_TRUE(committed) << stalled.output();
  EXPECT_EQ(*committed, "COMMITTED status=claim abandoned");
  ASSERT_TRUE(stalled.wait(10s).value_or(ExitStatus{}).ok());
  for (Child& sub : subs) {
    const PeerOutcome o = finish_peer(sub);
    EXPECT_TRUE(o.status.ok()) << o.output;
    ASSERT_FALSE(o.result.empty()) << o.output;
    EXPECT_EQ(o.result.at("errors"), "0") << o.output;
    EXPECT_EQ(o.result.at("received"), str(before + after)) << o.output;
    EXPECT_EQ(o.result.at("lost"), "1") << o.output;
    EXPECT_EQ(o.result.at("gaps"), str(before + 2) + ":1") << o.output;
    EXPECT_EQ(o.result.at("producers"), "1:" + str(before + after) + ":" + str(before + after - 1))
        << o.output;
  }
  EXPECT_EQ(read_channel_stats(ch.name())->abandoned_repaired, 1u);
}

}  // namespace
}  // namespace shmbus
