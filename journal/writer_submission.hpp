// The journal writer's writes between creation and completion: queued in file order, started
// through io_uring, completed in any order, retried while they fail, and counted written only as a
// completed prefix. It also issues the fdatasync rounds DurabilityTracker asks for.
//
// Rules it keeps:
//  - Writes are created in file order, and the written sequence is the last record of the
//    longest completed prefix of them, so it never passes a write that has not completed (or
//    failed and waits for its retry).
//  - While any write has failed and not yet succeeded, no new write starts (it would fail too, and
//    would leave a hole after the failed one); appends keep filling free buffers.
//  - A write that rewrites a block (O_DIRECT) starts only after the earlier write of that block
//    completed: overlapping writes in flight together could land in either order.
//  - A failed or short write is never dropped: retryable errors (ENOSPC, EDQUOT, EFBIG, EIO, EINTR,
//    EAGAIN) retry it every retry_interval; any other error, and any failed fdatasync, stops the
//    writer.
//  - Under O_DIRECT a data write never extends its file: each segment is preallocated (fallocate,
//    which also sets its size) up to its size limit when its first write is queued. A write past
//    the end of the file cannot be issued without blocking (the filesystem takes the file's lock
//    for the size change and waits for the device), so io_uring hands it to a worker thread, and
//    on ext4 such writes run one at a time; inside the file they go to the device straight from
//    the submission, several at once. The newest segment therefore ends in zeros while the
//    writer is open (a clean tail to readers, which skip its holes: FileWindow::next_written);
//    they are cut when a segment is finished and when the writer closes, and by recovery after a
//    crash.
//  - Under a syncing policy, a round's records count durable only after the durable mark
//    (journal/durable_mark.hpp) says so: once the round's fdatasyncs all succeeded, one write of
//    the mark with RWF_DSYNC ends the round, so the mark never runs ahead of the data and the data
//    reported durable never runs ahead of the mark.
//  - Index entries are written once a few KiB of them are waiting (and at every flush and segment
//    end), not with every data write: index files are written through the page cache, which
//    io_uring also hands to worker threads, and the index may lag (it is a hint).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "journal/aligned_buffer.hpp"
#include "journal/open_segment.hpp"
#include "journal/segment_roller.hpp"
#include "journal/uring.hpp"
#include "journal/write_queue.hpp"
#include "journal/writer.hpp"
#include "journal/writer_buffers.hpp"
#include "journal/writer_durability.hpp"
#include "journal/writer_errors.hpp"

namespace shmbus::journal {

// Bytes [begin, end) of `bytes` (file offset file_offset + i for byte i) to write to `segment`.
struct DataWrite {
  OpenSegment* segment = nullptr;
  std::byte* bytes = nullptr;
  std::uint64_t file_offset = 0;
  std::uint64_t begin = 0, end = 0;
  int pool_buffer = -1;       // the pool buffer `bytes` is (-1: `own_buffer`)
  AlignedBuffer own_buffer;   // kept until the write completes
  std::uint64_t last_sequence = 0;  // the last record ending in [begin, end) (0: none)
};

// Where the two newest records end in the stream of appended bytes, so that a write can tell the
// last record it completes.
class RecordEnds {
 public:
  void note(std::uint64_t stream_end, std::uint64_t last_sequence) noexcept {
    older_ = newest_;
    newest_ = RecordEnd{stream_end, last_sequence};
  }
  // The last sequence of a record ending in the stream range (from, to], 0 if none does. Writes
  // are created either between records or (a full buffer) inside the newest one, so the newest two
  // records are the only candidates.
  std::uint64_t last_sequence_in(std::uint64_t from, std::uint64_t to) const noexcept {
    for (const RecordEnd* end : {&newest_, &older_}) {
      if (end->stream_end > from && end->stream_end <= to) return end->last_sequence;
    }
    return 0;
  }

 private:
  struct RecordEnd {
    std::uint64_t stream_end = 0;  // stream position just past the record
    std::uint64_t last_sequence = 0;
  };
  RecordEnd newest_, older_;
};

class WriteSubmitter {
 public:
  using Clock = std::chrono::steady_clock;

