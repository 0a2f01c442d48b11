// shmbus record CHANNEL --dir DIR: runs the journaler as a process (see include/shmbus/journaler.hpp).
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "shmbus/journaler.hpp"

namespace CLI {
class App;
}

namespace shmbus::tools {

enum class OnWriteError : std::uint8_t {
  wait,  // keep the records (gating the producers, or dropping into a gap record if lossy) and
         // retry until the cause is gone
  exit,  // exit 1 once writes have failed for `give_up_ms`
};

struct RecordOptions {
  JournalerOptions journaler;  // channel, writer.dir, fsync, segments, retention, ...
  OnWriteError on_error = OnWriteError::wait;
  std::int64_t give_up_ms = 0;       // with exit: how long writes may fail first
  double status_interval_s = 0;      // print a status line to stderr this often (0: never)
  bool quiet = false;                // no start and summary lines
  bool json = false;                 // at exit, one JSON report (RecordReport) on stdout
};

// How a recording went, for --json (record_json; docs/observability.md lists the fields).
struct RecordReport {
  std::string channel;
  std::string dir;
  // What recovery found in the directory; nullopt if the journal could not be opened.
  std::optional<journal::RecoveryReport> recovery;
  std::optional<JournalerStats> stats;  // the closing figures; nullopt if it never opened
  std::optional<std::string> error;     // why recording stopped with exit 1; nullopt: a signal
};
std::string record_json(const RecordReport& report);

// Parses "never", "batch" or "interval:MS" into the writer options; false if it is none of them.
bool parse_fsync_policy(const std::string& text, journal::WriterOptions& out);

// Records until SIGINT/SIGTERM (exit 0 after draining) or a hard error (exit 1). Progress and
// errors go to `err`; with options.json the report goes to `out` whatever the outcome.
int run_record(const RecordOptions& options, std::FILE* err, std::FILE* out);
void add_record_command(CLI::App& app);

}  // namespace shmbus::tools
