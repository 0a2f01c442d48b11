// One member's state: the group object it maps, its member slot, the gating subscriber it holds
// in the channel, the records it holds now, and the steps of the protocol (docs/groups.md):
// group_dispatch.cpp hands records out, group_acks.cpp retires them, group_housekeeping.cpp
// takes back what expired or was left by the dead and moves the group's gate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/ring_reader.hpp"
#include "ipc/channel.hpp"
#include "ipc/group_layout.hpp"
#include "ipc/group_segment.hpp"
#include "ipc/process.hpp"
#include "shmbus/group_consumer.hpp"
#include "shmbus/publisher.hpp"
#include "shmbus/subscriber.hpp"

namespace shmbus::detail {

// A record this member holds: the sequence and the lease word it installed (what its ack must
// find there), indexed like the group's entries (sequence % window).
struct HeldRecord {
  std::uint64_t sequence = 0;  // 0: none
  std::uint64_t lease = 0;
};

struct GroupState {
  std::string channel_name;
  std::string group_name;
  GroupOptions settings;  // as the group's creator chose them
  ProcessId self;

  // The gate: a block subscriber (manual release, never polled) whose slot the group raises to
  // its floor. Its mapping of the channel is the one everything here uses.
  std::optional<Subscriber> gate;
  std::shared_ptr<ChannelMapping> channel;
  core::RingRef ring;

  ShmSegment segment;
  GroupHeader* header = nullptr;
  GroupMember* members = nullptr;
  GroupEntry* entries = nullptr;
  std::uint64_t window_mask = 0;
  std::uint32_t index = 0;   // our member slot
  std::uint32_t token = 0;   // our membership
  GroupMember* me = nullptr;

  std::vector<HeldRecord> held;  // window entries
  std::size_t held_count = 0;
  std::vector<std::byte> copy_buffer;  // records are copied here, then validated, then handed on

  // This member's counters (mirrored to its member slot for tools).
  std::uint64_t delivered = 0;
  std::uint64_t acked = 0;
  std::uint64_t nacked = 0;
  std::uint64_t redelivered = 0;
  std::uint64_t fenced = 0;

  GroupStatus status = GroupStatus::ok;
  std::string last_error;

  // Housekeeping pace and the gate.
  std::int64_t sweep_interval_ns = 0;
  std::int64_t next_local_sweep_ns = 0;
  std::uint64_t raised_position = 0;  // the floor position we last raised the gates to
  std::uint64_t orphan_hint = 0;      // where the last orphan was found
  // A claim at the dispatch cursor that is not committed: where, its commit word, since when.
  std::uint64_t stall_position = UINT64_MAX;
  std::uint64_t stall_word = 0;
  std::int64_t stall_since_ns = 0;

  std::optional<Publisher> dead_letters;  // opened at the first dead letter

  ~GroupState();

  // --- handing records out (group_dispatch.cpp) ---
  // One record to `sink`: a record waiting for redelivery first, else the next new one. False
  // when there is none (or the window is full).
  bool deliver_one(GroupConsumer::Sink sink);
  bool take_orphan(GroupConsumer::Sink sink);
  bool dispatch_new(GroupConsumer::Sink sink);
  // Keyed groups: no record of the key with this hash below `sequence` is unretired.
  bool key_free_below(std::uint64_t hash, std::uint64_t sequence) const;
  // Copies record `sequence` at `position` into copy_buffer; the view of it, or nothing when the
  // ring no longer holds it (or holds garbage there).
  std::optional<core::RecordView> read_record(std::uint64_t position, std::uint64_t sequence);
  // Retires `sequence` as lost (an abandoned claim, a record the ring no longer holds).
  void retire_lost(std::uint64_t sequence, std::uint64_t position);
  // Retires every unretired entry of [from, to) as lost (the ring lapped the group).
  void retire_all_lost(std::uint64_t from, std::uint64_t to);
  // Whether an entry holding `seen` may take a new record: never used, retired, or below the
  // floor.
  bool reusable(GroupPair seen) const noexcept;
  // Stores the deadline of `lease` on `sequence`, tagged with both (GroupEntry::deadline).
  void set_deadline(GroupEntry& e, std::uint64_t sequence, std::uint64_t lease);

  // --- acks (group_acks.cpp) ---
  AckStatus finish(std::uint64_t sequence, EntryState final_state);
  AckStatus nack(std::uint64_t sequence, std::string_view reason);
  AckStatus pin(std::uint64_t sequence);
  void forget(std::uint64_t sequence);
  void remember(std::uint64_t sequence, std::uint64_t lease);
  // Sends `sequence` (held by us under `lease`) to the dead-letter channel and retires it.
  bool dead_letter(std::uint64_t sequence, std::uint64_t lease, std::uint64_t position,
                   std::uint32_t attempts, std::uint16_t reason_code, std::string_view reason);

  // --- housekeeping (group_housekeeping.cpp) ---
  // Moves the floor over every retired entry at it.
  void advance_floor() noexcept;
  // Raises every live member's gating slot to the floor's position.
  void raise_gates() noexcept;
  // Frees the slots of members whose process died; takes back expired leases and the records
  // of departed members; moves the floor and the gates. Rate-limited across the group.
  void housekeeping(bool force) noexcept;
  bool member_gone(std::uint32_t member, std::uint32_t token) const noexcept;
  // Evicts the gating subscriber slot of a member found dead (if it is still that process's).
  void evict_dead_gate(std::uint32_t slot_index, std::uint32_t pid) noexcept;
  // A claim stuck at the dispatch cursor: repaired as abandoned after the abandon timeout.
  void check_stall(std::uint64_t position, std::uint64_t sequence) noexcept;
  void leave() noexcept;
  void publish_counters() noexcept;
  void fail(GroupStatus s, std::string why);

  GroupEntry& entry(std::uint64_t sequence) const noexcept {
    return entries[sequence & window_mask];
  }
  Lease my_lease(EntryState state, std::uint32_t attempts) const noexcept {
    return Lease{state, OrphanReason::none, index, attempts, token};
  }
};

// The monotonic clock the group's deadlines use: CLOCK_MONOTONIC_COARSE (a few ns, a few ms of
// resolution, far below any ack timeout).
std::int64_t group_clock_ns() noexcept;

}  // namespace shmbus::detail
