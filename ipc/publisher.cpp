// The producer side of a channel. The hot path (try_claim, commit, try_publish) makes no system
// call, takes no lock and allocates nothing: one 16-byte CAS, the header stores, the payload and
// one release store. Gating readers are consulted through a cached floor that is re-scanned only
// when the gate epoch changes or the cached floor says the ring is full.
#include <algorithm>
#include <thread>

#include "ipc/channel.hpp"
#include "ipc/futex.hpp"
#include "ipc/publish_clock.hpp"
#include "shmbus/shmbus.hpp"

namespace shmbus {

using detail::ChannelMapping;

Result<Publisher> Publisher::open(std::string_view channel, const ChannelOptions& options) {
  auto mapping = ChannelMapping::open_or_create(channel, options);
  if (!mapping) return tl::unexpected(mapping.error());
  Publisher p;
  p.channel_ = std::move(*mapping);
  const detail::ProcessId self = detail::self_process();
  if (p.channel_->info().single_producer) {
    if (auto owned = take_exclusive(*p.channel_, self); !owned) return tl::unexpected(owned.error());
    p.exclusive_ = true;
  }
  auto slot = p.channel_->take_producer_slot(self);
  if (!slot) return tl::unexpected(slot.error());
  p.slot_ = *slot;
  p.writer_ = core::RingWriter(p.channel_->ring(), static_cast<std::uint16_t>(self.pid),
                               p.exclusive_);
  p.clock_ = std::make_unique<detail::PublishClock>();
  p.counters_ = options.counters;
  return p;
}

Result<void> Publisher::take_exclusive(detail::ChannelMapping& channel,
                                       const detail::ProcessId& self) {
  core::RingHeader& h = *channel.ring().header;
  const std::uint64_t mine = detail::pack_process(self);
  for (int attempt = 0; attempt < 100; ++attempt) {
    // acquire: pairs with the release of a previous owner's CAS or release store.
    std::uint64_t owner = h.exclusive_pid.load(std::memory_order_acquire);
    if (owner != 0) {
      const detail::ProcessId holder = detail::unpack_process(owner);
      if (holder.pid == self.pid || detail::process_alive(holder)) {
        return tl::unexpected(Error{ErrorCode::busy,
                                    "channel '" + channel.info().name +
                                        "' is single-producer and pid " +
                                        std::to_string(holder.pid) + " publishes to it"});
      }
    }
    // acq_rel: the winner alone owns the channel's claims from here on, and sees the tail the
    // previous owner stored before releasing it.
    if (h.exclusive_pid.compare_exchange_strong(owner, mine, std::memory_order_acq_rel)) {
      return {};
    }
  }
  return tl::unexpected(Error{ErrorCode::busy, "channel '" + channel.info().name +
                                                   "': cannot take the producer ownership"});
}

Publisher::Publisher(Publisher&& o) noexcept { *this = std::move(o); }

Publisher& Publisher::operator=(Publisher&& o) noexcept {
  if (this == &o) return *this;
  release_exclusive();
  channel_ = std::move(o.channel_);
  slot_ = std::exchange(o.slot_, nullptr);
  outstanding_ = o.outstanding_;
  published_ = o.published_;
  published_bytes_ = o.published_bytes_;
  counters_ = o.counters_;
  back_pressured_tries_ = o.back_pressured_tries_;
  writer_ = o.writer_;
  clock_ = std::move(o.clock_);
  gate_epoch_ = o.gate_epoch_;
  gate_floor_ = o.gate_floor_;
  exclusive_ = std::exchange(o.exclusive_, false);
  return *this;
}

Publisher::~Publisher() { release_exclusive(); }

void Publisher::release_exclusive() noexcept {
  if (channel_) {
    channel_->release_producer_slot(std::exchange(slot_, nullptr), published_, published_bytes_);
  }
  if (!exclusive_ || !channel_) return;
  std::uint64_t mine = detail::pack_process(detail::self_process());
  // release: the next owner (which acquires the word) sees the tail we stored last.
  channel_->ring().header->exclusive_pid.compare_exchange_strong(
      mine, 0, std::memory_order_release);  // release: see above
  exclusive_ = false;
}

const ChannelInfo& Publisher::info() const noexcept { return channel_->info(); }

std::uint64_t Publisher::gate_floor() noexcept {
  // seq_cst: a subscriber registers (RMW on the epoch) then loads the tail; either our load sees
  // its registration or its tail load sees our earlier claims (see Subscriber::open).
  const std::uint64_t epoch = channel_->control().gate_epoch.load(std::memory_order_seq_cst);
  if (epoch != gate_epoch_) {
    gate_epoch_ = epoch;
    gate_floor_ = channel_->scan_gate_floor();
  }
  return gate_floor_;
}

std::uint64_t Publisher::refresh_gate() noexcept {
  gate_epoch_ = UINT64_MAX;
  return gate_floor();
}

bool Publisher::wait_for_gate(std::uint64_t end) noexcept {
  // A subscriber registered while we claimed and needs space we already hold: wait for it to move
  // (or to be evicted if its process dies). Rare: only a registration racing a claim.
  for (std::uint32_t spins = 0;; ++spins) {
    const std::uint64_t floor = refresh_gate();
    if (floor == UINT64_MAX || end <= floor + channel_->ring().capacity) return true;
    if ((spins & 1023) == 1023) channel_->evict_dead_subscribers();
    std::this_thread::yield();
  }
}

PublishStatus Publisher::try_claim(std::uint32_t size, Claim& claim) noexcept {
  return try_claim_batch({&size, 1}, {&claim, 1});
}

PublishStatus Publisher::try_claim_batch(std::span<const std::uint32_t> sizes,
                                         std::span<Claim> claims) noexcept {
  if (sizes.size() > kMaxBatch || claims.size() < sizes.size()) return PublishStatus::too_large;
  // Uninitialised on purpose: zeroing 64 tickets would cost more than the claim itself.
  union TicketStorage {
    TicketStorage() noexcept {}
    core::ClaimTicket ticket;
  };
  TicketStorage storage[kMaxBatch];
  static_assert(sizeof(TicketStorage) == sizeof(core::ClaimTicket));
  const std::span<core::ClaimTicket> out(&storage[0].ticket, sizes.size());
  const bool track = !exclusive_ && outstanding_ == 0;
  if (track) {
    // Announce a lower bound of where this claim will start before making it, so that no other
    // producer laps it while we write (see ProducerSlot). relaxed load: any tail value read now
    // is at or below our claim's start. release store: made visible before the claim by the
    // CAS's full barrier; scan_gate_floor loads the tail before the slots.
    slot_->in_flight.store(
        __atomic_load_n(&channel_->ring().header->tail.position, __ATOMIC_RELAXED),
        std::memory_order_release);  // release: see above
  }
  core::ClaimStatus st = writer_.try_claim_batch(sizes, gate_floor(), out);
  if (st == core::ClaimStatus::back_pressured) {
    // The cached floor may be stale: look at the positions again.
    st = writer_.try_claim_batch(sizes, refresh_gate(), out);
  }
  if (st != core::ClaimStatus::ok) {
    // release: nothing was claimed; our bound goes.
    if (track) slot_->in_flight.store(detail::kNoClaim, std::memory_order_release);
    if (st == core::ClaimStatus::too_large) return PublishStatus::too_large;
    if (st == core::ClaimStatus::corrupt) return PublishStatus::corrupt;
    // relaxed: a statistic.
    channel_->control().back_pressure_events.fetch_add(1, std::memory_order_relaxed);
    // Dead processes may hold the floor: look for them now and then (reads /proc).
    if ((++back_pressured_tries_ & 1023) == 0) channel_->evict_dead_subscribers();
    return PublishStatus::back_pressured;
  }
  outstanding_ += static_cast<std::uint32_t>(sizes.size());
  // seq_cst: ordered after the claim CAS; a registration we did not see before claiming is seen
  // here (see gate_floor), and we hold the payload back until that subscriber has room.
  if (channel_->control().gate_epoch.load(std::memory_order_seq_cst) != gate_epoch_) {
    wait_for_gate(out.back().end);
  }
  // One clock read for the whole batch: it is the claim's time.
  const std::int64_t now = clock_->now_ns();
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    // The header is written with the commit (commit_with_header): one move of its cache line.
    out[i].timestamp_ns = now;
    writer_.begin(out[i], now);
    claims[i].ticket_ = out[i];
  }
  return PublishStatus::ok;
}

