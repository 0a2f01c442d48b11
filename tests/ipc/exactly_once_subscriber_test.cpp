// ExactlyOnceSubscriber (include/shmbus/exactly_once.hpp): a named manual-release subscriber
// folding a stream into a checkpointed state, its process killed with kill -9 at random moments
// and restarted under the same name, ends with exactly the sequential fold of the stream.
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "shmbus/exactly_once.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/process.hpp"

namespace shmbus {
namespace {

using namespace std::chrono_literals;

std::uint64_t value_of(std::uint64_t sequence) {
  std::uint64_t z = sequence + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

struct Totals {
  std::uint64_t count = 0;
  std::uint64_t sum = 0;
  std::uint64_t hash_xor = 0;
  std::uint64_t bad = 0;  // records whose payload was not value_of(sequence)
  bool operator==(const Totals&) const = default;
};

void apply(Totals& t, const Message& m) {
  std::uint64_t v = 0;
  if (m.payload.size() != sizeof v) {
    ++t.bad;
    return;
  }
  std::memcpy(&v, m.payload.data(), sizeof v);
  if (v != value_of(m.sequence)) ++t.bad;
  t.count += 1;
  t.sum += v;
  t.hash_xor ^= value_of(m.sequence ^ 0x5555);
}

Totals fold(std::uint64_t first, std::uint64_t end) {
  Totals t;
  for (std::uint64_t s = first; s < end; ++s) {
    t.count += 1;
    t.sum += value_of(s);
    t.hash_xor ^= value_of(s ^ 0x5555);
  }
  return t;
}

TEST(ExactlyOnceSubscriber, KilledAndRestartedAtRandomItFoldsEveryRecordExactlyOnce) {
  test::ChannelGuard ch(test::unique_channel("eosub"));
  test::TempDir dir("eosub");
  constexpr std::uint64_t kRecords = 4000;
  ChannelOptions co;
  co.capacity = 1 << 20;
  co.max_message = 1024;
  co.open_timeout = 2000ms;
  auto pub = Publisher::open(ch.name(), co);
  ASSERT_TRUE(pub) << pub.error().message;
  for (std::uint64_t s = 1; s <= kRecords; ++s) {
    const std::uint64_t v = value_of(s);
    ASSERT_EQ(pub->try_publish(std::as_bytes(std::span(&v, 1))), PublishStatus::ok) << s;
  }
  const std::string path = dir.file("sub.ckpt");
  // One incarnation of the consumer: folds until everything is applied, then says DONE.
  const auto consumer = [&](std::uint32_t seed) {
    return test::Child::fork([&, seed] {
      SubscriberOptions so;
      so.policy = Policy::block;
      so.start = StartFrom::earliest;
      so.name = "eo";
      so.manual_release = true;
      so.open_timeout = 2000ms;
      auto sub = Subscriber::open(ch.name(), so);
      if (!sub) return 2;
      auto ckpt = StateCheckpoint::open(path);
      if (!ckpt) return 3;
      auto eo = ExactlyOnceSubscriber<Totals>::open(*sub, *ckpt);
      if (!eo) return 4;
      std::mt19937 r(seed);
      while (eo->applied_through() <= kRecords) {
        if (!eo->process(apply, 1 + r() % 64)) return 5;
      }
      const char line[] = "DONE\n";
      return ::write(1, line, sizeof line - 1) < 0 ? 6 : 0;
    });
  };
  // Killed at random moments until at least half the stream is in, then left to finish.
  std::mt19937_64 rng(4242);
  int kills = 0;
  for (int round = 0; round < 400; ++round) {
    const auto data = read_checkpoint(path);
    ASSERT_TRUE(data) << data.error().message;
    if (data->applied.through > kRecords / 2 && kills >= 20) break;
    test::Child child = consumer(static_cast<std::uint32_t>(rng()));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 30000));
    child.kill_hard();
    ++kills;
  }
  test::Child last = consumer(1);
  const auto st = last.wait(30s);
  ASSERT_TRUE(st) << "the last consumer did not finish";
  ASSERT_TRUE(st->ok()) << st->describe() << last.output();
  EXPECT_NE(last.output().find("DONE"), std::string::npos);
  EXPECT_GE(kills, 20);
  const auto data = read_checkpoint(path);
  ASSERT_TRUE(data) << data.error().message;
  EXPECT_EQ(data->applied.through, kRecords + 1);
  const Totals t = StateCodec<Totals>::decode(data->state).value();
  EXPECT_EQ(t.bad, 0u);
  EXPECT_EQ(t, fold(1, kRecords + 1));
}

}  // namespace
}  // namespace shmbus
