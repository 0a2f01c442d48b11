// read_channel_stats, list_channels and list_leftovers (include/shmbus/stats.hpp) against real
// processes: what a scripted scenario did must come out exactly, states included, and a tool's
// read must work with read permission alone and survive garbage in the control segment.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>
#include <ctime>
#include <thread>

#include <gtest/gtest.h>

#include "shmbus/shmbus.hpp"
#include "shmbus/stats.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"

namespace shmbus {
namespace {

using test::ChannelGuard;
using test::Child;
using test::unique_channel;

constexpr std::uint32_t kSize = 96;  // a 128-byte frame: 512 per 64 KiB lap

ChannelOptions small_channel() {
  ChannelOptions o;
  o.capacity = 64 << 10;
  o.max_message = 1024;
  return o;
}

// Message content is a function of its sequence, so every reader can check what it got.
void fill(std::span<std::byte> out, std::uint64_t sequence) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::byte>((sequence * 131 + i) & 0xff);
  }
}
bool content_ok(const Message& m) {
  if (m.payload.size() != kSize) return false;
  for (std::size_t i = 0; i < m.payload.size(); ++i) {
    if (m.payload[i] != static_cast<std::byte>((m.sequence * 131 + i) & 0xff)) return false;
  }
  return true;
}

// Publishes `count` messages (blocking while back-pressured); returns the exit code. With `hold`
// it then says READY and waits, still attached, to be killed.
int publish(const std::string& channel, std::uint64_t count, bool hold = false) {
  auto pub = Publisher::open(channel, small_channel());
  if (!pub) return 10;
  for (std::uint64_t i = 0; i < count; ++i) {
    Claim c;
    if (pub->claim(kSize, c, std::chrono::seconds(10)) != PublishStatus::ok) return 11;
    fill(c.span(), c.sequence());
    if (pub->commit(c) != PublishStatus::ok) return 12;
  }
  if (hold) {
    std::printf("READY\n");
    std::fflush(stdout);
    ::pause();
  }
  return 0;
}

