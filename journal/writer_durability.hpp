// Which records the journal writer may call written and durable, and when an fdatasync round is
// due. Pure bookkeeping (the writer issues the fdatasyncs), so it is tested without files.
//
// Written: the last sequence of the longest prefix of writes that has completed. Durable: moved,
// when a round's last fdatasync completes, to what was written when the round was issued, and
// only if every fdatasync of the round succeeded and the round covered every file with writes
// since its last fdatasync. After a failed fdatasync the kernel may have dropped the dirty pages
// it could not write, so a retried fdatasync can report success for data that is lost: the writer
// stops, and durable never moves again.
#pragma once

#include <chrono>
#include <cstdint>

#include "journal/writer.hpp"

namespace shmbus::journal {

class DurabilityTracker {
 public:
  using Clock = std::chrono::steady_clock;

  DurabilityTracker(FsyncPolicy policy, std::chrono::milliseconds interval) noexcept
      : policy_(policy), interval_(interval) {}

  // At open: recovery found records up to `recovered_through` and, unless the policy is never,
  // fdatasynced them, so they count as durable too.
  void start(std::uint64_t recovered_through, Clock::time_point now) noexcept;

  std::uint64_t written() const noexcept { return written_; }
  std::uint64_t durable() const noexcept { return durable_; }
  // Every write up to one ending with `sequence` has completed.
  void advance_written(std::uint64_t sequence) noexcept;

  // Asks for a round as soon as `sequence` is written (flush under FsyncPolicy::batch, drain).
  void request_sync_through(std::uint64_t sequence) noexcept { sync_requested_through_ = sequence; }
  // A requested round is due: what it asks for is written and not yet durable.
  bool requested_sync_written() const noexcept;
  // FsyncPolicy::interval has written records waiting for their round (a reason to wake up).
  bool interval_sync_waiting() const noexcept;
  Clock::time_point next_interval_sync() const noexcept { return next_interval_sync_; }
  // Every record up to `last` is as safe as the policy asks for.
  bool settled_through(std::uint64_t last) const noexcept;

  // A round should be issued now: the policy syncs, no round is in flight, something written is
  // not durable, and a requested round is written or the interval has passed.
  bool round_due(Clock::time_point now) const noexcept;
  // Issuing a round: it covers what is written now; the next interval round is counted from now.
  void begin_round(Clock::time_point now) noexcept;
  // What the round in flight makes durable when it succeeds (what durable() already says when it
  // proves nothing new): the sequence the durable mark records for it.
  std::uint64_t round_target() const noexcept { return round_covers_through_; }
  void sync_issued() noexcept { ++syncs_in_flight_; }
  // `covered_every_file`: false when some file with new writes got no fdatasync (the ring was
  // full): then the round proves nothing new. A round of no fdatasyncs ends here.
  void end_issuing(bool covered_every_file) noexcept;
  // One fdatasync of the round completed. `writer_stopped`: a failed fdatasync (or any other hard
  // error) stopped the writer, and durable stays where it is.
  void sync_completed(bool writer_stopped) noexcept;
  unsigned syncs_in_flight() const noexcept { return syncs_in_flight_; }

 private:
  FsyncPolicy policy_;
  std::chrono::milliseconds interval_;
  std::uint64_t written_ = 0;
  std::uint64_t durable_ = 0;
  std::uint64_t sync_requested_through_ = 0;
  std::uint64_t round_covers_through_ = 0;  // written when the round in flight was issued
  unsigned syncs_in_flight_ = 0;
  Clock::time_point next_interval_sync_{};
};

}  // namespace shmbus::journal
