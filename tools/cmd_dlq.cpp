// shmbus dlq ls|show|replay: the dead letters of a channel's consumer groups (dlq_commands.hpp).
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/layout.hpp"
#include "ipc/channel_view.hpp"
#include "shmbus/dead_letter.hpp"
#include "tools/commands.hpp"
#include "tools/dlq_commands.hpp"
#include "tools/dlq_format.hpp"
#include "tools/dlq_source.hpp"
#include "tools/line_output.hpp"
#include "tools/option_bounds.hpp"
#include "tools/record_format.hpp"
#include "tools/record_format_option.hpp"
#include "tools/truncation.hpp"

namespace shmbus::tools {
namespace {

bool dlq_contains(const std::vector<std::uint64_t>& values, std::uint64_t v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

// Whether a record could be chosen before it is decoded (only its dead-letter sequence known).
bool may_choose(const DlqSelection& s, std::uint64_t sequence) {
  return s.all || !s.originals.empty() || dlq_contains(s.sequences, sequence);
}
bool chooses(const DlqSelection& s, std::uint64_t sequence, const DeadLetter& letter) {
  return s.all || dlq_contains(s.sequences, sequence) ||
         dlq_contains(s.originals, letter.original_sequence);
}
// Chosen by dead-letter sequence alone: nothing past the largest one asked for can be chosen.
bool past_choice(const DlqSelection& s, std::uint64_t sequence) {
  return !s.all && s.originals.empty() && !s.sequences.empty() &&
         sequence > *std::max_element(s.sequences.begin(), s.sequences.end());
}

// Why the dead-letter channel `dlq` cannot be read, for an operator.
std::string dlq_open_error(const std::string& dlq, const Error& error) {
  if (error.code != ErrorCode::not_found) return error.message;
  return fmt::format("the dead-letter channel '{}' does not exist (no dead letter was ever "
                     "published, or --dlq names another channel)",
                     dlq);
}

// How a read of the dead letters went.
struct DlqWalk {
  bool read = false;      // the dead-letter channel was read (else the error was said)
  bool problems = false;  // an error was said on stderr: the exit code is 1
  std::vector<std::uint64_t> garbage;  // sequences of records that are no dead letter
  int code() const { return problems ? kExitFailure : kExitOk; }
};

// Reads the dead letters of `where`, handing each chosen one to on_letter (false: stop). A record
// that is not a dead letter is reported on stderr with its sequence, added to walk.garbage and
// skipped: a problem when it was chosen outright (all, or by its sequence), else a warning (it
// might have been one of an --original's). Other problems: the channel cannot be read, the
// journal is damaged.
void for_each_dead_letter(std::string_view command, const DlqWhere& where,
                          const DlqSelection& select, DlqWalk& walk,
                          const std::function<bool(const DlqPlace&, const DeadLetter&)>& on_letter) {
  const std::string dlq = where.dlq_name();
  bool& problems = walk.problems;
  std::vector<std::uint64_t>& garbage = walk.garbage;
  auto summary = read_dlq_records(
      DlqSourceOptions{dlq, where.journal_dir}, [&](const DlqRecord& r) {
        if (past_choice(select, r.sequence)) return false;
        if (!may_choose(select, r.sequence)) return true;
        auto letter = decode(r.bytes);
        if (!letter) {
          const bool chosen = select.all || dlq_contains(select.sequences, r.sequence);
          problems = problems || chosen;
          garbage.push_back(r.sequence);
          fmt::print(stderr, "shmbus dlq {}: {}channel '{}' seq={} (in its {}): {} (skipped)\n",
                     command, chosen ? "" : "warning: ", dlq, r.sequence,
                     r.from_journal ? "journal" : "ring", letter.error().message);
          return true;
        }
        if (!chooses(select, r.sequence, *letter)) return true;
        return on_letter(DlqPlace{r.sequence, r.from_journal}, *letter);
      });
  if (!summary) {
    fmt::print(stderr, "shmbus dlq {}: {}\n", command, dlq_open_error(dlq, summary.error()));
    walk.problems = true;
    return;
  }
  walk.read = true;
  for (const std::string& warning : summary->warnings) {
    fmt::print(stderr, "shmbus dlq {}: warning: {}\n", command, warning);
  }
  if (summary->damaged) problems = true;
}

// Whether the dead-letter channel exists and can be read; if not, says why.
bool dlq_exists(std::string_view command, const DlqWhere& where) {
  const detail::MappingGuard guard;
  const std::string dlq = where.dlq_name();
  auto view = read_guarded([&] { return detail::ChannelView::open(dlq); });
  if (view) return true;
  fmt::print(stderr, "shmbus dlq {}: {}\n", command, dlq_open_error(dlq, view.error()));
  return false;
}

// The dead letters asked for by sequence that were not found, each said on stderr.
// (Those found to be no dead letter were reported already.)
bool report_missing(std::string_view command, const DlqWhere& where, const DlqSelection& select,
                    const std::vector<std::uint64_t>& found_sequences,
                    const std::vector<std::uint64_t>& found_originals,
                    const std::vector<std::uint64_t>& garbage) {
  bool missing = false;
  for (std::uint64_t s : select.sequences) {
    if (dlq_contains(found_sequences, s)) continue;
    missing = true;
    if (dlq_contains(garbage, s)) continue;
    fmt::print(stderr, "shmbus dlq {}: channel '{}' holds no dead letter seq={}\n", command,
               where.dlq_name(), s);
  }
  for (std::uint64_t s : select.originals) {
    if (dlq_contains(found_originals, s)) continue;
    missing = true;
    fmt::print(stderr, "shmbus dlq {}: channel '{}' holds no dead letter of original seq={}\n",
               command, where.dlq_name(), s);
  }
  return missing;
}

// What a write error ends with: EPIPE (the reader went away) is a normal end.
int output_outcome(std::string_view command, int error, int code) {
  if (error == 0 || error == EPIPE) return code;
  fmt::print(stderr, "shmbus dlq {}: writing output: {}\n", command, std::strerror(error));
  return kExitFailure;
}

// Runs a command body; run functions never throw (formatting allocates).
int guarded(std::string_view command, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    fmt::print(stderr, "shmbus dlq {}: {}\n", command, e.what());
    return kExitFailure;
  }
}

}  // namespace

std::string DlqWhere::dlq_name() const {
  return dlq.empty() ? dead_letter_channel(channel) : dlq;
}

int run_dlq_ls(const DlqLsOptions& o, std::FILE* out) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed pipe is an EPIPE from fwrite
  return guarded("ls", [&] {
    LineOutput lines(out, /*flush_each_write=*/false);
    DlqSelection all;
    all.all = true;
    DlqWalk walk;
    for_each_dead_letter("ls", o.where, all, walk, [&](const DlqPlace& p, const DeadLetter& d) {
      return lines.write(dlq_line(p, d, o.json));
    });
    lines.flush();
    return output_outcome("ls", lines.error(), walk.code());
  });
}

