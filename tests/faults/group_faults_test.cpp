// Consumer groups across real processes (the peer program's group-member role): members killed
// with -9 at random and restarted, a record that always fails, a member stopped (SIGSTOP) past
// its ack timeout, a member killed while it holds records, and garbage written into the group's
// shared state while members and a producer run. Each member logs what it processed before it
// acks (tests/support/group_log.hpp); the logs, the group's statistics and the dead-letter
// channel are checked by sequence and content.
//
// SHMBUS_GROUP_RECORDS sets the records of the kill -9 test (default kDefaultRecords).
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include "ipc/channel.hpp"
#include "ipc/group_layout.hpp"
#include "ipc/group_segment.hpp"
#include "shmbus/dead_letter.hpp"
#include "tests/faults/group_faults_testing.hpp"
#include "tests/support/inprocess.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using namespace shmbus::test::faults;

constexpr std::uint64_t kDefaultRecords = 1'000'000;

std::uint64_t records_from_env(std::uint64_t fallback) {
  const char* v = std::getenv("SHMBUS_GROUP_RECORDS");
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

// A channel big enough that the producer rarely waits on the group, with its dead-letter channel.
struct GroupChannel {
  explicit GroupChannel(const std::string& tag, std::uint64_t capacity = 1 << 20)
      : channel(unique_channel(tag)), dead_letters(dead_letter_channel(channel.name())) {
    ChannelOptions o;
    o.capacity = capacity;
    o.max_message = 1024;
    creator.emplace(Publisher::open(channel.name(), o).value());
  }
  const std::string& name() const { return channel.name(); }
  ChannelGuard channel;
  ChannelGuard dead_letters;
  std::optional<Publisher> creator;  // keeps a producer attached (idle); the records come from a peer
};

std::string log_path(const TempDir& dir, const std::string& who) {
  return dir.str() + "/" + who + ".log";
}

// Every processed entry of the sequences in `seqs`, from the logs of the processes other than
// `except_pid`.
std::vector<GroupLogEntry> deliveries_elsewhere(const TempDir& dir,
                                                const std::vector<std::uint64_t>& seqs,
                                                pid_t except_pid) {
  std::vector<GroupLogEntry> out;
  for (const GroupLogEntry& e : read_group_logs(dir.str())) {
    if (e.kind == GroupLogKind::processed && e.pid != static_cast<std::uint32_t>(except_pid) &&
        std::find(seqs.begin(), seqs.end(), e.sequence) != seqs.end()) {
      out.push_back(e);
    }
  }
  return out;
}

std::vector<std::uint64_t> parse_seqs(const std::string& holding_line) {
  std::vector<std::uint64_t> seqs;
  const auto eq = holding_line.find('=');
  std::string rest = holding_line.substr(eq + 1);
  std::size_t at = 0;
  while (at < rest.size()) {
    const auto comma = rest.find(',', at);
    seqs.push_back(std::stoull(rest.substr(at, comma - at)));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return seqs;
}

TEST(GroupFaults, MembersKilledAtRandomAndRestartedStillRetireEveryRecordExactlyOnce) {
  const std::uint64_t n = records_from_env(kDefaultRecords);
  GroupChannel ch("grp-kill");
  TempDir dir("grp-kill");
  MemberSettings ms;
  ms.ack_timeout_ms = 1000;
  ms.max_attempts = 1000;  // no record may reach the dead-letter channel
  ms.until_retired = n + 1;
  ms.work_ns = 2000;  // a member spends most of its time holding records
  constexpr int kMembers = 4;
  std::vector<Child> members;
  std::vector<int> incarnation(kMembers, 0);
  auto start_member = [&](int i) {
    return start_peer(member_args(
        ch.name(), log_path(dir, "m" + str(i) + "-" + str(incarnation[i]++)), ms));
  };
  for (int i = 0; i < kMembers; ++i) members.push_back(start_member(i));
  Child producer = start_group_producer(ch.name(), n);

  const std::uint32_t seed = std::random_device{}();
  std::mt19937 rng(seed);
  SCOPED_TRACE("kill seed " + str(seed));
  int kills = 0;
  std::string progress;
  const auto deadline = Clock::now() + std::chrono::seconds(60 * kSlowdown);
  while (retired_through(ch.name()) < n + 1 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 200));
    if (retired_through(ch.name()) >= n + 1) break;
    const int victim = static_cast<int>(rng() % kMembers);
    ::kill(members[victim].pid(), SIGKILL);
    const auto st = members[victim].wait(10s);
    ASSERT_TRUE(st) << "a killed member did not end";
    if (st->exited) {  // it finished by itself just before
      EXPECT_TRUE(ended_well(PeerOutcome{*st, {}, members[victim].output()}))
          << members[victim].output();
    }
    members[victim] = start_member(victim);
    ++kills;
    // Where things stood, for the message if the group never gets to the end.
    if (auto cs = read_channel_stats(ch.name())) {
      int dead = 0;
      for (const SubscriberStats& sb : cs->subscribers) dead += sb.alive ? 0 : 1;
      progress = "after " + str(kills) + " kills: retired through " +
                 str(retired_through(ch.name())) + ", published " + str(cs->head_sequence) +
                 ", subscriber slots " + str(cs->subscribers.size()) + " (" + str(dead) +
                 " of dead processes), evictions " + str(cs->evictions);
    }
  }
  const auto stats = group_stats(ch.name());
  ASSERT_TRUE(stats);
  ASSERT_EQ(stats->retired_through, n + 1) << progress;
  for (Child& m : members) {
    const PeerOutcome o = finish_peer(m, 30s);
    EXPECT_TRUE(ended_well(o)) << o.status.describe() << "\n" << o.output;
  }
  const PeerOutcome p = finish_peer(producer, 30s);
  EXPECT_TRUE(p.status.ok()) << p.output;
  EXPECT_EQ(p.result.count("published") ? p.result.at("published") : "", str(n)) << p.output;

  // The group's counters are statistics, counted after the compare-and-swap that retires a
  // record: a member killed between the two leaves them one short. Exactly once is judged by
  // the logs (no sequence acked twice) and the floor (every sequence retired); the count may
  // miss at most one ack per kill, and never exceeds the records.
  EXPECT_LE(stats->acked, n);
  EXPECT_GE(stats->acked + static_cast<std::uint64_t>(kills), n);
  EXPECT_EQ(stats->dead_lettered, 0u);
  EXPECT_EQ(stats->lost, 0u);
  EXPECT_GT(stats->redelivered, 0u) << "no kill found a member holding records (" << kills
                                    << " kills): the test proved nothing";
  const LogVerdict v = judge_logs(read_group_logs(dir.str()), n);
  EXPECT_EQ(v.problem_count, 0u) << describe(v);
  EXPECT_LE(v.acked, n);
  std::cout << "records " << n << ", kills " << kills << ", processed " << v.processed
            << ", sequences processed more than once " << v.duplicated << ", acks counted "
            << stats->acked << ", redelivered "
            << stats->redelivered << ", fenced " << stats->fenced << "\n";
}

