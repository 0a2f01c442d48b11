// `shmbus dlq ls|show|replay` on the built binary (SHMBUS_CLI): dead letters encoded with
// shmbus::encode are published into `<channel>.dlq` by this process, the command runs as a
// subprocess, and what it prints and republishes is checked by sequence and content (the
// republished records with a subscriber of the original channel).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "shmbus/dead_letter.hpp"
#include "shmbus/journaler.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/command.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/process.hpp"
#include "tests/support/shmbus_cli.hpp"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::ChannelGuard;
using test::lines_of;
using test::RunResult;
using test::run_command;
using test::run_shmbus;
using test::TempDir;
using test::unique_channel;
using test::with_stderr_captured;

std::span<const std::byte> span_of(const std::string& text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

// What a test says of one dead letter; letter() views into it.
struct Letter {
  std::uint64_t original_sequence = 0;
  std::string channel;
  std::string group = "billing";
  std::string reason;
  std::string key;
  std::string payload;
  std::uint32_t attempts = 5;
  DeadLetterReason code = DeadLetterReason::rejected;
  std::uint16_t message_type = 0;
  DeadLetter letter() const {
    DeadLetter d;
    d.original_sequence = original_sequence;
    d.original_timestamp_ns = 1'795'773'600'000'000'000 + static_cast<std::int64_t>(original_sequence);
    d.dead_lettered_ns = 1'795'773'700'000'000'000 + static_cast<std::int64_t>(original_sequence);
    d.attempts = attempts;
    d.reason_code = code;
    d.channel = channel;
    d.group = group;
    d.reason = reason;
    d.key = span_of(key);
    d.message_type = message_type;
    d.payload = span_of(payload);
    return d;
  }
};

// Encodes `letter` in place in a claim of `pub` and commits it; returns its sequence.
std::uint64_t publish_letter(Publisher& pub, const Letter& letter) {
  const DeadLetter d = letter.letter();
  const std::size_t size = encoded_size(d);
  EXPECT_GT(size, 0u);
  Claim claim;
  EXPECT_EQ(pub.claim(static_cast<std::uint32_t>(size), claim, 5s), PublishStatus::ok);
  EXPECT_EQ(encode(d, claim.span()), size);
  EXPECT_EQ(pub.commit(claim), PublishStatus::ok);
  return claim.sequence();
}

std::uint64_t publish_raw(Publisher& pub, const std::string& bytes) {
  Claim claim;
  EXPECT_EQ(pub.claim(static_cast<std::uint32_t>(bytes.size()), claim, 5s), PublishStatus::ok);
  std::memcpy(claim.data(), bytes.data(), bytes.size());
  EXPECT_EQ(pub.commit(claim), PublishStatus::ok);
  return claim.sequence();
}

// A channel and its dead-letter channel, removed at the end.
struct Channels {
  ChannelGuard channel{unique_channel("dlq")};
  ChannelGuard dlq{dead_letter_channel(channel.name())};
  const std::string& name() const { return channel.name(); }
};

std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> v;
  for (const std::string& line : lines_of(out)) {
    if (!line.empty()) v.push_back(nlohmann::json::parse(line));
  }
  return v;
}

RunResult cli_stderr(std::vector<std::string> args) {
  args.insert(args.begin(), SHMBUS_CLI);
  return run_command(with_stderr_captured(args));
}

// Three dead letters and, between the second and the third, a record that is not one.
struct Sample {
  Channels ch;
  std::vector<Letter> letters;
  std::map<std::uint64_t, std::size_t> by_sequence;  // dead-letter seq -> letters index
  std::uint64_t garbage_sequence = 0;

  Sample() {
    auto pub = Publisher::open(ch.dlq.name(), test::small_options());
    EXPECT_TRUE(pub) << pub.error().message;
    letters = {
        Letter{17, ch.name(), "billing", "price missing", "", "{\"order\":17}"},
        Letter{23, ch.name(), "risk", "limit \"breached\"\nat 09:00", "customer-42",
               std::string("\x00\x01\xff binary", 10)},
        Letter{31, ch.name(), "billing", "", "", "{\"order\":31}", 3,
               DeadLetterReason::ack_timeout},
    };
    by_sequence[publish_letter(*pub, letters[0])] = 0;
    by_sequence[publish_letter(*pub, letters[1])] = 1;
    garbage_sequence = publish_raw(*pub, "this is not a dead letter");
    by_sequence[publish_letter(*pub, letters[2])] = 2;
  }
};