int run_dlq_show(const DlqShowOptions& o, std::FILE* out) {
  std::signal(SIGPIPE, SIG_IGN);
  if (const auto problem = binary_to_terminal_problem(o.format, out)) {
    fmt::print(stderr, "shmbus dlq show: {}\n", *problem);
    return kExitUsage;
  }
  return guarded("show", [&] {
    LineOutput text(out, /*flush_each_write=*/false);
    RecordWriter records(out, o.format, /*flush_each=*/false);
    std::vector<std::uint64_t> found, found_originals;
    const std::string dlq = o.where.dlq_name();
    DlqWalk walk;
    for_each_dead_letter("show", o.where, o.select, walk, [&](const DlqPlace& p,
                                                              const DeadLetter& d) {
      found.push_back(p.sequence);
      found_originals.push_back(d.original_sequence);
      switch (o.format) {
        case RecordFormat::text:
          return text.write_bytes(dlq_show_text(dlq, p, d));
        case RecordFormat::json:
          return text.write(dlq_line(p, d, /*json=*/true, /*with_payload=*/true));
        case RecordFormat::raw:
        case RecordFormat::payload:
          // The original record, as tail writes one: pub --format raw republishes it.
          return records.data(Message{d.original_sequence, d.original_timestamp_ns, d.payload, 0});
      }
      return true;
    });
    int code = walk.code();
    if (walk.read && report_missing("show", o.where, o.select, found, found_originals,
                                    walk.garbage)) {
      code = kExitFailure;
    }
    text.flush();
    records.flush();
    return output_outcome("show", text.error() != 0 ? text.error() : records.error(), code);
  });
}