const SubscriberStats* find(const ChannelStats& st, const std::string& name) {
  for (const SubscriberStats& s : st.subscribers) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// The scenario: known counts published by two producers (one exits cleanly, one is
// killed), a block subscriber that reads everything, a drop subscriber lapped while it slept, and
// a block subscriber whose process was killed.
TEST(ChannelStats, AScriptedScenarioComesOutExactly) {
  ChannelGuard ch(unique_channel("stats"));
  constexpr std::uint64_t kFirst = 3000;  // about six laps
  constexpr std::uint64_t kSecond = 100;
  constexpr std::uint64_t kTotal = kFirst + kSecond;
  { ASSERT_TRUE(Publisher::open(ch.name(), small_channel())); }  // created by this process

  SubscriberOptions keep_opts;
  keep_opts.policy = Policy::block;
  keep_opts.name = "keeper";
  auto keeper = Subscriber::open(ch.name(), keep_opts);
  ASSERT_TRUE(keeper) << keeper.error().message;
  SubscriberOptions drop_opts;
  drop_opts.policy = Policy::drop;
  drop_opts.name = "dropper";
  auto dropper = Subscriber::open(ch.name(), drop_opts);
  ASSERT_TRUE(dropper) << dropper.error().message;

  // The keeper reads on a thread while the producers run; it checks every sequence and byte.
  std::atomic<bool> keeper_ok{true};
  std::thread reader([&] {
    std::uint64_t expected = 1;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (expected <= kTotal && std::chrono::steady_clock::now() < deadline) {
      keeper->poll([&](const Message& m) {
        if (m.sequence != expected || !content_ok(m)) keeper_ok = false;
        expected = m.sequence + 1;
      });
    }
    if (expected != kTotal + 1) keeper_ok = false;
  });

  Child first = Child::fork([&] { return publish(ch.name(), kFirst); });
  auto first_status = first.wait(std::chrono::seconds(30));
  ASSERT_TRUE(first_status && first_status->ok()) << (first_status ? first_status->describe() : "");
  Child second = Child::fork([&] { return publish(ch.name(), kSecond, true); });
  ASSERT_TRUE(second.wait_for_line("READY", std::chrono::seconds(30))) << second.output();
  second.kill_hard();
  reader.join();
  ASSERT_TRUE(keeper_ok);

  // The dropper slept through six laps: what it gets is checked, what it lost is counted.
  std::uint64_t delivered = 0;
  std::uint64_t lost = 0;
  std::uint64_t last = 0;
  bool dropper_ok = true;
  // A poll that finds itself lapped delivers nothing and moves on: poll until the head.
  for (int polls = 0; polls < 100'000 && last < kTotal; ++polls) {
    dropper->poll([&](const Message& m) {
      if (m.sequence <= last || !content_ok(m) || m.sequence - last - 1 != m.lost_before) {
        dropper_ok = false;
      }
      last = m.sequence;
      lost += m.lost_before;
      ++delivered;
    });
  }
  ASSERT_TRUE(dropper_ok);
  ASSERT_EQ(last, kTotal);
  ASSERT_EQ(delivered + lost, kTotal);
  ASSERT_GT(lost, kTotal / 2);  // it was lapped, several times over
  ASSERT_EQ(dropper->lost(), lost);

  // A block subscriber whose process dies without closing.
  Child ghost = Child::fork([&] {
    SubscriberOptions o;
    o.policy = Policy::block;
    o.name = "ghost";
    o.liveness_timeout = std::chrono::seconds(600);
    auto s = Subscriber::open(ch.name(), o);
    if (!s) return 20;
    std::printf("READY\n");
    std::fflush(stdout);
    ::pause();
    return 0;
  });
  ASSERT_TRUE(ghost.wait_for_line("READY", std::chrono::seconds(10))) << ghost.output();
  const auto ghost_pid = static_cast<std::uint32_t>(ghost.pid());
  const auto second_pid = static_cast<std::uint32_t>(second.pid());
  ghost.kill_hard();

  auto st = read_channel_stats(ch.name());
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->name, ch.name());
  EXPECT_EQ(st->capacity, 64u << 10);
  EXPECT_EQ(st->max_message, 1024u);
  EXPECT_EQ(st->head_sequence, kTotal);
  EXPECT_EQ(st->published_messages, kTotal);
  EXPECT_EQ(st->published_bytes, kTotal * kSize);
  EXPECT_EQ(st->creator_pid, static_cast<std::uint32_t>(::getpid()));
  EXPECT_TRUE(st->creator_alive);
  EXPECT_FALSE(st->abandoned);
  EXPECT_EQ(st->corrupt_slots, 0u);
  EXPECT_FALSE(st->journal);

  // The killed producer is still registered, dead, with what it published.
  ASSERT_EQ(st->producers.size(), 1u);
  EXPECT_EQ(st->producers[0].pid, second_pid);
  EXPECT_FALSE(st->producers[0].alive);
  EXPECT_EQ(st->producers[0].published, kSecond);
  EXPECT_EQ(st->producers[0].published_bytes, kSecond * kSize);

  ASSERT_EQ(st->subscribers.size(), 3u);
  const SubscriberStats* k = find(*st, "keeper");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->pid, static_cast<std::uint32_t>(::getpid()));
  EXPECT_TRUE(k->alive);
  EXPECT_EQ(k->state, SubscriberState::alive);
  EXPECT_EQ(k->policy, Policy::block);
  EXPECT_EQ(k->received, kTotal);
  EXPECT_EQ(k->lost, 0u);
  EXPECT_EQ(k->next_sequence, kTotal + 1);
  EXPECT_EQ(k->lag_messages, 0u);
  EXPECT_EQ(k->lag_bytes, 0u);
  EXPECT_FALSE(k->latency);

  const SubscriberStats* d = find(*st, "dropper");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->policy, Policy::drop);
  EXPECT_EQ(d->state, SubscriberState::alive);
  EXPECT_EQ(d->received, delivered);
  EXPECT_EQ(d->lost, lost);
  EXPECT_EQ(d->spilled, 0u);
  EXPECT_EQ(d->lag_messages, 0u);

  const SubscriberStats* g = find(*st, "ghost");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->pid, ghost_pid);
  EXPECT_FALSE(g->alive);
  EXPECT_EQ(g->state, SubscriberState::dead);
  EXPECT_EQ(g->policy, Policy::block);
  EXPECT_EQ(g->received, 0u);
  EXPECT_EQ(g->next_sequence, kTotal + 1);

  // Named subscribers that close keep their slots, detached.
  keeper = tl::unexpected(Error{});
  dropper = tl::unexpected(Error{});
  auto after = read_channel_stats(ch.name());
  ASSERT_TRUE(after);
  ASSERT_NE(find(*after, "keeper"), nullptr);
  EXPECT_EQ(find(*after, "keeper")->state, SubscriberState::detached);
  EXPECT_EQ(find(*after, "dropper")->state, SubscriberState::detached);
  EXPECT_EQ(find(*after, "dropper")->lost, lost);
}

