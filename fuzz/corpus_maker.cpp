// Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/ (the directory given as
// the only argument): valid rings with a few records (one wrapped, one with a claim left
// pending), valid control segments with slots taken, journal segments made by the real writer,
// typical command lines, dead letters. Run by hand when a format changes (docs/fuzzing.md); the seeds are
// checked in.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz/targets/channel_files.hpp"
#include "fuzz/targets/control_target.hpp"
#include "fuzz/targets/dead_letter_target.hpp"
#include "fuzz/targets/journal_target.hpp"
#include "ipc/control_segment.hpp"
#include "ipc/process.hpp"
#include "journal/writer.hpp"

namespace {

namespace fs = std::filesystem;

// relaxed: one thread builds each seed in its own buffer and writes it to a file; nobody else
// reads it while it is built.
constexpr auto kSeedOrder = std::memory_order_relaxed;
using shmbus::fuzz::AlignedBytes;

void save(const fs::path& file, std::span<const std::byte> bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
void save(const fs::path& file, const AlignedBytes& bytes) { save(file, {bytes.data(), bytes.size()}); }

std::vector<std::byte> read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

void make_ring_seeds(const fs::path& dir) {
  using namespace shmbus;
  constexpr std::uint64_t incarnation = 0x0123'4567'89ab'cdefULL;
  save(dir / "five_records", fuzz::valid_ring(4096, incarnation, 5, 40));
  save(dir / "wrapped_with_padding", fuzz::valid_ring(4096, incarnation, 70, 100));
  save(dir / "empty_payloads_8k", fuzz::valid_ring(8192, incarnation, 3, 0));
  save(dir / "empty_ring", fuzz::valid_ring(4096, incarnation, 0, 0));
  // A claim whose producer wrote its pending header and stopped, with a committed record after it;
  // and a claim without any header (begin() only) at the head.
  AlignedBytes stalled = fuzz::valid_ring(4096, incarnation, 3, 24);
  core::RingWriter writer(core::RingRef::attach(stalled.data()), 2);
  core::ClaimTicket pending, after, headless;
  if (writer.try_claim(16, UINT64_MAX, pending) == core::ClaimStatus::ok &&
      writer.try_claim(8, UINT64_MAX, after) == core::ClaimStatus::ok &&
      writer.try_claim(8, UINT64_MAX, headless) == core::ClaimStatus::ok) {
    writer.write_header(pending, 1);
    writer.write_header(after, 2);
    (void)writer.commit(after);
    writer.begin(headless, 3);
  }
  save(dir / "stalled_claims", stalled);
  // Tagged records (a key and/or a message type before the payload) between plain ones, wrapped;
  // and one whose prefix claims a key longer than the record (readers must call it corrupt).
  AlignedBytes tagged = fuzz::valid_ring(4096, incarnation, 0, 0);
  AlignedBytes bad_tag = fuzz::valid_ring(4096, incarnation, 2, 16);
  for (AlignedBytes* ring : {&tagged, &bad_tag}) {
    core::RingWriter tagger(core::RingRef::attach(ring->data()), 3);
    const int count = ring == &tagged ? 40 : 1;
    for (int i = 0; i < count; ++i) {
      const std::string key = i % 3 == 0 ? "" : "key-" + std::to_string(i);
      const std::uint32_t tag = core::tag_size(static_cast<std::uint32_t>(key.size()));
      core::ClaimTicket t;
      if (tagger.try_claim(tag + 40, UINT64_MAX, t) != core::ClaimStatus::ok) break;
      t.type = core::RecordType::tagged;
      core::write_tag(t.payload, std::as_bytes(std::span(key.data(), key.size())),
                      static_cast<std::uint16_t>(i % 4));
      for (std::uint32_t b = 0; b < 40; ++b) t.payload[tag + b] = static_cast<std::byte>(i + b);
      if (ring == &bad_tag) t.payload[0] = std::byte{200};  // a key of 200 bytes in 48
      tagger.write_header(t, 1'700'000'000'000'000'000 + i);
      (void)tagger.commit(t);
    }
  }
  save(dir / "tagged_records", tagged);
  save(dir / "tagged_key_past_record", bad_tag);
}

void make_control_seeds(const fs::path& dir) {
  using namespace shmbus;
  using namespace shmbus::detail;
  const std::uint64_t incarnation = fuzz::control_target::kIncarnation;
  save(dir / "fresh_one_slot_each", fuzz::valid_control(incarnation, 1, 1));
  AlignedBytes busy = fuzz::valid_control(incarnation, 4, 2);
  ControlRef control(busy.data(), control_layout(4, 2));
  const char* names[] = {"alpha", "", "gamma"};
  const Policy policies[] = {Policy::block, Policy::drop, Policy::spill};
  for (std::uint32_t i = 0; i < 3; ++i) {
    SubscriberSlot& slot = control.subscriber_slots()[i];
    control.cover_subscriber_slot(i);
    slot.pid = 1;
    slot.policy = static_cast<std::uint8_t>(policies[i]);
    slot.flags = i == 0 ? kSlotLatencyHistogram : 0;
    std::snprintf(slot.name, sizeof slot.name, "%s", names[i]);
    slot.liveness_timeout_ns = 1'000'000;
    slot.position.store(64 * i, kSeedOrder);
    slot.next_sequence.store(1 + i, kSeedOrder);
    control.set_block_slot_hint(i, policies[i] == Policy::block);
    slot.owner.store(owner_word(1, i == 2 ? SlotState::detached : SlotState::active),
                     kSeedOrder);
  }
  control.cover_producer_slot(0);
  ProducerSlot& producer = control.producer_slots()[0];
  producer.published.store(5, kSeedOrder);
  producer.in_flight.store(kNoClaim, kSeedOrder);
  producer.owner.store(owner_word(1, SlotState::active), kSeedOrder);
  ControlHeader& header = control.header();
  std::snprintf(header.journal_dir, sizeof header.journal_dir, "%s", "/tmp/shmbus-journal");
  header.journal_owner.store(pack_process(ProcessId{1, 0}), kSeedOrder);
  header.journal_written.store(4, kSeedOrder);
  header.journal_durable.store(3, kSeedOrder);
  save(dir / "slots_taken_and_journal", busy);
}

// Journals written by the real writer, then packed as the journal target reads them.
void make_journal_seeds(const fs::path& dir) {
  using namespace shmbus;
  namespace jt = fuzz::journal_target;
  const std::string work = fuzz::fresh_directory("corpus-journal");
  journal::WriterOptions options;
  options.dir = work;
  options.channel = "seed";
  options.incarnation = 7;
  options.segment_bytes = 4096 + 200;  // rolls to a second segment after a few records
  {
    auto writer = journal::JournalWriter::open(options);
    if (!writer) {
      fmt::print(stderr, "journal writer: {}\n", writer.error().message);
      std::exit(1);
    }
    const std::string payload = "payload of a seed record";
    auto check = [](const Result<void>& done) {
      if (!done) {
        fmt::print(stderr, "journal writer: {}\n", done.error().message);
        std::exit(1);
      }
    };
    // A segment rolls only once the previous one's writes completed: busy until reaped.
    auto appended = [&](auto append) {
      for (int attempt = 0; attempt < 100; ++attempt) {
        auto done = append();
        if (done || done.error().code != ErrorCode::busy) return check(done);
        check(writer->reap(true));
      }
      check(tl::unexpected(Error{ErrorCode::busy, "the writer stayed busy"}));
    };
    for (std::uint64_t sequence = 1; sequence <= 12; ++sequence) {
      if (sequence == 5) {
        appended([&] { return writer->append_gap(5, 3, 1'700'000'000'000'000'000); });
        sequence = 8;
      }
      // From 10 on, tagged records: a key and a message type before the payload.
      const std::string key = sequence >= 10 ? "key-" + std::to_string(sequence) : "";
      appended([&] {
        return writer->append_tagged(
            sequence, 1'700'000'000'000'000'000 + static_cast<std::int64_t>(sequence),
            std::as_bytes(std::span(key.data(), key.size())),
            static_cast<std::uint16_t>(sequence >= 10 ? sequence : 0),
            std::as_bytes(std::span(payload.data(), sequence * 2)));
      });
    }
    check(writer->flush());
    check(writer->drain());
  }
  std::vector<fs::path> segments, indexes;
  for (const auto& entry : fs::directory_iterator(work)) {
    (entry.path().extension() == ".journal" ? segments : indexes).push_back(entry.path());
  }
  std::sort(segments.begin(), segments.end());
  std::sort(indexes.begin(), indexes.end());
  const auto separator = std::as_bytes(std::span(jt::kPartSeparator.data(), jt::kPartSeparator.size()));
  auto pack = [&](std::byte flags, std::vector<std::vector<std::byte>> parts) {
    std::vector<std::byte> input{flags};
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (i > 0) input.insert(input.end(), separator.begin(), separator.end());
      input.insert(input.end(), parts[i].begin(), parts[i].end());
    }
    return input;
  };
  const auto first = read_file(segments.at(0));
  const auto first_index = read_file(indexes.at(0));
  save(dir / "one_segment", pack(std::byte{0}, {first}));
  save(dir / "segment_and_index", pack(std::byte{1}, {first, first_index}));
  if (segments.size() > 1) {
    save(dir / "two_segments", pack(std::byte{1}, {first, first_index, read_file(segments[1])}));
  }
  auto torn = first;
  for (int i = 0; i < 40; ++i) torn.push_back(static_cast<std::byte>(0x5a + i));
  save(dir / "torn_tail", pack(std::byte{0}, {torn}));
  auto damaged = first;
  if (damaged.size() > journal::kSegmentHeaderSize + 48) damaged[journal::kSegmentHeaderSize + 40] ^= std::byte{0xff};
  save(dir / "damaged_record", pack(std::byte{0}, {damaged}));
  fs::remove_all(work);
}

void make_cli_seeds(const fs::path& dir) {
  const std::vector<std::vector<std::string>> lines = {
      {"pub", "orders", "--count", "10", "--size", "64", "--rate", "1000", "--capacity", "1M"},
      {"tail", "orders", "--from", "earliest", "--format", "json", "--count", "3",
       "--timeout-ms", "100"},
      {"tail", "orders", "--policy", "block", "--name", "audit", "--latency-histogram"},
      {"journal", "dump", "/tmp/j", "--from-time", "2024-01-02T03:04:05.123456789Z", "--count",
       "5"},
      {"journal", "verify", "/tmp/j", "--json"},
      {"replay", "/tmp/j", "--to-channel", "copy", "--capacity", "64KiB", "--from", "3",
       "--to-time", "1700000000000000000", "--speed", "2.5"},
      {"record", "orders", "--dir", "/tmp/j", "--segment-size", "64M", "--retain-age", "3600",
       "--fsync", "batch"},
      {"bench", "--messages", "1000", "--size", "64"},
      {"stat", "orders", "--json", "--watch", "1"},
      {"inspect", "orders", "--json"},
      {"gc", "--dry-run"},
      {"demo", "--messages", "100", "--rate", "50"},
      {"ls", "--json"},
      {"rm", "orders", "--force"},
      {"--help"},
      {"tail", "orders", "--key", "acct-7", "--message-type", "3", "--message-type", "0"},
      {"pub", "orders", "--key", "acct-7", "--message-type", "3", "--count", "2"},
  };
  int n = 0;
  for (const auto& line : lines) {
    std::string input;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (i > 0) input.push_back('\0');
      input += line[i];
    }
    save(dir / fmt::format("line_{:02}_{}", n++, line.front().substr(line.front().find_first_not_of('-'))),
         std::as_bytes(std::span(input.data(), input.size())));
  }
}

