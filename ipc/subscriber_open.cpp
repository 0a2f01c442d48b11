// Subscriber::open: map the channel, take a slot in its control segment, choose where to start,
// and announce the new reader to the producers. Each step is one function below; open() reads as
// the list of them.
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "ipc/journal_link.hpp"
#include "ipc/subscriber_state.hpp"

namespace shmbus {

using detail::ChannelMapping;
using detail::owner_pid;
using detail::owner_state;
using detail::owner_word;
using detail::SlotState;
using detail::SubscriberSlot;

namespace {

// Tools print names to terminals, JSON and Prometheus: printable ASCII only, no spaces.
Result<void> check_subscriber_name(const std::string& name) {
  if (name.size() >= detail::kSubscriberNameSize) {
    return tl::unexpected(Error{ErrorCode::invalid_argument, "subscriber name is too long"});
  }
  for (const char c : name) {
    if (c <= ' ' || c > '~') {
      return tl::unexpected(Error{
          ErrorCode::invalid_argument,
          fmt::format("subscriber name '{}': use printable ASCII without spaces", name)});
    }
  }
  return {};
}

// A filter key longer than any record's key would silently match nothing: refused instead.
Result<void> check_filter(const MessageFilter& filter) {
  if (filter.key && filter.key->size() > core::kMaxKeyLength) {
    return tl::unexpected(Error{
        ErrorCode::invalid_argument,
        fmt::format("filter key of {} bytes: keys are at most {} bytes", filter.key->size(),
                    core::kMaxKeyLength)});
  }
  return {};
}

// A zero or negative timeout would evict a live block subscriber, or mark every claim abandoned,
// at once: records lost for a typo (a zeroed options struct from C is the usual one). Refused.
Result<void> check_timeouts(const SubscriberOptions& options) {
  if (options.liveness_timeout.count() <= 0 || options.abandon_timeout.count() <= 0) {
    return tl::unexpected(Error{
        ErrorCode::invalid_argument,
        fmt::format("liveness_timeout ({} ns) and abandon_timeout ({} ns) must be positive",
                    options.liveness_timeout.count(), options.abandon_timeout.count())});
  }
  return {};
}

// Catching up needs journal files that reach the ring: a journaler attached now.
Result<void> require_journaler(const ChannelMapping& channel, std::string_view name) {
  const auto link = detail::find_journal(channel);
  if (link && link->alive) return {};
  return tl::unexpected(Error{
      ErrorCode::invalid_argument,
      fmt::format("channel '{0}': the spill policy needs a journaler on the channel (shmbus record "
                  "{0} --dir DIR); none is attached{1}",
                  name,
                  link ? fmt::format(" (journaler pid {} is dead)", link->owner.pid) : "")});
}

// Takes a slot: the one carrying `name` (to resume it) or the lowest free one. Returns the slot
// and whether it was resumed, or an error.
Result<std::pair<SubscriberSlot*, bool>> take_slot(const detail::ControlRef& control,
                                                   const std::string& name,
                                                   const detail::ProcessId& self,
                                                   bool take_dead_anonymous = false) {
  detail::ControlHeader& ctl = control.header();
  const std::uint64_t mine = owner_word(self.pid, SlotState::claiming);
  for (int attempt = 0; attempt < 100; ++attempt) {
    // Set when a slot we could take went to a peer first: only then is another pass worth it.
    bool lost_a_race = false;
    if (!name.empty()) {
      // A named slot was taken once, so it lies below the high-water mark.
      for (SubscriberSlot& s : control.subscriber_slots_taken()) {
        // acquire: the identity fields of a slot seen in use are filled in.
        std::uint64_t owner = s.owner.load(std::memory_order_acquire);
        if (owner_state(owner) == SlotState::free) continue;
        if (std::strncmp(s.name, name.c_str(), sizeof s.name) != 0) continue;
        const SlotState st = owner_state(owner);
        // An active slot's owner by its identity (start time included); a slot being taken
        // (claiming, resuming) by the owner word's pid, as its identity is being written.
        const bool live_owner =
            st == SlotState::active
                ? s.pid == owner_pid(owner) && detail::process_alive({s.pid, s.start_time})
                : (st == SlotState::claiming || st == SlotState::resuming) &&
                      detail::pid_exists(owner_pid(owner));
        if (live_owner) {
          return tl::unexpected(Error{
              ErrorCode::busy,
              fmt::format("subscriber name '{}' is in use by live pid {}", name, s.pid)});
        }
        // A gating slot keeps gating while we take it over (resuming), so that producers do not
        // overwrite what its dead owner had not read yet. acq_rel: winning the CAS makes the
        // slot ours; we read its position after it.
        const std::uint64_t next = detail::gates(st) ? owner_word(self.pid, SlotState::resuming)
                                                     : mine;
        if (s.owner.compare_exchange_strong(owner, next, std::memory_order_acq_rel)) {  // acq_rel: see above
          return std::pair{&s, true};
        }
        lost_a_race = true;
      }
    }
    for (SubscriberSlot& s : control.subscriber_slots()) {
      // acquire: as above.
      std::uint64_t owner = s.owner.load(std::memory_order_acquire);
      const SlotState st = owner_state(owner);
      // With the table full, an anonymous subscriber whose process died is taken over at once:
      // nobody can ever resume it, so its liveness timeout protects nothing.
      const bool dead_anonymous = take_dead_anonymous && st == SlotState::active &&
                                  s.name[0] == '\0' &&
                                  !detail::process_alive({s.pid, s.start_time});
      const bool reusable =
          st == SlotState::free || dead_anonymous ||
          (st == SlotState::evicted && s.name[0] == '\0') ||
          (st == SlotState::claiming && !detail::pid_exists(owner_pid(owner)));
      if (!reusable) continue;
      // Covered by the high-water mark before it is ours (see scan_gate_floor).
      control.cover_subscriber_slot(control.index_of(s));
      // acq_rel: as above.
      if (s.owner.compare_exchange_strong(owner, mine, std::memory_order_acq_rel)) {
        if (dead_anonymous && s.policy == static_cast<std::uint8_t>(Policy::block)) {
          // relaxed: counters; release: producers re-scan and stop waiting for the dead one.
          s.evictions.fetch_add(1, std::memory_order_relaxed);
          ctl.evictions.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistic
          ctl.gate_epoch.fetch_add(1, std::memory_order_release);  // release: re-scan
        }
        return std::pair{&s, false};
      }
      lost_a_race = true;
    }
    if (!lost_a_race) break;
  }
  return tl::unexpected(Error{ErrorCode::busy, fmt::format("all {} subscriber slots are in use",
                                                           control.layout().subscriber_slots)});
}

// take_slot, and when the table is full for an anonymous subscriber, again after freeing the
// slots of killed subscribers (they may be what fills it).
Result<std::pair<SubscriberSlot*, bool>> take_any_slot(ChannelMapping& channel,
                                                       const std::string& name,
                                                       const detail::ProcessId& self) {
  auto taken = take_slot(channel.control_ref(), name, self);
  if (!taken && taken.error().code == ErrorCode::busy && name.empty()) {
    channel.evict_dead_subscribers();
    taken = take_slot(channel.control_ref(), name, self, true);
  }
  if (!taken) {
    taken.error().message = fmt::format("channel '{}': {}", channel.info().name,
                                        taken.error().message);
  }
  return taken;
}

// Fills in who holds the slot. Ours alone until the owner word says active (release, later).
void describe_slot(SubscriberSlot& slot, const detail::ProcessId& self,
                   const SubscriberOptions& options) {
  slot.pid = self.pid;
  slot.start_time = self.start_time;
  slot.policy = static_cast<std::uint8_t>(options.policy);
  slot.attached_ns = detail::realtime_ns();
  slot.liveness_timeout_ns = options.liveness_timeout.count();
  slot.flags = options.latency_histogram ? detail::kSlotLatencyHistogram : 0;
  // relaxed: published by the release store of the owner word.
  slot.dead_since_ns.store(0, std::memory_order_relaxed);
  // relaxed: as above; a reused slot must not show its previous occupant's last sign of life.
  slot.heartbeat_ns.store(slot.attached_ns, std::memory_order_relaxed);
  std::memset(slot.name, 0, sizeof slot.name);
  std::memcpy(slot.name, options.name.data(), options.name.size());
}

// The sequence to expect at a resumed position. The slot stores it next to the position, but a
// process killed between the two stores leaves them disagreeing; the record at the position, when
// it is there, is the truth.
std::uint64_t resume_sequence(const core::RingRef& ring, std::uint64_t position,
                              std::uint64_t saved) {
  for (int hop = 0; hop < 2; ++hop) {
    const core::RecordHeader* h = ring.header_at(position);
    // acquire: the fields read below were written before this commit.
    if (h->commit.load(std::memory_order_acquire) != ring.committed(position)) return saved;
    core::RecordHeader copy;
    std::memcpy(static_cast<void*>(&copy), h, sizeof copy);
    if (core::check_record(ring, position, copy)) return saved;
    if (copy.type != static_cast<std::uint16_t>(core::RecordType::padding)) return copy.sequence;
    position += core::kRecordHeaderSize + copy.length;
  }
  return saved;
}

struct StartPoint {
  core::TailWord at;
  bool from_slot;  // where a resumed slot left off
};

// Where a new reader starts: where a resumed slot left off, or as the options say. A non-gating
// reader keeps an eighth of a lap between itself and the overwrite front so that it is not
// lapped the moment it starts.
StartPoint start_point(const core::RingRef& ring, const SubscriberSlot& slot, bool resumed,
                       const SubscriberOptions& options) {
  // relaxed: the slot is ours (the CAS that took it acquired it).
  const std::uint64_t saved_seq = slot.next_sequence.load(std::memory_order_relaxed);
  const std::uint64_t saved_position = slot.position.load(std::memory_order_relaxed);  // relaxed: our slot
  // The saved position is a peer's word (the previous owner's, or anyone's who could write the
  // segment): used only when no producer has yet to reach it. One more than a lap behind is
  // honest (an evicted subscriber's): the reader finds itself lapped and counts the loss.
  // A saved sequence beyond the tail's is garbage: trusting it would refuse every later
  // resynchronisation as a jump backwards and wedge the reader.
  const core::TailWord tail = ring.load_tail();
  const bool reached = saved_position <= tail.position && saved_seq <= tail.next_sequence;
  if (resumed && saved_seq != 0 && core::is_frame_aligned(saved_position) && reached) {
    return {{saved_position, resume_sequence(ring, saved_position, saved_seq)}, true};
  }
  const std::uint64_t margin = ring.capacity / 8;
  switch (options.start) {
    case StartFrom::earliest:
      return {core::earliest_retained(ring, margin), false};
    case StartFrom::sequence:
      return {core::boundary_for_sequence(ring, options.start_sequence, margin), false};
    case StartFrom::latest:
      break;
  }
  return {ring.load_tail(), false};
}

// Maps the channel: the ring read-write only for a gating reader (a drop or spill reader can
// never write it). A spill reader also needs a journaler attached.
Result<std::shared_ptr<ChannelMapping>> map_channel(std::string_view channel,
                                                    const SubscriberOptions& options) {
  // A block reader gates the producers: it needs the channel's trust (write access to the
  // control segment). Others register in the readers' registry when they lack it.
  const bool gating = options.policy == Policy::block;
  auto mapping = ChannelMapping::open(
      channel, detail::OpenRequest{
                   gating ? detail::RingAccess::write_if_permitted : detail::RingAccess::read,
                   gating ? detail::ControlAccess::write
                          : detail::ControlAccess::write_or_register_as_reader,
                   options.open_timeout, true});
  if (!mapping) return mapping;
  if (options.policy == Policy::spill) {
    if (auto linked = require_journaler(**mapping, channel); !linked) {
      return tl::unexpected(linked.error());
    }
  }
  return mapping;
}

// Everything that follows from the options alone: policy, timeouts, the copy buffer of a reader
// that validates copies (drop and spill), the spill state.
void prepare(detail::PollState& poll, detail::SubscriberSlowState& slow,
             std::shared_ptr<ChannelMapping> channel, const SubscriberOptions& options) {
  slow.channel = std::move(channel);
  slow.abandon_timeout_ns = options.abandon_timeout.count();
  if (options.policy == Policy::spill) slow.spill.emplace();
  poll.policy = options.policy;
  poll.manual_release = options.manual_release;
  if (options.policy != Policy::block) {
    const std::uint32_t max_message = slow.channel->ring().max_message;
    poll.copy_buffer_size = std::max<std::size_t>(64 << 10, 2 * core::frame_size(max_message));
    slow.copy_buffer = std::make_unique<std::byte[]>(poll.copy_buffer_size);
    poll.copy_buffer = slow.copy_buffer.get();
  }
  const MessageFilter& filter = options.filter;
  if (filter.empty()) return;
  poll.filter.active = true;
  if (filter.key) {
    slow.filter_key = *filter.key;
    poll.filter.by_key = true;
    poll.filter.key = reinterpret_cast<const std::byte*>(slow.filter_key.data());
    poll.filter.key_length = static_cast<std::uint16_t>(slow.filter_key.size());
  }
  if (!filter.message_types.empty()) {
    constexpr std::size_t kWords = (std::size_t{UINT16_MAX} + 1) / 64;
    slow.filter_types = std::make_unique<std::uint64_t[]>(kWords);  // zeroed
    for (const std::uint16_t type : filter.message_types) {
      slow.filter_types[type >> 6] |= std::uint64_t{1} << (type & 63);
    }
    poll.filter.types = slow.filter_types.get();
  }
}

// Takes the slot we were given for this process: who holds it, its block hint (before the owner
// word says active, see ControlHeader::block_slots), and its latency histogram.
void occupy(detail::PollState& poll, detail::SubscriberSlowState& slow, SubscriberSlot& slot,
            const detail::ProcessId& self, const SubscriberOptions& options) {
  slow.slot = &slot;
  slow.self = self;
  describe_slot(slot, self, options);
  const detail::ControlRef& control = slow.channel->control_ref();
  control.set_block_slot_hint(control.index_of(slot), options.policy == Policy::block);
  if (options.latency_histogram) {
    // Ours alone from here on (we hold the slot); zeroed before tools see the flag, which the
    // owner word's release store (activate) publishes.
    poll.latency = &control.latency_histogram(control.index_of(slot));
    core::reset_latency(*poll.latency);
    slow.latency_clock.emplace();
  }
}

// Puts the reader where it starts (start_point), walking up to StartFrom::sequence from the
// boundary before it, or, when that sequence is gone from the ring, catching up from the journal
// (spill) or counting what lies between as lost.
Result<void> place_reader(detail::PollState& poll, detail::SubscriberSlowState& slow,
                          bool resumed, const SubscriberOptions& options) {
  const core::RingRef& ring = slow.channel->ring();
  const StartPoint point = start_point(ring, *slow.slot, resumed, options);
  const core::TailWord start = point.at;
  if (!core::is_frame_aligned(start.position)) {
    return tl::unexpected(Error{
        ErrorCode::corrupt,
        fmt::format("channel '{}': the ring's tail position {} is not frame-aligned",
                    slow.channel->info().name, start.position)});
  }
  // A resumed spill subscriber's slot may hold a sequence ahead of its position (it caught up from
  // the journal): only a start taken from the ring's own words must be a genuine place.
  if (!point.from_slot && !core::plausible_place(start)) {
    return tl::unexpected(Error{
        ErrorCode::corrupt,
        fmt::format("channel '{}': the ring places sequence {} at position {}, more sequences "
                    "than that many bytes can hold: its claim word is corrupt",
                    slow.channel->info().name, start.next_sequence, start.position)});
  }
  poll.reader = core::RingReader(ring, start.position, start.next_sequence);
  if (options.start != StartFrom::sequence) return {};
  if (!point.from_slot) poll.skip_below = options.start_sequence;
  if (!resumed && start.next_sequence > options.start_sequence) {
    poll.reader = core::RingReader(ring, start.position, options.start_sequence);
    if (poll.policy == Policy::spill) {
      slow.start_catch_up(poll);
    } else {
      // The sequences before the ring's earliest are lost (start is a plausible place).
      poll.reader = core::RingReader(ring, start.position, start.next_sequence);
      poll.reader.note_lost(start.next_sequence - options.start_sequence);
    }
  }
  return {};
}

// Makes the slot active: counters carried over from a resumed slot, the position stored, then the
// owner word that lets producers and tools see it; a gating reader then announces itself.
void activate(detail::PollState& poll, detail::SubscriberSlowState& slow,
              const detail::ProcessId& self, bool resumed) {
  SubscriberSlot& slot = *slow.slot;
  if (resumed) {
    // relaxed: our own slot's counters, carried over from the process that left it.
    poll.received = slot.received.load(std::memory_order_relaxed);
    poll.lost = slot.lost.load(std::memory_order_relaxed);        // relaxed: our slot
    poll.spilled = slot.spilled.load(std::memory_order_relaxed);  // relaxed: our slot
  } else {
    // relaxed: published by the release store of the owner word below.
    slot.evictions.store(0, std::memory_order_relaxed);
  }
  slow.publish_position(poll);
  // release: producers that see the slot active see its policy and position.
  slot.owner.store(owner_word(self.pid, SlotState::active), std::memory_order_release);
  if (poll.policy == Policy::block) {
    slow.announce_gate(poll, resumed);
  } else if (resumed) {
    // The slot may have gated until now (a dead block subscriber of this name): producers held
    // back by its position wait on that word alone, which we left unchanged. release: producers
    // that see the new epoch re-scan and see the slot as it is now.
    slow.channel->control().gate_epoch.fetch_add(1, std::memory_order_release);
  }
}

}  // namespace

Result<Subscriber> Subscriber::open(std::string_view channel, const SubscriberOptions& options) {
  if (auto named = check_subscriber_name(options.name); !named) {
    return tl::unexpected(named.error());
  }
  if (auto filtered = check_filter(options.filter); !filtered) {
    return tl::unexpected(filtered.error());
  }
  if (auto timed = check_timeouts(options); !timed) return tl::unexpected(timed.error());
  auto mapping = map_channel(channel, options);
  if (!mapping) return tl::unexpected(mapping.error());
  Subscriber sub;
  sub.state_ = std::make_unique<detail::SubscriberSlowState>();
  prepare(sub.poll_, *sub.state_, std::move(*mapping), options);

  const detail::ProcessId self = detail::self_process();
  auto taken = take_any_slot(*sub.state_->channel, options.name, self);
  if (!taken) return tl::unexpected(taken.error());
  const auto [slot, resumed] = *taken;
  occupy(sub.poll_, *sub.state_, *slot, self, options);
  if (auto placed = place_reader(sub.poll_, *sub.state_, resumed, options); !placed) {
    slot->owner.store(0, std::memory_order_release);  // release: hand the slot back
    sub.state_->slot = nullptr;                        // nothing to detach
    if (options.policy == Policy::block || resumed) {
      // release: a resumed slot may have gated until now; producers that see the epoch re-scan
      // without it.
      sub.state_->channel->control().gate_epoch.fetch_add(1, std::memory_order_release);
    }
    return tl::unexpected(placed.error());
  }
  activate(sub.poll_, *sub.state_, self, resumed);
  return sub;
}

namespace detail {

void SubscriberSlowState::announce_gate(PollState& poll, bool resumed) noexcept {
  const core::RingRef& ring = channel->ring();
  // seq_cst: announce the new gate, then look at the tail. Either a producer's epoch load sees
  // this bump (and respects our position), or this tail load sees that producer's claim. A
  // shared producer's claim is a locked CAS, a full barrier before its epoch load; a single
  // producer stores its tail without one, so we make every CPU execute a barrier first.
  channel->control().gate_epoch.fetch_add(1, std::memory_order_seq_cst);
  if (channel->info().single_producer) barrier_all_cpus();
  const std::uint64_t claimed = ring.claimed_position(std::memory_order_seq_cst);  // seq_cst: above
  // A resumed slot was gating all along: only a real lap (after an eviction) moves it. A new
  // one moves past anything a claim made before producers saw it may overwrite.
  const std::uint64_t room =
      resumed ? ring.capacity : ring.capacity - core::frame_size(ring.max_message);
  if (claimed > poll.reader.position() + room) {
    poll.reader.skip_to(core::earliest_retained(ring, ring.capacity / 8));
    publish_position(poll);
  }
}

}  // namespace detail
}  // namespace shmbus