TEST(GroupFaults, ARecordThatAlwaysFailsIsDeadLetteredAfterMaxAttemptsAndNothingElseIs) {
  const std::uint64_t n = 3000, bad = 1234;
  const std::uint32_t max_attempts = 4;
  GroupChannel ch("grp-dlq");
  TempDir dir("grp-dlq");
  MemberSettings ms;
  ms.max_attempts = max_attempts;
  ms.until_retired = n + 1;
  ms.fail_seq = bad;
  ms.batch = 16;
  std::vector<Child> members;
  for (int i = 0; i < 3; ++i) members.push_back(start_peer(member_args(ch.name(), log_path(dir, "m" + str(i)), ms)));
  Child producer = start_group_producer(ch.name(), n);
  std::uint64_t delivered = 0;
  for (Child& m : members) {
    const PeerOutcome o = finish_peer(m, 60s);
    EXPECT_TRUE(o.status.ok()) << o.status.describe() << "\n" << o.output;
    ASSERT_FALSE(o.result.empty()) << o.output;
    // A member's own counters: every record it was given it acked or nacked (none fenced).
    EXPECT_EQ(field_u64(o.result, "delivered"),
              field_u64(o.result, "acked") + field_u64(o.result, "nacked"))
        << o.output;
    delivered += field_u64(o.result, "delivered");
  }
  EXPECT_EQ(delivered, n - 1 + max_attempts);
  EXPECT_TRUE(finish_peer(producer, 10s).status.ok());

  const auto stats = group_stats(ch.name());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->retired_through, n + 1);
  EXPECT_EQ(stats->dead_lettered, 1u);
  EXPECT_EQ(stats->acked, n - 1);

  const LogVerdict v = judge_logs(read_group_logs(dir.str()), n, {bad});
  EXPECT_EQ(v.problem_count, 0u) << describe(v);
  EXPECT_EQ(v.acked, n - 1);
  ASSERT_EQ(v.of_interest.count(bad), 1u);
  std::vector<std::uint32_t> attempts;
  std::set<std::uint32_t> by;
  for (const GroupLogEntry& e : v.of_interest.at(bad)) {
    attempts.push_back(e.attempt);
    by.insert(e.pid);
  }
  EXPECT_EQ(attempts, (std::vector<std::uint32_t>{1, 2, 3, 4}));

  auto sub = Subscriber::open(ch.dead_letters.name(), sub_options(Policy::drop, StartFrom::earliest));
  ASSERT_TRUE(sub) << sub.error().message;
  const std::vector<Received> letters = receive_messages(*sub, 2, 1s);
  ASSERT_EQ(letters.size(), 1u) << "dead letters other than sequence " << bad;
  const auto* raw = reinterpret_cast<const std::byte*>(letters[0].payload.data());
  auto letter = decode({raw, letters[0].payload.size()});
  ASSERT_TRUE(letter) << letter.error().message;
  EXPECT_EQ(letter->original_sequence, bad);
  EXPECT_EQ(letter->attempts, max_attempts);
  EXPECT_EQ(letter->reason_code, DeadLetterReason::rejected);
  EXPECT_EQ(letter->reason, "always-fails-" + str(bad));
  EXPECT_EQ(letter->channel, ch.name());
  EXPECT_EQ(letter->group, kGroupName);
  EXPECT_EQ(payload_checksum(letter->payload), expected_checksum(bad));
  std::cout << "the failing record was delivered by " << by.size() << " member process(es)\n";
}

