#include "shmbus/journal_reader.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "journal/continuity.hpp"
#include "journal/record_reading.hpp"

namespace shmbus::journal {
namespace {

// Records examined at a segment's start to find its first data timestamp (gap records come first
// only after a loss, so a handful is the norm; the cap bounds a segment of nothing but gaps).
constexpr int kFirstDataProbeLimit = 1024;
// An index larger than this is not a journaler's (2 KiB per MiB of segment): ignored.
constexpr std::uint64_t kMaxIndexBytes = 64 << 20;

// The valid index entries of a segment, in increasing sequence and offset order. A missing,
// foreign or damaged index yields fewer entries (or none): the index is only a hint.
std::vector<IndexEntry> load_index(const std::string& dir, std::uint64_t first_sequence,
                                   std::uint64_t segment_bytes) {
  std::vector<IndexEntry> entries;
  const std::string path = dir + "/" + index_file_name(first_sequence);
  detail::FileWindow file(64 << 10);
  if (!file.open(path) || file.limit() < sizeof(IndexHeader) || file.limit() > kMaxIndexBytes) {
    return entries;
  }
  auto bytes = file.view(0, static_cast<std::size_t>(file.limit()));
  if (!bytes || bytes->size() < sizeof(IndexHeader)) return entries;
  IndexHeader header;
  std::memcpy(&header, bytes->data(), sizeof header);
  if (check_index_header(header) || header.first_sequence != first_sequence) return entries;
  const std::size_t count = (bytes->size() - sizeof(IndexHeader)) / sizeof(IndexEntry);
  for (std::size_t i = 0; i < count; ++i) {
    IndexEntry e;
    std::memcpy(&e, bytes->data() + sizeof(IndexHeader) + i * sizeof(IndexEntry), sizeof e);
    if (!index_entry_valid(e) || e.sequence < first_sequence || e.offset < kSegmentHeaderSize ||
        e.offset >= segment_bytes || e.offset % kRecordAlignment != 0) {
      continue;
    }
    if (!entries.empty() && (e.sequence <= entries.back().sequence ||
                             e.offset <= entries.back().offset ||
                             e.max_timestamp_ns < entries.back().max_timestamp_ns)) {
      continue;  // out of order: not written by a journaler, so not trusted
    }
    entries.push_back(e);
  }
  return entries;
}

}  // namespace

Result<std::vector<SegmentInfo>> list_segments(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return tl::unexpected(detail::file_error("cannot open journal directory", dir, errno));
  std::vector<SegmentInfo> out;
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    const auto first = parse_segment_file_name(e->d_name);
    if (!first) continue;
    struct stat st {};
    if (::fstatat(::dirfd(d), e->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode)) continue;  // removed meanwhile
    out.push_back(SegmentInfo{dir + "/" + e->d_name, *first, static_cast<std::uint64_t>(st.st_size)});
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return tl::unexpected(detail::file_error("cannot list journal directory", dir, err));
  std::sort(out.begin(), out.end(), [](const SegmentInfo& a, const SegmentInfo& b) {
    return a.first_sequence < b.first_sequence;
  });
  return out;
}

struct JournalReader::State {
  std::string dir;
  std::vector<SegmentInfo> segments;

  // The position: segment `seg`, at `offset`, where a record with sequence `expected` is due.
  // offset 0: at the segment's start, its header not yet read; expected kUnknownSequence:
  // whatever the segment begins with (after open or a seek: nothing before it was read).
  std::size_t seg = 0;
  std::uint64_t offset = 0;
  std::uint64_t expected = kUnknownSequence;
  detail::FileWindow file;  // open on segments[seg] once its header was read
  std::uint64_t peeked_size = 0;  // bytes of the record peek() returned last
  std::uint64_t peeked_next = 0;  // and the sequence after it

  // Set by refresh() when retention removed the segment the reader was in.
  std::string removed_segment;

  // The newest segment's invalid tail at (file, offset, limit) was searched and holds nothing
  // valid: the search is not repeated on every next() at the end.
  std::string torn_path;
  std::uint64_t torn_offset = 0, torn_limit = 0;

  std::string error;

  void reset_position(std::size_t segment) {
    file.close();
    seg = segment;
    offset = 0;
    expected = kUnknownSequence;
    removed_segment.clear();
    torn_path.clear();
  }

  bool newest() const { return seg + 1 == segments.size(); }

  ReadStatus damaged(std::string message) {
    error = std::move(message);
    return ReadStatus::damaged;
  }

