// shmbus record: the journaler as a process. Everything it does is Journaler; this file
// turns flags into options and prints what happened.
#include <chrono>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/commands.hpp"
#include "tools/option_bounds.hpp"
#include "tools/pacer.hpp"
#include "tools/record_command.hpp"
#include "tools/report_output.hpp"
#include "tools/signals.hpp"
#include "tools/truncation.hpp"

namespace shmbus::tools {

namespace {

// The smallest --segment-size: a segment holds a header and at least a few records.
constexpr std::uint64_t kMinSegmentBytes = 64 << 10;
// The largest write-buffer pool: it is allocated (and zeroed) whole when recording starts.
constexpr std::uint64_t kMaxWritePoolBytes = 4ull << 30;

void print_recovery(std::FILE* err, const RecordOptions& o, const journal::RecoveryReport& r) {
  const auto& jo = o.journaler;
  if (r.next_sequence == 0) {
    fmt::print(err, "shmbus record: recording channel '{}' into {} (new journal)\n", jo.channel,
               jo.writer.dir);
  } else {
    fmt::print(err,
               "shmbus record: recording channel '{}' into {} ({} segment(s); continuing at "
               "sequence {})\n",
               jo.channel, jo.writer.dir, r.segments, r.next_sequence);
  }
  if (r.truncated_bytes > 0) {
    fmt::print(err, "shmbus record: recovery cut a torn tail of {} bytes off {}\n",
               r.truncated_bytes, r.truncated_segment);
  }
  for (const auto& d : r.damage) fmt::print(err, "shmbus record: warning: damage: {}\n", d);
  for (const auto& c : r.crash_repairs) fmt::print(err, "shmbus record: recovery: {}\n", c);
  for (const auto& f : r.removed) fmt::print(err, "shmbus record: removed leftover {}\n", f);
}

void print_status(std::FILE* err, const char* what, const JournalerStats& s) {
  fmt::print(err,
             "shmbus record: {}: {} records, {} gap record(s) ({} lost), {} duplicate(s) "
             "skipped, written through seq {}, durable through seq {}{}\n",
             what, s.recorded, s.gap_records, s.lost, s.duplicates, s.written_sequence,
             s.durable_sequence, s.blocked ? ", BLOCKED (writes failing)" : "");
}

}  // namespace

bool parse_fsync_policy(const std::string& text, journal::WriterOptions& out) {
  if (text == "never") {
    out.fsync = journal::FsyncPolicy::never;
    return true;
  }
  if (text == "batch") {
    out.fsync = journal::FsyncPolicy::batch;
    return true;
  }
  constexpr std::string_view prefix = "interval:";
  if (!text.starts_with(prefix)) return false;
  const std::string ms = text.substr(prefix.size());
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(ms.c_str(), &end, 10);
  if (ms.empty() || *end != '\0' || errno != 0 || v <= 0 || v > 3'600'000) return false;
  out.fsync = journal::FsyncPolicy::interval;
  out.fsync_interval = std::chrono::milliseconds(v);
  return true;
}

namespace {

// The recording itself; every way it ends is said in `report` too.
int record_until_stopped(const RecordOptions& o, std::FILE* err, RecordReport& report) {
  install_stop_handlers();
  const detail::MappingGuard guard;  // a truncated channel ends recording with an error
  journal::RecoveryReport recovery;
  JournalerOptions jo = o.journaler;
  jo.wait_while_blocked = o.on_error == OnWriteError::wait;
  jo.should_stop = [] { return stop_requested(); };
  // A wait for disk space inside a step says so at once (the loop below says when it is over).
  auto waited_blocked = std::make_shared<bool>(false);
  jo.on_blocked_wait = [err, waited_blocked](const std::string& why) {
    *waited_blocked = true;
    fmt::print(err, "shmbus record: writes failing, holding the records and retrying: {}\n", why);
  };
  auto opened = read_guarded([&] { return Journaler::open(jo, &recovery); });
  if (!opened) {
    fmt::print(err, "shmbus record: {}\n", opened.error().message);
    report.error = opened.error().message;
    return kExitFailure;
  }
  Journaler& j = *opened;
  report.recovery = recovery;
  if (!o.quiet) print_recovery(err, o, recovery);

  const auto status_every = std::chrono::duration<double>(o.status_interval_s);
  auto next_status = std::chrono::steady_clock::now() + status_every;
  std::int64_t failing_since = 0;
  std::string reported;
  while (!stop_requested()) {
    auto r = j.step(std::chrono::milliseconds(100));
    if (auto truncation = detail::MappingGuard::take()) {
      // What it reads now are zeros; what it wrote before is in the journal.
      r = tl::unexpected(Error{ErrorCode::corrupt, detail::describe(*truncation)});
    }
    if (!r) {
      fmt::print(err, "shmbus record: {}\n", r.error().message);
      report.error = r.error().message;
      report.stats = j.stats();
      print_status(err, "stopped", *report.stats);
      // Leave the gate in place, as a crash would: a journaler restarted within the liveness
      // timeout records everything this one could not.
      j.abandon();
      return kExitFailure;
    }
    const JournalerStats s = j.stats();
    if (s.blocked) {
      const std::int64_t now = monotonic_now_ns();
      if (failing_since == 0) failing_since = now;
      if (j.last_error() != reported) {
        reported = j.last_error();
        fmt::print(err, "shmbus record: writes failing, holding the records and retrying: {}\n",
                   reported);
      }
      if (o.on_error == OnWriteError::exit && now - failing_since >= o.give_up_ms * 1'000'000) {
        report.error = fmt::format("giving up after {} ms of failed writes", o.give_up_ms);
        report.stats = s;
        fmt::print(err, "shmbus record: {}\n", *report.error);
        print_status(err, "stopped", s);
        j.abandon();  // as above
        return kExitFailure;
      }
    } else if (failing_since != 0 || *waited_blocked) {
      failing_since = 0;
      *waited_blocked = false;
      reported.clear();
      fmt::print(err, "shmbus record: writes succeed again; recording resumed\n");
    }
    if (o.status_interval_s > 0 && std::chrono::steady_clock::now() >= next_status) {
      next_status += status_every;
      print_status(err, "status", s);
    }
  }
  auto drained = j.drain();
  report.stats = j.stats();
  if (!o.quiet) print_status(err, "stopped", *report.stats);
  if (!drained) {
    report.error = fmt::format("draining: {}", drained.error().message);
    fmt::print(err, "shmbus record: {}\n", *report.error);
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

std::string record_json(const RecordReport& report) {
  nlohmann::ordered_json doc;
  doc["channel"] = report.channel;
  doc["dir"] = report.dir;
  doc["outcome"] = report.error ? "failed" : "stopped";
  doc["error"] = report.error ? nlohmann::ordered_json(*report.error) : nullptr;
  if (report.recovery) {
    const journal::RecoveryReport& r = *report.recovery;
    doc["recovery"] = {{"segments", r.segments},
                       {"next_sequence", r.next_sequence},
                       {"truncated_bytes", r.truncated_bytes},
                       {"truncated_segment", r.truncated_segment},
                       {"damage", r.damage},
                       {"crash_repairs", r.crash_repairs},
                       {"removed", r.removed}};
  } else {
    doc["recovery"] = nullptr;
  }
  if (report.stats) {
    const JournalerStats& s = *report.stats;
    doc["stats"] = {{"recorded", s.recorded},
                    {"gap_records", s.gap_records},
                    {"lost", s.lost},
                    {"duplicates", s.duplicates},
                    {"written_sequence", s.written_sequence},
                    {"durable_sequence", s.durable_sequence},
                    {"blocked", s.blocked}};
  } else {
    doc["stats"] = nullptr;
  }
  return doc.dump();
}

int run_record(const RecordOptions& o, std::FILE* err, std::FILE* out) {
  RecordReport report;
  int code = kExitFailure;
  try {
    report.channel = o.journaler.channel;
    report.dir = o.journaler.writer.dir;
    code = record_until_stopped(o, err, report);
    if (!o.json) return code;
    const int printed = print_report("record", record_json(report) + "\n", out);
    return code == kExitOk ? printed : code;
  } catch (const std::exception& e) {  // the report's formatting allocates
    fmt::print(err, "shmbus record: {}\n", e.what());
    return kExitFailure;
  }
}

void add_record_command(CLI::App& app) {
  struct State {
    RecordOptions options;
    std::string fsync = "interval:100";
    std::string on_error = "wait";
    std::int64_t liveness_ms = 5000;
    std::int64_t retain_age_s = 0;
    std::string start = "earliest";
  };
  auto s = std::make_shared<State>();
  auto& jo = s->options.journaler;
  CLI::App* cmd = app.add_subcommand(
      "record", "Journal a channel to segment files (io_uring), losslessly unless --lossy");
  cmd->add_option("channel", jo.channel, "Channel name")->required();
  cmd->add_option("--dir", jo.writer.dir, "Journal directory (created if missing)")->required();
  cmd->add_flag("--lossy", jo.lossy,
                "Never slow the producers: what the journaler misses is written as a gap record");
  cmd->add_option("--name", jo.name,
                  "Subscriber name; a restarted journaler of that name resumes where it stopped")
      ->capture_default_str();
  cmd->add_option("--fsync", s->fsync,
                  "never | interval:MS | batch: when to fdatasync; the synced sequence is "
                  "published as the channel's durable sequence")
      ->capture_default_str()
      ->check(
          [](const std::string& v) -> std::string {
            journal::WriterOptions w;
            return parse_fsync_policy(v, w) ? "" : "expected never, batch or interval:MS";
          },
          "POLICY");
  cmd->add_option("--segment-size", jo.writer.segment_bytes,
                  "Roll to a new segment file past this size (e.g. 256MiB)")
      ->transform(byte_size_in(kMinSegmentBytes, journal::kMaxSegmentBytes))
      ->capture_default_str();
  cmd->add_option("--retain-bytes", jo.writer.retain_bytes,
                  "Delete the oldest segments past this total size (0: keep all)")
      ->transform(byte_size_in(0, std::uint64_t{1} << 60));
  cmd->add_option("--retain-age", s->retain_age_s,
                  "Delete segments whose newest record is older than this many seconds")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{100LL * 365 * 86400}));
  cmd->add_flag("--direct", jo.writer.direct, "Write with O_DIRECT (bypass the page cache)");
  cmd->add_option("--buffers", jo.writer.buffers,
                  fmt::format("Write buffers = writes in flight at most; --buffers x "
                              "--buffer-size is at most {} GiB (the pool is allocated at start)",
                              kMaxWritePoolBytes >> 30))
      ->transform(whole_number_in(2, 256))
      ->capture_default_str();
  cmd->add_option("--buffer-size", jo.writer.buffer_bytes, "Bytes per write buffer")
      ->transform(byte_size_in(64 << 10, 256 << 20))
      ->capture_default_str();
  cmd->add_option("--start", s->start,
                  "A new journal starts at the earliest record the ring holds or the latest")
      ->check(CLI::IsMember({"earliest", "latest"}))
      ->capture_default_str();
  cmd->add_option("--liveness-timeout-ms", s->liveness_ms,
                  "Evict this journaler's gate after its process has been dead this long")
      ->check(CLI::Range(std::int64_t{1}, kMaxTimeoutMs))
      ->capture_default_str();
  cmd->add_option("--on-error", s->on_error,
                  "wait: hold the records and retry failed writes (disk full) until they succeed; "
                  "exit: exit 1 after --give-up-ms of failures, leaving the gate in place so that "
                  "a journaler restarted within --liveness-timeout-ms loses nothing")
      ->check(CLI::IsMember({"wait", "exit"}))
      ->capture_default_str();
  cmd->add_option("--give-up-ms", s->options.give_up_ms, "With --on-error exit")
      ->check(CLI::Range(std::int64_t{0}, kMaxTimeoutMs));
  cmd->add_option("--status-interval", s->options.status_interval_s,
                  "Print a status line to stderr every S seconds")
      ->check(real_number_in(0.0, 86400.0));
  cmd->add_flag("--quiet", s->options.quiet, "No start and summary lines");
  cmd->add_flag("--json", s->options.json,
                "At exit, print one JSON object on stdout, whatever the outcome: {channel, dir, "
                "outcome, error, recovery, stats}");
  cmd->footer(
      "Recovery: a torn tail left by a crash is cut (and said how much); damage in the middle is "
      "reported and never cut. SIGINT/SIGTERM drain the writes and exit 0.\n"
      "Exit: 0 stopped by a signal; 1 error; 2 bad arguments.");
  cmd->callback([s] {
    RecordOptions& o = s->options;
    const std::uint64_t pool = std::uint64_t{o.journaler.writer.buffers} *
                               o.journaler.writer.buffer_bytes;
    if (pool > kMaxWritePoolBytes) {
      throw CLI::ValidationError(
          "--buffers x --buffer-size",
          fmt::format("{} buffers of {} bytes are {} bytes of write buffers; at most {} GiB",
                      o.journaler.writer.buffers, o.journaler.writer.buffer_bytes, pool,
                      kMaxWritePoolBytes >> 30));
    }
    parse_fsync_policy(s->fsync, o.journaler.writer);
    o.journaler.liveness_timeout = std::chrono::milliseconds(s->liveness_ms);
    o.journaler.writer.retain_age = std::chrono::seconds(s->retain_age_s);
    o.journaler.start = s->start == "latest" ? StartFrom::latest : StartFrom::earliest;
    o.on_error = s->on_error == "exit" ? OnWriteError::exit : OnWriteError::wait;
    const int code = run_record(o, stderr, stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
