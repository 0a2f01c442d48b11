// The journaler: a subscriber of one channel that writes every record to a journal directory.
// `shmbus record` runs it as a process; an application can run it on a thread of its own.
//
//   shmbus::JournalerOptions o;
//   o.channel = "md.eurusd";
//   o.writer.dir = "/var/lib/shmbus/md.eurusd";
//   auto j = shmbus::Journaler::open(o).value();
//   std::atomic<bool> stop{false};
//   j.run(stop);  // until stop is set; drains what it holds before returning
//
// Lossless by default: it is a gating (block) subscriber whose ring position moves only once the
// records before it are written to the files (manual release), so a journaler killed at any moment
// loses nothing: the ring still holds what it had not written, and the restarted journaler (the
// same subscriber name) resumes there, skipping what the files already have. With `lossy` it never
// gates: what it misses is written as an explicit gap record. A journaler that was down past its
// liveness timeout was evicted; on restart it writes a gap record for what the ring no longer has.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "shmbus/journal_options.hpp"
#include "shmbus/shmbus.hpp"

namespace shmbus {

struct JournalerOptions {
  std::string channel;
  // Where and how to write: dir, segment size, retention, fsync policy, O_DIRECT, buffers.
  // channel and incarnation are filled in by the journaler.
  journal::WriterOptions writer;
  std::string name = "journal";  // the subscriber name a restart resumes under
  bool lossy = false;            // drop policy + gap records instead of gating the producers
  // A new journal (empty directory) starts at the earliest record the ring still holds.
  StartFrom start = StartFrom::earliest;
  std::chrono::nanoseconds liveness_timeout = std::chrono::seconds(5);
  std::chrono::milliseconds open_timeout{2000};  // waiting for the channel to exist
  // How long appended records may wait in a partly filled buffer when the channel goes quiet
  // (full buffers are written at once). Bounds how far the files trail a trickle of messages;
  // shorter means more, smaller writes.
  std::chrono::microseconds flush_interval{1000};
  // When it finds nothing to read, the journaler naps this long rather than sleeping on the
  // channel's futex (a futex sleeper makes every commit pay a wake-up system call). Each wake-up
  // is a timer interrupt and a context switch on a CPU that may run a producer: on 2 shared
  // cores `shmbus bench journal` measured the producer-to-subscriber p99 at 2.3x to 4.3x of no
  // journal with 100 us naps, 1.6x to 2.2x with 1 ms. The ring must hold what is published
  // meanwhile (with flush_interval) or a gating journaler slows the producers.
  std::chrono::microseconds idle_nap{1000};
  // While writes fail (disk full, I/O errors), step() stops reading the channel; a batch already
  // being read may find every buffer full. Then it waits, retrying, until the writes succeed again
  // (true), or fails the step (false). Either way nothing is lost: records are released from the
  // ring only once written. `should_stop`, when given, ends such a wait early (SIGTERM).
  bool wait_while_blocked = true;
  std::function<bool()> should_stop;
  // Told (once per episode) when such a wait begins, with the writer's error.
  std::function<void(const std::string&)> on_blocked_wait;
};

struct JournalerStats {
  std::uint64_t recorded = 0;       // data records appended
  std::uint64_t gap_records = 0;    // gap records appended
  std::uint64_t lost = 0;           // sequences covered by those gap records
  std::uint64_t duplicates = 0;     // records skipped because the journal already had them
  std::uint64_t written_sequence = 0;
  std::uint64_t durable_sequence = 0;
  bool blocked = false;             // writes failing (disk full, I/O error); see last_error
};

class Journaler {
 public:
  // Recovers the directory (report says what was cut or found damaged), opens the channel as a
  // named subscriber and registers as the channel's journaler (one per channel: busy otherwise).
  static Result<Journaler> open(const JournalerOptions& options,
                                journal::RecoveryReport* report = nullptr);

  Journaler(Journaler&&) noexcept;
  Journaler& operator=(Journaler&&) noexcept;
  ~Journaler();  // drains (bounded), releases what was written, unregisters

  // One step: reaps finished writes (and releases ring space behind them), reads and appends what
  // the channel has, submits when idle. Returns the number of data records appended; waits up to
  // `idle_wait` for news when there was nothing to do.
  Result<std::size_t> step(std::chrono::milliseconds idle_wait = std::chrono::milliseconds(1));
  // Steps until `stop` is true, then drains. Returns the first hard error (the journaler cannot go
  // on: fsync failure, lost directory, evicted...). Retryable write errors (disk full) only make
  // it wait, gating the producers (or, lossy, dropping into a gap record).
  Result<void> run(const std::atomic<bool>& stop);
  // Waits until everything appended so far is written (and synced, if the policy syncs).
  Result<void> drain(std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000));

  // Stops without unregistering, as a crash would: the gate stays where the last written record
  // left it, so producers wait for a successor (or, past the liveness timeout once this process
  // has exited, evict it). For a process about to exit after a fatal error (shmbus record does):
  // a journaler restarted within the liveness timeout then loses nothing. Nothing else may be
  // called afterwards.
  void abandon() noexcept;

  JournalerStats stats() const noexcept;
  const std::string& last_error() const noexcept;

 private:
  Journaler();
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace shmbus
