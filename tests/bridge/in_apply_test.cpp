// Bridge in's apply rules (bridge/in_apply.hpp) without a NATS server: records as the stream would
// deliver them go into a local single-producer channel, a named local subscriber checks every
// record by sequence and content, and forked appliers are killed (SIGKILL) at each step of the
// protocol and at random moments, then restarted the way JetStream redelivers (from before what
// was applied).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bridge/in_apply.hpp"
#include "ipc/bridge_segment.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/payload.hpp"
#include "tests/support/process.hpp"

namespace shmbus::bridge {
namespace {

using namespace shmbus::test;
using namespace std::chrono_literals;

constexpr std::uint64_t kIncarnation = 0xa1b2c3d4e5f60718ULL;
constexpr std::uint64_t kCreated = 1'700'000'000'000'000'000ULL;
constexpr std::uint32_t kProducer = 7;
const SizeRule kSizes{42, 0, 300};

// What the origin published as record `seq` (payload and tag are functions of it).
struct OriginRecord {
  std::vector<std::byte> payload;
  std::vector<std::byte> key;
  std::uint16_t type = 0;
};
OriginRecord origin_record(std::uint64_t seq) {
  OriginRecord r;
  r.payload.resize(payload_length(kSizes, {kProducer, seq}));
  fill_payload(r.payload, {kProducer, seq});
  if (seq % 3 == 0) {
    const std::string key = "key-" + std::to_string(seq % 5);
    for (char ch : key) r.key.push_back(static_cast<std::byte>(ch));
    r.type = static_cast<std::uint16_t>(seq % 7);
  }
  return r;
}

// One message of the stream: a data record or a GAP of the origin.
struct StreamMessage {
  std::uint64_t origin_seq = 0;
  std::uint64_t gap_count = 0;  // 0: data
  std::string host = "hostA";
  std::uint64_t incarnation = kIncarnation;
};

// Applies stream message `m` (stream sequence `stream_seq`); `r` keeps the payload alive.
Result<ApplyOutcome> apply(InApplier& a, std::uint64_t stream_seq, const StreamMessage& m,
                           std::uint64_t created = kCreated) {
  IncomingRecord in;
  in.stream_seq = stream_seq;
  in.stream_created_ns = created;
  in.origin_host = m.host;
  in.origin_incarnation = m.incarnation;
  in.origin_seq = m.origin_seq;
  in.origin_time_ns = 1;
  OriginRecord r;
  if (m.gap_count != 0) {
    in.kind = IncomingKind::gap;
    in.gap_count = m.gap_count;
  } else {
    r = origin_record(m.origin_seq);
    in.payload = r.payload;
    in.key = r.key;
    in.message_type = r.type;
  }
  return a.apply(in);
}

ChannelOptions local_options(std::uint64_t capacity = 1 << 20) {
  ChannelOptions o;
  o.capacity = capacity;
  o.max_message = 1024;
  o.single_producer = true;
  o.open_timeout = 2000ms;
  o.accept_existing = true;
  return o;
}

detail::BridgeSettings in_settings() {
  shmbus::detail::BridgeSettings s;
  s.role = shmbus::detail::BridgeRole::in;
  s.stream = "APPLY";
  s.subject = "shmbus.apply";
  s.url = "nats://127.0.0.1:4222";
  s.host = "hostB";
  return s;
}

ApplierOptions applier_options() {
  ApplierOptions o;
  o.host = "hostB";
  o.claim_timeout = 20ms;
  return o;
}

// The local side: the channel's single producer, the bridge-in object and the applier.
struct Local {
  std::optional<Publisher> pub;
  std::optional<shmbus::detail::BridgeSegment> segment;
  std::optional<InApplier> applier;

