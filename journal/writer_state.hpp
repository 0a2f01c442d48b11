// JournalWriter's insides: its parts, each with one job, and the steps that use several of them.
// See writer.hpp for the contract.
//
//   BufferPool         (writer_buffers.*)     the write buffers records are copied into
//   SegmentRoller      (segment_roller.*)     segment files: starting, retiring, retention, closing
//   WriteSubmitter     (writer_submission.*)  writes from creation to completion, through io_uring
//   DurabilityTracker  (writer_durability.*)  what counts as written and as durable; sync rounds
//
// Appending (writer_append.cpp) copies a record into the current buffer, one record at a time or
// a run of them (journal/record_run.hpp), and, when a buffer fills or a segment ends, hands the
// buffer to a write; open, flush, reap, drain and close are in writer.cpp.
//
// Threading: the writer is used by one thread at a time and shares no memory with other threads
// or processes (readers see only the files), so there are no atomics. The kernel reads the
// buffers of in-flight writes: bytes handed to a write are never changed again (see
// writer_buffers.hpp), and nothing the kernel holds is freed before its operation completed
// (close() waits for every one). The one ordering concern: a run's records are written with
// non-temporal stores, which may become visible after later stores; end_run fences them before
// any of those bytes is read again or handed to a write.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "journal/format.hpp"
#include "journal/segment_files.hpp"
#include "journal/segment_roller.hpp"
#include "journal/writer.hpp"
#include "journal/writer_buffers.hpp"
#include "journal/writer_durability.hpp"
#include "journal/writer_errors.hpp"
#include "journal/writer_recovery.hpp"
#include "journal/writer_submission.hpp"

namespace shmbus::journal {

struct JournalWriter::State {
  using Clock = std::chrono::steady_clock;

  explicit State(const WriterOptions& writer_options)
      : options(writer_options),
        durability(options.fsync, options.fsync_interval),
        segments(options, errors, stats),
        submitter(options, buffers, segments, durability, errors, stats) {}

  // --- writer.cpp ---
  // Allocates the pool, sets up the ring and continues where recovery left the journal.
  Result<void> take_over(RecoveredJournal& recovered);
  Result<void> flush();
  Result<void> reap(bool wait, Clock::time_point deadline);
  Result<void> drain(std::chrono::milliseconds timeout);
  // Best effort: writes what can be written, then waits for everything the kernel holds.
  void close();

  // --- writer_append.cpp ---
  // `flags`: the record header's (kRecordFlagTagged for a tagged payload).
  Result<void> append(RecordType type, std::uint64_t sequence, std::uint64_t count,
                      std::int64_t timestamp_ns, std::span<const std::byte> payload,
                      std::uint16_t flags = 0);
  RecordRun begin_run() noexcept;
  void end_run(const RecordRun& run) noexcept;
  // Hands the current buffer's new bytes to a write; `handoff` says whether it stays current.
  void submit_current_buffer(BufferHandoff handoff);

  WriterOptions options;
  DirectoryLock directory_lock;
  WriterErrors errors;
  WriterStats stats;
  // Declared before the submitter: its ring, which may have pinned the buffers, goes first.
  BufferPool buffers;
  DurabilityTracker durability;
  SegmentRoller segments;
  WriteSubmitter submitter;
  std::uint64_t next_sequence = 0;  // the sequence the next record must carry (0: any)
  // Stream position: bytes appended since open, offset so that carried bytes never go below 0.
  std::uint64_t stream_position = kPageSize;
  RecordEnds record_ends;
  std::vector<std::byte> tagged_scratch;  // append_tagged puts a tagged payload together here

 private:
  Error pool_full() const;
  Result<void> start_segment_for(std::uint64_t first_sequence);
  void finish_current_segment();
  void write_in_place(RecordType type, std::uint64_t sequence, std::int64_t timestamp_ns,
                      std::span<const std::byte> payload, std::uint16_t flags);
  void copy_across_buffers(const void* bytes, std::size_t count);
  void write_in_own_buffer(const RecordHeader& header, std::span<const std::byte> payload,
                           std::uint64_t size, AlignedBuffer own_buffer);
};

}  // namespace shmbus::journal
