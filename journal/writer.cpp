// JournalWriter: records are copied into a pool of page-aligned buffers and written through
// io_uring. See writer.hpp for the contract; this comment says how it is kept.
//
// Threading: the writer is used by one thread at a time and shares no memory with other threads or
// processes (readers see only the files), so there are no atomics and no memory-ordering concerns.
// The kernel reads the buffers of in-flight writes; the invariants below make sure those bytes do
// not change until their write completes.
//
// Invariants:
//  1. A pool buffer maps to one segment: byte i of it goes to file offset file_offset + i. The
//     current buffer ends at the segment's logical end (file_offset + used == segment->end).
//  2. Bytes [0, submitted) of a buffer belong to writes already created; appends only touch bytes
//     at or after `used`, never bytes an in-flight write covers. Under O_DIRECT a write covers
//     whole blocks, so a buffer whose last block is partly filled is retired when that block is
//     written (flush), and the partial block is carried (copied) into the next buffer, which
//     rewrites it. That rewrite waits (Write::wait_for) until the earlier write of the block
//     completed: overlapping writes in flight together could land in either order.
//  3. Writes are created in file order. written_ is the last sequence of the longest completed
//     prefix of them, so it never passes a write that has not completed (or failed and waits for
//     its retry).
//  4. While any write has failed and not yet succeeded, no new write starts (they would fail too,
//     and would leave holes after the failed one); appends keep filling free buffers.
//  5. An fdatasync round starts only after the writes it covers completed (written_ is taken when
//     it is issued), and durable_ moves to that point when every fdatasync of the round succeeded.
//     A failed fdatasync stops the writer for good (fsyncgate): nothing is retried on that file.
#include "journal/writer.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <thread>

#include <fmt/format.h>

#include "journal/aligned_buffer.hpp"
#include "journal/index_builder.hpp"
#include "journal/retention.hpp"
#include "journal/segment_files.hpp"
#include "journal/uring.hpp"
#include "journal/write_queue.hpp"
#include "journal/writer_recovery.hpp"

namespace shmbus::journal {

namespace {

using Clock = std::chrono::steady_clock;

// user_data of an fdatasync: the segment's address with the top bit set (user-space addresses
// never have it); a write's user_data is its id, far below.
constexpr std::uint64_t kSyncTag = 1ull << 63;

std::int64_t realtime_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Write errors that may go away (space freed, a transient device error, a signal): the bytes are
// kept and written again. Everything else means the file cannot be written at all.
bool retryable(int err) noexcept {
  return err == ENOSPC || err == EDQUOT || err == EFBIG || err == EIO || err == EINTR ||
         err == EAGAIN;
}

tl::unexpected<Error> invalid(std::string message) {
  return tl::unexpected(Error{ErrorCode::invalid_argument, std::move(message)});
}

}  // namespace

// A segment being written, or retired but with writes or an fdatasync still outstanding.
struct OpenSegment {
  std::uint64_t first_sequence = 0;
  std::string path, index_path;
  int fd = -1, index_fd = -1;
  std::uint64_t end = 0;            // logical end: where the next record goes
  std::int64_t last_data_ns = 0;    // newest data timestamp appended (0: none)
  IndexBuilder builder;
  // Index entries, allocated once for the whole segment (in-flight writes point into it).
  std::unique_ptr<IndexEntry[]> entries;
  std::size_t entry_capacity = 0, entry_count = 0, entries_submitted = 0;
  std::uint64_t outstanding = 0;    // writes created and not yet complete
  unsigned syncs = 0;               // fdatasyncs in flight
  std::uint64_t last_data_write = 0;  // id of the newest data write (for O_DIRECT block rewrites)
  bool unsynced = false;            // writes completed since the last fdatasync was issued
  bool retired = false;             // a newer segment is being written
  bool trimmed = false;             // O_DIRECT zero padding after `end` cut off

