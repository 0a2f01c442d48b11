// The producer side of a channel. The hot path (try_claim, commit, try_publish) makes no system
// call, takes no lock and allocates nothing: one 16-byte CAS, the header stores, the payload and
// one release store. Gating readers are consulted through a cached floor that is re-scanned only
// when the gate epoch changes or the cached floor says the ring is full.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "ipc/futex.hpp"
#include "ipc/publisher_state.hpp"
#include "shmbus/publisher.hpp"

namespace shmbus {

using detail::ChannelMapping;

namespace {

// Takes the single-producer ownership of the channel: from nobody, or from a dead process.
Result<void> take_exclusive(ChannelMapping& channel, const detail::ProcessId& self) {
  core::RingHeader& h = *channel.ring().header;
  const std::uint64_t mine = detail::pack_process(self);
  for (int attempt = 0; attempt < 100; ++attempt) {
    // acquire: pairs with the release of a previous owner's CAS or release store.
    std::uint64_t owner = h.exclusive_pid.load(std::memory_order_acquire);
    if (owner != 0) {
      const detail::ProcessId holder = detail::unpack_process(owner);
      if (holder.pid == self.pid || detail::process_alive(holder)) {
        return tl::unexpected(Error{
            ErrorCode::busy, fmt::format("channel '{}' is single-producer and pid {} publishes to it",
                                         channel.info().name, holder.pid)});
      }
    }
    // acq_rel: the winner alone owns the channel's claims from here on, and sees the tail the
    // previous owner stored before releasing it.
    if (h.exclusive_pid.compare_exchange_strong(owner, mine, std::memory_order_acq_rel)) {
      return {};
    }
  }
  return tl::unexpected(Error{
      ErrorCode::busy,
      fmt::format("channel '{}': cannot take the producer ownership", channel.info().name)});
}

}  // namespace

Result<Publisher> Publisher::open(std::string_view channel) {
  ChannelOptions options;
  options.accept_existing = true;  // no configuration asked for: any existing one will do
  return open(channel, options);
}

Result<Publisher> Publisher::open(std::string_view channel, const ChannelOptions& options) {
  auto mapping = ChannelMapping::open_or_create(channel, options);
  if (!mapping) return tl::unexpected(mapping.error());
  Publisher p;
  p.state_ = std::make_unique<detail::PublisherState>();
  detail::PublisherState& s = *p.state_;
  s.channel = std::move(*mapping);
  const detail::ProcessId self = detail::self_process();
  if (s.channel->info().single_producer) {
    if (auto owned = take_exclusive(*s.channel, self); !owned) return tl::unexpected(owned.error());
    s.exclusive = true;
  }
  auto slot = s.channel->take_producer_slot(self);
  if (!slot) return tl::unexpected(slot.error());
  s.slot = *slot;
  s.control = &s.channel->control();
  s.writer = core::RingWriter(s.channel->ring(), static_cast<std::uint16_t>(self.pid), s.exclusive);
  s.counters = options.counters;
  return p;
}

Publisher::Publisher(Publisher&&) noexcept = default;
Publisher& Publisher::operator=(Publisher&&) noexcept = default;
Publisher::~Publisher() = default;

namespace detail {

PublisherState::~PublisherState() {
  if (!channel) return;
  channel->release_producer_slot(slot, published, published_bytes);
  if (!exclusive) return;
  std::uint64_t mine = pack_process(self_process());
  // release: the next owner (which acquires the word) sees the tail we stored last.
  channel->ring().header->exclusive_pid.compare_exchange_strong(
      mine, 0, std::memory_order_release);  // release: see above
}

std::uint64_t PublisherState::scan_gate(std::uint64_t epoch) noexcept {
  gate_epoch = epoch;
  const ChannelMapping::GateFloor floor = channel->scan_gate_floor();
  gate_floor = floor.position;
  gate_source = floor.source;
  return gate_floor;
}

std::uint64_t PublisherState::refresh_gate() noexcept {
  // seq_cst: as in current_gate_floor.
  return scan_gate(control->gate_epoch.load(std::memory_order_seq_cst));
}

void PublisherState::wait_for_gate(std::uint64_t end) noexcept {
  // Rare: only a registration racing a claim. Waits for that subscriber to move (or to be
  // evicted if its process dies).
  for (std::uint32_t spins = 0;; ++spins) {
    const std::uint64_t floor = refresh_gate();
    if (floor == UINT64_MAX || end <= floor + channel->ring().capacity) return;
    if ((spins & 1023) == 1023) channel->evict_dead_subscribers();
    std::this_thread::yield();
  }
}

PublishStatus PublisherState::claim_failed(core::ClaimStatus status, bool announced) noexcept {
  // release: nothing was claimed; our bound goes.
  if (announced) slot->in_flight.store(kNoClaim, std::memory_order_release);
  if (status == core::ClaimStatus::too_large) return PublishStatus::too_large;
  if (status == core::ClaimStatus::corrupt) return PublishStatus::corrupt;
  // One event per episode (docs/observability.md): a producer retrying against a stopped
  // subscriber fails millions of times, and each retry is not news. relaxed: a statistic.
  if (!ring_full) control->back_pressure_events.fetch_add(1, std::memory_order_relaxed);
  ring_full = true;
  // Dead processes may hold the floor: look for them now and then (reads /proc).
  if ((++back_pressured_tries & 1023) == 0) channel->evict_dead_subscribers();
  return PublishStatus::back_pressured;
}

void PublisherState::wake_waiters() noexcept {
  ControlHeader& ctl = *control;
  // acq_rel: one producer takes the armed flag and wakes every sleeper; release, so that a sleeper
  // whose next arming exchange reads our zero also sees the record committed before.
  if (ctl.waiters.exchange(0, std::memory_order_acq_rel) == 0) return;
  // release: a sleeper that wakes and sees the new word also sees our commit.
  ctl.wake_word.fetch_add(1, std::memory_order_release);
  futex_wake_all(ctl.wake_word);
}

}  // namespace detail

const ChannelInfo& Publisher::info() const noexcept { return state_->channel->info(); }

namespace {

// The single-message claim, shared by try_claim and try_publish: inline so that try_publish is
// one straight line of code from the gate check to the commit store.
// One copy per kind of channel (kExclusive: single-producer), so neither pays for the other's
// checks.
template <bool kExclusive>
[[gnu::always_inline]] inline PublishStatus claim_one(detail::PublisherState& s,
                                                      std::uint32_t size,
                                                      core::ClaimTicket& t) noexcept {
  const bool track = !kExclusive && s.outstanding == 0;
  if (track) s.announce_claim();
  core::ClaimStatus st = s.writer.try_claim_as<kExclusive>(size, s.current_gate_floor(), t);
  if (st == core::ClaimStatus::back_pressured && s.gate_may_have_moved()) {
    // The cached floor is stale: look at the positions again.
    st = s.writer.try_claim_as<kExclusive>(size, s.refresh_gate(), t);
  }
  if (st != core::ClaimStatus::ok) [[unlikely]] return s.claim_failed(st, track);
  s.ring_full = false;  // a claim that succeeds ends a back-pressure episode
  if constexpr (!kExclusive) ++s.outstanding;
  // seq_cst: ordered after the claim; a registration we did not see before claiming is seen
  // here (see current_gate_floor), and we hold the payload back until that subscriber has room.
  if (s.control->gate_epoch.load(std::memory_order_seq_cst) != s.gate_epoch) [[unlikely]] {
    s.wait_for_gate(t.end);
  }
  t.timestamp_ns = s.clock.now_ns();
  // The header is written with the commit (commit_record): one move of its cache line.
  s.writer.begin(t, t.timestamp_ns);
  return PublishStatus::ok;
}

template <bool kExclusive>
[[gnu::always_inline]] inline PublishStatus commit_one(detail::PublisherState& s,
                                                       std::uint64_t position,
                                                       std::uint32_t length,
                                                       std::uint64_t sequence,
                                                       std::int64_t timestamp_ns,
                                                       core::RecordType type) noexcept {
  const core::CommitStatus st =
      s.writer.commit_record(position, length, sequence, timestamp_ns, type);
  if (st == core::CommitStatus::ok && s.counters) {
    // relaxed: statistics for tools, on our own slot's line; nothing is ordered by them. Plain
    // stores of our own running totals (we are the slot's only writer): no locked increment.
    s.slot->published.store(++s.published, std::memory_order_relaxed);
    s.published_bytes += length;
    s.slot->published_bytes.store(s.published_bytes, std::memory_order_relaxed);  // relaxed: above
  }
  s.claim_done();
  // relaxed: a hint; a sleeper that races this check re-checks within its sleep slice (1 ms).
  if (s.control->waiters.load(std::memory_order_relaxed) != 0) [[unlikely]] {
    s.wake_waiters();
  }
  return st == core::CommitStatus::ok ? PublishStatus::ok : PublishStatus::abandoned;
}

static_assert(kMaxKeyLength == core::kMaxKeyLength);

bool tag_is_empty(const RecordTag& tag) noexcept {
  return tag.key.empty() && tag.message_type == 0;
}

// A tagged claim: the record is `size` payload bytes after the tag, which is laid here (the claim
// is ours until committed). `t` covers the whole record; the payload starts tag_size() in.
template <bool kExclusive>
[[gnu::always_inline]] inline PublishStatus claim_tagged(detail::PublisherState& s,
                                                         std::uint32_t size, const RecordTag& tag,
                                                         core::ClaimTicket& t) noexcept {
  if (tag.key.size() > kMaxKeyLength) return PublishStatus::too_large;
  const std::uint32_t tag_bytes = core::tag_size(static_cast<std::uint32_t>(tag.key.size()));
  if (size > UINT32_MAX - tag_bytes) return PublishStatus::too_large;
  const PublishStatus st = claim_one<kExclusive>(s, size + tag_bytes, t);
  if (st != PublishStatus::ok) return st;
  core::write_tag(t.payload, tag.key, tag.message_type);
  t.type = core::RecordType::tagged;
  return PublishStatus::ok;
}

// Held back by a slow block subscriber, a producer backs off in three steps so that it neither
// burns its core nor keeps taking the subscribers' lines: it spins with a pause per attempt for
// the first 50 us, yields until 1 ms, then sleeps in slices growing to 200 us. Room appears in
// steps anyway: a subscriber publishes its position every sixteenth of the ring it reads.
template <class TryClaim>
PublishStatus claim_with_backoff(detail::PublisherState& s, TryClaim&& try_claim,
                                 std::chrono::nanoseconds timeout) noexcept {
  constexpr std::int64_t kSpinNs = 50'000;
  constexpr std::int64_t kYieldNs = 1'000'000;
  constexpr std::int64_t kLongestNapNs = 200'000;
  std::int64_t start = 0;
  std::int64_t nap_ns = 1'000;
  for (std::uint32_t spins = 0;; ++spins) {
    const PublishStatus st = try_claim();
    if (st != PublishStatus::back_pressured) return st;
    if ((spins & 63) != 63) {
      _mm_pause();  // spin a little before reading the clock
      continue;
    }
    const std::int64_t now = detail::monotonic_ns();
    if (start == 0) start = now;
    const std::int64_t waited = now - start;
    if (waited >= timeout.count()) return PublishStatus::timed_out;
    if ((spins & 4095) == 4095) s.channel->evict_dead_subscribers();
    if (waited < kSpinNs) continue;
    if (waited < kYieldNs) {
      std::this_thread::yield();
      continue;
    }
    std::this_thread::sleep_for(
        std::chrono::nanoseconds(std::min(nap_ns, timeout.count() - waited)));
    nap_ns = std::min(nap_ns * 2, kLongestNapNs);
  }
}

}  // namespace

PublishStatus Publisher::try_claim(std::uint32_t size, Claim& claim) noexcept {
  detail::PublisherState& s = *state_;
  core::ClaimTicket t;
  const PublishStatus st = s.exclusive ? claim_one<true>(s, size, t) : claim_one<false>(s, size, t);
  if (st != PublishStatus::ok) return st;
  detail::PublisherState::fill_claim(claim, t, 0);
  return PublishStatus::ok;
}

PublishStatus Publisher::try_claim(std::uint32_t size, Claim& claim,
                                   const RecordTag& tag) noexcept {
  if (tag_is_empty(tag)) return try_claim(size, claim);
  detail::PublisherState& s = *state_;
  core::ClaimTicket t;
  const PublishStatus st = s.exclusive ? claim_tagged<true>(s, size, tag, t)
                                       : claim_tagged<false>(s, size, tag, t);
  if (st != PublishStatus::ok) return st;
  const std::uint32_t tag_bytes = core::tag_size(static_cast<std::uint32_t>(tag.key.size()));
  detail::PublisherState::fill_claim(claim, t, tag_bytes);
  return PublishStatus::ok;
}

PublishStatus Publisher::try_claim_batch(std::span<const std::uint32_t> sizes,
                                         std::span<Claim> claims) noexcept {
  if (sizes.size() > kMaxBatch || claims.size() < sizes.size()) return PublishStatus::too_large;
  detail::PublisherState& s = *state_;
  // Uninitialised on purpose: zeroing 64 tickets would cost more than the claim itself.
  union TicketStorage {
    TicketStorage() noexcept {}
    core::ClaimTicket ticket;
  };
  TicketStorage storage[kMaxBatch];
  static_assert(sizeof(TicketStorage) == sizeof(core::ClaimTicket));
  const std::span<core::ClaimTicket> out(&storage[0].ticket, sizes.size());
  const bool track = !s.exclusive && s.outstanding == 0;
  if (track) s.announce_claim();
  core::ClaimStatus st = s.writer.try_claim_batch(sizes, s.current_gate_floor(), out);
  if (st == core::ClaimStatus::back_pressured && s.gate_may_have_moved()) {
    // The cached floor is stale: look at the positions again.
    st = s.writer.try_claim_batch(sizes, s.refresh_gate(), out);
  }
  if (st != core::ClaimStatus::ok) return s.claim_failed(st, track);
  s.ring_full = false;  // a claim that succeeds ends a back-pressure episode
  if (!s.exclusive) s.outstanding += static_cast<std::uint32_t>(sizes.size());
  // seq_cst: ordered after the claim CAS; a registration we did not see before claiming is seen
  // here (see current_gate_floor), and we hold the payload back until that subscriber has room.
  if (s.control->gate_epoch.load(std::memory_order_seq_cst) != s.gate_epoch) {
    s.wait_for_gate(out.back().end);
  }
  // One clock read for the whole batch: it is the claim's time.
  const std::int64_t now = s.clock.now_ns();
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    // The header is written with the commit (commit_record): one move of its cache line.
    const core::ClaimTicket& t = out[i];
    s.writer.begin(t, now);
    Claim& c = claims[i];
    c.payload_ = t.payload;
    c.length_ = t.length;
    c.sequence_ = t.sequence;
    c.position_ = t.position;
    c.start_ = t.start;
    c.end_ = t.end;
    c.timestamp_ns_ = now;
    c.record_length_ = t.length;
    c.record_type_ = static_cast<std::uint16_t>(core::RecordType::data);
  }
  return PublishStatus::ok;
}

