// shmbus tail: prints the records of a channel as they arrive, one line each; with --group, as a
// member of a consumer group (tools/tail_group.cpp).
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "tools/commands.hpp"
#include "tools/record_format.hpp"
#include "tools/record_format_option.hpp"
#include "tools/option_bounds.hpp"
#include "tools/pacer.hpp"
#include "tools/signals.hpp"
#include "tools/tail_group.hpp"
#include "tools/truncation.hpp"

namespace shmbus::tools {
namespace {

// Sleep slice while idle: short enough that a stop request is seen promptly.
constexpr std::int64_t kIdleSliceNs = 100'000'000;


SubscriberOptions subscriber_options(const TailOptions& o) {
  SubscriberOptions so;
  so.policy = o.policy;
  so.start = o.start;
  so.start_sequence = o.start_sequence;
  so.name = o.name;
  so.latency_histogram = o.latency_histogram;
  so.filter = o.filter;
  return so;
}

}  // namespace

int run_tail(const TailOptions& o, std::FILE* out) {
  if (!o.group.empty()) return run_tail_group(o, out);
  install_stop_handlers();
  std::signal(SIGPIPE, SIG_IGN);  // a closed pipe is an EPIPE from fwrite, handled below
  const detail::MappingGuard guard;  // a truncated channel is an error, not a SIGBUS
  if (const auto problem = binary_to_terminal_problem(o.format, out)) {
    fmt::print(stderr, "shmbus tail: {}\n", *problem);
    return kExitUsage;
  }
  auto sub = read_guarded([&] { return Subscriber::open(o.channel, subscriber_options(o)); });
  if (!sub) {
    fmt::print(stderr, "shmbus tail: {}\n", sub.error().message);
    return kExitFailure;
  }

  RecordWriter writer(out, o.format, /*flush_each=*/true);
  std::uint64_t printed = 0;
  auto on_message = [&](const Message& m) noexcept {
    try {
      if (m.lost_before > 0) writer.lost(m.lost_before, m.sequence, m.timestamp_ns);
      writer.data(m);
    } catch (...) {  // formatting allocates; poll() must not see an exception
      writer.fail(ENOMEM);
    }
    ++printed;
  };

  std::string reported_error;
  std::int64_t idle_since = monotonic_now_ns();
  for (;;) {
    if (o.count && printed >= *o.count) return kExitOk;
    if (stop_requested()) return kExitOk;
    std::uint64_t batch = 256;
    if (o.count) batch = std::min(batch, *o.count - printed);
    const std::size_t n = sub->poll(on_message, static_cast<std::size_t>(batch));

    if (writer.error() == EPIPE) return kExitOk;  // the reader went away: a normal end
    if (writer.error() != 0) {
      fmt::print(stderr, "shmbus tail: writing output: {}\n", std::strerror(writer.error()));
      return kExitFailure;
    }
    // The pages past the truncation read as zeros: nothing more will come.
    if (detail::MappingGuard::caught()) {
      if (auto truncation = detail::MappingGuard::take()) {
        fmt::print(stderr, "shmbus tail: {}\n", detail::describe(*truncation));
      }
      return kExitFailure;
    }
    if (sub->status() == PollStatus::evicted) {
      fmt::print(stderr, "shmbus tail: channel '{}': this subscriber was evicted\n", o.channel);
      return kExitFailure;
    }
    // corrupt: a record failed validation; journal_unavailable: a spill subscriber could not
    // catch up from the journal and skipped ahead (the loss is announced as for drop).
    if ((sub->status() == PollStatus::corrupt ||
         sub->status() == PollStatus::journal_unavailable) &&
        sub->last_error() != reported_error) {
      reported_error = sub->last_error();
      fmt::print(stderr, "shmbus tail: warning: {}\n", reported_error);
    }

    const std::int64_t now = monotonic_now_ns();
    if (n > 0) {
      idle_since = now;
      continue;
    }
    std::int64_t slice = kIdleSliceNs;
    if (o.timeout_ms) {
      const std::int64_t remaining = idle_since + *o.timeout_ms * 1'000'000 - now;
      if (remaining <= 0) {
        fmt::print(stderr, "shmbus tail: channel '{}': no message for {} ms\n", o.channel,
                   *o.timeout_ms);
        return kExitTimedOut;
      }
      slice = std::min(slice, remaining);
    }
    sub->wait(std::chrono::nanoseconds(slice));
  }
}

void add_tail_command(CLI::App& app) {
  struct State {
    TailOptions options;
    std::string policy = "drop";
    std::string format = "text";
    std::string from = "latest";
    std::uint64_t count = 0;
    std::int64_t timeout_ms = 0;
    std::string key;
    std::vector<std::uint16_t> message_types;
    std::int64_t ack_timeout_ms = 0;
    std::uint32_t max_attempts = 0;
  };
  auto s = std::make_shared<State>();
  CLI::App* sub = app.add_subcommand("tail", "Print a channel's messages as they arrive");
  sub->add_option("channel", s->options.channel, "Channel name")->required();
  sub->add_option("--policy", s->policy,
                  "block: lossless, but slows the producers if tail falls behind; drop (the "
                  "default): never slows the producers, reports lost messages; spill: never "
                  "slows the producers, catches up from the channel's journal when it falls a "
                  "lap behind (needs `shmbus record` running on the channel)")
      ->transform(CLI::IsMember({"block", "drop", "spill"}, CLI::ignore_case));
  sub->add_option("--from", s->from,
                  "Where to start: earliest (oldest message still in the ring), latest (the "
                  "next message published; the default) or a sequence number")
      ->check(
          [](const std::string& v) -> std::string {
            if (v == "earliest" || v == "latest") return {};
            std::string sequence = v;
            if (whole_number_in(1, kMaxU64)(sequence).empty()) return {};
            return fmt::format("expected earliest, latest or a sequence number >= 1, got '{}'", v);
          },
          "earliest|latest|SEQ");
  CLI::Option* count =
      sub->add_option("--count", s->count, "Exit (code 0) after printing N messages")
          ->transform(whole_number_in(1, kMaxU64));
  add_record_format_option(*sub, s->format);
  CLI::Option* key =
      sub->add_option("--key", s->key,
                      "Print only messages published with this key (its bytes, exactly); the "
                      "others are skipped by tail, not counted as lost")
          ->check(
              [](const std::string& v) -> std::string {
                if (v.size() > kMaxKeyLength) {
                  return fmt::format("the key has {} bytes (at most {})", v.size(),
                                     kMaxKeyLength);
                }
                return {};
              },
              "KEY");
  sub->add_option("--message-type", s->message_types,
                  "Print only messages of this application message type (repeat for several; "
                  "0: messages without a type); with --key, messages that match both")
      ->check(CLI::Range(0, 65535));
  CLI::Option* name =
      sub->add_option("--name", s->options.name,
                      "Subscriber name: a named subscriber resumes where the last one of that "
                      "name stopped");
  CLI::Option* histogram =
      sub->add_flag("--latency-histogram", s->options.latency_histogram,
                    "Record each message's end-to-end latency in this subscriber's histogram, "
                    "shown by 'shmbus stat' (p50, p99, p99.9, max)");
  CLI::Option* timeout =
      sub->add_option("--timeout-ms", s->timeout_ms,
                      "Exit with code 3 if no message arrives for this long (default: wait "
                      "forever)")
          ->check(CLI::Range(std::int64_t{0}, kMaxTimeoutMs));
  CLI::Option* group =
      sub->add_option("--group", s->options.group,
                      "Join this consumer group as a member (created if it does not exist; "
                      "--from then says where it starts): the group shares the channel's records "
                      "among its members, each printed by one of them, acked once printed. json "
                      "lines add \"redelivered\" and \"attempt\"")
          ->type_name("NAME");
  CLI::Option* ack_timeout =
      sub->add_option("--ack-timeout-ms", s->ack_timeout_ms,
                      "With --group, creating it: a record not acked this long after its delivery "
                      "goes to another member (default 10000)")
          ->check(CLI::Range(std::int64_t{1}, std::int64_t{86'400'000}));
  CLI::Option* max_attempts =
      sub->add_option("--max-attempts", s->max_attempts,
                      "With --group, creating it: deliveries of one record before it goes to the "
                      "dead-letter channel CHANNEL.dlq (default 5)")
          ->transform(whole_number_in(1, 1000));
  CLI::Option* keyed = sub->add_flag("--keyed", s->options.keyed,
                                     "With --group, creating it: records with the same key go to "
                                     "one member at a time, in order");
  ack_timeout->needs(group);
  max_attempts->needs(group);
  keyed->needs(group);
  group->excludes(name);
  group->excludes(key);
  group->excludes(histogram);
  sub->footer(
      "With --group, --policy block (the default then) or spill is the group's, and records are "
      "never lost; settings given for an existing group must match its own (exit 1 otherwise).\n"
      "Lost messages (drop policy) are announced before the next message received: '# lost N "
      "messages before seq=S' (json: {\"lost\":N,\"before_seq\":S}; raw: an SBRL frame).\n"
      "Text shows times in the local zone ($TZ; TZ=UTC for UTC). A raw capture is republished "
      "byte for byte by 'shmbus pub CHANNEL --format raw < capture' (docs/observability.md).\n"
      "Every line is flushed. SIGINT/SIGTERM end tail cleanly (exit 0).\n"
      "Exit: 0 done; 1 error; 2 bad arguments; 3 --timeout-ms expired.");
  CLI::Option* policy = sub->get_option("--policy");
  sub->callback([s, count, timeout, key, group, ack_timeout, max_attempts, keyed, policy] {
    TailOptions& o = s->options;
    if (key->count() > 0) o.filter.key = s->key;
    o.filter.message_types = s->message_types;
    if (group->count() > 0) {
      if (s->policy == "drop" && policy->count() > 0) {
        throw CLI::ValidationError("--policy", "a group is block or spill, never drop");
      }
      if (ack_timeout->count() > 0) o.ack_timeout_ms = s->ack_timeout_ms;
      if (max_attempts->count() > 0) o.max_attempts = s->max_attempts;
      o.group_settings_given = ack_timeout->count() + max_attempts->count() + keyed->count() +
                                   policy->count() >
                               0;
    }
    o.policy = s->policy == "block"   ? Policy::block
               : s->policy == "spill" ? Policy::spill
                                      : Policy::drop;
    o.format = record_format_named(s->format);
    if (count->count() > 0) o.count = s->count;
    if (timeout->count() > 0) o.timeout_ms = s->timeout_ms;
    if (s->from == "earliest") {
      o.start = StartFrom::earliest;
    } else if (s->from == "latest") {
      o.start = StartFrom::latest;
    } else {
      o.start = StartFrom::sequence;
      o.start_sequence = std::strtoull(s->from.c_str(), nullptr, 10);
    }
    const int code = run_tail(o, stdout);
    if (code != kExitOk) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