  OpenSegment() = default;
  OpenSegment(const OpenSegment&) = delete;
  OpenSegment& operator=(const OpenSegment&) = delete;
  ~OpenSegment() {
    if (fd >= 0) ::close(fd);
    if (index_fd >= 0) ::close(index_fd);
  }
  void allocate_index(std::uint64_t segment_bytes) {
    entry_capacity = std::max(segment_bytes, end) / kIndexInterval + 3;
    entries = std::make_unique<IndexEntry[]>(entry_capacity);
  }
};

namespace {

struct Buffer {
  std::byte* mem = nullptr;
  OpenSegment* segment = nullptr;
  std::uint64_t file_offset = 0;
  std::uint64_t used = 0;         // bytes filled
  std::uint64_t submitted = 0;    // bytes handed to writes
  std::uint64_t stream_base = 0;  // stream position of mem[0] (see State::appended_)
  unsigned writes = 0;            // writes from this buffer not yet complete
  bool retired = false;           // no more appends: free once `writes` is 0
};

enum class Submit : std::uint8_t {
  keep,         // flush: the buffer stays current if it can take more bytes
  retire,       // the next bytes go elsewhere (slow path); carry a partial block under O_DIRECT
  end_segment,  // the segment is finished: nothing is carried
};

}  // namespace

struct JournalWriter::State {
  WriterOptions opt;
  std::uint64_t cap = 0;  // bytes per pool buffer
  DirectoryLock lock;
  AlignedBuffer pool_memory;  // declared before the ring: the ring goes away first
  AlignedBuffer stash;        // the partial block carried between buffers (O_DIRECT)
  Uring ring;
  bool fixed = false;         // pool buffers registered: write_fixed
  std::vector<Buffer> pool;
  std::vector<int> free;      // reserved for every buffer: never allocates
  int cur = -1;
  std::uint64_t carry = 0;    // bytes in `stash` that the next buffer starts with

  std::vector<std::unique_ptr<OpenSegment>> segments;  // open ones, oldest first; the last is current
  OpenSegment* seg = nullptr;     // the segment being written (null: the next append creates one)
  std::vector<RetainedSegment> closed;  // finished segments still on disk, oldest first
  std::uint64_t next_number = 0;

  WriteQueue writes;
  std::size_t queued = 0;     // writes in phase queued
  std::size_t failed = 0;     // writes in phase failed (waiting for their retry)
  std::size_t blocked = 0;    // writes that failed and have not succeeded since
  std::size_t in_flight = 0;  // operations the kernel holds (writes and fdatasyncs)
  bool prepared = false;      // submission entries prepared since the last submit
  bool fresh = false;         // writes created by this append: pump() starts them

  std::uint64_t next_seq = 0, written = 0, durable = 0;
  // Stream position: bytes appended since open, offset so that carried bytes never go below 0.
  std::uint64_t appended = kPageSize;
  struct Marker {
    std::uint64_t end = 0;  // stream position just past the record
    std::uint64_t last = 0;  // its last sequence
  } markers[2];             // the two newest records: [1] newest

  std::uint64_t sync_goal = 0;    // fdatasync once written_ reaches this (flush under batch, drain)
  std::uint64_t sync_target = 0;  // what the round in flight covers
  unsigned syncs = 0;
  Clock::time_point next_sync{};

  std::optional<Error> failure;   // sticky: the writer cannot go on
  std::optional<Error> pending;   // reported once by the next reap()
  std::string last_error;
  int last_errno = 0;
  WriterStats stats;
  CompletionHook hook = nullptr;
  void* hook_context = nullptr;

  explicit State(const WriterOptions& o)
      : opt(o), writes(4 * std::size_t{o.buffers} + 16) {}

  // --- appending -------------------------------------------------------------------------------

  std::uint64_t room(bool new_segment) const noexcept {
    const std::uint64_t spare = free.size() * cap;
    if (new_segment) return spare;
    if (cur >= 0) return (cap - pool[cur].used) + spare;
    return spare >= cap ? spare - carry : 0;
  }

  Error pool_full() const {
    if (blocked > 0) {
      const bool space = last_errno == ENOSPC || last_errno == EDQUOT || last_errno == EFBIG;
      return Error{space ? ErrorCode::no_space : ErrorCode::system,
                   fmt::format("journal {}: every write buffer is full while writes fail ({})",
                               opt.dir, last_error)};
    }
    return Error{ErrorCode::busy,
                 fmt::format("journal {}: all {} write buffers are in flight; reap() first", opt.dir,
                             opt.buffers)};
  }