TEST(GroupFaults, AMemberStoppedPastItsAckTimeoutLosesItsRecordsToOthersAndItsLateAcksAreFenced) {
  const std::uint64_t n = 60000;
  const std::uint64_t capacity = 64 << 10;
  GroupChannel ch("grp-stop", capacity);
  TempDir dir("grp-stop");
  MemberSettings ms;
  ms.ack_timeout_ms = 500;
  ms.until_retired = n + 1;
  MemberSettings stalls = ms;
  stalls.stop_after = 1;
  stalls.batch = 8;
  Child stopped = start_peer(member_args(ch.name(), log_path(dir, "stopped"), stalls));
  Child producer = start_group_producer(ch.name(), n, 60000, 20000);
  const auto holding = stopped.wait_for_line("HOLDING", 20s);
  ASSERT_TRUE(holding) << stopped.output();
  const std::vector<std::uint64_t> held = parse_seqs(*holding);
  ASSERT_FALSE(held.empty());
  ASSERT_TRUE(wait_until([&] { return process_state(stopped.pid()) == 'T'; }, 5s));
  const auto stopped_at = Clock::now();
  const std::uint64_t head_before = read_channel_stats(ch.name())->head_position;

  std::vector<Child> others;
  for (int i = 0; i < 2; ++i) others.push_back(start_peer(member_args(ch.name(), log_path(dir, "o" + str(i)), ms)));
  // Its records go to the others, as second attempts marked redelivered.
  ASSERT_TRUE(wait_until([&] { return deliveries_elsewhere(dir, held, stopped.pid()).size() >= held.size(); },
                         20s))
      << "the stopped member's records were not redelivered";
  for (const GroupLogEntry& e : deliveries_elsewhere(dir, held, stopped.pid())) {
    EXPECT_EQ(e.attempt, 2u) << e.sequence;
    EXPECT_TRUE(e.flags & kLogRedelivered) << e.sequence;
  }
  // Stopped for four ack timeouts in all: the producers went on (the group raised the stopped
  // member's gate with its floor) by more than a ring's worth.
  std::this_thread::sleep_until(stopped_at + 2s);
  const std::uint64_t head_after = read_channel_stats(ch.name())->head_position;
  EXPECT_EQ(process_state(stopped.pid()), 'T');
  EXPECT_GT(head_after - head_before, capacity)
      << "the producer was held back by the stopped member";
  continue_process(stopped.pid());

  const PeerOutcome s = finish_peer(stopped, 60s);
  EXPECT_EQ(s.status.code, 3) << "the resumed member did not report fenced acks: "
                              << s.status.describe() << "\n" << s.output;
  for (std::uint64_t q : held) {
    EXPECT_NE(s.output.find("FENCED seq=" + str(q) + " attempt=1"), std::string::npos)
        << q << "\n" << s.output;
  }
  EXPECT_EQ(s.result.count("fenced") ? s.result.at("fenced") : "", str(held.size())) << s.output;
  for (Child& o : others) {
    const PeerOutcome r = finish_peer(o, 60s);
    EXPECT_TRUE(ended_well(r)) << r.status.describe() << "\n" << r.output;
  }
  EXPECT_TRUE(finish_peer(producer, 10s).status.ok());
  const auto stats = group_stats(ch.name());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->retired_through, n + 1);
  EXPECT_EQ(stats->acked, n);
  EXPECT_GE(stats->fenced, held.size());
  const LogVerdict v = judge_logs(read_group_logs(dir.str()), n);
  EXPECT_EQ(v.problem_count, 0u) << describe(v);
}

