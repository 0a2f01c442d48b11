#include "journal/writer_recovery.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "journal/continuity.hpp"
#include "journal/durable_mark.hpp"
#include "journal/segment_files.hpp"
#include "journal/segment_scan.hpp"

namespace shmbus::journal {

namespace {

// Cuts the file to `size` (if given) and fdatasyncs it (if `sync`).
Result<void> trim_and_sync(const std::string& path, std::optional<std::uint64_t> size, bool sync) {
  if (!size && !sync) return {};
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(os_error(errno, fmt::format("cannot open {} for recovery", path)));
  int err = 0;
  if (size && ::ftruncate(fd, static_cast<off_t>(*size)) != 0) err = errno;
  if (err == 0 && sync && ::fdatasync(fd) != 0) err = errno;
  ::close(fd);
  if (err != 0) {
    return tl::unexpected(os_error(err, size ? fmt::format("cannot cut the torn tail of {}", path)
                                             : fmt::format("fdatasync of {} failed", path)));
  }
  return {};
}

// Newest-record time of each closed segment: its own scan when it was scanned, else the first
// data record of the segment after it (records are appended in publish order), else that
// segment's creation time (an upper bound: the roll happened after its last record).
std::int64_t newest_time_before(const std::string& dir, std::uint64_t next_first_sequence) {
  const auto head = read_segment_head(join_path(dir, segment_file_name(next_first_sequence)));
  if (!head) return 0;
  return head->first_data_time_ns.value_or(head->header.created_ns);
}

// Where the valid records of a segment stop following each other: the end of one record and the
// start of the next valid one after it, when the scan found a stretch of invalid bytes between.
struct Jump {
  std::uint64_t from = 0;
  std::uint64_t to = 0;
};

// Scans `path` noting the first jump between consecutive valid records. `visit` also sees every
// valid record.
Result<SegmentScan> scan_noting_jump(const std::string& path, std::optional<Jump>& jump,
                                     const ScanVisitor& visit = {}) {
  std::uint64_t last_end = kSegmentHeaderSize;
  jump.reset();
  return scan_segment(path, [&](const RecordHeader& h, std::span<const std::byte> payload,
                                std::uint64_t offset) {
    if (offset != last_end && !jump) jump = Jump{last_end, offset};
    last_end = offset + padded_record_size(h.length);
    if (visit) visit(h, payload, offset);
  });
}

// True if every byte of [from, to) in the file is zero: a stretch no write ever reached. Several
// writes are in flight at once and complete in any order, so a crash can leave such a hole with
// valid records after it; a damaged disk block, or a flipped bit, is not all zeros.
bool zero_filled(const std::string& path, std::uint64_t from, std::uint64_t to) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::vector<char> buffer(1 << 16);
  bool zeros = true;
  for (std::uint64_t at = from; zeros && at < to;) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), to - at));
    const ssize_t n = ::pread(fd, buffer.data(), want, static_cast<off_t>(at));
    if (n <= 0) {
      zeros = false;
      break;
    }
    zeros = std::all_of(buffer.begin(), buffer.begin() + n, [](char c) { return c == 0; });
    at += static_cast<std::uint64_t>(n);
  }
  ::close(fd);
  return zeros;
}

// The sequence after the last record of the segment that follows contiguously from its start:
// the scan's end, or the start of a hole left by writes in flight at a crash.
std::uint64_t contiguous_end(const std::string& path, const SegmentScan& scan,
                             const std::optional<Jump>& jump) {
  if (!scan.damage.empty() && jump && zero_filled(path, jump->from, jump->to)) {
    return scan.next_sequence;
  }
  return scan.end_sequence;
}