  Result<void> append(RecordType type, std::uint64_t seq, std::uint64_t count, std::int64_t ts,
                      std::span<const std::byte> payload) {
    if (failure) return tl::unexpected(*failure);
    if (seq == 0) return invalid(fmt::format("journal {}: sequence 0 (sequences start at 1)", opt.dir));
    if (next_seq != 0 && seq != next_seq) {
      return invalid(fmt::format("journal {}: sequence {} appended where {} is due", opt.dir, seq,
                                 next_seq));
    }
    if (count == 0 || count - 1 > UINT64_MAX - seq) {
      return invalid(fmt::format("journal {}: a gap of {} sequences from {}", opt.dir, count, seq));
    }
    if (payload.size() > kMaxRecordPayload) {
      return invalid(fmt::format("journal {}: record of {} bytes (at most {})", opt.dir,
                                 payload.size(), kMaxRecordPayload));
    }
    const std::uint64_t size = padded_record_size(payload.size());
    const bool new_segment =
        seg == nullptr || (seg->end > kSegmentHeaderSize && seg->end + size > opt.segment_bytes);
    const bool big = size > cap;
    AlignedBuffer temp;
    if (big) {
      // Slow path: the record gets a buffer of its own (after the carried block, if any).
      const std::uint64_t carried = new_segment || !opt.direct ? 0 : seg->end % kPageSize;
      temp = AlignedBuffer::allocate(carried + size);
      if (!temp) {
        return tl::unexpected(Error{ErrorCode::system,
                                    fmt::format("journal {}: cannot allocate {} bytes for a record",
                                                opt.dir, carried + size)});
      }
    } else if (room(new_segment) < size) {
      if (blocked == 0 && in_flight == 0 && cur >= 0) {
        // Nothing in flight would free a buffer: hand the current one to the kernel, so that
        // the reap(true) the caller does next has something to wait for.
        submit_current(Submit::retire);
        pump(Clock::now());
      }
      return tl::unexpected(pool_full());
    }
    if (new_segment) {
      // A segment is started only once every write of the one before has completed, so that the
      // files never hold a segment that begins before the previous one ends: not for a reader of
      // the live journal, not after a crash. Until then appends report busy (the caller reaps
      // and retries), or the pool's error while writes are failing.
      if (seg != nullptr) retire_segment();
      if (!writes.empty()) {
        pump(Clock::now());
        if (blocked > 0) return tl::unexpected(pool_full());
        return tl::unexpected(Error{
            ErrorCode::busy, fmt::format("journal {}: the previous segment's writes are completing; "
                                         "reap() first", opt.dir)});
      }
      if (auto r = roll(seq); !r) return r;
    }

    // The common case, a record that fits the current buffer, is written in place and its crc
    // computed there in one pass; the others go through a header made beforehand.
    const bool in_place = !big && cur >= 0 && cap - pool[cur].used >= size;
    RecordHeader header{};
    header.length = static_cast<std::uint32_t>(payload.size());
    header.sequence = seq;
    header.timestamp_ns = ts;
    header.type = static_cast<std::uint16_t>(type);
    if (!in_place) make_record_header(header, type, seq, ts, payload);
    const std::uint64_t last = seq + count - 1;
    IndexEntry entry;
    if (seg->builder.add(type, seq, ts, seg->end, entry) && seg->entry_count < seg->entry_capacity) {
      seg->entries[seg->entry_count++] = entry;
    }
    if (type == RecordType::data) seg->last_data_ns = std::max(seg->last_data_ns, ts);
    markers[0] = markers[1];
    markers[1] = Marker{appended + size, last};

    if (in_place) {
      Buffer& b = pool[cur];
      std::byte* at = b.mem + b.used;
      std::memcpy(at, &header, sizeof header);
      if (!payload.empty()) std::memcpy(at + sizeof header, payload.data(), payload.size());
      std::memset(at + sizeof header + payload.size(), 0, size - sizeof header - payload.size());
      seal_record(at, header.length);
      b.used += size;
      appended += size;
      seg->end += size;
      if (b.used == cap) submit_current(Submit::keep);
    } else if (big) {
      append_big(header, payload, size, std::move(temp));
    } else {
      static constexpr std::byte kZeros[kRecordAlignment] = {};
      copy_in(&header, sizeof header);
      copy_in(payload.data(), payload.size());
      copy_in(kZeros, size - kRecordHeaderSize - payload.size());
    }
    next_seq = last + 1;
    if (type == RecordType::data) {
      ++stats.records;
    } else {
      ++stats.gap_records;
    }
    stats.bytes += size;
    if (fresh) {
      fresh = false;
      pump(Clock::now());
    }
    return {};
  }

  void take_buffer() {
    const int i = free.back();
    free.pop_back();
    Buffer& b = pool[i];
    b.segment = seg;
    b.file_offset = seg->end - carry;
    std::memcpy(b.mem, stash.data(), carry);
    b.used = b.submitted = carry;
    b.stream_base = appended - carry;
    b.writes = 0;
    b.retired = false;
    carry = 0;
    cur = i;
  }

  // Copies bytes to the end of the segment, moving to the next buffer when one fills (room()
  // was checked, so there is one).
  void copy_in(const void* data, std::size_t n) {
    const auto* p = static_cast<const std::byte*>(data);
    while (n > 0) {
      if (cur < 0) take_buffer();
      Buffer& b = pool[cur];
      const std::size_t k = std::min<std::uint64_t>(n, cap - b.used);
      std::memcpy(b.mem + b.used, p, k);
      b.used += k;
      p += k;
      n -= k;
      appended += k;
      seg->end += k;
      if (b.used == cap) submit_current(Submit::keep);
    }
  }