// Dead letters as a consumer group encodes them: every part set, every part empty, parts at
// their bounds, and a binary key and payload.
void make_dead_letter_seeds(const fs::path& dir) {
  using namespace shmbus;
  auto save_letter = [&](const char* name, const DeadLetter& letter) {
    std::vector<std::byte> bytes(encoded_size(letter));
    encode(letter, bytes);
    save(dir / name, bytes);
  };
  const std::string key = "customer-42";
  const std::string payload = "{\"order\":17,\"qty\":3}";
  DeadLetter full;
  full.original_sequence = 17;
  full.original_timestamp_ns = 1'700'000'000'000'000'000;
  full.dead_lettered_ns = 1'700'000'001'000'000'000;
  full.attempts = 5;
  full.reason_code = DeadLetterReason::rejected;
  full.channel = "orders";
  full.group = "billing";
  full.reason = "price \"missing\"\n\x1b[31m";
  full.key = std::as_bytes(std::span(key.data(), key.size()));
  full.message_type = 7;
  full.payload = std::as_bytes(std::span(payload.data(), payload.size()));
  save_letter("full", full);
  DeadLetter empty;
  empty.reason_code = DeadLetterReason::unreadable;
  save_letter("empty", empty);
  const std::string name(kMaxDeadLetterName, 'n');
  const std::string reason(kMaxDeadLetterReason, 'r');
  const std::vector<std::byte> binary(kMaxDeadLetterKey, std::byte{0xff});
  DeadLetter bounds = full;
  bounds.channel = name;
  bounds.group = name;
  bounds.reason = reason;
  bounds.key = binary;
  bounds.payload = binary;
  bounds.reason_code = static_cast<DeadLetterReason>(999);
  save_letter("at_bounds", bounds);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fmt::print(stderr, "usage: {} fuzz/corpus\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  make_ring_seeds(root / "ring");
  make_control_seeds(root / "control");
  make_journal_seeds(root / "journal");
  make_cli_seeds(root / "cli");
  make_dead_letter_seeds(root / "dead_letter");
  return 0;
}
