// What `shmbus ls`, `stat`, `inspect`, `rm` and `gc` print, as pure functions over values read by
// shmbus/stats.hpp and core/ring_walk.hpp (no I/O, no clock), so that tests build the inputs by
// hand. docs/observability.md documents every field and metric; the names are a contract that
// users' scripts depend on.
//
//   stat:  stat_text (a human page), stat_json (one JSON document on one line), stat_prometheus
//          (the text exposition format, for a node exporter textfile collector); each also shows
//          the channel's consumer groups (read_group_stats), given beside its read;
//   ls:    ls_text (an aligned table), ls_json;
//   rates: measure_rates over two reads of one channel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/latency_histogram.hpp"
#include "core/ring_walk.hpp"
#include "shmbus/bridge_stats.hpp"
#include "shmbus/group_consumer.hpp"
#include "shmbus/stats.hpp"

namespace shmbus::tools {

// --- rates (observe_format.cpp) -----------------------------------------------------------------

// What changed between two reads of one channel, per second of CLOCK_MONOTONIC between them.
struct ChannelRates {
  // Two reads of the same incarnation a positive interval apart. False with a single read, and
  // when the channel was re-created in between; every rate is then 0.
  bool measured = false;
  bool incarnation_changed = false;  // the two reads saw different incarnations
  double interval_s = 0;             // between the reads; 0 with a single read
  double messages_per_s = 0;         // published_messages
  double bytes_per_s = 0;            // published_bytes
  // Parallel to the later read's producers and subscribers. A slot whose occupant changed (other
  // pid, start time or attach time) has rate 0 and no interval latency.
  std::vector<double> producer_messages_per_s;    // its `published`
  std::vector<double> subscriber_messages_per_s;  // its `received`
  // The latencies recorded between the reads (core::difference), for subscribers that record one
  // in both reads.
  std::vector<std::optional<core::LatencySnapshot>> subscriber_latency;
};

// Rates from `before` to `after` (reads of the same channel, `before` first). With no `before`,
// or reads of two incarnations, everything is 0 (measured = false); the caller shows `after`.
ChannelRates measure_rates(const ChannelStats* before, const ChannelStats& after);

// count per second over [since_ns, now_ns] (CLOCK_REALTIME); 0 if that span is not positive.
double average_rate(std::uint64_t count, std::int64_t since_ns, std::int64_t now_ns) noexcept;

// --- latency (observe_format.cpp) ---------------------------------------------------------------

struct LatencySummary {
  std::uint64_t count = 0;
  std::uint64_t p50_ns = 0;
  std::uint64_t p99_ns = 0;
  std::uint64_t p999_ns = 0;
  std::uint64_t max_ns = 0;
  std::uint64_t sum_ns = 0;
};
LatencySummary summarize_latency(const core::LatencySnapshot& snapshot) noexcept;

// --- words (observe_format.cpp) -----------------------------------------------------------------

// "none" (no journaler ever attached), "recording" (its process runs) or "stopped".
const char* journal_status(const ChannelStats& stats) noexcept;

// The incarnation as 16 lowercase hex digits.
std::string incarnation_hex(std::uint64_t incarnation);

// Producers whose process runs.
std::uint64_t alive_producers(const ChannelStats& stats) noexcept;

// A subscriber counts as attached and alive (shmbus_subscriber_alive): its process runs and its
// slot is neither detached nor evicted.
bool subscriber_running(const SubscriberStats& subscriber) noexcept;

// The journal's lag: sequences claimed on the channel that are not in the journal files yet.
std::uint64_t journal_lag(const ChannelStats& stats) noexcept;

// The live processes attached to a channel, for `shmbus rm`: alive producers, attached subscribers
// whose process runs, a journaler whose process runs, and the creator if it still runs. One entry
// per pid and role, in that order.
struct LiveProcess {
  std::uint32_t pid = 0;
  std::string role;  // "producer", "subscriber 'NAME'" or "subscriber", "journaler", "creator"
};
std::vector<LiveProcess> live_processes(const ChannelStats& stats);

// --- stat (stat_json.cpp, stat_prometheus.cpp, stat_text.cpp) -----------------------------------

// `groups` below: the channel's consumer groups (read_group_stats of the same channel), in the
// order read. A group with a `problem` is shown as damaged, with only its name and the problem.
// `bridges`: the channel's NATS JetStream bridges (read_bridge_stats), a damaged one likewise.

// One JSON document, on one line without a newline (the schema is in docs/observability.md).
std::string stat_json(const ChannelStats& stats, const ChannelRates& rates,
                      const std::vector<GroupStats>& groups = {},
                      const std::vector<BridgeStats>& bridges = {});

// The Prometheus text exposition format: # HELP and # TYPE before each metric family, one sample a
// line, ending in a newline. Families with no sample (no journal, no latency) are left out.
std::string stat_prometheus(const ChannelStats& stats,
                            const std::vector<GroupStats>& groups = {},
                            const std::vector<BridgeStats>& bridges = {});

// The human page, ending in a newline. `watch`: the latency table also shows the last interval.
// The groups section comes after the tables, the bridges section last, each only when the
// channel has some.
std::string stat_text(const ChannelStats& stats, const ChannelRates& rates, bool watch,
                      const std::vector<GroupStats>& groups = {},
                      const std::vector<BridgeStats>& bridges = {});

// A label value escaped for the exposition format: backslash, double quote and newline.
std::string escape_label_value(std::string_view value);

// All channels in one exposition: each family's # HELP and # TYPE once, then its samples for every
// channel in the order given (each sample carries its `channel` label). groups[i] are the groups of
// channels[i] (missing: none), bridges[i] its bridges. stat_prometheus(s, g, b) is
// stat_prometheus_all({s}, {g}, {b}).
std::string stat_prometheus_all(const std::vector<ChannelStats>& channels,
                                const std::vector<std::vector<GroupStats>>& groups = {},
                                const std::vector<std::vector<BridgeStats>>& bridges = {});

// --- stat --watch (stat_watch.cpp) --------------------------------------------------------------

struct WatchFrameStyle {
  std::string clock;       // the local time, shown at the right end of the header line
  std::string hint;        // the last line ("every 2 s, q quits"); may be empty
  bool colour = false;     // SGR colours for states, headings and alarms
  std::size_t width = 80;  // no line is wider than this many columns
};

// One frame of `stat --watch` for a terminal: every field of stat_text (with the last interval's
// latency), laid out so that no line is wider than style.width columns. Tables too wide for it are
// split into column groups that repeat the slot (and name) columns; names too long for their
// column keep their start and end around "..."; long field lines wrap at their commas. Control
// characters in names are shown as '?', so a name cannot move the cursor.
std::string stat_watch_frame(const ChannelStats& stats, const ChannelRates& rates,
                             const WatchFrameStyle& style,
                             const std::vector<GroupStats>& groups = {});

// The columns `text` takes on a terminal: its UTF-8 code points, without SGR escape sequences
// ("\x1b[...m").
std::size_t display_width(std::string_view text);

// `text` if it fits in `width` columns, else its start and its end around "..." in exactly
// `width` columns (cut at code point boundaries; just the start when width < 5).
std::string truncate_middle(std::string_view text, std::size_t width);

// --- ls (observe_format.cpp) --------------------------------------------------------------------

// One channel of the listing: its latest read and rates, or the reason it cannot be read.
struct LsEntry {
  std::string name;
  std::optional<ChannelStats> stats;  // nothing: `error` says why
  ChannelRates rates;
  std::string error;
};
std::string ls_json(const std::vector<LsEntry>& entries);  // one line, no newline
std::string ls_text(const std::vector<LsEntry>& entries);  // a table, ending in a newline

// --- inspect (observe_format.cpp) ---------------------------------------------------------------

// "data", "padding", "abandoned", or "unknown(N)".
std::string record_type_name(std::uint16_t type);

// The verdict lines of a walk, without newlines: "walk: OK, R records from seq A to B" (R data
// records; "walk: OK, 0 records" for an empty ring), or one "PROBLEM at position P: what" per
// problem; then a "note: claim at position P is not committed while later records are: ..." line
// when the walk stopped at such a claim.
std::vector<std::string> walk_verdict(const core::RingWalk& walk);

// --- tables (stat_text.cpp) ---------------------------------------------------------------------

enum class Align : std::uint8_t { left, right };

// Rows (the first is the header) as aligned columns two spaces apart, each line prefixed with
// `indent` and ending in a newline. `align` gives each column's alignment (missing: left). The
// last column is not padded, so no line ends in spaces.
std::string render_table(const std::vector<std::vector<std::string>>& rows,
                         const std::vector<Align>& align, std::string_view indent = "");

}  // namespace shmbus::tools
