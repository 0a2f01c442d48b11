// shmbus ls: every channel on the host, read twice --interval-ms apart for its message rate.
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "shmbus/stats.hpp"
#include "tools/commands.hpp"
#include "tools/observe_commands.hpp"
#include "tools/observe_format.hpp"
#include "tools/truncation.hpp"

namespace shmbus::tools {

int run_ls(const LsOptions& o, std::FILE* out) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed pipe is an error from fflush, handled below
  // A channel truncated while it is read is listed with the reason, like any channel that cannot
  // be read: one bad channel does not fail the listing of the others.
  const detail::MappingGuard guard;
  try {
    const std::vector<std::string> names = list_channels();
    std::vector<Result<ChannelStats>> first;
    first.reserve(names.size());
    for (const std::string& name : names) {
      first.push_back(read_guarded([&] { return read_channel_stats(name); }));
    }

    std::vector<LsEntry> entries(names.size());
    if (o.interval_ms > 0 && !names.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(o.interval_ms));
    }
    for (std::size_t i = 0; i < names.size(); ++i) {
      LsEntry& e = entries[i];
      e.name = names[i];
      Result<ChannelStats> second =
          o.interval_ms > 0
              ? read_guarded([&] { return read_channel_stats(names[i]); })
              : Result<ChannelStats>(first[i]);
      if (o.interval_ms > 0 && second && first[i]) {
        e.rates = measure_rates(&*first[i], *second);
        e.stats = std::move(*second);
      } else if (second) {
        e.rates = measure_rates(nullptr, *second);
        e.stats = std::move(*second);
      } else if (first[i] && second.error().code == ErrorCode::not_found) {
        // Removed between the reads: show what the first read saw, without a rate.
        e.rates = measure_rates(nullptr, *first[i]);
        e.stats = std::move(*first[i]);
      } else {
        e.error = second.error().message;
      }
    }
    fmt::print(out, "{}", o.json ? ls_json(entries) + "\n" : ls_text(entries));
  } catch (const std::exception& e) {  // formatting and listing allocate
    fmt::print(stderr, "shmbus ls: {}\n", e.what());
    return kExitFailure;
  }
  if (std::fflush(out) != 0) {
    fmt::print(stderr, "shmbus ls: writing output: {}\n", std::strerror(errno));
    return kExitFailure;
  }
  return kExitOk;
}

void add_ls_command(CLI::App& app) {
  auto o = std::make_shared<LsOptions>();
  CLI::App* sub = app.add_subcommand(
      "ls", "List every channel on this host: capacity, processes, head, rate, journal");
  sub->add_flag("--json", o->json,
                "One JSON object: {\"channels\":[{name, capacity, producers, subscribers, "
                "head_sequence, published_messages, messages_per_s, journal, "
                "journal_durable_sequence, abandoned} or {name, error}]}");
  sub->add_option("--interval-ms", o->interval_ms,
                  "Read every channel twice this far apart to measure its message rate (0: once, "
                  "no rate)")
      ->default_val(200)
      ->check(CLI::Range(std::int64_t{0}, kMaxIntervalMs));
  sub->footer(
      "PRODUCERS counts producers whose process runs; SUBSCRIBERS counts occupied subscriber "
      "slots. A channel is 'abandoned' when no live process is attached ('shmbus gc' removes "
      "it). A channel that cannot be read is listed with the reason.\n"
      "Exit: 0 done; 1 error; 2 bad arguments.");
  sub->callback([o] {
    const int code = run_ls(*o, stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
