// shmbus pub: publishes lines from stdin, or generated messages, to a channel.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <grp.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/commands.hpp"
#include "tools/option_bounds.hpp"
#include "tools/pacer.hpp"
#include "tools/record_format.hpp"
#include "tools/signals.hpp"

namespace shmbus::tools {
namespace {

// What was published, for the summary line and the JSON report.
struct Tally {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t first_sequence = 0;
  std::uint64_t last_sequence = 0;
  std::int64_t start_ns = monotonic_now_ns();
  // Claims that found the ring full (a block subscriber behind) and how long they waited.
  std::uint64_t back_pressure_waits = 0;
  std::int64_t back_pressure_wait_ns = 0;
  // Loss and gap records of a capture: not published, counted.
  std::uint64_t loss_records = 0;
  std::uint64_t lost_sequences = 0;
  std::string error;  // the first error, as printed on stderr

  void add(std::uint64_t sequence, std::uint64_t size) {
    if (messages == 0) first_sequence = sequence;
    last_sequence = sequence;
    ++messages;
    bytes += size;
  }
};

// Prints "shmbus pub: <message>" on stderr and keeps the first message for the JSON report.
void report_error(Tally& tally, std::string message) {
  fmt::print(stderr, "shmbus pub: {}\n", message);
  if (tally.error.empty()) tally.error = std::move(message);
}

void print_summary(const Tally& t) {
  const std::int64_t elapsed = std::max<std::int64_t>(monotonic_now_ns() - t.start_ns, 1);
  const double seconds = static_cast<double>(elapsed) / 1e9;
  std::string seqs = t.messages == 0 ? std::string("none")
                                     : fmt::format("{}..{}", t.first_sequence, t.last_sequence);
  fmt::print(stderr, "shmbus pub: published {} messages, {} in {} ({} msg/s, {}/s), seq {}\n",
             t.messages, human_bytes(static_cast<double>(t.bytes)), human_duration_ns(elapsed),
             human_count(static_cast<double>(t.messages) / seconds),
             human_bytes(static_cast<double>(t.bytes) / seconds), seqs);
}

const char* input_name(const PubOptions& o) {
  if (o.count) return "generated";
  switch (o.input) {
    case PubInput::raw: return "raw";
    case PubInput::json: return "json";
    case PubInput::lines: break;
  }
  return "lines";
}

void print_json_report(const PubOptions& o, const Tally& t, int code) {
  const std::int64_t elapsed = std::max<std::int64_t>(monotonic_now_ns() - t.start_ns, 1);
  const double seconds = static_cast<double>(elapsed) / 1e9;
  nlohmann::ordered_json j;
  j["channel"] = o.channel;
  j["input"] = input_name(o);
  j["messages"] = t.messages;
  j["bytes"] = t.bytes;
  const nlohmann::ordered_json none;  // null: nothing was published
  j["first_sequence"] = t.messages == 0 ? none : nlohmann::ordered_json(t.first_sequence);
  j["last_sequence"] = t.messages == 0 ? none : nlohmann::ordered_json(t.last_sequence);
  j["elapsed_ns"] = elapsed;
  j["messages_per_second"] = static_cast<double>(t.messages) / seconds;
  j["bytes_per_second"] = static_cast<double>(t.bytes) / seconds;
  j["back_pressure_waits"] = t.back_pressure_waits;
  j["back_pressure_wait_ns"] = t.back_pressure_wait_ns;
  j["capture_loss_records"] = t.loss_records;
  j["capture_lost_sequences"] = t.lost_sequences;
  j["exit_code"] = code;
  if (!t.error.empty()) j["error"] = t.error;
  fmt::print("{}\n", j.dump());
  std::fflush(stdout);
}

std::string publish_error_text(const PubOptions& o, const Publisher& pub, PublishStatus status,
                               std::size_t size, std::uint64_t sequence) {
  switch (status) {
    case PublishStatus::timed_out:
      return fmt::format(
          "channel '{}': timed out after {} ms waiting for space in the ring (a block subscriber "
          "is not keeping up)",
          o.channel, o.timeout_ms);
    case PublishStatus::too_large:
      return fmt::format(
          "channel '{}': a message of {} bytes{} is larger than the channel's max message ({} "
          "bytes)",
          o.channel, size,
          o.key || o.message_type != 0
              ? fmt::format(" with its key and type ({} bytes more)",
                            8 + ((o.key ? o.key->size() : 0) + 7) / 8 * 8)
              : "",
          pub.info().max_message);
    case PublishStatus::abandoned:
      return fmt::format(
          "channel '{}': message seq={} was marked abandoned (this process held its claim past "
          "the abandon timeout)",
          o.channel, sequence);
    case PublishStatus::corrupt:
      return fmt::format(
          "channel '{}': the ring's claim word holds garbage (something other than shmbus wrote "
          "into /dev/shm/shmbus.{}); remove and re-create the channel",
          o.channel, o.channel);
    case PublishStatus::ok:
    case PublishStatus::back_pressured:
      break;
  }
  return fmt::format("channel '{}': publish failed: {}", o.channel, to_string(status));
}

// Publishes messages one at a time, paced by --rate, each claim waiting out back-pressure up to
// --timeout-ms (the waits are counted for the report).
class PublishLoop {
 public:
  PublishLoop(Publisher& pub, const PubOptions& o, Tally& tally)
      : pub_(pub), o_(o), tally_(tally), pacer_(o.rate) {}