PublishStatus Publisher::claim(std::uint32_t size, Claim& claim,
                               std::chrono::nanoseconds timeout) noexcept {
  std::int64_t deadline = 0;
  for (std::uint32_t spins = 0;; ++spins) {
    const PublishStatus st = try_claim(size, claim);
    if (st != PublishStatus::back_pressured) return st;
    if ((spins & 63) != 63) continue;  // spin a little before reading the clock
    const std::int64_t now = detail::monotonic_ns();
    if (deadline == 0) deadline = now + timeout.count();
    if (now >= deadline) return PublishStatus::timed_out;
    if ((spins & 4095) == 4095) channel_->evict_dead_subscribers();
    std::this_thread::yield();
  }
}

void Publisher::claim_done() noexcept {
  // release: our bound goes only after the commit stores before it.
  if (--outstanding_ == 0 && !exclusive_) {
    slot_->in_flight.store(detail::kNoClaim, std::memory_order_release);  // release: above
  }
}

PublishStatus Publisher::commit(Claim& claim) noexcept {
  const core::CommitStatus st = writer_.commit_with_header(claim.ticket_, claim.ticket_.timestamp_ns);
  if (st == core::CommitStatus::ok && counters_) {
    // relaxed: statistics for tools, on our own slot's line; nothing is ordered by them. Plain
    // stores of our own running totals (we are the slot's only writer): no locked increment.
    slot_->published.store(++published_, std::memory_order_relaxed);
    published_bytes_ += claim.ticket_.length;
    slot_->published_bytes.store(published_bytes_, std::memory_order_relaxed);  // relaxed: above
  }
  claim_done();
  // relaxed: a hint; a sleeper that races this check re-checks within its sleep slice (1 ms).
  if (channel_->control().waiters.load(std::memory_order_relaxed) != 0) wake_waiters();
  return st == core::CommitStatus::ok ? PublishStatus::ok : PublishStatus::abandoned;
}