  void append_big(const RecordHeader& header, std::span<const std::byte> payload,
                  std::uint64_t size, AlignedBuffer temp) {
    submit_current(Submit::retire);
    std::byte* m = temp.data();
    const std::uint64_t carried = carry;
    std::memcpy(m, stash.data(), carried);
    std::memcpy(m + carried, &header, sizeof header);
    if (!payload.empty()) std::memcpy(m + carried + sizeof header, payload.data(), payload.size());
    // The padding after the payload is zero: AlignedBuffer::allocate zeroes.
    const std::uint64_t file_offset = seg->end - carried;
    const std::uint64_t stream_base = appended - carried;
    const std::uint64_t end = carried + size;
    appended += size;
    seg->end += size;
    carry = opt.direct ? end % kPageSize : 0;
    std::memcpy(stash.data(), m + (end - carry), carry);
    emit(seg, m, file_offset, carried, end, stream_base, -1, std::move(temp));
  }

  // The last sequence of a record ending in the stream range (a, b], 0 if none does. Writes are
  // created either between records or (a full buffer) inside the newest one, so the newest two
  // records are the only candidates.
  std::uint64_t last_sequence_in(std::uint64_t a, std::uint64_t b) const noexcept {
    for (const Marker* m : {&markers[1], &markers[0]}) {
      if (m->end > a && m->end <= b) return m->last;
    }
    return 0;
  }

  // Creates the write of buffer bytes [lb, le) (whole blocks around them under O_DIRECT).
  void emit(OpenSegment* s, std::byte* mem, std::uint64_t file_offset, std::uint64_t lb,
            std::uint64_t le, std::uint64_t stream_base, int buffer, AlignedBuffer temp) {
    if (lb >= le) return;
    const std::uint64_t pb = opt.direct ? align_down(lb) : lb;
    const std::uint64_t pe = opt.direct ? align_up(le) : le;
    if (pe > le) std::memset(mem + le, 0, pe - le);  // zeros: a clean tail for the scanner
    Write& w = writes.push();
    w.segment = s;
    w.fd = s->fd;
    w.data = mem + pb;
    w.offset = file_offset + pb;
    w.length = pe - pb;
    w.buffer = buffer;
    w.temp = std::move(temp);
    w.last_sequence = last_sequence_in(stream_base + lb, stream_base + le);
    // Bytes before lb in the first block were written by the segment's previous data write.
    w.wait_for = pb < lb ? s->last_data_write : 0;
    w.direct = opt.direct;
    s->last_data_write = w.id;
    ++s->outstanding;
    if (buffer >= 0) ++pool[buffer].writes;
    ++queued;
    fresh = true;
    emit_index(s);
  }

  // Creates the write of the index entries made since the last one (plain, not O_DIRECT).
  void emit_index(OpenSegment* s) {
    if (s->entries_submitted == s->entry_count) return;
    Write& w = writes.push();
    w.segment = s;
    w.fd = s->index_fd;
    w.data = reinterpret_cast<std::byte*>(&s->entries[s->entries_submitted]);
    w.offset = sizeof(IndexHeader) + s->entries_submitted * sizeof(IndexEntry);
    w.length = (s->entry_count - s->entries_submitted) * sizeof(IndexEntry);
    s->entries_submitted = s->entry_count;
    ++s->outstanding;
    ++queued;
  }

  void retire_buffer(int i) {
    pool[i].retired = true;
    if (pool[i].writes == 0) free.push_back(i);
  }

  // Hands the current buffer's new bytes to a write. See invariant 2 for when it is retired.
  void submit_current(Submit mode) {
    if (cur < 0) {
      if (mode == Submit::end_segment) carry = 0;
      return;
    }
    Buffer& b = pool[cur];
    emit(b.segment, b.mem, b.file_offset, b.submitted, b.used, b.stream_base, cur, {});
    b.submitted = b.used;
    const bool partial_block = opt.direct && b.used % kPageSize != 0;
    if (b.used == cap || partial_block || mode != Submit::keep) {
      carry = partial_block && mode != Submit::end_segment ? b.used % kPageSize : 0;
      std::memcpy(stash.data(), b.mem + (b.used - carry), carry);
      const int i = cur;
      cur = -1;
      retire_buffer(i);
    }
  }

  // --- segments --------------------------------------------------------------------------------

