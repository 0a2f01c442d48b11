// The exactly-once helper (include/shmbus/exactly_once.hpp) against an in-process stand-in for
// the group: which records it applies, skips, drops and acks, how it trims, how it survives a
// failed commit, and, with crashes injected at every step of the protocol and records taken back
// from stalled members, that the members' committed states add up to the sequential fold over the
// stream. The real group, with real processes killed by kill -9, is group_exactly_once_test.cpp.
#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "shmbus/exactly_once.hpp"
#include "tests/support/journal_files.hpp"

namespace shmbus {
namespace {

using test::TempDir;

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
  bool operator==(const Totals&) const = default;
};

Totals fold(std::uint64_t first, std::uint64_t end) {
  Totals t;
  for (std::uint64_t s = first; s < end; ++s) {
    t.count += 1;
    t.sum += value_of(s);
    t.hash_xor ^= value_of(s ^ 0x5555);
  }
  return t;
}

void apply_record(Totals& t, const GroupMessage& m) {
  std::uint64_t v = 0;
  ASSERT_EQ(m.payload.size(), sizeof v);
  std::memcpy(&v, m.payload.data(), sizeof v);
  ASSERT_EQ(v, value_of(m.sequence)) << "payload of " << m.sequence;
  t.count += 1;
  t.sum += v;
  t.hash_xor ^= value_of(m.sequence ^ 0x5555);
}

// The group as the helper sees it: records handed out (redeliveries first), held per member,
// pinned or not, retired on ack. It can take back an unpinned record as if its member had
// stalled past the ack timeout, and take back everything a member holds as if its process died.
struct FakeGroup {
  struct Held {
    int member;
    bool pinned;
    std::uint32_t attempt;
  };
  explicit FakeGroup(std::uint64_t records) : payloads(records), retired(records, false) {
    for (std::uint64_t s = 0; s < records; ++s) {
      const std::uint64_t v = value_of(s);
      std::memcpy(payloads[s].data(), &v, sizeof v);
    }
  }
  std::vector<std::array<std::byte, 8>> payloads;
  std::vector<bool> retired;
  std::uint64_t next_fresh = 0;
  std::uint64_t retired_through = 0;
  std::deque<std::pair<std::uint64_t, std::uint32_t>> redeliver;  // sequence, attempts so far
  std::map<std::uint64_t, Held> held;
  std::mt19937_64 rng{7};
  double stall_chance = 0;  // that pin() or ack() finds the record taken back (unpinned only)
  std::set<std::uint64_t> pinned_ever;
  // Runs after a stall took a record back at pin(), before pin() answers: another member may take
  // the record and commit it meanwhile, as it could while the stalled one slept.
  std::function<void()> after_stall_at_pin;

  void take_back(std::uint64_t sequence) {
    redeliver.emplace_back(sequence, held.at(sequence).attempt);
    held.erase(sequence);
  }
  void retire(std::uint64_t sequence) {
    held.erase(sequence);
    retired[sequence] = true;
    while (retired_through < retired.size() && retired[retired_through]) ++retired_through;
  }
  void member_died(int member) {
    std::vector<std::uint64_t> back;
    for (const auto& [s, h] : held) {
      if (h.member == member) back.push_back(s);
    }
    for (const std::uint64_t s : back) take_back(s);
  }
  bool maybe_stalled(std::uint64_t sequence) {
    if (held.at(sequence).pinned || stall_chance == 0) return false;
    if (std::uniform_real_distribution<double>(0, 1)(rng) >= stall_chance) return false;
    take_back(sequence);
    return true;
  }
  bool done() const { return retired_through == retired.size(); }
};

struct FakeMember {
  FakeMember(FakeGroup* group, int id) : group(group), id(id) {}
  FakeGroup* group;
  int id;
  std::size_t polls = 0;
  std::array<std::byte, 8> scratch{};
  std::uint64_t expire_in_poll = UINT64_MAX;
  std::vector<std::uint64_t> acked;
  std::vector<std::uint64_t> pinned;