  // Opens segments[seg] and reads its header, checking that it continues the sequence. On
  // failure returns the status to report, with the position unchanged.
  std::optional<ReadStatus> enter_segment() {
    const SegmentInfo& s = segments[seg];
    if (const auto broken = segment_break(expected, s.first_sequence)) {
      if (!removed_segment.empty()) {
        return damaged(fmt::format(
            "journal segment '{}' was removed (retention) while the reader was in it, expecting "
            "sequence {}; the next retained segment '{}' begins at sequence {}: sequences {}..{} "
            "are gone (seek to continue)",
            removed_segment, broken->expected_sequence, s.path, broken->first_sequence,
            broken->expected_sequence, broken->first_sequence - 1));
      }
      const std::string before =
          seg > 0 ? fmt::format(" after segment '{}' ended at offset {}", segments[seg - 1].path,
                                segments[seg - 1].file_bytes)
                  : std::string();
      return damaged(fmt::format(
          "journal segment '{}' begins at sequence {}, but sequence {} was expected{} (offset {})",
          s.path, broken->first_sequence, broken->expected_sequence, before, broken->offset));
    }
    // The journaler creates a segment and then writes its header page: not there yet is the end.
    if (newest() && s.file_bytes < kSegmentHeaderSize) return ReadStatus::end;
    if (auto opened = file.open(s.path); !opened) return damaged(opened.error().message);
    file.set_limit(s.file_bytes);
    auto header = detail::read_segment_header(file);
    if (!header) {
      file.close();
      return damaged(fmt::format("{} (offset 0, expected sequence {})", header.error().message,
                                 expected != kUnknownSequence ? expected : s.first_sequence));
    }
    offset = kSegmentHeaderSize;
    expected = header->first_sequence;
    removed_segment.clear();
    return std::nullopt;
  }

  // Reads the record at the position without moving past it.
  ReadStatus peek(JournalRecord& out) {
    for (;;) {
      if (seg >= segments.size()) {
        if (!removed_segment.empty()) {
          return damaged(fmt::format(
              "journal segment '{}' was removed (retention) while the reader was in it, "
              "expecting sequence {}, and no later segment exists (seek to continue)",
              removed_segment, expected));
        }
        return ReadStatus::end;
      }
      if (offset == 0) {
        if (auto status = enter_segment()) return *status;
      }
      auto probe = detail::probe_record(file, offset);
      if (!probe) return damaged(probe.error().message);
      const detail::Probe& p = *probe;
      const SegmentInfo& s = segments[seg];

      if (p.kind == detail::Probe::record) {
        if (p.header.sequence != expected) {
          return damaged(fmt::format(
              "journal segment '{}': offset {}: record has sequence {} (expected sequence {})",
              s.path, offset, p.header.sequence, expected));
        }
        const bool gap = p.header.type == static_cast<std::uint16_t>(RecordType::gap);
        out.type = gap ? RecordType::gap : RecordType::data;
        out.sequence = p.header.sequence;
        out.timestamp_ns = p.header.timestamp_ns;
        out.payload = gap ? std::span<const std::byte>{} : p.payload;
        out.key = {};
        out.message_type = 0;
        if ((p.header.flags & kRecordFlagTagged) != 0) {
          // probe_record checked the tag (check_record): it splits.
          if (const auto tagged = split_tagged(p.payload)) {
            out.key = tagged->key;
            out.message_type = tagged->message_type;
            out.payload = tagged->payload;
          }
        }
        out.gap_count = gap ? p.gap_count() : 0;
        out.offset = offset;
        out.segment = seg;
        peeked_size = p.size;
        peeked_next = p.next_sequence();
        return ReadStatus::record;
      }

      if (p.kind == detail::Probe::end) {
        if (newest()) return ReadStatus::end;
        file.close();
        ++seg;
        offset = 0;  // enter_segment checks that the next segment continues at `expected`
        continue;
      }

      // An invalid record: damage if valid records follow it in this segment.
      const bool known_torn =
          torn_path == s.path && torn_offset == offset && torn_limit == file.limit();
      if (!known_torn) {
        auto found = detail::find_valid_record(file, offset + kRecordAlignment, expected);
        if (!found) return damaged(found.error().message);
        if (*found) {
          return damaged(fmt::format(
              "journal segment '{}': offset {}: {} (expected sequence {}; a valid record with "
              "sequence {} follows at offset {})",
              s.path, offset, p.why, expected, (*found)->header.sequence, (*found)->offset));
        }
        torn_path = s.path;
        torn_offset = offset;
        torn_limit = file.limit();
      }
      // A torn tail. In the newest segment it is the journaler's unfinished write: the end. In an
      // older one it lost nothing only if the next segment continues at the expected sequence.
      if (newest()) return ReadStatus::end;
      const SegmentInfo& next = segments[seg + 1];
      if (segment_break(expected, next.first_sequence)) {
        return damaged(fmt::format(
            "journal segment '{}': offset {}: {} at the end of the segment (expected sequence {}), "
            "and the next segment '{}' begins at sequence {}",
            s.path, offset, p.why, expected, next.path, next.first_sequence));
      }
      file.close();
      ++seg;
      offset = 0;
    }
  }