// The victim holds the floor, so the producer fills the 64 KiB ring and waits. Once the group sees
// the death (its housekeeping runs every quarter ack timeout, at most 250 ms apart) the records
// go to the others and the floor moves on; the dead member's gate must not hold the producer
// either, or the group would stall for the channel's liveness timeout (5 s) after every crash.
TEST(GroupFaults, RecordsHeldByAMemberKilledWithMinus9AreRedeliveredOnceItsDeathIsSeen) {
  const std::uint64_t n = 5000;
  GroupChannel ch("grp-k9", 64 << 10);
  TempDir dir("grp-k9");
  MemberSettings ms;
  ms.ack_timeout_ms = 60000;  // only its death can free its records within the test
  ms.until_retired = n + 1;
  MemberSettings holds = ms;
  holds.stop_after = 1;
  holds.batch = 8;
  Child victim = start_peer(member_args(ch.name(), log_path(dir, "victim"), holds));
  Child producer = start_group_producer(ch.name(), n);
  const auto holding = victim.wait_for_line("HOLDING", 20s);
  ASSERT_TRUE(holding) << victim.output();
  const std::vector<std::uint64_t> held = parse_seqs(*holding);
  ASSERT_TRUE(wait_until([&] { return process_state(victim.pid()) == 'T'; }, 5s));
  std::vector<Child> others;
  for (int i = 0; i < 2; ++i) others.push_back(start_peer(member_args(ch.name(), log_path(dir, "o" + str(i)), ms)));
  // The producer waits for the victim's records.
  ASSERT_TRUE(wait_until([&] { return retired_through(ch.name()) < n + 1 &&
                                      read_channel_stats(ch.name())->back_pressure_events > 0; },
                         10s));
  const pid_t victim_pid = victim.pid();
  victim.kill_hard();
  const bool finished = wait_until([&] { return retired_through(ch.name()) == n + 1; },
                                   std::chrono::milliseconds(3000 * kSlowdown));
  const auto cs = read_channel_stats(ch.name());
  EXPECT_TRUE(finished) << "3 s after the kill the group had retired through "
                        << retired_through(ch.name()) << " of " << n + 1 << "; published "
                        << cs->head_sequence << ", evictions " << cs->evictions
                        << " (the dead member's gate holds the producer)";
  for (Child& o : others) {
    const PeerOutcome r = finish_peer(o, 40s);
    EXPECT_TRUE(r.status.ok()) << r.status.describe() << "\n" << r.output;
  }
  EXPECT_TRUE(finish_peer(producer, 10s).status.ok());
  const auto again = deliveries_elsewhere(dir, held, victim_pid);
  const auto st = group_stats(ch.name());
  std::string seen;
  for (const GroupLogEntry& e : again) seen += " " + str(e.sequence) + "@" + str(e.attempt);
  ASSERT_EQ(again.size(), held.size())
      << "held " << held.size() << " from " << held.front() << "; delivered again:" << seen
      << "; lost " << st->lost << ", dead-lettered " << st->dead_lettered << ", redelivered "
      << st->redelivered << ", acked " << st->acked;
  for (const GroupLogEntry& e : again) {
    EXPECT_EQ(e.attempt, 2u) << e.sequence;
    EXPECT_TRUE(e.flags & kLogRedelivered) << e.sequence;
  }
  const auto stats = group_stats(ch.name());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->retired_through, n + 1);
  EXPECT_EQ(stats->acked, n);
  EXPECT_EQ(stats->redelivered, held.size());
  const LogVerdict v = judge_logs(read_group_logs(dir.str()), n);
  EXPECT_EQ(v.problem_count, 0u) << describe(v);
}

