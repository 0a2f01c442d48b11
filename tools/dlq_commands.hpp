// `shmbus dlq ls|show|replay CHANNEL`: the dead letters of CHANNEL's consumer groups, read from
// its dead-letter channel (`CHANNEL.dlq`, or --dlq) through tools/dlq_source.hpp, with the
// conventions of tools/commands.hpp: an options struct, run_X(options, out) returning the exit
// code (never throwing; errors on stderr prefixed "shmbus dlq X: "), add_dlq_command(app).
//
// Exit codes: 0 success (an empty dead-letter channel lists nothing and exits 0); 1 the
// dead-letter channel does not exist or cannot be read, a record in it is not a dead letter
// (reported with its sequence, skipped), a dead letter asked for is not there, or a republish
// failed; 2 bad arguments.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tools/format.hpp"

namespace CLI {
class App;
}

namespace shmbus::tools {

// Where the dead letters of `channel` are.
struct DlqWhere {
  std::string channel;      // the channel the dead letters came from
  std::string dlq;          // its dead-letter channel; empty: dead_letter_channel(channel)
  std::string journal_dir;  // the dead-letter channel's journal; empty: as its control says
  std::string dlq_name() const;
};

// Which dead letters: by their sequence on the dead-letter channel, by their original sequence,
// or all of them. A letter is chosen when any of them matches.
struct DlqSelection {
  std::vector<std::uint64_t> sequences;
  std::vector<std::uint64_t> originals;
  bool all = false;
};

struct DlqLsOptions {
  DlqWhere where;
  bool json = false;  // one JSON object a line (tools/dlq_format.hpp, docs/dead-letters.md)
};
// One line per dead letter, in dead-letter order.
int run_dlq_ls(const DlqLsOptions& options, std::FILE* out);

struct DlqShowOptions {
  DlqWhere where;
  DlqSelection select;
  // text: every field and a hex dump of the payload; json: ls's object with payload_hex and
  // payload_text; raw: the original record as tail's raw frame (its original sequence and time),
  // which `shmbus pub --format raw` republishes; payload: the payload bytes alone.
  RecordFormat format = RecordFormat::text;
};
int run_dlq_show(const DlqShowOptions& options, std::FILE* out);

struct DlqReplayOptions {
  DlqWhere where;
  DlqSelection select;
  std::string to_channel;  // empty: where.channel
  bool dry_run = false;    // say what would be republished, publish nothing
  bool json = false;       // one JSON object per dead letter instead of the text lines
  std::int64_t timeout_ms = 5000;  // how long one record may wait for back-pressure to clear
};
// Republishes the chosen letters' payloads, in dead-letter order, printing for each which
// sequence it got. Stops at the first publish that times out (nothing after it is published, so
// the order holds); a letter that cannot be republished (no payload, too large, from another
// channel) is reported and skipped.
int run_dlq_replay(const DlqReplayOptions& options, std::FILE* out);

void add_dlq_command(CLI::App& app);

}  // namespace shmbus::tools