void expect_fields(const nlohmann::json& j, const Letter& l) {
  EXPECT_EQ(j.at("channel"), l.channel);
  EXPECT_EQ(j.at("original_seq"), l.original_sequence);
  EXPECT_EQ(j.at("original_time_ns"), l.letter().original_timestamp_ns);
  EXPECT_EQ(j.at("dead_lettered_ns"), l.letter().dead_lettered_ns);
  EXPECT_EQ(j.at("group"), l.group);
  EXPECT_EQ(j.at("attempts"), l.attempts);
  EXPECT_EQ(j.at("reason_code"), to_string(l.code));
  EXPECT_EQ(j.at("reason_code_value"), static_cast<int>(l.code));
  EXPECT_EQ(j.at("reason"), l.reason);
  EXPECT_EQ(j.at("size"), l.payload.size());
  EXPECT_EQ(j.contains("key_text"), !l.key.empty()) << j.dump();
  if (!l.key.empty()) {
    EXPECT_EQ(j.at("key_text"), l.key);
  }
}

TEST(DlqCli, LsListsEachDeadLetterInOrderAndReportsARecordThatIsNotOneBySequence) {
  Sample s;
  const RunResult r = run_shmbus({"dlq", "ls", s.ch.name(), "--json"});
  // The garbage record makes it exit 1, after listing every dead letter.
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.status.describe() << r.out;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  std::uint64_t previous = 0;
  for (const auto& j : lines) {
    const std::uint64_t seq = j.at("seq");
    EXPECT_GT(seq, previous);
    previous = seq;
    ASSERT_TRUE(s.by_sequence.contains(seq)) << j;
    expect_fields(j, s.letters[s.by_sequence[seq]]);
    EXPECT_EQ(j.at("source"), "ring");
  }
  const RunResult err = cli_stderr({"dlq", "ls", s.ch.name()});
  EXPECT_NE(err.out.find(fmt::format("seq={} (in its ring): not a dead letter",
                                     s.garbage_sequence)),
            std::string::npos)
      << err.out;

  // Text: one line each, the reason quoted and escaped, the key shown.
  const RunResult text = run_shmbus({"dlq", "ls", s.ch.name()});
  const auto text_lines = lines_of(text.out);
  ASSERT_EQ(text_lines.size(), 3u) << text.out;
  EXPECT_NE(text_lines[0].find("original_seq=17 "), std::string::npos) << text_lines[0];
  EXPECT_NE(text_lines[0].find("group=billing attempts=5 code=rejected size=12"),
            std::string::npos)
      << text_lines[0];
  EXPECT_NE(text_lines[1].find("key=customer-42 reason=\"limit \\\"breached\\\"\\nat 09:00\""),
            std::string::npos)
      << text_lines[1];
  EXPECT_NE(text_lines[2].find("code=ack_timeout"), std::string::npos) << text_lines[2];
}