  // kExitOk, or the exit code to end with (the error was reported).
  template <class Fill>
  int publish(std::size_t size, const RecordTag& tag, Fill&& fill) {
    while (!pacer_.wait_turn(index_)) {
      if (stop_requested()) return 128 + stop_signal();
    }
    if (stop_requested()) return 128 + stop_signal();
    ++index_;
    if (size > UINT32_MAX) return failed(PublishStatus::too_large, size, 0);
    const auto bytes = static_cast<std::uint32_t>(size);
    Claim claim;
    PublishStatus st = pub_.try_claim(bytes, claim, tag);
    if (st == PublishStatus::back_pressured) {
      const std::int64_t since = monotonic_now_ns();
      st = pub_.claim(bytes, claim, tag, std::chrono::milliseconds(o_.timeout_ms));
      ++tally_.back_pressure_waits;
      tally_.back_pressure_wait_ns += monotonic_now_ns() - since;
    }
    if (st == PublishStatus::ok) {
      fill(claim.span());
      st = pub_.commit(claim);
    }
    if (st != PublishStatus::ok) return failed(st, size, claim.sequence());
    tally_.add(claim.sequence(), size);
    return kExitOk;
  }

  int publish_copy(std::span<const std::byte> payload, const RecordTag& tag) {
    return publish(payload.size(), tag, [payload](std::span<std::byte> out) {
      if (!payload.empty()) std::memcpy(out.data(), payload.data(), payload.size());
    });
  }

 private:
  int failed(PublishStatus st, std::size_t size, std::uint64_t sequence) {
    report_error(tally_, publish_error_text(o_, pub_, st, size, sequence));
    return kExitFailure;
  }

  Publisher& pub_;
  const PubOptions& o_;
  Tally& tally_;
  Pacer pacer_;
  std::uint64_t index_ = 0;
};

// The lines of stdin, without their newlines.
class StdinLines {
 public:
  explicit StdinLines(std::FILE* input) : input_(input) {}
  // record: `line` holds the next line (valid until the next call).
  CaptureRead next(std::string_view& line) {
    for (;;) {
      char* buffer = buffer_.release();
      const ssize_t n = getline(&buffer, &capacity_, input_);
      buffer_.reset(buffer);
      if (stop_requested()) return CaptureRead::interrupted;
      if (n < 0) {
        if (std::ferror(input_) == 0) return CaptureRead::end;
        if (errno == EINTR) {
          std::clearerr(input_);
          continue;
        }
        error_ = fmt::format("reading stdin: {}", std::strerror(errno));
        return CaptureRead::error;
      }
      ++number_;
      std::size_t size = static_cast<std::size_t>(n);
      if (size > 0 && buffer[size - 1] == '\n') --size;
      line = std::string_view(buffer, size);
      return CaptureRead::record;
    }
  }
  std::uint64_t number() const noexcept { return number_; }
  const std::string& error() const noexcept { return error_; }

