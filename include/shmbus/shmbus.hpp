// shmbus: a low-latency shared-memory bus for processes on one host. Include this one header.
//
//   result.hpp      Error and Result, what setup calls return
//   options.hpp     ChannelOptions, SubscriberOptions, Policy, StartFrom, ChannelInfo
//   publisher.hpp   Publisher and Claim: claim, write in place, commit
//   subscriber.hpp  Subscriber and Message: poll, wait, manual release
//   group_consumer.hpp  GroupConsumer: a work queue on a channel (acks, redelivery, dead
//                   letters); include it to use it
//   stats.hpp       read_channel_stats and friends: what `shmbus stat` shows (include it too
//                   to use it)
//   bridge_stats.hpp  read_bridge_stats: the NATS JetStream bridges of a channel, as `shmbus
//                   stat` shows them (include it too to use it)
//   dead_letter.hpp DeadLetter, encode and decode: the records of a dead-letter channel
//                   (include it too to use it)
//   checkpoint.hpp  StateCheckpoint: a state and its applied sequences in one atomic file
//   exactly_once.hpp  ExactlyOnce: a group member applies each record to its state once
//
// Setup calls (open, close) return Result<T>: a value or an Error whose message names the channel,
// the segment and what is wrong. Hot-path calls (claim, commit, publish, poll) return small status
// codes, never throw, allocate nothing, take no lock and make no system call.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "options.hpp"
#include "publisher.hpp"
#include "result.hpp"
#include "subscriber.hpp"

namespace shmbus {

// One shared-memory object a removal tried to unlink, and how it went.
struct RemovedObject {
  std::string object;          // its name (without /dev/shm/)
  std::optional<Error> error;  // why it could not be unlinked (with errno's text); none: it was
};

// What unlink_channel did to each of the channel's objects it found, control segment first.
struct RemovalReport {
  std::vector<RemovedObject> objects;
  bool complete() const noexcept {
    for (const RemovedObject& o : objects) {
      if (o.error) return false;
    }
    return true;
  }
};

// Unlinks a channel's control segment and its ring, trying each even if the other fails (a user
// who may not unlink them, say), and reports every outcome. An error only if there is no such
// channel (not_found) or the name is not a channel's. Processes that still map it keep their
// mapping.
Result<RemovalReport> unlink_channel(std::string_view channel);

// unlink_channel, with an incomplete removal as an error (the first failure's code) naming each
// object that could not be unlinked and why, and what was removed.
Result<void> remove_channel(std::string_view channel);

}  // namespace shmbus