  static Local open(const std::string& channel, ApplierOptions options = applier_options(),
                    std::uint64_t capacity = 1 << 20) {
    Local l;
    auto pub = Publisher::open(channel, local_options(capacity));
    if (!pub) throw std::runtime_error(pub.error().message);
    l.pub.emplace(std::move(*pub));
    auto seg = shmbus::detail::BridgeSegment::open_owned(l.pub->info(), in_settings());
    if (!seg) throw std::runtime_error(seg.error().message);
    l.segment.emplace(std::move(*seg));
    auto applier = InApplier::open(*l.pub, *l.segment, std::move(options));
    if (!applier) throw std::runtime_error(applier.error().message);
    l.applier.emplace(std::move(*applier));
    return l;
  }
  shmbus::detail::BridgeCounters& counters() { return segment->counters(); }
};

// A named block subscriber reading the local channel from its first record.
Subscriber open_reader(const std::string& channel) {
  auto sub = Subscriber::open(channel, [] {
    SubscriberOptions o;
    o.policy = Policy::block;
    o.start = StartFrom::earliest;
    o.name = "checker";
    o.abandon_timeout = 50ms;
    return o;
  }());
  if (!sub) throw std::runtime_error(sub.error().message);
  return std::move(*sub);
}

struct Got {
  std::uint64_t sequence;
  std::uint64_t lost_before;
  std::vector<std::byte> payload;
  std::vector<std::byte> key;
  std::uint16_t type;
};

// Reads until the subscriber stands at `next_sequence` (every local sequence before it delivered
// or counted lost), or fails after a few seconds.
std::vector<Got> read_until(Subscriber& sub, std::uint64_t next_sequence) {
  std::vector<Got> got;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (sub.next_sequence() < next_sequence && std::chrono::steady_clock::now() < deadline) {
    const std::size_t n = sub.poll([&](const Message& m) {
      got.push_back(Got{m.sequence, m.lost_before, {m.payload.begin(), m.payload.end()},
                        {m.key.begin(), m.key.end()}, m.message_type});
    });
    if (n == 0) (void)sub.wait(5ms);
  }
  EXPECT_EQ(sub.next_sequence(), next_sequence) << "the local channel did not reach it";
  return got;
}

// Checks that `got` holds exactly the origin records `origins`, in order, each once, with
// `lost[i]` local sequences lost before record i.
void expect_records(const std::vector<Got>& got, const std::vector<std::uint64_t>& origins,
                    const std::vector<std::uint64_t>& lost) {
  ASSERT_EQ(got.size(), origins.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const OriginRecord want = origin_record(origins[i]);
    EXPECT_EQ(got[i].payload, want.payload) << "record " << i << " (origin " << origins[i] << ")";
    EXPECT_EQ(got[i].key, want.key) << "record " << i;
    EXPECT_EQ(got[i].type, want.type) << "record " << i;
    EXPECT_EQ(got[i].lost_before, lost[i]) << "record " << i << " (origin " << origins[i] << ")";
  }
}

TEST(InApply, AppliesDataInOrderWithKeysAndTypes) {
  ChannelGuard ch(unique_channel("ina"));
  Local l = Local::open(ch.name());
  Subscriber reader = open_reader(ch.name());
  for (std::uint64_t s = 1; s <= 20; ++s) {
    auto r = apply(*l.applier, s, {s});
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, ApplyOutcome::applied);
  }
  const auto got = read_until(reader, 21);
  std::vector<std::uint64_t> origins(20);
  for (std::uint64_t i = 0; i < 20; ++i) origins[i] = i + 1;
  expect_records(got, origins, std::vector<std::uint64_t>(20, 0));
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].sequence, i + 1);
  EXPECT_EQ(l.counters().published_or_applied.load(), 20u);
  EXPECT_EQ(l.applier->applied(),
            (InApplier::Position{20, kCreated, kIncarnation, 20, 20}));
  EXPECT_EQ(l.segment->applied(), l.applier->applied());
  EXPECT_EQ(l.segment->intent(), l.applier->applied());
}

TEST(InApply, RedeliveredRecordsAreSkippedAsDuplicates) {
  ChannelGuard ch(unique_channel("indup"));
  Local l = Local::open(ch.name());
  Subscriber reader = open_reader(ch.name());
  for (std::uint64_t s = 1; s <= 5; ++s) ASSERT_EQ(apply(*l.applier, s, {s}).value(), ApplyOutcome::applied);
  for (std::uint64_t s = 2; s <= 5; ++s) {
    EXPECT_EQ(apply(*l.applier, s, {s}).value(), ApplyOutcome::duplicate) << s;
  }
  ASSERT_EQ(apply(*l.applier, 6, {6}).value(), ApplyOutcome::applied);
  EXPECT_EQ(apply(*l.applier, 6, {6}).value(), ApplyOutcome::duplicate);
  EXPECT_EQ(l.counters().duplicates.load(), 5u);
  expect_records(read_until(reader, 7), {1, 2, 3, 4, 5, 6}, std::vector<std::uint64_t>(6, 0));
}