// A drop subscriber more than a ring behind is `lapped`; a block one half a ring behind `lagging`.
TEST(ChannelStats, LaggingAndLappedSubscribersAreNamedSo) {
  ChannelGuard ch(unique_channel("lag"));
  auto pub = Publisher::open(ch.name(), small_channel());
  ASSERT_TRUE(pub);
  SubscriberOptions slow;
  slow.policy = Policy::block;
  slow.name = "slow";
  auto block = Subscriber::open(ch.name(), slow);
  ASSERT_TRUE(block);
  SubscriberOptions sleepy;
  sleepy.policy = Policy::drop;
  sleepy.name = "sleepy";
  auto drop = Subscriber::open(ch.name(), sleepy);
  ASSERT_TRUE(drop);
  std::vector<std::byte> payload(kSize);
  // 400 frames of 512: the block subscriber is 78% of a ring behind.
  for (int i = 0; i < 400; ++i) ASSERT_EQ(pub->try_publish(payload), PublishStatus::ok);
  auto st = read_channel_stats(ch.name());
  ASSERT_TRUE(st);
  EXPECT_EQ(find(*st, "slow")->state, SubscriberState::lagging);
  EXPECT_EQ(find(*st, "slow")->lag_messages, 400u);
  EXPECT_EQ(find(*st, "slow")->lag_bytes, 400u * 128);
  EXPECT_EQ(find(*st, "sleepy")->state, SubscriberState::lagging);
  // The block subscriber reads; the producer laps the drop subscriber.
  for (int round = 0; round < 4; ++round) {
    while (block->poll([](const Message&) {}) > 0) {
    }
    for (int i = 0; i < 400; ++i) ASSERT_EQ(pub->try_publish(payload), PublishStatus::ok);
  }
  st = read_channel_stats(ch.name());
  ASSERT_TRUE(st);
  EXPECT_EQ(find(*st, "sleepy")->state, SubscriberState::lapped);
  EXPECT_EQ(find(*st, "sleepy")->lag_messages, 2000u);
  EXPECT_EQ(st->published_messages, 2000u);
  EXPECT_EQ(st->producers.size(), 1u);
  EXPECT_TRUE(st->producers[0].alive);
}