TEST(DlqCli, LsOfAMissingDeadLetterChannelExitsOneNamingItAndOfAnEmptyOneExitsZero) {
  Channels ch;
  const RunResult missing = cli_stderr({"dlq", "ls", ch.name()});
  EXPECT_TRUE(missing.status.exited && missing.status.code == 1) << missing.status.describe();
  EXPECT_NE(missing.out.find("the dead-letter channel '" + ch.dlq.name() + "' does not exist"),
            std::string::npos)
      << missing.out;

  auto pub = Publisher::open(ch.dlq.name(), test::small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  const RunResult empty = run_shmbus({"dlq", "ls", ch.name(), "--json"});
  EXPECT_TRUE(empty.status.ok()) << empty.status.describe() << empty.out;
  EXPECT_EQ(empty.out, "");
}

TEST(DlqCli, ShowPrintsTheWholeDeadLetterInEachFormatAndSelectsByOriginalSequence) {
  Sample s;
  std::uint64_t second = 0;
  for (const auto& [seq, index] : s.by_sequence) {
    if (index == 1) second = seq;
  }
  const RunResult text = run_shmbus({"dlq", "show", s.ch.name(), std::to_string(second)});
  EXPECT_TRUE(text.status.ok()) << text.status.describe() << text.out;
  EXPECT_NE(text.out.find(fmt::format("dead letter seq={} of channel '{}'", second,
                                      s.ch.dlq.name())),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("original seq    23"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("00000000  00 01 ff 20 62 69 6e 61  72 79"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("|... binary|"), std::string::npos) << text.out;

  const RunResult json = run_shmbus({"dlq", "show", s.ch.name(), "--original", "17", "--json"});
  EXPECT_TRUE(json.status.ok()) << json.status.describe() << json.out;
  const auto lines = json_lines(json.out);
  ASSERT_EQ(lines.size(), 1u) << json.out;
  expect_fields(lines[0], s.letters[0]);
  EXPECT_EQ(lines[0].at("payload_text"), s.letters[0].payload);
  EXPECT_EQ(lines[0].at("payload_hex"), "7b226f72646572223a31377d");

  // payload: the bytes alone; raw: tail's frame of the original record.
  const RunResult payload =
      run_shmbus({"dlq", "show", s.ch.name(), "--original", "23", "--format", "payload"});
  EXPECT_TRUE(payload.status.ok()) << payload.status.describe();
  EXPECT_EQ(payload.out, s.letters[1].payload);
  const RunResult raw =
      run_shmbus({"dlq", "show", s.ch.name(), "--original", "31", "--format", "raw"});
  EXPECT_TRUE(raw.status.ok()) << raw.status.describe();
  ASSERT_EQ(raw.out.size(), 24 + s.letters[2].payload.size());
  EXPECT_EQ(raw.out.substr(0, 4), "SBRD");
  std::uint64_t seq = 0;
  std::memcpy(&seq, raw.out.data() + 8, 8);
  EXPECT_EQ(seq, 31u);
  EXPECT_EQ(raw.out.substr(24), s.letters[2].payload);

  // A sequence that is not there, and the garbage record asked for by its sequence: exit 1.
  const RunResult none = cli_stderr({"dlq", "show", s.ch.name(), "999"});
  EXPECT_EQ(none.status.code, 1) << none.out;
  EXPECT_NE(none.out.find("holds no dead letter seq=999"), std::string::npos) << none.out;
  const RunResult garbage =
      cli_stderr({"dlq", "show", s.ch.name(), std::to_string(s.garbage_sequence)});
  EXPECT_EQ(garbage.status.code, 1) << garbage.out;
  EXPECT_NE(garbage.out.find(fmt::format("seq={} (in its ring): not a dead letter",
                                         s.garbage_sequence)),
            std::string::npos)
      << garbage.out;
  // No sequence at all is a usage error.
  EXPECT_EQ(run_shmbus({"dlq", "show", s.ch.name()}).status.code, 2);
}

TEST(DlqCli, ReplayRepublishesThePayloadsInDeadLetterOrderAndSaysWhichSequenceEachGot) {
  Sample s;
  auto original = Publisher::open(s.ch.name(), test::small_options());
  ASSERT_TRUE(original) << original.error().message;
  for (int i = 0; i < 5; ++i) ASSERT_EQ(original->try_publish(span_of("earlier")), PublishStatus::ok);
  auto sub = Subscriber::open(s.ch.name(), test::sub_options(Policy::drop));
  ASSERT_TRUE(sub) << sub.error().message;

  std::vector<std::uint64_t> dlq_seqs;
  for (const auto& [seq, index] : s.by_sequence) dlq_seqs.push_back(seq);
  // A dry run says what it would do and publishes nothing.
  const RunResult dry = run_shmbus({"dlq", "replay", s.ch.name(), "--all", "--dry-run", "--json"});
  EXPECT_EQ(dry.status.code, 1) << dry.out;  // the garbage record is still reported
  const auto planned = json_lines(dry.out);
  ASSERT_EQ(planned.size(), 3u) << dry.out;
  EXPECT_TRUE(planned[0].at("new_seq").is_null());
  EXPECT_TRUE(test::receive_messages(*sub, 1, 200ms).empty());

  // Asked for out of order, they go in dead-letter order: the first, then the third.
  const RunResult r = run_shmbus({"dlq", "replay", s.ch.name(), std::to_string(dlq_seqs[2]),
                                  std::to_string(dlq_seqs[0]), "--json"});
  EXPECT_TRUE(r.status.ok()) << r.status.describe() << r.out;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0].at("seq"), dlq_seqs[0]);
  EXPECT_EQ(lines[0].at("original_seq"), 17u);
  EXPECT_EQ(lines[0].at("new_seq"), 6u);
  EXPECT_EQ(lines[1].at("seq"), dlq_seqs[2]);
  EXPECT_EQ(lines[1].at("original_seq"), 31u);
  EXPECT_EQ(lines[1].at("new_seq"), 7u);
  EXPECT_EQ(lines[1].at("channel"), s.ch.name());

  const auto got = test::receive_messages(*sub, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].sequence, 6u);
  EXPECT_EQ(got[0].payload, s.letters[0].payload);
  EXPECT_EQ(got[1].sequence, 7u);
  EXPECT_EQ(got[1].payload, s.letters[2].payload);
  EXPECT_TRUE(test::receive_messages(*sub, 1, 200ms).empty());  // nothing else

  // --original and --to: the binary payload, byte for byte, into another channel.
  ChannelGuard other(unique_channel("dlq-to"));
  auto other_pub = Publisher::open(other.name(), test::small_options());
  ASSERT_TRUE(other_pub) << other_pub.error().message;
  auto other_sub = Subscriber::open(other.name(), test::sub_options(Policy::drop));
  ASSERT_TRUE(other_sub) << other_sub.error().message;
  const RunResult to = run_shmbus({"dlq", "replay", s.ch.name(), "--original", "23", "--to",
                                   other.name()});
  EXPECT_TRUE(to.status.ok()) << to.status.describe() << to.out;
  EXPECT_NE(to.out.find(fmt::format("dlq seq={} (original seq=23, 10 bytes) -> '{}' seq=1",
                                    dlq_seqs[1], other.name())),
            std::string::npos)
      << to.out;
  const auto moved = test::receive_messages(*other_sub, 1);
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].sequence, 1u);
  EXPECT_EQ(moved[0].payload, s.letters[1].payload);
}

