// Producers and subscribers in separate processes (the peer program, tests/peer/test_peer.cpp),
// each verifying every message it receives: ordering, loss accounting, payload checksums, and what
// happens when a subscriber or a producer is killed with -9 at the worst moment.
//
// Timing is never asserted, except generous liveness bounds; every wait has a timeout.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ipc/control_layout.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/payload.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using Clock = std::chrono::steady_clock;
using Fields = std::map<std::string, std::string>;

#if defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t kScale = 5;  // ASan runs everything about 3-5x slower
#else
constexpr std::uint64_t kScale = 1;
#endif

constexpr auto kReadyTimeout = std::chrono::seconds(20);
constexpr auto kRunTimeout = std::chrono::seconds(240);

std::string str(std::uint64_t v) { return std::to_string(v); }

// Starts the peer with `args` and waits for its READY line.
Child start(const std::vector<std::string>& args) {
  std::vector<std::string> argv{SHMBUS_TEST_PEER};
  argv.insert(argv.end(), args.begin(), args.end());
  Child c = Child::spawn(argv);
  if (!c.wait_for_line("READY", kReadyTimeout)) {
    throw std::runtime_error("peer " + argv[1] + " did not get ready; it said:\n" + c.output());
  }
  return c;
}

using Outcome = shmbus::test::PeerOutcome;

// Waits for a peer to finish and returns its RESULT line; a peer still running is killed.
Outcome finish(Child& c, std::chrono::milliseconds timeout = kRunTimeout) {
  return shmbus::test::finish_peer(c, timeout);
}

// The checks every consumer must pass: clean exit, no verification error.
void expect_clean(const Outcome& o, const std::string& who) {
  EXPECT_TRUE(o.status.ok()) << who << " " << o.status.describe() << ":\n" << o.output;
  ASSERT_FALSE(o.result.empty()) << who << " printed no RESULT:\n" << o.output;
  EXPECT_EQ(o.result.at("errors"), "0") << who << ":\n" << o.output;
}

std::vector<std::string> sizes(std::uint64_t seed, std::uint32_t min, std::uint32_t max) {
  return {"--seed", str(seed), "--min-size", str(min), "--max-size", str(max)};
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Publisher create_channel(const std::string& name, std::uint64_t capacity,
                         std::uint32_t max_message, bool single_producer = false) {
  ChannelOptions o;
  o.capacity = capacity;
  o.max_message = max_message;
  o.single_producer = single_producer;
  auto pub = Publisher::open(name, o);
  if (!pub) throw std::runtime_error(pub.error().message);
  return std::move(*pub);
}

// A file of one byte per sequence that consumers increment on every delivery (--record).
class Tally {
 public:
  explicit Tally(std::uint64_t max_sequence) {
    path_ = "/tmp/shmbus-tally-" + std::to_string(::getpid()) + "-" +
            std::to_string(reinterpret_cast<std::uintptr_t>(this));
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(max_sequence + 1)) != 0) {
      throw std::runtime_error("cannot create " + path_);
    }
    ::close(fd);
    auto map = FileMapping::open(path_, false);
    if (!map) throw std::runtime_error("cannot map " + path_);
    map_ = std::move(*map);
  }
  ~Tally() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }
  std::uint8_t operator[](std::uint64_t seq) const {
    return std::to_integer<std::uint8_t>(map_.data()[seq]);
  }
  std::uint64_t size() const { return map_.size(); }

 private:
  std::string path_;
  FileMapping map_;
};

// a. One producer, three block subscribers (one from earliest, two from latest, all started
// before the first message): each sees every sequence once, in order, with the right payload,
// and all three fold the same checksum. Once on an ordinary channel with publish(), once on a
// single-producer channel with batched claims.
struct FanOut {
  const char* name;
  bool single_producer;
  const char* api;
};

class OneProducer : public ::testing::TestWithParam<FanOut> {};