// Each segment must begin where the one before it ended (segment_break, journal/continuity.hpp),
// the end here being the contiguous_end: records past a hole of zeros were never counted written.
// Writes to several segments can be in flight at a crash (rolls do not wait for the previous
// segment's writes), so a segment can end short while later segments are complete: those lie
// beyond a hole. Nothing in them was counted written, so the journaler writes their records again
// from the channel; they are set aside (renamed, not deleted: their records are valid) and
// reported. Only the tail of the journal can be in that
// state: the walk stops once it has looked at `window_bytes` of segments.
// Segments holding records that were reported durable (through `durable`) are never set aside:
// the journal is refused instead.
Result<bool> set_aside_beyond_holes(const std::string& dir, std::vector<std::uint64_t>& segs,
                                    std::uint64_t window_bytes, std::uint64_t durable,
                                    RecoveryReport& report) {
  std::optional<std::size_t> first_break;  // index of the segment that ends short
  std::uint64_t looked = 0;
  for (std::size_t i = segs.size(); i-- > 1 && looked <= window_bytes;) {
    const std::string prev_path = join_path(dir, segment_file_name(segs[i - 1]));
    std::optional<Jump> jump;
    auto prev = scan_noting_jump(prev_path, jump);
    if (!prev) continue;  // a bad header is reported when that segment is read
    looked += prev->last_record_end;  // its records: a preallocated tail held no writes
    const std::uint64_t end = contiguous_end(prev_path, *prev, jump);
    if (segment_break(end, segs[i])) {
      if (auto missing = durable_records_missing(
              prev_path, end, durable,
              fmt::format("it ends before the next segment's first sequence {}", segs[i]))) {
        return tl::unexpected(std::move(*missing));
      }
      first_break = i - 1;
      report.crash_repairs.push_back(fmt::format(
          "{} ends at sequence {}, before the next segment's first sequence {} (writes still in "
          "flight at a crash)",
          prev_path, end, segs[i]));
    }
  }
  if (!first_break) return false;
  while (segs.size() > *first_break + 1) {
    const std::uint64_t first = segs.back();
    const std::string path = join_path(dir, segment_file_name(first));
    const std::string aside = path + ".orphaned";
    if (::rename(path.c_str(), aside.c_str()) != 0) {
      return tl::unexpected(os_error(errno, fmt::format("cannot set {} aside", path)));
    }
    if (auto r = remove_file(join_path(dir, index_file_name(first))); !r) {
      return tl::unexpected(r.error());
    }
    report.crash_repairs.push_back(fmt::format(
        "{} set aside as {}: it lies beyond that hole; its records are written again from the "
        "channel",
        path, aside));
    segs.pop_back();
  }
  return true;
}

// Removes what a crash leaves beside the segments: index files whose segment is gone (retention
// died between the two unlinks) and segments still being created. True when it removed any.
Result<bool> remove_leftovers(const std::string& dir, const DirectoryListing& listing,
                              RecoveryReport& report) {
  bool removed = false;
  for (const std::uint64_t seq : listing.indexes) {
    if (std::binary_search(listing.segments.begin(), listing.segments.end(), seq)) continue;
    const std::string path = join_path(dir, index_file_name(seq));
    if (auto r = remove_file(path); !r) return tl::unexpected(r.error());
    report.removed.push_back(path);
    removed = true;
  }
  for (const std::string& name : listing.creating) {
    const std::string path = join_path(dir, name);
    if (auto r = remove_file(path); !r) return tl::unexpected(r.error());
    report.removed.push_back(path);
    removed = true;
  }
  return removed;
}

// The newest segment that holds a valid header, scanned, with its index rebuilt.
struct NewestSegment {
  SegmentScan scan;
  ContinuedSegment segment;
};