namespace {

// Republishes dead letters into one channel, one at a time, and says what became of each.
class DlqRepublisher {
 public:
  DlqRepublisher(const DlqReplayOptions& o, std::FILE* out)
      : o_(o), target_(o.to_channel.empty() ? o.where.channel : o.to_channel), lines_(out) {}

  // Opens the target channel (as it exists, or creates it with the defaults); not for --dry-run.
  bool open() {
    auto pub = Publisher::open(target_);
    if (!pub) {
      fmt::print(stderr, "shmbus dlq replay: {}\n", pub.error().message);
      return false;
    }
    pub_.emplace(std::move(*pub));
    return true;
  }

  // False: stop (a publish timed out, or the output cannot be written).
  bool republish(const DlqPlace& p, const DeadLetter& d) {
    found_.push_back(p.sequence);
    found_originals_.push_back(d.original_sequence);
    if (!can_republish(p, d)) {
      failed_ = true;
      return true;  // the next letters do not depend on this one
    }
    std::optional<std::uint64_t> new_sequence;
    if (pub_) {
      // The record goes back with the key and message type it had (none: an ordinary record),
      // so a keyed group orders it with its key again and a type filter still sees it.
      Claim claim;
      PublishStatus st = pub_->claim(static_cast<std::uint32_t>(d.payload.size()), claim,
                                     RecordTag{d.key, d.message_type},
                                     std::chrono::milliseconds(o_.timeout_ms));
      if (st == PublishStatus::ok) {
        if (!d.payload.empty()) std::memcpy(claim.data(), d.payload.data(), d.payload.size());
        st = pub_->commit(claim);
      }
      if (st != PublishStatus::ok) {
        failed_ = true;
        fmt::print(stderr,
                   "shmbus dlq replay: channel '{}': republishing dead letter seq={} failed: {}{}; "
                   "it and the dead letters after it were not republished\n",
                   target_, p.sequence, to_string(st),
                   st == PublishStatus::timed_out
                       ? fmt::format(" after {} ms (a block subscriber is not keeping up)",
                                     o_.timeout_ms)
                       : std::string());
        return false;
      }
      new_sequence = claim.sequence();
      ++published_;
    }
    return lines_.write(line(p, d, new_sequence));  // flushed: a script sees each at once
  }

  int finish(const DlqWalk& walk) {
    int code = walk.code();
    if (walk.read && report_missing("replay", o_.where, o_.select, found_, found_originals_,
                                    walk.garbage)) {
      code = kExitFailure;
    }
    if (failed_) code = kExitFailure;
    if (!o_.dry_run) {
      fmt::print(stderr, "shmbus dlq replay: republished {} dead letters to channel '{}'\n",
                 published_, target_);
    }
    return output_outcome("replay", lines_.error(), code);
  }