TEST(InApply, RecordsFromThisHostAreNeverApplied) {
  ChannelGuard ch(unique_channel("inown"));
  Local l = Local::open(ch.name());
  Subscriber reader = open_reader(ch.name());
  ASSERT_EQ(apply(*l.applier, 1, {1}).value(), ApplyOutcome::applied);
  StreamMessage own{100};
  own.host = "hostB";
  own.incarnation = 0x5555;
  EXPECT_EQ(apply(*l.applier, 2, own).value(), ApplyOutcome::own_skipped);
  own.origin_seq = 101;
  EXPECT_EQ(apply(*l.applier, 3, own).value(), ApplyOutcome::own_skipped);
  // Redelivered: a duplicate by stream sequence, still not applied.
  EXPECT_EQ(apply(*l.applier, 3, own).value(), ApplyOutcome::duplicate);
  // The origin's continuity is untouched by the skipped records: 2 follows 1, no gap.
  ASSERT_EQ(apply(*l.applier, 4, {2}).value(), ApplyOutcome::applied);
  EXPECT_EQ(l.counters().own_skipped.load(), 2u);
  EXPECT_EQ(l.counters().stream_gaps.load(), 0u);
  EXPECT_EQ(l.applier->applied().stream_seq, 4u);
  expect_records(read_until(reader, 3), {1, 2}, {0, 0});
}

TEST(InApply, ContinuityGapIsLaidOutForExactlyTheMissingCount) {
  ChannelGuard ch(unique_channel("incont"));
  std::vector<std::string> reports;
  ApplierOptions options = applier_options();
  options.report = [&](std::string_view line) { reports.emplace_back(line); };
  Local l = Local::open(ch.name(), options);
  Subscriber reader = open_reader(ch.name());
  // The stream discarded origin 3 and 4 (stream sequences 3-4 are 5 and 6 of the origin).
  ASSERT_EQ(apply(*l.applier, 1, {1}).value(), ApplyOutcome::applied);
  ASSERT_EQ(apply(*l.applier, 2, {2}).value(), ApplyOutcome::applied);
  ASSERT_EQ(apply(*l.applier, 3, {5}).value(), ApplyOutcome::applied);
  ASSERT_EQ(apply(*l.applier, 4, {6}).value(), ApplyOutcome::applied);
  EXPECT_EQ(apply(*l.applier, 3, {5}).value(), ApplyOutcome::duplicate);
  EXPECT_EQ(l.counters().stream_gaps.load(), 2u);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("sequences 3-4"), std::string::npos) << reports[0];
  const auto got = read_until(reader, 7);
  expect_records(got, {1, 2, 5, 6}, {0, 0, 2, 0});
  EXPECT_EQ(got[2].sequence, 5u);
}

TEST(InApply, GapRecordsAreSeenAsLostBeforeExactly) {
  ChannelGuard ch(unique_channel("ingap"));
  Local l = Local::open(ch.name());
  Subscriber reader = open_reader(ch.name());
  ASSERT_EQ(apply(*l.applier, 1, {1}).value(), ApplyOutcome::applied);
  ASSERT_EQ(apply(*l.applier, 2, {2, 4}).value(), ApplyOutcome::applied);  // origin 2-5 lost
  ASSERT_EQ(apply(*l.applier, 3, {6}).value(), ApplyOutcome::applied);
  ASSERT_EQ(apply(*l.applier, 4, {7, 100}).value(), ApplyOutcome::applied);  // 7-106
  // The stream lost the GAP's successor 107 too: one more, as a stream gap.
  ASSERT_EQ(apply(*l.applier, 5, {108}).value(), ApplyOutcome::applied);
  EXPECT_EQ(apply(*l.applier, 4, {7, 100}).value(), ApplyOutcome::duplicate);
  EXPECT_EQ(l.counters().gaps.load(), 2u);
  EXPECT_EQ(l.counters().gap_sequences.load(), 104u);
  EXPECT_EQ(l.counters().stream_gaps.load(), 1u);
  const auto got = read_until(reader, 109);
  expect_records(got, {1, 6, 108}, {0, 4, 101});
  EXPECT_EQ(got[2].sequence, 108u);  // local sequences mirror the origin's exactly
  EXPECT_EQ(reader.lost(), 105u);
}