  // Hands the current segment's last bytes to the kernel and closes it for appends.
  void retire_segment() {
    submit_current(Submit::end_segment);
    emit_index(seg);  // entries made since the last data write (none, normally)
    seg->retired = true;
    closed.push_back(RetainedSegment{seg->first_sequence, seg->end,
                                     seg->last_data_ns != 0 ? seg->last_data_ns : realtime_ns()});
    seg = nullptr;
  }

  Result<void> roll(std::uint64_t first_sequence) {
    const bool had_segment = !closed.empty();
    if (seg != nullptr) retire_segment();
    auto s = std::make_unique<OpenSegment>();
    s->first_sequence = first_sequence;
    s->path = join_path(opt.dir, segment_file_name(first_sequence));
    s->index_path = join_path(opt.dir, index_file_name(first_sequence));
    SegmentHeader header;
    make_segment_header(header, opt.channel, opt.incarnation, first_sequence, next_number,
                        realtime_ns());
    auto fd = create_segment_file(s->path, header, opt.direct, opt.fsync != FsyncPolicy::never);
    if (!fd) return tl::unexpected(fd.error());
    s->fd = *fd;
    auto index = write_index_file(s->index_path, first_sequence, {});
    if (!index) {
      (void)remove_file(s->path);  // so the next attempt can create it again
      return tl::unexpected(index.error());
    }
    s->index_fd = *index;
    if (auto r = sync_directory(opt.dir); !r) {
      // The directory entry may not be durable: the same doubt as a failed fdatasync.
      fail(r.error());
      return tl::unexpected(r.error());
    }
    s->end = kSegmentHeaderSize;
    s->allocate_index(opt.segment_bytes);
    seg = s.get();
    segments.push_back(std::move(s));
    ++next_number;
    ++stats.segments_created;
    if (had_segment) apply_retention();
    return {};
  }

  void apply_retention() {
    if (opt.retain_bytes == 0 && opt.retain_age.count() == 0) return;
    const std::size_t n =
        segments_to_delete(closed, seg->end, opt.retain_bytes, opt.retain_age, realtime_ns());
    std::size_t deleted = 0;
    for (; deleted < n; ++deleted) {
      const std::uint64_t first = closed[deleted].first_sequence;
      auto r = remove_file(join_path(opt.dir, segment_file_name(first)));
      if (r) r = remove_file(join_path(opt.dir, index_file_name(first)));
      if (!r) {
        last_error = r.error().message;
        break;
      }
      ++stats.segments_deleted;
    }
    closed.erase(closed.begin(), closed.begin() + static_cast<std::ptrdiff_t>(deleted));
    if (deleted > 0) {
      if (auto r = sync_directory(opt.dir); !r) last_error = r.error().message;
    }
  }

  // Closes retired segments nothing refers to any more; under O_DIRECT first cuts the zero
  // padding of their last block, so only the newest segment ever ends in a partial block.
  void close_retired() {
    for (auto it = segments.begin(); it != segments.end();) {
      OpenSegment& s = **it;
      if (&s == seg || !s.retired || s.outstanding > 0 || s.syncs > 0) {
        ++it;
        continue;
      }
      if (opt.direct && !s.trimmed && s.end % kPageSize != 0) {
        if (::ftruncate(s.fd, static_cast<off_t>(s.end)) != 0) {
          pending = os_error(errno, fmt::format("cannot cut the padding of segment {}", s.path));
          last_error = pending->message;
        }
      }
      s.trimmed = true;
      if (opt.fsync != FsyncPolicy::never && s.unsynced) {
        ++it;  // the next fdatasync round covers it
        continue;
      }
      it = segments.erase(it);
    }
  }

  // --- submitting and completing ---------------------------------------------------------------

  bool can_start(const Write& w) {
    if (w.wait_for == 0) return true;
    const Write* before = writes.find(w.wait_for);
    return before == nullptr || before->phase == Write::Phase::complete;
  }

  bool start(Write& w) {
    io_uring_sqe* sqe = ring.entry();
    if (sqe == nullptr) return false;
    std::byte* p = w.data + w.done;
    const auto n = static_cast<unsigned>(w.length - w.done);
    const auto off = w.offset + w.done;
    if (w.buffer >= 0 && fixed) {
      io_uring_prep_write_fixed(sqe, w.fd, p, n, off, w.buffer);
    } else {
      io_uring_prep_write(sqe, w.fd, p, n, off);
    }
    io_uring_sqe_set_data64(sqe, w.id);
    if (w.retrying) {
      ++stats.retried_writes;
    } else {
      ++stats.writes;
    }
    w.phase = Write::Phase::in_flight;
    ++in_flight;
    prepared = true;
    return true;
  }