PublishStatus Publisher::claim(std::uint32_t size, Claim& claim,
                               std::chrono::nanoseconds timeout) noexcept {
  return claim_with_backoff(
      *state_, [&]() noexcept { return try_claim(size, claim); }, timeout);
}

PublishStatus Publisher::claim(std::uint32_t size, Claim& claim, const RecordTag& tag,
                               std::chrono::nanoseconds timeout) noexcept {
  return claim_with_backoff(
      *state_, [&]() noexcept { return try_claim(size, claim, tag); }, timeout);
}

PublishStatus Publisher::commit(Claim& claim) noexcept {
  detail::PublisherState& s = *state_;
  const auto type = static_cast<core::RecordType>(claim.record_type_);
  return s.exclusive ? commit_one<true>(s, claim.position_, claim.record_length_,
                                        claim.sequence_, claim.timestamp_ns_, type)
                     : commit_one<false>(s, claim.position_, claim.record_length_,
                                         claim.sequence_, claim.timestamp_ns_, type);
}

void Publisher::abandon(Claim& claim) noexcept {
  detail::PublisherState& s = *state_;
  // The whole record, tag included: readers step over its frame.
  s.writer.abandon(core::ClaimTicket{nullptr, claim.record_length_, claim.position_,
                                     claim.sequence_, claim.start_, claim.end_,
                                     claim.timestamp_ns_});
  s.claim_done();
  // relaxed: as in commit.
  if (s.control->waiters.load(std::memory_order_relaxed) != 0) s.wake_waiters();
}