TEST(DlqCli, ReplaySkipsALetterWithoutPayloadOrFromAnotherChannelAndExitsOne) {
  Channels ch;
  auto dlq = Publisher::open(ch.dlq.name(), test::small_options());
  ASSERT_TRUE(dlq) << dlq.error().message;
  Letter unreadable{40, ch.name(), "billing", "", "", ""};
  unreadable.code = DeadLetterReason::unreadable;
  const std::uint64_t s1 = publish_letter(*dlq, unreadable);
  const std::uint64_t s2 = publish_letter(*dlq, Letter{41, "elsewhere", "g", "", "", "x"});
  const std::uint64_t s3 = publish_letter(*dlq, Letter{42, ch.name(), "g", "", "", "kept"});
  auto original = Publisher::open(ch.name(), test::small_options());
  ASSERT_TRUE(original) << original.error().message;
  auto sub = Subscriber::open(ch.name(), test::sub_options(Policy::drop));
  ASSERT_TRUE(sub) << sub.error().message;

  const RunResult r = cli_stderr({"dlq", "replay", ch.name(), "--all"});
  EXPECT_EQ(r.status.code, 1) << r.out;
  EXPECT_NE(r.out.find(fmt::format("dead letter seq={} (original seq=40) was unreadable", s1)),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(fmt::format("dead letter seq={} came from channel 'elsewhere'", s2)),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("republished 1 dead letters"), std::string::npos) << r.out;
  const auto got = test::receive_messages(*sub, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sequence, 1u);
  EXPECT_EQ(got[0].payload, "kept");
  (void)s3;
}

