// The channel a fanout round publishes into, built in one place so that the number of subscriber
// slots it asks for is set on one line.
#pragma once

#include <cstddef>
#include <string>

#include "shmbus/options.hpp"

namespace shmbus::bench {

// Options for a channel that carries `size`-byte messages to `subscribers` subscribers. Otherwise
// the defaults a user gets (a 4 MiB multi-producer ring), grown only when `size` needs it.
ChannelOptions fanout_channel_options(std::size_t subscribers, std::size_t size);

// Empty if a channel built by fanout_channel_options takes this many subscribers, else why not.
std::string check_fanout_subscribers(std::size_t subscribers);

}  // namespace shmbus::bench