TEST(InApply, ANewOriginIncarnationStartsAtOne) {
  ChannelGuard ch(unique_channel("ininc"));
  Local l = Local::open(ch.name());
  Subscriber reader = open_reader(ch.name());
  // A fresh bridge in takes whatever comes first.
  ASSERT_EQ(apply(*l.applier, 1, {10}).value(), ApplyOutcome::applied);
  ASSERT_EQ(apply(*l.applier, 2, {11}).value(), ApplyOutcome::applied);
  // The origin channel was re-created: its first record in the stream is its sequence 3.
  StreamMessage next{3};
  next.incarnation = 0x77;
  ASSERT_EQ(apply(*l.applier, 3, next).value(), ApplyOutcome::applied);
  EXPECT_EQ(l.counters().stream_gaps.load(), 2u);
  expect_records(read_until(reader, 6), {10, 11, 3}, {0, 0, 2});
}

TEST(InApply, ARecreatedStreamFallsBackToOriginSequences) {
  ChannelGuard ch(unique_channel("inrec"));
  Local l = Local::open(ch.name());
  Subscriber reader = open_reader(ch.name());
  for (std::uint64_t s = 1; s <= 4; ++s) ASSERT_EQ(apply(*l.applier, s, {s}).value(), ApplyOutcome::applied);
  // The stream was deleted and re-created; bridge out republished from origin 3: the new
  // stream's sequences restart at 1.
  const std::uint64_t created = kCreated + 1000;
  EXPECT_EQ(apply(*l.applier, 1, {3}, created).value(), ApplyOutcome::duplicate);
  EXPECT_EQ(apply(*l.applier, 2, {4}, created).value(), ApplyOutcome::duplicate);
  EXPECT_EQ(apply(*l.applier, 3, {5}, created).value(), ApplyOutcome::applied);
  EXPECT_EQ(apply(*l.applier, 2, {4}, created).value(), ApplyOutcome::duplicate);
  EXPECT_EQ(l.applier->applied(), (InApplier::Position{3, created, kIncarnation, 5, 5}));
  expect_records(read_until(reader, 6), {1, 2, 3, 4, 5}, std::vector<std::uint64_t>(5, 0));
}

TEST(InApply, BackPressureClaimsNothingAndAGapResumesWhereItStopped) {
  ChannelGuard ch(unique_channel("inbp"));
  Local l = Local::open(ch.name(), applier_options(), 16 << 10);
  Subscriber reader = open_reader(ch.name());
  std::vector<Got> got;
  auto drain = [&] {
    reader.poll([&](const Message& m) {
      got.push_back(Got{m.sequence, m.lost_before, {m.payload.begin(), m.payload.end()},
                        {m.key.begin(), m.key.end()}, m.message_type});
    });
  };
  std::uint64_t stream = 0, origin = 0;
  int pressured = 0;
  std::vector<std::uint64_t> origins;
  // Data until the ring is full, then drain and go on.
  while (origin < 300) {
    ++origin;
    ++stream;
    for (;;) {
      const std::uint64_t before = l.pub->next_sequence();
      auto r = apply(*l.applier, stream, {origin});
      ASSERT_TRUE(r) << r.error().message;
      if (*r == ApplyOutcome::applied) break;
      ASSERT_EQ(*r, ApplyOutcome::back_pressured);
      EXPECT_EQ(l.pub->next_sequence(), before) << "a back-pressured apply claimed";
      ++pressured;
      drain();
    }
    origins.push_back(origin);
  }
  EXPECT_GT(pressured, 0);
  // A GAP of 2000 sequences (64 KB of frames) does not fit a 16 KiB ring: laid out in parts.
  ++stream;
  int gap_pressured = 0;
  for (;;) {
    auto r = apply(*l.applier, stream, {origin + 1, 2000});
    ASSERT_TRUE(r) << r.error().message;
    if (*r == ApplyOutcome::applied) break;
    ++gap_pressured;
    drain();
  }
  EXPECT_GT(gap_pressured, 0);
  origin += 2000;
  ++origin;
  ++stream;
  for (;;) {
    auto r = apply(*l.applier, stream, {origin});
    if (r.value() == ApplyOutcome::applied) break;
    drain();
  }
  origins.push_back(origin);
  const auto rest = read_until(reader, origin + 1);
  got.insert(got.end(), rest.begin(), rest.end());
  std::vector<std::uint64_t> lost(origins.size(), 0);
  lost.back() = 2000;
  expect_records(got, origins, lost);
  EXPECT_EQ(l.counters().gap_sequences.load(), 2000u);
  EXPECT_EQ(l.counters().duplicates.load(), 0u);
}