// Latency histograms: one per subscriber that asks; every delivered message is one sample.
TEST(ChannelStats, ALatencyHistogramCountsEveryDeliveredMessage) {
  ChannelGuard ch(unique_channel("lat"));
  auto pub = Publisher::open(ch.name(), small_channel());
  ASSERT_TRUE(pub);
  SubscriberOptions o;
  o.policy = Policy::block;
  o.latency_histogram = true;
  auto timed = Subscriber::open(ch.name(), o);
  ASSERT_TRUE(timed);
  auto plain = Subscriber::open(ch.name(), SubscriberOptions{});
  ASSERT_TRUE(plain);
  std::vector<std::byte> payload(kSize);
  std::uint64_t got = 0;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(pub->try_publish(payload), PublishStatus::ok);
    if (i % 7 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    got += timed->poll([](const Message&) {});
    plain->poll([](const Message&) {});
  }
  while (got < 1000) got += timed->poll([](const Message&) {});
  auto st = read_channel_stats(ch.name());
  ASSERT_TRUE(st);
  ASSERT_EQ(st->subscribers.size(), 2u);
  const SubscriberStats& a = st->subscribers[0].latency ? st->subscribers[0] : st->subscribers[1];
  const SubscriberStats& b = st->subscribers[0].latency ? st->subscribers[1] : st->subscribers[0];
  ASSERT_TRUE(a.latency);
  EXPECT_FALSE(b.latency);
  EXPECT_EQ(a.latency->count, 1000u);
  EXPECT_GT(a.latency->max_ns, 0u);
  // Published and read within this loop: no sample can exceed the test's own run time.
  EXPECT_LT(a.latency->max_ns, 60'000'000'000u);
  EXPECT_LE(core::latency_percentile(*a.latency, 0.5), a.latency->max_ns);
}

// No live process left: the channel is abandoned (what gc removes).
TEST(ChannelStats, AChannelWhoseProcessesAllDiedIsAbandoned) {
  ChannelGuard ch(unique_channel("gone"));
  Child creator = Child::fork([&] { return publish(ch.name(), 10); });
  auto status = creator.wait(std::chrono::seconds(10));
  ASSERT_TRUE(status && status->ok());
  Child reader = Child::fork([&] {
    SubscriberOptions o;
    o.policy = Policy::drop;
    o.name = "r";
    auto s = Subscriber::open(ch.name(), o);
    if (!s) return 1;
    std::printf("READY\n");
    std::fflush(stdout);
    ::pause();
    return 0;
  });
  ASSERT_TRUE(reader.wait_for_line("READY", std::chrono::seconds(10)));
  auto st = read_channel_stats(ch.name());
  ASSERT_TRUE(st);
  EXPECT_FALSE(st->abandoned);
  EXPECT_FALSE(st->creator_alive);
  EXPECT_EQ(st->published_messages, 10u);  // the creator left cleanly: its count was folded in
  EXPECT_TRUE(st->producers.empty());
  reader.kill_hard();
  st = read_channel_stats(ch.name());
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->abandoned);
  const auto names = list_channels();
  EXPECT_NE(std::find(names.begin(), names.end(), ch.name()), names.end());
}

// gc removes a channel only when no process maps it: a process that has opened the channel but
// holds no slot (as while it is still opening it) keeps it, through the ring's use lock.
TEST(ChannelStats, GcKeepsAChannelThatAProcessMapsWithoutASlot) {
  ChannelGuard ch(unique_channel("inuse"));
  Child creator = Child::fork([&] { return publish(ch.name(), 3); });
  auto created = creator.wait(std::chrono::seconds(10));
  ASSERT_TRUE(created && created->ok());
  Child holder = Child::fork([&] {
    SubscriberOptions o;
    o.policy = Policy::drop;
    auto sub = Subscriber::open(ch.name(), o);
    if (!sub) return 1;
    // Leave the slot, keep the mapping: registered nowhere, yet using the channel.
    auto files = test::ChannelFiles::open(ch.name(), true);
    if (!files) return 2;
    for (auto& slot : files->subscriber_slots()) slot.owner.store(0);
    std::printf("READY\n");
    std::fflush(stdout);
    ::pause();
    return 0;
  });
  ASSERT_TRUE(holder.wait_for_line("READY", std::chrono::seconds(10))) << holder.output();
  auto st = read_channel_stats(ch.name());
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->abandoned);  // nobody registered, creator gone...
  auto removed = remove_channel_if_abandoned(ch.name());
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_FALSE(*removed);  // ...but a process maps it
  EXPECT_TRUE(test::ChannelFiles::open(ch.name()).has_value());
  holder.kill_hard();  // the kernel drops its lock
  removed = remove_channel_if_abandoned(ch.name(), true);
  ASSERT_TRUE(removed);
  EXPECT_TRUE(*removed);
  EXPECT_TRUE(test::ChannelFiles::open(ch.name()).has_value());  // a dry run removes nothing
  removed = remove_channel_if_abandoned(ch.name());
  ASSERT_TRUE(removed);
  EXPECT_TRUE(*removed);
  EXPECT_FALSE(test::ChannelFiles::open(ch.name()).has_value());
  // A publisher afterwards simply creates the channel anew.
  auto pub = Publisher::open(ch.name(), small_channel());
  ASSERT_TRUE(pub) << pub.error().message;
}