  // Retries failed writes that are due, starts queued writes (in order, see invariant 4), issues an
  // fdatasync round if one is due, and submits.
  void pump(Clock::time_point now) {
    if (failure) return;
    if (failed > 0) {
      writes.for_each([&](Write& w) {
        if (w.phase == Write::Phase::failed && w.retry_at <= now && start(w)) --failed;
      });
    }
    if (queued > 0 && blocked == 0) {
      bool go = true;
      writes.for_each([&](Write& w) {
        if (!go || w.phase != Write::Phase::queued) return;
        if (!can_start(w) || !start(w)) {
          go = false;
          return;
        }
        --queued;
      });
    }
    maybe_sync(now);
    if (prepared) {
      prepared = false;
      if (const int rc = ring.submit(); rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
        fail(os_error(-rc, fmt::format("journal {}: io_uring submit failed", opt.dir)));
      }
    }
  }

  void maybe_sync(Clock::time_point now) {
    if (opt.fsync == FsyncPolicy::never || failure || syncs > 0 || written <= durable) return;
    const bool goal_reached = sync_goal > durable && written >= sync_goal;
    const bool interval_due = opt.fsync == FsyncPolicy::interval && now >= next_sync;
    if (!goal_reached && !interval_due) return;
    sync_target = written;
    next_sync = now + opt.fsync_interval;
    for (auto& s : segments) {
      if (!s->unsynced) continue;
      io_uring_sqe* sqe = ring.entry();
      if (sqe == nullptr) break;  // the rest stay unsynced; the round is not complete without them
      io_uring_prep_fsync(sqe, s->fd, IORING_FSYNC_DATASYNC);
      io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uintptr_t>(s.get()) | kSyncTag);
      s->unsynced = false;
      ++s->syncs;
      ++syncs;
      ++in_flight;
      prepared = true;
    }
    if (std::any_of(segments.begin(), segments.end(), [](auto& s) { return s->unsynced; })) {
      sync_target = durable;  // could not cover everything: this round proves nothing new
    }
    if (syncs == 0) durable = std::max(durable, sync_target);
  }

  void fail(Error e) {
    last_error = e.message;
    if (!failure) failure = std::move(e);
  }

  void process_completions() {
    ring.for_each_ready([this](std::uint64_t data, int res) { on_completion(data, res); });
  }

  void on_completion(std::uint64_t data, int res) {
    if (hook != nullptr) res = hook(hook_context, res);
    --in_flight;
    if (data & kSyncTag) {
      auto* s = reinterpret_cast<OpenSegment*>(static_cast<std::uintptr_t>(data & ~kSyncTag));
      --s->syncs;
      --syncs;
      if (res < 0) {
        fail(os_error(-res, fmt::format("fdatasync of {} failed; records after sequence {} are not "
                                        "known to be durable and the writer stops (a retried "
                                        "fsync can succeed without the data)",
                                        s->path, durable)));
      } else {
        ++stats.fsyncs;
      }
      if (syncs == 0 && !failure) durable = std::max(durable, sync_target);
      return;
    }
    Write* w = writes.find(data);
    if (w == nullptr) return;
    const std::string& path = w->fd == w->segment->fd ? w->segment->path : w->segment->index_path;
    if (res < 0) {
      const int err = -res;
      if (!retryable(err)) {
        w->phase = Write::Phase::failed;  // never retried: the writer has stopped
        fail(os_error(err, fmt::format("write of {} bytes at offset {} to {} failed",
                                       w->length - w->done, w->offset + w->done, path)));
        return;
      }
      last_errno = err;
      set_failed(*w, fmt::format("write of {} bytes at offset {} to {} failed: {}",
                                 w->length - w->done, w->offset + w->done, path,
                                 std::strerror(err)));
      return;
    }
    const std::uint64_t remaining = w->length - w->done;
    w->done += std::min<std::uint64_t>(static_cast<std::uint64_t>(res), remaining);
    if (w->done < w->length) {
      const std::uint64_t got = static_cast<std::uint64_t>(res);
      // O_DIRECT retries must stay block-aligned: rewrite the partly written block.
      if (w->direct) w->done = align_down(w->done);
      last_errno = EIO;
      set_failed(*w, fmt::format("short write: {} of {} bytes at offset {} to {}", got, remaining,
                                 w->offset + w->done, path));
      return;
    }
    complete(*w);
  }

  void set_failed(Write& w, std::string message) {
    ++stats.write_errors;
    if (!w.retrying) {
      w.retrying = true;
      ++blocked;
    }
    w.phase = Write::Phase::failed;
    w.retry_at = Clock::now() + opt.retry_interval;
    ++failed;
    last_error = std::move(message);
  }

