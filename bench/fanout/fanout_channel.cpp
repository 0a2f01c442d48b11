#include "bench/fanout/fanout_channel.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>

#include <fmt/format.h>

namespace shmbus::bench {

namespace {

// How many subscribers a channel takes today: the control segment's fixed 64 slots. Raise this
// together with the marked line in fanout_channel_options once ChannelOptions::subscriber_slots
// exists (up to the largest value that option accepts).
constexpr std::size_t kMaxFanoutSubscribers = 64;

constexpr std::uint64_t kFrameHeaderBytes = 32;  // a record's header in the ring

}  // namespace

ChannelOptions fanout_channel_options(std::size_t subscribers, std::size_t size) {
  ChannelOptions options;
  // A message must fit max_message, which must stay within a quarter of the ring.
  options.max_message = std::max(options.max_message, static_cast<std::uint32_t>(size));
  options.capacity = std::max(options.capacity,
                              std::bit_ceil(4 * (options.max_message + kFrameHeaderBytes)));
  // >>> SUBSCRIBER SLOTS: set here when ChannelOptions::subscriber_slots is merged:
  //       options.subscriber_slots = static_cast<std::uint32_t>(subscribers);
  //     and raise kMaxFanoutSubscribers above.
  (void)subscribers;
  return options;
}

std::string check_fanout_subscribers(std::size_t subscribers) {
  if (subscribers == 0) return "a fanout needs at least 1 subscriber";
  if (subscribers > kMaxFanoutSubscribers) {
    return fmt::format(
        "{} subscribers: a channel takes at most {} in this build (more need the channel option "
        "ChannelOptions::subscriber_slots, which this build does not have yet)",
        subscribers, kMaxFanoutSubscribers);
  }
  return {};
}

}  // namespace shmbus::bench