  // Moves past the damage at the position to the next valid record whose sequence is at most
  // `limit` (with a limit: only within the segment, as a seek needs). Returns whether it moved.
  bool skip_damage(std::uint64_t limit) {
    if (seg >= segments.size()) return false;
    const bool anywhere = limit == UINT64_MAX;
    if (offset == 0) {  // the segment does not continue the sequence, or its header is bad
      if (!anywhere) return false;
      if (segment_break(expected, segments[seg].first_sequence)) {
        expected = kUnknownSequence;  // accept the sequence it begins at
      } else {
        ++seg;
        expected = kUnknownSequence;
      }
      removed_segment.clear();
      return true;
    }
    auto probe = detail::probe_record(file, offset);
    if (!probe || probe->kind == detail::Probe::end) return false;
    if (probe->kind == detail::Probe::record) {
      const std::uint64_t s = probe->header.sequence;
      if (s == expected || s > limit) return false;
      if (s < expected) {
        offset += probe->size;  // a stale record: drop it
      } else {
        expected = s;  // sequences expected..s-1 are missing
      }
      return true;
    }
    auto found = detail::find_valid_record(file, offset + kRecordAlignment, expected);
    if (!found) return false;
    if (!*found) {  // a torn tail of an older segment whose successor does not continue it
      if (!anywhere || newest()) return false;
      file.close();
      ++seg;
      offset = 0;
      expected = kUnknownSequence;
      return true;
    }
    if ((*found)->header.sequence > limit) return false;
    offset = (*found)->offset;
    expected = (*found)->header.sequence;
    return true;
  }

  void advance() {
    offset += peeked_size;
    expected = peeked_next;
  }

  // Moves to the start of segment i, then (through its index) to the latest indexed record that
  // `before` accepts and that really is where the index says. Stays at the segment start if no
  // entry qualifies or the segment cannot be entered (next() will say why).
  template <class Accept>
  void seek_in_segment(std::size_t i, Accept&& before) {
    reset_position(i);
    if (enter_segment()) {
      offset = 0;
      expected = kUnknownSequence;
      return;
    }
    const auto entries = load_index(dir, segments[i].first_sequence, file.limit());
    // load_index keeps sequences and max timestamps increasing, so `before` holds for a prefix:
    // bisect for its end, then check entries from there back (a damaged record at an entry only
    // makes the scan start earlier).
    const auto last = std::partition_point(entries.begin(), entries.end(), before);
    for (auto e = std::make_reverse_iterator(last); e != entries.rend(); ++e) {
      auto probe = detail::probe_record(file, e->offset);
      if (probe && probe->kind == detail::Probe::record && probe->header.sequence == e->sequence) {
        offset = e->offset;
        expected = e->sequence;
        return;
      }
    }
  }

