// shmbus replay: reads a range of a journal and prints it (the lines of `shmbus tail`) or
// republishes it into a channel, paced like the original or as fast as possible.
#include <time.h>

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
#include "tools/line_output.hpp"
#include "tools/option_bounds.hpp"
#include "tools/pacer.hpp"
#include "tools/signals.hpp"

namespace shmbus::tools {
namespace {

constexpr std::size_t kEnvelopeBytes = 16;  // original sequence (u64) and timestamp (i64), LE

// Replays the original spacing of data records divided by `speed`: record k is due at
// start + (t_k - t_0) / speed on CLOCK_MONOTONIC. A record whose timestamp is earlier than one
// already replayed (a clock step) is not waited for.
class ReplayClock {
 public:
  explicit ReplayClock(double speed) : speed_(speed) {}

  // Waits until the record stamped `timestamp_ns` is due. False if a stop was requested.
  bool wait_for(std::int64_t timestamp_ns) {
    if (speed_ <= 0) return !stop_requested();
    if (!started_) {
      started_ = true;
      first_ts_ = timestamp_ns;
      start_ns_ = monotonic_now_ns();
      return !stop_requested();
    }
    const double offset = static_cast<double>(timestamp_ns - first_ts_) / speed_;
    const std::int64_t due = start_ns_ + static_cast<std::int64_t>(std::max(offset, 0.0));
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

// Where output goes: lines on a stream, or messages into a channel.
class Sink {
 public:
  virtual ~Sink() = default;
  // False: stop (the error was printed, or the reader of the output went away).
  virtual bool data(const journal::JournalRecord& r) = 0;
  virtual bool gap(const journal::JournalRecord& r) = 0;
  virtual int finish(int code) = 0;
};

class LineSink final : public Sink {
 public:
  LineSink(std::FILE* out, RecordFormat format) : lines_(out), format_(format) {}
  bool data(const journal::JournalRecord& r) override {
    return lines_.write(record_line(Message{r.sequence, r.timestamp_ns, r.payload, 0}, format_));
  }
  bool gap(const journal::JournalRecord& r) override {
    return lines_.write(gap_line(r.sequence, r.gap_count, r.timestamp_ns, format_));
  }
  int finish(int code) override {
    if (lines_.error() == EPIPE) return kExitOk;
    if (lines_.error() != 0) {
      fmt::print(stderr, "shmbus replay: writing output: {}\n", std::strerror(lines_.error()));
      return kExitFailure;
    }
    return code;
  }

 private:
  LineOutput lines_;
  RecordFormat format_;
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
  if (o.to_channel.empty()) return std::make_unique<LineSink>(out, o.format);
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

  ReplayClock clock(o.speed);
  journal::JournalRecord r;
  try {
    for (;;) {
      const journal::ReadStatus st = reader->next(r);
      if (st == journal::ReadStatus::end) return sink->finish(kExitOk);
      if (st == journal::ReadStatus::damaged) {
        // Never replay across damage silently: the consumer would see a hole it cannot explain.
        fmt::print(stderr, "shmbus replay: stopped at damage: {}\n", reader->last_error());
        return sink->finish(kExitFailure);
      }
      if (past_end(o, r)) return sink->finish(kExitOk);
      if (r.type == journal::RecordType::gap) {
        if (!sink->gap(r)) return sink->finish(kExitFailure);
        continue;
      }
      if (!clock.wait_for(r.timestamp_ns)) return sink->finish(128 + stop_signal());
      if (!sink->data(r)) return sink->finish(kExitFailure);
    }
  } catch (const std::exception& e) {  // formatting allocates
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
  };
  auto s = std::make_shared<State>();
  CLI::App* sub = app.add_subcommand(
      "replay", "Replay a journal's records to stdout, or republish them into a channel");
  sub->add_option("--dir", s->options.dir, "Journal directory")->required();
  const auto time_check = CLI::Validator(
      [](std::string& v) -> std::string {
        return parse_time_ns(v) ? std::string()
                                : fmt::format("expected nanoseconds since the epoch or an ISO-8601 "
                                              "UTC time like 2026-11-27T10:00:00Z, got '{}'",
                                              v);
      },
      "NS|ISO-8601");
  CLI::Option* from = sub->add_option("--from", s->from, "First sequence to replay")
                          ->transform(whole_number_in(1, kMaxU64));
  CLI::Option* from_time =
      sub->add_option("--from-time", s->from_time,
                      "Start at the first data record stamped at or after T (ns since the epoch, "
                      "or ISO-8601 UTC such as 2026-11-27T10:00:00Z or ...:00.250Z)")
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
  sub->add_option("--format", s->format,
                  "Printing: text (the default) or json, the lines of 'shmbus tail' with the "
                  "records' original seq and time_ns; gap records as "
                  "{\"type\":\"gap\",\"seq\":S,\"count\":N,...}")
      ->transform(CLI::IsMember({"text", "json"}, CLI::ignore_case));
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
      "Gap records (sequences the journaler never saw) are printed, or counted in the summary "
      "when republishing. Replay stops at damage (exit 1) rather than skip records.\n"
      "Exit: 0 done; 1 error or damage; 2 bad arguments; 128+N after signal N.");
  sub->callback([s, from, from_time, to, to_time, max_message] {
    ReplayOptions o = s->options;
    if (from->count() > 0) o.from_sequence = s->from;
    if (from_time->count() > 0) o.from_time_ns = parse_time_ns(s->from_time);
    if (to->count() > 0) o.to_sequence = s->to;
    if (to_time->count() > 0) o.to_time_ns = parse_time_ns(s->to_time);
    if (max_message->count() > 0) o.max_message = s->max_message;
    o.speed = s->speed == "max" ? 0 : std::strtod(s->speed.c_str(), nullptr);
    o.format = s->format == "json" ? RecordFormat::json : RecordFormat::text;
    const int code = run_replay(o, stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