// Scans the newest segment of `segments`. One too short to hold any record without a valid header
// is a creation cut short by a crash: removed, and the one before it looked at. One with a hole
// of zeros and records after it is cut at the hole and looked at again. Nothing when no segment
// is left; `removed` is set when it removed one.
Result<std::optional<NewestSegment>> scan_newest(const std::string& dir,
                                                 std::vector<std::uint64_t>& segments,
                                                 std::uint64_t durable, RecoveryReport& report,
                                                 bool& removed) {
  while (!segments.empty()) {
    const std::uint64_t first = segments.back();
    const std::string path = join_path(dir, segment_file_name(first));
    auto size = file_size(path);
    if (!size) return tl::unexpected(size.error());
    ContinuedSegment segment;
    std::optional<Jump> jump;
    auto scanned = scan_noting_jump(path, jump, [&](const RecordHeader& h,
                                                    std::span<const std::byte>,
                                                    std::uint64_t offset) {
      IndexEntry e;
      if (segment.builder.add(static_cast<RecordType>(h.type), h.sequence, h.timestamp_ns, offset,
                              e)) {
        segment.index.push_back(e);
      }
    });
    if (!scanned) {
      // A crash while the segment was being created leaves it without a (valid) header. Only a
      // file too short to hold any record is such a leftover; anything longer may hold records
      // and is not ours to delete.
      if (*size > kSegmentHeaderSize) {
        return tl::unexpected(Error{
            scanned.error().code,
            fmt::format("newest journal segment {} cannot be recovered ({}); move it away to go on",
                        path, scanned.error().message)});
      }
      if (auto r = remove_file(path); !r) return tl::unexpected(r.error());
      if (auto r = remove_file(join_path(dir, index_file_name(first))); !r) {
        return tl::unexpected(r.error());
      }
      report.removed.push_back(path);
      removed = true;
      segments.pop_back();
      continue;
    }
    // A hole of zeros with valid records after it is what a crash leaves when later writes
    // completed before earlier ones. Nothing after the hole was ever counted written (the writer
    // counts only the completed prefix), so the journaler never released those records from the
    // ring and writes them again: cut at the hole, say so, and look at the segment again.
    if (!scanned->damage.empty() && jump && zero_filled(path, jump->from, jump->to)) {
      if (auto missing = durable_records_missing(
              path, scanned->next_sequence, durable,
              fmt::format("a hole of zeros at offset {}", jump->from))) {
        return tl::unexpected(std::move(*missing));
      }
      if (auto r = trim_and_sync(path, jump->from, false); !r) return tl::unexpected(r.error());
      report.crash_repairs.push_back(fmt::format(
          "{}: cut {} bytes from offset {}: a hole of {} zero bytes (writes still in flight at a "
          "crash) with records after it; they are written again from the channel",
          path, *size - jump->from, jump->from, jump->to - jump->from));
      continue;
    }
    segment.header = scanned->header;
    segment.path = path;
    return NewestSegment{std::move(*scanned), std::move(segment)};
  }
  return std::nullopt;
}

// Every segment but the newest, oldest first, with its size and the time of its newest record.
Result<std::vector<RetainedSegment>> closed_segments(const std::string& dir,
                                                     const std::vector<std::uint64_t>& segments,
                                                     std::size_t count) {
  std::vector<RetainedSegment> closed;
  for (std::size_t i = 0; i < count; ++i) {
    auto size = file_size(join_path(dir, segment_file_name(segments[i])));
    if (!size) return tl::unexpected(size.error());
    closed.push_back(RetainedSegment{segments[i], *size, newest_time_before(dir, segments[i + 1])});
  }
  return closed;
}

// Cuts the newest segment after its last valid record (none of those bytes is a record: the scan
// looked for one) and reports what it cut and what damage it found. Under a durable policy the
// segment is synced too, so that what recovery found counts as durable. Refuses, cutting nothing,
// when the segment ends before a record that was reported durable (through `durable`): then the
// bytes after its last valid record are damage, not a torn tail.
Result<void> trim_newest(const NewestSegment& newest, bool sync, std::uint64_t durable,
                         RecoveryReport& report) {
  const SegmentScan& scan = newest.scan;
  const std::string& path = newest.segment.path;
  const std::uint64_t end = scan.last_record_end;
  const bool torn = scan.torn_tail && end < scan.file_bytes;
  if (auto missing = durable_records_missing(
          path, scan.end_sequence, durable,
          torn ? fmt::format("no valid record from offset {} on", end)
               : fmt::format("it ends at offset {}", end))) {
    return tl::unexpected(std::move(*missing));
  }
  // What is cut, counted up to its last nonzero byte: the zeros after a torn write (block
  // padding, space preallocated ahead of the writes) were never data.
  const std::uint64_t torn_bytes = torn ? nonzero_end(path, end, scan.file_bytes) - end : 0;
  if (auto r = trim_and_sync(path, torn ? std::optional(end) : std::nullopt, sync); !r) {
    return tl::unexpected(r.error());
  }
  if (torn_bytes > 0) {
    report.truncated_bytes = torn_bytes;
    report.truncated_segment = path;
  }
  for (const SegmentDamage& d : scan.damage) {
    report.damage.push_back(fmt::format("{}: offset {}: {} (expected sequence {})", path, d.offset,
                                        d.what, d.expected_sequence));
  }
  return {};
}

}  // namespace

