// shmbus journal info|verify|dump: what a journal directory holds, whether it is intact, and its
// records. info and verify print the report of journal::verify (journal/verify.hpp); dump reads
// through JournalReader, as replay does.
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "shmbus/journal_reader.hpp"
#include "journal/verify.hpp"
#include "tools/commands.hpp"
#include "tools/journal_commands.hpp"
#include "tools/line_output.hpp"
#include "tools/option_bounds.hpp"

namespace shmbus::tools {
namespace {

using journal::JournalReport;
using journal::JournalTotals;
using journal::SegmentReport;

// The report of the journal in `dir`, or nothing after printing why the directory cannot be read.
std::optional<JournalReport> verify_journal(const std::string& dir, const char* command) {
  auto report = journal::verify(dir);
  if (!report) {
    fmt::print(stderr, "shmbus journal {}: {}\n", command, report.error().message);
    return std::nullopt;
  }
  return std::move(*report);
}

std::string file_name(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string time_range(const SegmentReport& s) {
  if (!s.first_time_ns) return "no data records";
  return fmt::format("{} .. {}", iso8601_utc_ns(*s.first_time_ns), iso8601_utc_ns(*s.last_time_ns));
}

std::string sequence_range(const JournalTotals& t) {
  return t.first_sequence ? fmt::format("sequences {}..{}", *t.first_sequence, *t.last_sequence)
                          : std::string("no records");
}

const char* plural(std::uint64_t n) { return n == 1 ? "" : "s"; }

template <class T>
nlohmann::ordered_json or_null(const std::optional<T>& value) {
  return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json();
}

// --- info ---------------------------------------------------------------------------------------

void print_info_json(const std::string& dir, const JournalReport& report, std::FILE* out) {
  nlohmann::ordered_json j;
  j["dir"] = dir;
  j["segments"] = nlohmann::ordered_json::array();
  for (const SegmentReport& s : report.segments) {
    nlohmann::ordered_json e;
    e["file"] = file_name(s.path);
    e["bytes"] = s.file_bytes;
    if (s.error) {
      e["error"] = s.error->message;
    } else {
      e["first_sequence"] = s.first_sequence;
      e["last_sequence"] = or_null(s.last_sequence);
      e["first_time_ns"] = or_null(s.first_time_ns);
      e["last_time_ns"] = or_null(s.last_time_ns);
      e["records"] = s.data_records;
      e["gap_records"] = s.gap_records;
      e["lost_sequences"] = s.lost_sequences;
      e["torn_tail_bytes"] = s.torn_tail ? s.torn_tail->bytes : 0;
      e["damage"] = s.damaged_records.size();
      e["channel"] = s.channel;
      e["created_ns"] = s.created_ns;
    }
    j["segments"].push_back(std::move(e));
  }
  const JournalTotals& t = report.totals;
  nlohmann::ordered_json tj;
  tj["segments"] = t.segments;
  tj["first_sequence"] = or_null(t.first_sequence);
  tj["last_sequence"] = or_null(t.last_sequence);
  tj["bytes"] = t.bytes;
  tj["records"] = t.data_records;
  tj["gap_records"] = t.gap_records;
  tj["lost_sequences"] = t.lost_sequences;
  j["totals"] = std::move(tj);
  fmt::print(out, "{}\n", j.dump());
}

void print_info_text(const std::string& dir, const JournalReport& report, std::FILE* out) {
  const JournalTotals& t = report.totals;
  fmt::print(out, "journal {}: {} segment{}, {}, {} records, {} gap records ({} sequences lost), {}\n",
             dir, t.segments, plural(t.segments), sequence_range(t), t.data_records,
             t.gap_records, t.lost_sequences, human_bytes(static_cast<double>(t.bytes)));
  for (const SegmentReport& s : report.segments) {
    const std::string name = file_name(s.path);
    if (s.error) {
      fmt::print(out, "  {}  unreadable: {}\n", name, s.error->message);
      continue;
    }
    std::string line = fmt::format(
        "  {}  {}  {}  {}  {} records  {} gaps ({} lost)", name,
        s.last_sequence ? fmt::format("seq {}..{}", s.first_sequence, *s.last_sequence)
                        : std::string("empty"),
        time_range(s), human_bytes(static_cast<double>(s.file_bytes)), s.data_records,
        s.gap_records, s.lost_sequences);
    if (s.torn_tail) line += fmt::format("  torn tail {} bytes", s.torn_tail->bytes);
    if (!s.damaged_records.empty()) {
      line += fmt::format("  DAMAGE at {} places", s.damaged_records.size());
    }
    fmt::print(out, "{}\n", line);
  }
}

// --- verify -------------------------------------------------------------------------------------

constexpr const char* kTornTailNote =
    "a torn tail: bytes after the last record that hold no valid record (the journaler's "
    "unfinished write, or a crash); not damage";

void print_verify_text(const JournalReport& report, std::FILE* out) {
  for (const auto& p : report.damage) {
    fmt::print(out, "DAMAGE {} offset {} expected sequence {}: {}\n", p.segment, p.offset,
               p.expected_sequence, p.what);
  }
  for (const SegmentReport& s : report.segments) {
    if (!s.torn_tail) continue;
    fmt::print(out, "torn tail {} offset {} ({} bytes): {}\n", s.path, s.torn_tail->offset,
               s.torn_tail->bytes, kTornTailNote);
  }
  // Without the mark a damaged last record cannot be told from a torn tail: say why it is unused.
  if (report.durable_mark_problem) {
    fmt::print(out, "note: durable mark not used ({}); the newest segment's tail is judged without "
               "it\n",
               *report.durable_mark_problem);
  }
  const JournalTotals& t = report.totals;
  if (report.intact()) {
    fmt::print(out, "ok: {} segment{}, {}, every checksum and sequence verified, no damage\n",
               t.segments, plural(t.segments), sequence_range(t));
  } else {
    fmt::print(out, "DAMAGED: {} damaged place{} in {} segment{} ({})\n", report.damage.size(),
               plural(report.damage.size()), t.segments, plural(t.segments), sequence_range(t));
  }
}

void print_verify_json(const std::string& dir, const JournalReport& report, std::FILE* out) {
  const JournalTotals& t = report.totals;
  nlohmann::ordered_json j;
  j["dir"] = dir;
  j["ok"] = report.intact();
  j["segments"] = t.segments;
  j["first_sequence"] = or_null(t.first_sequence);
  j["last_sequence"] = or_null(t.last_sequence);
  j["damage"] = nlohmann::ordered_json::array();
  for (const auto& p : report.damage) {
    j["damage"].push_back({{"segment", p.segment},
                           {"offset", p.offset},
                           {"expected_sequence", p.expected_sequence},
                           {"what", p.what}});
  }
  j["torn_tails"] = nlohmann::ordered_json::array();
  for (const SegmentReport& s : report.segments) {
    if (!s.torn_tail) continue;
    j["torn_tails"].push_back({{"segment", s.path},
                               {"offset", s.torn_tail->offset},
                               {"bytes", s.torn_tail->bytes},
                               {"damage", false},
                               {"note", kTornTailNote}});
  }
  fmt::print(out, "{}\n", j.dump());
}

// --- dump ---------------------------------------------------------------------------------------

std::string data_line(const journal::JournalRecord& r, RecordFormat format) {
  return record_line(
      Message{r.sequence, r.timestamp_ns, r.payload, 0, r.key, r.message_type}, format);
}

}  // namespace

int run_journal_info(const JournalInfoOptions& o, std::FILE* out) {
  const auto report = verify_journal(o.dir, "info");
  if (!report) return kExitFailure;
  if (o.json) {
    print_info_json(o.dir, *report, out);
  } else {
    print_info_text(o.dir, *report, out);
  }
  return std::fflush(out) == 0 ? kExitOk : kExitFailure;
}

int run_journal_verify(const JournalVerifyOptions& o, std::FILE* out) {
  const auto report = verify_journal(o.dir, "verify");
  if (!report) return kExitFailure;
  if (o.json) {
    print_verify_json(o.dir, *report, out);
  } else {
    print_verify_text(*report, out);
  }
  std::fflush(out);
  return report->intact() ? kExitOk : kExitFailure;
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
                          ->transform(whole_number_in(1, kMaxU64));
  CLI::Option* count = dump_cmd->add_option("--count", dump->count,
                                            "Print at most N records (gap records included)")
                           ->transform(whole_number_in(1, kMaxU64));
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
