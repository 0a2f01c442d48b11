#include "journal/segment_scan.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <vector>
#include <utility>

#include <fmt/format.h>

#include "journal/record_reading.hpp"

namespace shmbus::journal {
namespace {

void count_record(SegmentScan& scan, const detail::Probe& p) {
  if (p.header.type == static_cast<std::uint16_t>(RecordType::gap)) {
    ++scan.gap_records;
    scan.lost_sequences += p.gap_count();
    return;
  }
  const std::int64_t t = p.header.timestamp_ns;
  if (scan.data_records == 0) {
    scan.first_time_ns = t;
    scan.max_time_ns = t;
  }
  ++scan.data_records;
  scan.last_time_ns = t;
  scan.max_time_ns = std::max(scan.max_time_ns, t);
}

}  // namespace

Result<SegmentScan> scan_segment(const std::string& path, const ScanVisitor& visit) {
  detail::FileWindow file;
  if (auto opened = file.open(path); !opened) return tl::unexpected(opened.error());
  auto header = detail::read_segment_header(file);
  if (!header) return tl::unexpected(header.error());

  SegmentScan scan;
  scan.header = *header;
  scan.file_bytes = file.limit();
  scan.valid_end = kSegmentHeaderSize;
  scan.next_sequence = header->first_sequence;

  std::uint64_t offset = kSegmentHeaderSize;
  std::uint64_t expected = header->first_sequence;
  for (;;) {
    auto probe = detail::probe_record(file, offset);
    if (!probe) return tl::unexpected(probe.error());
    const detail::Probe& p = *probe;
    if (p.kind == detail::Probe::end) break;

    if (p.kind == detail::Probe::record) {
      if (p.header.sequence != expected) {
        // A whole, checksummed record where another was due: records were lost or reordered, not
        // torn. Report it and carry on from its sequence, so later damage is reported too.
        scan.damage.push_back(SegmentDamage{
            offset, expected, fmt::format("sequence {} (expected {})", p.header.sequence, expected)});
        expected = p.header.sequence;
      }
      count_record(scan, p);
      if (visit) visit(p.header, p.payload, offset);
      offset += p.size;
      expected = p.next_sequence();
      if (scan.damage.empty()) {
        scan.valid_end = offset;
        scan.next_sequence = expected;
      }
      continue;
    }

    // An invalid record: damage if anything valid (with a sequence not already passed) follows,
    // else the torn tail of an unfinished write or zero padding after the last record.
    auto found = detail::find_valid_record(file, offset + kRecordAlignment, expected);
    if (!found) return tl::unexpected(found.error());
    if (!*found) break;
    scan.damage.push_back(SegmentDamage{offset, expected, p.why});
    offset = (*found)->offset;
    expected = (*found)->header.sequence;
  }
  scan.last_record_end = offset;
  scan.end_sequence = expected;
  scan.torn_tail = offset < scan.file_bytes;
  return scan;
}

std::uint64_t nonzero_end(const std::string& path, std::uint64_t from, std::uint64_t to) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return to;
  std::vector<unsigned char> buffer(1 << 16);
  std::uint64_t end = from;
  for (std::uint64_t at = from; at < to;) {
    const off_t data = ::lseek(fd, static_cast<off_t>(at), SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only holes from here on
    const off_t hole = data < 0 ? -1 : ::lseek(fd, data, SEEK_HOLE);
    std::uint64_t stretch_begin = data < 0 ? at : static_cast<std::uint64_t>(data);
    const std::uint64_t stretch_end =
        hole < 0 ? to : std::min(static_cast<std::uint64_t>(hole), to);
    if (stretch_begin >= to) break;
    for (; stretch_begin < stretch_end;) {
      const auto want = static_cast<std::size_t>(
          std::min<std::uint64_t>(buffer.size(), stretch_end - stretch_begin));
      const ssize_t n = ::pread(fd, buffer.data(), want, static_cast<off_t>(stretch_begin));
      if (n <= 0) {
        stretch_begin = stretch_end;
        break;
      }
      const unsigned char* past = buffer.data() + n;
      while (past > buffer.data() && past[-1] == 0) --past;
      if (past > buffer.data()) end = stretch_begin + static_cast<std::uint64_t>(past - buffer.data());
      stretch_begin += static_cast<std::uint64_t>(n);
    }
    at = std::max(stretch_end, at + 1);
  }
  ::close(fd);
  return end;
}


}  // namespace shmbus::journal
