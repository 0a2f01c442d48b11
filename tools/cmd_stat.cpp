// shmbus stat: one channel's counters, rates, subscribers, latencies, consumer groups and bridges;
// once, or refreshed in place with --watch until SIGINT/SIGTERM.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <ctime>
#include <functional>
#include <vector>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "shmbus/bridge_stats.hpp"
#include "shmbus/group_consumer.hpp"
#include "shmbus/stats.hpp"
#include "tools/commands.hpp"
#include "tools/metrics_listener.hpp"
#include "tools/observe_commands.hpp"
#include "tools/observe_format.hpp"
#include "tools/option_bounds.hpp"
#include "tools/pacer.hpp"
#include "tools/signals.hpp"
#include "tools/terminal.hpp"
#include "tools/truncation.hpp"

namespace shmbus::tools {
namespace {

// Sleep slice: short enough that a stop request is seen promptly.
constexpr std::int64_t kSliceNs = 100'000'000;

// Sleeps `ns`, in slices, reading keys; false if a stop was requested (SIGINT, SIGTERM, q).
bool sleep_unless_stopped(std::int64_t ns, KeyReader& keys) {
  const std::int64_t until = monotonic_now_ns() + ns;
  for (;;) {
    if (stop_requested()) return false;
    const std::int64_t left = until - monotonic_now_ns();
    if (left <= 0) return true;
    const std::int64_t slice_ms = (std::min(left, kSliceNs) + 999'999) / 1'000'000;
    if (keys.quit_typed(static_cast<int>(slice_ms))) return false;
  }
}

// Every channel on the host that can be read now, each with its consumer groups and bridges. A
// channel removed since the listing is left out silently; one that cannot be read is left out, and
// `report` (if any) hears why. A channel whose groups or bridges cannot be read is shown without
// them (and reported).
struct HostRead {
  std::vector<ChannelStats> channels;
  std::vector<std::vector<GroupStats>> groups;    // parallel to `channels`
  std::vector<std::vector<BridgeStats>> bridges;  // parallel to `channels`
};
HostRead read_all_channels(const std::function<void(const std::string&)>& report) {
  HostRead all;
  for (const std::string& name : list_channels()) {
    auto stats = read_guarded([&] { return read_channel_stats(name); });
    if (!stats) {
      if (stats.error().code != ErrorCode::not_found && report) report(stats.error().message);
      continue;
    }
    auto groups = read_guarded([&] { return read_group_stats(name); });
    if (!groups && groups.error().code != ErrorCode::not_found && report) {
      report(groups.error().message);
    }
    auto bridges = read_guarded([&] { return read_bridge_stats(name); });
    if (!bridges && bridges.error().code != ErrorCode::not_found && report) {
      report(bridges.error().message);
    }
    all.channels.push_back(std::move(*stats));
    all.groups.push_back(groups ? std::move(*groups) : std::vector<GroupStats>{});
    all.bridges.push_back(bridges ? std::move(*bridges) : std::vector<BridgeStats>{});
  }
  return all;
}

std::string host_exposition(const std::function<void(const std::string&)>& report) {
  const HostRead all = read_all_channels(report);
  return stat_prometheus_all(all.channels, all.groups, all.bridges);
}

// Writes frames: on a terminal each one replaces the last (text and Prometheus); otherwise text
// and Prometheus frames are separated by a blank line and JSON documents follow one per line.
class FrameWriter {
 public:
  FrameWriter(std::FILE* out, StatFormat format)
      : out_(out), format_(format), tty_(isatty(fileno(out)) == 1) {}

  bool write(const std::string& frame, bool watching) {
    std::string text;
    if (watching && format_ != StatFormat::json && tty_) {
      // Overwrite in place (home, each line cleared to its end, the rest of the screen cleared)
      // rather than clearing first: no blank flash between frames.
      text = "\x1b[H";
      for (std::size_t begin = 0; begin < frame.size();) {
        const std::size_t newline = std::min(frame.find('\n', begin), frame.size());
        text.append(frame, begin, newline - begin);
        text += "\x1b[K\n";
        begin = newline + 1;
      }
      text += "\x1b[J";
    } else {
      if (watching && format_ != StatFormat::json && frames_ > 0) text = "\n";
      text += frame;
    }
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

// Serves the exposition of `o.channel` (or every channel) until SIGINT/SIGTERM.
int serve_stat_metrics(const StatOptions& o) {
  const std::optional<ListenAddress> address = parse_listen_address(*o.listen);
  if (!address) {
    fmt::print(stderr, "shmbus stat: --listen {}: not HOST:PORT\n", *o.listen);
    return kExitUsage;
  }
  install_stop_handlers();
  auto listener = MetricsListener::open(*address);
  if (!listener) {
    fmt::print(stderr, "shmbus stat: {}\n", listener.error().message);
    return kExitFailure;
  }
  fmt::print(stderr, "shmbus stat: serving http://{}/metrics\n", listener->address());
  std::fflush(stderr);
  const detail::MappingGuard guard;  // a truncated channel is an error, not a SIGBUS
  const auto scrape = [&]() -> Result<std::string> {
    try {
      if (o.channel.empty()) return host_exposition({});
      auto stats = read_guarded([&] { return read_channel_stats(o.channel); });
      if (!stats) return tl::unexpected(stats.error());
      auto groups = read_guarded([&] { return read_group_stats(o.channel); });
      if (!groups) return tl::unexpected(groups.error());
      auto bridges = read_guarded([&] { return read_bridge_stats(o.channel); });
      if (!bridges) return tl::unexpected(bridges.error());
      return stat_prometheus(*stats, *groups, *bridges);
    } catch (const std::exception& e) {  // formatting allocates
      return tl::unexpected(Error{ErrorCode::system, e.what()});
    }
  };
  listener->serve(scrape, [] { return stop_requested(); });
  return kExitOk;
}

std::string every_words(double seconds) {
  return seconds >= 10 ? fmt::format("every {:.0f} s", seconds)
                       : fmt::format("every {:g} s", seconds);
}

}  // namespace

int run_stat(const StatOptions& o, std::FILE* out) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed pipe is an EPIPE from fwrite, handled below
  if (o.listen) return serve_stat_metrics(o);
  const bool watching = o.watch_s.has_value();
  if (watching) install_stop_handlers();
  const bool all_channels = o.channel.empty();
  const detail::MappingGuard guard;  // a truncated channel is an error, not a SIGBUS
  try {
    KeyReader keys;  // declared first among the loop's state: the terminal is restored last
    const auto report = [](const std::string& message) {
      fmt::print(stderr, "shmbus stat: {}\n", message);
    };
    std::optional<ChannelStats> previous;
    ChannelStats current;
    std::vector<GroupStats> groups;    // the consumer groups, read with `current`
    std::vector<BridgeStats> bridges;  // the bridges, read with `current`
    // Reads the channel, its groups and bridges again; the read before becomes `previous`. False
    // (said on stderr) when the channel, its groups or its bridges cannot be read.
    const auto read_next = [&]() -> bool {
      auto next = read_guarded([&] { return read_channel_stats(o.channel); });
      if (!next) {
        report(next.error().message);
        return false;
      }
      auto next_groups = read_guarded([&] { return read_group_stats(o.channel); });
      if (!next_groups) {
        report(next_groups.error().message);
        return false;
      }
      auto next_bridges = read_guarded([&] { return read_bridge_stats(o.channel); });
      if (!next_bridges) {
        report(next_bridges.error().message);
        return false;
      }
      previous = std::move(current);
      current = std::move(*next);
      groups = std::move(*next_groups);
      bridges = std::move(*next_bridges);
      return true;
    };
    if (!all_channels) {
      if (!read_next()) return kExitFailure;
      previous.reset();  // the first read has nothing before it
      if (o.interval_ms > 0) {
        if (!sleep_unless_stopped(o.interval_ms * 1'000'000, keys)) return kExitOk;
        if (!read_next()) return kExitFailure;
      }
    }

    const int out_fd = fileno(out);
    WatchFrameStyle style;
    style.colour = colour_wanted_for(out_fd);
    style.width = terminal_columns(out_fd, style.width);
    if (watching) {
      style.hint = every_words(*o.watch_s);
      if (keys.active()) style.hint += ", q quits";
    }
    const auto render = [&](const ChannelRates& rates) -> std::string {
      if (all_channels) return host_exposition(report);
      switch (o.format) {
        case StatFormat::json:
          return stat_json(current, rates, groups, bridges) + "\n";
        case StatFormat::prometheus:
          return stat_prometheus(current, groups, bridges);
        case StatFormat::text:
          break;
      }
      if (!watching) return stat_text(current, rates, false, groups, bridges);
      style.clock = local_clock(std::time(nullptr));
      style.width = terminal_columns(out_fd, style.width);  // follows a resized window
      return stat_watch_frame(current, rates, style, groups);
    };

    FrameWriter writer(out, o.format);
    const std::int64_t period_ns =
        watching ? std::max<std::int64_t>(1, std::llround(*o.watch_s * 1e9)) : 0;
    for (;;) {
      const ChannelRates rates = measure_rates(previous ? &*previous : nullptr, current);
      if (!writer.write(render(rates), watching)) break;
      if (!watching || !sleep_unless_stopped(period_ns, keys)) break;
      if (!all_channels && !read_next()) return kExitFailure;
    }
    if (writer.error() == EPIPE) return kExitOk;  // the reader went away: a normal end
    if (writer.error() != 0) {
      report(fmt::format("writing output: {}", std::strerror(writer.error())));
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
    std::string listen;
  };
  auto s = std::make_shared<State>();
  CLI::App* sub = app.add_subcommand(
      "stat",
      "A channel's counters, rates, subscribers (lag, drops), latency percentiles and consumer "
      "groups (members, in flight, acked, redelivered, dead-lettered) and NATS JetStream bridges "
      "(state, window, acked sequence, resends, gaps, lag)");
  sub->add_option("channel", s->options.channel,
                  "Channel name (with --prometheus it may be left out: every channel)");
  CLI::Option* watch =
      sub->add_option("--watch", s->watch_s,
                      "Refresh every S seconds (like top) until q, SIGINT or SIGTERM; rates and "
                      "latencies are then also shown over the last interval")
          ->check(real_number_in(0.01, 86400.0));
  CLI::Option* json = sub->add_flag(
      "--json", s->json,
      "One JSON document (one line; with --watch one per line, NDJSON); the fields are in "
      "docs/observability.md");
  CLI::Option* prometheus = sub->add_flag(
      "--prometheus", s->prometheus,
      "The Prometheus text exposition format, for a node exporter textfile collector; without "
      "a channel, every channel in one exposition (a `channel` label on each sample)");
  json->excludes(prometheus);
  prometheus->excludes(json);
  CLI::Option* listen =
      sub->add_option("--listen", s->listen,
                      "With --prometheus: serve it over HTTP at HOST:PORT (127.0.0.1:9464, :9464 "
                      "for every interface), GET /metrics, a fresh read per request, until "
                      "SIGINT/SIGTERM")
          ->type_name("HOST:PORT")
          ->check([](const std::string& text) {
            return parse_listen_address(text) ? std::string() : std::string("expected HOST:PORT");
          });
  listen->needs(prometheus);
  listen->excludes(watch);
  sub->add_option("--interval-ms", s->options.interval_ms,
                  "Read the channel twice this far apart for the first rates (0: once, no "
                  "rates)")
      ->default_val(200)
      ->check(CLI::Range(std::int64_t{0}, kMaxIntervalMs));
  sub->footer(
      "Subscriber states: alive (its process runs, less than half a ring behind), lagging (at "
      "least half a ring behind), lapped (drop/spill, more than a ring behind), dead (its process "
      "is gone), evicted, detached (a named subscriber that closed cleanly).\n"
      "--watch on a terminal: colours (not with NO_COLOR or TERM=dumb), q quits.\n"
      "Exit: 0 done (or stopped by q, SIGINT or SIGTERM); 1 the channel cannot be read (or "
      "--listen cannot bind); 2 bad arguments.");
  sub->callback([s, watch, listen] {
    StatOptions o = s->options;
    o.format = s->json         ? StatFormat::json
               : s->prometheus ? StatFormat::prometheus
                               : StatFormat::text;
    if (o.channel.empty() && o.format != StatFormat::prometheus) {
      throw CLI::ValidationError("channel",
                                 "a channel is required (only --prometheus exports "
                                 "every channel)");
    }
    if (watch->count() > 0) o.watch_s = s->watch_s;
    if (listen->count() > 0) o.listen = s->listen;
    const int code = run_stat(o, stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