TEST(InApply, RefusesAMultiProducerChannelAndARecordAboveMaxMessage) {
  ChannelGuard ch(unique_channel("inref"));
  {
    ChannelOptions o = local_options();
    o.single_producer = false;
    auto pub = Publisher::open(ch.name(), o);
    ASSERT_TRUE(pub);
    auto seg = shmbus::detail::BridgeSegment::open_owned(pub->info(), in_settings());
    ASSERT_TRUE(seg) << seg.error().message;
    auto a = InApplier::open(*pub, *seg, applier_options());
    ASSERT_FALSE(a);
    EXPECT_NE(a.error().message.find("multi-producer"), std::string::npos) << a.error().message;
  }
  remove_channel_objects(ch.name());
  Local l = Local::open(ch.name());
  IncomingRecord big;
  std::vector<std::byte> payload(2000);
  big.stream_seq = 1;
  big.stream_created_ns = kCreated;
  big.origin_host = "hostA";
  big.origin_incarnation = kIncarnation;
  big.origin_seq = 1;
  big.payload = payload;
  auto r = l.applier->apply(big);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("max_message 1024"), std::string::npos) << r.error().message;
  EXPECT_EQ(l.pub->next_sequence(), 1u);
  EXPECT_EQ(l.applier->applied(), InApplier::Position{});
}

// --- kill -9 ---

// The stream bridge in reads in the kill tests: data with two GAP records and two stream gaps.
std::vector<StreamMessage> kill_stream(std::uint64_t records) {
  std::vector<StreamMessage> s;
  std::uint64_t origin = 1;
  while (s.size() < records) {
    if (s.size() % 97 == 50) {
      const std::uint64_t count = 3 + s.size() % 5;
      s.push_back({origin, count});  // a GAP
      origin += count;
    } else if (s.size() % 131 == 70) {
      origin += 2;  // the stream discarded two records
      s.push_back({origin});
      ++origin;
    } else {
      s.push_back({origin});
      ++origin;
    }
  }
  return s;
}

// What a correct destination holds for `stream`: the data records' origin sequences and the
// sequences lost before each (abandoned local sequences not counted).
void expected_destination(const std::vector<StreamMessage>& stream,
                          std::vector<std::uint64_t>& origins, std::vector<std::uint64_t>& lost,
                          std::uint64_t& last_origin) {
  std::uint64_t next = 1, pending = 0;
  for (const StreamMessage& m : stream) {
    pending += m.origin_seq - next;
    if (m.gap_count != 0) {
      pending += m.gap_count;
      next = m.origin_seq + m.gap_count;
      continue;
    }
    origins.push_back(m.origin_seq);
    lost.push_back(pending);
    pending = 0;
    next = m.origin_seq + 1;
  }
  last_origin = next - 1;
}

// A bridge in process: opens, settles, then applies the stream from `redeliver_back` messages
// before its applied position (as JetStream redelivers unacked messages), to the end.
int run_applier(const std::string& channel, const std::vector<StreamMessage>& stream,
                std::uint64_t redeliver_back, std::optional<ApplyStep> die_at,
                std::uint64_t die_at_stream_seq) {
  ApplierOptions options = applier_options();
  std::uint64_t current = 0;
  if (die_at) {
    options.step_hook = [&](ApplyStep step, std::uint64_t) {
      if (step == *die_at && current == die_at_stream_seq) ::raise(SIGKILL);
    };
  }
  Local l = Local::open(channel, options);
  const std::uint64_t applied = l.applier->applied().stream_seq;
  const std::uint64_t from = applied > redeliver_back ? applied - redeliver_back + 1 : 1;
  for (std::uint64_t s = from; s <= stream.size(); ++s) {
    current = s;
    for (;;) {
      auto r = apply(*l.applier, s, stream[s - 1]);
      if (!r) {
        std::fprintf(stderr, "apply %llu: %s\n", static_cast<unsigned long long>(s),
                     r.error().message.c_str());
        return 3;
      }
      if (*r != ApplyOutcome::back_pressured) break;
    }
  }
  return 0;
}

