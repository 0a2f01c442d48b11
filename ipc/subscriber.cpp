// The consumer side of a channel: registration in the control segment, the slow paths of poll
// (lapped, corrupt, stalled claims) and idle waiting. poll itself is inline in shmbus.hpp.
#include <climits>
#include <cstring>
#include <thread>
#include <utility>

#include "core/ring_repair.hpp"
#include "ipc/channel.hpp"
#include "ipc/futex.hpp"
#include "ipc/journal_link.hpp"
#include "ipc/publish_clock.hpp"
#include "ipc/spill.hpp"
#include "shmbus/shmbus.hpp"

namespace shmbus {

using detail::ChannelMapping;
using detail::owner_pid;
using detail::owner_state;
using detail::owner_word;
using detail::SlotState;
using detail::SubscriberSlot;

namespace {

SubscriberSlot& slot_of(void* p) { return *static_cast<SubscriberSlot*>(p); }

// Takes a slot: the one carrying `name` (to resume it) or a free one. Returns the slot and
// whether it was resumed, or an error.
Result<std::pair<SubscriberSlot*, bool>> take_slot(detail::ControlHeader& ctl,
                                                   const std::string& name,
                                                   const detail::ProcessId& self,
                                                   bool take_dead_anonymous = false) {
  const std::uint64_t mine = owner_word(self.pid, SlotState::claiming);
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (!name.empty()) {
      for (SubscriberSlot& s : ctl.slots) {
        // acquire: the identity fields of a slot seen in use are filled in.
        std::uint64_t owner = s.owner.load(std::memory_order_acquire);
        if (owner_state(owner) == SlotState::free) continue;
        if (std::strncmp(s.name, name.c_str(), sizeof s.name) != 0) continue;
        const SlotState st = owner_state(owner);
        const bool live_owner =
            (st == SlotState::active || st == SlotState::claiming || st == SlotState::resuming) &&
            detail::process_alive(st == SlotState::active
                                      ? detail::ProcessId{s.pid, s.start_time}
                                      : detail::ProcessId{owner_pid(owner), 0});
        if (live_owner) {
          return tl::unexpected(Error{ErrorCode::busy, "subscriber name '" + name +
                                                           "' is in use by live pid " +
                                                           std::to_string(s.pid)});
        }
        // A gating slot keeps gating while we take it over (resuming), so that producers do not
        // overwrite what its dead owner had not read yet. acq_rel: winning the CAS makes the
        // slot ours; we read its position after it.
        const std::uint64_t next = detail::gates(st) ? owner_word(self.pid, SlotState::resuming)
                                                     : mine;
        if (s.owner.compare_exchange_strong(owner, next, std::memory_order_acq_rel)) {  // acq_rel: see above
          return std::pair{&s, true};
        }
      }
    }
    for (SubscriberSlot& s : ctl.slots) {
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
          (st == SlotState::claiming && !detail::process_alive({owner_pid(owner), 0}));
      if (!reusable) continue;
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
    }
  }
  return tl::unexpected(Error{ErrorCode::busy, "all " + std::to_string(detail::kSubscriberSlots) +
                                                   " subscriber slots are in use"});
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

}  // namespace

Result<Subscriber> Subscriber::open(std::string_view channel, const SubscriberOptions& options) {
  if (options.name.size() >= detail::kSubscriberNameSize) {
    return tl::unexpected(Error{ErrorCode::invalid_argument, "subscriber name is too long"});
  }
  // Tools print names to terminals, JSON and Prometheus: printable ASCII only, no spaces.
  for (const char c : options.name) {
    if (c <= ' ' || c > '~') {
      return tl::unexpected(Error{ErrorCode::invalid_argument,
                                  "subscriber name '" + options.name +
                                      "': use printable ASCII without spaces"});
    }
  }
  const bool gating = options.policy == Policy::block;
  auto mapping = ChannelMapping::open(channel, gating, options.open_timeout);
  if (!mapping) return tl::unexpected(mapping.error());

  Subscriber sub;
  sub.channel_ = std::move(*mapping);
  sub.policy_ = options.policy;
  sub.manual_release_ = options.manual_release;
  if (options.policy == Policy::spill) {
    // Catching up needs journal files that reach the ring: a journaler attached now.
    const auto link = detail::find_journal(*sub.channel_);
    if (!link || !link->alive) {
      const std::string name(channel);
      return tl::unexpected(Error{
          ErrorCode::invalid_argument,
          "channel '" + name + "': the spill policy needs a journaler on the channel (shmbus " +
              "record " + name + " --dir DIR); none is attached" +
              (link ? " (journaler pid " + std::to_string(link->owner.pid) + " is dead)" : "")});
    }
    sub.spill_ = std::make_unique<detail::SpillState>();
  }
  sub.abandon_timeout_ns_ = options.abandon_timeout.count();
  const core::RingRef& ring = sub.channel_->ring();
  if (!gating) {
    sub.copy_buffer_size_ = std::max<std::size_t>(64 << 10, 2 * core::frame_size(ring.max_message));
    sub.copy_buffer_ = std::make_unique<std::byte[]>(sub.copy_buffer_size_);
  }

  const detail::ProcessId self = detail::self_process();
  auto& ctl = sub.channel_->control();
  auto taken = take_slot(ctl, options.name, self);
  if (!taken && taken.error().code == ErrorCode::busy && options.name.empty()) {
    // Slots of killed subscribers may be what fills the table: free them and look again.
    sub.channel_->evict_dead_subscribers();
    taken = take_slot(ctl, options.name, self, true);
  }
  if (!taken) {
    taken.error().message = "channel '" + std::string(channel) + "': " + taken.error().message;
    return tl::unexpected(taken.error());
  }
  auto [slot, resumed] = *taken;
  sub.slot_ = slot;

  slot->pid = self.pid;
  slot->start_time = self.start_time;
  slot->policy = static_cast<std::uint8_t>(options.policy);
  slot->attached_ns = detail::realtime_ns();
  slot->liveness_timeout_ns = options.liveness_timeout.count();
  slot->flags = options.latency_histogram ? detail::kSlotLatencyHistogram : 0;
  if (options.latency_histogram) {
    // Ours alone from here on (we hold the slot); zeroed before tools see the flag, which the
    // owner word's release store below publishes.
    sub.latency_ = &ctl.latency[static_cast<detail::SubscriberSlot*>(slot) - ctl.slots];
    core::reset_latency(*sub.latency_);
    sub.latency_clock_ = std::make_unique<detail::PublishClock>();
  }
  // relaxed: published by the release store of the owner word below.
  slot->dead_since_ns.store(0, std::memory_order_relaxed);
  // relaxed: as above; a reused slot must not show its previous occupant's last sign of life.
  slot->heartbeat_ns.store(slot->attached_ns, std::memory_order_relaxed);
  std::memset(slot->name, 0, sizeof slot->name);
  std::memcpy(slot->name, options.name.data(), options.name.size());

  // Where to start. A non-gating reader keeps an eighth of a lap between itself and the overwrite
  // front so that it is not lapped the moment it starts.
  const std::uint64_t margin = ring.capacity / 8;
  core::TailWord start;
  // relaxed: the slot is ours (the CAS above acquired it).
  const std::uint64_t saved_seq = slot->next_sequence.load(std::memory_order_relaxed);
  const std::uint64_t saved_position = slot->position.load(std::memory_order_relaxed);  // relaxed: our slot
  if (resumed && saved_seq != 0 && core::is_frame_aligned(saved_position)) {
    start = core::TailWord{saved_position, resume_sequence(ring, saved_position, saved_seq)};
  } else if (options.start == StartFrom::earliest) {
    start = core::earliest_retained(ring, margin);
  } else if (options.start == StartFrom::sequence) {
    start = core::boundary_for_sequence(ring, options.start_sequence, margin);
    sub.skip_below_ = options.start_sequence;
  } else {
    start = ring.load_tail();
  }
  if (!core::is_frame_aligned(start.position)) {
    slot->owner.store(0, std::memory_order_release);  // release: hand the slot back
    return tl::unexpected(Error{ErrorCode::corrupt,
                                "channel '" + std::string(channel) + "': the ring's tail position " +
                                    std::to_string(start.position) + " is not frame-aligned"});
  }
  sub.reader_ = core::RingReader(ring, start.position, start.next_sequence);
  if (options.start == StartFrom::sequence && !resumed &&
      start.next_sequence > options.start_sequence) {
    sub.reader_ = core::RingReader(ring, start.position, options.start_sequence);
    if (sub.policy_ == Policy::spill) {
      sub.start_catch_up();  // gone from the ring: the journal has it
    } else {
      // The sequence asked for is gone: what lies between it and where we start is lost.
      sub.reader_.skip_to(start);
    }
  }
  if (resumed) {
    // relaxed: our own slot's counters, carried over from the process that left it.
    sub.received_ = slot->received.load(std::memory_order_relaxed);
    sub.lost_ = slot->lost.load(std::memory_order_relaxed);  // relaxed: our slot
    sub.spilled_ = slot->spilled.load(std::memory_order_relaxed);  // relaxed: our slot
  } else {
    // relaxed: published by the release store of the owner word below.
    slot->evictions.store(0, std::memory_order_relaxed);
  }
  sub.publish_position();
  // release: producers that see the slot active see its policy and position.
  slot->owner.store(owner_word(self.pid, SlotState::active), std::memory_order_release);
  if (gating) {
    // seq_cst: announce the new gate, then look at the tail. Either a producer's epoch load sees
    // this bump (and respects our position), or this tail load sees that producer's claim. A
    // shared producer's claim is a locked CAS, a full barrier before its epoch load; a single
    // producer stores its tail without one, so we make every CPU execute a barrier first.
    ctl.gate_epoch.fetch_add(1, std::memory_order_seq_cst);
    if (sub.channel_->info().single_producer) detail::barrier_all_cpus();
    const std::uint64_t claimed =
        __atomic_load_n(&ring.header->tail.position, __ATOMIC_SEQ_CST);
    // A resumed slot was gating all along: only a real lap (after an eviction) moves it. A new
    // one moves past anything a claim made before producers saw it may overwrite.
    const std::uint64_t room =
        resumed ? ring.capacity : ring.capacity - core::frame_size(ring.max_message);
    if (claimed > start.position + room) {
      sub.reader_.skip_to(core::earliest_retained(ring, margin));
      sub.publish_position();
    }
  }
  return sub;
}

Subscriber::Subscriber(Subscriber&& o) noexcept { *this = std::move(o); }

Subscriber& Subscriber::operator=(Subscriber&& o) noexcept {
  if (this == &o) return *this;
  detach();
  channel_ = std::move(o.channel_);
  slot_ = std::exchange(o.slot_, nullptr);
  reader_ = o.reader_;
  policy_ = o.policy_;
  status_ = o.status_;
  skip_below_ = o.skip_below_;
  received_ = o.received_;
  lost_ = o.lost_;
  published_position_ = o.published_position_;
  copy_buffer_ = std::move(o.copy_buffer_);
  copy_buffer_size_ = o.copy_buffer_size_;
  stall_position_ = o.stall_position_;
  stall_word_ = o.stall_word_;
  stall_since_ns_ = o.stall_since_ns_;
  empty_polls_ = o.empty_polls_;
  abandon_timeout_ns_ = o.abandon_timeout_ns_;
  last_error_ = std::move(o.last_error_);
  manual_release_ = o.manual_release_;
  catching_up_ = o.catching_up_;
  spilled_ = o.spilled_;
  spill_ = std::move(o.spill_);
  latency_ = std::exchange(o.latency_, nullptr);
  latency_clock_ = std::move(o.latency_clock_);
  position_publishes_ = o.position_publishes_;
  return *this;
}

Subscriber::~Subscriber() { detach(); }

void Subscriber::detach() noexcept {
  if (slot_ == nullptr) return;
  SubscriberSlot& s = slot_of(slot_);
  // A manual-release subscriber leaves its slot at the last released cursor: what it delivered
  // after it was not confirmed done, so a successor under its name gets it again.
  note_progress();
  const std::uint32_t pid = s.pid;
  const bool named = s.name[0] != '\0';
  std::uint64_t expected = owner_word(pid, SlotState::active);
  // acq_rel: leave the slot only if it is still ours (a peer may have evicted it).
  s.owner.compare_exchange_strong(expected, named ? owner_word(pid, SlotState::detached) : 0,
                                  std::memory_order_acq_rel);
  if (policy_ == Policy::block) {
    // release: producers that see the new epoch re-scan and stop waiting for us.
    channel_->control().gate_epoch.fetch_add(1, std::memory_order_release);
  }
  slot_ = nullptr;
  latency_ = nullptr;  // the slot's histogram is the next owner's
}

const ChannelInfo& Subscriber::info() const noexcept { return channel_->info(); }

std::int64_t Subscriber::delivery_now_ns() noexcept { return latency_clock_->now_ns(); }

void Subscriber::publish_position() noexcept {
  SubscriberSlot& s = slot_of(slot_);
  // A busy subscriber never idles, where the heartbeat is otherwise refreshed: refresh it every
  // 1024th batch too (a clock read, about 35 ns, amortised). relaxed: a statistic for tools.
  if ((++position_publishes_ & 1023) == 0) {
    s.heartbeat_ns.store(detail::realtime_ns(), std::memory_order_relaxed);  // relaxed: above
  }
  published_position_ = reader_.position();
  // relaxed: counters for tools; the position's release store below orders them too.
  s.next_sequence.store(reader_.next_sequence(), std::memory_order_relaxed);
  s.received.store(received_, std::memory_order_relaxed);
  s.lost.store(lost_, std::memory_order_relaxed);
  s.spilled.store(spilled_, std::memory_order_relaxed);  // relaxed: as above
  // release: we are done reading everything before this position; a producer that acquires it
  // may overwrite it.
  s.position.store(published_position_, std::memory_order_release);
}

void Subscriber::release(const Cursor& cursor) noexcept {
  if (slot_ == nullptr || !manual_release_) return;
  // Never backwards: the producers may already have overwritten what lies before a position
  // released earlier.
  if (published_position_ != UINT64_MAX && cursor.position < published_position_) return;
  SubscriberSlot& s = slot_of(slot_);
  published_position_ = cursor.position;
  // relaxed: counters for tools; the position's release store below orders them too.
  s.next_sequence.store(cursor.next_sequence, std::memory_order_relaxed);
  s.received.store(cursor.received, std::memory_order_relaxed);  // relaxed: as above
  s.lost.store(cursor.lost, std::memory_order_relaxed);          // relaxed: as above
  s.spilled.store(cursor.spilled, std::memory_order_relaxed);    // relaxed: as above
  // A manual-release subscriber's batches do not publish positions: its heartbeat is refreshed
  // here, every 1024th release (relaxed: a statistic for tools).
  if ((++position_publishes_ & 1023) == 0) {
    s.heartbeat_ns.store(detail::realtime_ns(), std::memory_order_relaxed);  // relaxed: above
  }
  // release: the application is done with every record before this position (the journaler:
  // their writes completed); a producer that acquires it may overwrite them.
  s.position.store(cursor.position, std::memory_order_release);
}

void Subscriber::after_batch_slow(core::ReadState state) noexcept {
  if (!manual_release_ && reader_.position() != published_position_) publish_position();
  switch (state) {
    case core::ReadState::ready:
      // Reading again (journal_unavailable: the fallback's loss went out with this message).
      if (status_ == PollStatus::corrupt || status_ == PollStatus::journal_unavailable) {
        status_ = PollStatus::ok;
      }
      return;
    case core::ReadState::empty:
      if ((empty_polls_ & 1023) == 0) on_empty();
      return;
    case core::ReadState::lapped:
      on_lapped();
      return;
    case core::ReadState::corrupt:
      on_corrupt();
      return;
  }
}

void Subscriber::on_empty() noexcept {
  SubscriberSlot& s = slot_of(slot_);
  // relaxed: a statistic for tools.
  s.heartbeat_ns.store(detail::realtime_ns(), std::memory_order_relaxed);
  // acquire: an eviction (or a takeover of our name) is a peer's CAS on our owner word.
  if (s.owner.load(std::memory_order_acquire) != owner_word(s.pid, SlotState::active)) {
    status_ = PollStatus::evicted;
    last_error_ = "channel '" + channel_->info().name +
                  "': this subscriber was evicted (its process was judged dead); reopen it";
    return;
  }
  if (catching_up_) return;  // the ring position is stale until the spill rejoins the ring
  const core::RingRef& ring = channel_->ring();
  const std::uint64_t pos = reader_.position();
  const std::uint64_t claimed = ring.claimed_position();
  if (claimed > pos + ring.capacity) {  // lapped while we were not looking (e.g. after eviction)
    on_lapped();
    return;
  }
  if (claimed <= pos) {  // nothing claimed: idle, not stalled
    stall_position_ = UINT64_MAX;
    return;
  }
  const std::uint64_t word = reader_.current_commit_word();
  const std::int64_t now = detail::monotonic_ns();
  if (pos != stall_position_ || word != stall_word_) {
    stall_position_ = pos;
    stall_word_ = word;
    stall_since_ns_ = now;
    return;
  }
  if (now - stall_since_ns_ < abandon_timeout_ns_) return;
  const auto analysis = core::analyze_stall(ring, pos, reader_.next_sequence());
  if (!analysis) return;
  if (channel_->ring_writable()) {
    const std::uint64_t marked = core::repair_stall(ring, *analysis);
    // relaxed: a statistic.
    channel_->control().abandoned_repaired.fetch_add(marked, std::memory_order_relaxed);
  } else {
    reader_.skip_stall(*analysis);
  }
  stall_position_ = UINT64_MAX;
}

void Subscriber::on_lapped() noexcept {
  if (policy_ == Policy::spill) {
    start_catch_up();  // what the ring lost, the journal has
    return;
  }
  const core::RingRef& ring = channel_->ring();
  reader_.skip_to(core::earliest_retained(ring, ring.capacity / 8));
  note_progress();
}

void Subscriber::on_corrupt() noexcept {
  status_ = PollStatus::corrupt;
  last_error_ = "channel '" + channel_->info().name + "': a record at position " +
                std::to_string(reader_.position()) + " (expected sequence " +
                std::to_string(reader_.next_sequence()) +
                ") failed validation; skipped to the tail";
  reader_.skip_to(channel_->ring().load_tail());
  note_progress();
}

bool Subscriber::message_ready() const noexcept {
  if (catching_up_) [[unlikely]] return journal_ready();
  return reader_.current_commit_word() == channel_->ring().committed(reader_.position());
}

bool Subscriber::wait(std::chrono::nanoseconds timeout, std::chrono::nanoseconds spin) noexcept {
  const std::int64_t start = detail::monotonic_ns();
  const std::int64_t spin_until = start + spin.count();
  const std::int64_t deadline = start + timeout.count();
  for (std::uint32_t i = 0;; ++i) {
    if (message_ready()) return true;
    if ((i & 255) == 255 && detail::monotonic_ns() >= spin_until) break;
  }
  auto& ctl = channel_->control();
  // seq_cst: count ourselves in before the last look, so a producer committing after that look
  // sees us and wakes us (or we see its record).
  ctl.waiters.fetch_add(1, std::memory_order_seq_cst);
  bool ready = false;
  for (;;) {
    // acquire: pairs with the producer's release increment in wake_waiters.
    const std::uint32_t w = ctl.wake_word.load(std::memory_order_acquire);
    if (message_ready()) {
      ready = true;
      break;
    }
    const std::uint64_t before = reader_.position();
    on_empty();  // repairs stalled claims and refreshes the heartbeat while we sleep
    if (message_ready() || reader_.position() != before) {
      ready = true;
      break;
    }
    // Spill catch-up: the journaler may be gone, or the ring may hold our sequence again; poll
    // acts on either.
    if (catching_up_ && catch_up_ready()) {
      ready = true;
      break;
    }
    const std::int64_t now = detail::monotonic_ns();
    if (now >= deadline) break;
    // Sleep in slices of at most 1 ms: a wake-up lost to the producer's unfenced check of
    // `waiters` costs at most one slice.
    detail::futex_wait(ctl.wake_word, w, std::min<std::int64_t>(deadline - now, 1'000'000));
  }
  // relaxed: only a count; nothing is published by leaving.
  ctl.waiters.fetch_sub(1, std::memory_order_relaxed);
  return ready;
}

}  // namespace shmbus
