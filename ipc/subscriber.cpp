// The consumer side of a channel after open (subscriber_open.cpp): moving and closing a
// Subscriber, publishing and releasing its position, the slow paths of poll (empty, lapped,
// corrupt, stalled claims) and idle waiting. poll itself is inline in shmbus/subscriber.hpp.
#include <climits>
#include <memory>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "core/ring_repair.hpp"
#include "ipc/futex.hpp"
#include "ipc/subscriber_state.hpp"

namespace shmbus {

using detail::owner_word;
using detail::SlotState;
using detail::SubscriberSlot;

Subscriber::Subscriber(Subscriber&&) noexcept = default;

Subscriber& Subscriber::operator=(Subscriber&& other) noexcept {
  // The subscriber this one was goes out with `taken`, detaching as it goes.
  Subscriber taken(std::move(other));
  std::swap(poll_, taken.poll_);
  std::swap(state_, taken.state_);
  return *this;
}

Subscriber::~Subscriber() {
  if (state_) state_->detach(poll_);
}

const ChannelInfo& Subscriber::info() const noexcept { return state_->channel->info(); }
const std::string& Subscriber::last_error() const noexcept { return state_->last_error; }

void Subscriber::release(const Cursor& cursor) noexcept { state_->release(poll_, cursor); }

bool Subscriber::wait(std::chrono::nanoseconds timeout, std::chrono::nanoseconds spin) noexcept {
  detail::SubscriberSlowState& s = *state_;
  const std::int64_t start = detail::monotonic_ns();
  const std::int64_t spin_until = start + spin.count();
  const std::int64_t deadline = start + timeout.count();
  for (std::uint32_t i = 0;; ++i) {
    if (s.message_ready(poll_)) return true;
    if ((i & 255) == 255 && detail::monotonic_ns() >= spin_until) break;
  }
  // About to sleep: what we read goes to our slot first (poll publishes only every sixteenth of
  // the ring while messages keep coming), so producers and tools see us caught up.
  if (!poll_.manual_release && poll_.reader.position() != poll_.published_position) {
    s.publish_position(poll_);
  }
  auto& ctl = s.channel->control();
  bool ready = false;
  for (;;) {
    // acquire: pairs with the producer's release increment in wake_waiters.
    const std::uint32_t w = ctl.wake_word.load(std::memory_order_acquire);
    // Arm the wake-up before the last look: a producer that commits after it sees the flag and
    // wakes every sleeper once (clearing it), so a busy stream costs the producers one wake-up per
    // sleep, not one per message. seq_cst exchange: if a producer's exchange cleared the flag just
    // before, this one reads its value and so sees the record it committed before.
    ctl.waiters.exchange(1, std::memory_order_seq_cst);
    if (s.message_ready(poll_)) {
      ready = true;
      break;
    }
    const std::uint64_t before = poll_.reader.position();
    s.on_empty(poll_);  // repairs stalled claims and refreshes the heartbeat while we sleep
    if (s.message_ready(poll_) || poll_.reader.position() != before) {
      ready = true;
      break;
    }
    // Spill catch-up: the journaler may be gone, or the ring may hold our sequence again; poll
    // acts on either.
    if (poll_.catching_up && s.catch_up_ready(poll_)) {
      ready = true;
      break;
    }
    const std::int64_t now = detail::monotonic_ns();
    if (now >= deadline) break;
    // Sleep in slices of at most 1 ms: a wake-up lost to the producer's unfenced check of
    // `waiters` costs at most one slice. A wake-up already given (the word moved since we read
    // it) returns at once.
    detail::futex_wait(ctl.wake_word, w, std::min<std::int64_t>(deadline - now, 1'000'000));
  }
  // The flag stays armed: clearing it could lose another sleeper's wake-up; a producer that
  // finds it set with nobody asleep spends one system call.
  return ready;
}

namespace detail {

std::int64_t delivery_now_ns(SubscriberSlowState& slow) noexcept {
  return slow.latency_clock->now_ns();
}

void after_batch_slow(PollState& poll, SubscriberSlowState& slow, core::ReadState state) noexcept {
  if (!poll.manual_release && poll.reader.position() != poll.published_position) {
    slow.publish_position(poll);
  }
  switch (state) {
    case core::ReadState::ready:
      // Reading again (journal_unavailable: the fallback's loss went out with this message).
      if (poll.status == PollStatus::corrupt || poll.status == PollStatus::journal_unavailable) {
        poll.status = PollStatus::ok;
      }
      return;
    case core::ReadState::empty:
      if ((poll.empty_polls & 1023) == 0) slow.on_empty(poll);
      return;
    case core::ReadState::lapped:
      slow.on_lapped(poll);
      return;
    case core::ReadState::corrupt:
      slow.on_corrupt(poll);
      return;
  }
}

void SubscriberSlowState::detach(PollState& poll) noexcept {
  if (slot == nullptr) return;
  SubscriberSlot& s = *slot;
  // A manual-release subscriber leaves its slot at the last released cursor: what it delivered
  // after it was not confirmed done, so a successor under its name gets it again.
  if (!still_owned(poll)) {  // evicted: the slot, and the gate, are no longer ours to touch
    slot = nullptr;
    poll.latency = nullptr;
    return;
  }
  note_progress(poll);
  const bool named = s.name[0] != '\0';
  std::uint64_t expected = owner_word(self.pid, SlotState::active);
  // acq_rel: leave the slot only if it is still ours (a peer may evict it right now).
  s.owner.compare_exchange_strong(expected, named ? owner_word(self.pid, SlotState::detached) : 0,
                                  std::memory_order_acq_rel);
  if (poll.policy == Policy::block) {
    // release: producers that see the new epoch re-scan and stop waiting for us.
    channel->control().gate_epoch.fetch_add(1, std::memory_order_release);
  }
  slot = nullptr;
  poll.latency = nullptr;  // the slot's histogram is the next owner's
}

bool SubscriberSlowState::still_owned(PollState& poll) noexcept {
  if (poll.status == PollStatus::evicted) return false;
  const SubscriberSlot& s = *slot;
  // Claiming and resuming are ours too: Subscriber::open publishes the first position before it
  // stores active. The start time tells us from a process of the same pid (in another pid
  // namespace) that took the slot after us; it wrote it before its release store of the word.
  // acquire: an eviction (or a takeover of the slot) is a peer's CAS on our owner word.
  const std::uint64_t owner = s.owner.load(std::memory_order_acquire);
  const bool ours = owner == owner_word(self.pid, SlotState::active) ||
                    owner == owner_word(self.pid, SlotState::claiming) ||
                    owner == owner_word(self.pid, SlotState::resuming);
  if (ours && s.start_time == self.start_time) return true;
  // A slot in the readers' registry is writable by every reader of the ring, so a changed owner
  // word there proves nothing about us, and no producer gates on it: stop writing the slot, keep
  // delivering. (A slot in the control segment changes only by a trusted peer's eviction.)
  if (!channel->trusted()) return false;
  poll.status = PollStatus::evicted;
  last_error = fmt::format(
      "channel '{}': this subscriber was evicted (its process was judged dead); reopen it",
      channel->info().name);
  return false;
}

void SubscriberSlowState::publish_position(PollState& poll) noexcept {
  // Evicted: the slot may be another process's now (our position would become its gate), and
  // what we read may have been overwritten since the producers stopped waiting for us.
  if (!still_owned(poll)) return;
  SubscriberSlot& s = *slot;
  // A busy subscriber never idles, where the heartbeat is otherwise refreshed: refresh it every
  // 1024th batch too (a clock read, about 35 ns, amortised). relaxed: a statistic for tools.
  if ((++position_publishes & 1023) == 0) {
    s.heartbeat_ns.store(realtime_ns(), std::memory_order_relaxed);  // relaxed: above
  }
  poll.published_position = poll.reader.position();
  // relaxed: counters for tools; the position's release store below orders them too.
  s.next_sequence.store(poll.reader.next_sequence(), std::memory_order_relaxed);
  s.received.store(poll.received, std::memory_order_relaxed);  // relaxed: as above
  s.lost.store(poll.lost, std::memory_order_relaxed);          // relaxed: as above
  s.spilled.store(poll.spilled, std::memory_order_relaxed);    // relaxed: as above
  // release: we are done reading everything before this position; a producer that acquires it
  // may overwrite it.
  s.position.store(poll.published_position, std::memory_order_release);
}

void SubscriberSlowState::release(PollState& poll, const Subscriber::Cursor& cursor) noexcept {
  if (slot == nullptr || !poll.manual_release) return;
  // Never backwards: the producers may already have overwritten what lies before a position
  // released earlier.
  if (poll.published_position != UINT64_MAX && cursor.position < poll.published_position) return;
  if (!still_owned(poll)) return;  // evicted: as in publish_position
  SubscriberSlot& s = *slot;
  poll.published_position = cursor.position;
  // relaxed: counters for tools; the position's release store below orders them too.
  s.next_sequence.store(cursor.next_sequence, std::memory_order_relaxed);
  s.received.store(cursor.received, std::memory_order_relaxed);  // relaxed: as above
  s.lost.store(cursor.lost, std::memory_order_relaxed);          // relaxed: as above
  s.spilled.store(cursor.spilled, std::memory_order_relaxed);    // relaxed: as above
  // A manual-release subscriber's batches do not publish positions: its heartbeat is refreshed
  // here, every 1024th release (relaxed: a statistic for tools).
  if ((++position_publishes & 1023) == 0) {
    s.heartbeat_ns.store(realtime_ns(), std::memory_order_relaxed);  // relaxed: above
  }
  // release: the application is done with every record before this position (the journaler:
  // their writes completed); a producer that acquires it may overwrite them.
  s.position.store(cursor.position, std::memory_order_release);
}

void SubscriberSlowState::on_empty(PollState& poll) noexcept {
  if (!still_owned(poll)) return;
  // relaxed: a statistic for tools.
  slot->heartbeat_ns.store(realtime_ns(), std::memory_order_relaxed);
  if (poll.catching_up) return;  // the ring position is stale until the spill rejoins the ring
  const core::RingRef& ring = channel->ring();
  const std::uint64_t pos = poll.reader.position();
  // acquire: a claim seen here comes with what its producer ordered before it.
  const std::uint64_t claimed = ring.claimed_position(std::memory_order_acquire);
  if (claimed > pos + ring.capacity) {  // lapped while we were not looking (e.g. after eviction)
    on_lapped(poll);
    return;
  }
  if (claimed <= pos) {  // nothing claimed: idle, not stalled
    stall_position = UINT64_MAX;
    return;
  }
  const std::uint64_t word = poll.reader.current_commit_word();
  const std::int64_t now = monotonic_ns();
  if (pos != stall_position || word != stall_word) {
    stall_position = pos;
    stall_word = word;
    stall_since_ns = now;
    return;
  }
  if (now - stall_since_ns < abandon_timeout_ns) return;
  const auto analysis = core::analyze_stall(ring, pos, poll.reader.next_sequence());
  if (!analysis) return;
  if (channel->ring_writable()) {
    const std::uint64_t marked = core::repair_stall(ring, *analysis);
    // relaxed: a statistic.
    channel->control().abandoned_repaired.fetch_add(marked, std::memory_order_relaxed);
  } else {
    core::skip_stall(poll.reader, *analysis);
  }
  stall_position = UINT64_MAX;
}

void SubscriberSlowState::on_lapped(PollState& poll) noexcept {
  if (poll.policy == Policy::spill) {
    start_catch_up(poll);  // what the ring lost, the journal has
    return;
  }
  const core::RingRef& ring = channel->ring();
  const core::TailWord earliest = core::earliest_retained(ring, ring.capacity / 8);
  if (!poll.reader.skip_to(earliest)) {
    refuse_resync(poll, earliest, "lapped");
    return;
  }
  note_progress(poll);
}

void SubscriberSlowState::on_corrupt(PollState& poll) noexcept {
  poll.status = PollStatus::corrupt;
  const std::uint64_t position = poll.reader.position();
  const std::uint64_t expected = poll.reader.next_sequence();
  const core::TailWord tail = channel->ring().load_tail();
  if (!poll.reader.skip_to(tail)) {
    refuse_resync(poll, tail, "at a record that failed validation");
    return;
  }
  last_error = fmt::format(
      "channel '{}': a record at position {} (expected sequence {}) failed validation; skipped to "
      "the tail",
      channel->info().name, position, expected);
  note_progress(poll);
}

void SubscriberSlowState::refuse_resync(PollState& poll, core::TailWord target,
                                        std::string_view why) noexcept {
  poll.status = PollStatus::corrupt;
  last_error = fmt::format(
      "channel '{}': the ring is corrupt: a reader at position {} (expected sequence {}), {}, "
      "found the place to resume at position {} sequence {}, which the ring cannot hold (a "
      "sequence jump larger than the frames between, or a position no writer produces); nothing "
      "is counted as lost or delivered from there",
      channel->info().name, poll.reader.position(), poll.reader.next_sequence(), why,
      target.position, target.next_sequence);
}

bool SubscriberSlowState::message_ready(const PollState& poll) const noexcept {
  if (poll.catching_up) [[unlikely]] return journal_ready(poll);
  return poll.reader.current_commit_word() == channel->ring().committed(poll.reader.position());
}

}  // namespace detail
}  // namespace shmbus