 private:
  std::FILE* input_;
  std::unique_ptr<char, decltype(&std::free)> buffer_{nullptr, &std::free};
  std::size_t capacity_ = 0;
  std::uint64_t number_ = 0;  // of the line last returned, from 1
  std::string error_;
};

// The exit code for a read that did not return a record.
int end_of_input(CaptureRead read, const std::string& error, Tally& tally) {
  switch (read) {
    case CaptureRead::end: return kExitOk;
    case CaptureRead::interrupted: return 128 + stop_signal();
    case CaptureRead::error:
    case CaptureRead::record: break;
  }
  report_error(tally, error);
  return kExitFailure;
}

// --key and --message-type as the tag of every message; `o` outlives it.
RecordTag option_tag(const PubOptions& o) {
  RecordTag tag;
  if (o.key) tag.key = std::as_bytes(std::span(o.key->data(), o.key->size()));
  tag.message_type = o.message_type;
  return tag;
}

int publish_generated(PublishLoop& loop, const PubOptions& o) {
  const RecordTag tag = option_tag(o);
  for (std::uint64_t counter = 1; counter <= *o.count; ++counter) {
    auto fill = [counter](std::span<std::byte> out) { fill_generated_payload(out, counter); };
    if (const int code = loop.publish(o.size, tag, fill); code != kExitOk) return code;
  }
  return kExitOk;
}

int publish_lines(PublishLoop& loop, const PubOptions& o, std::FILE* input, Tally& tally) {
  const RecordTag tag = option_tag(o);
  StdinLines lines(input);
  for (std::string_view line;;) {
    const CaptureRead read = lines.next(line);
    if (read != CaptureRead::record) return end_of_input(read, lines.error(), tally);
    const int code = loop.publish_copy(std::as_bytes(std::span(line.data(), line.size())), tag);
    if (code != kExitOk) return code;
  }
}

// A capture's record: data is published; a loss or gap is counted.
int publish_captured(PublishLoop& loop, const CapturedRecord& record, Tally& tally) {
  if (record.kind == CapturedRecord::Kind::lost) {
    ++tally.loss_records;
    tally.lost_sequences += record.lost;
    return kExitOk;
  }
  return loop.publish_copy(record.payload, RecordTag{record.key, record.message_type});
}

int publish_json_capture(PublishLoop& loop, std::FILE* input, Tally& tally) {
  StdinLines lines(input);
  for (std::string_view line;;) {
    const CaptureRead read = lines.next(line);
    if (read != CaptureRead::record) return end_of_input(read, lines.error(), tally);
    auto record = parse_json_record_line(line);
    if (!record) {
      report_error(tally, fmt::format("stdin line {}: {} (--format json reads the lines of "
                                      "'shmbus tail --format json')",
                                      lines.number(), record.error()));
      return kExitFailure;
    }
    if (!*record) continue;  // a blank line
    if (const int code = publish_captured(loop, **record, tally); code != kExitOk) return code;
  }
}

int publish_raw_capture(PublishLoop& loop, const Publisher& pub, std::FILE* input, Tally& tally) {
  RawRecordReader reader(input, pub.info().max_message);
  for (CapturedRecord record;;) {
    const CaptureRead read = reader.next(record);
    if (read != CaptureRead::record) return end_of_input(read, reader.error(), tally);
    if (const int code = publish_captured(loop, record, tally); code != kExitOk) return code;
  }
}

// --mode: an octal file mode of read and write bits only (e.g. 0640).
CLI::Validator octal_mode_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const bool octal = !text.empty() && text.size() <= 4 &&
                           std::all_of(text.begin(), text.end(),
                                       [](char c) { return c >= '0' && c <= '7'; });
        if (!octal || (std::stoul(text, nullptr, 8) & ~0666UL) != 0) {
          return fmt::format("'{}' is not an octal mode of read and write bits (e.g. 0640)", text);
        }
        return {};
      },
      "OCTAL");
}