// A record as a subscriber saw it, its key and message type included.
struct Tagged {
  std::uint64_t sequence = 0;
  std::string key;
  std::uint16_t message_type = 0;
  std::string payload;
};

std::vector<Tagged> receive_tagged(Subscriber& sub, std::size_t want) {
  std::vector<Tagged> got;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    const std::size_t n = sub.poll(
        [&](const Message& m) {
          got.push_back(Tagged{
              m.sequence, std::string(reinterpret_cast<const char*>(m.key.data()), m.key.size()),
              m.message_type,
              std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size())});
        },
        want - got.size());
    if (n == 0) sub.wait(20ms);
  }
  return got;
}

TEST(DlqCli, ReplayRepublishesEachLetterWithTheKeyAndMessageTypeItKept) {
  Channels ch;
  ChannelOptions dlq_options = test::small_options();
  dlq_options.max_message = 4096;  // room for a letter whose record the channel cannot take
  auto dlq = Publisher::open(ch.dlq.name(), dlq_options);
  ASSERT_TRUE(dlq) << dlq.error().message;
  Letter keyed{50, ch.name(), "billing", "", "customer-42", "{\"order\":50}"};
  keyed.message_type = 7;
  Letter typed{51, ch.name(), "billing", "", "", "{\"order\":51}"};
  typed.message_type = 65535;
  Letter key_only{52, ch.name(), "billing", "", std::string(kMaxKeyLength, 'k'), "k"};
  Letter plain{53, ch.name(), "billing", "", "", "{\"order\":53}"};
  // Its payload fits max_message (1024) alone, not with its key: skipped, the others go on.
  Letter too_big{54, ch.name(), "billing", "", "big", std::string(1020, 'x')};
  Letter last{55, ch.name(), "billing", "", "customer-7", "{\"order\":55}"};
  last.message_type = 3;
  std::vector<std::uint64_t> dlq_seqs;
  for (const Letter* l : {&keyed, &typed, &key_only, &plain, &too_big, &last}) {
    dlq_seqs.push_back(publish_letter(*dlq, *l));
  }
  auto original = Publisher::open(ch.name(), test::small_options());
  ASSERT_TRUE(original) << original.error().message;
  auto sub = Subscriber::open(ch.name(), test::sub_options(Policy::drop));
  ASSERT_TRUE(sub) << sub.error().message;

  const RunResult r = cli_stderr({"dlq", "replay", ch.name(), "--all"});
  EXPECT_EQ(r.status.code, 1) << r.out;  // the one too big
  EXPECT_EQ(r.out.find("warning"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(fmt::format("dead letter seq={}: its 1020-byte payload with its key and "
                                   "type (1036 bytes) is larger than channel '{}' takes (1024 "
                                   "bytes) (skipped)",
                                   dlq_seqs[4], ch.name())),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("republished 5 dead letters"), std::string::npos) << r.out;

  const std::vector<const Letter*> expected = {&keyed, &typed, &key_only, &plain, &last};
  const auto got = receive_tagged(*sub, expected.size());
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].sequence, i + 1);
    EXPECT_EQ(got[i].key, expected[i]->key);
    EXPECT_EQ(got[i].message_type, expected[i]->message_type);
    EXPECT_EQ(got[i].payload, expected[i]->payload);
  }
  EXPECT_TRUE(test::receive_messages(*sub, 1, 200ms).empty());  // nothing else

  // A key filter sees the keyed letters it asked for, as the original records were seen.
  MessageFilter filter;
  filter.key = "customer-42";
  SubscriberOptions filtered = test::sub_options(Policy::drop, StartFrom::earliest);
  filtered.filter = filter;
  auto keyed_sub = Subscriber::open(ch.name(), filtered);
  ASSERT_TRUE(keyed_sub) << keyed_sub.error().message;
  const auto only = receive_tagged(*keyed_sub, 1);
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0].sequence, 1u);
  EXPECT_EQ(only[0].message_type, 7);
  EXPECT_EQ(only[0].payload, keyed.payload);
  EXPECT_TRUE(test::receive_messages(*keyed_sub, 1, 200ms).empty());
}

