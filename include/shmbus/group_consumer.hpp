// Consumer groups: a work queue on a channel. Every record of the channel goes to exactly one live
// member of the group; members pull work (none idles while another has a backlog), acknowledge
// what they finished, and what a member does not acknowledge in time, or held when its process
// died, is delivered again to another member, marked redelivered, with its attempt count. After
// max_attempts a record goes to the dead-letter channel (`<channel>.dlq`). Several groups and
// plain subscribers coexist on one channel, each seeing the whole stream.
//
//   shmbus::GroupOptions options;
//   options.ack_timeout = std::chrono::seconds(5);
//   auto worker = shmbus::GroupConsumer::open("orders", "risk", options).value();
//   worker.poll([&](const shmbus::GroupMessage& m) {
//     if (check(m.payload)) worker.ack(m.sequence);
//     else worker.nack(m.sequence, "limit breached");
//   });
//
// The protocol, its invariants and what each failure does are in docs/groups.md. poll() and ack()
// take no lock, allocate nothing and make no system call while records flow; the group's
// housekeeping (finding expired leases and dead members, raising the group's gate) runs on a
// slow path a few times per ack timeout and when idle.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "options.hpp"
#include "result.hpp"

namespace shmbus {

struct GroupOptions {
  // block: the group gates the producers at its oldest unacknowledged record (lossless, like a
  // block subscriber); spill: it never slows them, and records it needs again after the ring
  // overwrote them are read back from the channel's journal (a journaler must be attached).
  Policy policy = Policy::block;
  // Where a new group starts. Only the member that creates the group decides; later members join
  // the group where it stands.
  StartFrom start = StartFrom::earliest;
  std::uint64_t start_sequence = 0;  // StartFrom::sequence
  // A record delivered and neither acked nor nacked for this long is taken back and delivered
  // again (to any member). A record is also taken back at once when its member leaves, and once
  // its member's process is found dead.
  std::chrono::nanoseconds ack_timeout = std::chrono::seconds(10);
  // Deliveries of one record before it goes to the dead-letter channel instead (1 to 1000).
  std::uint32_t max_attempts = 5;
  // Records the group may have delivered but not yet retired (all acked, dead-lettered or lost up
  // to them), a power of two (64 to 1 << 20): the furthest one member may run ahead of the oldest
  // unacked record. Each costs 64 bytes of the group's shared memory.
  std::uint32_t window = 4096;
  // Where dead letters go; empty: dead_letter_channel(channel), i.e. "<channel>.dlq".
  std::string dead_letter_channel;
  // Per-key order: records with the same key (Publisher's tagged records) are never held by two
  // members at once and are delivered in sequence order; records without a key go to anyone.
  bool keyed = false;
  std::chrono::milliseconds open_timeout{2000};  // waiting for the channel to appear
  // Joining a group that exists with other settings (policy, ack_timeout, max_attempts, window,
  // dead_letter_channel, keyed) is invalid_argument, naming both, unless this is set: then the
  // group's settings apply.
  bool accept_existing = false;
};

// One record as a member gets it. `payload` and `key` point into a copy owned by the
// GroupConsumer, valid only during the handler call (the next record of the same poll reuses it):
// a record is never handed on in place, because another member may be given it again and the
// producers may reuse its bytes once it is acked. Copy what must outlive the call.
struct GroupMessage {
  std::uint64_t sequence;
  std::int64_t timestamp_ns;  // publish time, nanoseconds since the Unix epoch
  std::span<const std::byte> payload;
  std::span<const std::byte> key;  // empty: no key
  std::uint16_t message_type;       // 0: none (Publisher's RecordTag)
  bool redelivered;     // an earlier delivery of this record was not acknowledged
  std::uint32_t attempt;  // 1 for the first delivery
};

enum class AckStatus : std::uint8_t {
  ok,
  // The record was taken back from this member (its ack timeout passed, or the group found this
  // process stalled past it) and belongs to another member now, or is already retired: this
  // member's work on it must not count. fenced() counts these.
  fenced,
  not_held,  // this member was never given that sequence (or already acked or nacked it)
};
const char* to_string(AckStatus status) noexcept;

enum class GroupStatus : std::uint8_t {
  ok,
  corrupt,  // the group's shared state or the ring holds values no shmbus writer produces
  // Spill group: a record it needed was neither in the ring nor in the journal; it was retired
  // as lost (lost() counts it, last_error() says which).
  journal_unavailable,
};

namespace detail {
struct GroupState;  // ipc/group_state.hpp
}

class GroupConsumer {
 public:
  // Joins `group` on `channel`, creating the group with `options` if it does not exist.
  static Result<GroupConsumer> open(std::string_view channel, std::string_view group,
                                    const GroupOptions& options = {});

  // A moved-from GroupConsumer may only be destroyed or assigned to.
  GroupConsumer(GroupConsumer&&) noexcept;
  GroupConsumer& operator=(GroupConsumer&&) noexcept;
  // Leaves the group: records this member still holds are delivered again to others at once.
  ~GroupConsumer();