  void complete(Write& w) {
    w.phase = Write::Phase::complete;
    if (w.retrying) --blocked;
    --w.segment->outstanding;
    w.segment->unsynced = true;
    if (w.buffer >= 0) {
      Buffer& b = pool[w.buffer];
      if (--b.writes == 0 && b.retired) free.push_back(w.buffer);
    }
    w.temp = AlignedBuffer{};
    while (!writes.empty() && writes.front().phase == Write::Phase::complete) {
      written = std::max(written, writes.front().last_sequence);
      writes.pop();
    }
  }

  Clock::time_point next_event(Clock::time_point now) {
    Clock::time_point t = now + std::chrono::seconds(1);
    if (failed > 0) {
      writes.for_each([&](Write& w) {
        if (w.phase == Write::Phase::failed) t = std::min(t, w.retry_at);
      });
    }
    if (opt.fsync == FsyncPolicy::interval && written > durable) t = std::min(t, next_sync);
    return t;
  }

  Result<void> reap(bool wait, Clock::time_point deadline) {
    if (failure) return tl::unexpected(*failure);
    process_completions();
    Clock::time_point now = Clock::now();
    pump(now);
    if (wait && !failure) {
      const Clock::time_point until = std::min(next_event(now), deadline);
      if (in_flight > 0) {
        ring.wait(until - now);
        process_completions();
      } else if (failed > 0 || (opt.fsync == FsyncPolicy::interval && written > durable)) {
        std::this_thread::sleep_until(until);
      }
      now = Clock::now();
      pump(now);
    }
    close_retired();
    if (failure) return tl::unexpected(*failure);
    if (pending) {
      Error e = std::move(*pending);
      pending.reset();
      return tl::unexpected(std::move(e));
    }
    return {};
  }

  Result<void> flush() {
    if (failure) return tl::unexpected(*failure);
    submit_current(Submit::keep);
    if (seg != nullptr) emit_index(seg);
    if (opt.fsync == FsyncPolicy::batch && next_seq > 0) sync_goal = next_seq - 1;
    if (queued > 0 || (sync_goal > durable && written >= sync_goal)) pump(Clock::now());
    if (failure) return tl::unexpected(*failure);
    return {};
  }

  bool drained() const noexcept {
    const std::uint64_t last = next_seq > 0 ? next_seq - 1 : 0;
    return writes.empty() && (opt.fsync == FsyncPolicy::never || durable >= last);
  }

  Result<void> drain(std::chrono::milliseconds timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    if (auto r = flush(); !r) return r;
    if (opt.fsync != FsyncPolicy::never && next_seq > 0) sync_goal = next_seq - 1;
    for (;;) {
      if (auto r = reap(false, deadline); !r) return r;
      if (drained()) return {};
      if (Clock::now() >= deadline) {
        return tl::unexpected(Error{
            ErrorCode::timed_out,
            fmt::format("journal {}: drain timed out after {} ms with {} writes outstanding{}{}",
                        opt.dir, timeout.count(), writes.size(), blocked > 0 ? "; " : "",
                        blocked > 0 ? last_error : "")});
      }
      if (auto r = reap(true, deadline); !r) return r;
    }
  }

  // Best effort at close: write what can be written, then wait for everything the kernel holds
  // (it reads the buffers, which are freed right after).
  void close() {
    if (!failure && blocked == 0) (void)drain(std::chrono::seconds(10));
    while (in_flight > 0) {
      ring.wait(std::chrono::milliseconds(100));
      process_completions();
    }
    if (opt.direct && seg != nullptr && writes.empty() && seg->end % kPageSize != 0) {
      (void)::ftruncate(seg->fd, static_cast<off_t>(seg->end));
    }
  }

  // --- opening ---------------------------------------------------------------------------------

  Result<void> setup_pool() {
    cap = align_up(opt.buffer_bytes);
    pool_memory = AlignedBuffer::allocate(cap * opt.buffers);
    stash = AlignedBuffer::allocate(kPageSize);
    if (!pool_memory || !stash) {
      return tl::unexpected(Error{ErrorCode::system,
                                  fmt::format("journal {}: cannot allocate {} write buffers of {} bytes",
                                              opt.dir, opt.buffers, cap)});
    }
    pool.resize(opt.buffers);
    free.reserve(opt.buffers);
    std::vector<iovec> iov(opt.buffers);
    for (unsigned i = 0; i < opt.buffers; ++i) {
      pool[i].mem = pool_memory.data() + i * cap;
      iov[i] = iovec{pool[i].mem, cap};
      free.push_back(static_cast<int>(opt.buffers - 1 - i));
    }
    // Writes in flight: every pool buffer, index writes, slow-path writes and fdatasyncs.
    if (auto r = ring.init(std::max(32u, 4 * opt.buffers)); !r) return r;
    fixed = ring.register_buffers(iov);
    return {};
  }