  std::size_t poll_sink(GroupConsumer::Sink sink, std::size_t max) {
    ++polls;
    std::size_t n = 0;
    while (n < max) {
      std::uint64_t s = 0;
      std::uint32_t attempt = 1;
      if (!group->redeliver.empty()) {
        s = group->redeliver.front().first;
        attempt = group->redeliver.front().second + 1;
        group->redeliver.pop_front();
      } else if (group->next_fresh < group->payloads.size()) {
        s = group->next_fresh++;
      } else {
        break;
      }
      group->held[s] = FakeGroup::Held{id, false, attempt};
      // As the group does: the payload is a copy valid only inside the callback (scribbled over
      // after it, so a helper that kept the span would see garbage).
      scratch = group->payloads[s];
      const GroupMessage m{s, 0, scratch, {}, 0, attempt > 1, attempt};
      sink.call(sink.handler, m);
      scratch.fill(std::byte{0xee});
      ++n;
      // As if this member stalled inside the poll past the ack timeout: the record is taken back
      // and comes again, to this member, within the same poll.
      if (attempt == 1 && s == expire_in_poll) group->take_back(s);
    }
    return n;
  }
  AckStatus pin(std::uint64_t s) {
    const auto it = group->held.find(s);
    if (it == group->held.end() || it->second.member != id) return AckStatus::fenced;
    if (group->maybe_stalled(s)) {
      if (group->after_stall_at_pin) group->after_stall_at_pin();
      return AckStatus::fenced;
    }
    it->second.pinned = true;
    group->pinned_ever.insert(s);
    pinned.push_back(s);
    return AckStatus::ok;
  }
  AckStatus ack(std::uint64_t s) {
    const auto it = group->held.find(s);
    if (it == group->held.end() || it->second.member != id) return AckStatus::fenced;
    if (group->maybe_stalled(s)) return AckStatus::fenced;
    group->retire(s);
    acked.push_back(s);
    return AckStatus::ok;
  }
  std::uint64_t retired_through() const { return group->retired_through; }
};

static_assert(ExactlyOnceMember<FakeMember>);
static_assert(ExactlyOnceMember<GroupConsumer>);

using Helper = ExactlyOnce<Totals, FakeMember>;

Totals totals_in(const std::string& file) {
  const auto data = read_checkpoint(file).value();
  return StateCodec<Totals>::decode(data.state).value();
}

TEST(ExactlyOnce, AppliesFreshRecordsCommitsOnceAndAcksTheBatch) {
  TempDir dir("eo");
  FakeGroup group(10);
  FakeMember member{&group, 0};
  auto store = CheckpointDirectory::open(dir.path(), "a").value();
  auto eo = Helper::open(member, store, 64).value();
  auto n = eo.process(apply_record);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, 10u);
  EXPECT_EQ(eo.state(), fold(0, 10));
  EXPECT_EQ(totals_in(dir.file("a.ckpt")), fold(0, 10));
  EXPECT_EQ(eo.counters().commits, 1u);
  EXPECT_EQ(eo.counters().applied, 10u);
  EXPECT_EQ(member.pinned.size(), 10u);
  EXPECT_EQ(member.acked, (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_TRUE(group.done());
  // Nothing more: no poll result, no commit.
  n = eo.process(apply_record);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(eo.counters().commits, 1u);
}

TEST(ExactlyOnce, ARestartUnderTheSameNameResumesFromItsCheckpoint) {
  TempDir dir("eo");
  FakeGroup group(20);
  {
    FakeMember member{&group, 0};
    auto store = CheckpointDirectory::open(dir.path(), "a").value();
    auto eo = Helper::open(member, store, 8).value();
    ASSERT_TRUE(eo.process(apply_record));
  }
  FakeMember member{&group, 0};
  auto store = CheckpointDirectory::open(dir.path(), "a").value();
  auto eo = Helper::open(member, store, 64).value();
  EXPECT_EQ(eo.state(), fold(0, 8));
  ASSERT_TRUE(eo.process(apply_record));
  EXPECT_EQ(eo.state(), fold(0, 20));
}

TEST(ExactlyOnce, ARedeliveredRecordAnotherMemberCommittedIsOnlyAcked) {
  TempDir dir("eo");
  FakeGroup group(6);
  auto store_a = CheckpointDirectory::open(dir.path(), "a").value();
  {
    // a commits 0..3 and dies before its acks: a member whose acks never reach the group.
    struct NoAck : FakeMember {
      using FakeMember::FakeMember;
      AckStatus ack(std::uint64_t) { return AckStatus::ok; }
    };
    NoAck dying(&group, 0);
    auto eo = ExactlyOnce<Totals, NoAck>::open(dying, store_a, 4).value();
    ASSERT_TRUE(eo.process(apply_record));
    EXPECT_EQ(eo.state(), fold(0, 4));
  }
  group.member_died(0);
  ASSERT_EQ(group.redeliver.size(), 4u);
  FakeMember b{&group, 1};
  auto store_b = CheckpointDirectory::open(dir.path(), "b").value();
  auto eo_b = Helper::open(b, store_b, 64).value();
  ASSERT_TRUE(eo_b.process(apply_record));
  // 0..3 came back redelivered, were found in a's checkpoint and only acked; 4 and 5 are b's.
  EXPECT_EQ(eo_b.counters().skipped, 4u);
  EXPECT_EQ(eo_b.counters().applied, 2u);
  EXPECT_EQ(eo_b.state(), fold(4, 6));
  EXPECT_EQ(b.pinned, (std::vector<std::uint64_t>{4, 5}));
  EXPECT_EQ(b.acked, (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_TRUE(group.done());
  Totals sum = totals_in(dir.file("a.ckpt"));
  const Totals tb = totals_in(dir.file("b.ckpt"));
  sum.count += tb.count;
  sum.sum += tb.sum;
  sum.hash_xor ^= tb.hash_xor;
  EXPECT_EQ(sum, fold(0, 6));
}

TEST(ExactlyOnce, ARedeliveredRecordNoCheckpointListsIsApplied) {
  TempDir dir("eo");
  FakeGroup group(3);
  {
    // A member that polls and dies before committing: nothing of it is in any checkpoint.
    FakeMember dying{&group, 0};
    std::size_t got = 0;
    const GroupConsumer::Sink sink{&got, [](void* g, const GroupMessage&) { ++*static_cast<std::size_t*>(g); }};
    ASSERT_EQ(dying.poll_sink(sink, 3), 3u);
    group.member_died(0);
  }
  FakeMember b{&group, 1};
  auto store = CheckpointDirectory::open(dir.path(), "b").value();
  auto eo = Helper::open(b, store).value();
  ASSERT_TRUE(eo.process(apply_record));
  EXPECT_EQ(eo.counters().skipped, 0u);
  EXPECT_EQ(eo.state(), fold(0, 3));
  EXPECT_TRUE(group.done());
}

TEST(ExactlyOnce, AFencedRecordIsDroppedNeitherAppliedNorAcked) {
  TempDir dir("eo");
  FakeGroup group(10);
  group.stall_chance = 0.5;  // half the pins find the record taken back
  FakeMember member{&group, 0};
  auto store = CheckpointDirectory::open(dir.path(), "a").value();
  auto eo = Helper::open(member, store, 10).value();
  ASSERT_TRUE(eo.process(apply_record));
  const auto dropped = eo.counters().dropped;
  ASSERT_GT(dropped, 0u);
  ASSERT_LT(dropped, 10u);
  EXPECT_EQ(group.redeliver.size(), dropped);
  // Exactly the pinned records were applied and acked; the state holds them and no other.
  Totals expected;
  for (const std::uint64_t s : member.pinned) {
    const auto f = fold(s, s + 1);
    expected.count += f.count;
    expected.sum += f.sum;
    expected.hash_xor ^= f.hash_xor;
  }
  EXPECT_EQ(eo.state(), expected);
  EXPECT_EQ(member.acked, member.pinned);
  auto listed = member.pinned;
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(read_checkpoint(dir.file("a.ckpt")).value().applied.sequences, listed);
}

// The window pin() closes: a polls a record and stalls before pinning it; the group gives it to b,
// which applies and commits it; a's pin is then fenced and a must not apply it.
TEST(ExactlyOnce, AMemberStalledBeforePinningLosesTheRecordToAnotherThatAppliesItOnce) {
  TempDir dir("eo");
  FakeGroup group(1);
  group.stall_chance = 1;
  FakeMember a(&group, 0);
  FakeMember b(&group, 1);
  auto store_a = CheckpointDirectory::open(dir.path(), "a").value();
  auto store_b = CheckpointDirectory::open(dir.path(), "b").value();
  auto eo_a = Helper::open(a, store_a).value();
  auto eo_b = Helper::open(b, store_b).value();
  group.after_stall_at_pin = [&] {
    group.after_stall_at_pin = nullptr;
    group.stall_chance = 0;
    ASSERT_TRUE(eo_b.process(apply_record));
  };
  ASSERT_TRUE(eo_a.process(apply_record));
  EXPECT_EQ(eo_a.counters().dropped, 1u);
  EXPECT_EQ(eo_a.state(), Totals{});
  EXPECT_EQ(eo_b.state(), fold(0, 1));
  EXPECT_TRUE(a.acked.empty());
  EXPECT_EQ(b.acked, (std::vector<std::uint64_t>{0}));
  EXPECT_TRUE(group.done());
  EXPECT_FALSE(std::filesystem::exists(dir.file("a.ckpt"))) << "a committed nothing";
}

TEST(ExactlyOnce, ARecordDeliveredTwiceInOneBatchIsAppliedOnce) {
  TempDir dir("eo");
  FakeGroup group(3);
  FakeMember member(&group, 0);
  member.expire_in_poll = 1;
  auto store = CheckpointDirectory::open(dir.path(), "a").value();
  auto eo = Helper::open(member, store).value();
  const auto n = eo.process(apply_record);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, 4u) << "0, 1, 1 again, 2";
  EXPECT_EQ(eo.state(), fold(0, 3));
  EXPECT_EQ(member.pinned, (std::vector<std::uint64_t>{0, 1, 2}));
  EXPECT_EQ(member.acked, (std::vector<std::uint64_t>{0, 1, 2}));
  EXPECT_TRUE(group.done());
}

TEST(ExactlyOnce, TheCommittedAppliedSetIsTrimmedBelowRetiredThrough) {
  TempDir dir("eo");
  FakeGroup group(30);
  FakeMember a{&group, 0};
  auto store = CheckpointDirectory::open(dir.path(), "a").value();
  auto eo = Helper::open(a, store, 10).value();
  ASSERT_TRUE(eo.process(apply_record));  // 0..9, retired after the commit
  auto data = read_checkpoint(dir.file("a.ckpt")).value();
  EXPECT_EQ(data.applied.through, 0u);
  EXPECT_EQ(data.applied.sequences.size(), 10u);
  ASSERT_TRUE(eo.process(apply_record));  // 10..19: retired_through was 10 before its commit
  data = read_checkpoint(dir.file("a.ckpt")).value();
  EXPECT_EQ(data.applied.through, 10u);
  EXPECT_EQ(data.applied.sequences,
            (std::vector<std::uint64_t>{10, 11, 12, 13, 14, 15, 16, 17, 18, 19}));
  EXPECT_EQ(eo.applied_set().sequences, data.applied.sequences);
}

// A store that fails the commits it is told to, around a real CheckpointDirectory.
struct FlakyStore : ExactlyOnceStore {
  explicit FlakyStore(CheckpointDirectory inner) : inner(std::move(inner)) {}
  CheckpointDirectory inner;
  int fail_commits = 0;
  int fail_lookups = 0;
  int commits = 0;
  Result<CheckpointData> load() override { return inner.load(); }
  Result<void> begin_lookup() override {
    if (fail_lookups > 0) {
      --fail_lookups;
      return tl::unexpected(Error{ErrorCode::system, "lookup failed (test)"});
    }
    return inner.begin_lookup();
  }
  Result<bool> applied(std::uint64_t s) override { return inner.applied(s); }
  Result<void> commit(std::span<const std::byte> state, const AppliedSet& applied) override {
    ++commits;
    if (fail_commits > 0) {
      --fail_commits;
      return tl::unexpected(Error{ErrorCode::no_space, "disk full (test)"});
    }
    return inner.commit(state, applied);
  }
};

TEST(ExactlyOnce, AFailedCommitKeepsTheBatchPinnedAndTheNextCallRetriesItBeforePolling) {
  TempDir dir("eo");
  FakeGroup group(12);
  FakeMember member{&group, 0};
  FlakyStore store(CheckpointDirectory::open(dir.path(), "a").value());
  store.fail_commits = 2;
  auto eo = Helper::open(member, store, 6).value();
  auto r = eo.process(apply_record);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::no_space);
  EXPECT_TRUE(eo.pending());
  EXPECT_TRUE(member.acked.empty());
  EXPECT_EQ(eo.state(), Totals{});
  EXPECT_FALSE(std::filesystem::exists(dir.file("a.ckpt")));
  r = eo.process(apply_record);
  ASSERT_FALSE(r);
  EXPECT_EQ(member.polls, 1u) << "a pending batch must be committed before anything new is polled";
  r = eo.process(apply_record);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, 6u);
  EXPECT_EQ(member.polls, 1u);
  EXPECT_FALSE(eo.pending());
  EXPECT_EQ(eo.state(), fold(0, 6));
  EXPECT_EQ(member.acked, (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5}));
  ASSERT_TRUE(eo.process(apply_record));
  EXPECT_EQ(eo.state(), fold(0, 12));
  EXPECT_EQ(totals_in(dir.file("a.ckpt")), fold(0, 12));
}

