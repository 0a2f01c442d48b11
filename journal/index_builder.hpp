// The rule that decides a segment's index entries, shared by the writer (as it appends) and by
// recovery (rebuilding the index of the segment the writer continues), so both produce the same
// bytes: an entry for the first record at or after every kIndexInterval boundary of the file
// (boundary 0 included: the first record always has one), carrying the running maximum of the
// data timestamps up to and including that record.
#pragma once

#include <algorithm>
#include <cstdint>

#include "journal/format.hpp"

namespace shmbus::journal {

struct IndexBuilder {
  std::uint64_t next_boundary = 0;
  std::int64_t max_time_ns = 0;  // of the data records seen so far (0 before the first)
  bool has_data = false;

  // Accounts for the record at `offset`; true (and `entry` filled) if it gets an index entry.
  bool add(RecordType type, std::uint64_t sequence, std::int64_t timestamp_ns,
           std::uint64_t offset, IndexEntry& entry) noexcept {
    if (type == RecordType::data) add_data_time(timestamp_ns);
    if (offset < next_boundary) return false;
    make_index_entry(entry, sequence, max_time_ns, offset);
    next_boundary = (offset / kIndexInterval + 1) * kIndexInterval;
    return true;
  }

  // Accounts for data records that get no entry (all before next_boundary) by their newest time.
  void add_data_time(std::int64_t timestamp_ns) noexcept {
    max_time_ns = has_data ? std::max(max_time_ns, timestamp_ns) : timestamp_ns;
    has_data = true;
  }
};

}  // namespace shmbus::journal