  // Delivers up to max_messages records to on_message(const GroupMessage&), taking back expired
  // and orphaned records first (redeliveries), then new ones. Returns how many were delivered.
  // Each must later be acked or nacked (from this thread, between or inside polls).
  template <class Handler>
  std::size_t poll(Handler&& on_message, std::size_t max_messages = 64);

  // Done with `sequence`: it is retired and never delivered again.
  AckStatus ack(std::uint64_t sequence) noexcept;
  // Acks every record this member holds up to and including `sequence`; returns how many.
  std::size_t ack_through(std::uint64_t sequence) noexcept;
  // Gives `sequence` back now: it is delivered again (to any member), or, if this was its
  // max_attempts-th delivery, goes to the dead-letter channel with `reason`.
  AckStatus nack(std::uint64_t sequence, std::string_view reason) noexcept;
  // Confirms this member still holds `sequence` and pins it: from now on it is taken back only if
  // this process dies (or the member leaves), never because the ack timeout passed. For a member
  // about to make its work on the record durable (the exactly-once helper, exactly_once.hpp): a
  // record pinned here cannot be given to another member while this one commits it, so a member
  // stalled in that window delays the record instead of having it done twice. fenced if it was
  // already taken back: the work must then be dropped.
  AckStatus pin(std::uint64_t sequence) noexcept;
  // Every sequence below this is retired (acked, dead-lettered or lost) and will never be
  // delivered again (one load of the group's shared state).
  std::uint64_t retired_through() const noexcept;

  // Waits until work may be ready (new records, or records to take back), up to `timeout`: spins
  // for `spin`, then sleeps on the channel's futex in short slices, running the group's
  // housekeeping between them.
  bool wait(std::chrono::nanoseconds timeout,
            std::chrono::nanoseconds spin = std::chrono::microseconds(50)) noexcept;

  GroupStatus status() const noexcept;
  const std::string& last_error() const noexcept;
  // This member: records delivered (redeliveries included), acked, nacked, of those delivered how
  // many were redeliveries, late acks refused (fenced), records held now.
  std::uint64_t delivered() const noexcept;
  std::uint64_t acked() const noexcept;
  std::uint64_t nacked() const noexcept;
  std::uint64_t redelivered() const noexcept;
  std::uint64_t fenced() const noexcept;
  std::size_t held() const noexcept;
  // This member's index in the group (0-based, stable while it is a member) and the group's
  // settings as the creator chose them.
  std::uint32_t member_index() const noexcept;
  const GroupOptions& settings() const noexcept;

  // Per-record callback form of poll, for the non-template implementation.
  struct Sink {
    void* handler;
    void (*call)(void* handler, const GroupMessage& message);
  };
  std::size_t poll_sink(Sink sink, std::size_t max_messages);

 private:
  GroupConsumer() = default;
  std::unique_ptr<detail::GroupState> state_;
};

template <class Handler>
std::size_t GroupConsumer::poll(Handler&& on_message, std::size_t max_messages) {
  using H = std::remove_reference_t<Handler>;
  const Sink sink{const_cast<void*>(static_cast<const void*>(std::addressof(on_message))),
                  [](void* h, const GroupMessage& m) { (*static_cast<H*>(h))(m); }};
  return poll_sink(sink, max_messages);
}

// What `shmbus stat` shows of a group (read_group_stats, in stats.hpp's spirit).
struct GroupMemberStats {
  std::uint32_t index = 0;
  std::uint32_t pid = 0;
  bool alive = false;
  std::int64_t joined_ns = 0;
  std::uint64_t delivered = 0;
  std::uint64_t acked = 0;
  std::uint64_t nacked = 0;
  std::uint64_t redelivered = 0;
  std::uint64_t fenced = 0;
  std::uint64_t in_flight = 0;  // records it holds now
};

struct GroupStats {
  std::string group;
  Policy policy = Policy::block;
  bool keyed = false;
  std::int64_t ack_timeout_ns = 0;
  std::uint32_t max_attempts = 0;
  std::uint32_t window = 0;
  std::string dead_letter_channel;
  std::uint64_t next_sequence = 0;    // the next record the group hands out
  std::uint64_t retired_through = 0;  // every sequence below this is acked, dead-lettered or lost
  std::uint64_t in_flight = 0;        // delivered, not yet acked
  std::uint64_t waiting_redelivery = 0;
  std::uint64_t acked = 0;
  std::uint64_t redelivered = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t lost = 0;           // spill: neither in the ring nor in the journal
  std::uint64_t fenced = 0;         // late acks refused
  std::uint64_t lag = 0;            // records published and not yet handed out
  std::int64_t oldest_unacked_age_ns = 0;  // 0 when nothing is in flight
  std::vector<GroupMemberStats> members;
  std::string problem;  // non-empty when the group's shared state failed validation
};

// Every group on `channel` (its current incarnation). Reads only; a damaged group is reported in
// its `problem`, the others still listed.
Result<std::vector<GroupStats>> read_group_stats(std::string_view channel);

}  // namespace shmbus
