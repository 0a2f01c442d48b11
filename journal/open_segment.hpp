// A segment file the journal writer holds open: the one being appended to, or a retired one whose
// writes or fdatasyncs are still outstanding. It owns the segment's and its index's descriptors,
// and the index entries made while appending (allocated once: in-flight index writes point into
// them, so they never move).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "journal/format.hpp"
#include "journal/index_builder.hpp"

namespace shmbus::journal {

struct OpenSegment {
  std::uint64_t first_sequence = 0;
  std::string path, index_path;
  int fd = -1, index_fd = -1;
  std::uint64_t end_offset = 0;      // logical end: where the next record goes
  std::int64_t newest_data_ns = 0;   // newest data timestamp appended (0: none)
  IndexBuilder index_builder;
  std::unique_ptr<IndexEntry[]> index_entries;
  std::size_t index_capacity = 0;
  std::size_t index_entries_made = 0;
  std::size_t index_entries_submitted = 0;  // handed to index writes
  std::uint64_t writes_outstanding = 0;     // writes created and not yet complete
  unsigned syncs_in_flight = 0;             // fdatasyncs of this file the kernel holds
  // Id of the newest data write: a write that rewrites its last block (O_DIRECT) waits for it.
  std::uint64_t newest_data_write = 0;
  // O_DIRECT: the file is allocated and sized up to here, ahead of the writes (see
  // WriteSubmitter::preallocate), so writes below it do not extend the file. 0: not yet.
  std::uint64_t preallocated_end = 0;
  bool written_since_sync = false;  // writes completed since the last fdatasync was issued
  bool retired = false;             // a newer segment is being written
  bool padding_cut = false;         // O_DIRECT padding and preallocation after end_offset cut off

  OpenSegment() = default;
  OpenSegment(const OpenSegment&) = delete;
  OpenSegment& operator=(const OpenSegment&) = delete;
  ~OpenSegment() {
    if (fd >= 0) ::close(fd);
    if (index_fd >= 0) ::close(index_fd);
  }

  // Room for every entry a segment of `segment_bytes` can get (or of its current size, when a
  // record larger than a segment made it bigger).
  void allocate_index(std::uint64_t segment_bytes) {
    index_capacity = std::max(segment_bytes, end_offset) / kIndexInterval + 3;
    index_entries = std::make_unique<IndexEntry[]>(index_capacity);
  }

  // Accounts for a record about to be appended at end_offset: its index entry, if it gets one,
  // and the newest data timestamp (which retention by age reads).
  void note_record(RecordType type, std::uint64_t sequence, std::int64_t timestamp_ns) noexcept {
    IndexEntry entry;
    if (index_builder.add(type, sequence, timestamp_ns, end_offset, entry) &&
        index_entries_made < index_capacity) {
      index_entries[index_entries_made++] = entry;
    }
    if (type == RecordType::data) newest_data_ns = std::max(newest_data_ns, timestamp_ns);
  }
  // Accounts for a run of data records appended before the next index boundary (none gets an
  // entry) by the newest of their timestamps.
  void note_run(std::int64_t newest_timestamp_ns) noexcept {
    index_builder.add_data_time(newest_timestamp_ns);
    newest_data_ns = std::max(newest_data_ns, newest_timestamp_ns);
  }
};

}  // namespace shmbus::journal
