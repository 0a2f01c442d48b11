// The recorder: runs shmbus::Journaler in this process to write every quote to a journal directory
// (what `shmbus record` does as a command). It is a lossless subscriber: the feed handler waits for
// it rather than have it miss a quote. On SIGINT or SIGTERM it records up to the last quote
// published, writes out what it holds, then reads the journal back with JournalReader and checks
// that it holds the whole session: quotes 0, 1, 2, ... on consecutive sequences, no gap record,
// and the end of session.
#include "example_support.hpp"
#include "messages.hpp"

#include <shmbus/journal_reader.hpp>
#include <shmbus/journaler.hpp>

#include <cstdint>

namespace {

constexpr const char* kUsage =
    "usage: md_recorder --channel NAME --journal DIR\n"
    "Records --channel into the journal directory DIR until SIGINT or SIGTERM.\n";

struct JournalCheck {
  std::uint64_t quotes = 0;
  std::uint64_t first_sequence = 0;
  std::uint64_t last_sequence = 0;
  std::uint64_t gap_records = 0;
  std::uint64_t broken = 0;  // records not continuing the sequence or the quote ids
  bool end_of_session = false;
  bool complete() const { return gap_records == 0 && broken == 0 && end_of_session; }
};

shmbus::Result<JournalCheck> check_journal(const std::string& dir) {
  auto reader = shmbus::journal::JournalReader::open(dir);
  if (!reader) return tl::unexpected(reader.error());
  JournalCheck check;
  shmbus::journal::JournalRecord record;
  shmbus::journal::ReadStatus status;
  while ((status = reader->next(record)) == shmbus::journal::ReadStatus::record) {
    if (check.first_sequence == 0) check.first_sequence = record.sequence;
    if (check.last_sequence != 0 && record.sequence != check.last_sequence + 1) ++check.broken;
    check.last_sequence = record.next_sequence() - 1;
    if (record.type == shmbus::journal::RecordType::gap) {
      ++check.gap_records;
      continue;
    }
    const auto quote = market_data::decode<market_data::Quote>(record.payload);
    if (!quote || check.end_of_session) {
      ++check.broken;
    } else if (quote->flags & market_data::kEndOfSession) {
      check.end_of_session = true;
    } else if (quote->quote_id != check.quotes++) {
      ++check.broken;
    }
  }
  if (status == shmbus::journal::ReadStatus::damaged) {
    return tl::unexpected(shmbus::Error{shmbus::ErrorCode::corrupt, reader->last_error()});
  }
  return check;
}

}  // namespace

int main(int argc, char** argv) {
  const examples::Options args(argc, argv, kUsage);
  examples::stop_on_signals();

  shmbus::JournalerOptions options;
  options.channel = args.required_text("channel");
  options.writer.dir = args.required_text("journal");
  options.name = "md-recorder";  // a recorder restarted under this name resumes where it stopped
  options.open_timeout = std::chrono::seconds(10);  // the feed handler may not have created it yet
  shmbus::journal::RecoveryReport recovery;
  auto journaler = shmbus::Journaler::open(options, &recovery);
  if (!journaler) {
    fmt::print(stderr, "recorder: {}\n", journaler.error().message);
    return 1;
  }

  while (!examples::stopping()) {
    if (auto stepped = journaler->step(std::chrono::milliseconds(10)); !stepped) {
      fmt::print(stderr, "recorder: {}\n", stepped.error().message);
      return 1;
    }
  }
  // Stopped: the publishers are done, so the channel's head is the last quote there will be.
  auto channel = shmbus::read_channel_stats(options.channel);
  if (!channel) {
    fmt::print(stderr, "recorder: {}\n", channel.error().message);
    return 1;
  }
  const std::int64_t deadline_ns = examples::monotonic_ns() + 10'000'000'000;
  while (journaler->stats().written_sequence < channel->head_sequence) {
    if (examples::monotonic_ns() > deadline_ns) {
      fmt::print(stderr, "recorder: sequence {} was not written within 10 s\n",
                 channel->head_sequence);
      return 1;
    }
    if (auto stepped = journaler->step(std::chrono::milliseconds(10)); !stepped) {
      fmt::print(stderr, "recorder: {}\n", stepped.error().message);
      return 1;
    }
  }
  if (auto drained = journaler->drain(); !drained) {
    fmt::print(stderr, "recorder: {}\n", drained.error().message);
    return 1;
  }
  const shmbus::JournalerStats stats = journaler->stats();

  auto check = check_journal(options.writer.dir);
  if (!check) {
    fmt::print(stderr, "recorder: reading the journal back: {}\n", check.error().message);
    return 1;
  }
  fmt::print("recorder: journaled {} records, {} gap records, in {}\n", stats.recorded,
             stats.gap_records, options.writer.dir);
  fmt::print("recorder: the journal holds quotes 0..{} on sequences {}..{}, end of session: {}; "
             "every quote, in order, no gaps: {}\n",
             check->quotes == 0 ? 0 : check->quotes - 1, check->first_sequence,
             check->last_sequence, check->end_of_session ? "yes" : "no",
             check->complete() ? "yes" : "no");
  return check->complete() ? 0 : 1;
}