PublishStatus Publisher::publish_gap(std::uint64_t count, std::chrono::nanoseconds timeout,
                                     std::uint64_t* published) noexcept {
  detail::PublisherState& s = *state_;
  // A batch takes at most one maximum-size frame (try_claim_batch), so a channel with a small
  // max_message claims fewer zero-length records at once.
  const std::uint64_t per_frame = core::frame_size(s.channel->info().max_message) /
                                  core::frame_size(0);
  const std::size_t batch =
      static_cast<std::size_t>(std::clamp<std::uint64_t>(per_frame, 1, kMaxBatch));
  static constexpr std::uint32_t kZeroLengths[kMaxBatch] = {};
  Claim claims[kMaxBatch];
  std::uint64_t done = 0;
  PublishStatus st = PublishStatus::ok;
  while (done < count) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(batch, count - done));
    st = claim_with_backoff(
        s,
        [&]() noexcept {
          return try_claim_batch(std::span(kZeroLengths, n), std::span(claims, n));
        },
        timeout);
    if (st != PublishStatus::ok) break;
    // Abandoned, not committed: readers step over each frame and count its sequence as lost, so
    // the next record they receive carries lost_before for the whole run.
    for (std::size_t i = 0; i < n; ++i) abandon(claims[i]);
    done += n;
  }
  if (published != nullptr) *published = done;
  return st;
}