// A member that joins while the ring is full from the group's floor must gate at that floor:
// when the member holding the floor's records leaves (or dies and its gate is evicted), those
// records are given back and must still be in the ring for the next member. In one process
// (the placement of the gate is the subject; the member's process does not matter).
TEST(GroupFaults, AMemberJoiningWhileTheRingIsFullKeepsTheFloorsRecordsWhenTheirHolderLeaves) {
  ChannelGuard ch(unique_channel("grp-join"));
  ChannelGuard dlq(dead_letter_channel(ch.name()));
  Publisher pub = Publisher::open(ch.name(), small_channel()).value();  // a 64 KiB ring
  GroupOptions o;
  o.ack_timeout = 60s;
  auto holder = std::make_optional(GroupConsumer::open(ch.name(), kGroupName, o).value());
  std::vector<std::byte> buf(kGroupRule.max_size);
  std::uint64_t published = 0;
  auto publish_some = [&](std::uint64_t most) {
    for (std::uint64_t k = 0; k < most; ++k) {
      const PayloadId id{kGroupProducer, published};
      const std::uint32_t len = payload_length(kGroupRule, id);
      fill_payload({buf.data(), len}, id);
      if (pub.try_publish({buf.data(), len}) != PublishStatus::ok) return;
      ++published;
    }
  };
  publish_some(100000);  // until the ring is full
  std::vector<std::uint64_t> held;
  holder->poll([&](const GroupMessage& m) { held.push_back(m.sequence); }, 8);
  ASSERT_EQ(held, (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  GroupConsumer joiner = GroupConsumer::open(ch.name(), kGroupName, o).value();
  holder.reset();        // leaves: records 1-8 go back to the group
  publish_some(100000);  // as far as the remaining gate lets the producer go
  std::map<std::uint64_t, std::uint32_t> again;
  for (int turn = 0; turn < 20 && again.size() < held.size(); ++turn) {
    joiner.poll([&](const GroupMessage& m) {
      if (m.sequence <= 8) {
        EXPECT_EQ(payload_checksum(m.payload), expected_checksum(m.sequence)) << m.sequence;
        again[m.sequence] = m.attempt;
      }
    });
  }
  const auto stats = group_stats(ch.name());
  ASSERT_TRUE(stats);
  EXPECT_EQ(again.size(), held.size())
      << "records given back were overwritten: the group counts " << stats->lost
      << " lost; " << joiner.last_error();
  EXPECT_EQ(stats->lost, 0u);
}

TEST(GroupFaults, GarbageInTheGroupsSharedStateCrashesNoMemberNorProducerAndStatsStillReturn) {
  GroupChannel ch("grp-garbage", 64 << 10);
  TempDir dir("grp-garbage");
  MemberSettings ms;
  ms.ack_timeout_ms = 200;
  ms.run_ms = 4000 * kSlowdown;
  std::vector<Child> members;
  for (int i = 0; i < 3; ++i) members.push_back(start_peer(member_args(ch.name(), log_path(dir, "m" + str(i)), ms)));
  Child producer = start_group_producer(ch.name(), 1'000'000, 500);

  auto mapping = detail::ChannelMapping::open(ch.name(), false, 0ms, false).value();
  const std::string object =
      detail::group_object_name(ch.name(), mapping->info().incarnation, kGroupName);
  auto segment = FileMapping::open("/dev/shm/" + object, true);
  ASSERT_TRUE(segment);
  std::byte* base = segment->data();
  const std::uint32_t window = detail::group_header(base).window;
  ASSERT_EQ(segment->size(), detail::group_segment_size(window));

  const std::uint32_t seed = std::random_device{}();
  std::mt19937_64 rng(seed);
  SCOPED_TRACE("garbage seed " + str(seed));
  auto scribble = [&](std::size_t offset, std::size_t len) {
    for (std::size_t k = 0; k < len; ++k) base[offset + k] = static_cast<std::byte>(rng());
  };
  std::this_thread::sleep_for(300ms);  // records flowing first
  const auto until = Clock::now() + 2500ms;
  int writes = 0, stats_read = 0;
  while (Clock::now() < until) {
    switch (rng() % 4) {
      case 0:  // some entries
        for (int k = 0; k < 8; ++k) {
          scribble(detail::group_entries_offset() + (rng() % window) * sizeof(detail::GroupEntry),
                   sizeof(detail::GroupEntry));
        }
        break;
      case 1:  // a member slot
        scribble(detail::group_members_offset() +
                     (rng() % detail::kMaxGroupMembers) * sizeof(detail::GroupMember),
                 sizeof(detail::GroupMember));
        break;
      case 2:  // the dispatch cursor or the floor
        scribble(offsetof(detail::GroupHeader, dispatch) + (rng() % 2) * core::kCacheLine, 16);
        break;
      case 3:  // the counters
        scribble(offsetof(detail::GroupHeader, acked), 64);
        break;
    }
    ++writes;
    auto stats = read_group_stats(ch.name());
    EXPECT_TRUE(stats) << stats.error().message;
    ++stats_read;
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 20));
  }
  for (Child& m : members) {
    const PeerOutcome o = finish_peer(m, std::chrono::seconds(30 * kSlowdown));
    EXPECT_TRUE(o.status.exited) << o.status.describe() << "\n" << o.output;
    EXPECT_FALSE(o.result.empty()) << o.output;
    EXPECT_NE(o.status.code, 2) << o.output;
    std::cout << "member: " << o.status.describe() << "; "
              << (o.output.size() > 600 ? o.output.substr(o.output.size() - 600) : o.output)
              << "\n";
  }
  const PeerOutcome p = finish_peer(producer, std::chrono::seconds(60 * kSlowdown));
  EXPECT_TRUE(p.status.exited) << p.status.describe() << "\n" << p.output;
  std::cout << "garbage writes " << writes << ", stats read " << stats_read << "; producer "
            << p.status.describe() << "\n";
}

}  // namespace
}  // namespace shmbus
