// shmbus: a low-latency shared-memory bus for processes on one host. Include this one header.
//
//   result.hpp      Error and Result, what setup calls return
//   options.hpp     ChannelOptions, SubscriberOptions, Policy, StartFrom, ChannelInfo
//   publisher.hpp   Publisher and Claim: claim, write in place, commit
//   subscriber.hpp  Subscriber and Message: poll, wait, manual release
//   stats.hpp       read_channel_stats and friends: what `shmbus stat` shows (include it too
//                   to use it)
//
// Setup calls (open, close) return Result<T>: a value or an Error whose message names the channel,
// the segment and what is wrong. Hot-path calls (claim, commit, publish, poll) return small status
// codes, never throw, allocate nothing, take no lock and make no system call.
#pragma once

#include <string_view>

#include "options.hpp"
#include "publisher.hpp"
#include "result.hpp"
#include "subscriber.hpp"

namespace shmbus {

// Removes a channel's segments. Processes that still map it keep their mapping.
Result<void> remove_channel(std::string_view channel);

}  // namespace shmbus
