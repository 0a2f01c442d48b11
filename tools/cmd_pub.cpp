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

#include "tools/commands.hpp"
#include "tools/option_bounds.hpp"
#include "tools/pacer.hpp"
#include "tools/signals.hpp"

namespace shmbus::tools {
namespace {

// What was published, for the summary line.
struct Tally {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t first_sequence = 0;
  std::uint64_t last_sequence = 0;
  std::int64_t start_ns = monotonic_now_ns();

  void add(std::uint64_t sequence, std::uint64_t size) {
    if (messages == 0) first_sequence = sequence;
    last_sequence = sequence;
    ++messages;
    bytes += size;
  }
};

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

void print_publish_error(const PubOptions& o, const Publisher& pub, PublishStatus status,
                         std::size_t size, std::uint64_t sequence) {
  switch (status) {
    case PublishStatus::timed_out:
      fmt::print(stderr,
                 "shmbus pub: channel '{}': timed out after {} ms waiting for space in the ring "
                 "(a block subscriber is not keeping up)\n",
                 o.channel, o.timeout_ms);
      return;
    case PublishStatus::too_large:
      fmt::print(stderr,
                 "shmbus pub: channel '{}': a message of {} bytes is larger than the channel's "
                 "max message ({} bytes)\n",
                 o.channel, size, pub.info().max_message);
      return;
    case PublishStatus::abandoned:
      fmt::print(stderr,
                 "shmbus pub: channel '{}': message seq={} was marked abandoned (this process "
                 "held its claim past the abandon timeout)\n",
                 o.channel, sequence);
      return;
    case PublishStatus::corrupt:
      fmt::print(stderr,
                 "shmbus pub: channel '{}': the ring's claim word holds garbage (something other "
                 "than shmbus wrote into /dev/shm/shmbus.{}); remove and re-create the channel\n",
                 o.channel, o.channel);
      return;
    case PublishStatus::ok:
    case PublishStatus::back_pressured:
      break;
  }
  fmt::print(stderr, "shmbus pub: channel '{}': publish failed: {}\n", o.channel,
             to_string(status));
}

// Claims `size` bytes, waiting out back-pressure up to the timeout, lets `fill` write them and
// commits. Prints the error and returns false if the message could not be published.
template <class Fill>
bool publish_one(Publisher& pub, const PubOptions& o, std::size_t size, Fill&& fill, Tally& tally) {
  if (size > UINT32_MAX) {
    print_publish_error(o, pub, PublishStatus::too_large, size, 0);
    return false;
  }
  Claim claim;
  PublishStatus st = pub.claim(static_cast<std::uint32_t>(size), claim,
                               std::chrono::milliseconds(o.timeout_ms));
  if (st == PublishStatus::ok) {
    fill(claim.span());
    st = pub.commit(claim);
  }
  if (st != PublishStatus::ok) {
    print_publish_error(o, pub, st, size, claim.sequence());
    return false;
  }
  tally.add(claim.sequence(), size);
  return true;
}

int publish_generated(Publisher& pub, const PubOptions& o, Tally& tally) {
  const Pacer pacer(o.rate);
  for (std::uint64_t counter = 1; counter <= *o.count; ++counter) {
    while (!pacer.wait_turn(counter - 1)) {
      if (stop_requested()) return 128 + stop_signal();
    }
    if (stop_requested()) return 128 + stop_signal();
    auto fill = [counter](std::span<std::byte> out) { fill_generated_payload(out, counter); };
    if (!publish_one(pub, o, o.size, fill, tally)) return kExitFailure;
  }
  return kExitOk;
}

int publish_lines(Publisher& pub, const PubOptions& o, std::FILE* input, Tally& tally) {
  const Pacer pacer(o.rate);
  std::unique_ptr<char, decltype(&std::free)> line(nullptr, &std::free);
  std::size_t capacity = 0;
  for (std::uint64_t index = 0;; ++index) {
    char* buffer = line.release();
    const ssize_t n = getline(&buffer, &capacity, input);
    line.reset(buffer);
    if (stop_requested()) return 128 + stop_signal();
    if (n < 0) {
      if (std::ferror(input) == 0) return kExitOk;  // end of input
      if (errno == EINTR) {
        std::clearerr(input);
        continue;
      }
      fmt::print(stderr, "shmbus pub: reading stdin: {}\n", std::strerror(errno));
      return kExitFailure;
    }
    std::size_t size = static_cast<std::size_t>(n);
    if (size > 0 && buffer[size - 1] == '\n') --size;
    while (!pacer.wait_turn(index)) {
      if (stop_requested()) return 128 + stop_signal();
    }
    auto fill = [buffer, size](std::span<std::byte> out) { std::memcpy(out.data(), buffer, size); };
    if (!publish_one(pub, o, size, fill, tally)) return kExitFailure;
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
  auto pub = Publisher::open(o.channel, channel);
  if (!pub) {
    fmt::print(stderr, "shmbus pub: {}\n", pub.error().message);
    return kExitFailure;
  }
  Tally tally;
  const int code =
      o.count ? publish_generated(*pub, o, tally) : publish_lines(*pub, o, input, tally);
  if (!o.quiet) print_summary(tally);
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
  sub->callback([s, count, max_message, capacity, gating_group, accept_existing] {
    if (count->count() > 0) s->options.count = s->count;
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
