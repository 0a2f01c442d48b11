// shmbus journal info|verify|dump: what a journal directory holds, whether it is intact, and its
// records. info and verify scan every segment (journal/segment_scan.hpp); dump reads through
// JournalReader, as replay does.
#include <csignal>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "journal/reader.hpp"
#include "journal/segment_scan.hpp"
#include "tools/commands.hpp"
#include "tools/journal_commands.hpp"
#include "tools/line_output.hpp"

namespace shmbus::tools {
namespace {

using journal::SegmentInfo;
using journal::SegmentScan;

struct ScannedSegment {
  SegmentInfo info;
  Result<SegmentScan> scan;
};

// Lists the directory and scans each segment. Prints the error and returns nothing if the
// directory cannot be listed.
std::optional<std::vector<ScannedSegment>> scan_journal(const std::string& dir,
                                                        const char* command) {
  auto reader = journal::JournalReader::open(dir);
  if (!reader) {
    fmt::print(stderr, "shmbus journal {}: {}\n", command, reader.error().message);
    return std::nullopt;
  }
  std::vector<ScannedSegment> out;
  for (const SegmentInfo& info : reader->segments()) {
    out.push_back(ScannedSegment{info, journal::scan_segment(info.path)});
  }
  return out;
}

std::string file_name(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The last sequence a scanned segment holds, if it holds any record.
std::optional<std::uint64_t> last_sequence(const SegmentScan& s) {
  if (s.end_sequence <= s.header.first_sequence) return std::nullopt;
  return s.end_sequence - 1;
}

std::string time_range(const SegmentScan& s) {
  if (s.data_records == 0) return "no data records";
  return fmt::format("{} .. {}", iso8601_utc_ns(s.first_time_ns), iso8601_utc_ns(s.last_time_ns));
}

// --- info ---------------------------------------------------------------------------------------

struct Totals {
  std::uint64_t segments = 0, bytes = 0, data = 0, gaps = 0, lost = 0;
  std::optional<std::uint64_t> first, last;
};

Totals add_up(const std::vector<ScannedSegment>& segments) {
  Totals t;
  for (const auto& s : segments) {
    ++t.segments;
    t.bytes += s.info.file_bytes;
    if (!s.scan) continue;
    t.data += s.scan->data_records;
    t.gaps += s.scan->gap_records;
    t.lost += s.scan->lost_sequences;
    if (const auto last = last_sequence(*s.scan)) {
      if (!t.first) t.first = s.scan->header.first_sequence;
      t.last = *last;
    }
  }
  return t;
}

void print_info_json(const std::string& dir, const std::vector<ScannedSegment>& segments,
                     std::FILE* out) {
  nlohmann::ordered_json j;
  j["dir"] = dir;
  j["segments"] = nlohmann::ordered_json::array();
  for (const auto& s : segments) {
    nlohmann::ordered_json e;
    e["file"] = file_name(s.info.path);
    e["bytes"] = s.info.file_bytes;
    if (!s.scan) {
      e["error"] = s.scan.error().message;
    } else {
      const SegmentScan& sc = *s.scan;
      e["first_sequence"] = sc.header.first_sequence;
      const auto last = last_sequence(sc);
      e["last_sequence"] = last ? nlohmann::ordered_json(*last) : nlohmann::ordered_json();
      e["first_time_ns"] = sc.data_records ? nlohmann::ordered_json(sc.first_time_ns) : nullptr;
      e["last_time_ns"] = sc.data_records ? nlohmann::ordered_json(sc.last_time_ns) : nullptr;
      e["records"] = sc.data_records;
      e["gap_records"] = sc.gap_records;
      e["lost_sequences"] = sc.lost_sequences;
      e["torn_tail_bytes"] = sc.torn_tail ? sc.file_bytes - sc.last_record_end : 0;
      e["damage"] = sc.damage.size();
      e["channel"] = std::string(sc.header.channel);
      e["created_ns"] = sc.header.created_ns;
    }
    j["segments"].push_back(std::move(e));
  }
  const Totals t = add_up(segments);
  nlohmann::ordered_json tj;
  tj["segments"] = t.segments;
  tj["first_sequence"] = t.first ? nlohmann::ordered_json(*t.first) : nullptr;
  tj["last_sequence"] = t.last ? nlohmann::ordered_json(*t.last) : nullptr;
  tj["bytes"] = t.bytes;
  tj["records"] = t.data;
  tj["gap_records"] = t.gaps;
  tj["lost_sequences"] = t.lost;
  j["totals"] = std::move(tj);
  fmt::print(out, "{}\n", j.dump());
}

void print_info_text(const std::string& dir, const std::vector<ScannedSegment>& segments,
                     std::FILE* out) {
  const Totals t = add_up(segments);
  const std::string seqs = t.first ? fmt::format("sequences {}..{}", *t.first, *t.last)
                                   : std::string("no records");
  fmt::print(out, "journal {}: {} segment{}, {}, {} records, {} gap records ({} sequences lost), {}\n",
             dir, t.segments, t.segments == 1 ? "" : "s", seqs, t.data, t.gaps, t.lost,
             human_bytes(static_cast<double>(t.bytes)));
  for (const auto& s : segments) {
    const std::string name = file_name(s.info.path);
    if (!s.scan) {
      fmt::print(out, "  {}  unreadable: {}\n", name, s.scan.error().message);
      continue;
    }
    const SegmentScan& sc = *s.scan;
    const auto last = last_sequence(sc);
    std::string line = fmt::format(
        "  {}  {}  {}  {}  {} records  {} gaps ({} lost)", name,
        last ? fmt::format("seq {}..{}", sc.header.first_sequence, *last) : std::string("empty"),
        time_range(sc), human_bytes(static_cast<double>(s.info.file_bytes)), sc.data_records,
        sc.gap_records, sc.lost_sequences);
    if (sc.torn_tail) line += fmt::format("  torn tail {} bytes", sc.file_bytes - sc.last_record_end);
    if (!sc.damage.empty()) line += fmt::format("  DAMAGE at {} places", sc.damage.size());
    fmt::print(out, "{}\n", line);
  }
}

// --- verify -------------------------------------------------------------------------------------

struct Problem {
  std::string segment;
  std::uint64_t offset;
  std::uint64_t expected_sequence;
  std::string what;
};

struct TornTail {
  std::string segment;
  std::uint64_t offset;
  std::uint64_t bytes;
};

constexpr const char* kTornTailNote =
    "a torn tail: bytes after the last record that hold no valid record (the journaler's "
    "unfinished write, or a crash); not damage";

struct Verdict {
  std::vector<Problem> damage;
  std::vector<TornTail> torn;
};

Verdict judge(const std::vector<ScannedSegment>& segments) {
  Verdict v;
  // Where the previous segment left the sequence (0: unknown, e.g. it could not be read, so the
  // next segment is not blamed for it).
  std::uint64_t expected = 0;
  for (const ScannedSegment& s : segments) {
    const std::string& path = s.info.path;
    if (!s.scan) {
      v.damage.push_back(Problem{path, 0, expected != 0 ? expected : s.info.first_sequence,
                                 s.scan.error().message});
      expected = 0;
      continue;
    }
    const SegmentScan& sc = *s.scan;
    if (expected != 0 && sc.header.first_sequence != expected) {
      v.damage.push_back(Problem{
          path, journal::kSegmentHeaderSize, expected,
          fmt::format("the segment begins at sequence {}, but the previous segment ends before "
                      "sequence {}",
                      sc.header.first_sequence, expected)});
    }
    for (const auto& d : sc.damage) {
      v.damage.push_back(Problem{path, d.offset, d.expected_sequence, d.what});
    }
    if (sc.torn_tail) v.torn.push_back(TornTail{path, sc.last_record_end, sc.file_bytes - sc.last_record_end});
    expected = sc.end_sequence;
  }
  return v;
}

void print_verify_text(const std::vector<ScannedSegment>& segments, const Verdict& v,
                       std::FILE* out) {
  for (const auto& p : v.damage) {
    fmt::print(out, "DAMAGE {} offset {} expected sequence {}: {}\n", p.segment, p.offset,
               p.expected_sequence, p.what);
  }
  for (const auto& t : v.torn) {
    fmt::print(out, "torn tail {} offset {} ({} bytes): {}\n", t.segment, t.offset, t.bytes,
               kTornTailNote);
  }
  const Totals totals = add_up(segments);
  const std::string seqs = totals.first
                               ? fmt::format("sequences {}..{}", *totals.first, *totals.last)
                               : std::string("no records");
  if (v.damage.empty()) {
    fmt::print(out, "ok: {} segment{}, {}, every checksum and sequence verified, no damage\n",
               totals.segments, totals.segments == 1 ? "" : "s", seqs);
  } else {
    fmt::print(out, "DAMAGED: {} damaged place{} in {} segment{} ({})\n", v.damage.size(),
               v.damage.size() == 1 ? "" : "s", totals.segments, totals.segments == 1 ? "" : "s",
               seqs);
  }
}

void print_verify_json(const std::string& dir, const std::vector<ScannedSegment>& segments,
                       const Verdict& v, std::FILE* out) {
  const Totals totals = add_up(segments);
  nlohmann::ordered_json j;
  j["dir"] = dir;
  j["ok"] = v.damage.empty();
  j["segments"] = totals.segments;
  j["first_sequence"] = totals.first ? nlohmann::ordered_json(*totals.first) : nullptr;
  j["last_sequence"] = totals.last ? nlohmann::ordered_json(*totals.last) : nullptr;
  j["damage"] = nlohmann::ordered_json::array();
  for (const auto& p : v.damage) {
    j["damage"].push_back({{"segment", p.segment},
                           {"offset", p.offset},
                           {"expected_sequence", p.expected_sequence},
                           {"what", p.what}});
  }
  j["torn_tails"] = nlohmann::ordered_json::array();
  for (const auto& t : v.torn) {
    j["torn_tails"].push_back(
        {{"segment", t.segment}, {"offset", t.offset}, {"bytes", t.bytes}, {"damage", false},
         {"note", kTornTailNote}});
  }
  fmt::print(out, "{}\n", j.dump());
}

// --- dump ---------------------------------------------------------------------------------------

std::string data_line(const journal::JournalRecord& r, RecordFormat format) {
  return record_line(Message{r.sequence, r.timestamp_ns, r.payload, 0}, format);
}

}  // namespace

int run_journal_info(const JournalInfoOptions& o, std::FILE* out) {
  const auto segments = scan_journal(o.dir, "info");
  if (!segments) return kExitFailure;
  if (o.json) {
    print_info_json(o.dir, *segments, out);
  } else {
    print_info_text(o.dir, *segments, out);
  }
  return std::fflush(out) == 0 ? kExitOk : kExitFailure;
}

int run_journal_verify(const JournalVerifyOptions& o, std::FILE* out) {
  const auto segments = scan_journal(o.dir, "verify");
  if (!segments) return kExitFailure;
  const Verdict v = judge(*segments);
  if (o.json) {
    print_verify_json(o.dir, *segments, v, out);
  } else {
    print_verify_text(*segments, v, out);
  }
  std::fflush(out);
  return v.damage.empty() ? kExitOk : kExitFailure;
}

int run_journal_dump(const JournalDumpOptions& o, std::FILE* out) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed pipe is an EPIPE from fwrite: a normal end
  auto reader = journal::JournalReader::open(o.dir);
  if (!reader) {
    fmt::print(stderr, "shmbus journal dump: {}\n", reader.error().message);
    return kExitFailure;
  }
  if (o.from) {
    if (auto sought = reader->seek_sequence(*o.from); !sought) {
      fmt::print(stderr, "shmbus journal dump: {}\n", sought.error().message);
      return kExitFailure;
    }
  }
  LineOutput lines(out);
  std::uint64_t printed = 0;
  bool damaged = false;
  journal::JournalRecord r;
  try {
    while (!o.count || printed < *o.count) {
      const journal::ReadStatus st = reader->next(r);
      if (st == journal::ReadStatus::end) break;
      if (st == journal::ReadStatus::damaged) {
        damaged = true;
        fmt::print(stderr, "shmbus journal dump: damage: {}\n", reader->last_error());
        if (!reader->skip_damage()) break;
        continue;
      }
      const std::string line = r.type == journal::RecordType::gap
                                   ? gap_line(r.sequence, r.gap_count, r.timestamp_ns, o.format)
                                   : data_line(r, o.format);
      if (!lines.write(line)) break;
      ++printed;
    }
  } catch (const std::exception& e) {  // formatting allocates
    fmt::print(stderr, "shmbus journal dump: {}\n", e.what());
    return kExitFailure;
  }
  if (lines.error() == EPIPE) return kExitOk;
  if (lines.error() != 0) {
    fmt::print(stderr, "shmbus journal dump: writing output: {}\n", std::strerror(lines.error()));
    return kExitFailure;
  }
  return damaged ? kExitFailure : kExitOk;
}

void add_journal_command(CLI::App& app) {
  CLI::App* journal = app.add_subcommand("journal", "Inspect a channel's journal directory");
  journal->require_subcommand(1);

  auto info = std::make_shared<JournalInfoOptions>();
  CLI::App* info_cmd = journal->add_subcommand(
      "info", "Segments (file, sequences, time range, bytes, records, gaps) and totals");
  info_cmd->add_option("--dir", info->dir, "Journal directory")->required();
  info_cmd->add_flag("--json", info->json, "One JSON object instead of text");
  info_cmd->footer("Exit: 0 done; 1 the directory cannot be read; 2 bad arguments.");
  info_cmd->callback([info] {
    const int code = run_journal_info(*info, stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });

  auto verify = std::make_shared<JournalVerifyOptions>();
  CLI::App* verify_cmd = journal->add_subcommand(
      "verify", "Check every record's checksum and sequence, and continuity across segments");
  verify_cmd->add_option("--dir", verify->dir, "Journal directory")->required();
  verify_cmd->add_flag("--json", verify->json, "One JSON object instead of text");
  verify_cmd->footer(
      "Each damaged place is printed with its segment, byte offset and the sequence expected "
      "there. A torn tail (bytes after the last record that hold no valid record: the "
      "journaler's unfinished write, or a crash) is reported but is not damage.\n"
      "Exit: 0 no damage; 1 damage found or the directory cannot be read; 2 bad arguments.");
  verify_cmd->callback([verify] {
    const int code = run_journal_verify(*verify, stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });

  struct DumpState {
    JournalDumpOptions options;
    std::uint64_t from = 0, count = 0;
    std::string format = "text";
  };
  auto dump = std::make_shared<DumpState>();
  CLI::App* dump_cmd = journal->add_subcommand("dump", "Print a journal's records");
  dump_cmd->add_option("--dir", dump->options.dir, "Journal directory")->required();
  CLI::Option* from = dump_cmd->add_option("--from", dump->from,
                                           "First sequence (default: the oldest retained)")
                          ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{UINT64_MAX}));
  CLI::Option* count = dump_cmd->add_option("--count", dump->count,
                                            "Print at most N records (gap records included)")
                           ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{UINT64_MAX}));
  dump_cmd
      ->add_option("--format", dump->format,
                   "text (the default) or json: the lines of 'shmbus tail' (seq, time_ns, time, "
                   "size, lost_before, payload_hex), and for gap records "
                   "{\"type\":\"gap\",\"seq\":S,\"count\":N,\"time_ns\":T,\"time\":...}")
      ->transform(CLI::IsMember({"text", "json"}, CLI::ignore_case));
  dump_cmd->footer(
      "Damage is reported on stderr ('damage: ...' with segment, offset and expected sequence) "
      "and skipped.\nExit: 0 done; 1 damage found or an error; 2 bad arguments.");
  dump_cmd->callback([dump, from, count] {
    JournalDumpOptions o = dump->options;
    if (from->count() > 0) o.from = dump->from;
    if (count->count() > 0) o.count = dump->count;
    o.format = dump->format == "json" ? RecordFormat::json : RecordFormat::text;
    const int code = run_journal_dump(o, stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
