#include "journal/writer_durability.hpp"

#include <algorithm>

namespace shmbus::journal {

void DurabilityTracker::start(std::uint64_t recovered_through, Clock::time_point now) noexcept {
  written_ = recovered_through;
  durable_ = policy_ != FsyncPolicy::never ? written_ : 0;
  next_interval_sync_ = now + interval_;
}

void DurabilityTracker::advance_written(std::uint64_t sequence) noexcept {
  written_ = std::max(written_, sequence);
}

bool DurabilityTracker::requested_sync_written() const noexcept {
  return sync_requested_through_ > durable_ && written_ >= sync_requested_through_;
}

bool DurabilityTracker::interval_sync_waiting() const noexcept {
  return policy_ == FsyncPolicy::interval && written_ > durable_;
}

bool DurabilityTracker::settled_through(std::uint64_t last) const noexcept {
  return policy_ == FsyncPolicy::never || durable_ >= last;
}

bool DurabilityTracker::round_due(Clock::time_point now) const noexcept {
  if (policy_ == FsyncPolicy::never || syncs_in_flight_ > 0 || written_ <= durable_) return false;
  const bool interval_passed = policy_ == FsyncPolicy::interval && now >= next_interval_sync_;
  return requested_sync_written() || interval_passed;
}

void DurabilityTracker::begin_round(Clock::time_point now) noexcept {
  round_covers_through_ = written_;
  next_interval_sync_ = now + interval_;
}

void DurabilityTracker::end_issuing(bool covered_every_file) noexcept {
  if (!covered_every_file) round_covers_through_ = durable_;
  if (syncs_in_flight_ == 0) durable_ = std::max(durable_, round_covers_through_);
}

void DurabilityTracker::sync_completed(bool writer_stopped) noexcept {
  --syncs_in_flight_;
  if (syncs_in_flight_ == 0 && !writer_stopped) {
    durable_ = std::max(durable_, round_covers_through_);
  }
}

}  // namespace shmbus::journal
