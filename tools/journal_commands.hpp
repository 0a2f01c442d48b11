// The journal subcommands of the `shmbus` command, with the conventions of tools/commands.hpp:
// an options struct, run_X(options, out) returning the exit code (never throwing; errors go to
// stderr prefixed "shmbus X: "), and add_X_command(app) registering it with CLI11.
//
//   shmbus journal info|verify|dump --dir DIR ...   (cmd_journal.cpp)
//   shmbus replay --dir DIR ...                      (cmd_replay.cpp)
//
// Exit codes: 0 success; 1 a runtime error, or damage found (verify, dump, replay); 2 bad
// arguments.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "tools/format.hpp"

namespace CLI {
class App;
}

namespace shmbus::tools {

// --- shmbus journal info|verify|dump ------------------------------------------------------------

struct JournalInfoOptions {
  std::string dir;
  bool json = false;
};
// Prints journal::verify's report (journal/verify.hpp) as a description: per segment file,
// first..last sequence, time range, bytes, records, gaps; then totals.
int run_journal_info(const JournalInfoOptions& options, std::FILE* out);

struct JournalVerifyOptions {
  std::string dir;
  bool json = false;
};
// Prints journal::verify's verdict: every record's checksum and sequence in every segment, and the
// sequence from segment to segment (journal/continuity.hpp). Exit 0 if there is no damage (a torn
// tail at the end of the newest segment is reported but is not damage), 1 otherwise.
int run_journal_verify(const JournalVerifyOptions& options, std::FILE* out);

struct JournalDumpOptions {
  std::string dir;
  std::optional<std::uint64_t> from;   // a sequence; default: the first retained
  std::optional<std::uint64_t> count;  // records printed (gap records included)
  RecordFormat format = RecordFormat::text;
};
// Prints records, one line each (record_line of tools/format.hpp, as `shmbus tail` does; gap
// records as gap_line). Damage is reported on stderr and skipped; the exit code is then 1.
int run_journal_dump(const JournalDumpOptions& options, std::FILE* out);

void add_journal_command(CLI::App& app);

// --- shmbus replay ------------------------------------------------------------------------------

struct ReplayOptions {
  std::string dir;
  std::optional<std::uint64_t> from_sequence;
  std::optional<std::int64_t> from_time_ns;
  std::optional<std::uint64_t> to_sequence;  // inclusive
  std::optional<std::int64_t> to_time_ns;    // inclusive
  // Empty: print records to `out`. Otherwise republish them into this channel (created with
  // capacity/max_message if it does not exist), which assigns its own sequences.
  std::string to_channel;
  double speed = 0;  // divide the original spacing by this; 0: as fast as possible ("max")
  RecordFormat format = RecordFormat::text;  // printing: any RecordFormat (raw and payload binary)
  std::optional<std::uint64_t> count;        // stop after this many data records
  // At the end of the journal, wait for more (JournalReader::refresh) until a stop is requested
  // (then exit 0), count or the --to bound.
  bool follow = false;
  std::uint64_t capacity = 4 << 20;
  std::optional<std::uint32_t> max_message;
  // Republishing: prefix each payload with the original sequence and timestamp (16 bytes, u64 and
  // i64 little endian), so consumers of the channel still see them.
  bool envelope = false;
  std::int64_t timeout_ms = 5000;  // how long one message may wait for back-pressure to clear
};
int run_replay(const ReplayOptions& options, std::FILE* out);
void add_replay_command(CLI::App& app);

// --- shared by both -----------------------------------------------------------------------------

// The line for a gap record:
//   text: # gap: <count> sequences lost from seq=<seq> (seen <ISO time>)
//   json: {"type":"gap","seq":s,"count":n,"time_ns":t,"time":"<ISO>"}
std::string gap_line(std::uint64_t sequence, std::uint64_t count, std::int64_t seen_ns,
                     RecordFormat format);

// A time given on the command line, in any form of tools/time_parse.hpp (relative times count
// from now). Nothing if it is none of them; parse_time_point says why.
std::optional<std::int64_t> parse_time_ns(std::string_view text);

}  // namespace shmbus::tools
