// Appending a channel's records to a journal directory through io_uring.
//
// append() copies a record into the current write buffer (no system call); when a buffer fills,
// or on flush(), it is submitted as one write and the next free buffer is used, so several writes
// are in flight while the caller keeps appending. Buffers are allocated once and reused (registered
// with the ring when the kernel allows). Completions are reaped by reap(); a failed or short write is
// never dropped: its bytes stay in their buffer and are written again (every retry_interval) until
// the cause is gone; the caller sees blocked() and decides whether to wait or give up.
//
// Recovery happens in open(): the newest segment is scanned, a torn tail is cut off (how much is
// reported), damage in the middle is reported, and appends continue at the next sequence. A segment
// with damage is left untouched and appends continue in a new segment after its last valid record.
// Segments are created when the first record for them is appended (a new journal has none).
//
// Threading: a JournalWriter is used by one thread at a time. It shares no memory with other
// threads or processes (readers see the files only), so nothing in it is atomic.
//
// Errors come in two kinds. Retryable write errors (ENOSPC, EDQUOT, EFBIG, EIO, EINTR, EAGAIN, a
// short write) block the writer as described above. Hard errors (a failed fdatasync, EROFS, EBADF,
// ...) stop it for good: reap(), drain(), flush() and append() return that error from then on and
// durable_sequence() never moves again: after a failed fsync the kernel may have dropped the dirty
// pages it could not write, so a retried fsync can report success for data that is lost. The
// caller closes the writer and opens the journal again.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "journal/format.hpp"
#include "journal/record_run.hpp"
#include "shmbus/journal_options.hpp"
#include "shmbus/result.hpp"

namespace shmbus::journal {

// Counters for tools and the closing figures.
struct WriterStats {
  std::uint64_t records = 0, gap_records = 0, bytes = 0;  // appended
  // writes: segment and index writes submitted (retries not counted: retried_writes);
  // write_errors: failed or short completions; fsyncs: fdatasyncs completed successfully.
  std::uint64_t writes = 0, fsyncs = 0, write_errors = 0, retried_writes = 0;
  std::uint64_t segments_created = 0, segments_deleted = 0;
};

class JournalWriter {
 public:
  // Creates the directory if missing, takes an exclusive lock on it (one journaler per directory:
  // ErrorCode::busy names the holder), recovers it, and opens or creates the newest segment.
  static Result<JournalWriter> open(const WriterOptions& options, RecoveryReport* report = nullptr);

  JournalWriter(JournalWriter&&) noexcept;
  JournalWriter& operator=(JournalWriter&&) noexcept;
  ~JournalWriter();  // drains in-flight writes (best effort) and closes

  // The sequence the next record must carry (0 if the journal is empty: any sequence may start).
  std::uint64_t next_sequence() const noexcept;

  // Appends a data record / a gap record. `sequence` must equal next_sequence() (unless the journal
  // is empty); anything else is ErrorCode::invalid_argument and nothing is written. May submit a
  // full buffer. While writes fail, bytes wait in their buffers (see blocked()); only when every
  // buffer is full does append return an error (ErrorCode::no_space, or system), appending nothing.
  // When the buffers are merely in flight (nothing failed) that error is ErrorCode::busy: reap(true)
  // and append again. A segment roll creates the next file here (synchronously, rarely).
  Result<void> append(std::uint64_t sequence, std::int64_t timestamp_ns,
                      std::span<const std::byte> payload);
  Result<void> append_gap(std::uint64_t first_sequence, std::uint64_t count,
                          std::int64_t seen_ns);
  // Appends a data record carrying a key and/or a message type (a tagged record,
  // kRecordFlagTagged); with neither, an ordinary data record as append() lays it. The key is at
  // most kMaxKeyLength bytes (invalid_argument otherwise).
  Result<void> append_tagged(std::uint64_t sequence, std::int64_t timestamp_ns,
                             std::span<const std::byte> key, std::uint16_t message_type,
                             std::span<const std::byte> payload);

  // A run of data records laid straight into the current buffer (journal/record_run.hpp): the
  // fast way to append many records in a row. Empty (it takes nothing) when the journal is empty,
  // the writer has stopped, or there is no room without a decision append() makes (a buffer to
  // wait for, a new segment). Nothing else may be called on the writer until end_run().
  RecordRun begin_run() noexcept;
  // Accounts for the records the run took, exactly as if each had been append()ed, and submits
  // the buffer if the run filled it. Leaves `run` empty.
  void end_run(RecordRun& run) noexcept;

  // Submits the partly filled buffer (and an fdatasync under FsyncPolicy::batch). Cheap when empty.
  Result<void> flush();
  // Reaps completions without waiting (wait = false) or until at least one arrives. Resubmits
  // writes that failed with a retryable error (ENOSPC, EFBIG, EIO, short write) after
  // retry_interval.
  // Returns the first hard error (e.g. EROFS, EBADF).
  Result<void> reap(bool wait = false);
  // Waits until every appended byte is written (and, if fsync is not never, synced).
  Result<void> drain(std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000));

  // Every record up to this sequence has been written to the file (survives a process crash).
  std::uint64_t written_sequence() const noexcept;
  // Every record up to this sequence has been fdatasync'ed (survives a power loss): advanced when
  // every fdatasync issued after the writes up to it completed has succeeded. 0 under
  // FsyncPolicy::never. At open, what recovery found counts as durable (it fdatasyncs the newest
  // segment) unless the policy is never.
  std::uint64_t durable_sequence() const noexcept;
  // True while writes are failing (disk full, I/O error): appends still buffer until the pool is
  // full, then return ErrorCode::no_space. last_error() says why.
  bool blocked() const noexcept;
  // True when every buffer is full or in flight (the current one cannot take even an empty record):
  // the caller should reap(true) before appending. A larger record may be refused while false.
  bool full() const noexcept;
  const std::string& last_error() const noexcept;
  const WriterStats& stats() const noexcept;

  // Fault injection for tests, in process because libfiu and LD_PRELOAD interposers cannot see
  // io_uring submissions (the kernel performs them; no libc call is made): called with each
  // completion's result before the writer looks at it; may return a different result (e.g.
  // -ENOSPC or a short count). fdatasync completions pass through it too (0 on success). The
  // context must outlive the writer (the destructor still reaps).
  using CompletionHook = int (*)(void* context, int result);
  void set_completion_hook(CompletionHook hook, void* context) noexcept;

 private:
  JournalWriter();
  // open() after the options were checked; may throw std::bad_alloc, which open() turns into an
  // error.
  static Result<JournalWriter> open_checked(const WriterOptions& options, RecoveryReport* report);
  struct State;  // journal/writer_state.hpp
  std::unique_ptr<State> state_;
};

}  // namespace shmbus::journal