TEST_P(OneProducer, ThreeBlockSubscribersSeeEveryMessageInOrder) {
  const std::uint64_t n = 1'000'000 / kScale;
  ChannelGuard ch(unique_channel("fanout"));
  create_channel(ch.name(), 4 << 20, 64 << 10, GetParam().single_producer);
  const auto rule = sizes(11, 1, 1024);
  std::vector<Child> subs;
  for (const char* from : {"earliest", "latest", "latest"}) {
    subs.push_back(start(std::vector<std::string>{"consume", "--channel", ch.name(), "--policy",
                                                  "block", "--from", from, "--until-seq", str(n),
                                                  "--single-producer", "1"} +
                         rule));
  }
  Child producer = start(std::vector<std::string>{"produce", "--channel", ch.name(),
                                                  "--producer-id", "1", "--count", str(n),
                                                  "--api", GetParam().api} +
                         rule);
  const auto started = Clock::now();
  const Outcome p = finish(producer);
  EXPECT_TRUE(p.status.ok()) << p.output;
  std::set<std::string> checksums;
  for (Child& s : subs) {
    const Outcome o = finish(s);
    expect_clean(o, "subscriber");
    if (o.result.empty()) continue;
    EXPECT_EQ(o.result.at("received"), str(n));
    EXPECT_EQ(o.result.at("lost"), "0");
    EXPECT_EQ(o.result.at("sub_lost"), "0");
    EXPECT_EQ(o.result.at("first_seq"), "1");
    EXPECT_EQ(o.result.at("last_seq"), str(n));
    EXPECT_EQ(o.result.at("producers"), "1:" + str(n) + ":" + str(n - 1));
    checksums.insert(o.result.at("checksum"));
  }
  EXPECT_EQ(checksums.size(), 1u) << ::testing::PrintToString(checksums);
  std::printf("%llu messages to 3 subscribers in %.2f s\n", static_cast<unsigned long long>(n),
              std::chrono::duration<double>(Clock::now() - started).count());
}

INSTANTIATE_TEST_SUITE_P(MultiProcess, OneProducer,
                         ::testing::Values(FanOut{"shared", false, "publish"},
                                           FanOut{"exclusive", true, "batch"}),
                         [](const auto& info) { return std::string(info.param.name); });

// b. Four producer processes at once (using publish, publish, claim/commit and batched claims), two
// block subscribers: the sequences are 1..N without a hole or a repeat, every producer's messages
// arrive in the order it published them, all of them.
TEST(MultiProcess, FourProducersTwoBlockSubscribersGetContiguousSequencesInPublishOrder) {
  const std::uint64_t per_producer = 250'000 / kScale;
  const std::uint64_t n = 4 * per_producer;
  ChannelGuard ch(unique_channel("fanin"));
  create_channel(ch.name(), 1 << 20, 16 << 10);
  const auto rule = sizes(23, kPayloadIdBytes, 400);
  std::vector<Child> subs;
  for (int i = 0; i < 2; ++i) {
    subs.push_back(start(std::vector<std::string>{"consume", "--channel", ch.name(), "--policy",
                                                  "block", "--until-seq", str(n)} +
                         rule));
  }
  std::vector<Child> producers;
  for (int id = 1; id <= 4; ++id) {
    producers.push_back(start(
        std::vector<std::string>{"produce", "--channel", ch.name(), "--producer-id", str(id),
                                 "--count", str(per_producer), "--api",
                                 id == 4 ? "batch" : id == 2 ? "claim" : "publish"} +
        rule));
  }
  for (Child& p : producers) {
    const Outcome o = finish(p);
    EXPECT_TRUE(o.status.ok()) << o.output;
  }
  std::string want_producers;
  for (int id = 1; id <= 4; ++id) {
    if (id > 1) want_producers += ",";
    want_producers += str(id) + ":" + str(per_producer) + ":" + str(per_producer - 1);
  }
  std::set<std::string> checksums;
  for (Child& s : subs) {
    const Outcome o = finish(s);
    expect_clean(o, "subscriber");
    if (o.result.empty()) continue;
    EXPECT_EQ(o.result.at("received"), str(n));
    EXPECT_EQ(o.result.at("lost"), "0");
    EXPECT_EQ(o.result.at("first_seq"), "1");
    EXPECT_EQ(o.result.at("last_seq"), str(n));
    EXPECT_EQ(o.result.at("producers"), want_producers);
    checksums.insert(o.result.at("checksum"));
  }
  EXPECT_EQ(checksums.size(), 1u) << ::testing::PrintToString(checksums);
}

