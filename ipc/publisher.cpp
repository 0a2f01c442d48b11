// The producer side of a channel. The hot path (try_claim, commit, try_publish) makes no system
// call, takes no lock and allocates nothing: one 16-byte CAS, the header stores, the payload and
// one release store. Gating readers are consulted through a cached floor that is re-scanned only
// when the gate epoch changes or the cached floor says the ring is full.
#include <thread>

#include "ipc/channel.hpp"
#include "ipc/futex.hpp"
#include "shmbus/shmbus.hpp"

namespace shmbus {

using detail::ChannelMapping;

Result<Publisher> Publisher::open(std::string_view channel, const ChannelOptions& options) {
  auto mapping = ChannelMapping::open_or_create(channel, options);
  if (!mapping) return tl::unexpected(mapping.error());
  Publisher p;
  p.channel_ = std::move(*mapping);
  p.writer_ = core::RingWriter(p.channel_->ring(),
                               static_cast<std::uint16_t>(detail::self_process().pid));
  return p;
}

Publisher::Publisher(Publisher&&) noexcept = default;
Publisher& Publisher::operator=(Publisher&&) noexcept = default;
Publisher::~Publisher() = default;

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
  core::ClaimStatus st = writer_.try_claim(size, gate_floor(), claim.ticket_);
  if (st == core::ClaimStatus::back_pressured) {
    // The cached floor may be stale: look at the subscribers' positions again.
    st = writer_.try_claim(size, refresh_gate(), claim.ticket_);
    if (st == core::ClaimStatus::back_pressured) {
      // relaxed: a statistic.
      channel_->control().back_pressure_events.fetch_add(1, std::memory_order_relaxed);
      return PublishStatus::back_pressured;
    }
  }
  if (st == core::ClaimStatus::too_large) return PublishStatus::too_large;
  // seq_cst: ordered after the claim CAS; a registration we did not see before claiming is seen
  // here (see gate_floor), and we hold the payload back until that subscriber has room.
  if (channel_->control().gate_epoch.load(std::memory_order_seq_cst) != gate_epoch_) {
    wait_for_gate(claim.ticket_.end);
  }
  writer_.write_header(claim.ticket_, detail::realtime_ns());
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

PublishStatus Publisher::commit(Claim& claim) noexcept {
  const core::CommitStatus st = writer_.commit(claim.ticket_);
  // relaxed: a hint; a sleeper that races this check re-checks within its sleep slice (1 ms).
  if (channel_->control().waiters.load(std::memory_order_relaxed) != 0) wake_waiters();
  return st == core::CommitStatus::ok ? PublishStatus::ok : PublishStatus::abandoned;
}

void Publisher::abandon(Claim& claim) noexcept {
  writer_.abandon(claim.ticket_);
  // relaxed: as in commit.
  if (channel_->control().waiters.load(std::memory_order_relaxed) != 0) wake_waiters();
}

void Publisher::wake_waiters() noexcept {
  auto& ctl = channel_->control();
  // release: a sleeper that wakes and sees the new word also sees our commit.
  ctl.wake_word.fetch_add(1, std::memory_order_release);
  detail::futex_wake_all(ctl.wake_word);
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
