// Looking at channels from outside: what every producer, subscriber and journaler of a channel is
// doing, read from the channel's shared memory through read-only mappings. This is what `shmbus ls`,
// `stat` and `gc` show (docs/observability.md documents every field); applications may call it too.
//
// Reading never perturbs a channel: nothing is written, no slot is taken, and a user who may only
// read the segments can call it. Values written by peers are treated as untrusted: a garbage slot
// shows as such (`corrupt` fields below), it never crashes the reader.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "detail/core_headers.hpp"
#include "options.hpp"
#include "result.hpp"

namespace shmbus {

// How a subscriber is doing, in the words the tools print.
enum class SubscriberState : std::uint8_t {
  alive,     // its process runs and it is less than half a ring behind
  lagging,   // its process runs and it is at least half a ring behind
  lapped,    // drop or spill policy, more than a whole ring behind: it is losing (or spilling)
  dead,      // its process is gone but its slot is still attached (a block one still gates)
  evicted,   // its process died and it was evicted after its liveness timeout
  detached,  // a named subscriber that closed cleanly; keeps its position for a restart
};
const char* to_string(SubscriberState state) noexcept;

struct SubscriberStats {
  std::uint32_t slot = 0;  // index in the control segment
  std::string name;        // empty for an anonymous subscriber
  std::uint32_t pid = 0;
  std::uint64_t start_time = 0;  // /proc/PID/stat field 22 (with the pid: one process)
  bool alive = false;            // that process exists (checked in /proc when read)
  Policy policy = Policy::block;
  SubscriberState state = SubscriberState::alive;
  std::int64_t attached_ns = 0;   // CLOCK_REALTIME
  std::int64_t heartbeat_ns = 0;  // CLOCK_REALTIME of its last sign of life; 0: none yet
  std::uint64_t position = 0;       // ring bytes it is done with
  std::uint64_t next_sequence = 0;  // the sequence it expects next
  std::uint64_t lag_messages = 0;   // sequences claimed that it has not consumed
  std::uint64_t lag_bytes = 0;      // ring bytes between it and the head
  std::uint64_t received = 0;       // messages delivered to it
  std::uint64_t lost = 0;           // sequences it lost (drop policy, abandoned claims)
  std::uint64_t spilled = 0;        // of `received`, how many came from the journal (spill)
  std::uint64_t evictions = 0;      // times this slot was evicted
  // Its end-to-end latency (publish to delivery) since it attached, when it records one
  // (SubscriberOptions::latency_histogram).
  std::optional<core::LatencySnapshot> latency;
};

struct ProducerStats {
  std::uint32_t slot = 0;
  std::uint32_t pid = 0;
  std::uint64_t start_time = 0;
  bool alive = false;
  std::int64_t attached_ns = 0;
  std::uint64_t published = 0;        // messages it committed (0 if it keeps no counters)
  std::uint64_t published_bytes = 0;  // their payload bytes
  bool claim_in_flight = false;       // between a claim and its commit right now
};

struct JournalStats {
  std::uint32_t pid = 0;
  bool alive = false;
  std::string dir;
  std::uint64_t written_sequence = 0;  // every sequence up to it is in the journal files
  std::uint64_t durable_sequence = 0;  // ... and fdatasync'ed
  std::int64_t heartbeat_ns = 0;       // CLOCK_REALTIME of its last progress report
};

struct ChannelStats {
  std::string name;
  std::uint64_t incarnation = 0;
  std::uint64_t capacity = 0;
  std::uint32_t max_message = 0;
  bool single_producer = false;
  // How many subscriber and producer slots the channel has (ChannelOptions of its creator). Only
  // the slots below the highest ever taken are read.
  std::uint32_t subscriber_slots = 0;
  std::uint32_t producer_slots = 0;
  std::int64_t created_ns = 0;
  std::uint32_t creator_pid = 0;
  bool creator_alive = false;

  std::uint64_t head_position = 0;  // ring bytes ever claimed
  std::uint64_t head_sequence = 0;  // the last sequence claimed; 0 if none yet
  // Committed by producers (live ones plus those that left); abandoned claims are not counted.
  std::uint64_t published_messages = 0;
  std::uint64_t published_bytes = 0;
  std::uint64_t back_pressure_events = 0;
  std::uint64_t evictions = 0;
  std::uint64_t abandoned_repaired = 0;  // claims marked abandoned by peers

  std::vector<ProducerStats> producers;      // attached producer slots
  std::vector<SubscriberStats> subscribers;  // occupied subscriber slots, by slot index
  std::optional<JournalStats> journal;       // the current or most recent journaler
  // Occupied slots holding values no shmbus process writes (a peer scribbled over the control
  // segment): left out of the lists above, counted here.
  std::uint32_t corrupt_slots = 0;

  // No live process is attached: no producer, subscriber or journaler runs, and the creator is
  // gone. `shmbus gc` removes such channels.
  bool abandoned = false;
  std::int64_t sampled_ns = 0;            // CLOCK_REALTIME when read
  std::int64_t sampled_monotonic_ns = 0;  // CLOCK_MONOTONIC when read (for rates)
};

// Reads one channel. Errors: not_found, permission_denied, version_mismatch, corrupt.
Result<ChannelStats> read_channel_stats(std::string_view channel);

// The names of every channel on this host (ring objects in /dev/shm), sorted.
std::vector<std::string> list_channels();

// A shared-memory object that belongs to no usable channel: a control segment whose ring is gone
// or was re-created, or a creator's temporary ring whose process died mid-creation. Objects
// written less than a minute ago are never listed: a creator makes the control segment before it
// links the ring, so a young one may belong to a channel being created.
struct ShmLeftover {
  std::string object;  // the object's name (without /dev/shm/)
  std::string why;
};
std::vector<ShmLeftover> list_leftovers();
// Removes one leftover object by name (gc). not_found if it is already gone; an error naming the
// object and why (permission_denied, with errno's text) if it cannot be unlinked.
Result<void> remove_leftover(std::string_view object);

// gc's removal: removes `channel` only if it is abandoned AND no process maps it as a user (every
// Publisher and Subscriber holds a shared lock on the ring while it maps it, which the kernel
// drops when the process dies). It holds the exclusive lock while it checks and unlinks, so no
// process can start using the channel in between; one that opened it just before finds it removed
// and opens (or creates) the channel anew. True if it removed the channel (with `dry_run`: would
// have), false if the channel is in use; remove_channel's error if an object could not be
// unlinked.
Result<bool> remove_channel_if_abandoned(std::string_view channel, bool dry_run = false);

}  // namespace shmbus
