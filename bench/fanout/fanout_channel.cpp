#include "bench/fanout/fanout_channel.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>

#include <fmt/format.h>

namespace shmbus::bench {

namespace {

// The most subscribers a channel takes: the largest ChannelOptions::subscriber_slots accepts.
constexpr std::size_t kMaxFanoutSubscribers = 4096;

constexpr std::uint64_t kFrameHeaderBytes = 32;  // a record's header in the ring

}  // namespace

ChannelOptions fanout_channel_options(std::size_t subscribers, std::size_t size) {
  ChannelOptions options;
  // A message must fit max_message, which must stay within a quarter of the ring.
  options.max_message = std::max(options.max_message, static_cast<std::uint32_t>(size));
  options.capacity = std::max(options.capacity,
                              std::bit_ceil(4 * (options.max_message + kFrameHeaderBytes)));
  // A slot per subscriber (never fewer than the default).
  options.subscriber_slots =
      std::max(options.subscriber_slots, static_cast<std::uint32_t>(subscribers));
  return options;
}

std::string check_fanout_subscribers(std::size_t subscribers) {
  if (subscribers == 0) return "a fanout needs at least 1 subscriber";
  if (subscribers > kMaxFanoutSubscribers) {
    return fmt::format(
        "{} subscribers: a channel takes at most {} (ChannelOptions::subscriber_slots)",
        subscribers, kMaxFanoutSubscribers);
  }
  return {};
}

}  // namespace shmbus::bench