// Tools need read permission only: a process that may not write either segment reads the stats.
TEST(ChannelStats, ReadPermissionIsEnough) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged user";
  ChannelGuard ch(unique_channel("ro"));
  auto pub = Publisher::open(ch.name(), small_channel());
  ASSERT_TRUE(pub);
  std::vector<std::byte> payload(kSize);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(pub->try_publish(payload), PublishStatus::ok);
  auto files = test::ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  ASSERT_EQ(::chmod(test::ring_path(ch.name()).c_str(), 0444), 0);
  ASSERT_EQ(::chmod(files->control_path().c_str(), 0444), 0);
  Child nobody = Child::fork([&] {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) return 30;
    // Writing is refused (a block subscriber must write its slot)...
    auto sub = Subscriber::open(ch.name(), SubscriberOptions{});
    if (sub || sub.error().code != ErrorCode::permission_denied) return 31;
    // ...reading is not.
    auto st = read_channel_stats(ch.name());
    if (!st) {
      std::printf("ERROR %s\n", st.error().message.c_str());
      return 32;
    }
    return st->published_messages == 5 && st->producers.size() == 1 ? 0 : 33;
  });
  auto status = nobody.wait(std::chrono::seconds(10));
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->ok()) << status->describe() << " " << nobody.output();
}

// A peer that scribbles over the control segment costs the reader nothing but a count. Slots are
// read up to the high-water marks, so the scribbler raises them too; a mark beyond the slot count
// is clamped to it.
TEST(ChannelStats, GarbageSlotsAreCountedNotTrusted) {
  ChannelGuard ch(unique_channel("junk"));
  auto pub = Publisher::open(ch.name(), small_channel());
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name(), SubscriberOptions{});
  ASSERT_TRUE(sub);
  auto files = test::ChannelFiles::open(ch.name(), true);
  ASSERT_TRUE(files);
  detail::ControlHeader& ctl = files->control();
  const std::span<detail::SubscriberSlot> slots = files->subscriber_slots();
  const std::span<detail::ProducerSlot> producers = files->producer_slots();
  ctl.subscriber_slots_high_water.store(44);
  ctl.producer_slots_high_water.store(21);
  // An unknown state, a valid state with a bad policy, and a name with no terminator.
  slots[40].owner.store(detail::owner_word(1, static_cast<detail::SlotState>(9)));
  slots[41].policy = 77;
  slots[41].owner.store(detail::owner_word(1, detail::SlotState::detached));
  std::memset(slots[42].name, 'x', sizeof slots[42].name);
  slots[42].policy = 1;
  slots[42].owner.store(detail::owner_word(1, detail::SlotState::detached));
  producers[20].owner.store(detail::owner_word(1, static_cast<detail::SlotState>(7)));
  // A name with a terminal escape in it never reaches a terminal.
  std::memcpy(slots[43].name, "\x1b[2J", 5);
  slots[43].policy = 1;
  slots[43].owner.store(detail::owner_word(1, detail::SlotState::detached));
  auto st = read_channel_stats(ch.name());
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->corrupt_slots, 5u);
  EXPECT_EQ(st->subscribers.size(), 1u);
  EXPECT_EQ(st->producers.size(), 1u);
  ctl.subscriber_slots_high_water.store(UINT32_MAX);
  ctl.producer_slots_high_water.store(UINT32_MAX);
  st = read_channel_stats(ch.name());
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->corrupt_slots, 5u);
  EXPECT_EQ(st->subscribers.size(), 1u);
  for (int i : {40, 41, 42, 43}) slots[i].owner.store(0);
  producers[20].owner.store(0);
}

