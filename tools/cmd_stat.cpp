// shmbus stat: one channel's counters, rates, subscribers and latencies; once, or refreshed in
// place with --watch until SIGINT/SIGTERM.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "shmbus/stats.hpp"
#include "tools/commands.hpp"
#include "tools/observe_commands.hpp"
#include "tools/observe_format.hpp"
#include "tools/option_bounds.hpp"
#include "tools/pacer.hpp"
#include "tools/signals.hpp"
#include "tools/truncation.hpp"

namespace shmbus::tools {
namespace {

// Sleep slice: short enough that a stop request is seen promptly.
constexpr std::int64_t kSliceNs = 100'000'000;

// Sleeps `ns`, in slices; false if a stop was requested meanwhile.
bool sleep_unless_stopped(std::int64_t ns) {
  const std::int64_t until = monotonic_now_ns() + ns;
  for (;;) {
    if (stop_requested()) return false;
    const std::int64_t left = until - monotonic_now_ns();
    if (left <= 0) return true;
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min(left, kSliceNs)));
  }
}

std::string render(const StatOptions& o, const ChannelStats& stats, const ChannelRates& rates) {
  switch (o.format) {
    case StatFormat::json: return stat_json(stats, rates) + "\n";
    case StatFormat::prometheus: return stat_prometheus(stats);
    case StatFormat::text: break;
  }
  return stat_text(stats, rates, o.watch_s.has_value());
}

// Writes frames: on a terminal each one replaces the last (text and Prometheus); otherwise text
// and Prometheus frames are separated by a blank line and JSON documents follow one per line.
class FrameWriter {
 public:
  FrameWriter(std::FILE* out, StatFormat format)
      : out_(out), format_(format), tty_(isatty(fileno(out)) == 1) {}

  bool write(const std::string& frame, bool watching) {
    std::string text;
    if (watching && format_ != StatFormat::json) {
      if (tty_) {
        text = "\x1b[H\x1b[2J";
      } else if (frames_ > 0) {
        text = "\n";
      }
    }
    text += frame;
    ++frames_;
    if (std::fwrite(text.data(), 1, text.size(), out_) != text.size() || std::fflush(out_) != 0) {
      error_ = errno != 0 ? errno : EIO;
      return false;
    }
    return true;
  }
  int error() const noexcept { return error_; }

 private:
  std::FILE* out_;
  StatFormat format_;
  bool tty_;
  std::uint64_t frames_ = 0;
  int error_ = 0;
};

}  // namespace

int run_stat(const StatOptions& o, std::FILE* out) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed pipe is an EPIPE from fwrite, handled below
  const bool watching = o.watch_s.has_value();
  if (watching) install_stop_handlers();
  const detail::MappingGuard guard;  // a truncated channel is an error, not a SIGBUS
  try {
    auto before = read_guarded([&] { return read_channel_stats(o.channel); });
    if (!before) {
      fmt::print(stderr, "shmbus stat: {}\n", before.error().message);
      return kExitFailure;
    }
    std::optional<ChannelStats> previous;
    ChannelStats current = std::move(*before);
    if (o.interval_ms > 0) {
      if (!sleep_unless_stopped(o.interval_ms * 1'000'000)) return kExitOk;
      auto after = read_guarded([&] { return read_channel_stats(o.channel); });
      if (!after) {
        fmt::print(stderr, "shmbus stat: {}\n", after.error().message);
        return kExitFailure;
      }
      previous = std::move(current);
      current = std::move(*after);
    }

    FrameWriter writer(out, o.format);
    const std::int64_t period_ns =
        watching ? std::max<std::int64_t>(1, std::llround(*o.watch_s * 1e9)) : 0;
    for (;;) {
      const ChannelRates rates = measure_rates(previous ? &*previous : nullptr, current);
      if (!writer.write(render(o, current, rates), watching)) break;
      if (!watching || !sleep_unless_stopped(period_ns)) break;
      auto next = read_guarded([&] { return read_channel_stats(o.channel); });
      if (!next) {
        fmt::print(stderr, "shmbus stat: {}\n", next.error().message);
        return kExitFailure;
      }
      previous = std::move(current);
      current = std::move(*next);
    }
    if (writer.error() == EPIPE) return kExitOk;  // the reader went away: a normal end
    if (writer.error() != 0) {
      fmt::print(stderr, "shmbus stat: writing output: {}\n", std::strerror(writer.error()));
      return kExitFailure;
    }
  } catch (const std::exception& e) {  // formatting allocates
    fmt::print(stderr, "shmbus stat: {}\n", e.what());
    return kExitFailure;
  }
  return kExitOk;
}

void add_stat_command(CLI::App& app) {
  struct State {
    StatOptions options;
    bool json = false;
    bool prometheus = false;
    double watch_s = 0;
  };
  auto s = std::make_shared<State>();
  CLI::App* sub = app.add_subcommand(
      "stat", "A channel's counters, rates, subscribers (lag, drops) and latency percentiles");
  sub->add_option("channel", s->options.channel, "Channel name")->required();
  CLI::Option* watch =
      sub->add_option("--watch", s->watch_s,
                      "Refresh every S seconds (like top) until SIGINT/SIGTERM; rates and "
                      "latencies are then also shown over the last interval")
          ->check(real_number_in(0.01, 86400.0));
  CLI::Option* json = sub->add_flag(
      "--json", s->json,
      "One JSON document (one line; with --watch one per line, NDJSON); the fields are in "
      "docs/observability.md");
  CLI::Option* prometheus = sub->add_flag(
      "--prometheus", s->prometheus,
      "The Prometheus text exposition format, for a node exporter textfile collector");
  json->excludes(prometheus);
  prometheus->excludes(json);
  sub->add_option("--interval-ms", s->options.interval_ms,
                  "Read the channel twice this far apart for the first rates (0: once, no "
                  "rates)")
      ->default_val(200)
      ->check(CLI::Range(std::int64_t{0}, kMaxIntervalMs));
  sub->footer(
      "Subscriber states: alive (its process runs, less than half a ring behind), lagging (at "
      "least half a ring behind), lapped (drop/spill, more than a ring behind), dead (its process "
      "is gone), evicted, detached (a named subscriber that closed cleanly).\n"
      "Exit: 0 done (or stopped by SIGINT/SIGTERM); 1 the channel cannot be read; 2 bad "
      "arguments.");
  sub->callback([s, watch] {
    StatOptions o = s->options;
    o.format = s->json         ? StatFormat::json
               : s->prometheus ? StatFormat::prometheus
                               : StatFormat::text;
    if (watch->count() > 0) o.watch_s = s->watch_s;
    const int code = run_stat(o, stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
