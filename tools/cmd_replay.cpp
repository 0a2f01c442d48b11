// shmbus replay: reads a range of a journal and prints it (the lines of `shmbus tail`) or
// republishes it into a channel, paced like the original or as fast as possible.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "shmbus/journal_reader.hpp"
#include "tools/commands.hpp"
#include "tools/journal_commands.hpp"
#include "tools/option_bounds.hpp"
#include "tools/pacer.hpp"
#include "tools/progress.hpp"
#include "tools/record_format.hpp"
#include "tools/record_format_option.hpp"
#include "tools/signals.hpp"
#include "tools/time_parse.hpp"

namespace shmbus::tools {
namespace {

constexpr std::size_t kEnvelopeBytes = 16;  // original sequence (u64) and timestamp (i64), LE
// --follow: how long to sleep when the journal has nothing new. A journaler appends in batches of
// about a millisecond; 20 ms keeps a follower close behind at a negligible cost.
constexpr std::int64_t kFollowPollNs = 20'000'000;
// The progress line on a terminal (progress.hpp): first after a second, then every second.
constexpr std::int64_t kProgressIntervalNs = 1'000'000'000;

// Sleeps `ns` on CLOCK_MONOTONIC; a signal cuts it short (the handlers have no SA_RESTART).
void sleep_ns(std::int64_t ns) {
  const timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);
}

// Replays the original spacing of data records divided by `speed`: record k is due at
// start + (t_k - t_0) / speed on CLOCK_MONOTONIC. A record whose timestamp is earlier than one
// already replayed (a clock step) is not waited for.
// Where output goes: lines on a stream, or messages into a channel.
class Sink {
 public:
  virtual ~Sink() = default;
  // False: stop (the error was printed, or the reader of the output went away).
  virtual bool data(const journal::JournalRecord& r) = 0;
  virtual bool gap(const journal::JournalRecord& r) = 0;
  // Before the replay waits (pacing, or --follow at the end of the journal): output buffered so
  // far must reach its reader now.
  virtual void idle() {}
  virtual int finish(int code) = 0;
};

class ReplayClock {
 public:
  explicit ReplayClock(double speed) : speed_(speed) {}