TEST(ChannelStats, ASubscriberNameMustBePrintableWithoutSpaces) {
  ChannelGuard ch(unique_channel("names"));
  ASSERT_TRUE(Publisher::open(ch.name(), small_channel()));
  for (const char* bad : {"two words", "tab\there", "esc\x1b"}) {
    SubscriberOptions o;
    o.name = bad;
    auto sub = Subscriber::open(ch.name(), o);
    ASSERT_FALSE(sub) << bad;
    EXPECT_EQ(sub.error().code, ErrorCode::invalid_argument);
  }
}

// A forked child that destroys the Publisher it inherited must leave the parent's registration
// (and its counters) alone: only the process that holds a producer slot frees it.
TEST(ChannelStats, AForkedChildDroppingAnInheritedPublisherLeavesTheParentsSlot) {
  ChannelGuard ch(unique_channel("forkpub"));
  std::optional<Publisher> pub;
  {
    auto p = Publisher::open(ch.name(), small_channel());
    ASSERT_TRUE(p);
    pub.emplace(std::move(*p));
  }
  std::vector<std::byte> payload(kSize);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(pub->try_publish(payload), PublishStatus::ok);
  Child child = Child::fork([&] {
    pub.reset();
    return 0;
  });
  auto status = child.wait(std::chrono::seconds(10));
  ASSERT_TRUE(status && status->ok());
  auto st = read_channel_stats(ch.name());
  ASSERT_TRUE(st);
  ASSERT_EQ(st->producers.size(), 1u);
  EXPECT_EQ(st->producers[0].pid, static_cast<std::uint32_t>(::getpid()));
  EXPECT_EQ(st->published_messages, 5u);  // not 10: the child added nothing to the totals
  ASSERT_EQ(pub->try_publish(payload), PublishStatus::ok);
  pub.reset();
  st = read_channel_stats(ch.name());
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->producers.empty());
  EXPECT_EQ(st->published_messages, 6u);
  EXPECT_EQ(st->published_bytes, 6u * kSize);
}

TEST(ChannelStats, MissingChannelIsNotFound) {
  auto st = read_channel_stats("t-no-such-channel-" + std::to_string(::getpid()));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::not_found);
}

// Leftovers: a control segment whose ring is gone, and a dead creator's temporary ring.
TEST(ChannelStats, LeftoversAreFoundAndRemoved) {
  const std::string channel = unique_channel("left");
  const std::string ctl = "shmbus." + channel + ".ctl.00000000deadbeef";
  // A pid that cannot be running: above the largest pid Linux hands out (2^22).
  const std::string tmp = "shmbus." + channel + ".tmp.4194303.00000000deadbeef";
  for (const std::string& name : {ctl, tmp}) {
    const int fd = ::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    ASSERT_GE(fd, 0) << name;
    ASSERT_EQ(::ftruncate(fd, 4096), 0);
    ::close(fd);
  }
  auto found = list_leftovers();
  auto has = [&](const std::string& name) {
    return std::any_of(found.begin(), found.end(),
                       [&](const ShmLeftover& l) { return l.object == name; });
  };
  // Just written: they may belong to a channel being created, so they are not leftovers yet.
  EXPECT_FALSE(has(ctl));
  EXPECT_FALSE(has(tmp));
  // Two minutes old.
  for (const std::string& name : {ctl, tmp}) {
    const timespec old[2] = {{::time(nullptr) - 120, 0}, {::time(nullptr) - 120, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, ("/dev/shm/" + name).c_str(), old, 0), 0) << name;
  }
  found = list_leftovers();
  EXPECT_TRUE(has(ctl));
  EXPECT_TRUE(has(tmp));
  EXPECT_TRUE(remove_leftover(ctl));
  EXPECT_TRUE(remove_leftover(tmp));
  EXPECT_FALSE(remove_leftover(tmp));
  EXPECT_FALSE(remove_leftover("shmbus." + channel));  // a ring is not a leftover
  found = list_leftovers();
  EXPECT_FALSE(has(ctl));
  EXPECT_FALSE(has(tmp));
}

