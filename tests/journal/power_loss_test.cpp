// Power loss, simulated over the files: a writer (FsyncPolicy::batch) runs to a random point, its
// directory is copied while writes may still be in flight, and in the copy every byte the writer
// never made durable (after the last record the durable mark covers: each segment's header and
// every record up to the mark were fdatasynced before the mark was written) is dropped, zeroed,
// garbled or kept, chunk by chunk, so that later writes survive earlier ones (reordering), and
// the file is cut at a random point. Then recovery, verify and replay run on the copy, and what
// they return is held against what the writer reported durable: every record up to it is replayed
// intact and in order, nothing is replayed whose content differs from what was written, and
// recovery never refuses. SHMBUS_POWER_LOSS_CASES sets the number of seeded cases (default 24).
#include <dirent.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "journal/durable_mark.hpp"
#include "shmbus/journal_reader.hpp"
#include "journal/verify.hpp"
#include "journal/writer.hpp"
#include "tests/journal/writer_testing.hpp"

namespace shmbus::journal::test {
namespace {

using Clock = std::chrono::steady_clock;

std::size_t record_size(std::uint64_t seed, std::uint64_t sequence) {
  return 1 + static_cast<std::size_t>((sequence * 2654435761u + seed * 97) % 1500);
}
std::vector<std::byte> record_payload(std::uint64_t seed, std::uint64_t sequence) {
  return payload_for(sequence + (seed << 32), record_size(seed, sequence));
}

std::size_t case_count() {
  const char* v = std::getenv("SHMBUS_POWER_LOSS_CASES");
  return v != nullptr ? static_cast<std::size_t>(std::strtoul(v, nullptr, 10)) : 24;
}

// Copies the journal's files (the mark first: records it covers were written before it, so the
// segments copied after it hold them).
void copy_journal(const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  fs::copy_file(fs::path(from) / kDurableMarkFileName, fs::path(to) / kDurableMarkFileName);
  for (const auto& e : fs::directory_iterator(from)) {
    const std::string name = e.path().filename().string();
    if (name == kDurableMarkFileName || name == "journal.lock") continue;
    write_file(to + "/" + name, read_file(e.path().string()));
  }
}

// What a power loss may do to the bytes [from, end) of `path`, none of them durable.
void lose_power_over(const std::string& path, std::uint64_t from, std::mt19937_64& rng) {
  std::vector<std::byte> bytes = read_file(path);
  if (from >= bytes.size()) return;
  std::uint64_t at = from;
  while (at < bytes.size()) {
    const std::uint64_t chunk = std::min<std::uint64_t>(512 + rng() % 8192, bytes.size() - at);
    switch (rng() % 4) {
      case 0:  // written (also after an earlier chunk that was not: reordered)
        break;
      case 1:  // never reached the disk
        std::fill_n(bytes.begin() + static_cast<std::ptrdiff_t>(at), chunk, std::byte{0});
        break;
      case 2:  // torn sector garbage
        for (std::uint64_t i = at; i < at + chunk; ++i) bytes[i] = static_cast<std::byte>(rng());
        break;
      default:  // a few flipped bits
        bytes[at + rng() % chunk] ^= std::byte{0x10};
        break;
    }
    at += chunk;
  }
  if (rng() % 2 == 0) bytes.resize(from + rng() % (bytes.size() - from + 1));  // size not synced
  write_file(path, bytes);
}

struct RecordPlace {
  std::string segment;
  std::uint64_t end = 0;  // offset just past the record
};

// Where each record of the copy ends, by sequence, from a scan of the copy.
std::vector<RecordPlace> record_places(const std::string& dir, std::uint64_t through) {
  std::vector<RecordPlace> places(through + 1);
  for (const std::string& path : segment_paths(dir)) {
    (void)scan_segment(path, [&](const RecordHeader& h, std::span<const std::byte>,
                                 std::uint64_t offset) {
      if (h.sequence <= through) places[h.sequence] = {path, offset + padded_record_size(h.length)};
    });
  }
  return places;
}

struct Outcome {
  Clock::duration recovery_time{};
};

void run_case(std::uint64_t seed, Outcome& outcome) {
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  TempDir source("powerloss-src");
  TempDir copy("powerloss-copy");
  WriterOptions o = small_options(source.path());
  o.fsync = FsyncPolicy::batch;
  o.segment_bytes = 24 << 10;
  const std::uint64_t total = 40 + rng() % 300;
  std::uint64_t reported = 0;
  {
    auto w = JournalWriter::open(o);
    ASSERT_TRUE(w) << w.error().message;
    for (std::uint64_t s = 1; s <= total; ++s) {
      append_or_wait(*w, s, static_cast<std::int64_t>(s), record_payload(seed, s));
      if (rng() % 24 == 0) {
        ASSERT_TRUE(w->flush());
      }
      if (rng() % 96 == 0) {
        ASSERT_TRUE(w->drain());
      }
      if (rng() % 8 == 0) {
        ASSERT_TRUE(w->reap(false));
      }
    }
    ASSERT_TRUE(w->flush());
    for (std::uint64_t reaps = rng() % 4; reaps > 0; --reaps) ASSERT_TRUE(w->reap(false));
    reported = w->durable_sequence();
    copy_journal(source.path(), copy.path());  // the power goes out here
  }
  const std::uint64_t durable = read_durable_mark(copy.path()).durable_sequence.value_or(0);
  ASSERT_GE(durable, reported) << "the mark trails what the writer reported durable";

  const std::vector<RecordPlace> places = record_places(copy.path(), durable);
  for (std::uint64_t s = 1; s <= durable; ++s) ASSERT_FALSE(places[s].segment.empty()) << s;
  for (const std::string& path : segment_paths(copy.path())) {
    const bool holds_durable = durable > 0 && path <= places[durable].segment;
    if (holds_durable && path != places[durable].segment) continue;  // finished and synced
    lose_power_over(path, holds_durable ? places[durable].end : kSegmentHeaderSize, rng);
  }
  for (const auto& e : std::filesystem::directory_iterator(copy.path())) {
    if (e.path().extension() == kIndexSuffix && rng() % 3 == 0) {
      lose_power_over(e.path().string(), rng() % 64, rng);  // a hint: any of it may be lost
    }
  }

  WriterOptions again = small_options(copy.path());
  again.fsync = FsyncPolicy::batch;
  RecoveryReport report;
  const auto started = Clock::now();
  {
    auto w = JournalWriter::open(again, &report);
    outcome.recovery_time = std::max(outcome.recovery_time, Clock::now() - started);
    ASSERT_TRUE(w) << "recovery refused: " << w.error().message;
    ASSERT_GT(w->next_sequence(), durable);
    ASSERT_GE(w->durable_sequence(), durable);
  }

  auto verdict = verify(copy.path());
  ASSERT_TRUE(verdict) << verdict.error().message;
  for (const DamagedPlace& d : verdict->damage) {
    EXPECT_GT(d.expected_sequence, durable) << d.segment << " offset " << d.offset << ": " << d.what;
  }

  auto reader = JournalReader::open(copy.path());
  ASSERT_TRUE(reader) << reader.error().message;
  ASSERT_TRUE(reader->seek_sequence(1));
  std::uint64_t next_expected = 1;
  for (int steps = 0; steps < 100000; ++steps) {
    JournalRecord r;
    const ReadStatus st = reader->next(r);
    if (st == ReadStatus::end) break;
    if (st == ReadStatus::damaged) {
      ASSERT_GT(next_expected, durable) << "damage before the durable point: "
                                        << reader->last_error();
      if (!reader->skip_damage()) break;
      continue;
    }
    ASSERT_EQ(r.type, RecordType::data);
    if (next_expected <= durable) {
      ASSERT_EQ(r.sequence, next_expected) << "durable, in order";
    }
    ASSERT_GE(r.sequence, next_expected) << "never backwards, never twice";
    ASSERT_LE(r.sequence, total);
    const std::vector<std::byte> want = record_payload(seed, r.sequence);
    ASSERT_TRUE(std::equal(r.payload.begin(), r.payload.end(), want.begin(), want.end()))
        << "sequence " << r.sequence << " replayed with other bytes than were written";
    next_expected = r.sequence + 1;
  }
  EXPECT_GT(next_expected, durable) << "every record reported durable is replayed";
}

TEST(JournalPowerLoss, EveryRecordReportedDurableSurvivesAndNothingElseIsReplayedWrong) {
  Outcome outcome;
  const std::size_t cases = case_count();
  for (std::uint64_t seed = 1; seed <= cases; ++seed) {
    run_case(seed, outcome);
    if (HasFatalFailure()) return;
  }
  RecordProperty("max_recovery_us",
                 static_cast<int>(std::chrono::duration_cast<std::chrono::microseconds>(
                                      outcome.recovery_time)
                                      .count()));
  std::printf("power loss: %zu cases, longest recovery %lld us\n", cases,
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::microseconds>(outcome.recovery_time)
                      .count()));
}

}  // namespace
}  // namespace shmbus::journal::test