// A dead-letter channel recorded by a journaler: the letters that left its small ring are read
// from the journal, the rest from the ring, each once, in order, also after the journaler
// stopped (its directory stays in the control segment).
TEST(DlqCli, DeadLettersThatLeftTheRingAreListedFromTheJournal) {
  Channels ch;
  TempDir dir("dlq-journal");
  ChannelOptions tiny = test::small_options();
  tiny.capacity = 4096;
  tiny.max_message = 512;
  auto dlq = Publisher::open(ch.dlq.name(), tiny);
  ASSERT_TRUE(dlq) << dlq.error().message;
  constexpr std::uint64_t kLetters = 120;  // ~130-byte frames: about four laps of the ring
  std::vector<Letter> letters;
  for (std::uint64_t i = 1; i <= kLetters; ++i) {
    letters.push_back(Letter{1000 + i, ch.name(), "g", fmt::format("reason {}", i), "",
                             fmt::format("payload of letter {:04}", i) + std::string(40, 'p')});
  }
  {
    JournalerOptions jo;
    jo.channel = ch.dlq.name();
    jo.writer.dir = dir.path();
    auto journaler = Journaler::open(jo);
    ASSERT_TRUE(journaler) << journaler.error().message;
    for (const Letter& l : letters) {
      const DeadLetter d = l.letter();
      Claim claim;
      // The journaler gates the ring: step it until there is room.
      PublishStatus st;
      while ((st = dlq->try_claim(static_cast<std::uint32_t>(encoded_size(d)), claim)) ==
             PublishStatus::back_pressured) {
        ASSERT_TRUE(journaler->step(std::chrono::milliseconds(1)));
      }
      ASSERT_EQ(st, PublishStatus::ok);
      ASSERT_EQ(encode(d, claim.span()), encoded_size(d));
      ASSERT_EQ(dlq->commit(claim), PublishStatus::ok);
    }
    for (int i = 0; i < 10000 && journaler->stats().written_sequence < kLetters; ++i) {
      ASSERT_TRUE(journaler->step(std::chrono::milliseconds(1)));
    }
    ASSERT_EQ(journaler->stats().written_sequence, kLetters);

    const RunResult live = run_shmbus({"dlq", "ls", ch.name(), "--json"});
    EXPECT_TRUE(live.status.ok()) << live.status.describe() << live.out;
    EXPECT_EQ(json_lines(live.out).size(), kLetters);
  }
  // The journaler has stopped; the ring holds only the last lap.
  const RunResult r = run_shmbus({"dlq", "ls", ch.name(), "--json"});
  EXPECT_TRUE(r.status.ok()) << r.status.describe() << r.out;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), kLetters) << r.out;
  std::size_t from_journal = 0;
  for (std::uint64_t i = 0; i < kLetters; ++i) {
    EXPECT_EQ(lines[i].at("seq"), i + 1);
    expect_fields(lines[i], letters[i]);
    if (lines[i].at("source") == "journal") ++from_journal;
  }
  EXPECT_GE(from_journal, kLetters / 2);  // most of them had left the ring

  // The ring alone (a journal directory that does not exist is refused when named).
  const RunResult named = cli_stderr({"dlq", "ls", ch.name(), "--journal", dir.file("none")});
  EXPECT_EQ(named.status.code, 1) << named.out;

  // show and replay reach a letter that is only in the journal.
  auto sub_pub = Publisher::open(ch.name(), test::small_options());
  ASSERT_TRUE(sub_pub) << sub_pub.error().message;
  auto sub = Subscriber::open(ch.name(), test::sub_options(Policy::drop));
  ASSERT_TRUE(sub) << sub.error().message;
  const RunResult replay = run_shmbus({"dlq", "replay", ch.name(), "2", "--json"});
  EXPECT_TRUE(replay.status.ok()) << replay.status.describe() << replay.out;
  const auto got = test::receive_messages(*sub, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, letters[1].payload);
}

}  // namespace
}  // namespace shmbus
