// The observability subcommands of the `shmbus` command, with the conventions of
// tools/commands.hpp: an options struct, run_X(options, out) returning the exit code (never
// throwing; errors go to stderr prefixed "shmbus X: "), and add_X_command(app) registering it with
// CLI11. They map channels read-only and never perturb them (rm and gc only remove objects).
// docs/observability.md documents what they print.
//
//   shmbus ls [--json] [--interval-ms MS]                                  (cmd_ls.cpp)
//   shmbus stat CHANNEL [--watch S] [--json | --prometheus] [--interval-ms MS]   (cmd_stat.cpp)
//   shmbus stat [CHANNEL] --prometheus [--watch S | --listen ADDR:PORT]        (cmd_stat.cpp)
//   shmbus inspect CHANNEL [--records N] [--json]                          (cmd_inspect.cpp)
//   shmbus rm CHANNEL [--force] [--json]                                   (cmd_gc.cpp)
//   shmbus gc [--dry-run] [--json]                                         (cmd_gc.cpp)
//
// Exit codes: 0 success; 1 a runtime error (the channel cannot be read, inspect found problems, rm
// refused because live processes are attached); 2 bad arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace shmbus::tools {

// The longest --interval-ms accepted (one hour).
inline constexpr std::int64_t kMaxIntervalMs = 3'600'000;

// --- shmbus ls ----------------------------------------------------------------------------------

struct LsOptions {
  bool json = false;
  // Every channel is read twice this far apart for its message rate; 0: read once, no rates.
  std::int64_t interval_ms = 200;
};
// Lists every channel on the host. A channel that cannot be read is listed with its error; it
// never fails the listing.
int run_ls(const LsOptions& options, std::FILE* out);
void add_ls_command(CLI::App& app);

// --- shmbus stat CHANNEL ------------------------------------------------------------------------

enum class StatFormat : std::uint8_t { text, json, prometheus };

struct StatOptions {
  std::string channel;  // empty: every channel on the host (only with StatFormat::prometheus)
  StatFormat format = StatFormat::text;
  // Refresh every this many seconds until SIGINT/SIGTERM; rates and latencies then also over the
  // last interval. Nothing: print once.
  std::optional<double> watch_s;
  // The one-shot sample (and the first frame of --watch): two reads this far apart; 0: one read.
  std::int64_t interval_ms = 200;
  // "HOST:PORT" (tools/metrics_listener.hpp): serve the Prometheus exposition over HTTP, a fresh
  // read on every request, until SIGINT/SIGTERM; the bound address is printed on stderr.
  std::optional<std::string> listen;
};
// --watch on a terminal: colours (unless NO_COLOR or TERM=dumb), the local time, the terminal's
// width, and 'q' quits (stdin in non-canonical mode meanwhile, restored on every way out).
int run_stat(const StatOptions& options, std::FILE* out);
void add_stat_command(CLI::App& app);

// --- shmbus inspect CHANNEL ---------------------------------------------------------------------

struct InspectOptions {
  std::string channel;
  std::size_t records = 10;  // the last N record headers shown
  bool json = false;
};
// Header, layout, the last record headers and a consistency walk of the ring. Exit 1 if the walk
// found problems or the channel cannot be opened.
int run_inspect(const InspectOptions& options, std::FILE* out);
void add_inspect_command(CLI::App& app);

// --- shmbus rm CHANNEL, shmbus gc ---------------------------------------------------------------

struct RmOptions {
  std::string channel;
  bool force = false;  // remove even while live processes are attached
  bool json = false;   // one JSON report on stdout (tools/cmd_gc.cpp)
};
int run_rm(const RmOptions& options, std::FILE* out);
void add_rm_command(CLI::App& app);

struct GcOptions {
  bool dry_run = false;
  bool json = false;  // one JSON report on stdout instead of the lines
};
// Removes abandoned channels and leftover shared-memory objects, one line each.
int run_gc(const GcOptions& options, std::FILE* out);
void add_gc_command(CLI::App& app);

}  // namespace shmbus::tools
