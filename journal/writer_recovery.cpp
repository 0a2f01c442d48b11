#include "journal/writer_recovery.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

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

}  // namespace

Result<RecoveredJournal> recover_journal(const std::string& dir, bool sync, RecoveryReport& report) {
  auto listing = list_directory(dir);
  if (!listing) return tl::unexpected(listing.error());
  report.segments = listing->segments.size();
  RecoveredJournal out;
  bool removed_any = false;

  // Index files whose segment is gone (retention died between the two unlinks).
  for (const std::uint64_t seq : listing->indexes) {
    if (std::binary_search(listing->segments.begin(), listing->segments.end(), seq)) continue;
    const std::string path = join_path(dir, index_file_name(seq));
    if (auto r = remove_file(path); !r) return tl::unexpected(r.error());
    report.removed.push_back(path);
    removed_any = true;
  }

  std::vector<std::uint64_t>& segs = listing->segments;
  std::optional<SegmentScan> scan;
  ContinuedSegment cont;
  while (!segs.empty()) {
    const std::uint64_t first = segs.back();
    const std::string path = join_path(dir, segment_file_name(first));
    auto size = file_size(path);
    if (!size) return tl::unexpected(size.error());
    cont = ContinuedSegment{};
    auto scanned = scan_segment(path, [&](const RecordHeader& h, std::span<const std::byte>,
                                          std::uint64_t offset) {
      IndexEntry e;
      if (cont.builder.add(static_cast<RecordType>(h.type), h.sequence, h.timestamp_ns, offset, e)) {
        cont.index.push_back(e);
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
      if (auto r = remove_file(join_path(dir, index_file_name(first))); !r) return tl::unexpected(r.error());
      report.removed.push_back(path);
      removed_any = true;
      segs.pop_back();
      continue;
    }
    scan = std::move(*scanned);
    cont.header = scan->header;
    cont.path = path;
    break;
  }
  if (removed_any) {
    if (auto r = sync_directory(dir); !r) return tl::unexpected(r.error());
  }

  const std::size_t closed_count = scan ? segs.size() - 1 : 0;
  for (std::size_t i = 0; i < closed_count; ++i) {
    auto size = file_size(join_path(dir, segment_file_name(segs[i])));
    if (!size) return tl::unexpected(size.error());
    out.closed.push_back(RetainedSegment{segs[i], *size, newest_time_before(dir, segs[i + 1])});
  }
  if (!scan) {
    report.next_sequence = 0;
    return out;
  }

  // Cut bytes after the last valid record: none of them is a record (the scan looked for one).
  const std::uint64_t end = scan->last_record_end;
  // Under a durable policy the newest segment is synced too, so what recovery found counts as
  // durable.
  const bool torn = scan->torn_tail && end < scan->file_bytes;
  if (auto r = trim_and_sync(cont.path, torn ? std::optional(end) : std::nullopt, sync); !r) {
    return tl::unexpected(r.error());
  }
  if (torn) {
    report.truncated_bytes = scan->file_bytes - end;
    report.truncated_segment = cont.path;
  }
  for (const SegmentDamage& d : scan->damage) {
    report.damage.push_back(fmt::format("{}: offset {}: {} (expected sequence {})", cont.path,
                                        d.offset, d.what, d.expected_sequence));
  }
  out.next_sequence = scan->end_sequence;
  out.next_segment_number = scan->header.segment_number + 1;
  report.next_sequence = out.next_sequence;
  const std::int64_t last_data = scan->data_records > 0 ? scan->max_time_ns : 0;

  if (!scan->damage.empty()) {
    // Leave the damaged segment as it is (its index rebuilt over the valid records) and continue
    // in a new one after its last valid record.
    auto index = write_index_file(join_path(dir, index_file_name(cont.header.first_sequence)),
                                  cont.header.first_sequence, cont.index);
    if (!index) return tl::unexpected(index.error());
    ::close(*index);
    out.closed.push_back(RetainedSegment{cont.header.first_sequence, end,
                                         last_data != 0 ? last_data : cont.header.created_ns});
    return out;
  }
  cont.end = end;
  cont.last_data_time_ns = last_data;
  out.current = std::move(cont);
  return out;
}

}  // namespace shmbus::journal
