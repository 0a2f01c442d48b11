// What `shmbus stat` shows of a channel's NATS JetStream bridges (`shmbus bridge out|in`): read from
// each bridge object of the channel's current incarnation through a read-only mapping. Values a
// bridge process wrote are untrusted: a damaged object is listed with its `problem`, never trusted
// and never a crash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "result.hpp"

namespace shmbus {

struct BridgeStats {
  std::string role;        // "out" (channel -> stream) or "in" (stream -> channel)
  std::string name;        // the object's name after "bridge-<role>." (the stream it bridges)
  std::string stream;      // JetStream stream
  std::string subject;     // NATS subject
  std::string url;         // NATS server URL
  std::string host;        // the host name the bridge labels records with (Shmbus-Origin)
  std::string state;       // connecting, running, recovering, holding back, stopped
  std::string last_error;  // the last error the bridge reported; empty: none
  std::string problem;     // non-empty when the object failed validation (the rest may be zero)
  std::int32_t pid = 0;    // the bridge process
  bool alive = false;      // that process runs (pid and start time checked in /proc)
  std::int64_t heartbeat_ns = 0;  // CLOCK_REALTIME of the bridge's last sign of life; 0: none
  // Counters, as the bridge stores them.
  std::uint64_t window = 0;         // out: the most unacknowledged publishes allowed
  std::uint64_t in_flight = 0;      // out: published, not yet acknowledged
  std::uint64_t acked_through = 0;  // out: every sequence up to this is in the stream
  std::uint64_t head_sequence = 0;  // out: the channel's last claimed sequence when last looked
  std::uint64_t published = 0;      // out: records and GAPs the stream acknowledged
  std::uint64_t applied = 0;        // in: records committed into the local channel
  std::uint64_t resends = 0;        // out: publishes sent again after an error or a missing ack
  std::uint64_t recoveries = 0;     // out: recovery passes (errors, timeouts, reconnects)
  std::uint64_t gaps = 0;           // GAP records: published (out) or laid out locally (in)
  std::uint64_t gap_sequences = 0;  // the sequences those GAPs cover
  std::uint64_t duplicates = 0;     // in: redelivered messages already applied
  std::uint64_t own_skipped = 0;    // in: messages that came from this host (never sent back)
  std::uint64_t stream_gaps = 0;    // in: sequences the stream discarded before we read them
  std::uint64_t invalid = 0;        // in: messages without valid shmbus headers (never applied)
  std::uint64_t lag_records = 0;    // records behind: out: head - acked; in: pending in the stream
  std::uint64_t lag_ns = 0;         // time behind (see docs/bridge.md)
  std::uint64_t origin_incarnation = 0;  // in: the origin incarnation of the last applied record
  std::uint64_t origin_seq = 0;          // in: its origin sequence
  std::uint64_t stream_seq = 0;          // in: its stream sequence
};

// Every bridge object of `channel` (its current incarnation), sorted by role and name. Reads only;
// a damaged object is reported in its `problem`, the others still listed. An error only when the
// channel itself cannot be opened.
Result<std::vector<BridgeStats>> read_bridge_stats(std::string_view channel);

}  // namespace shmbus