  // Waits until the record stamped `timestamp_ns` is due, calling sink.idle() before it sleeps.
  // False if a stop was requested.
  bool wait_for(std::int64_t timestamp_ns, Sink& sink) {
    if (speed_ <= 0) return !stop_requested();
    if (!started_) {
      started_ = true;
      first_ts_ = timestamp_ns;
      start_ns_ = monotonic_now_ns();
      return !stop_requested();
    }
    const double offset = static_cast<double>(timestamp_ns - first_ts_) / speed_;
    const std::int64_t due = start_ns_ + static_cast<std::int64_t>(std::max(offset, 0.0));
    if (monotonic_now_ns() < due) sink.idle();
    for (;;) {
      if (stop_requested()) return false;
      const std::int64_t now = monotonic_now_ns();
      if (now >= due) return true;
      // Short slices, so that SIGINT is seen promptly during long pauses of the original.
      const std::int64_t until = std::min(due, now + 100'000'000);
      const timespec ts{static_cast<time_t>(until / 1'000'000'000),
                        static_cast<long>(until % 1'000'000'000)};
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
    }
  }

 private:
  double speed_;
  bool started_ = false;
  std::int64_t first_ts_ = 0;
  std::int64_t start_ns_ = 0;
};


// Records to a stream, buffered while records come back to back (a replay at full speed writes
// in stdio's blocks, not once per record) and flushed whenever the replay waits.
class StreamSink final : public Sink {
 public:
  StreamSink(std::FILE* out, RecordFormat format) : writer_(out, format, /*flush_each=*/false) {}
  bool data(const journal::JournalRecord& r) override {
    return writer_.data(
        Message{r.sequence, r.timestamp_ns, r.payload, 0, r.key, r.message_type});
  }
  bool gap(const journal::JournalRecord& r) override {
    return writer_.gap(r.sequence, r.gap_count, r.timestamp_ns);
  }
  void idle() override { writer_.flush(); }
  int finish(int code) override {
    writer_.flush();
    if (writer_.error() == EPIPE) return kExitOk;
    if (writer_.error() != 0) {
      fmt::print(stderr, "shmbus replay: writing output: {}\n", std::strerror(writer_.error()));
      return kExitFailure;
    }
    return code;
  }

 private:
  RecordWriter writer_;
};

class ChannelSink final : public Sink {
 public:
  ChannelSink(const ReplayOptions& o, Publisher pub)
      : o_(o), pub_(std::move(pub)), start_ns_(monotonic_now_ns()) {}

  bool data(const journal::JournalRecord& r) override {
    const std::size_t extra = o_.envelope ? kEnvelopeBytes : 0;
    const std::size_t size = r.payload.size() + extra;
    if (size > pub_.info().max_message) {
      fmt::print(stderr,
                 "shmbus replay: channel '{}': record seq={} of {} bytes{} is larger than the "
                 "channel's max message ({} bytes)\n",
                 o_.to_channel, r.sequence, r.payload.size(),
                 o_.envelope ? " (+16 envelope bytes)" : "", pub_.info().max_message);
      return false;
    }
    Claim claim;
    PublishStatus st = pub_.claim(static_cast<std::uint32_t>(size), claim,
                                  std::chrono::milliseconds(o_.timeout_ms));
    if (st == PublishStatus::ok) {
      std::byte* p = claim.data();
      if (o_.envelope) {
        std::memcpy(p, &r.sequence, 8);  // little endian: the only byte order shmbus runs on
        std::memcpy(p + 8, &r.timestamp_ns, 8);
      }
      if (!r.payload.empty()) std::memcpy(p + extra, r.payload.data(), r.payload.size());
      st = pub_.commit(claim);
    }
    if (st != PublishStatus::ok) {
      fmt::print(stderr, "shmbus replay: channel '{}': publishing record seq={} failed: {}{}\n",
                 o_.to_channel, r.sequence, to_string(st),
                 st == PublishStatus::timed_out
                     ? fmt::format(" after {} ms (a block subscriber is not keeping up)",
                                   o_.timeout_ms)
                     : std::string());
      return false;
    }
    if (published_ == 0) {
      first_ = r.sequence;
      first_channel_ = claim.sequence();
    }
    last_ = r.sequence;
    last_channel_ = claim.sequence();
    ++published_;
    return true;
  }
  bool gap(const journal::JournalRecord& r) override {
    ++gaps_;
    lost_ += r.gap_count;
    return true;
  }
  int finish(int code) override {
    const std::int64_t elapsed = std::max<std::int64_t>(monotonic_now_ns() - start_ns_, 1);
    const std::string range =
        published_ == 0 ? std::string("no records")
                        : fmt::format("journal seq {}..{} as channel seq {}..{}", first_, last_,
                                      first_channel_, last_channel_);
    fmt::print(stderr,
               "shmbus replay: republished {} records to channel '{}' ({}), {} gap records "
               "({} sequences lost) in {}{}\n",
               published_, o_.to_channel, range, gaps_, lost_, human_duration_ns(elapsed),
               o_.envelope ? ", each payload prefixed with its journal seq and time_ns" : "");
    return code;
  }

 private:
  const ReplayOptions& o_;
  Publisher pub_;
  std::int64_t start_ns_;
  std::uint64_t published_ = 0, gaps_ = 0, lost_ = 0;
  std::uint64_t first_ = 0, last_ = 0, first_channel_ = 0, last_channel_ = 0;
};

std::unique_ptr<Sink> make_sink(const ReplayOptions& o, std::FILE* out) {
  if (o.to_channel.empty()) return std::make_unique<StreamSink>(out, o.format);
  auto pub = Publisher::open(o.to_channel, channel_options_for(o.capacity, o.max_message));
  if (!pub) {
    fmt::print(stderr, "shmbus replay: {}\n", pub.error().message);
    return nullptr;
  }
  return std::make_unique<ChannelSink>(o, std::move(*pub));
}

// Past the --to bound: the replay is complete.
bool past_end(const ReplayOptions& o, const journal::JournalRecord& r) {
  if (o.to_sequence && r.sequence > *o.to_sequence) return true;
  return o.to_time_ns && r.type == journal::RecordType::data && r.timestamp_ns > *o.to_time_ns;
}

Result<void> position(journal::JournalReader& reader, const ReplayOptions& o) {
  if (o.from_sequence) return reader.seek_sequence(*o.from_sequence);
  if (o.from_time_ns) return reader.seek_time(*o.from_time_ns);
  return {};
}

}  // namespace

int run_replay(const ReplayOptions& o, std::FILE* out) {
  install_stop_handlers();
  std::signal(SIGPIPE, SIG_IGN);
  if (o.to_channel.empty()) {
    if (const auto problem = binary_to_terminal_problem(o.format, out)) {
      fmt::print(stderr, "shmbus replay: {}\n", *problem);
      return kExitUsage;
    }
  }
  auto reader = journal::JournalReader::open(o.dir);
  if (!reader) {
    fmt::print(stderr, "shmbus replay: {}\n", reader.error().message);
    return kExitFailure;
  }
  if (auto sought = position(*reader, o); !sought) {
    fmt::print(stderr, "shmbus replay: {}\n", sought.error().message);
    return kExitFailure;
  }
  std::unique_ptr<Sink> sink = make_sink(o, out);
  if (!sink) return kExitFailure;

  ProgressLine progress(STDERR_FILENO, "shmbus replay", kProgressIntervalNs);
  // Every end goes through here: the progress line is erased before anything else is said.
  auto finish = [&](int code) {
    progress.finish();
    return sink->finish(code);
  };
  // A stop is how --follow ends (exit 0); otherwise it cut the replay short (128+N).
  auto stopped = [&] { return finish(o.follow ? kExitOk : 128 + stop_signal()); };

  ReplayClock clock(o.speed);
  journal::JournalRecord r;
  std::uint64_t replayed = 0;  // data records
  try {
    for (;;) {
      if (o.count && replayed >= *o.count) return finish(kExitOk);
      const journal::ReadStatus st = reader->next(r);
      if (st == journal::ReadStatus::end) {
        if (!o.follow) return finish(kExitOk);
        if (stop_requested()) return stopped();
        sink->idle();
        sleep_ns(kFollowPollNs);
        if (auto refreshed = reader->refresh(); !refreshed) {
          progress.finish();
          fmt::print(stderr, "shmbus replay: {}\n", refreshed.error().message);
          return finish(kExitFailure);
        }
        continue;
      }
      if (st == journal::ReadStatus::damaged) {
        // Never replay across damage silently: the consumer would see a hole it cannot explain.
        progress.finish();
        fmt::print(stderr, "shmbus replay: stopped at damage: {}\n", reader->last_error());
        return finish(kExitFailure);
      }
      if (past_end(o, r)) return finish(kExitOk);
      if (r.type == journal::RecordType::gap) {
        if (!sink->gap(r)) return finish(kExitFailure);
        continue;
      }
      if (!clock.wait_for(r.timestamp_ns, *sink)) return stopped();
      if (!sink->data(r)) return finish(kExitFailure);
      ++replayed;
      progress.update(replayed, r.sequence, r.timestamp_ns);
    }
  } catch (const std::exception& e) {  // formatting allocates
    progress.finish();
    fmt::print(stderr, "shmbus replay: {}\n", e.what());
    return kExitFailure;
  }
}

void add_replay_command(CLI::App& app) {
  struct State {
    ReplayOptions options;
    std::uint64_t from = 0, to = 0;
    std::string from_time, to_time, speed = "max", format = "text";
    std::uint32_t max_message = 0;
    std::uint64_t count = 0;
  };
  auto s = std::make_shared<State>();
  CLI::App* sub = app.add_subcommand(
      "replay", "Replay a journal's records to stdout, or republish them into a channel");
  sub->add_option("--dir", s->options.dir, "Journal directory")->required();
  const auto time_check = CLI::Validator(
      [](std::string& v) -> std::string {
        const auto time = parse_time_point(v, realtime_now_ns());
        return time ? std::string() : time.error();
      },
      "TIME");
  CLI::Option* from = sub->add_option("--from", s->from, "First sequence to replay")
                          ->transform(whole_number_in(1, kMaxU64));
  CLI::Option* from_time =
      sub->add_option("--from-time", s->from_time,
                      "Start at the first data record stamped at or after T: local time "
                      "'2026-12-03 09:23:08[.250]' (or with T), UTC '2026-12-03T09:23:08Z', "
                      "an explicit offset '...+01:00', relative to now '-10m' (ms, s, m, h, d), "
                      "'now', or ns since the epoch")
          ->check(time_check);
  from->excludes(from_time);
  CLI::Option* to = sub->add_option("--to", s->to, "Last sequence to replay (inclusive)")
                        ->transform(whole_number_in(1, kMaxU64));
  CLI::Option* to_time =
      sub->add_option("--to-time", s->to_time,
                      "Stop after the last data record stamped at or before T (same forms as "
                      "--from-time)")
          ->check(time_check);
  to->excludes(to_time);
  CLI::Option* channel = sub->add_option(
      "--to-channel", s->options.to_channel,
      "Republish into this channel (created if needed) instead of printing. The channel "
      "assigns its own sequences; the summary on stderr maps them to the journal's, and "
      "--envelope keeps each record's original sequence and timestamp in its payload");
  sub->add_option("--speed", s->speed,
                  "max (the default): as fast as possible; N: the original spacing of the "
                  "records' timestamps divided by N (1: real time)")
      ->check(
          [](const std::string& v) -> std::string {
            if (v == "max") return {};
            char* end = nullptr;
            const double x = std::strtod(v.c_str(), &end);
            if (v.empty() || *end != '\0' || !(x > 0) || x > 1e9) {
              return fmt::format("expected max or a positive number, got '{}'", v);
            }
            return {};
          },
          "1|N|max");
  add_record_format_option(*sub, s->format);
  CLI::Option* count =
      sub->add_option("--count", s->count,
                      "Stop after N data records (gap records are not counted)")
          ->transform(whole_number_in(1, kMaxU64));
  sub->add_flag("--follow", s->options.follow,
                "At the end of the journal, wait for the journaler to append more and replay "
                "it too, until SIGINT/SIGTERM (exit 0), --count or --to/--to-time");
  sub->add_flag("--envelope", s->options.envelope,
                "With --to-channel: prefix each payload with 16 bytes, the record's original "
                "sequence (u64) then timestamp_ns (i64), both little endian")
      ->needs(channel);
  sub->add_option("--capacity", s->options.capacity,
                  "Ring size in bytes if the channel is created (a power of two)")
      ->capture_default_str()
      ->transform(ring_capacity_size())
      ->needs(channel);
  CLI::Option* max_message =
      sub->add_option("--max-message", s->max_message,
                      "Largest message in bytes if the channel is created (default 65536, or "
                      "capacity/4-32 if that is smaller)")
          ->transform(max_message_size())
          ->needs(channel);
  sub->add_option("--timeout-ms", s->options.timeout_ms,
                  "With --to-channel: how long one message may wait for a block subscriber to "
                  "free space; then exit 1")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{0}, kMaxTimeoutMs));
  sub->footer(
      "Printed records are the lines of 'shmbus tail' (text, json) with the records' original seq "
      "and time_ns, or its raw frames; gap records (sequences the journaler never saw) as "
      "'# gap: ...', {\"type\":\"gap\",\"seq\":S,\"count\":N,...} or an SBRL frame, and counted "
      "in the summary when republishing. Replay stops at damage (exit 1) rather than skip "
      "records.\n"
      "On a terminal, a progress line on stderr after the first second; never on a pipe or file.\n"
      "Exit: 0 done; 1 error or damage; 2 bad arguments; 128+N after signal N (0 with --follow).");
  sub->callback([s, from, from_time, to, to_time, max_message, count] {
    ReplayOptions o = s->options;
    // Relative times count from now: the moment the command line is read.
    const std::int64_t now = realtime_now_ns();
    auto time_of = [now](const char* option, const std::string& text) {
      const auto time = parse_time_point(text, now);
      if (!time) throw CLI::ValidationError(option, time.error());
      return *time;
    };
    if (from->count() > 0) o.from_sequence = s->from;
    if (from_time->count() > 0) o.from_time_ns = time_of("--from-time", s->from_time);
    if (to->count() > 0) o.to_sequence = s->to;
    if (to_time->count() > 0) o.to_time_ns = time_of("--to-time", s->to_time);
    if (max_message->count() > 0) o.max_message = s->max_message;
    if (count->count() > 0) o.count = s->count;
    o.speed = s->speed == "max" ? 0 : std::strtod(s->speed.c_str(), nullptr);
    o.format = record_format_named(s->format);
    const int code = run_replay(o, stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
