#include "journal/verify.hpp"

#include <utility>

#include <fmt/format.h>

#include "journal/continuity.hpp"
#include "journal/durable_mark.hpp"
#include "shmbus/journal_reader.hpp"

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

// Bytes after the last record of a segment that is not the newest, when the next segment
// continues from it: the writer finished that segment, so nothing there was ever in flight at a
// crash; zeros are preallocated space it did not cut, anything else is damage.
std::optional<DamagedPlace> judge_middle_tail(SegmentReport& segment, const SegmentScan& scan) {
  if (!segment.torn_tail) return std::nullopt;
  const std::uint64_t end = nonzero_end(segment.path, scan.last_record_end, scan.file_bytes);
  if (end == scan.last_record_end) return std::nullopt;
  segment.torn_tail.reset();
  return DamagedPlace{
      segment.path, scan.last_record_end, scan.end_sequence,
      fmt::format("{} bytes that are not zeros after the last record, and a later segment "
                  "continues the journal (a finished segment has no torn tail)",
                  end - scan.last_record_end)};
}

// The newest segment's end, against the durable mark: records up to `durable` were reported
// durable, so a segment ending before one of them is damage at its end, not a torn tail.
std::optional<DamagedPlace> judge_newest_end(SegmentReport& segment, const SegmentScan& scan,
                                             std::uint64_t durable) {
  if (scan.end_sequence > durable) return std::nullopt;
  const bool torn = segment.torn_tail.has_value();
  segment.torn_tail.reset();
  return DamagedPlace{
      segment.path, scan.last_record_end, scan.end_sequence,
      torn ? fmt::format("{} bytes after the last valid record hold no valid record, but records "
                         "up to sequence {} were reported durable ({}): damage, not a torn tail",
                         scan.file_bytes - scan.last_record_end, durable, kDurableMarkFileName)
           : fmt::format("the segment ends here, but records up to sequence {} were reported "
                         "durable ({})",
                         durable, kDurableMarkFileName)};
}

}  // namespace

Result<JournalReport> verify(const std::string& dir) {
  auto listed = list_segments(dir);
  if (!listed) return tl::unexpected(listed.error());
  JournalReport report;
  const DurableMarkRead mark = read_durable_mark(dir);
  report.durable_sequence = mark.durable_sequence;
  report.durable_mark_problem = mark.problem;
  std::vector<Result<SegmentScan>> scans;
  scans.reserve(listed->size());
  for (const SegmentInfo& info : *listed) scans.push_back(scan_segment(info.path));

  // Where the segment before left the sequence (kUnknownSequence: there is none or it could not be
  // read, so the next segment is not blamed for it).
  std::uint64_t previous_end = kUnknownSequence;
  for (std::size_t i = 0; i < listed->size(); ++i) {
    const SegmentInfo& info = (*listed)[i];
    const bool newest = i + 1 == listed->size();
    const std::optional<SegmentScan> scan =
        scans[i] ? std::optional<SegmentScan>(*scans[i]) : std::nullopt;
    const std::uint64_t end = scan ? scan->end_sequence : kUnknownSequence;
    SegmentReport segment = describe(info, std::move(scans[i]));
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
    if (scan) {
      std::optional<DamagedPlace> tail;
      if (!newest && !segment_break(end, (*listed)[i + 1].first_sequence)) {
        tail = judge_middle_tail(segment, *scan);
      } else if (newest && mark.durable_sequence) {
        tail = judge_newest_end(segment, *scan, *mark.durable_sequence);
      }
      if (tail) report.damage.push_back(std::move(*tail));
    }
    add_to(report.totals, segment);
    report.segments.push_back(std::move(segment));
    previous_end = end;
  }
  return report;
}

}  // namespace shmbus::journal
