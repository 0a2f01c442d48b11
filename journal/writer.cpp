// JournalWriter: opening a journal directory, and the calls that drive the writes (flush, reap,
// drain, close). The parts and how they fit are described in writer_state.hpp; appending is in
// writer_append.cpp.
#include "journal/writer.hpp"

#include <algorithm>
#include <new>
#include <thread>

#include <fmt/format.h>

#include "journal/writer_state.hpp"

namespace shmbus::journal {

Result<void> JournalWriter::State::take_over(RecoveredJournal& recovered) {
  if (auto r = buffers.allocate(options.dir, options.buffers, options.buffer_bytes); !r) return r;
  if (auto r = submitter.init(); !r) return r;
  if (auto r = segments.adopt(recovered); !r) return r;
  const OpenSegment* continued = segments.current();
  if (options.direct && continued != nullptr && continued->end_offset % kPageSize != 0) {
    if (auto r = buffers.carry_last_block_of(*continued); !r) return r;
  }
  next_sequence = recovered.next_sequence;
  // Recovery fdatasynced the newest segment when a policy asks for durability.
  durability.start(next_sequence > 0 ? next_sequence - 1 : 0, Clock::now());
  return {};
}

Result<void> JournalWriter::State::reap(bool wait, Clock::time_point deadline) {
  if (errors.stopped()) return tl::unexpected(*errors.stopped_by);
  submitter.reap_ready();
  Clock::time_point now = Clock::now();
  submitter.start_writes(now);
  if (wait && !errors.stopped()) {
    const Clock::time_point until = std::min(submitter.next_event(now), deadline);
    if (submitter.kernel_operations() > 0) {
      submitter.wait(until - now);
      submitter.reap_ready();
    } else if (submitter.writes_awaiting_retry() > 0 || durability.interval_sync_waiting()) {
      std::this_thread::sleep_until(until);
    }
    now = Clock::now();
    submitter.start_writes(now);
  }
  segments.close_finished();
  if (errors.stopped()) return tl::unexpected(*errors.stopped_by);
  if (errors.to_report) {
    Error e = std::move(*errors.to_report);
    errors.to_report.reset();
    return tl::unexpected(std::move(e));
  }
  return {};
}

Result<void> JournalWriter::State::flush() {
  if (errors.stopped()) return tl::unexpected(*errors.stopped_by);
  submit_current_buffer(BufferHandoff::keep_filling);
  if (segments.current() != nullptr) submitter.queue_index_write(*segments.current());
  if (options.fsync == FsyncPolicy::batch && next_sequence > 0) {
    durability.request_sync_through(next_sequence - 1);
  }
  if (submitter.writes_queued() > 0 || durability.requested_sync_written()) {
    submitter.start_writes(Clock::now());
  }
  if (errors.stopped()) return tl::unexpected(*errors.stopped_by);
  return {};
}

Result<void> JournalWriter::State::drain(std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  if (auto r = flush(); !r) return r;
  const std::uint64_t last = next_sequence > 0 ? next_sequence - 1 : 0;
  if (options.fsync != FsyncPolicy::never && next_sequence > 0) {
    durability.request_sync_through(last);
  }
  for (;;) {
    if (auto r = reap(false, deadline); !r) return r;
    if (submitter.all_writes_complete() && durability.settled_through(last)) return {};
    if (Clock::now() >= deadline) {
      const bool blocked = submitter.writes_failing() > 0;
      return tl::unexpected(Error{
          ErrorCode::timed_out,
          fmt::format("journal {}: drain timed out after {} ms with {} writes outstanding{}{}",
                      options.dir, timeout.count(), submitter.writes_outstanding(),
                      blocked ? "; " : "", blocked ? errors.last_error : "")});
    }
    if (auto r = reap(true, deadline); !r) return r;
  }
}

// The kernel reads the buffers of what it holds, and they are freed right after: wait for all.
void JournalWriter::State::close() {
  if (!errors.stopped() && submitter.writes_failing() == 0) (void)drain(std::chrono::seconds(10));
  while (submitter.kernel_operations() > 0) {
    submitter.wait(std::chrono::milliseconds(100));
    submitter.reap_ready();
  }
  if (submitter.all_writes_complete()) segments.cut_current_padding();
}

Result<JournalWriter> JournalWriter::open(const WriterOptions& options, RecoveryReport* report) {
  if (options.buffers == 0 || options.buffers > kMaxWriteBuffers) {
    return invalid_argument(
        fmt::format("journal buffers {} (1 .. {})", options.buffers, kMaxWriteBuffers));
  }
  if (options.buffer_bytes == 0 || options.buffer_bytes > kMaxWriteBufferBytes) {
    return invalid_argument(
        fmt::format("journal buffer_bytes {} (1 .. 1 GiB)", options.buffer_bytes));
  }
  if (options.segment_bytes <= kSegmentHeaderSize || options.segment_bytes > kMaxSegmentBytes) {
    return invalid_argument(
        fmt::format("journal segment_bytes {} is not above the {}-byte header and at most {} GiB",
                    options.segment_bytes, kSegmentHeaderSize, kMaxSegmentBytes >> 30));
  }
  // Recovery, the pool and the segments' indexes allocate: running out of memory is an error
  // this open returns, like any other.
  try {
    return open_checked(options, report);
  } catch (const std::bad_alloc&) {
    return tl::unexpected(Error{
        ErrorCode::system,
        fmt::format("journal {}: out of memory while opening ({} write buffers of {} bytes)",
                    options.dir, options.buffers, options.buffer_bytes)});
  }
}

Result<JournalWriter> JournalWriter::open_checked(const WriterOptions& options,
                                                  RecoveryReport* report) {
  if (auto r = ensure_directory(options.dir); !r) return tl::unexpected(r.error());
  auto lock = DirectoryLock::acquire(options.dir);
  if (!lock) return tl::unexpected(lock.error());
  RecoveryReport local;
  RecoveryReport& rep = report != nullptr ? *report : local;
  rep = RecoveryReport{};
  // Writes in flight at a crash cover at most the pool; a crashed writer may have had a larger
  // one than this, so look well past it.
  const std::uint64_t window =
      std::max<std::uint64_t>(256ull << 20, 4ull * options.buffers * options.buffer_bytes);
  auto recovered =
      recover_journal(options.dir, options.fsync != FsyncPolicy::never, window, rep);
  if (!recovered) return tl::unexpected(recovered.error());

  // The state becomes the writer's only once it is whole: a writer's destructor drains its ring,
  // and a state that failed half way (no pool, no ring) has nothing in flight to drain. Its parts
  // release themselves (the lock, the pool, a ring that was set up, the segment files).
  auto state = std::make_unique<State>(options);
  state->directory_lock = std::move(*lock);
  if (auto r = state->take_over(*recovered); !r) return tl::unexpected(r.error());
  JournalWriter w;
  w.state_ = std::move(state);
  return w;
}

JournalWriter::JournalWriter() = default;
JournalWriter::JournalWriter(JournalWriter&&) noexcept = default;
JournalWriter& JournalWriter::operator=(JournalWriter&& other) noexcept {
  if (this != &other) {
    if (state_) state_->close();
    state_ = std::move(other.state_);
  }
  return *this;
}
JournalWriter::~JournalWriter() {
  if (state_) state_->close();
}

std::uint64_t JournalWriter::next_sequence() const noexcept { return state_->next_sequence; }

Result<void> JournalWriter::append(std::uint64_t sequence, std::int64_t timestamp_ns,
                                   std::span<const std::byte> payload) {
  return state_->append(RecordType::data, sequence, 1, timestamp_ns, payload);
}

Result<void> JournalWriter::append_gap(std::uint64_t first_sequence, std::uint64_t count,
                                       std::int64_t seen_ns) {
  const GapPayload gap{count};
  return state_->append(RecordType::gap, first_sequence, count, seen_ns,
                        std::as_bytes(std::span(&gap, 1)));
}

Result<void> JournalWriter::append_tagged(std::uint64_t sequence, std::int64_t timestamp_ns,
                                          std::span<const std::byte> key,
                                          std::uint16_t message_type,
                                          std::span<const std::byte> payload) {
  if (key.empty() && message_type == 0) return append(sequence, timestamp_ns, payload);
  if (key.size() > kMaxKeyLength) {
    return tl::unexpected(Error{ErrorCode::invalid_argument,
                                fmt::format("journal {}: a key of {} bytes (at most {})",
                                            state_->options.dir, key.size(), kMaxKeyLength)});
  }
  const std::size_t size = tag_size(static_cast<std::uint32_t>(key.size())) + payload.size();
  // The tagged payload is put together in a buffer kept for the next one: the journaler appends
  // tagged records one at a time (a run takes only plain ones), so this allocates only when a
  // record is larger than every one before.
  std::vector<std::byte>& scratch = state_->tagged_scratch;
  if (scratch.size() < size) scratch.resize(size);
  lay_tagged_payload(scratch.data(), key, message_type, payload);
  return state_->append(RecordType::data, sequence, 1, timestamp_ns,
                        std::span<const std::byte>(scratch.data(), size), kRecordFlagTagged);
}

RecordRun JournalWriter::begin_run() noexcept { return state_->begin_run(); }

void JournalWriter::end_run(RecordRun& run) noexcept {
  state_->end_run(run);
  run = RecordRun{};
}

Result<void> JournalWriter::flush() { return state_->flush(); }

Result<void> JournalWriter::reap(bool wait) {
  return state_->reap(wait, State::Clock::time_point::max());
}

Result<void> JournalWriter::drain(std::chrono::milliseconds timeout) {
  return state_->drain(timeout);
}

std::uint64_t JournalWriter::written_sequence() const noexcept {
  return state_->durability.written();
}
std::uint64_t JournalWriter::durable_sequence() const noexcept {
  return state_->durability.durable();
}
bool JournalWriter::blocked() const noexcept { return state_->submitter.writes_failing() > 0; }
bool JournalWriter::full() const noexcept { return state_->buffers.full(); }
const std::string& JournalWriter::last_error() const noexcept { return state_->errors.last_error; }
const WriterStats& JournalWriter::stats() const noexcept { return state_->stats; }

void JournalWriter::set_completion_hook(CompletionHook hook, void* context) noexcept {
  state_->submitter.set_completion_hook(hook, context);
}

}  // namespace shmbus::journal