Result<RecoveredJournal> recover_journal(const std::string& dir, bool sync,
                                        std::uint64_t window_bytes, RecoveryReport& report) {
  auto listing = list_directory(dir);
  if (!listing) return tl::unexpected(listing.error());
  // Records up to here were reported durable: no repair may cut them (an unreadable mark counts
  // as none, as in a journal written without one, and is written again below).
  const std::uint64_t durable = read_durable_mark(dir).durable_sequence.value_or(0);
  report.segments = listing->segments.size();
  auto leftovers = remove_leftovers(dir, *listing, report);
  if (!leftovers) return tl::unexpected(leftovers.error());
  bool removed_any = *leftovers;
  std::vector<std::uint64_t>& segments = listing->segments;
  auto set_aside = set_aside_beyond_holes(dir, segments, window_bytes, durable, report);
  if (!set_aside) return tl::unexpected(set_aside.error());
  removed_any = removed_any || *set_aside;
  auto newest = scan_newest(dir, segments, durable, report, removed_any);
  if (!newest) return tl::unexpected(newest.error());
  if (removed_any) {
    if (auto r = sync_directory(dir); !r) return tl::unexpected(r.error());
  }

  RecoveredJournal out;
  auto closed = closed_segments(dir, segments, *newest ? segments.size() - 1 : 0);
  if (!closed) return tl::unexpected(closed.error());
  out.closed = std::move(*closed);
  if (!*newest) {
    if (auto missing = durable_records_missing(dir, 0, durable, "no segment is left")) {
      return tl::unexpected(std::move(*missing));
    }
    report.next_sequence = 0;
    if (sync) {
      if (auto r = write_durable_mark(dir, 0); !r) return tl::unexpected(r.error());
    }
    return out;
  }
  NewestSegment& last = **newest;
  if (auto trimmed = trim_newest(last, sync, durable, report); !trimmed) {
    return tl::unexpected(trimmed.error());
  }
  const SegmentScan& scan = last.scan;
  ContinuedSegment& segment = last.segment;
  out.next_sequence = scan.end_sequence;
  // The newest segment is synced: what it holds counts as durable from here on (the writer starts
  // its durable sequence there), and the mark says so before the writer reports anything.
  if (sync) {
    if (auto r = write_durable_mark(dir, std::max(durable, out.next_sequence - 1)); !r) {
      return tl::unexpected(r.error());
    }
  }
  out.next_segment_number = scan.header.segment_number + 1;
  report.next_sequence = out.next_sequence;
  const std::int64_t last_data = scan.data_records > 0 ? scan.max_time_ns : 0;
  if (!scan.damage.empty() || scan.header.version != kFormatVersion) {
    // Leave the damaged segment as it is (its index rebuilt over the valid records) and continue
    // in a new one after its last valid record. A segment of an older format version is left too:
    // it must not get records (tagged ones) that a reader of its version refuses.
    auto index = write_index_file(join_path(dir, index_file_name(segment.header.first_sequence)),
                                  segment.header.first_sequence, segment.index);
    if (!index) return tl::unexpected(index.error());
    ::close(*index);
    out.closed.push_back(RetainedSegment{segment.header.first_sequence, scan.last_record_end,
                                         last_data != 0 ? last_data : segment.header.created_ns});
    return out;
  }
  segment.end = scan.last_record_end;
  segment.last_data_time_ns = last_data;
  out.current = std::move(segment);
  return out;
}

}  // namespace shmbus::journal
