// Replays a recorded session (a journal directory) into a channel, as the live feed published it:
// record k is published at start + (t_k - t_0) / speed, t being the publish timestamps the journal
// holds, or as fast as the channel's subscribers take them (--speed max). It starts at a sequence
// (JournalReader::seek_sequence) or at a time (seek_time), and republishes each record's payload
// byte for byte, so a strategy reading the channel sees the session it would have seen live.
//
// It reports the achieved rate and the pacing error: how late each record went out against its
// due time (the wake-up from sleep, and back-pressure from a block subscriber, make it late; it is
// never early).
#include "example_support.hpp"

#include <shmbus/journal_reader.hpp>

#include <cstdint>
#include <optional>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: replay_session --journal DIR --channel NAME [--speed 10|max]\n"
    "                      [--from-sequence S | --from-time-ns T] [--subscribers 1]\n"
    "Republishes the journal's records into --channel once --subscribers are attached.\n";

struct ReplayOptions {
  double speed = 1;  // 0: as fast as possible
  std::optional<std::uint64_t> from_sequence;
  std::optional<std::int64_t> from_time_ns;
};

struct ReplayReport {
  std::uint64_t published = 0;    // data records republished
  std::uint64_t gap_records = 0;  // the journal's record of losses at recording time
  std::uint64_t lost = 0;         // sequences those gap records cover
  std::uint64_t first_sequence = 0;
  std::uint64_t last_sequence = 0;
  std::int64_t first_timestamp_ns = 0;  // as recorded
  std::int64_t recorded_span_ns = 0;    // last record's timestamp - first's
  std::int64_t elapsed_ns = 0;          // the replay's own duration
  std::vector<std::int64_t> lateness_ns;  // per paced record: published - due
};

shmbus::Result<ReplayReport> replay(shmbus::journal::JournalReader& reader,
                                    shmbus::Publisher& publisher, const ReplayOptions& options) {
  if (options.from_sequence) {
    if (auto sought = reader.seek_sequence(*options.from_sequence); !sought) {
      return tl::unexpected(sought.error());
    }
  } else if (options.from_time_ns) {
    if (auto sought = reader.seek_time(*options.from_time_ns); !sought) {
      return tl::unexpected(sought.error());
    }
  }
  ReplayReport report;
  const std::int64_t start_ns = examples::monotonic_ns();
  shmbus::journal::JournalRecord record;
  shmbus::journal::ReadStatus status = shmbus::journal::ReadStatus::end;
  while (!examples::stopping() &&
         (status = reader.next(record)) == shmbus::journal::ReadStatus::record) {
    if (record.type == shmbus::journal::RecordType::gap) {
      ++report.gap_records;
      report.lost += record.gap_count;
      continue;
    }
    if (report.published == 0) {
      report.first_sequence = record.sequence;
      report.first_timestamp_ns = record.timestamp_ns;
    }
    report.last_sequence = record.sequence;
    report.recorded_span_ns = record.timestamp_ns - report.first_timestamp_ns;
    if (options.speed > 0) {
      const auto offset = static_cast<double>(report.recorded_span_ns) / options.speed;
      const std::int64_t due_ns = start_ns + static_cast<std::int64_t>(offset);
      examples::sleep_until_ns(due_ns);
      report.lateness_ns.push_back(examples::monotonic_ns() - due_ns);
    }
    const auto published = publisher.publish(record.payload, std::chrono::seconds(5));
    if (published != shmbus::PublishStatus::ok) {
      return tl::unexpected(shmbus::Error{
          shmbus::ErrorCode::timed_out,
          fmt::format("publishing the record of sequence {} failed: {}", record.sequence,
                      shmbus::to_string(published))});
    }
    ++report.published;
  }
  report.elapsed_ns = examples::monotonic_ns() - start_ns;
  if (status == shmbus::journal::ReadStatus::damaged) {
    return tl::unexpected(shmbus::Error{shmbus::ErrorCode::corrupt, reader.last_error()});
  }
  return report;
}

}  // namespace

int main(int argc, char** argv) {
  const examples::Options args(argc, argv, kUsage);
  const std::string journal_dir = args.required_text("journal");
  const std::string channel = args.required_text("channel");
  ReplayOptions options;
  const std::string speed = args.text("speed", "1");
  options.speed = speed == "max" ? 0 : args.real("speed", 1);
  if (speed != "max" && options.speed <= 0) args.fail("--speed must be positive, or max");
  if (args.has("from-sequence")) options.from_sequence = args.number("from-sequence", 0);
  if (args.has("from-time-ns")) {
    options.from_time_ns = static_cast<std::int64_t>(args.number("from-time-ns", 0));
  }
  examples::stop_on_signals();

  auto reader = shmbus::journal::JournalReader::open(journal_dir);
  if (!reader) {
    fmt::print(stderr, "replay: {}\n", reader.error().message);
    return 1;
  }
  shmbus::ChannelOptions channel_options;
  channel_options.single_producer = true;
  auto publisher = shmbus::Publisher::open(channel, channel_options);
  if (!publisher) {
    fmt::print(stderr, "replay: {}\n", publisher.error().message);
    return 1;
  }
  const std::size_t subscribers = args.number("subscribers", 1);
  if (!examples::wait_for_subscribers(channel, subscribers, std::chrono::seconds(10))) {
    fmt::print(stderr, "replay: {} subscribers did not attach to {} within 10 s\n", subscribers,
               channel);
    return 1;
  }

  auto report = replay(*reader, *publisher, options);
  if (!report) {
    fmt::print(stderr, "replay: {}\n", report.error().message);
    return 1;
  }
  const double elapsed_s = static_cast<double>(std::max<std::int64_t>(report->elapsed_ns, 1)) / 1e9;
  const double span_s = static_cast<double>(report->recorded_span_ns) / 1e9;
  fmt::print("replay: republished {} records (sequences {}..{}) into {}; the journal's gap records: "
             "{} ({} sequences)\n",
             report->published, report->first_sequence, report->last_sequence, channel,
             report->gap_records, report->lost);
  fmt::print("replay: first record: sequence {}, recorded at {} ns\n", report->first_sequence,
             report->first_timestamp_ns);
  fmt::print("replay: speed {}: {:.3f} s recorded in {:.3f} s ({:.1f}x), {:.0f} records/s\n",
             speed, span_s, elapsed_s, span_s / elapsed_s,
             static_cast<double>(report->published) / elapsed_s);
  if (options.speed > 0) {
    fmt::print("replay: pacing error (published - due): {}\n",
               examples::describe(examples::summarize(std::move(report->lateness_ns))));
  }
  return 0;
}