 private:
  bool can_republish(const DlqPlace& p, const DeadLetter& d) {
    if (d.reason_code == DeadLetterReason::unreadable) {
      fmt::print(stderr,
                 "shmbus dlq replay: dead letter seq={} (original seq={}) was unreadable: it has "
                 "no payload to republish (skipped)\n",
                 p.sequence, d.original_sequence);
      return false;
    }
    // Without --to the letters go back where they came from: one of another channel (a shared
    // --dlq) is not sent to this one by mistake.
    if (o_.to_channel.empty() && d.channel != o_.where.channel) {
      fmt::print(stderr,
                 "shmbus dlq replay: dead letter seq={} came from channel '{}', not '{}' "
                 "(skipped; --to CHANNEL sends it there anyway)\n",
                 p.sequence, d.channel, o_.where.channel);
      return false;
    }
    // A key or message type takes room in the record too (core/layout.hpp's tag_size).
    const bool tagged = !d.key.empty() || d.message_type != 0;
    const std::uint64_t record_bytes =
        d.payload.size() +
        (tagged ? core::tag_size(static_cast<std::uint32_t>(d.key.size())) : 0u);
    if (pub_ && record_bytes > pub_->info().max_message) {
      fmt::print(stderr,
                 "shmbus dlq replay: dead letter seq={}: its {}-byte payload{} is larger than "
                 "channel '{}' takes ({} bytes) (skipped)\n",
                 p.sequence, d.payload.size(),
                 tagged ? fmt::format(" with its key and type ({} bytes)", record_bytes) : "",
                 target_, pub_->info().max_message);
      return false;
    }
    return true;
  }

  std::string line(const DlqPlace& p, const DeadLetter& d,
                   std::optional<std::uint64_t> new_sequence) const {
    if (o_.json) {
      nlohmann::ordered_json j;
      j["seq"] = p.sequence;
      j["original_seq"] = d.original_sequence;
      j["channel"] = target_;
      j["new_seq"] = new_sequence ? nlohmann::ordered_json(*new_sequence) : nullptr;
      j["size"] = d.payload.size();
      j["dry_run"] = o_.dry_run;
      return j.dump();
    }
    if (!new_sequence) {
      return fmt::format("dlq seq={} (original seq={}, {} bytes) would be republished to '{}'",
                         p.sequence, d.original_sequence, d.payload.size(), target_);
    }
    return fmt::format("dlq seq={} (original seq={}, {} bytes) -> '{}' seq={}", p.sequence,
                       d.original_sequence, d.payload.size(), target_, *new_sequence);
  }

  const DlqReplayOptions& o_;
  std::string target_;
  LineOutput lines_;
  std::optional<Publisher> pub_;
  std::vector<std::uint64_t> found_, found_originals_;
  std::uint64_t published_ = 0;
  bool failed_ = false;
};

}  // namespace

int run_dlq_replay(const DlqReplayOptions& o, std::FILE* out) {
  std::signal(SIGPIPE, SIG_IGN);
  return guarded("replay", [&] {
    DlqRepublisher republisher(o, out);
    // The dead-letter channel is looked at before the target is opened (perhaps created).
    if (!o.dry_run) {
      if (!dlq_exists("replay", o.where) || !republisher.open()) return kExitFailure;
    }
    DlqWalk walk;
    for_each_dead_letter(
        "replay", o.where, o.select, walk,
        [&](const DlqPlace& p, const DeadLetter& d) { return republisher.republish(p, d); });
    return republisher.finish(walk);
  });
}

