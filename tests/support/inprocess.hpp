// Small helpers for tests that publish and subscribe within the test process.
#pragma once

#include <chrono>
#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/shmbus.hpp"

namespace shmbus::test {

// 64 KiB ring, 1 KiB messages, a short open timeout.
ChannelOptions small_options();

SubscriberOptions sub_options(Policy policy, StartFrom start = StartFrom::latest);

std::vector<std::byte> bytes_of(std::string_view text);

struct Received {
  std::uint64_t sequence;
  std::uint64_t lost_before;
  std::string payload;
};

// Polls (never further than) until `want` messages arrived or `timeout` passed.
std::vector<Received> receive_messages(Subscriber& sub, std::size_t want,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
// The same, payloads only.
std::vector<std::string> receive(Subscriber& sub, std::size_t want,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace shmbus::test

namespace shmbus {
// Readable names in GoogleTest messages.
void PrintTo(Policy policy, std::ostream* os);
void PrintTo(PollStatus status, std::ostream* os);
void PrintTo(PublishStatus status, std::ostream* os);
void PrintTo(ErrorCode code, std::ostream* os);
}  // namespace shmbus