void Publisher::abandon(Claim& claim) noexcept {
  writer_.abandon(claim.ticket_);
  claim_done();
  // relaxed: as in commit.
  if (channel_->control().waiters.load(std::memory_order_relaxed) != 0) wake_waiters();
}

void Publisher::wake_waiters() noexcept {
  auto& ctl = channel_->control();
  // release: a sleeper that wakes and sees the new word also sees our commit.
  ctl.wake_word.fetch_add(1, std::memory_order_release);
  detail::futex_wake_all(ctl.wake_word);
}

std::uint64_t Publisher::durable_sequence() const noexcept {
  // acquire: pairs with the journaler's release in publish_journal_progress.
  return channel_->control().journal_durable.load(std::memory_order_acquire);
}

std::uint64_t Publisher::journaled_sequence() const noexcept {
  // acquire: as in durable_sequence.
  return channel_->control().journal_written.load(std::memory_order_acquire);
}

bool Publisher::wait_durable(std::uint64_t sequence, std::chrono::nanoseconds timeout) noexcept {
  auto& ctl = channel_->control();
  const std::int64_t start = detail::monotonic_ns();
  const std::int64_t deadline = start + timeout.count();
  std::int64_t next_alive_check = start;
  std::int64_t slice_ns = 20'000;
  for (std::uint32_t i = 0;; ++i) {
    if (durable_sequence() >= sequence) return true;
    if ((i & 63) != 63) continue;  // spin a little before reading the clock
    const std::int64_t now = detail::monotonic_ns();
    // acquire: as in find_journal (only whether one is attached matters here).
    const std::uint64_t owner = ctl.journal_owner.load(std::memory_order_acquire);
    if (owner == 0) return durable_sequence() >= sequence;
    if (now >= next_alive_check && (owner & detail::kJournalClaiming) == 0) {
      // Reads /proc: at most every 10 ms.
      if (!detail::process_alive(detail::unpack_process(owner))) {
        return durable_sequence() >= sequence;
      }
      next_alive_check = now + 10'000'000;
    }
    if (now >= deadline) return false;
    if (now - start < 50'000) continue;  // spin for the first 50 us: a batch fsync is that quick
    // Then sleep in slices growing to 1 ms.
    const std::int64_t nap = std::min(slice_ns, deadline - now);
    std::this_thread::sleep_for(std::chrono::nanoseconds(nap));
    slice_ns = std::min<std::int64_t>(slice_ns * 2, 1'000'000);
  }
}

PublishStatus Publisher::try_publish(std::span<const std::byte> payload) noexcept {
  Claim c;
  const PublishStatus st = try_claim(static_cast<std::uint32_t>(payload.size()), c);
  if (st != PublishStatus::ok) return st;
  std::memcpy(c.data(), payload.data(), payload.size());
  return commit(c);
}

PublishStatus Publisher::publish(std::span<const std::byte> payload,
                                 std::chrono::nanoseconds timeout) noexcept {
  if (payload.size() > UINT32_MAX) return PublishStatus::too_large;
  Claim c;
  const PublishStatus st = claim(static_cast<std::uint32_t>(payload.size()), c, timeout);
  if (st != PublishStatus::ok) return st;
  std::memcpy(c.data(), payload.data(), payload.size());
  return commit(c);
}

const char* to_string(PublishStatus status) noexcept {
  switch (status) {
    case PublishStatus::ok: return "ok";
    case PublishStatus::back_pressured: return "back-pressured";
    case PublishStatus::too_large: return "message too large";
    case PublishStatus::timed_out: return "timed out";
    case PublishStatus::abandoned: return "claim abandoned";
    case PublishStatus::corrupt: return "channel corrupt";
  }
  return "unknown";
}

const char* to_string(Policy policy) noexcept {
  switch (policy) {
    case Policy::block: return "block";
    case Policy::drop: return "drop";
    case Policy::spill: return "spill";
  }
  return "unknown";
}

}  // namespace shmbus