TEST(ExactlyOnce, ALookupErrorPinsNothingAndADamagedCheckpointIsCorrupt) {
  TempDir dir("eo");
  FakeGroup group(4);
  {
    FakeMember dying{&group, 0};
    std::size_t got = 0;
    const GroupConsumer::Sink sink{&got, [](void* g, const GroupMessage&) { ++*static_cast<std::size_t*>(g); }};
    ASSERT_EQ(dying.poll_sink(sink, 4), 4u);
    group.member_died(0);
  }
  // Another member's checkpoint is damaged: nobody can tell what it applied.
  {
    std::ofstream out(dir.file("c.ckpt"), std::ios::binary);
    out << "not a checkpoint at all, just some bytes long enough for a header.....";
  }
  FakeMember b{&group, 1};
  auto store = CheckpointDirectory::open(dir.path(), "b").value();
  auto eo = Helper::open(b, store).value();
  const auto r = eo.process(apply_record);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::corrupt);
  EXPECT_NE(r.error().message.find("c.ckpt"), std::string::npos) << r.error().message;
  EXPECT_TRUE(b.pinned.empty());
  EXPECT_TRUE(b.acked.empty());
  EXPECT_EQ(eo.state(), Totals{});
}

TEST(CheckpointDirectory, ASecondLiveStoreUnderTheSameNameIsBusy) {
  TempDir dir("eo");
  auto first = CheckpointDirectory::open(dir.path(), "m-1").value();
  auto second = CheckpointDirectory::open(dir.path(), "m-1");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::busy) << second.error().message;
  auto other = CheckpointDirectory::open(dir.path(), "m-2");
  EXPECT_TRUE(other) << other.error().message;
  {
    CheckpointDirectory moved = std::move(first);
  }
  EXPECT_TRUE(CheckpointDirectory::open(dir.path(), "m-1")) << "the lock outlived its store";
}