// A creator that died between its objects leaves the readers' registry and the use lock of an
// incarnation whose ring never appeared: they are leftovers too, named for what they are.
TEST(ChannelStats, RegistryAndUseLockOfAGoneChannelAreLeftovers) {
  const std::string channel = unique_channel("left4");
  const std::string readers = "shmbus." + channel + ".ctl.00000000deadbeef.readers";
  const std::string lock = "shmbus." + channel + ".ctl.00000000deadbeef.lock";
  for (const std::string& name : {readers, lock}) {
    const int fd = ::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    ASSERT_GE(fd, 0) << name;
    ::close(fd);
    const timespec old[2] = {{::time(nullptr) - 120, 0}, {::time(nullptr) - 120, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, ("/dev/shm/" + name).c_str(), old, 0), 0) << name;
  }
  auto why = [](const std::string& name) -> std::string {
    for (const ShmLeftover& l : list_leftovers()) {
      if (l.object == name) return l.why;
    }
    return "";
  };
  EXPECT_EQ(why(readers), "readers' registry of channel '" + channel + "', which is gone");
  EXPECT_EQ(why(lock), "use lock of channel '" + channel + "', which is gone");
  EXPECT_TRUE(remove_leftover(readers));
  EXPECT_TRUE(remove_leftover(lock));
  EXPECT_EQ(why(readers), "");
  EXPECT_EQ(why(lock), "");
}

// Names are matched by their exact shape from the end (a channel may be called "x.ctl"), and a
// control segment whose creation is still running is no leftover however old it is.
TEST(ChannelStats, LeftoverNamesAreParsedFromTheEndAndCreationsInProgressAreKept) {
  const std::string channel = unique_channel("left2") + ".ctl";
  const std::string incarnation = "0123456789abcdef";
  // A dead creator's temporary ring of channel "<...>.ctl": a temporary, not a control segment.
  const std::string dead_tmp = "shmbus." + channel + ".tmp.4194303." + incarnation;
  // A live creator (this process) still building channel2: its control segment stays.
  const std::string channel2 = unique_channel("left3");
  const std::string live_tmp = "shmbus." + channel2 + ".tmp." + std::to_string(::getpid()) + "." +
                               incarnation;
  const std::string live_ctl = "shmbus." + channel2 + ".ctl." + incarnation;
  for (const std::string& name : {dead_tmp, live_tmp, live_ctl}) {
    const int fd = ::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    ASSERT_GE(fd, 0) << name;
    ::close(fd);
    const timespec old[2] = {{::time(nullptr) - 120, 0}, {::time(nullptr) - 120, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, ("/dev/shm/" + name).c_str(), old, 0), 0) << name;
  }
  const auto found = list_leftovers();
  auto why = [&](const std::string& name) -> std::string {
    for (const ShmLeftover& l : found) {
      if (l.object == name) return l.why;
    }
    return "";
  };
  EXPECT_NE(why(dead_tmp).find("unfinished creation by pid 4194303"), std::string::npos)
      << why(dead_tmp);
  EXPECT_EQ(why(live_tmp), "");
  EXPECT_EQ(why(live_ctl), "");
  for (const std::string& name : {dead_tmp, live_tmp, live_ctl}) ::shm_unlink(name.c_str());
}

}  // namespace
}  // namespace shmbus
