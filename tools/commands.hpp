// The subcommands of the `shmbus` command. Each one is three things:
//   - an options struct: everything the command line can say, with the documented defaults;
//   - run_X(options, ...): does the work and returns the process exit code; tests call it directly;
//   - add_X_command(app): registers the subcommand with CLI11 and runs run_X when it is chosen.
// Run functions never throw. They print errors to stderr prefixed "shmbus X: ".
//
// Exit codes (docs/observability.md lists them all): 0 success; 1 a runtime error (the channel
// cannot be opened, a publish timed out, the demo's checks failed); 2 invalid arguments (CLI11);
// 3 a wait timed out (tail's --timeout-ms without a message). Each outcome has its own code, so a
// script can tell "nothing arrived" from "you called me wrong".
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>

#include "shmbus/shmbus.hpp"
#include "tools/format.hpp"

namespace CLI {
class App;
}

namespace shmbus::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitTimedOut = 3;

// The largest --timeout-ms accepted (about 31 years), so that deadlines in nanoseconds never
// overflow.
inline constexpr std::int64_t kMaxTimeoutMs = 1'000'000'000'000;

// --- shmbus pub CHANNEL -------------------------------------------------------------------------

// What pub reads from stdin: lines, or a capture of tail/replay --format raw|json
// (tools/record_format.hpp).
enum class PubInput : std::uint8_t { lines, raw, json };

struct PubOptions {
  std::string channel;
  // Generated messages (--count N --size B); without a count, each line of the input (without its
  // newline) is one message.
  std::optional<std::uint64_t> count;
  std::uint32_t size = 64;  // at least 8: the counter
  double rate = 0;          // messages per second; 0: as fast as possible
  // Used only if the channel does not exist yet. max_message: nullopt means 64 KiB, or less if
  // the capacity allows less (capacity / 4 - 32).
  std::uint64_t capacity = 4 << 20;
  std::optional<std::uint32_t> max_message;
  std::int64_t timeout_ms = 5000;  // how long one message may wait for back-pressure to clear
  bool quiet = false;              // no summary line on stderr
  // Without a count, what stdin holds: lines (each line, without its newline, is one message), or
  // a raw or json capture whose data records are published (their loss and gap records counted).
  PubInput input = PubInput::lines;
  bool json = false;  // the report as one JSON object on stdout instead of the summary on stderr
  // Creation: the ring's mode and the gating group (ChannelOptions::mode, gating_group).
  unsigned mode = 0660;
  std::optional<std::uint32_t> gating_group;
  // An existing channel of another configuration than asked for (--capacity, --max-message) is
  // an error unless this is set; without any creation flag, any existing one is accepted.
  bool accept_existing = true;
  // --key, --message-type: every generated message or line carries them (a capture's records
  // carry their own).
  std::optional<std::string> key;
  std::uint16_t message_type = 0;
};

// The generated payload for message `counter` (1, 2, ...): bytes 0-7 hold the counter, little
// endian; byte i >= 8 holds (counter + i) mod 256. Bytes past out.size() are not written, so a
// payload shorter than 8 bytes holds the low bytes of the counter.
void fill_generated_payload(std::span<std::byte> out, std::uint64_t counter) noexcept;

// The options a command creates a channel with: `capacity`, and `max_message` or else the
// default (64 KiB) capped at what the capacity allows (capacity / 4 - 32). pub and replay share it.
// An existing channel is accepted whatever its configuration (accept_existing).
ChannelOptions channel_options_for(std::uint64_t capacity, std::optional<std::uint32_t> max_message);

// Publishes `options.count` generated messages, or else one message per line of `input`.
int run_pub(const PubOptions& options, std::FILE* input);
void add_pub_command(CLI::App& app);

// --- shmbus tail CHANNEL ------------------------------------------------------------------------

struct TailOptions {
  std::string channel;
  Policy policy = Policy::drop;  // a diagnostic tool never slows producers unless asked to
  StartFrom start = StartFrom::latest;
  std::uint64_t start_sequence = 0;    // with StartFrom::sequence
  std::optional<std::uint64_t> count;  // exit 0 after this many records
  RecordFormat format = RecordFormat::text;
  std::string name;  // a named subscriber resumes where the last one of that name stopped
  std::optional<std::int64_t> timeout_ms;  // exit 3 after this long without a message
  bool latency_histogram = false;          // SubscriberOptions::latency_histogram
  MessageFilter filter;                    // --key, --message-type
  // --group NAME: join this consumer group as a member instead (tools/tail_group.hpp). The rest
  // are the group's settings if this member creates it (policy and start above too); with none
  // of them given, an existing group is joined whatever its settings.
  std::string group;
  std::optional<std::int64_t> ack_timeout_ms;
  std::optional<std::uint32_t> max_attempts;
  bool keyed = false;
  bool group_settings_given = false;
};

// Prints each record to `out` (one line each, flushed), until count, timeout, SIGINT or SIGTERM.
int run_tail(const TailOptions& options, std::FILE* out);
void add_tail_command(CLI::App& app);

// --- shmbus demo --------------------------------------------------------------------------------

struct DemoOptions {
  std::uint64_t messages = 200'000;
  double rate = 100'000;  // messages per second
  std::uint64_t round_trips = 100'000;  // the closing measurement's, per round (demo_round_trip.hpp)
};

// Runs the multi-process demo on a fresh channel demo.<pid>; prints progress and the summary table
// to `out`. Returns 0 only if every process's checks passed.
int run_demo(const DemoOptions& options, std::FILE* out);
void add_demo_command(CLI::App& app);

// --- shmbus version, shmbus --version, shmbus completion -----------------------------------------

// `shmbus version [--json]` and the top-level --version flag (tools/build_info.hpp says what they
// print).
void add_version_command(CLI::App& app);
// `shmbus completion bash`: the script is generated from `app`'s tree when it runs, so register it
// on the top-level app; it covers every subcommand registered before or after it.
void add_completion_command(CLI::App& app);

}  // namespace shmbus::tools