TEST(CheckpointDirectory, RefusesNamesThatAreNotPlainFileNames) {
  TempDir dir("eo");
  for (const char* bad : {"", ".hidden", "a/b", "../up", "sp ace"}) {
    const auto r = CheckpointDirectory::open(dir.path(), bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << bad;
  }
}

// Crashes injected at every step: before a commit, after a commit (acks lost), inside apply
// (records pinned, then the member dies), and stalls taking back unpinned records at pin and at
// ack. A crashed member is restarted under its name. When everything is retired, the committed
// states add up to the fold, and no sequence is listed by two members.
struct Crash {};

struct CrashingStore : ExactlyOnceStore {
  CrashingStore(CheckpointDirectory inner, std::mt19937_64& rng) : inner(std::move(inner)), rng(rng) {}
  CheckpointDirectory inner;
  std::mt19937_64& rng;
  Result<CheckpointData> load() override { return inner.load(); }
  Result<void> begin_lookup() override { return inner.begin_lookup(); }
  Result<bool> applied(std::uint64_t s) override { return inner.applied(s); }
  Result<void> commit(std::span<const std::byte> state, const AppliedSet& applied) override {
    if (rng() % 10 == 0) throw Crash{};
    auto r = inner.commit(state, applied);
    if (rng() % 10 == 0) throw Crash{};
    return r;
  }
};

TEST(ExactlyOnce, CrashesAtEveryStepAndStallsNeverApplyARecordTwiceOrLoseOne) {
  TempDir dir("eo");
  constexpr std::uint64_t kRecords = 3000;
  constexpr int kMembers = 3;
  const std::array<std::string, kMembers> names{"m0", "m1", "m2"};
  FakeGroup group(kRecords);
  group.stall_chance = 0.02;
  std::mt19937_64 rng(99);
  struct Slot {
    std::unique_ptr<FakeMember> member;
    std::unique_ptr<CrashingStore> store;
    std::optional<Helper> helper;
  };
  std::vector<Slot> slots(kMembers);
  int crashes = 0;
  const auto start = [&](int i) {
    Slot& s = slots[i];
    s.helper.reset();
    s.store.reset();
    s.member = std::make_unique<FakeMember>(&group, i);
    s.store = std::make_unique<CrashingStore>(
        CheckpointDirectory::open(dir.path(), names[i]).value(), rng);
    s.helper.emplace(Helper::open(*s.member, *s.store, 1 + rng() % 16).value());
  };
  for (int i = 0; i < kMembers; ++i) start(i);
  int running = -1;  // the member whose process() is on the stack
  const auto run = [&](int i) {
    try {
      auto r = slots[i].helper->process([&](Totals& t, const GroupMessage& m) {
        if (rng() % 200 == 0) throw Crash{};
        apply_record(t, m);
      });
      ASSERT_TRUE(r) << r.error().message;
    } catch (const Crash&) {
      ++crashes;
      group.member_died(i);
      start(i);
    }
  };
  // While a member is stalled before a pin, another one runs a batch (only one level deep, so no
  // member is restarted while its own process() is on the stack).
  int interleaved = 0;
  group.after_stall_at_pin = [&] {
    if (running < 0) return;
    const int stalled = running;
    const int other = static_cast<int>((stalled + 1 + rng() % (kMembers - 1)) % kMembers);
    running = -1;
    ++interleaved;
    run(other);
    running = stalled;
  };
  for (int step = 0; !group.done() && step < 100000; ++step) {
    const int i = static_cast<int>(rng() % kMembers);
    running = i;
    run(i);
    running = -1;
  }
  EXPECT_GT(interleaved, 10);
  ASSERT_TRUE(group.done()) << "retired through " << group.retired_through;
  EXPECT_GT(crashes, 20);
  Totals sum;
  std::set<std::uint64_t> listed;
  for (int i = 0; i < kMembers; ++i) {
    const auto data = read_checkpoint(dir.file(names[i] + ".ckpt")).value();
    const Totals t = StateCodec<Totals>::decode(data.state).value();
    sum.count += t.count;
    sum.sum += t.sum;
    sum.hash_xor ^= t.hash_xor;
    for (const std::uint64_t s : data.applied.sequences) {
      EXPECT_TRUE(listed.insert(s).second) << s << " is listed applied by two members";
    }
  }
  EXPECT_EQ(sum, fold(0, kRecords));
}

}  // namespace
}  // namespace shmbus