// c. A drop subscriber that keeps pausing is lapped over and over by a producer it never slows:
// what it does receive is intact and in order, and every sequence is either received or counted
// lost.
TEST(MultiProcess, LappedDropSubscriberCountsEveryLossAndNeverSeesATornMessage) {
  const std::uint64_t n = 100'000;
  ChannelGuard ch(unique_channel("lapped"));
  create_channel(ch.name(), 64 << 10, 1024);
  const auto rule = sizes(5, kPayloadIdBytes, 512);
  Child sub = start(std::vector<std::string>{"consume", "--channel", ch.name(), "--policy",
                                             "drop", "--until-seq", str(n), "--sleep-every",
                                             "1000", "--sleep-us", "10000"} +
                    rule);
  // 100k messages a second for a second: 64 KiB holds about 250 of them, so a 10 ms pause is
  // several laps.
  Child producer = start(std::vector<std::string>{"produce", "--channel", ch.name(),
                                                  "--producer-id", "3", "--count", str(n),
                                                  "--rate", "100000"} +
                         rule);
  const Outcome p = finish(producer);
  EXPECT_TRUE(p.status.ok()) << p.output;
  const Outcome o = finish(sub);
  expect_clean(o, "drop subscriber");
  if (o.result.empty()) return;
  const std::uint64_t received = field_u64(o.result, "received");
  const std::uint64_t lost = field_u64(o.result, "lost");
  EXPECT_EQ(received + lost, n) << o.output;
  EXPECT_EQ(field_u64(o.result, "sub_lost"), lost);
  EXPECT_EQ(o.result.at("last_seq"), str(n));
  EXPECT_GT(lost, 0u) << "the subscriber was never lapped; the test did not test anything";
  EXPECT_GT(received, 1000u);
}

// d. A block subscriber's process is killed while producers wait for it: they stay blocked while
// it lives, and carry on once it is dead and its liveness timeout has passed; the eviction is
// counted in the control segment, and another block subscriber misses nothing.
TEST(MultiProcess, KilledBlockSubscriberIsEvictedAndProducersResume) {
  const std::uint64_t total = 5000;
  ChannelGuard ch(unique_channel("evict"));
  Publisher pub = create_channel(ch.name(), 64 << 10, 1024);
  const SizeRule rule{31, kPayloadIdBytes, 300};
  Child live = start(std::vector<std::string>{"consume", "--channel", ch.name(), "--policy",
                                              "block", "--until-seq", str(total)} +
                     sizes(rule.seed, rule.min_size, rule.max_size));
  Child stuck = start({"hold", "--channel", ch.name(), "--policy", "block", "--liveness-ms",
                       "300"});

  std::vector<std::byte> buf(rule.max_size);
  std::uint64_t counter = 0;
  auto next_payload = [&] {
    const PayloadId id{1, counter};
    const std::uint32_t len = payload_length(rule, id);
    fill_payload({buf.data(), len}, id);
    return std::span<const std::byte>(buf.data(), len);
  };
  // Fill the ring up to the stuck subscriber.
  while (counter < total && pub.try_publish(next_payload()) == PublishStatus::ok) ++counter;
  ASSERT_LT(counter, total) << "the stuck subscriber never held the producer back";
  ASSERT_GT(counter, 0u);
  // Still blocked while it is alive, however long it has not moved.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(pub.publish(next_payload(), std::chrono::milliseconds(400)),
              PublishStatus::timed_out);
  }
  stuck.kill_hard();
  const auto killed = Clock::now();
  ASSERT_EQ(pub.publish(next_payload(), std::chrono::seconds(30)), PublishStatus::ok);
  EXPECT_LT(Clock::now() - killed, std::chrono::seconds(20));  // liveness only
  ++counter;
  while (counter < total) {
    ASSERT_EQ(pub.publish(next_payload(), std::chrono::seconds(30)), PublishStatus::ok);
    ++counter;
  }
  const Outcome o = finish(live);
  expect_clean(o, "live subscriber");
  if (!o.result.empty()) {
    EXPECT_EQ(o.result.at("received"), str(total));
    EXPECT_EQ(o.result.at("lost"), "0");
    EXPECT_EQ(o.result.at("producers"), "1:" + str(total) + ":" + str(total - 1));
  }
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  EXPECT_EQ(files->control().evictions.load(), 1u);
  const auto states = files->slot_states();
  EXPECT_EQ(states[static_cast<int>(detail::SlotState::evicted)], 1);
  for (const detail::SubscriberSlot& s : files->subscriber_slots()) {
    if (detail::owner_state(s.owner.load()) != detail::SlotState::evicted) continue;
    EXPECT_EQ(s.pid, static_cast<std::uint32_t>(stuck.pid()));
    EXPECT_EQ(s.evictions.load(), 1u);
    EXPECT_NE(s.evicted_ns.load(), 0);
  }
}

