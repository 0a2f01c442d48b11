#include "journal/verify.hpp"

#include <utility>

#include <fmt/format.h>

#include "journal/continuity.hpp"
#include "journal/reader.hpp"

namespace shmbus::journal {
namespace {

SegmentReport describe(const SegmentInfo& info, Result<SegmentScan> scanned) {
  SegmentReport report;
  report.path = info.path;
  report.first_sequence = info.first_sequence;
  report.file_bytes = info.file_bytes;
  if (!scanned) {
    report.error = std::move(scanned.error());
    return report;
  }
  SegmentScan& scan = *scanned;
  report.channel = scan.header.channel;
  report.created_ns = scan.header.created_ns;
  if (scan.end_sequence > scan.header.first_sequence) report.last_sequence = scan.end_sequence - 1;
  report.data_records = scan.data_records;
  report.gap_records = scan.gap_records;
  report.lost_sequences = scan.lost_sequences;
  if (scan.data_records > 0) {
    report.first_time_ns = scan.first_time_ns;
    report.last_time_ns = scan.last_time_ns;
  }
  if (scan.torn_tail) {
    report.torn_tail = TornTail{scan.last_record_end, scan.file_bytes - scan.last_record_end};
  }
  report.damaged_records = std::move(scan.damage);
  return report;
}

void add_to(JournalTotals& totals, const SegmentReport& segment) {
  ++totals.segments;
  totals.bytes += segment.file_bytes;
  if (segment.error) return;
  totals.data_records += segment.data_records;
  totals.gap_records += segment.gap_records;
  totals.lost_sequences += segment.lost_sequences;
  if (segment.last_sequence) {
    if (!totals.first_sequence) totals.first_sequence = segment.first_sequence;
    totals.last_sequence = segment.last_sequence;
  }
}

}  // namespace

Result<JournalReport> verify(const std::string& dir) {
  auto listed = list_segments(dir);
  if (!listed) return tl::unexpected(listed.error());
  JournalReport report;
  // Where the segment before left the sequence (kUnknownSequence: there is none or it could not be
  // read, so the next segment is not blamed for it).
  std::uint64_t previous_end = kUnknownSequence;
  for (const SegmentInfo& info : *listed) {
    Result<SegmentScan> scanned = scan_segment(info.path);
    const std::uint64_t end = scanned ? scanned->end_sequence : kUnknownSequence;
    SegmentReport segment = describe(info, std::move(scanned));
    if (segment.error) {
      report.damage.push_back(DamagedPlace{
          segment.path, 0, previous_end != kUnknownSequence ? previous_end : segment.first_sequence,
          segment.error->message});
    } else if (const auto broken = segment_break(previous_end, segment.first_sequence)) {
      report.damage.push_back(DamagedPlace{
          segment.path, broken->offset, broken->expected_sequence,
          fmt::format("the segment begins at sequence {}, but the previous segment ends before "
                      "sequence {}",
                      broken->first_sequence, broken->expected_sequence)});
    }
    for (const SegmentDamage& d : segment.damaged_records) {
      report.damage.push_back(DamagedPlace{segment.path, d.offset, d.expected_sequence, d.what});
    }
    add_to(report.totals, segment);
    report.segments.push_back(std::move(segment));
    previous_end = end;
  }
  return report;
}

}  // namespace shmbus::journal