// --gating-group: a group name, or a numeric gid.
tl::expected<std::uint32_t, std::string> resolve_group(const std::string& group) {
  if (!group.empty() && std::all_of(group.begin(), group.end(),
                                    [](char c) { return c >= '0' && c <= '9'; })) {
    return static_cast<std::uint32_t>(std::stoul(group));
  }
  if (const struct group* entry = ::getgrnam(group.c_str()); entry != nullptr) {
    return static_cast<std::uint32_t>(entry->gr_gid);
  }
  return tl::unexpected(fmt::format("no group named '{}'", group));
}

}  // namespace

void fill_generated_payload(std::span<std::byte> out, std::uint64_t counter) noexcept {
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::uint64_t v = i < 8 ? counter >> (8 * i) : counter + i;
    out[i] = static_cast<std::byte>(v & 0xff);
  }
}

ChannelOptions channel_options_for(std::uint64_t capacity,
                                   std::optional<std::uint32_t> max_message) {
  ChannelOptions channel;
  channel.accept_existing = true;
  channel.capacity = capacity;
  if (max_message) {
    channel.max_message = *max_message;
  } else if (capacity / 4 > 32 && capacity / 4 - 32 < channel.max_message) {
    channel.max_message = static_cast<std::uint32_t>(capacity / 4 - 32);
  }
  return channel;
}

int run_pub(const PubOptions& o, std::FILE* input) {
  install_stop_handlers();
  ChannelOptions channel = channel_options_for(o.capacity, o.max_message);
  channel.mode = o.mode;
  channel.gating_group = o.gating_group;
  channel.accept_existing = o.accept_existing;
  Tally tally;
  auto pub = Publisher::open(o.channel, channel);
  if (!pub) {
    report_error(tally, pub.error().message);
    if (o.json) print_json_report(o, tally, kExitFailure);
    return kExitFailure;
  }
  PublishLoop loop(*pub, o, tally);
  int code = kExitOk;
  if (o.count) {
    code = publish_generated(loop, o);
  } else if (o.input == PubInput::raw) {
    code = publish_raw_capture(loop, *pub, input, tally);
  } else if (o.input == PubInput::json) {
    code = publish_json_capture(loop, input, tally);
  } else {
    code = publish_lines(loop, o, input, tally);
  }
  if (o.json) {
    print_json_report(o, tally, code);
  } else if (!o.quiet) {
    print_summary(tally);
  }
  return code;
}

