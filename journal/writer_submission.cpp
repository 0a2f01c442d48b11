#include "journal/writer_submission.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "journal/durable_mark.hpp"
#include "journal/segment_files.hpp"

namespace shmbus::journal {

namespace {

// user_data of an fdatasync: the segment's address with the top bit set (user-space addresses
// never have it); a write's user_data is its id, far below. The durable mark's write is the tag
// alone (no segment).
constexpr std::uint64_t kSyncTag = 1ull << 63;

// Index entries waiting before a data write takes an index write along: 4 KiB of them, for 8 MiB
// of segment.
constexpr std::size_t kIndexEntriesPerWrite = 128;

// Write errors that may go away (space freed, a transient device error, a signal): the bytes are
// kept and written again. Everything else means the file cannot be written at all.
bool retryable(int err) noexcept {
  return err == ENOSPC || err == EDQUOT || err == EFBIG || err == EIO || err == EINTR ||
         err == EAGAIN;
}

}  // namespace

WriteSubmitter::WriteSubmitter(const WriterOptions& options, BufferPool& buffers,
                               SegmentRoller& segments, DurabilityTracker& durability,
                               WriterErrors& errors, WriterStats& stats)
    : options_(options),
      buffers_(buffers),
      segments_(segments),
      durability_(durability),
      errors_(errors),
      stats_(stats),
      queue_(4 * std::size_t{options.buffers} + 16) {}

Result<void> WriteSubmitter::init() {
  // Writes in flight: every pool buffer, index writes, slow-path writes and fdatasyncs.
  if (auto r = ring_.init(std::max(32u, 4 * options_.buffers)); !r) return r;
  buffers_registered_ = ring_.register_buffers(buffers_.regions());
  if (options_.fsync != FsyncPolicy::never) {
    auto mark = open_durable_mark(options_.dir);
    if (!mark) return tl::unexpected(mark.error());
    durable_mark_fd_ = *mark;
  }
  return {};
}

WriteSubmitter::~WriteSubmitter() {
  if (durable_mark_fd_ >= 0) ::close(durable_mark_fd_);
}

// --- creating writes -----------------------------------------------------------------------------

void WriteSubmitter::queue_data_write(DataWrite write) {
  if (write.begin >= write.end) return;
  const std::uint64_t first = options_.direct ? align_down(write.begin) : write.begin;
  const std::uint64_t last = options_.direct ? align_up(write.end) : write.end;
  // Zeros up to the block's end: a clean tail for the scanner.
  if (last > write.end) std::memset(write.bytes + write.end, 0, last - write.end);
  OpenSegment& segment = *write.segment;
  Write& w = queue_.push();
  w.segment = &segment;
  w.fd = segment.fd;
  w.bytes = write.bytes + first;
  w.offset = write.file_offset + first;
  w.length = last - first;
  w.pool_buffer = write.pool_buffer;
  w.own_buffer = std::move(write.own_buffer);
  w.last_sequence = write.last_sequence;
  // Bytes before `begin` in the first block were written by the segment's previous data write.
  w.waits_for = first < write.begin ? segment.newest_data_write : 0;
  w.direct = options_.direct;
  segment.newest_data_write = w.id;
  ++segment.writes_outstanding;
  if (write.pool_buffer >= 0) ++buffers_.buffer(write.pool_buffer).writes_outstanding;
  ++queued_;
  new_writes_ = true;
  if (options_.direct && options_.preallocate) preallocate(segment, w.offset, w.offset + w.length);
  if (segment.index_entries_made - segment.index_entries_submitted >= kIndexEntriesPerWrite) {
    queue_index_write(segment);
  }
}

// Sizes the file for the write of [start, end) and the rest of the segment up to its size limit
// (see the header), in one go: fallocate waits for every O_DIRECT write in flight to the file, so
// done a piece at a time it would drain the pipeline again and again. The segment's first write
// does it, before anything is in flight to that file; only a segment grown past the limit (a
// record larger than a segment) asks again. A filesystem without fallocate gets extending writes;
// a failure that may pass (no space) is left to the write itself, which retries.
void WriteSubmitter::preallocate(OpenSegment& segment, std::uint64_t start, std::uint64_t end) {
  if (preallocation_unsupported_ || end <= segment.preallocated_end) return;
  const std::uint64_t from = std::max(start, segment.preallocated_end);
  const std::uint64_t to = std::max(end, align_up(options_.segment_bytes));
  const int err = preallocate_segment(segment.fd, from, to - from);
  if (err == 0) {
    segment.preallocated_end = to;
  } else if (err == EOPNOTSUPP || err == ENOSYS || err == EINVAL) {
    preallocation_unsupported_ = true;
  }
}

void WriteSubmitter::queue_index_write(OpenSegment& segment) {
  if (segment.index_entries_submitted == segment.index_entries_made) return;
  Write& w = queue_.push();
  w.segment = &segment;
  w.fd = segment.index_fd;
  w.bytes = reinterpret_cast<std::byte*>(&segment.index_entries[segment.index_entries_submitted]);
  w.offset = sizeof(IndexHeader) + segment.index_entries_submitted * sizeof(IndexEntry);
  w.length = (segment.index_entries_made - segment.index_entries_submitted) * sizeof(IndexEntry);
  segment.index_entries_submitted = segment.index_entries_made;
  ++segment.writes_outstanding;
  ++queued_;
}

// --- starting writes and fdatasync rounds --------------------------------------------------------

bool WriteSubmitter::may_start(const Write& write) {
  if (write.waits_for == 0) return true;
  const Write* before = queue_.find(write.waits_for);
  return before == nullptr || before->phase == Write::Phase::complete;
}

bool WriteSubmitter::start(Write& write) {
  io_uring_sqe* sqe = ring_.entry();
  if (sqe == nullptr) return false;
  std::byte* from = write.bytes + write.bytes_written;
  const auto count = static_cast<unsigned>(write.length - write.bytes_written);
  const auto offset = write.offset + write.bytes_written;
  if (write.pool_buffer >= 0 && buffers_registered_) {
    io_uring_prep_write_fixed(sqe, write.fd, from, count, offset, write.pool_buffer);
  } else {
    io_uring_prep_write(sqe, write.fd, from, count, offset);
  }
  io_uring_sqe_set_data64(sqe, write.id);
  if (write.retrying) {
    ++stats_.retried_writes;
  } else {
    ++stats_.writes;
  }
  write.phase = Write::Phase::in_flight;
  ++kernel_operations_;
  entries_prepared_ = true;
  return true;
}

void WriteSubmitter::start_writes(Clock::time_point now) {
  if (errors_.stopped()) return;
  if (awaiting_retry_ > 0) {
    queue_.for_each([&](Write& w) {
      if (w.phase == Write::Phase::failed && w.retry_at <= now && start(w)) --awaiting_retry_;
    });
  }
  if (queued_ > 0 && failing_ == 0) {
    bool in_order = true;  // a write that cannot start holds back every write after it
    queue_.for_each([&](Write& w) {
      if (!in_order || w.phase != Write::Phase::queued) return;
      if (!may_start(w) || !start(w)) {
        in_order = false;
        return;
      }
      --queued_;
    });
  }
  issue_sync_round_if_due(now);
  issue_mark_if_due();
  if (entries_prepared_) {
    entries_prepared_ = false;
    if (const int rc = ring_.submit(); rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      errors_.stop(os_error(-rc, fmt::format("journal {}: io_uring submit failed", options_.dir)));
    }
  }
}

// An fdatasync of every segment with writes completed since its last one. The round starts only
// after the writes it covers completed (it covers what is written when it is issued).
void WriteSubmitter::issue_sync_round_if_due(Clock::time_point now) {
  if (!durability_.round_due(now)) return;
  durability_.begin_round(now);
  const auto& open = segments_.open_segments();
  for (const auto& segment : open) {
    if (!segment->written_since_sync) continue;
    io_uring_sqe* sqe = ring_.entry();
    if (sqe == nullptr) break;  // the rest stay unsynced; the round is not complete without them
    io_uring_prep_fsync(sqe, segment->fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uintptr_t>(segment.get()) | kSyncTag);
    segment->written_since_sync = false;
    ++segment->syncs_in_flight;
    durability_.sync_issued();
    ++kernel_operations_;
    entries_prepared_ = true;
  }
  const bool covered_every_file =
      std::none_of(open.begin(), open.end(), [](auto& s) { return s->written_since_sync; });
  // Nothing needed an fdatasync: the mark is the whole round.
  if (covered_every_file && durability_.syncs_in_flight() == 0) hold_round_for_mark();
  durability_.end_issuing(covered_every_file);
}

// The round stays open (one more operation counted in it) until the mark says how far it got.
void WriteSubmitter::hold_round_for_mark() {
  if (durable_mark_fd_ < 0 || mark_due_ || errors_.stopped()) return;
  if (durability_.round_target() <= durability_.durable()) return;
  mark_due_ = true;
  durability_.sync_issued();
}

void WriteSubmitter::issue_mark_if_due() {
  if (!mark_due_) return;
  io_uring_sqe* sqe = ring_.entry();
  if (sqe == nullptr) return;  // the ring is full: the next start_writes tries again
  make_durable_mark(mark_bytes_, durability_.round_target());
  io_uring_prep_write(sqe, durable_mark_fd_, &mark_bytes_, sizeof mark_bytes_, 0);
  sqe->rw_flags = RWF_DSYNC;  // written and synced in one operation
  io_uring_sqe_set_data64(sqe, kSyncTag);
  mark_due_ = false;
  ++kernel_operations_;
  entries_prepared_ = true;
}

WriteSubmitter::Clock::time_point WriteSubmitter::next_event(Clock::time_point now) {
  Clock::time_point event = now + std::chrono::seconds(1);
  if (awaiting_retry_ > 0) {
    queue_.for_each([&](Write& w) {
      if (w.phase == Write::Phase::failed) event = std::min(event, w.retry_at);
    });
  }
  if (durability_.interval_sync_waiting()) {
    event = std::min(event, durability_.next_interval_sync());
  }
  return event;
}

// --- completions ---------------------------------------------------------------------------------

void WriteSubmitter::reap_ready() {
  ring_.for_each_ready([this](std::uint64_t data, int result) { on_completion(data, result); });
}

void WriteSubmitter::on_completion(std::uint64_t user_data, int result) {
  if (hook_ != nullptr) result = hook_(hook_context_, result);
  --kernel_operations_;
  if (user_data == kSyncTag) {
    on_mark_completion(result);
    return;
  }
  if (user_data & kSyncTag) {
    on_sync_completion(
        *reinterpret_cast<OpenSegment*>(static_cast<std::uintptr_t>(user_data & ~kSyncTag)),
        result);
    return;
  }
  Write* w = queue_.find(user_data);
  if (w == nullptr) return;
  const std::string& path = w->fd == w->segment->fd ? w->segment->path : w->segment->index_path;
  if (result < 0) {
    const int err = -result;
    if (!retryable(err)) {
      w->phase = Write::Phase::failed;  // never retried: the writer has stopped
      errors_.stop(os_error(err, fmt::format("write of {} bytes at offset {} to {} failed",
                                             w->length - w->bytes_written,
                                             w->offset + w->bytes_written, path)));
      return;
    }
    errors_.last_write_errno = err;
    retry_later(*w, fmt::format("write of {} bytes at offset {} to {} failed: {}",
                                w->length - w->bytes_written, w->offset + w->bytes_written, path,
                                std::strerror(err)));
    return;
  }
  const std::uint64_t remaining = w->length - w->bytes_written;
  w->bytes_written += std::min<std::uint64_t>(static_cast<std::uint64_t>(result), remaining);
  if (w->bytes_written < w->length) {
    const std::uint64_t got = static_cast<std::uint64_t>(result);
    // O_DIRECT retries must stay block-aligned: rewrite the partly written block.
    if (w->direct) w->bytes_written = align_down(w->bytes_written);
    errors_.last_write_errno = EIO;
    retry_later(*w, fmt::format("short write: {} of {} bytes at offset {} to {}", got, remaining,
                                w->offset + w->bytes_written, path));
    return;
  }
  complete(*w);
}

void WriteSubmitter::on_sync_completion(OpenSegment& segment, int result) {
  --segment.syncs_in_flight;
  if (result < 0) {
    errors_.stop(os_error(-result,
                          fmt::format("fdatasync of {} failed; records after sequence {} are not "
                                      "known to be durable and the writer stops (a retried "
                                      "fsync can succeed without the data)",
                                      segment.path, durability_.durable())));
  } else {
    ++stats_.fsyncs;
  }
  // The round's last fdatasync succeeded: the mark comes before the round counts.
  if (durability_.syncs_in_flight() == 1) hold_round_for_mark();
  durability_.sync_completed(errors_.stopped());
}

void WriteSubmitter::on_mark_completion(int result) {
  if (result != static_cast<int>(sizeof mark_bytes_)) {
    const int err = result < 0 ? -result : EIO;
    errors_.stop(os_error(err, fmt::format("journal {}: writing the durable mark {} failed; records "
                                           "after sequence {} are not known to be durable and the "
                                           "writer stops",
                                           options_.dir, kDurableMarkFileName,
                                           durability_.durable())));
  }
  durability_.sync_completed(errors_.stopped());
}

void WriteSubmitter::retry_later(Write& write, std::string message) {
  ++stats_.write_errors;
  if (!write.retrying) {
    write.retrying = true;
    ++failing_;
  }
  write.phase = Write::Phase::failed;
  write.retry_at = Clock::now() + options_.retry_interval;
  ++awaiting_retry_;
  errors_.last_error = std::move(message);
}

void WriteSubmitter::complete(Write& write) {
  write.phase = Write::Phase::complete;
  if (write.retrying) --failing_;
  --write.segment->writes_outstanding;
  write.segment->written_since_sync = true;
  if (write.pool_buffer >= 0) buffers_.write_completed(write.pool_buffer);
  write.own_buffer = AlignedBuffer{};
  while (!queue_.empty() && queue_.front().phase == Write::Phase::complete) {
    durability_.advance_written(queue_.front().last_sequence);
    queue_.pop();
  }
}

}  // namespace shmbus::journal