  Result<void> continue_segment(ContinuedSegment& c) {
    auto s = std::make_unique<OpenSegment>();
    s->first_sequence = c.header.first_sequence;
    s->path = c.path;
    s->index_path = join_path(opt.dir, index_file_name(s->first_sequence));
    auto fd = open_segment_file(s->path, opt.direct);
    if (!fd) return tl::unexpected(fd.error());
    s->fd = *fd;
    // The index is a hint; rebuilding it from the segment (the truth) also repairs it.
    auto index = write_index_file(s->index_path, s->first_sequence, c.index);
    if (!index) return tl::unexpected(index.error());
    s->index_fd = *index;
    s->end = c.end;
    s->last_data_ns = c.last_data_time_ns;
    s->builder = c.builder;
    s->allocate_index(opt.segment_bytes);
    s->entry_count = s->entries_submitted = std::min(c.index.size(), s->entry_capacity);
    std::copy_n(c.index.begin(), s->entry_count, s->entries.get());
    if (opt.direct && s->end % kPageSize != 0) {
      // The partial last block is rewritten whole by the next write: start from its bytes.
      carry = s->end % kPageSize;
      const ssize_t n = ::pread(s->fd, stash.data(), kPageSize, static_cast<off_t>(align_down(s->end)));
      if (n < static_cast<ssize_t>(carry)) {
        return tl::unexpected(os_error(n < 0 ? errno : EIO,
                                       fmt::format("cannot read the last block of {}", s->path)));
      }
    }
    seg = s.get();
    segments.push_back(std::move(s));
    return {};
  }
};

Result<JournalWriter> JournalWriter::open(const WriterOptions& options, RecoveryReport* report) {
  if (options.buffers == 0) return invalid("journal writer needs at least one buffer");
  if (options.buffer_bytes == 0 || options.buffer_bytes > (1u << 30)) {
    return invalid(fmt::format("journal buffer_bytes {} (1 .. 1 GiB)", options.buffer_bytes));
  }
  if (options.segment_bytes <= kSegmentHeaderSize) {
    return invalid(fmt::format("journal segment_bytes {} is not above the {}-byte header",
                               options.segment_bytes, kSegmentHeaderSize));
  }
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

  JournalWriter w;
  w.state_ = std::make_unique<State>(options);
  State& s = *w.state_;
  s.lock = std::move(*lock);
  if (auto r = s.setup_pool(); !r) return tl::unexpected(r.error());
  if (recovered->current) {
    if (auto r = s.continue_segment(*recovered->current); !r) return tl::unexpected(r.error());
  }
  s.closed = std::move(recovered->closed);
  s.next_number = recovered->next_segment_number;
  s.next_seq = recovered->next_sequence;
  s.written = s.next_seq > 0 ? s.next_seq - 1 : 0;
  // Recovery fdatasynced the newest segment when a policy asks for durability.
  s.durable = options.fsync != FsyncPolicy::never ? s.written : 0;
  s.next_sync = Clock::now() + options.fsync_interval;
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

std::uint64_t JournalWriter::next_sequence() const noexcept { return state_->next_seq; }

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

Result<void> JournalWriter::flush() { return state_->flush(); }

Result<void> JournalWriter::reap(bool wait) { return state_->reap(wait, Clock::time_point::max()); }

Result<void> JournalWriter::drain(std::chrono::milliseconds timeout) {
  return state_->drain(timeout);
}

std::uint64_t JournalWriter::written_sequence() const noexcept { return state_->written; }
std::uint64_t JournalWriter::durable_sequence() const noexcept { return state_->durable; }
bool JournalWriter::blocked() const noexcept { return state_->blocked > 0; }
bool JournalWriter::full() const noexcept {
  const State& s = *state_;
  return s.free.empty() && (s.cur < 0 || s.cap - s.pool[s.cur].used < kRecordHeaderSize);
}
const std::string& JournalWriter::last_error() const noexcept { return state_->last_error; }
const WriterStats& JournalWriter::stats() const noexcept { return state_->stats; }

void JournalWriter::set_completion_hook(CompletionHook hook, void* context) noexcept {
  state_->hook = hook;
  state_->hook_context = context;
}

}  // namespace shmbus::journal
