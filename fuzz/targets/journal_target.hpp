// Fuzz target "journal": the input is one or two segment files and an index file of a journal
// directory, as a crash, a full disk or a hostile hand may leave them. Covers journal/
// (read_segment_header, probe_record, find_valid_record, scan_segment, verify, JournalReader's
// reads, seeks and skip_damage, and recover_journal, which cuts torn tails and rebuilds indexes,
// followed by verify and a read of what it left).
//
// Layout of an input: one byte of flags, then up to three parts separated by kPartSeparator: the
// first segment, its index file, a second segment. Each segment file is named after the first
// sequence its header declares (or 1 when it has no header), as the journaler names it. When the
// flags' low bit is set, the segment headers, every record header whose fields pass
// check_record_fields and whose payload lies within the file, and every index entry are sealed
// (given the checksum of what they hold), so that the fuzzer reaches the logic behind the checksums (sequence breaks,
// gaps, damage followed by valid records, index hints).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/targets/fuzz_support.hpp"
#include "journal/format.hpp"
#include "shmbus/journal_reader.hpp"
#include "journal/segment_files.hpp"
#include "journal/segment_scan.hpp"
#include "journal/verify.hpp"
#include "journal/writer_recovery.hpp"

namespace shmbus::fuzz {
namespace journal_target {

inline constexpr std::string_view kPartSeparator = "\n--SHMBUS-FUZZ-PART--\n";

inline std::vector<std::vector<std::byte>> split_parts(Input input) {
  std::vector<std::vector<std::byte>> parts(1);
  const std::string_view text(reinterpret_cast<const char*>(input.data()), input.size());
  std::size_t from = 0;
  while (parts.size() < 3) {
    const std::size_t at = text.find(kPartSeparator, from);
    if (at == std::string_view::npos) break;
    const auto piece = std::as_bytes(input.subspan(from, at - from));
    parts.back().assign(piece.begin(), piece.end());
    parts.emplace_back();
    from = at + kPartSeparator.size();
  }
  const auto rest = std::as_bytes(input.subspan(from));
  parts.back().assign(rest.begin(), rest.end());
  return parts;
}

// Gives the segment header and every record that can be walked to the checksum of its bytes.
inline void seal(std::vector<std::byte>& segment) {
  if (segment.size() >= sizeof(journal::SegmentHeader)) {
    journal::SegmentHeader header;
    std::memcpy(&header, segment.data(), sizeof header);
    header.header_crc = journal::mask_crc(
        journal::crc32c(&header, offsetof(journal::SegmentHeader, header_crc)));
    std::memcpy(segment.data(), &header, sizeof header);
  }
  std::uint64_t offset = journal::kSegmentHeaderSize;
  while (offset + journal::kRecordHeaderSize <= segment.size()) {
    journal::RecordHeader header;
    std::memcpy(&header, segment.data() + offset, sizeof header);
    if (journal::check_record_fields(header)) break;
    if (header.length > segment.size() - offset - journal::kRecordHeaderSize) break;
    journal::seal_record(segment.data() + offset, header.length);
    offset += journal::padded_record_size(header.length);
  }
}

// Gives every whole entry of an index file the checksum of its fields.
inline void seal_index(std::vector<std::byte>& index) {
  for (std::size_t at = sizeof(journal::IndexHeader); at + sizeof(journal::IndexEntry) <= index.size();
       at += sizeof(journal::IndexEntry)) {
    journal::IndexEntry entry;
    std::memcpy(&entry, index.data() + at, sizeof entry);
    journal::make_index_entry(entry, entry.sequence, entry.max_timestamp_ns, entry.offset);
    std::memcpy(index.data() + at, &entry, sizeof entry);
  }
}

inline std::uint64_t declared_first_sequence(const std::vector<std::byte>& segment) {
  journal::SegmentHeader header{};
  if (segment.size() < sizeof header) return 1;
  std::memcpy(&header, segment.data(), sizeof header);
  return header.first_sequence;
}

// Reads the whole journal as replay and dump do: every record, past every damaged place.
inline void read_all(journal::JournalReader& reader) {
  journal::JournalRecord record;
  for (int step = 0; step < 4096; ++step) {
    const journal::ReadStatus status = reader.next(record);
    if (status == journal::ReadStatus::record) {
      consume(record.payload);
      consume(record.key);
      continue;
    }
    if (status == journal::ReadStatus::end) break;
    consume(reader.last_error());
    if (!reader.skip_damage()) break;
  }
}

inline void read_journal(const std::string& dir, std::uint64_t some_sequence,
                         std::int64_t some_time) {
  if (auto report = journal::verify(dir)) {
    for (const journal::DamagedPlace& place : report->damage) consume(place.what);
  }
  auto reader = journal::JournalReader::open(dir);
  if (!reader) return;
  read_all(*reader);
  for (const std::uint64_t sequence : {std::uint64_t{0}, std::uint64_t{1}, some_sequence,
                                       some_sequence + 1, reader->first_sequence()}) {
    if (reader->seek_sequence(sequence)) read_all(*reader);
  }
  if (reader->seek_time(some_time)) read_all(*reader);
  if (reader->refresh()) read_all(*reader);
}

}  // namespace journal_target

inline int run_journal_input(Input input) {
  using namespace journal_target;
  if (input.empty()) return 0;
  const std::uint8_t flags = input[0];
  auto parts = split_parts(input.subspan(1));
  if ((flags & 1) != 0) {
    seal(parts[0]);
    if (parts.size() >= 2) seal_index(parts[1]);
    if (parts.size() == 3) seal(parts[2]);
  }
  const std::string dir = fresh_directory("journal");
  const std::uint64_t first = declared_first_sequence(parts[0]);
  const std::string segment_path = journal::join_path(dir, journal::segment_file_name(first));
  if (!write_file(segment_path, std::span<const std::byte>(parts[0]))) return 0;
  if (parts.size() >= 2 &&
      !write_file(journal::join_path(dir, journal::index_file_name(first)),
                  std::span<const std::byte>(parts[1]))) {
    return 0;
  }
  if (parts.size() == 3) {
    const std::uint64_t second = declared_first_sequence(parts[2]);
    if (second != first &&
        !write_file(journal::join_path(dir, journal::segment_file_name(second)),
                    std::span<const std::byte>(parts[2]))) {
      return 0;
    }
  }

  auto scan = journal::scan_segment(segment_path, [](const journal::RecordHeader&,
                                                     std::span<const std::byte> payload,
                                                     std::uint64_t) { consume(payload); });
  const std::uint64_t some_sequence = scan ? scan->next_sequence : first;
  const std::int64_t some_time = scan ? scan->first_time_ns + 1 : 0;
  read_journal(dir, some_sequence, some_time);

  journal::RecoveryReport report;
  auto recovered = journal::recover_journal(dir, false, 1 << 20, report);
  if (!recovered) consume(recovered.error().message);
  for (const std::string& damage : report.damage) consume(damage);
  // What recovery left must read back: the records it kept, its rebuilt index.
  read_journal(dir, some_sequence, some_time);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return 0;
}

}  // namespace shmbus::fuzz
