// shmbus record CHANNEL --dir DIR: runs the journaler as a process (see include/shmbus/journaler.hpp).
#pragma once

#include <cstdint>
#include <cstdio>
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
};

// Parses "never", "batch" or "interval:MS" into the writer options; false if it is none of them.
bool parse_fsync_policy(const std::string& text, journal::WriterOptions& out);

// Records until SIGINT/SIGTERM (exit 0 after draining) or a hard error (exit 1).
int run_record(const RecordOptions& options, std::FILE* err);
void add_record_command(CLI::App& app);

}  // namespace shmbus::tools
