// tail --group (tools/tail_group.hpp): print, flush, then ack, one record at a time.
#include "tools/tail_group.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "tools/pacer.hpp"
#include "tools/record_format.hpp"
#include "tools/signals.hpp"
#include "tools/truncation.hpp"

namespace shmbus::tools {
namespace {

// Sleep slice while idle: short enough that a stop request is seen promptly; the group's
// housekeeping (taking back expired and orphaned records) runs inside wait between slices.
constexpr std::int64_t kGroupIdleSliceNs = 100'000'000;

}  // namespace

GroupOptions tail_group_options(const TailOptions& o) {
  GroupOptions g;
  // A group has no drop policy: tail's default (drop) means the group's default (block).
  g.policy = o.policy == Policy::spill ? Policy::spill : Policy::block;
  g.start = o.start;
  g.start_sequence = o.start_sequence;
  if (o.ack_timeout_ms) g.ack_timeout = std::chrono::milliseconds(*o.ack_timeout_ms);
  if (o.max_attempts) g.max_attempts = *o.max_attempts;
  g.keyed = o.keyed;
  g.accept_existing = !o.group_settings_given;
  return g;
}

int run_tail_group(const TailOptions& o, std::FILE* out) {
  install_stop_handlers();
  std::signal(SIGPIPE, SIG_IGN);  // a closed pipe is an EPIPE from fwrite, handled below
  const shmbus::detail::MappingGuard guard;  // a truncated channel is an error, not a SIGBUS
  if (const auto problem = binary_to_terminal_problem(o.format, out)) {
    fmt::print(stderr, "shmbus tail: {}\n", *problem);
    return kExitUsage;
  }
  auto member = read_guarded(
      [&] { return GroupConsumer::open(o.channel, o.group, tail_group_options(o)); });
  if (!member) {
    fmt::print(stderr, "shmbus tail: {}\n", member.error().message);
    return kExitFailure;
  }

  RecordWriter writer(out, o.format, /*flush_each=*/true);
  std::uint64_t printed = 0;
  std::uint64_t fenced_reported = 0;
  // Printed and flushed first, then acked: a record whose line did not reach the output stays
  // unacked and goes to another member when this one leaves.
  auto on_message = [&](const GroupMessage& m) noexcept {
    if (writer.error() != 0) return;  // nothing more is printed, so nothing more is acked
    try {
      const Message as_tail{m.sequence, m.timestamp_ns, m.payload, 0};
      if (!writer.data(as_tail, GroupDelivery{m.redelivered, m.attempt})) return;
    } catch (...) {  // formatting allocates; poll() must not see an exception
      writer.fail(ENOMEM);
      return;
    }
    ++printed;
    if (member->ack(m.sequence) == AckStatus::fenced) ++fenced_reported;
  };

  std::string reported_error;
  std::uint64_t fenced_said = 0;
  std::int64_t idle_since = monotonic_now_ns();
  for (;;) {
    if (o.count && printed >= *o.count) return kExitOk;
    if (stop_requested()) return kExitOk;
    std::uint64_t batch = 64;
    // Never take more records than are left to print: those taken and not printed would wait
    // for this member to leave before another member gets them.
    if (o.count) batch = std::min(batch, *o.count - printed);
    const std::size_t n = member->poll(on_message, static_cast<std::size_t>(batch));

    if (writer.error() == EPIPE) return kExitOk;  // the reader went away: a normal end
    if (writer.error() != 0) {
      fmt::print(stderr, "shmbus tail: writing output: {}\n", std::strerror(writer.error()));
      return kExitFailure;
    }
    if (shmbus::detail::MappingGuard::caught()) {
      if (auto truncation = shmbus::detail::MappingGuard::take()) {
        fmt::print(stderr, "shmbus tail: {}\n", shmbus::detail::describe(*truncation));
      }
      return kExitFailure;
    }
    if (fenced_reported > fenced_said) {
      fmt::print(stderr,
                 "shmbus tail: warning: group '{}': {} printed record(s) were taken back before "
                 "their ack (the ack timeout passed): another member prints them again\n",
                 o.group, fenced_reported - fenced_said);
      fenced_said = fenced_reported;
    }
    if (member->status() != GroupStatus::ok && member->last_error() != reported_error) {
      reported_error = member->last_error();
      fmt::print(stderr, "shmbus tail: warning: {}\n", reported_error);
    }

    const std::int64_t now = monotonic_now_ns();
    if (n > 0) {
      idle_since = now;
      continue;
    }
    std::int64_t slice = kGroupIdleSliceNs;
    if (o.timeout_ms) {
      const std::int64_t remaining = idle_since + *o.timeout_ms * 1'000'000 - now;
      if (remaining <= 0) {
        fmt::print(stderr, "shmbus tail: channel '{}', group '{}': no message for {} ms\n",
                   o.channel, o.group, *o.timeout_ms);
        return kExitTimedOut;
      }
      slice = std::min(slice, remaining);
    }
    member->wait(std::chrono::nanoseconds(slice));
  }
}

}  // namespace shmbus::tools