// Checks the destination after the kill runs: every data record once, in order, with content;
// lost sequences = the stream's gaps + `abandoned` (each kill between claim and commit).
void check_destination(const std::string& channel, const std::vector<StreamMessage>& stream,
                       Subscriber& reader, std::uint64_t abandoned_max, bool exact) {
  std::vector<std::uint64_t> origins, lost;
  std::uint64_t last_origin = 0;
  expected_destination(stream, origins, lost, last_origin);
  auto pub = Publisher::open(channel, local_options());
  ASSERT_TRUE(pub) << pub.error().message;
  const std::uint64_t end = pub->next_sequence();
  std::vector<Got> got = read_until(reader, end);
  ASSERT_EQ(got.size(), origins.size());
  std::uint64_t extra = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_GE(got[i].lost_before, lost[i]) << "record " << i;
    extra += got[i].lost_before - lost[i];
    lost[i] = got[i].lost_before;
  }
  expect_records(got, origins, lost);
  EXPECT_EQ(end - 1, last_origin + extra) << "every local sequence is a record, a gap or "
                                             "an abandoned claim";
  testing::Test::RecordProperty("abandoned_local_sequences", static_cast<int>(extra));
  if (exact) {
    EXPECT_EQ(extra, abandoned_max);
  } else {
    EXPECT_LE(extra, abandoned_max);
  }
}

TEST(InApplyKill, EachProtocolStepSettlesToExactlyOnce) {
  // (step, stream sequence of a data record or a GAP, abandoned local sequences it costs)
  const std::vector<StreamMessage> stream = kill_stream(160);
  struct Case {
    ApplyStep step;
    bool gap;
    std::uint64_t cost;
    Settlement settlement;
  };
  const Case cases[] = {
      {ApplyStep::claimed, false, 1, Settlement::clean},
      {ApplyStep::intent_written, false, 1, Settlement::discarded},
      {ApplyStep::committed, false, 0, Settlement::promoted},
      {ApplyStep::applied_written, false, 0, Settlement::clean},
      {ApplyStep::gap_intent_written, true, 0, Settlement::gap_finished},
      {ApplyStep::gap_laid_out, true, 0, Settlement::promoted},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "step " << static_cast<int>(c.step));
    ChannelGuard ch(unique_channel("inkstep"));
    {  // create the channel so that the checker can attach before the first record
      auto pub = Publisher::open(ch.name(), local_options());
      ASSERT_TRUE(pub);
    }
    Subscriber reader = open_reader(ch.name());
    // The stream sequence to die at: the GAP at index 50, or the data record after it.
    const std::uint64_t at = c.gap ? 51 : 52;
    ASSERT_EQ(stream[at - 1].gap_count != 0, c.gap);
    Child victim = Child::fork([&] { return run_applier(ch.name(), stream, 0, c.step, at); });
    auto status = victim.wait(20s);
    ASSERT_TRUE(status);
    ASSERT_EQ(status->signal, SIGKILL) << status->describe();
    // Restarted: settles, then takes the redelivery of the last 5 messages before its applied
    // position as JetStream would (duplicates), and the rest.
    Settlement seen = Settlement::clean;
    Child restart = Child::fork([&] {
      ApplierOptions options = applier_options();
      Local l = Local::open(ch.name(), options);
      return static_cast<int>(l.applier->settlement());
    });
    auto settled = restart.wait(20s);
    ASSERT_TRUE(settled && settled->exited) << (settled ? settled->describe() : "timeout");
    seen = static_cast<Settlement>(settled->code);
    EXPECT_EQ(seen, c.settlement) << to_string(seen);
    Child finish = Child::fork([&] { return run_applier(ch.name(), stream, 5, {}, 0); });
    auto done = finish.wait(20s);
    ASSERT_TRUE(done && done->ok()) << (done ? done->describe() : "timeout");
    check_destination(ch.name(), stream, reader, c.cost, true);
  }
}

TEST(InApplyKill, RandomKillsApplyEveryRecordOnceInOrder) {
  const std::vector<StreamMessage> stream = kill_stream(20000);
  ChannelGuard ch(unique_channel("inkrand"));
  {
    auto pub = Publisher::open(ch.name(), local_options(8 << 20));
    ASSERT_TRUE(pub);
  }
  Subscriber reader = open_reader(ch.name());
  std::mt19937_64 rng(20240611);
  int kills = 0;
  for (int round = 0; round < 200; ++round) {
    const std::uint64_t back = rng() % 40;
    Child c = Child::fork([&] { return run_applier(ch.name(), stream, back, {}, 0); });
    if (kills < 12) {
      std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 8000));
      if (c.running()) {
        c.kill_hard();
        ++kills;
        continue;
      }
    }
    auto status = c.wait(30s);
    ASSERT_TRUE(status && status->ok()) << (status ? status->describe() : "timeout");
    break;
  }
  EXPECT_GT(kills, 0);
  testing::Test::RecordProperty("kills", kills);
  check_destination(ch.name(), stream, reader, static_cast<std::uint64_t>(kills), false);
}

}  // namespace
}  // namespace shmbus::bridge