void add_pub_command(CLI::App& app) {
  struct State {
    PubOptions options;
    std::uint64_t count = 0;
    std::uint32_t max_message = 0;
    std::string mode = "0660";
    std::string gating_group;
    bool accept_existing = false;
    std::string input = "lines";
    std::string key;
    std::uint16_t message_type = 0;
  };
  auto s = std::make_shared<State>();
  CLI::App* sub = app.add_subcommand(
      "pub", "Publish the lines of stdin, or --count generated messages, to a channel");
  sub->add_option("channel", s->options.channel, "Channel name (created if it does not exist)")
      ->required();
  CLI::Option* count =
      sub->add_option("--count", s->count,
                      "Publish N generated messages instead of reading stdin: bytes 0-7 are a "
                      "counter from 1 (little endian), byte i>=8 is (counter+i) mod 256")
          ->transform(whole_number_in(1, kMaxU64));
  sub->add_option("--size", s->options.size, "Bytes per generated message (at least 8)")
      ->capture_default_str()
      ->transform(byte_size_in(8, UINT32_MAX))
      ->needs(count);
  sub->add_option("--rate", s->options.rate,
                  "Messages per second, paced on CLOCK_MONOTONIC deadlines (default: as fast "
                  "as possible)")
      ->check(real_number_in(0.0, 1e10));
  CLI::Option* capacity = sub->add_option("--capacity", s->options.capacity,
                  "Ring size in bytes if the channel is created (a power of two)")
      ->capture_default_str()
      ->transform(ring_capacity_size());
  CLI::Option* max_message = sub->add_option(
      "--max-message", s->max_message,
      "Largest message in bytes if the channel is created (default 65536, or capacity/4-32 if "
      "that is smaller)");
  max_message->transform(max_message_size());
  sub->add_option("--timeout-ms", s->options.timeout_ms,
                  "How long one message may wait for a block subscriber to free space; then "
                  "exit 1")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{0}, kMaxTimeoutMs));
  sub->add_flag("-q,--quiet", s->options.quiet, "No summary line on stderr");
  sub->add_option("--format", s->input,
                  "What stdin holds: lines (the default: each line, without its newline, is one "
                  "message); raw (a capture of 'shmbus tail/replay --format raw'); json (the "
                  "lines of 'shmbus tail/replay --format json': the payload from payload_hex, "
                  "else payload_text). A capture's records are republished byte for byte under "
                  "the channel's next sequences; its loss and gap records are counted, not "
                  "published")
      ->transform(CLI::IsMember({"lines", "raw", "json"}, CLI::ignore_case))
      ->excludes(count);
  CLI::Option* key =
      sub->add_option("--key", s->key,
                      "Every message carries this key (its bytes, at most 256): subscribers may "
                      "filter on it ('shmbus tail --key'), consumer groups keep its messages in "
                      "order")
          ->check(
              [](const std::string& v) -> std::string {
                if (v.empty()) return "the key is empty";
                if (v.size() > kMaxKeyLength) {
                  return fmt::format("the key has {} bytes (at most {})", v.size(),
                                     kMaxKeyLength);
                }
                return {};
              },
              "KEY");
  CLI::Option* message_type =
      sub->add_option("--message-type", s->message_type,
                      "Every message carries this application message type (1 to 65535)")
          ->check(CLI::Range(1, 65535));
  sub->add_flag("--json", s->options.json,
                "Report on stdout as one JSON object (channel, input, messages, bytes, "
                "first_sequence, last_sequence, elapsed_ns, rates, back_pressure_waits, "
                "back_pressure_wait_ns, capture_loss_records, capture_lost_sequences, exit_code, "
                "error) instead of the summary line on stderr");
  sub->add_option("--mode", s->mode,
                      "File mode of the ring if the channel is created, in octal (default 0660). "
                      "Classes it lets write are trusted (publish, block, record); classes it "
                      "lets only read may tail with drop or spill (docs/security.md)")
      ->check(octal_mode_validator());
  CLI::Option* gating_group = sub->add_option(
      "--gating-group", s->gating_group,
      "If the channel is created: a Unix group (name or gid) trusted to attach block "
      "subscribers and journalers without publishing rights");
  CLI::Option* accept_existing = sub->add_flag(
      "--accept-existing", s->accept_existing,
      "Use an existing channel whatever its configuration; without it, --capacity or "
      "--max-message differing from the existing channel's is an error");
  sub->footer(
      "At the end a summary goes to stderr: messages, bytes, elapsed time, rate, first and last "
      "sequence.\nExit: 0 done; 1 error (e.g. timed out); 2 bad arguments; 128+N after signal N.");
  sub->callback([s, count, max_message, capacity, gating_group, accept_existing, key,
                 message_type] {
    if (count->count() > 0) s->options.count = s->count;
    s->options.input = s->input == "raw"    ? PubInput::raw
                       : s->input == "json" ? PubInput::json
                                            : PubInput::lines;
    const bool tagged = key->count() > 0 || message_type->count() > 0;
    if (tagged && s->options.input != PubInput::lines && !s->options.count) {
      throw CLI::ValidationError("--key/--message-type",
                                 "a capture's records carry their own key and message type");
    }
    if (key->count() > 0) s->options.key = s->key;
    s->options.message_type = s->message_type;
    if (max_message->count() > 0) s->options.max_message = s->max_message;
    s->options.mode = static_cast<unsigned>(std::stoul(s->mode, nullptr, 8));
    if (gating_group->count() > 0) {
      auto gid = resolve_group(s->gating_group);
      if (!gid) throw CLI::ValidationError("--gating-group", gid.error());
      s->options.gating_group = *gid;
    }
    // Asking for a configuration (capacity, max message) makes a different existing one an
    // error, unless --accept-existing says any will do.
    const bool asked = capacity->count() > 0 || max_message->count() > 0;
    s->options.accept_existing = !asked || accept_existing->count() > 0;
    const int code = run_pub(s->options, stdin);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
