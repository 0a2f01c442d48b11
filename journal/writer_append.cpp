// JournalWriter::State::append: checks the record, makes room for it (a new segment, or an error
// when the pool is full), copies it into the current buffer and starts the writes a filled buffer
// created. The common case, a record that fits the current buffer, is laid in place with its crc
// computed there in one pass: no allocation, no system call. A run (journal/record_run.hpp) lays
// many such records with the bookkeeping done once, in end_run.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "journal/writer_state.hpp"

namespace shmbus::journal {

namespace {

Result<void> check_record(const std::string& dir, std::uint64_t next_sequence,
                          std::uint64_t sequence, std::uint64_t count, std::size_t payload_bytes) {
  if (sequence == 0) {
    return invalid_argument(fmt::format("journal {}: sequence 0 (sequences start at 1)", dir));
  }
  if (next_sequence != 0 && sequence != next_sequence) {
    return invalid_argument(fmt::format("journal {}: sequence {} appended where {} is due", dir,
                                        sequence, next_sequence));
  }
  if (count == 0 || count - 1 > UINT64_MAX - sequence) {
    return invalid_argument(
        fmt::format("journal {}: a gap of {} sequences from {}", dir, count, sequence));
  }
  if (payload_bytes > kMaxRecordPayload) {
    return invalid_argument(fmt::format("journal {}: record of {} bytes (at most {})", dir,
                                        payload_bytes, kMaxRecordPayload));
  }
  return {};
}

}  // namespace

Result<void> JournalWriter::State::append(RecordType type, std::uint64_t sequence,
                                          std::uint64_t count, std::int64_t timestamp_ns,
                                          std::span<const std::byte> payload,
                                          std::uint16_t flags) {
  if (errors.stopped()) return tl::unexpected(*errors.stopped_by);
  if (auto r = check_record(options.dir, next_sequence, sequence, count, payload.size()); !r) {
    return r;
  }
  const std::uint64_t size = padded_record_size(payload.size());
  const bool new_segment = segments.needs_new_segment(size);
  const bool big = size > buffers.buffer_capacity();
  AlignedBuffer own_buffer;
  if (big) {
    // Slow path: the record gets a buffer of its own (after the carried block, if any).
    const std::uint64_t carried =
        new_segment || !options.direct ? 0 : segments.current()->end_offset % kPageSize;
    own_buffer = AlignedBuffer::allocate(carried + size);
    if (!own_buffer) {
      return tl::unexpected(Error{ErrorCode::system,
                                  fmt::format("journal {}: cannot allocate {} bytes for a record",
                                              options.dir, carried + size)});
    }
  } else if (buffers.room(new_segment) < size) {
    if (submitter.writes_failing() == 0 && submitter.kernel_operations() == 0 &&
        buffers.has_current()) {
      // Nothing in flight would free a buffer: hand the current one to the kernel, so that the
      // reap(true) the caller does next has something to wait for.
      submit_current_buffer(BufferHandoff::move_on);
      submitter.start_writes(Clock::now());
    }
    return tl::unexpected(pool_full());
  }
  if (new_segment) {
    if (auto r = start_segment_for(sequence); !r) return r;
  }

  const bool in_place = !big && buffers.has_current() && buffers.space_in_current() >= size;
  const std::uint64_t last = sequence + count - 1;
  segments.current()->note_record(type, sequence, timestamp_ns);
  record_ends.note(stream_position + size, last);

  if (in_place) {
    write_in_place(type, sequence, timestamp_ns, payload, flags);
  } else {
    RecordHeader header;
    make_record_header(header, type, sequence, timestamp_ns, payload, flags);
    if (big) {
      write_in_own_buffer(header, payload, size, std::move(own_buffer));
    } else {
      static constexpr std::byte kZeros[kRecordAlignment] = {};
      copy_across_buffers(&header, sizeof header);
      copy_across_buffers(payload.data(), payload.size());
      copy_across_buffers(kZeros, size - kRecordHeaderSize - payload.size());
    }
  }
  next_sequence = last + 1;
  if (type == RecordType::data) {
    ++stats.records;
  } else {
    ++stats.gap_records;
  }
  stats.bytes += size;
  submitter.start_new_writes();
  return {};
}

RecordRun JournalWriter::State::begin_run() noexcept {
  OpenSegment* segment = segments.current();
  if (errors.stopped() || next_sequence == 0 || segment == nullptr) return {};
  if (!buffers.has_current()) {
    if (!buffers.has_free_buffer()) return {};
    buffers.take(*segment, stream_position);
  }
  // Records must end within the buffer and the segment's size limit, and start before the next
  // index boundary (the record there gets an entry: append() makes it).
  const std::uint64_t end_offset = segment->end_offset;
  const std::uint64_t to_limit =
      options.segment_bytes > end_offset ? options.segment_bytes - end_offset : 0;
  const std::uint64_t room = std::min(buffers.space_in_current(), to_limit);
  const std::uint64_t boundary = segment->index_builder.next_boundary;
  const std::uint64_t before_boundary = boundary > end_offset ? boundary - end_offset : 0;
  PoolBuffer& b = buffers.current();
  std::byte* at = b.bytes + b.filled;
  return RecordRun(at, at + room, at + std::min(room, before_boundary), next_sequence);
}

void JournalWriter::State::end_run(const RecordRun& run) noexcept {
  const std::uint64_t records = run.records();
  if (records == 0) return;
  stream_fence();  // the run's stores reach the buffer before anything reads or writes it out
  const auto bytes = static_cast<std::uint64_t>(run.at_ - run.begin_);
  PoolBuffer& b = buffers.current();
  OpenSegment& segment = *segments.current();
  b.filled += bytes;
  stream_position += bytes;
  segment.end_offset += bytes;
  segment.note_run(run.newest_time_ns_);
  record_ends.note(stream_position, run.next_sequence_ - 1);
  next_sequence = run.next_sequence_;
  stats.records += records;
  stats.bytes += bytes;
  if (b.filled == buffers.buffer_capacity()) submit_current_buffer(BufferHandoff::keep_filling);
  submitter.start_new_writes();
}

Error JournalWriter::State::pool_full() const {
  if (submitter.writes_failing() > 0) {
    const int err = errors.last_write_errno;
    const bool space = err == ENOSPC || err == EDQUOT || err == EFBIG;
    return Error{space ? ErrorCode::no_space : ErrorCode::system,
                 fmt::format("journal {}: every write buffer is full while writes fail ({})",
                             options.dir, errors.last_error)};
  }
  return Error{ErrorCode::busy,
               fmt::format("journal {}: all {} write buffers are in flight; reap() first",
                           options.dir, options.buffers)};
}

// A segment is started only once every write of the one before has completed, so that the files
// never hold a segment that begins before the previous one ends: not for a reader of the live
// journal, not after a crash. Until then appends report busy (the caller reaps and retries), or
// the pool's error while writes are failing.
Result<void> JournalWriter::State::start_segment_for(std::uint64_t first_sequence) {
  if (segments.current() != nullptr) finish_current_segment();
  if (!submitter.all_writes_complete()) {
    submitter.start_writes(Clock::now());
    if (submitter.writes_failing() > 0) return tl::unexpected(pool_full());
    return tl::unexpected(Error{
        ErrorCode::busy, fmt::format("journal {}: the previous segment's writes are completing; "
                                     "reap() first",
                                     options.dir)});
  }
  return segments.start_segment(first_sequence);
}

// Hands the current segment's last bytes and index entries to writes and closes it for appends.
void JournalWriter::State::finish_current_segment() {
  submit_current_buffer(BufferHandoff::end_segment);
  submitter.queue_index_write(*segments.current());  // entries made since the last data write
  segments.retire_current();
}

void JournalWriter::State::submit_current_buffer(BufferHandoff handoff) {
  if (!buffers.has_current()) {
    if (handoff == BufferHandoff::end_segment) buffers.drop_carried();
    return;
  }
  PoolBuffer& b = buffers.current();
  submitter.queue_data_write(DataWrite{
      b.segment, b.bytes, b.file_offset, b.submitted, b.filled, buffers.current_index(), {},
      record_ends.last_sequence_in(b.stream_start + b.submitted, b.stream_start + b.filled)});
  buffers.handed_off(handoff, options.direct);
}

void JournalWriter::State::write_in_place(RecordType type, std::uint64_t sequence,
                                          std::int64_t timestamp_ns,
                                          std::span<const std::byte> payload,
                                          std::uint16_t flags) {
  PoolBuffer& b = buffers.current();
  const std::uint64_t size =
      lay_record(b.bytes + b.filled, type, sequence, timestamp_ns, payload, flags);
  b.filled += size;
  stream_position += size;
  segments.current()->end_offset += size;
  if (b.filled == buffers.buffer_capacity()) submit_current_buffer(BufferHandoff::keep_filling);
}

// Copies bytes to the end of the segment, moving to the next buffer when one fills (room() was
// checked, so there is one).
void JournalWriter::State::copy_across_buffers(const void* bytes, std::size_t count) {
  const auto* from = static_cast<const std::byte*>(bytes);
  OpenSegment& segment = *segments.current();
  while (count > 0) {
    if (!buffers.has_current()) buffers.take(segment, stream_position);
    PoolBuffer& b = buffers.current();
    const std::size_t chunk = std::min<std::uint64_t>(count, buffers.space_in_current());
    std::memcpy(b.bytes + b.filled, from, chunk);
    b.filled += chunk;
    from += chunk;
    count -= chunk;
    stream_position += chunk;
    segment.end_offset += chunk;
    if (b.filled == buffers.buffer_capacity()) submit_current_buffer(BufferHandoff::keep_filling);
  }
}

// A record larger than a pool buffer: written from a buffer of its own, after the carried block.
void JournalWriter::State::write_in_own_buffer(const RecordHeader& header,
                                               std::span<const std::byte> payload,
                                               std::uint64_t size, AlignedBuffer own_buffer) {
  submit_current_buffer(BufferHandoff::move_on);
  OpenSegment& segment = *segments.current();
  std::byte* record = own_buffer.data();
  const std::uint64_t carried = buffers.carried_bytes();
  std::memcpy(record, buffers.carried_block(), carried);
  std::memcpy(record + carried, &header, sizeof header);
  if (!payload.empty()) {
    std::memcpy(record + carried + sizeof header, payload.data(), payload.size());
  }
  // The padding after the payload is zero: AlignedBuffer::allocate zeroes.
  const std::uint64_t file_offset = segment.end_offset - carried;
  const std::uint64_t stream_start = stream_position - carried;
  const std::uint64_t end = carried + size;
  stream_position += size;
  segment.end_offset += size;
  buffers.carry(record + end, options.direct ? end % kPageSize : 0);
  submitter.queue_data_write(DataWrite{
      &segment, record, file_offset, carried, end, -1, std::move(own_buffer),
      record_ends.last_sequence_in(stream_start + carried, stream_start + end)});
}

}  // namespace shmbus::journal
