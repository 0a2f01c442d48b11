// What a channel, a publisher and a subscriber are opened with, and what a channel says of itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shmbus {

// What a slow subscriber does to the producers.
enum class Policy : std::uint8_t {
  block = 1,  // lossless: gates the producers, which see back-pressure when it falls a lap behind
  drop = 2,   // never slows producers; lost messages are counted by sequence gap and reported
  spill = 3,  // never slows producers; catches up from the journal (needs a journaler)
};
const char* to_string(Policy policy) noexcept;

enum class StartFrom : std::uint8_t {
  latest,    // the next message published
  earliest,  // the oldest message still in the ring
  sequence,  // SubscriberOptions::start_sequence (or the earliest retained if it is gone)
};

struct ChannelOptions {
  std::uint64_t capacity = 4 << 20;      // data bytes, a power of two
  std::uint32_t max_message = 64 << 10;  // largest payload; at most capacity / 4 - 32
  // File mode of the ring. It says who is trusted (docs/security.md): the classes it lets write
  // (owner, group, others) may publish, gate the producers (block subscribers), journal and
  // remove; the classes it lets only read may consume with drop or spill, registering in the
  // readers' registry, and can neither slow nor evict anyone. The channel's other objects get
  // modes derived from this one (and from gating_group), which the kernel enforces.
  unsigned mode = 0660;
  std::chrono::milliseconds open_timeout{2000};  // waiting for a channel being created
  // One producer process at a time (enforced: a second publisher gets ErrorCode::busy while the
  // first one's process lives). Claims then need no compare-and-swap.
  bool single_producer = false;
  // This publisher keeps its message and byte counters in the control segment (`shmbus stat`):
  // two relaxed stores to its own cache line per commit. Off only to measure what they cost.
  bool counters = true;
  // How many subscribers (1 to 4096) and publishers (1 to 1024) may be attached at once; the
  // subscriber_slots + 1st subscriber gets ErrorCode::busy. Each subscriber slot costs 256 bytes
  // plus an 8256-byte latency histogram of shared memory, each producer slot 64 bytes; producers
  // look only at the slots ever used, so unused ones cost nothing else. Like capacity, they are
  // the creator's choice: an opener asking for other counts is refused unless accept_existing.
  std::uint32_t subscriber_slots = 64;
  std::uint32_t producer_slots = 32;
  // A Unix group (gid) trusted to gate the producers without the right to publish: its members
  // get write access to the control segment and the use lock (so they may attach block
  // subscribers and journalers), not to the ring. The creator must belong to it (or be root).
  std::optional<std::uint32_t> gating_group;
  // Opening a channel that exists with another configuration (capacity, max_message,
  // single_producer, subscriber_slots, producer_slots) is an error (invalid_argument, naming
  // both) unless this is set: then the existing configuration is used, as ChannelInfo tells.
  bool accept_existing = false;
};

// A snapshot of a channel's identity, as the creator wrote it.
struct ChannelInfo {
  std::string name;
  std::uint64_t capacity = 0;
  std::uint32_t max_message = 0;
  std::uint64_t incarnation = 0;
  bool single_producer = false;
  std::uint32_t subscriber_slots = 0;  // ChannelOptions::subscriber_slots of the creator
  std::uint32_t producer_slots = 0;    // ChannelOptions::producer_slots of the creator
};

// Which records a subscriber hands to its handler; the subscriber skips the others itself (the
// producers do no work for it). With `key`, records whose key is exactly these bytes (records
// without a key never match); with `message_types`, records whose message type is one of them (0
// matches records without a type); with both, records that match both. Empty: every record.
struct MessageFilter {
  std::optional<std::string> key;           // at most kMaxKeyLength (256) bytes
  std::vector<std::uint16_t> message_types;
  bool empty() const noexcept { return !key && message_types.empty(); }
};

struct SubscriberOptions {
  Policy policy = Policy::block;
  StartFrom start = StartFrom::latest;
  std::uint64_t start_sequence = 0;
  // A named subscriber resumes where the last process under that name stopped.
  std::string name;
  // A block subscriber whose process has died is evicted once it has not moved for this long.
  std::chrono::nanoseconds liveness_timeout = std::chrono::seconds(5);
  // A claim not committed for this long is marked abandoned (and its sequence counted lost).
  std::chrono::nanoseconds abandon_timeout = std::chrono::seconds(1);
  std::chrono::milliseconds open_timeout{2000};
  // poll() never publishes how far this subscriber has read: release(cursor()) does, when the
  // application is done with the records (the journaler: when their writes have completed). A
  // block subscriber's records stay in place, unoverwritten, until released; a named one resumed
  // after a crash starts at the last released cursor (at-least-once).
  bool manual_release = false;
  // Records each message's end-to-end latency (publish timestamp to delivery) in this
  // subscriber's histogram in the control segment, for `shmbus stat`. Costs a clock read (TSC)
  // per poll and three plain stores per message. The delivery time is read once per poll, before
  // the first handler call, so a long handler does not inflate the latencies of the batch after
  // it; a message published after that read (a block poll keeps reading while handlers run) gets
  // a fresh one. Messages caught up from the journal (spill) each get their own.
  bool latency_histogram = false;
  // Records that do not match are skipped: not handed on, counted by Subscriber::filtered() (not
  // as lost), and next_sequence() moves past them. A loss reported just before a skipped record
  // goes with the next record delivered.
  MessageFilter filter;
};

}  // namespace shmbus