std::uint64_t Publisher::next_sequence() const noexcept {
  // acquire: pairs with the release of the claim that stored this tail; a single producer
  // restarting reads the sequence its predecessor's last claim left.
  return state_->channel->ring().claimed_sequence(std::memory_order_acquire);
}

std::uint64_t Publisher::durable_sequence() const noexcept {
  // acquire: pairs with the journaler's release in publish_journal_progress.
  return state_->channel->control().journal_durable.load(std::memory_order_acquire);
}

std::uint64_t Publisher::journaled_sequence() const noexcept {
  // acquire: as in durable_sequence.
  return state_->channel->control().journal_written.load(std::memory_order_acquire);
}

bool Publisher::wait_durable(std::uint64_t sequence, std::chrono::nanoseconds timeout) noexcept {
  auto& ctl = state_->channel->control();
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

namespace {

template <bool kExclusive>
PublishStatus publish_one(detail::PublisherState& s, std::span<const std::byte> payload) noexcept {
  core::ClaimTicket t;
  const PublishStatus st = claim_one<kExclusive>(s, static_cast<std::uint32_t>(payload.size()), t);
  if (st != PublishStatus::ok) return st;
  std::memcpy(t.payload, payload.data(), payload.size());
  return commit_one<kExclusive>(s, t.position, t.length, t.sequence, t.timestamp_ns,
                                core::RecordType::data);
}

template <bool kExclusive>
PublishStatus publish_tagged(detail::PublisherState& s, std::span<const std::byte> payload,
                             const RecordTag& tag) noexcept {
  core::ClaimTicket t;
  const PublishStatus st =
      claim_tagged<kExclusive>(s, static_cast<std::uint32_t>(payload.size()), tag, t);
  if (st != PublishStatus::ok) return st;
  if (!payload.empty()) {
    std::memcpy(t.payload + (t.length - payload.size()), payload.data(), payload.size());
  }
  return commit_one<kExclusive>(s, t.position, t.length, t.sequence, t.timestamp_ns, t.type);
}

}  // namespace

PublishStatus Publisher::try_publish(std::span<const std::byte> payload) noexcept {
  if (payload.size() > UINT32_MAX) [[unlikely]] return PublishStatus::too_large;
  detail::PublisherState& s = *state_;
  return s.exclusive ? publish_one<true>(s, payload) : publish_one<false>(s, payload);
}

PublishStatus Publisher::try_publish(std::span<const std::byte> payload,
                                     const RecordTag& tag) noexcept {
  if (tag_is_empty(tag)) return try_publish(payload);
  if (payload.size() > UINT32_MAX) return PublishStatus::too_large;
  detail::PublisherState& s = *state_;
  return s.exclusive ? publish_tagged<true>(s, payload, tag)
                     : publish_tagged<false>(s, payload, tag);
}

PublishStatus Publisher::publish(std::span<const std::byte> payload, const RecordTag& tag,
                                 std::chrono::nanoseconds timeout) noexcept {
  if (payload.size() > UINT32_MAX) return PublishStatus::too_large;
  Claim c;
  const PublishStatus st = claim(static_cast<std::uint32_t>(payload.size()), c, tag, timeout);
  if (st != PublishStatus::ok) return st;
  if (!payload.empty()) std::memcpy(c.data(), payload.data(), payload.size());
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