void add_dlq_command(CLI::App& app) {
  CLI::App* dlq = app.add_subcommand(
      "dlq", "List, show and republish the dead letters of a channel's consumer groups");
  dlq->require_subcommand(1);
  dlq->footer(
      "Dead letters are read from the dead-letter channel CHANNEL.dlq: from its journal when it "
      "has one (so those that left the ring are listed too), then from its ring.\n"
      "Exit: 0 done; 1 error (no such dead-letter channel, a record that is not a dead letter, "
      "a dead letter not found, a republish failed); 2 bad arguments.");

  // The options every dlq subcommand has.
  auto add_where = [](CLI::App* sub, DlqWhere& where) {
    sub->add_option("channel", where.channel, "The channel whose dead letters these are")
        ->required();
    sub->add_option("--dlq", where.dlq,
                    "The dead-letter channel (default: CHANNEL.dlq, the consumer groups' default)")
        ->type_name("CHANNEL");
    sub->add_option("--journal", where.journal_dir,
                    "The dead-letter channel's journal directory (default: the directory its "
                    "journaler records into, or last recorded into, as the channel says)")
        ->type_name("DIR");
  };
  auto add_sequences = [](CLI::App* sub, DlqSelection& select, const char* what) {
    sub->add_option("seq", select.sequences,
                    fmt::format("Dead-letter sequences (as ls shows them) to {}", what))
        ->transform(whole_number_in(1, kMaxU64));
    sub->add_option("--original", select.originals,
                    fmt::format("{} the dead letters of this original sequence (repeatable)",
                                what == std::string("show") ? "Show" : "Republish"))
        ->transform(whole_number_in(1, kMaxU64))
        ->type_name("SEQ");
  };

  {
    auto s = std::make_shared<DlqLsOptions>();
    CLI::App* ls = dlq->add_subcommand("ls", "One line per dead letter, oldest first");
    add_where(ls, s->where);
    ls->add_flag("--json", s->json,
                 "One JSON object per line (fields in docs/dead-letters.md)");
    ls->callback([s] {
      const int code = run_dlq_ls(*s, stdout);
      if (code != kExitOk) throw CLI::RuntimeError(code);
    });
  }
  {
    struct State {
      DlqShowOptions options;
      std::string format = "text";
    };
    auto s = std::make_shared<State>();
    CLI::App* show = dlq->add_subcommand("show", "Every field of dead letters, with the payload");
    add_where(show, s->options.where);
    add_sequences(show, s->options.select, "show");
    add_record_format_option(*show, s->format);
    show->footer(
        "Formats: text: every field, then the payload as a hex dump; json: ls's object with "
        "payload_hex (and payload_text if printable); raw: the original record as a tail "
        "capture frame (its original seq and time), which 'shmbus pub --format raw' republishes; "
        "payload: the payload bytes alone.");
    show->callback([s] {
      DlqShowOptions& o = s->options;
      if (o.select.sequences.empty() && o.select.originals.empty()) {
        throw CLI::ValidationError("seq", "name at least one dead-letter sequence or --original");
      }
      o.format = record_format_named(s->format);
      const int code = run_dlq_show(o, stdout);
      if (code != kExitOk) throw CLI::RuntimeError(code);
    });
  }
  {
    auto s = std::make_shared<DlqReplayOptions>();
    CLI::App* replay = dlq->add_subcommand(
        "replay", "Republish dead letters' payloads to their channel, in dead-letter order");
    add_where(replay, s->where);
    add_sequences(replay, s->select, "republish");
    replay->add_flag("--all", s->select.all, "Republish every dead letter");
    replay->add_option("--to", s->to_channel,
                       "Republish into this channel instead (created if needed)")
        ->type_name("CHANNEL");
    replay->add_flag("--dry-run", s->dry_run, "Say what would be republished; publish nothing");
    replay->add_flag("--json", s->json,
                     "One JSON object per dead letter: seq, original_seq, channel, new_seq "
                     "(null with --dry-run), size, dry_run");
    replay->add_option("--timeout-ms", s->timeout_ms,
                       "How long one record may wait for a block subscriber to free space; then "
                       "stop (exit 1), publishing nothing after it")
        ->capture_default_str()
        ->check(CLI::Range(std::int64_t{0}, kMaxTimeoutMs));
    replay->footer(
        "Each republished record gets the channel's next sequence; a line per dead letter says "
        "which, with the key and message type the dead letter kept. The dead letters stay in the "
        "dead-letter channel.");
    replay->callback([s] {
      const bool chosen = s->select.all || !s->select.sequences.empty() ||
                          !s->select.originals.empty();
      if (!chosen) {
        throw CLI::ValidationError("seq", "name dead-letter sequences, --original SEQ or --all");
      }
      if (s->select.all && (!s->select.sequences.empty() || !s->select.originals.empty())) {
        throw CLI::ValidationError("--all", "--all chooses every dead letter: name no others");
      }
      const int code = run_dlq_replay(*s, stdout);
      if (code != kExitOk) throw CLI::RuntimeError(code);
    });
  }
}

}  // namespace shmbus::tools