// d'. The same with a producer that never blocks in the library: it polls with try_publish (and
// backs off itself). The liveness timeout must still free it from the dead subscriber.
TEST(MultiProcess, KilledBlockSubscriberIsEvictedForAProducerThatOnlyTries) {
  ChannelGuard ch(unique_channel("evicttry"));
  Publisher pub = create_channel(ch.name(), 64 << 10, 1024);
  Child stuck = start({"hold", "--channel", ch.name(), "--policy", "block", "--liveness-ms",
                       "300"});
  const std::vector<std::byte> payload(100);
  int published = 0;
  while (published < 10000 && pub.try_publish(payload) == PublishStatus::ok) ++published;
  ASSERT_LT(published, 10000) << "the stuck subscriber never held the producer back";
  stuck.kill_hard();
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  PublishStatus st = PublishStatus::back_pressured;
  while (st == PublishStatus::back_pressured && Clock::now() < deadline) {
    st = pub.try_publish(payload);
    if (st == PublishStatus::back_pressured) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  EXPECT_EQ(st, PublishStatus::ok) << "still back-pressured by a subscriber dead for 10 s";
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  EXPECT_EQ(files->control().evictions.load(), 1u);
}

// e. A producer killed between claim and commit: its sequence is marked abandoned after the
// abandon timeout, counted lost exactly once, and everything else arrives, at both a block and a
// (read-only) drop subscriber. The ring is large enough that nobody is lapped.
TEST(MultiProcess, ClaimOfAKilledProducerIsAbandonedAndCountedLostOnce) {
  const std::uint64_t k1 = 2000, k2 = 2000;
  const std::uint64_t last = k1 + 1 + k2;
  ChannelGuard ch(unique_channel("abandon"));
  create_channel(ch.name(), 4 << 20, 64 << 10);
  const auto rule = sizes(41, kPayloadIdBytes, 300);
  Child block = start(std::vector<std::string>{"consume", "--channel", ch.name(), "--policy",
                                               "block", "--abandon-ms", "200", "--allow-lost",
                                               "1", "--until-seq", str(last)} +
                      rule);
  Child drop = start(std::vector<std::string>{"consume", "--channel", ch.name(), "--policy",
                                              "drop", "--abandon-ms", "200", "--until-seq",
                                              str(last)} +
                     rule);
  Child first = start(std::vector<std::string>{"produce", "--channel", ch.name(),
                                               "--producer-id", "1", "--count", str(k1)} +
                      rule);
  ASSERT_TRUE(finish(first).status.ok());
  Child hang = Child::spawn({SHMBUS_TEST_PEER, "claim-and-hang", "--channel", ch.name(),
                             "--producer-id", "9", "--size", "200"});
  auto claimed = hang.wait_for_line("CLAIMED", kReadyTimeout);
  ASSERT_TRUE(claimed) << hang.output();
  EXPECT_EQ(parse_fields(*claimed).at("seq"), str(k1 + 1));
  hang.kill_hard();
  Child second = start(std::vector<std::string>{"produce", "--channel", ch.name(),
                                                "--producer-id", "2", "--count", str(k2),
                                                "--api", "claim"} +
                       rule);
  ASSERT_TRUE(finish(second).status.ok());
  const std::string want_producers =
      "1:" + str(k1) + ":" + str(k1 - 1) + ",2:" + str(k2) + ":" + str(k2 - 1);
  for (Child* c : {&block, &drop}) {
    const Outcome o = finish(*c);
    const std::string who = c == &block ? "block subscriber" : "drop subscriber";
    expect_clean(o, who);
    if (o.result.empty()) continue;
    EXPECT_EQ(o.result.at("received"), str(k1 + k2)) << who;
    EXPECT_EQ(o.result.at("lost"), "1") << who;
    EXPECT_EQ(o.result.at("sub_lost"), "1") << who;
    EXPECT_EQ(o.result.at("gaps"), str(k1 + 2) + ":1") << who;  // lost_before == 1 after it
    EXPECT_EQ(o.result.at("producers"), want_producers) << who;
  }
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  // Only the block subscriber may write the ring; it marked the claim abandoned, once.
  EXPECT_EQ(files->control().abandoned_repaired.load(), 1u);
}

// e'. The same with a small ring: the other producers fill it and wait behind the dead claim (the
// block subscriber cannot pass it), then carry on once it has been marked abandoned.
TEST(MultiProcess, ProducersWaitingBehindADeadClaimResumeAfterTheAbandonTimeout) {
  const std::uint64_t k1 = 500, k2 = 20000 / kScale;
  const std::uint64_t last = k1 + 1 + 2 * k2;
  ChannelGuard ch(unique_channel("abandon2"));
  create_channel(ch.name(), 64 << 10, 1024);
  const auto rule = sizes(43, kPayloadIdBytes, 300);
  Child block = start(std::vector<std::string>{"consume", "--channel", ch.name(), "--policy",
                                               "block", "--abandon-ms", "200", "--allow-lost",
                                               "1", "--until-seq", str(last)} +
                      rule);
  Child drop = start(std::vector<std::string>{"consume", "--channel", ch.name(), "--policy",
                                              "drop", "--abandon-ms", "200", "--until-seq",
                                              str(last)} +
                     rule);
  Child first = start(std::vector<std::string>{"produce", "--channel", ch.name(),
                                               "--producer-id", "1", "--count", str(k1)} +
                      rule);
  ASSERT_TRUE(finish(first).status.ok());
  Child hang = Child::spawn({SHMBUS_TEST_PEER, "claim-and-hang", "--channel", ch.name(),
                             "--producer-id", "9", "--size", "200"});
  ASSERT_TRUE(hang.wait_for_line("CLAIMED", kReadyTimeout)) << hang.output();
  // Two producers run into the dead claim; it is killed while they wait behind it.
  std::vector<Child> producers;
  for (int id = 2; id <= 3; ++id) {
    producers.push_back(start(std::vector<std::string>{"produce", "--channel", ch.name(),
                                                       "--producer-id", str(id), "--count",
                                                       str(k2)} +
                              rule));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  hang.kill_hard();
  for (Child& p : producers) {
    const Outcome o = finish(p);
    EXPECT_TRUE(o.status.ok()) << o.output;
  }
  const Outcome b = finish(block);
  expect_clean(b, "block subscriber");
  if (!b.result.empty()) {
    EXPECT_EQ(b.result.at("received"), str(last - 1));
    EXPECT_EQ(b.result.at("lost"), "1");
    EXPECT_EQ(b.result.at("gaps"), str(k1 + 2) + ":1");
  }
  const Outcome d = finish(drop);
  expect_clean(d, "drop subscriber");
  if (!d.result.empty()) {
    EXPECT_EQ(field_u64(d.result, "received") + field_u64(d.result, "lost"), last);
    EXPECT_EQ(d.result.at("last_seq"), str(last));
  }
}

// f. A named block subscriber is killed in the middle of a stream and restarted under its name.
struct Restart {
  Outcome second;              // the restarted process
  std::uint64_t missing = 0;   // sequences neither process received
  std::uint64_t last_missing = 0;
  std::uint64_t twice = 0;     // sequences both received
  std::uint64_t first_twice = 0, last_twice = 0;
  std::uint64_t more = 0;      // sequences received more than twice (never allowed)
};

// Runs one producer of `n` messages into a 64 KiB ring and a named block subscriber that is
// killed (-9) once it has received a third of them, then restarted under the same name: at once,
// or only after the producer has finished (`late`).
Restart kill_and_restart(std::uint64_t n, std::uint64_t liveness_ms, bool late) {
  ChannelGuard ch(unique_channel("resume"));
  create_channel(ch.name(), 64 << 10, 1024);
  const auto rule = sizes(53, kPayloadIdBytes, 300);
  Tally tally(n);
  const std::vector<std::string> consumer =
      std::vector<std::string>{"consume", "--channel", ch.name(), "--policy", "block", "--name",
                               "durable", "--liveness-ms", str(liveness_ms), "--until-seq",
                               str(n), "--record", tally.path(), "--allow-lost", str(n)} +
      rule;
  Child first = start(consumer);
  Child producer = start(std::vector<std::string>{"produce", "--channel", ch.name(),
                                                  "--producer-id", "1", "--count", str(n)} +
                         rule);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (tally[n / 3] == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (tally[n / 3] == 0) throw std::runtime_error("the first subscriber made no progress");
  first.kill_hard();
  if (late) {
    const Outcome p = finish(producer);
    EXPECT_TRUE(p.status.ok()) << p.output;
  }
  Child second = start(consumer);
  if (!late) {
    const Outcome p = finish(producer);
    EXPECT_TRUE(p.status.ok()) << p.output;
  }
  Restart r;
  r.second = finish(second);
  for (std::uint64_t seq = 1; seq <= n; ++seq) {
    const int c = tally[seq];
    if (c == 0) {
      ++r.missing;
      r.last_missing = seq;
    }
    if (c == 2) {
      if (r.twice++ == 0) r.first_twice = seq;
      r.last_twice = seq;
    }
    if (c > 2) ++r.more;
  }
  // It closed cleanly: the name stays, detached, for the next restart.
  auto files = ChannelFiles::open(ch.name());
  EXPECT_TRUE(files);
  if (files) {
    auto slot = files->find_named_slot("durable");
    EXPECT_TRUE(slot);
    if (slot) {
      EXPECT_EQ(detail::owner_state(files->subscriber_slots()[*slot].owner.load()),
                detail::SlotState::detached);
      EXPECT_EQ(files->subscriber_slots()[*slot].next_sequence.load(), n + 1);
    }
  }
  return r;
}

// Restarted within its liveness timeout, while the producer waits for it: it resumes where it
// stopped. Between them the two processes received every sequence; only the last batch before the
// kill may come twice; nothing is lost.
TEST(MultiProcess, NamedBlockSubscriberRestartedAfterKillResumesWithoutLoss) {
  const std::uint64_t n = 200'000 / kScale;
  const Restart r = kill_and_restart(n, 60'000, false);
  const Outcome& o = r.second;
  expect_clean(o, "restarted subscriber");
  ASSERT_FALSE(o.result.empty());
  EXPECT_EQ(o.result.at("lost"), "0") << o.output;
  EXPECT_EQ(o.result.at("last_seq"), str(n));
  const std::uint64_t resumed_at = field_u64(o.result, "first_seq");
  // The kill came after sequence n/3 was received; the position is published after each poll
  // batch (at most 256 records), so the restart resumes at most one batch before it.
  EXPECT_GT(resumed_at + 256, n / 3);
  EXPECT_EQ(r.missing, 0u) << "last missing sequence " << r.last_missing;
  EXPECT_EQ(r.more, 0u);
  if (r.twice > 0) {
    // Duplicates are the tail of the killed process's last batch: where the restart began.
    EXPECT_EQ(r.first_twice, resumed_at);
    EXPECT_EQ(r.last_twice - r.first_twice + 1, r.twice);
    EXPECT_LE(r.twice, 256u);
  }
}

// Restarted only after its liveness timeout, when it has been evicted and the producer has lapped
// its position: it resumes at the earliest message still in the ring and counts every sequence it
// can no longer get as lost; none goes missing silently.
TEST(MultiProcess, NamedBlockSubscriberRestartedAfterEvictionCountsWhatItMissed) {
  const std::uint64_t n = 100'000 / kScale;
  const Restart r = kill_and_restart(n, 300, true);
  const Outcome& o = r.second;
  expect_clean(o, "restarted subscriber");
  ASSERT_FALSE(o.result.empty());
  EXPECT_EQ(o.result.at("last_seq"), str(n));
  const std::uint64_t lost = field_u64(o.result, "lost");
  const std::uint64_t resumed_at = field_u64(o.result, "first_seq");
  EXPECT_GT(r.missing, 0u) << "the producer never lapped the evicted subscriber";
  EXPECT_LT(r.last_missing, resumed_at);
  // Everything missing was reported lost; at most the killed process's last batch was both
  // received by it and reported lost by its successor.
  EXPECT_GE(lost, r.missing);
  EXPECT_LE(lost, r.missing + 256);
  EXPECT_EQ(r.twice, 0u);
  EXPECT_EQ(r.more, 0u);
}

// h. A named manual-release block subscriber (the journaler's way of reading) is killed with -9
// after reading far past what it released. The producers never overwrote anything it had not
// released, and its successor under the same name starts exactly at the last released cursor:
// what was read but not released is delivered again, nothing is lost. (It releases every 50
// messages: a lap of this ring holds a few hundred, and a gating reader that releases nothing for
// a lap stops the producer, and so itself.)
TEST(MultiProcess, KilledManualReleaseSubscriberResumesAtItsLastReleasedCursor) {
  const std::uint64_t n = 60'000 / kScale;
  const std::uint64_t stop = n / 3;
  ChannelGuard ch(unique_channel("manual"));
  create_channel(ch.name(), 64 << 10, 1024);
  const auto rule = sizes(71, kPayloadIdBytes, 300);
  Tally tally(n);
  const std::vector<std::string> common{"consume",      "--channel",     ch.name(),
                                        "--policy",     "block",         "--name",
                                        "recorder",     "--liveness-ms", "60000",
                                        "--record",     tally.path(),    "--single-producer",
                                        "1"};
  Child first = start(common + std::vector<std::string>{"--manual-release", "--release-every",
                                                        "50", "--stop-after", str(stop),
                                                        "--stop-mode", "hang"} +
                      rule);
  Child producer = start(std::vector<std::string>{"produce", "--channel", ch.name(),
                                                  "--producer-id", "1", "--count", str(n)} +
                         rule);
  const auto line = first.wait_for_line("RESULT", kRunTimeout);
  ASSERT_TRUE(line) << first.output();
  const Fields result = parse_fields(*line);
  EXPECT_EQ(result.at("errors"), "0") << first.output();
  const std::uint64_t released = field_u64(result, "released_next");
  ASSERT_GT(released, 1u);
  ASSERT_LE(released, stop + 1);
  first.kill_hard();
  // The slot gates at the released cursor, not at what the dead process read.
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  auto slot = files->find_named_slot("recorder");
  ASSERT_TRUE(slot);
  EXPECT_EQ(files->subscriber_slots()[*slot].next_sequence.load(), released);
  Child second = start(common + std::vector<std::string>{"--until-seq", str(n)} + rule);
  const Outcome p = finish(producer);
  EXPECT_TRUE(p.status.ok()) << p.output;
  const Outcome o = finish(second);
  expect_clean(o, "restarted subscriber");
  ASSERT_FALSE(o.result.empty());
  EXPECT_EQ(field_u64(o.result, "first_seq"), released);
  EXPECT_EQ(o.result.at("last_seq"), str(n));
  EXPECT_EQ(o.result.at("lost"), "0");
  std::uint64_t missing = 0, wrong = 0;
  for (std::uint64_t seq = 1; seq <= n; ++seq) {
    // Read by the first process up to `stop`; by the second from `released` on.
    const int want = (seq <= stop ? 1 : 0) + (seq >= released ? 1 : 0);
    if (tally[seq] == 0) ++missing;
    if (tally[seq] != want) ++wrong;
  }
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(wrong, 0u);
}

// g. Subscribers that exit cleanly unregister: an anonymous slot becomes free (and stops gating),
// a named one becomes detached and keeps its position.
TEST(MultiProcess, SubscribersThatExitCleanlyUnregister) {
  const std::uint64_t n = 100;
  ChannelGuard ch(unique_channel("exit"));
  Publisher pub = create_channel(ch.name(), 64 << 10, 1024);
  const SizeRule rule{61, kPayloadIdBytes, 64};
  const auto rule_args = sizes(rule.seed, rule.min_size, rule.max_size);
  Child anonymous = start(std::vector<std::string>{"consume", "--channel", ch.name(), "--policy",
                                                   "block", "--stop-after", str(n)} +
                          rule_args);
  Child named = start(std::vector<std::string>{"consume", "--channel", ch.name(), "--policy",
                                               "drop", "--name", "tidy", "--stop-after", str(n)} +
                      rule_args);
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  EXPECT_EQ(files->slot_states()[static_cast<int>(detail::SlotState::active)], 2);
  std::vector<std::byte> buf(rule.max_size);
  for (std::uint64_t i = 0; i < n; ++i) {
    const PayloadId id{1, i};
    const std::uint32_t len = payload_length(rule, id);
    fill_payload({buf.data(), len}, id);
    ASSERT_EQ(pub.publish({buf.data(), len}, std::chrono::seconds(30)), PublishStatus::ok);
  }
  for (Child* c : {&anonymous, &named}) {
    const Outcome o = finish(*c);
    expect_clean(o, "subscriber");
    if (!o.result.empty()) {
      EXPECT_EQ(o.result.at("received"), str(n));
    }
  }
  const auto states = files->slot_states();
  EXPECT_EQ(states[static_cast<int>(detail::SlotState::active)], 0);
  EXPECT_EQ(states[static_cast<int>(detail::SlotState::detached)], 1);
  EXPECT_EQ(states[static_cast<int>(detail::SlotState::free)],
            static_cast<int>(detail::kDefaultSubscriberSlots) - 1);
  auto slot = files->find_named_slot("tidy");
  ASSERT_TRUE(slot);
  EXPECT_EQ(detail::owner_state(files->subscriber_slots()[*slot].owner.load()),
            detail::SlotState::detached);
  EXPECT_EQ(files->subscriber_slots()[*slot].next_sequence.load(), n + 1);
  // Nobody gates any more: a producer can write several laps without waiting.
  std::vector<std::byte> big(1000);
  for (int i = 0; i < 3 * 64; ++i) {
    ASSERT_EQ(pub.try_publish(big), PublishStatus::ok) << "message " << i;
  }
}

}  // namespace
}  // namespace shmbus