  // The timestamp of segment i's first data record, if it has one near its start.
  std::optional<std::int64_t> first_data_time(std::size_t i) {
    detail::FileWindow f(64 << 10);
    if (!f.open(segments[i].path)) return std::nullopt;
    f.set_limit(segments[i].file_bytes);
    if (!detail::read_segment_header(f)) return std::nullopt;
    std::uint64_t at = kSegmentHeaderSize;
    for (int n = 0; n < kFirstDataProbeLimit; ++n) {
      auto p = detail::probe_record(f, at);
      if (!p || p->kind != detail::Probe::record) return std::nullopt;
      if (p->header.type == static_cast<std::uint16_t>(RecordType::data)) {
        return p->header.timestamp_ns;
      }
      at += p->size;
    }
    return std::nullopt;
  }
};

JournalReader::JournalReader() : state_(std::make_unique<State>()) {}
JournalReader::JournalReader(JournalReader&&) noexcept = default;
JournalReader& JournalReader::operator=(JournalReader&&) noexcept = default;
JournalReader::~JournalReader() = default;

Result<JournalReader> JournalReader::open(const std::string& dir) {
  auto segments = list_segments(dir);
  if (!segments) return tl::unexpected(segments.error());
  JournalReader reader;
  reader.state_->dir = dir;
  reader.state_->segments = std::move(*segments);
  return reader;
}

const std::vector<SegmentInfo>& JournalReader::segments() const noexcept {
  return state_->segments;
}

std::uint64_t JournalReader::first_sequence() const noexcept {
  return state_->segments.empty() ? 0 : state_->segments.front().first_sequence;
}

const std::string& JournalReader::last_error() const noexcept { return state_->error; }

bool JournalReader::skip_damage() { return state_->skip_damage(UINT64_MAX); }

ReadStatus JournalReader::next(JournalRecord& out) {
  const ReadStatus status = state_->peek(out);
  if (status == ReadStatus::record) state_->advance();
  return status;
}

Result<void> JournalReader::seek_sequence(std::uint64_t sequence) {
  State& s = *state_;
  s.reset_position(0);
  if (s.segments.empty() || sequence <= s.segments.front().first_sequence) return {};
  // The last segment that begins at or before `sequence`.
  const auto it = std::upper_bound(
      s.segments.begin(), s.segments.end(), sequence,
      [](std::uint64_t v, const SegmentInfo& info) { return v < info.first_sequence; });
  const auto i = static_cast<std::size_t>(it - s.segments.begin()) - 1;
  s.seek_in_segment(i, [sequence](const IndexEntry& e) { return e.sequence <= sequence; });
  // A short forward scan to the record holding `sequence`, or to wherever reading stops.
  JournalRecord r;
  for (;;) {
    const ReadStatus st = s.peek(r);
    if (st == ReadStatus::record && r.next_sequence() <= sequence) {
      s.advance();
    } else if (st != ReadStatus::damaged || !s.skip_damage(sequence)) {
      return {};
    }
  }
}

Result<void> JournalReader::seek_time(std::int64_t time_ns) {
  State& s = *state_;
  s.reset_position(0);
  if (s.segments.empty()) return {};
  // Bisect for the last segment whose first data record is older than time_ns. A segment whose
  // first data time cannot be read counts as not older: starting the scan earlier is never wrong.
  std::size_t lo = 0, hi = s.segments.size();
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    const auto t = s.first_data_time(mid);
    if (t && *t < time_ns) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo > 0) {
    // Start at the last indexed record whose running maximum is still older than time_ns: every
    // record up to it is older, and the first one that is not lies within one index interval.
    s.seek_in_segment(lo - 1, [time_ns](const IndexEntry& e) { return e.max_timestamp_ns < time_ns; });
  }
  JournalRecord r;
  while (s.peek(r) == ReadStatus::record &&
         (r.type == RecordType::gap || r.timestamp_ns < time_ns)) {
    s.advance();
  }
  return {};
}

Result<void> JournalReader::refresh() {
  State& s = *state_;
  auto listed = list_segments(s.dir);
  if (!listed) return tl::unexpected(listed.error());
  const bool in_segment = s.seg < s.segments.size();
  const std::uint64_t current = in_segment ? s.segments[s.seg].first_sequence : 0;
  const std::string current_path = in_segment ? s.segments[s.seg].path : std::string();
  s.segments = std::move(*listed);
  s.torn_path.clear();
  if (!in_segment) {
    // Past the end only when the journal was empty (or the reader's segment was removed): start
    // at whatever segment now follows.
    if (s.removed_segment.empty()) s.seg = 0;
    return {};
  }
  const auto it = std::lower_bound(
      s.segments.begin(), s.segments.end(), current,
      [](const SegmentInfo& info, std::uint64_t v) { return info.first_sequence < v; });
  s.seg = static_cast<std::size_t>(it - s.segments.begin());
  if (it != s.segments.end() && it->first_sequence == current) {
    if (s.file.is_open()) {
      s.file.set_limit(it->file_bytes);
      s.file.invalidate();  // the journaler may have rewritten its tail block in place
    }
    return {};
  }
  // Retention removed the reader's segment. next() moves on if the next retained segment
  // continues at the expected sequence (nothing was lost), else reports damaged, naming it.
  s.file.close();
  if (s.expected == kUnknownSequence) s.expected = current;
  s.offset = 0;
  s.removed_segment = current_path;
  return {};
}

}  // namespace shmbus::journal