  // The parts are the writer's own and outlive this. The ring goes away with this, before the
  // pool whose memory it may have registered.
  WriteSubmitter(const WriterOptions& options, BufferPool& buffers, SegmentRoller& segments,
                 DurabilityTracker& durability, WriterErrors& errors, WriterStats& stats);
  ~WriteSubmitter();
  WriteSubmitter(const WriteSubmitter&) = delete;
  WriteSubmitter& operator=(const WriteSubmitter&) = delete;

  // Sets up the ring and registers the pool's buffers (plain writes if the kernel refuses); under
  // a syncing policy, opens the durable mark recovery wrote.
  Result<void> init();

  // Queues the data write (whole blocks around [begin, end) under O_DIRECT, the tail padded with
  // zeros) and then the segment's new index entries. Nothing to write: nothing queued.
  void queue_data_write(DataWrite write);
  // Queues a write of the index entries made since the last one (plain, never O_DIRECT).
  void queue_index_write(OpenSegment& segment);
  // Starts what queue_data_write() queued since the last call: the append path's one system call,
  // made only when a buffer was handed over.
  void start_new_writes() {
    if (!new_writes_) return;
    new_writes_ = false;
    start_writes(Clock::now());
  }
  // Retries failed writes that are due, starts queued writes in order, issues an fdatasync round if
  // one is due, and submits. Does nothing once the writer has stopped.
  void start_writes(Clock::time_point now);

  // Handles every completion already there.
  void reap_ready();
  // Waits until a completion is there or `timeout` passes.
  void wait(Clock::duration timeout) noexcept { ring_.wait(timeout); }
  // When something is due without a completion: a retry, or an interval fdatasync round.
  Clock::time_point next_event(Clock::time_point now);

  bool all_writes_complete() const noexcept { return queue_.empty(); }
  std::size_t writes_outstanding() const noexcept { return queue_.size(); }
  std::size_t writes_queued() const noexcept { return queued_; }
  std::size_t writes_awaiting_retry() const noexcept { return awaiting_retry_; }
  // Writes that failed and have not succeeded since: while any, the writer is blocked.
  std::size_t writes_failing() const noexcept { return failing_; }
  // Operations the kernel holds (writes and fdatasyncs): their memory must stay put.
  std::size_t kernel_operations() const noexcept { return kernel_operations_; }

  void set_completion_hook(JournalWriter::CompletionHook hook, void* context) noexcept {
    hook_ = hook;
    hook_context_ = context;
  }

 private:
  void preallocate(OpenSegment& segment, std::uint64_t start, std::uint64_t end);
  bool may_start(const Write& write);
  bool start(Write& write);
  void issue_sync_round_if_due(Clock::time_point now);
  void on_completion(std::uint64_t user_data, int result);
  void on_sync_completion(OpenSegment& segment, int result);
  void hold_round_for_mark();
  void issue_mark_if_due();
  void on_mark_completion(int result);
  void retry_later(Write& write, std::string message);
  void complete(Write& write);

  const WriterOptions& options_;
  BufferPool& buffers_;
  SegmentRoller& segments_;
  DurabilityTracker& durability_;
  WriterErrors& errors_;
  WriterStats& stats_;
  Uring ring_;
  bool buffers_registered_ = false;  // pool buffers registered: write_fixed
  WriteQueue queue_;
  std::size_t queued_ = 0;          // writes in phase queued
  std::size_t awaiting_retry_ = 0;  // writes in phase failed
  std::size_t failing_ = 0;
  std::size_t kernel_operations_ = 0;
  bool entries_prepared_ = false;   // submission entries prepared since the last submit
  bool new_writes_ = false;         // queue_data_write() ran since start_new_writes()
  bool preallocation_unsupported_ = false;  // the filesystem refused fallocate: writes extend
  int durable_mark_fd_ = -1;        // DIR/journal.durable (-1: FsyncPolicy::never)
  bool mark_due_ = false;           // the round's fdatasyncs succeeded; its mark write is next
  DurableMark mark_bytes_{};        // the kernel reads them while the mark write is in flight
  JournalWriter::CompletionHook hook_ = nullptr;
  void* hook_context_ = nullptr;
};

}  // namespace shmbus::journal
